//! Conversions between rows and domain values: timestamps as integer milliseconds, JSON
//! columns, and the task row.

use rusqlite::types::Type;
use rusqlite::Row;
use serde_json::Value;

use prismq_domain::task::{Compatibility, LeaseToken, Priority, Task, TaskId, TaskType, WorkerId};
use prismq_domain::{TaskStatus, Timestamp};

/// The task columns, in the order [`task_from_row`] reads them, as a literal for `concat!`.
macro_rules! task_columns {
    () => {
        "id, type, params, priority, status, attempts, max_attempts, run_after, \
         lease_expires_at, claimed_by, lease_token, idempotency_key, compatibility, last_error, summary, \
         created_at, updated_at, finished_at"
    };
}
pub(crate) use task_columns;

/// The task columns, in the order [`task_from_row`] reads them.
pub(crate) const TASK_COLUMNS: &str = task_columns!();

fn conv_err(idx: usize, ty: Type, msg: impl Into<String>) -> rusqlite::Error {
    let msg: String = msg.into();
    rusqlite::Error::FromSqlConversionFailure(idx, ty, msg.into())
}

pub(crate) fn ts(idx: usize, ms: i64) -> rusqlite::Result<Timestamp> {
    Timestamp::from_millisecond(ms).map_err(|e| conv_err(idx, Type::Integer, e.to_string()))
}

pub(crate) fn ts_opt(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Timestamp>> {
    row.get::<_, Option<i64>>(idx)?
        .map(|ms| ts(idx, ms))
        .transpose()
}

pub(crate) fn json(row: &Row<'_>, idx: usize) -> rusqlite::Result<Value> {
    let text: String = row.get(idx)?;
    serde_json::from_str(&text).map_err(|e| conv_err(idx, Type::Text, e.to_string()))
}

pub(crate) fn json_opt(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Value>> {
    let text: Option<String> = row.get(idx)?;
    text.map(|t| serde_json::from_str(&t).map_err(|e| conv_err(idx, Type::Text, e.to_string())))
        .transpose()
}

pub(crate) fn status(idx: usize, s: &str) -> rusqlite::Result<TaskStatus> {
    s.parse()
        .map_err(|e: prismq_domain::ValidationError| conv_err(idx, Type::Text, e.to_string()))
}

/// Reads a task from a row selected with [`TASK_COLUMNS`].
pub(crate) fn task_from_row(row: &Row<'_>) -> rusqlite::Result<Task> {
    let task_type: String = row.get(1)?;
    let priority: i64 = row.get(3)?;
    let status_text: String = row.get(4)?;
    let claimed_by: Option<String> = row.get(9)?;
    let compat = json(row, 12)?;
    Ok(Task {
        id: TaskId(row.get(0)?),
        task_type: TaskType::new(task_type).map_err(|e| conv_err(1, Type::Text, e.to_string()))?,
        params: json(row, 2)?,
        priority: Priority::new(priority).map_err(|e| conv_err(3, Type::Integer, e.to_string()))?,
        status: status(4, &status_text)?,
        attempts: row.get(5)?,
        max_attempts: row.get(6)?,
        run_after: ts(7, row.get(7)?)?,
        lease_expires_at: ts_opt(row, 8)?,
        claimed_by: claimed_by
            .map(WorkerId::new)
            .transpose()
            .map_err(|e| conv_err(9, Type::Text, e.to_string()))?,
        lease_token: row.get::<_, Option<i64>>(10)?.map(LeaseToken),
        idempotency_key: row.get(11)?,
        compatibility: serde_json::from_value::<Compatibility>(compat)
            .map_err(|e| conv_err(12, Type::Text, e.to_string()))?,
        last_error: row.get(13)?,
        summary: json_opt(row, 14)?,
        created_at: ts(15, row.get(15)?)?,
        updated_at: ts(16, row.get(16)?)?,
        finished_at: ts_opt(row, 17)?,
    })
}

/// A fresh random non-zero lease token.
pub(crate) fn new_token() -> LeaseToken {
    loop {
        let t: i64 = rand::random();
        if t != 0 {
            return LeaseToken(t);
        }
    }
}
