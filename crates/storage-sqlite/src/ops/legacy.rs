//! Import from the database of the earlier Python implementation (background 000): its
//! `task_queue` (task_type, parameters, priority, retry_count / max_retries, six statuses,
//! ISO-8601 text times), `task_logs` and `youtube_results`; `worker_heartbeats` is counted
//! but not imported (workers register themselves when they start).
//!
//! The rules:
//! - Everything happens in one IMMEDIATE transaction on the target: any error rolls it all
//!   back. `dry_run` does the whole import and rolls it back, so its counts are exact.
//! - A task keeps its status, except `claimed` and `running`, which come back `queued` (no
//!   worker holds them any more). `retry_count` becomes `attempts`, `max_retries` becomes
//!   `max_attempts` (clamped to 1–100), `error_message` the last error, `result_data` the
//!   summary (as a JSON string when it is not JSON).
//! - Each imported task gets the idempotency key `legacy:<old id>`, so a second run imports
//!   nothing new. A task with that key but another type or creation time (imported from a
//!   different legacy database) is reported and skipped.
//! - Logs are imported for the tasks imported in this run; the legacy `created` event is
//!   dropped because PrismQ derives `enqueued` from the task's creation time.
//! - Results are deduplicated on (source, source_id) against what the target holds: an
//!   existing result is left as it is.
//! - A malformed row (bad JSON, unknown status, an unreadable time, a value out of range) is
//!   reported by table and id and skipped; the rest is imported.

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use prismq_domain::task::TaskId;
use prismq_domain::PortError;

use super::legacy_map::{self, legacy_key};
use super::rows::{insert_result, insert_task};
use super::{sql, OpsError};
use crate::error::map_err;
use crate::SqliteStore;

/// A legacy row that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// `task_queue`, `task_logs` or `youtube_results`.
    pub table: &'static str,
    /// The row's id in the legacy database.
    pub id: i64,
    /// What was wrong.
    pub reason: String,
}

/// What [`import_legacy`] did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// The legacy file.
    pub source: PathBuf,
    /// True when nothing was written.
    pub dry_run: bool,
    /// Legacy tasks read.
    pub tasks_found: u64,
    /// Tasks imported.
    pub tasks_imported: u64,
    /// Of those, claimed or running tasks put back in the queue.
    pub tasks_requeued: u64,
    /// Tasks an earlier run imported already.
    pub tasks_already_imported: u64,
    /// Legacy log rows read.
    pub logs_found: u64,
    /// Log entries imported.
    pub logs_imported: u64,
    /// Log rows not imported because their task was not imported in this run (already
    /// imported, skipped, or missing), or because they record the creation event.
    pub logs_not_needed: u64,
    /// Legacy results read.
    pub results_found: u64,
    /// Results imported.
    pub results_imported: u64,
    /// Results already in the target (same source and source id), left as they are.
    pub results_duplicate: u64,
    /// Rows of worker_heartbeats, which are not imported.
    pub worker_heartbeats_ignored: u64,
    /// Malformed or conflicting rows, by table and id.
    pub skipped: Vec<Skipped>,
}

fn columns(old: &Connection, table: &str) -> Result<Vec<String>, PortError> {
    let mut stmt = old
        .prepare("SELECT name FROM pragma_table_info(?1)")
        .map_err(map_err)?;
    let rows = stmt.query_map([table], |r| r.get(0)).map_err(map_err)?;
    rows.collect::<Result<Vec<String>, _>>().map_err(map_err)
}

/// `name` if the table has it, else the first alternative it has, else `NULL`.
fn pick(cols: &[String], names: &[&str]) -> String {
    names
        .iter()
        .find(|n| cols.iter().any(|c| c.eq_ignore_ascii_case(n)))
        .map_or_else(|| "NULL".to_owned(), |n| format!("\"{n}\""))
}

