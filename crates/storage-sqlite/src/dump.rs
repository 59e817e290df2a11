//! [`Dump`] and [`Load`] on a SQLite file: the queue as engine-neutral rows
//! ([`DUMP_TABLES`]), read in batches from one read transaction on tokio's blocking pool and
//! handed over a small channel, and loaded in one `BEGIN IMMEDIATE` transaction held by a
//! blocking task until it commits or is dropped (rolled back).
//!
//! A file at an older schema is dumped whole without being changed: a column it lacks reads
//! as its default (`lapses` as 0, scores and growth as NULL), and a file from before one
//! record per video (schema v8) is upgraded on a backup copy, whose rows are dumped.

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use prismq_domain::ports::dump::{ColumnKind, DumpTable, Row, Value, DUMP_TABLES};
use prismq_domain::ports::{Dump, DumpSink, Load, LoadSession, StorageError, SystemClock};
use prismq_domain::{PortError, TaskStatus, ValidationError};

use crate::{SqliteOptions, SqliteStore};

fn sqlite_err(e: rusqlite::Error) -> PortError {
    PortError::Unavailable(format!("SQLite: {e}"))
}

fn stopped(what: &str) -> StorageError {
    StorageError::Port(PortError::Unavailable(format!("the SQLite {what} stopped")))
}

fn column_list(t: &DumpTable) -> String {
    t.columns
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether task_logs orders by `seq` (schema v2 on) or by rowid `id`.
fn log_order(conn: &Connection) -> Result<&'static str, PortError> {
    Ok(if has_column(conn, "task_logs", "seq")? {
        "seq"
    } else {
        "id"
    })
}

fn has_column(conn: &Connection, table: &str, column: &str) -> Result<bool, PortError> {
    conn.query_row(
        "SELECT count(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
        [table, column],
        |r| r.get(0),
    )
    .map_err(sqlite_err)
}

/// Whether the schema has `name` (a table or a view).
fn has(conn: &Connection, name: &str) -> Result<bool, PortError> {
    conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_schema WHERE name = ?1",
        [name],
        |r| r.get(0),
    )
    .map_err(sqlite_err)
}

/// Whether `task_queue` stores interned type ids and status codes (schema v12 on), which a
/// dump reads and loads as the type names and status words of [`DUMP_TABLES`].
fn compact_tasks(conn: &Connection, t: &DumpTable) -> Result<bool, PortError> {
    Ok(t.name == "task_queue" && has_column(conn, "task_queue", "type_id")?)
}

/// The columns to read from `t`: a column an older schema lacks reads as its default.
fn select_list(conn: &Connection, t: &DumpTable) -> Result<String, PortError> {
    let compact = compact_tasks(conn, t)?;
    let mut cols = Vec::with_capacity(t.columns.len());
    for (c, _) in t.columns {
        match (compact, *c) {
            (true, "type") => {
                cols.push(concat!(crate::types::type_name!(), " AS type").into());
                continue;
            }
            (true, "status") => {
                cols.push(concat!(crate::codec::status_word!("status"), " AS status").into());
                continue;
            }
            (true, "compatibility") => {
                cols.push("coalesce(compatibility, '{}') AS compatibility".into());
                continue;
            }
            // NULL until the task first changes (schema v15): it reads as created_at.
            (true, "updated_at") => {
                cols.push("coalesce(updated_at, created_at) AS updated_at".into());
                continue;
            }
            _ => {}
        }
        match (has_column(conn, t.name, c)?, *c) {
            (true, _) => cols.push((*c).to_owned()),
            (false, "lapses") => cols.push(format!("0 AS {c}")),
            (false, _) => cols.push(format!("NULL AS {c}")),
        }
    }
    Ok(cols.join(", "))
}

