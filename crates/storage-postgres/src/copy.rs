//! Copying a whole queue between SQLite and PostgreSQL (`prismq db copy`): tasks with their
//! ids (and attempt and lapse counts), logs, workers, results with their metric history,
//! outlier scores and growth, the channel baselines, quota, and schedules with their ids,
//! timetables and last slots, in one transaction on the target, then verified by counting
//! every table on both sides.
//!
//! The target must be empty (no task, log, worker, result, quota or schedule row) unless `force` is
//! given, in which case its PrismQ rows are deleted first, in the same transaction. The
//! queue counts are rebuilt by the target's own triggers. Rows pass through memory, which
//! suits queues of a few million small tasks.

use std::path::Path;
use std::sync::Arc;

use futures_util::pin_mut;
use rusqlite::types::Value as SqlValue;
use serde_json::Value;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use prismq_domain::ports::Clock;
use prismq_domain::PortError;
use prismq_storage_sqlite::{SqliteOptions, SqliteStore};

use crate::error::map_err;
use crate::PostgresStore;

/// What a copy moved, per table (equal on both sides when it returns).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CopyReport {
    /// Tasks.
    pub tasks: u64,
    /// Task log rows (the synthesized `enqueued` events excluded).
    pub logs: u64,
    /// Workers.
    pub workers: u64,
    /// Results.
    pub results: u64,
    /// Metric history rows.
    pub metrics: u64,
    /// Sightings of results.
    pub sightings: u64,
    /// Quota buckets.
    pub quota: u64,
    /// Schedules.
    pub schedules: u64,
    /// Channel baselines (per channel, format and basis).
    pub baselines: u64,
}

/// Why a copy was refused or failed. Nothing is written to the target on error.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The target already holds data and `force` was not given.
    #[error("the target {target} is not empty ({rows} rows in PrismQ's tables); copy into an empty database, or pass --force to replace its contents")]
    TargetNotEmpty {
        /// Which store.
        target: String,
        /// How many rows it holds.
        rows: u64,
    },
    /// A table's row count differs between source and target after the copy.
    #[error("verification failed: {table} has {source_rows} rows in the source but {target_rows} in the target; the copy was rolled back")]
    CountMismatch {
        /// The table.
        table: &'static str,
        /// Rows in the source.
        source_rows: u64,
        /// Rows in the target.
        target_rows: u64,
    },
    /// The SQLite side could not be opened.
    #[error(transparent)]
    Sqlite(#[from] prismq_storage_sqlite::StoreError),
    /// A store failed.
    #[error(transparent)]
    Port(#[from] PortError),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Text,
    Json,
    /// SQLite's 0/1 integer, PostgreSQL's boolean.
    Bool,
    /// A floating-point number (scores, medians, growth rates).
    Real,
}

struct Table {
    name: &'static str,
    report: fn(&mut CopyReport) -> &mut u64,
    columns: &'static [(&'static str, Kind)],
    /// Rows in a stable order (logs in written order).
    order: &'static str,
    /// Whether the PostgreSQL identity `id` must be moved past the copied ids.
    identity: bool,
}

use Kind::{Bool as B, Int as I, Json as J, Real as R, Text as T};