fn open_legacy(path: &Path) -> Result<Connection, OpsError> {
    if !path.is_file() {
        return Err(OpsError::io(
            "reading",
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        ));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(sql)?;
    let not_legacy = |reason: String| OpsError::NotLegacy {
        path: path.to_path_buf(),
        reason,
    };
    let cols = columns(&conn, "task_queue")
        .map_err(|e| not_legacy(format!("it cannot be read as SQLite: {e}")))?;
    let required = [
        "id",
        "task_type",
        "parameters",
        "priority",
        "status",
        "retry_count",
        "max_retries",
        "created_at",
    ];
    let missing: Vec<_> = required
        .iter()
        .filter(|r| !cols.iter().any(|c| c.eq_ignore_ascii_case(r)))
        .collect();
    if cols.is_empty() {
        return Err(not_legacy("it has no task_queue table".into()));
    }
    if !missing.is_empty() {
        return Err(not_legacy(format!(
            "task_queue lacks the columns {missing:?}"
        )));
    }
    Ok(conn)
}

fn same_file(a: &Path, b: &Path) -> bool {
    matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y)
}

/// Imports the legacy database at `old` into `store`'s database (see the module docs for
/// the rules). With `dry_run`, everything is done and then rolled back.
///
/// # Errors
/// `SameFile` when `old` is the target; `Io` when it does not exist; `NotLegacy` when it has
/// no Python-era `task_queue`; a port error from either database (nothing is written).
pub fn import_legacy(
    store: &SqliteStore,
    old: &Path,
    dry_run: bool,
) -> Result<ImportReport, OpsError> {
    if same_file(old, &store.options().path) {
        return Err(OpsError::SameFile {
            path: old.to_path_buf(),
        });
    }
    let legacy = open_legacy(old)?;
    let mut report = ImportReport {
        source: old.to_path_buf(),
        dry_run,
        ..ImportReport::default()
    };
    store.with_connection(|conn| {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map_err)?;
        let ids = import_tasks(&legacy, &tx, &mut report)?;
        import_logs(&legacy, &tx, &ids, &mut report)?;
        import_results(&legacy, &tx, &mut report)?;
        report.worker_heartbeats_ignored = count_if_exists(&legacy, "worker_heartbeats")?;
        if dry_run {
            tx.rollback().map_err(map_err)
        } else {
            tx.commit().map_err(map_err)
        }
    })?;
    Ok(report)
}

fn has_table(old: &Connection, table: &str) -> Result<bool, PortError> {
    old.query_row(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [table],
        |_| Ok(()),
    )
    .optional()
    .map(|o| o.is_some())
    .map_err(map_err)
}

fn count_if_exists(old: &Connection, table: &str) -> Result<u64, PortError> {
    if !has_table(old, table)? {
        return Ok(0);
    }
    old.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n.max(0) as u64)
    .map_err(map_err)
}

/// Streams `sql` over the legacy database, handing each row's values to `f`.
fn each_row(
    old: &Connection,
    sql: &str,
    mut f: impl FnMut(Vec<Sql>) -> Result<(), PortError>,
) -> Result<(), PortError> {
    let mut stmt = old.prepare(sql).map_err(map_err)?;
    let n = stmt.column_count();
    let mut rows = stmt.query([]).map_err(map_err)?;
    while let Some(row) = rows.next().map_err(map_err)? {
        let values = (0..n)
            .map(|i| row.get::<_, Sql>(i))
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_err)?;
        f(values)?;
    }
    Ok(())
}

fn row_id(v: &Sql) -> i64 {
    match v {
        Sql::Integer(i) => *i,
        _ => -1,
    }
}