fn read_value(r: &rusqlite::Row<'_>, i: usize, t: &DumpTable) -> Result<Value, PortError> {
    let (name, kind) = t.columns[i];
    Ok(match kind {
        ColumnKind::Int => Value::Int(r.get(i).map_err(sqlite_err)?),
        ColumnKind::Real => Value::Real(r.get(i).map_err(sqlite_err)?),
        ColumnKind::Text => Value::Text(r.get(i).map_err(sqlite_err)?),
        ColumnKind::Bool => Value::Bool(
            r.get::<_, Option<i64>>(i)
                .map_err(sqlite_err)?
                .map(|b| b != 0),
        ),
        ColumnKind::Json => {
            let text: Option<String> = r.get(i).map_err(sqlite_err)?;
            Value::Json(
                text.map(|s| serde_json::from_str(&s))
                    .transpose()
                    .map_err(|e| {
                        PortError::Unavailable(format!("{}.{name} holds invalid JSON: {e}", t.name))
                    })?,
            )
        }
    })
}

/// Reads every table in one read transaction, sending batches of `batch` rows to `out`.
fn read_all(
    conn: &mut Connection,
    batch: usize,
    out: &mpsc::Sender<(usize, Vec<Row>)>,
) -> Result<Vec<u64>, PortError> {
    let tx = conn.transaction().map_err(sqlite_err)?;
    let order = log_order(&tx)?;
    // Schema v2 keeps the current attempt's entries on the task row; the view adds them.
    let log_source = if has(&tx, "task_log_entries")? {
        "task_log_entries"
    } else {
        "task_logs"
    };
    let mut counts = Vec::with_capacity(DUMP_TABLES.len());
    for (ti, t) in DUMP_TABLES.iter().enumerate() {
        if matches!(t.name, "schedules" | "channel_baselines") && !has(&tx, t.name)? {
            // A schema before v5 has no schedules, one before v4 no baselines: none to copy.
            counts.push(0);
            continue;
        }
        let (source, key) = if t.name == "task_logs" {
            (log_source, format!("{}, {order}", t.key.join(", ")))
        } else {
            (t.name, t.key.join(", "))
        };
        let sql = format!(
            "SELECT {} FROM {source} ORDER BY {key}",
            select_list(&tx, t)?
        );
        let mut stmt = tx.prepare(&sql).map_err(sqlite_err)?;
        let mut rows = stmt.query([]).map_err(sqlite_err)?;
        let mut n = 0u64;
        let mut rows_out = Vec::with_capacity(batch);
        while let Some(r) = rows.next().map_err(sqlite_err)? {
            let row = (0..t.columns.len())
                .map(|i| read_value(r, i, t))
                .collect::<Result<Row, _>>()?;
            rows_out.push(row);
            n += 1;
            if rows_out.len() == batch {
                send(
                    out,
                    ti,
                    std::mem::replace(&mut rows_out, Vec::with_capacity(batch)),
                )?;
            }
        }
        if !rows_out.is_empty() {
            send(out, ti, rows_out)?;
        }
        counts.push(n);
    }
    Ok(counts)
}

fn send(
    out: &mpsc::Sender<(usize, Vec<Row>)>,
    table: usize,
    rows: Vec<Row>,
) -> Result<(), PortError> {
    out.blocking_send((table, rows))
        .map_err(|_| PortError::Unavailable("the copy's writer stopped".into()))
}

/// Dumps `store`, first upgrading a backup of it when it predates one record per video.
fn read_store(
    store: &SqliteStore,
    batch: usize,
    out: &mpsc::Sender<(usize, Vec<Row>)>,
) -> Result<Vec<u64>, StorageError> {
    if store.with_connection(|c| has_column(c, "results", "platform"))? {
        return Ok(store.with_connection(|c| read_all(c, batch, out))?);
    }
    // A source before one record per video (schema v8): its rows of one video are merged by
    // that migration, run on a backup so the source stays as it is.
    let dir = tempfile::tempdir().map_err(|e| {
        PortError::Unavailable(format!(
            "no temporary directory to upgrade a copy of the source in: {e}"
        ))
    })?;
    let upgraded = dir.path().join("upgraded.db");
    crate::ops::backup(store, &upgraded).map_err(|e| {
        PortError::Unavailable(format!("backing up the source to upgrade it failed: {e}"))
    })?;
    let copy = SqliteStore::open(SqliteOptions::new(&upgraded), Arc::new(SystemClock))?;
    Ok(copy.with_connection(|c| read_all(c, batch, out))?)
}