const TABLES: &[Table] = &[
    Table {
        name: "task_queue",
        report: |r| &mut r.tasks,
        columns: &[
            ("id", I),
            ("type", T),
            ("params", J),
            ("priority", I),
            ("status", T),
            ("attempts", I),
            ("max_attempts", I),
            ("run_after", I),
            ("lease_expires_at", I),
            ("claimed_by", T),
            ("lease_token", I),
            ("idempotency_key", T),
            ("compatibility", J),
            ("last_error", T),
            ("summary", J),
            ("created_at", I),
            ("updated_at", I),
            ("started_at", I),
            ("finished_at", I),
            ("lapses", I),
        ],
        order: "id",
        identity: true,
    },
    Table {
        name: "task_logs",
        report: |r| &mut r.logs,
        columns: &[
            ("task_id", I),
            ("at", I),
            ("level", T),
            ("event", T),
            ("message", T),
            ("details", J),
        ],
        order: "task_id, {log_order}",
        identity: false,
    },
    Table {
        name: "workers",
        report: |r| &mut r.workers,
        columns: &[
            ("id", T),
            ("hostname", T),
            ("pid", I),
            ("capabilities", J),
            ("strategy", T),
            ("started_at", I),
            ("heartbeat_at", I),
            ("current_task_id", I),
            ("tasks_done", I),
            ("tasks_failed", I),
            ("status", T),
        ],
        order: "id",
        identity: false,
    },
    Table {
        name: "results",
        report: |r| &mut r.results,
        columns: &[
            ("id", I),
            ("platform", T),
            ("source_id", T),
            ("title", T),
            ("description", T),
            ("url", T),
            ("tags", J),
            ("channel", T),
            ("channel_id", T),
            ("published_at", I),
            ("duration", I),
            ("views", I),
            ("likes", I),
            ("comments", I),
            ("extra", J),
            ("first_seen_at", I),
            ("last_seen_at", I),
            ("last_task_id", I),
            ("first_views", I),
            ("first_metrics_at", I),
            ("metrics_at", I),
            ("video_format", T),
            ("outlier_score", R),
            ("outlier_basis", T),
            ("outlier_baseline", R),
            ("outlier_sample", I),
            ("outlier_views", I),
            ("views_7d", I),
            ("views_30d", I),
            ("growth_1h", R),
            ("growth_1h_span", I),
            ("growth_24h", R),
            ("growth_24h_span", I),
            ("growth_7d", R),
            ("growth_7d_span", I),
            ("growth_30d", R),
            ("growth_30d_span", I),
            ("last_source", T),
            ("last_rank", I),
        ],
        order: "id",
        identity: true,
    },
    Table {
        name: "result_sightings",
        report: |r| &mut r.sightings,
        columns: &[
            ("id", I),
            ("result_id", I),
            ("source", T),
            ("task_id", I),
            ("rank", I),
            ("seen_at", I),
        ],
        order: "id",
        identity: true,
    },
    Table {
        name: "result_metrics",
        report: |r| &mut r.metrics,
        columns: &[
            ("id", I),
            ("result_id", I),
            ("captured_at", I),
            ("views", I),
            ("likes", I),
            ("comments", I),
        ],
        order: "id",
        identity: true,
    },
    Table {
        name: "quota_usage",
        report: |r| &mut r.quota,
        columns: &[
            ("bucket", T),
            ("window_end", I),
            ("used", I),
            ("exhausted_until", I),
        ],
        order: "bucket",
        identity: false,
    },
    Table {
        name: "schedules",
        report: |r| &mut r.schedules,
        columns: &[
            ("id", I),
            ("name", T),
            ("type", T),
            ("params", J),
            ("priority", I),
            ("every_secs", I),
            ("cron", T),
            ("time_zone", T),
            ("jitter_secs", I),
            ("paused", B),
            ("next_slot", I),
            ("last_slot", I),
            ("last_task", I),
            ("created_at", I),
        ],
        order: "id",
        identity: true,
    },
    Table {
        name: "channel_baselines",
        report: |r| &mut r.baselines,
        columns: &[
            ("channel_id", T),
            ("format", T),
            ("basis", T),
            ("median_views", R),
            ("sample", I),
            ("computed_at", I),
        ],
        order: "channel_id, format, basis",
        identity: false,
    },
];

/// One value in transit.
#[derive(Debug, Clone)]
enum Val {
    Int(Option<i64>),
    Text(Option<String>),
    Json(Option<Value>),
    Bool(Option<bool>),
    Real(Option<f64>),
}

type Rows = Vec<Vec<Val>>;

fn column_list(t: &Table) -> String {
    t.columns
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ")
}

fn sqlite_err(e: rusqlite::Error) -> PortError {
    PortError::Unavailable(format!("SQLite: {e}"))
}

/// Whether SQLite's task_logs orders by `seq` (newer schema) or by rowid `id`.
fn sqlite_log_order(conn: &rusqlite::Connection) -> Result<&'static str, PortError> {
    let has_seq: i64 = conn
        .query_row(
            "SELECT count(*) FROM pragma_table_info('task_logs') WHERE name = 'seq'",
            [],
            |r| r.get(0),
        )
        .map_err(sqlite_err)?;
    Ok(if has_seq > 0 { "seq" } else { "id" })
}

/// Whether SQLite table `table` has column `column`.
fn sqlite_has_column(
    conn: &rusqlite::Connection,
    table: &str,
    column: &str,
) -> Result<bool, PortError> {
    conn.query_row(
        "SELECT count(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
        [table, column],
        |r| r.get(0),
    )
    .map_err(sqlite_err)
}