/// Imports the tasks; returns legacy id → new id for the tasks imported in this run.
fn import_tasks(
    old: &Connection,
    tx: &Transaction<'_>,
    report: &mut ImportReport,
) -> Result<HashMap<i64, i64>, PortError> {
    let cols = columns(old, "task_queue")?;
    let select: Vec<String> = legacy_map::TASK_COLUMNS
        .iter()
        .map(|c| pick(&cols, &[c]))
        .collect();
    let sql = format!("SELECT {} FROM task_queue ORDER BY id", select.join(", "));
    let mut ids = HashMap::new();
    each_row(old, &sql, |v| {
        report.tasks_found += 1;
        let id = row_id(&v[0]);
        let (row, requeued) = match legacy_map::task_row(&v) {
            Ok(x) => x,
            Err(reason) => {
                report.skipped.push(Skipped {
                    table: "task_queue",
                    id,
                    reason,
                });
                return Ok(());
            }
        };
        match insert_task(tx, &row).map_err(map_err)? {
            Some(new_id) => {
                ids.insert(id, new_id);
                report.tasks_imported += 1;
                report.tasks_requeued += u64::from(requeued);
            }
            None => {
                let same: Option<(String, i64)> = tx
                    .query_row(
                        concat!(
                            "SELECT ",
                            crate::types::type_name!(),
                            ", created_at FROM task_queue WHERE idempotency_key = ?1"
                        ),
                        [legacy_key(id)],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()
                    .map_err(map_err)?;
                if same == Some((row.task_type.clone(), row.created_at)) {
                    report.tasks_already_imported += 1;
                } else {
                    report.skipped.push(Skipped {
                        table: "task_queue",
                        id,
                        reason: format!("the target already holds a different task with key {} (imported from another legacy database?)", legacy_key(id)),
                    });
                }
            }
        }
        Ok(())
    })?;
    Ok(ids)
}

fn import_logs(
    old: &Connection,
    tx: &Transaction<'_>,
    ids: &HashMap<i64, i64>,
    report: &mut ImportReport,
) -> Result<(), PortError> {
    if !has_table(old, "task_logs")? {
        return Ok(());
    }
    let cols = columns(old, "task_logs")?;
    let id_col = match pick(&cols, &["id", "log_id"]) {
        c if c == "NULL" => "rowid".to_owned(),
        c => c,
    };
    let sql = format!(
        "SELECT {id_col}, {}, {}, {}, {}, {}, {} FROM task_logs ORDER BY {id_col}",
        pick(&cols, &["task_id"]),
        pick(&cols, &["timestamp", "at_utc", "created_at", "at"]),
        pick(&cols, &["event_type", "event"]),
        pick(&cols, &["level"]),
        pick(&cols, &["message"]),
        pick(&cols, &["details", "metadata"]),
    );
    each_row(old, &sql, |v| {
        report.logs_found += 1;
        let Some(task) = ids.get(&row_id(&v[1])) else {
            report.logs_not_needed += 1;
            return Ok(());
        };
        match legacy_map::log_row(&v) {
            Ok(None) => report.logs_not_needed += 1,
            Ok(Some((at, level, event, message, details))) => {
                crate::logs::insert_log(tx, TaskId(*task), at, level, event, &message, &details)?;
                report.logs_imported += 1;
            }
            Err(reason) => report.skipped.push(Skipped {
                table: "task_logs",
                id: row_id(&v[0]),
                reason,
            }),
        }
        Ok(())
    })
}

fn import_results(
    old: &Connection,
    tx: &Transaction<'_>,
    report: &mut ImportReport,
) -> Result<(), PortError> {
    if !has_table(old, "youtube_results")? {
        return Ok(());
    }
    let cols = columns(old, "youtube_results")?;
    let names = [
        "id",
        "source",
        "source_id",
        "title",
        "description",
        "tags",
        "metrics",
        "created_at",
        "updated_at",
    ];
    let select: Vec<String> = names.iter().map(|c| pick(&cols, &[c])).collect();
    let sql = format!(
        "SELECT {} FROM youtube_results ORDER BY id",
        select.join(", ")
    );
    each_row(old, &sql, |v| {
        report.results_found += 1;
        match legacy_map::result_row(&v) {
            Ok((item, first, last)) => {
                match insert_result(tx, &item, first, last, None).map_err(map_err)? {
                    Some(_) => report.results_imported += 1,
                    None => report.results_duplicate += 1,
                }
            }
            Err(reason) => report.skipped.push(Skipped {
                table: "youtube_results",
                id: row_id(&v[0]),
                reason,
            }),
        }
        Ok(())
    })
}