#[async_trait]
impl Dump for SqliteStore {
    async fn dump(
        &self,
        batch_rows: usize,
        sink: &mut dyn DumpSink,
    ) -> Result<Vec<u64>, StorageError> {
        let store = self.clone();
        let (tx, mut rx) = mpsc::channel(2);
        let reader =
            tokio::task::spawn_blocking(move || read_store(&store, batch_rows.max(1), &tx));
        let mut failed = None;
        while let Some((table, rows)) = rx.recv().await {
            if let Err(e) = sink.write(table, rows).await {
                failed = Some(e);
                break;
            }
        }
        drop(rx);
        let counts = reader.await.map_err(|_| stopped("reader"))?;
        match failed {
            Some(e) => Err(e),
            None => counts,
        }
    }
}

type Reply<T> = oneshot::Sender<Result<T, PortError>>;

enum Cmd {
    Existing(Reply<u64>),
    Clear(Reply<()>),
    Write(usize, Vec<Row>, Reply<()>),
    Counts(Reply<Vec<u64>>),
    Commit(Reply<()>),
}

fn counts(conn: &Connection) -> Result<Vec<u64>, PortError> {
    DUMP_TABLES
        .iter()
        .map(|t| {
            conn.query_row(&format!("SELECT count(*) FROM {}", t.name), [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(sqlite_err)
        })
        .collect()
}

fn sql_value(v: &Value) -> SqlValue {
    match v {
        Value::Int(Some(i)) => SqlValue::Integer(*i),
        Value::Text(Some(s)) => SqlValue::Text(s.clone()),
        Value::Json(Some(j)) => SqlValue::Text(j.to_string()),
        Value::Bool(Some(b)) => SqlValue::Integer(i64::from(*b)),
        Value::Real(Some(x)) => SqlValue::Real(*x),
        _ => SqlValue::Null,
    }
}

/// For `task_queue` on a schema that stores `region` (v11 on), the parameter number of
/// `compatibility`, which the region is written from; `None` for other tables, and where
/// `region` is generated from `compatibility`.
fn region_source(conn: &Connection, t: &DumpTable) -> Result<Option<usize>, PortError> {
    if t.name != "task_queue" {
        return Ok(None);
    }
    let stored: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM pragma_table_xinfo('task_queue') WHERE name = 'region' AND hidden = 0",
            [],
            |r| r.get(0),
        )
        .map_err(sqlite_err)?;
    Ok(t.columns
        .iter()
        .position(|(c, _)| *c == "compatibility")
        .filter(|_| stored)
        .map(|i| i + 1))
}

/// The column list and values of a `task_queue` insert on schema v12 from a row of
/// [`DUMP_TABLES`]: the type's name becomes its interned id (interned before the insert), the
/// status word its code (an unknown word a NULL the column refuses), `{}` compatibility
/// NULL, and an updated_at equal to created_at NULL (the store loads into its own schema,
/// v15 on, which stores updated_at only once a task changed).
fn compact_task_insert(t: &DumpTable) -> (String, String) {
    let mut cols = Vec::with_capacity(t.columns.len());
    let mut marks = Vec::with_capacity(t.columns.len());
    // created_at's parameter number, for updated_at's NULLIF.
    let created = t
        .columns
        .iter()
        .position(|(c, _)| *c == "created_at")
        .map(|k| k + 1);
    for (i, (c, _)) in t.columns.iter().enumerate() {
        let i = i + 1;
        match (*c, created) {
            ("type", _) => {
                cols.push("type_id");
                marks.push(format!("(SELECT id FROM task_types WHERE name = ?{i})"));
            }
            ("status", _) => {
                cols.push("status");
                marks.push(format!(
                    "CASE ?{i} WHEN 'queued' THEN 0 WHEN 'claimed' THEN 1 WHEN 'running' THEN 2 \
                     WHEN 'completed' THEN 3 WHEN 'failed' THEN 4 WHEN 'cancelled' THEN 5 END"
                ));
            }
            ("compatibility", _) => {
                cols.push("compatibility");
                marks.push(format!("nullif(?{i}, '{{}}')"));
            }
            ("updated_at", Some(created)) => {
                cols.push("updated_at");
                marks.push(format!("nullif(?{i}, ?{created})"));
            }
            (other, _) => {
                cols.push(other);
                marks.push(format!("?{i}"));
            }
        }
    }
    (cols.join(", "), marks.join(", "))
}

/// Before a `task_queue` row goes into schema v12: refuses a status word that is not one of
/// the six, naming the task (the insert's `CASE` would make it a NULL the column refuses
/// without saying why), and interns the row's type.
fn prepare_compact_row(
    tx: &rusqlite::Transaction<'_>,
    t: &DumpTable,
    row: &Row,
) -> Result<(), PortError> {
    let at = |name: &str| {
        t.columns
            .iter()
            .position(|(c, _)| *c == name)
            .and_then(|i| row.get(i))
    };
    if let Some(Value::Text(Some(word))) = at("status") {
        if word.parse::<TaskStatus>().is_err() {
            let id = match at("id") {
                Some(Value::Int(Some(id))) => id.to_string(),
                _ => "?".to_owned(),
            };
            return Err(PortError::Invalid(ValidationError::new(
                format!("task_queue[{id}].status"),
                // A file's text: bounded and on one line, controls shown as U+FFFD.
                format!(
                    "\"{}\" is not a task status",
                    prismq_domain::text::one_line(word, 40)
                ),
                "queued, claimed, running, completed, failed, cancelled",
            )));
        }
    }
    if let Some(Value::Text(Some(name))) = at("type") {
        crate::types::intern(tx, name).map_err(sqlite_err)?;
    }
    Ok(())
}

/// The load's transaction, held on a blocking thread until commit or until the session is
/// dropped (the channel closes and the transaction rolls back).
fn serve_load(
    conn: &mut Connection,
    mut rx: mpsc::Receiver<Cmd>,
    ready: &mut Option<Reply<()>>,
) -> Result<(), PortError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_err)?;
    if let Some(r) = ready.take() {
        let _ = r.send(Ok(()));
    }
    let with_seq = log_order(&tx)? == "seq";
    // The last task whose logs were written and its last seq: a task's logs arrive in order.
    let mut seq = (i64::MIN, 0i64);
    while let Some(cmd) = rx.blocking_recv() {
        match cmd {
            Cmd::Existing(reply) => {
                let _ = reply.send(counts(&tx).map(|c| c.iter().sum()));
            }
            Cmd::Clear(reply) => {
                let r = DUMP_TABLES.iter().rev().try_for_each(|t| {
                    tx.execute(&format!("DELETE FROM {}", t.name), [])
                        .map(|_| ())
                        .map_err(sqlite_err)
                });
                let _ = reply.send(r);
            }
            Cmd::Write(table, rows, reply) => {
                let t = &DUMP_TABLES[table];
                let logs = t.name == "task_logs" && with_seq;
                let r = (|| {
                    let compact = compact_tasks(&tx, t)?;
                    let mut cols = column_list(t);
                    let mut n = t.columns.len();
                    if logs {
                        cols.push_str(", seq");
                        n += 1;
                    }
                    let mut marks = (1..=n)
                        .map(|i| format!("?{i}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    if compact {
                        // Schema v12 stores the type's interned id, the status's code, and
                        // NULL for a task that requires nothing.
                        (cols, marks) = compact_task_insert(t);
                    }
                    if let Some(compat) = region_source(&tx, t)? {
                        // Schema v11 stores the region the claim indexes key on beside the
                        // compatibility it comes from.
                        cols.push_str(", region");
                        marks.push_str(&format!(", json_extract(?{compat}, '$.region')"));
                    }
                    let mut stmt = tx
                        .prepare_cached(&format!(
                            "INSERT INTO {} ({cols}) VALUES ({marks})",
                            t.name
                        ))
                        .map_err(sqlite_err)?;
                    for row in &rows {
                        if compact {
                            prepare_compact_row(&tx, t, row)?;
                        }
                        let mut args: Vec<SqlValue> = row.iter().map(sql_value).collect();
                        if logs {
                            let task = match &row[0] {
                                Value::Int(Some(id)) => *id,
                                _ => 0,
                            };
                            seq = if seq.0 == task {
                                (task, seq.1 + 1)
                            } else {
                                (task, 1)
                            };
                            args.push(SqlValue::Integer(seq.1));
                        }
                        stmt.execute(rusqlite::params_from_iter(args))
                            .map_err(sqlite_err)?;
                    }
                    Ok(())
                })();
                let _ = reply.send(r);
            }
            Cmd::Counts(reply) => {
                let _ = reply.send(counts(&tx));
            }
            Cmd::Commit(reply) => {
                let r = (|| {
                    // The rows went in by table, past the code that counts inserted tasks
                    // (schema v11 has no insert trigger): count them once, from the rows.
                    tx.execute_batch(crate::queue::RECOUNT)
                        .map_err(sqlite_err)?;
                    if has_column(&tx, "task_queue", "log_seq")? {
                        // Schema v2 numbers a task's next log entry from the row's log_seq.
                        tx.execute(
                            "UPDATE task_queue SET log_seq = coalesce((SELECT max(seq) FROM task_logs WHERE task_id = task_queue.id), 0)",
                            [],
                        )
                        .map_err(sqlite_err)?;
                    }
                    Ok(())
                })();
                let r = match r {
                    Ok(()) => tx.commit().map_err(sqlite_err),
                    Err(e) => Err(e),
                };
                let _ = reply.send(r);
                return Ok(());
            }
        }
    }
    Ok(())
}