/// Whether the SQLite schema has `name` (a table or a view).
fn sqlite_has(conn: &rusqlite::Connection, name: &str) -> Result<bool, PortError> {
    conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_schema WHERE name = ?1",
        [name],
        |r| r.get(0),
    )
    .map_err(sqlite_err)
}

/// The columns to read from SQLite table `t`: a column a schema older than this binary's
/// lacks reads as its default (`task_queue.lapses`, schema v3, as 0).
fn sqlite_select_list(conn: &rusqlite::Connection, t: &Table) -> Result<String, PortError> {
    // A source at an older schema lacks the columns later migrations added: the lapse count
    // reads as 0, the scores and growth as absent (NULL).
    let mut cols = Vec::with_capacity(t.columns.len());
    for (c, _) in t.columns {
        let present: bool = conn
            .query_row(
                "SELECT count(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
                [t.name, c],
                |r| r.get(0),
            )
            .map_err(sqlite_err)?;
        match (present, *c) {
            (true, _) => cols.push((*c).to_owned()),
            (false, "lapses") => cols.push(format!("0 AS {c}")),
            (false, _) => cols.push(format!("NULL AS {c}")),
        }
    }
    Ok(cols.join(", "))
}

fn read_sqlite(conn: &rusqlite::Connection) -> Result<Vec<Rows>, PortError> {
    let log_order = sqlite_log_order(conn)?;
    // Schema v2 keeps the current attempt's entries on the task row; the view adds them.
    let log_source = if sqlite_has(conn, "task_log_entries")? {
        "task_log_entries"
    } else {
        "task_logs"
    };
    let mut all = Vec::new();
    for t in TABLES {
        if matches!(t.name, "schedules" | "channel_baselines") && !sqlite_has(conn, t.name)? {
            // A schema before v5 has no schedules, one before v4 no baselines: none to copy.
            all.push(Vec::new());
            continue;
        }
        let source = if t.name == "task_logs" {
            log_source
        } else {
            t.name
        };
        let sql = format!(
            "SELECT {} FROM {source} ORDER BY {}",
            sqlite_select_list(conn, t)?,
            t.order.replace("{log_order}", log_order)
        );
        let mut stmt = conn.prepare(&sql).map_err(sqlite_err)?;
        let mut rows = stmt.query([]).map_err(sqlite_err)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(sqlite_err)? {
            let mut row = Vec::with_capacity(t.columns.len());
            for (i, (name, kind)) in t.columns.iter().enumerate() {
                row.push(match kind {
                    Kind::Int => Val::Int(r.get(i).map_err(sqlite_err)?),
                    Kind::Real => Val::Real(r.get(i).map_err(sqlite_err)?),
                    Kind::Text => Val::Text(r.get(i).map_err(sqlite_err)?),
                    Kind::Bool => Val::Bool(
                        r.get::<_, Option<i64>>(i)
                            .map_err(sqlite_err)?
                            .map(|b| b != 0),
                    ),
                    Kind::Json => {
                        let text: Option<String> = r.get(i).map_err(sqlite_err)?;
                        Val::Json(text.map(|s| serde_json::from_str(&s)).transpose().map_err(
                            |e| {
                                PortError::Unavailable(format!(
                                    "{}.{name} holds invalid JSON: {e}",
                                    t.name
                                ))
                            },
                        )?)
                    }
                });
            }
            out.push(row);
        }
        all.push(out);
    }
    Ok(all)
}

