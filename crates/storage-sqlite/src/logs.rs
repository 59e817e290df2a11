//! The task log: lifecycle events written inside the queue's transactions, and handler
//! progress notes. Entries the task row already holds are read from it rather than stored:
//! `enqueued` is the row's `created_at`, and the current attempt's `claimed`, `started` and
//! `completed` are its claim and finish columns (view `task_log_pending`, schema v2) until
//! the attempt ends any other way, when [`write_pending`] stores them. A task that succeeds
//! first time costs no log rows at all.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::Value;

use prismq_domain::ports::{LogLevel, LogRecord, NewLogEntry, TaskEvent, TaskLog};
use prismq_domain::task::TaskId;
use prismq_domain::PortError;

use crate::codec::{json_opt, ts};
use crate::error::map_err;
use crate::SqliteStore;

/// Appends one log row inside `tx`, numbered after the task's last entry (the row's
/// `log_seq`).
///
/// # Errors
/// `NotFound` when the task does not exist.
pub(crate) fn insert_log(
    tx: &Transaction<'_>,
    task: TaskId,
    at: i64,
    level: LogLevel,
    event: TaskEvent,
    message: &str,
    details: &Value,
) -> Result<(), PortError> {
    let details = if details.is_null() {
        None
    } else {
        Some(details.to_string())
    };
    let seq: i64 = tx
        .prepare_cached(
            "UPDATE task_queue SET log_seq = log_seq + 1 WHERE id = ?1 RETURNING log_seq",
        )
        .and_then(|mut s| s.query_row([task.0], |r| r.get(0)).optional())
        .map_err(map_err)?
        .ok_or_else(|| PortError::NotFound(format!("task {task}")))?;
    tx.prepare_cached(
        "INSERT INTO task_logs (task_id, seq, at, level, event, message, details)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            task.0,
            seq,
            at,
            level.as_str(),
            event.as_str(),
            message,
            details
        ])
    })
    .map_err(map_err)?;
    Ok(())
}

/// Stores the current attempt's `claimed` and `started` entries, until now read from the
/// task row, before a write that ends the attempt or overwrites its claim columns. A no-op
/// when they are already stored. Their numbers were reserved at the claim, so they sort
/// before any note written during the attempt.
pub(crate) fn write_pending(tx: &Transaction<'_>, task: TaskId) -> Result<(), PortError> {
    tx.prepare_cached(
        "INSERT INTO task_logs (task_id, seq, at, level, event, message, details)
         SELECT task_id, seq, at, level, event, message, details FROM task_log_pending
         WHERE task_id = ?1 AND event <> 'completed'",
    )
    .and_then(|mut s| s.execute([task.0]))
    .map_err(map_err)?;
    tx.prepare_cached(
        "UPDATE task_queue SET claim_seq = NULL WHERE id = ?1 AND claim_seq IS NOT NULL",
    )
    .and_then(|mut s| s.execute([task.0]))
    .map_err(map_err)?;
    Ok(())
}

fn level_of(s: &str) -> LogLevel {
    match s {
        "debug" => LogLevel::Debug,
        "warn" => LogLevel::Warn,
        "error" => LogLevel::Error,
        _ => LogLevel::Info,
    }
}

impl SqliteStore {
    /// Blocking [`TaskLog::append`].
    ///
    /// # Errors
    /// As the port.
    pub fn append_blocking(&self, task: TaskId, entry: &NewLogEntry) -> Result<(), PortError> {
        let now = self.now_ms();
        self.write(|tx| {
            insert_log(
                tx,
                task,
                now,
                entry.level,
                entry.event,
                &entry.message,
                &entry.details,
            )
        })
    }

    /// Blocking [`TaskLog::list`].
    ///
    /// # Errors
    /// As the port.
    pub fn log_blocking(&self, task: TaskId) -> Result<Vec<LogRecord>, PortError> {
        self.read(|conn| {
            let created: Option<i64> = conn
                .prepare_cached("SELECT created_at FROM task_queue WHERE id = ?1")
                .and_then(|mut s| s.query_row([task.0], |r| r.get(0)).optional())
                .map_err(map_err)?;
            let created = created.ok_or_else(|| PortError::NotFound(format!("task {task}")))?;
            let mut out = vec![LogRecord {
                task_id: task,
                at: ts(0, created).map_err(map_err)?,
                level: LogLevel::Info,
                event: TaskEvent::Enqueued,
                message: "enqueued".into(),
                details: Value::Null,
            }];
            let mut stmt = conn
                .prepare_cached("SELECT at, level, event, message, details FROM task_log_entries WHERE task_id = ?1 ORDER BY seq")
                .map_err(map_err)?;
            let rows = stmt
                .query_map([task.0], |r| {
                    let event: String = r.get(2)?;
                    let level: String = r.get(1)?;
                    Ok(LogRecord {
                        task_id: task,
                        at: ts(0, r.get(0)?)?,
                        level: level_of(&level),
                        event: TaskEvent::parse(&event).unwrap_or(TaskEvent::Progress),
                        message: r.get(3)?,
                        details: json_opt(r, 4)?.unwrap_or(Value::Null),
                    })
                })
                .map_err(map_err)?;
            for row in rows {
                out.push(row.map_err(map_err)?);
            }
            Ok(out)
        })
    }
}

#[async_trait]
impl TaskLog for SqliteStore {
    async fn append(&self, task: TaskId, entry: NewLogEntry) -> Result<(), PortError> {
        self.blocking(move |s| s.append_blocking(task, &entry))
            .await
    }

    async fn list(&self, task: TaskId) -> Result<Vec<LogRecord>, PortError> {
        self.blocking(move |s| s.log_blocking(task)).await
    }
}