/// A load into a SQLite file in progress.
struct SqliteLoad {
    commands: mpsc::Sender<Cmd>,
}

impl SqliteLoad {
    async fn call<T>(&self, cmd: impl FnOnce(Reply<T>) -> Cmd) -> Result<T, StorageError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(cmd(reply))
            .await
            .map_err(|_| stopped("writer"))?;
        Ok(answer.await.map_err(|_| stopped("writer"))??)
    }
}

#[async_trait]
impl Load for SqliteStore {
    async fn begin_load(&self) -> Result<Box<dyn LoadSession>, StorageError> {
        let store = self.clone();
        let (commands, rx) = mpsc::channel(2);
        let (ready, started) = oneshot::channel::<Result<(), PortError>>();
        tokio::task::spawn_blocking(move || {
            let mut ready = Some(ready);
            let out = store.with_connection(|c| serve_load(c, rx, &mut ready));
            if let (Some(r), Err(e)) = (ready, out) {
                let _ = r.send(Err(e));
            }
        });
        started.await.map_err(|_| stopped("writer"))??;
        Ok(Box::new(SqliteLoad { commands }))
    }
}

#[async_trait]
impl LoadSession for SqliteLoad {
    fn engine(&self) -> &'static str {
        "SQLite"
    }

    async fn existing_rows(&mut self) -> Result<u64, StorageError> {
        self.call(Cmd::Existing).await
    }

    async fn clear(&mut self) -> Result<(), StorageError> {
        self.call(Cmd::Clear).await
    }

    async fn write(&mut self, table: usize, rows: Vec<Row>) -> Result<(), StorageError> {
        self.call(|r| Cmd::Write(table, rows, r)).await
    }

    async fn counts(&mut self) -> Result<Vec<u64>, StorageError> {
        self.call(Cmd::Counts).await
    }

    async fn commit(self: Box<Self>) -> Result<(), StorageError> {
        self.call(Cmd::Commit).await
    }
}