fn write_sqlite(
    conn: &mut rusqlite::Connection,
    data: &[Rows],
    force: bool,
) -> Result<(), CopyError> {
    let tx = conn.transaction().map_err(sqlite_err)?;
    let rows = sqlite_rows(&tx)?;
    if rows > 0 && !force {
        return Err(CopyError::TargetNotEmpty {
            target: "SQLite database".into(),
            rows,
        });
    }
    for t in TABLES.iter().rev() {
        tx.execute(&format!("DELETE FROM {}", t.name), [])
            .map_err(sqlite_err)?;
    }
    let with_seq = sqlite_log_order(&tx)? == "seq";
    for (t, rows) in TABLES.iter().zip(data) {
        let mut cols = column_list(t);
        let mut n = t.columns.len();
        if t.name == "task_logs" && with_seq {
            cols.push_str(", seq");
            n += 1;
        }
        let marks = (1..=n)
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut stmt = tx
            .prepare(&format!("INSERT INTO {} ({cols}) VALUES ({marks})", t.name))
            .map_err(sqlite_err)?;
        let mut seq = (i64::MIN, 0i64);
        for row in rows {
            let mut args: Vec<SqlValue> = row
                .iter()
                .map(|v| match v {
                    Val::Int(Some(i)) => SqlValue::Integer(*i),
                    Val::Text(Some(s)) => SqlValue::Text(s.clone()),
                    Val::Json(Some(j)) => SqlValue::Text(j.to_string()),
                    Val::Bool(Some(b)) => SqlValue::Integer(i64::from(*b)),
                    Val::Real(Some(x)) => SqlValue::Real(*x),
                    _ => SqlValue::Null,
                })
                .collect();
            if t.name == "task_logs" && with_seq {
                let task = match &row[0] {
                    Val::Int(Some(id)) => *id,
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
    }
    let log_seq: i64 = tx
        .query_row(
            "SELECT count(*) FROM pragma_table_info('task_queue') WHERE name = 'log_seq'",
            [],
            |r| r.get(0),
        )
        .map_err(sqlite_err)?;
    if log_seq > 0 {
        // Schema v2 numbers a task's next log entry from the row's log_seq.
        tx.execute(
            "UPDATE task_queue SET log_seq = coalesce((SELECT max(seq) FROM task_logs WHERE task_id = task_queue.id), 0)",
            [],
        )
        .map_err(sqlite_err)?;
    }
    let counts = sqlite_counts(&tx)?;
    verify(data, &counts)?;
    tx.commit().map_err(sqlite_err)?;
    Ok(())
}

fn sqlite_counts(conn: &rusqlite::Connection) -> Result<Vec<u64>, PortError> {
    TABLES
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

fn sqlite_rows(conn: &rusqlite::Connection) -> Result<u64, PortError> {
    Ok(sqlite_counts(conn)?.iter().sum())
}

fn verify(data: &[Rows], target: &[u64]) -> Result<CopyReport, CopyError> {
    let mut report = CopyReport::default();
    for ((t, rows), &n) in TABLES.iter().zip(data).zip(target) {
        let source_rows = rows.len() as u64;
        if source_rows != n {
            return Err(CopyError::CountMismatch {
                table: t.name,
                source_rows,
                target_rows: n,
            });
        }
        *(t.report)(&mut report) = n;
    }
    Ok(report)
}

async fn pg_counts(c: &impl deadpool_postgres::GenericClient) -> Result<Vec<u64>, PortError> {
    let mut out = Vec::new();
    for t in TABLES {
        let n: i64 = c
            .query_one(&format!("SELECT count(*) FROM {}", t.name), &[])
            .await
            .map_err(map_err)?
            .get(0);
        out.push(u64::try_from(n).unwrap_or(0));
    }
    Ok(out)
}

async fn read_pg(store: &PostgresStore) -> Result<Vec<Rows>, PortError> {
    let mut client = store.client().await?;
    // One snapshot for every table.
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(map_err)?;
    let mut all = Vec::new();
    for t in TABLES {
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {}",
            column_list(t),
            t.name,
            t.order.replace("{log_order}", "id")
        );
        let rows = tx.query(&sql, &[]).await.map_err(map_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut row = Vec::with_capacity(t.columns.len());
            for (i, (_, kind)) in t.columns.iter().enumerate() {
                row.push(match kind {
                    Kind::Int => Val::Int(crate::codec::get(r, i)?),
                    Kind::Text => Val::Text(crate::codec::get(r, i)?),
                    Kind::Json => Val::Json(crate::codec::get(r, i)?),
                    Kind::Bool => Val::Bool(crate::codec::get(r, i)?),
                    Kind::Real => Val::Real(crate::codec::get(r, i)?),
                });
            }
            out.push(row);
        }
        all.push(out);
    }
    tx.commit().await.map_err(map_err)?;
    Ok(all)
}

async fn write_pg(
    store: &PostgresStore,
    data: &[Rows],
    force: bool,
) -> Result<CopyReport, CopyError> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(map_err)?;
    let rows: u64 = pg_counts(&tx).await?.iter().sum();
    if rows > 0 && !force {
        return Err(CopyError::TargetNotEmpty {
            target: "PostgreSQL database".into(),
            rows,
        });
    }
    for t in TABLES.iter().rev() {
        tx.execute(&format!("DELETE FROM {}", t.name), &[])
            .await
            .map_err(map_err)?;
    }
    for (t, rows) in TABLES.iter().zip(data) {
        let types: Vec<Type> = t
            .columns
            .iter()
            .map(|(_, k)| match k {
                Kind::Int => Type::INT8,
                Kind::Text => Type::TEXT,
                Kind::Json => Type::JSONB,
                Kind::Bool => Type::BOOL,
                Kind::Real => Type::FLOAT8,
            })
            .collect();
        let sink = tx
            .copy_in(&format!(
                "COPY {} ({}) FROM STDIN BINARY",
                t.name,
                column_list(t)
            ))
            .await
            .map_err(map_err)?;
        let writer = BinaryCopyInWriter::new(sink, &types);
        pin_mut!(writer);
        for row in rows {
            let values: Vec<&(dyn ToSql + Sync)> = row
                .iter()
                .map(|v| match v {
                    Val::Int(x) => x as &(dyn ToSql + Sync),
                    Val::Text(x) => x as &(dyn ToSql + Sync),
                    Val::Json(x) => x as &(dyn ToSql + Sync),
                    Val::Bool(x) => x as &(dyn ToSql + Sync),
                    Val::Real(x) => x as &(dyn ToSql + Sync),
                })
                .collect();
            writer.as_mut().write(&values).await.map_err(map_err)?;
        }
        writer.finish().await.map_err(map_err)?;
        if t.identity {
            tx.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{0}', 'id'), coalesce((SELECT max(id) FROM {0}), 0) + 1, false)",
                    t.name
                ),
                &[],
            )
            .await
            .map_err(map_err)?;
        }
    }
    let report = verify(data, &pg_counts(&tx).await?)?;
    tx.commit().await.map_err(map_err)?;
    Ok(report)
}

fn open_sqlite(
    path: &Path,
    migrate: bool,
    clock: Arc<dyn Clock>,
) -> Result<SqliteStore, CopyError> {
    let mut o = SqliteOptions::new(path);
    o.migrate = migrate;
    Ok(SqliteStore::open(o, clock)?)
}

/// Copies the SQLite queue at `source` into `target`, verifying every table's count.
///
/// # Errors
/// [`CopyError::TargetNotEmpty`] unless `force`; `CountMismatch`; store errors. The target
/// is unchanged on any error.
pub async fn copy_sqlite_to_postgres(
    source: &Path,
    target: &PostgresStore,
    force: bool,
) -> Result<CopyReport, CopyError> {
    let store = open_sqlite(source, false, target.inner.clock.clone())?;
    let clock = target.inner.clock.clone();
    let data = tokio::task::spawn_blocking(move || -> Result<Vec<Rows>, CopyError> {
        if store.with_connection(|c| sqlite_has_column(c, "results", "platform"))? {
            return Ok(store.with_connection(|c| read_sqlite(c))?);
        }
        // A source before one record per video (SQLite schema v8): its rows of one video
        // are merged by that migration, run on a backup so the source stays as it is.
        let dir = tempfile::tempdir().map_err(|e| {
            PortError::Unavailable(format!(
                "no temporary directory to upgrade a copy of the source in: {e}"
            ))
        })?;
        let upgraded = dir.path().join("upgraded.db");
        prismq_storage_sqlite::ops::backup(&store, &upgraded).map_err(|e| {
            PortError::Unavailable(format!("backing up the source to upgrade it failed: {e}"))
        })?;
        drop(store);
        let copy = open_sqlite(&upgraded, true, clock)?;
        Ok(copy.with_connection(|c| read_sqlite(c))?)
    })
    .await
    .map_err(|e| PortError::Unavailable(format!("the SQLite reader stopped: {e}")))??;
    write_pg(target, &data, force).await
}

/// Copies `source` into the SQLite queue at `target` (created and migrated if needed),
/// verifying every table's count.
///
/// # Errors
/// As [`copy_sqlite_to_postgres`].
pub async fn copy_postgres_to_sqlite(
    source: &PostgresStore,
    target: &Path,
    force: bool,
) -> Result<CopyReport, CopyError> {
    let data = read_pg(source).await?;
    let store = open_sqlite(target, true, source.inner.clock.clone())?;
    tokio::task::spawn_blocking(move || {
        let mut result = Ok(());
        store
            .with_connection(|c| {
                result = write_sqlite(c, &data, force);
                Ok(())
            })
            .map_err(CopyError::Port)?;
        result?;
        let counts = store.with_connection(|c| sqlite_counts(c))?;
        verify(&data, &counts)
    })
    .await
    .map_err(|e| PortError::Unavailable(format!("the SQLite writer stopped: {e}")))?
}
