//! Conversions between rows and domain values: timestamps as integer milliseconds, JSON
//! columns, and the task row.

use rusqlite::types::Type;
use rusqlite::Row;
use serde_json::Value;

use prismq_domain::task::{Compatibility, LeaseToken, Priority, Task, TaskId, TaskType, WorkerId};
use prismq_domain::{TaskStatus, Timestamp};

/// The task columns, in the order [`task_from_row`] reads them, as a literal for `concat!`.
/// The type's name is looked up from its interned id (schema v12: `task_types`).
macro_rules! task_columns {
    () => {
        concat!(
            "id, ",
            $crate::types::type_name!(),
            ", params, priority, status, attempts, max_attempts, run_after, lease_expires_at, \
             claimed_by, lease_token, idempotency_key, compatibility, last_error, summary, \
             created_at, coalesce(updated_at, created_at), finished_at, lapses"
        )
    };
}
pub(crate) use task_columns;

/// Every status in the order of its stored code. Written out here rather than taken from
/// `TaskStatus::ALL`: the codes are stored, so they must not follow a change of the domain's
/// order.
const STATUSES: [TaskStatus; 6] = [
    TaskStatus::Queued,
    TaskStatus::Claimed,
    TaskStatus::Running,
    TaskStatus::Completed,
    TaskStatus::Failed,
    TaskStatus::Cancelled,
];

/// Status codes as stored (schema v12): [`status_code`]'s answers, and what the code that
/// moves counts between statuses names.
pub(crate) const QUEUED: i64 = 0;
pub(crate) const CLAIMED: i64 = 1;
pub(crate) const RUNNING: i64 = 2;
pub(crate) const COMPLETED: i64 = 3;
pub(crate) const FAILED: i64 = 4;
pub(crate) const CANCELLED: i64 = 5;

/// The integer a status is stored as in `task_queue.status` and `queue_counts.status` (schema
/// v12): 0 queued, 1 claimed, 2 running, 3 completed, 4 failed, 5 cancelled, the order of
/// [`TaskStatus`]. SQL in this crate writes a code as a number with its word in a comment.
pub(crate) fn status_code(s: TaskStatus) -> i64 {
    match s {
        TaskStatus::Queued => QUEUED,
        TaskStatus::Claimed => CLAIMED,
        TaskStatus::Running => RUNNING,
        TaskStatus::Completed => COMPLETED,
        TaskStatus::Failed => FAILED,
        TaskStatus::Cancelled => CANCELLED,
    }
}

/// A SQL expression giving the status word of the integer column `col`, for output people
/// read (the same words as [`TaskStatus`]'s `Display`).
macro_rules! status_word {
    ($col:literal) => {
        concat!(
            "CASE ",
            $col,
            " WHEN 0 THEN 'queued' WHEN 1 THEN 'claimed' WHEN 2 THEN 'running' \
             WHEN 3 THEN 'completed' WHEN 4 THEN 'failed' WHEN 5 THEN 'cancelled' END"
        )
    };
}
pub(crate) use status_word;

/// The task columns, in the order [`task_from_row`] reads them.
pub(crate) const TASK_COLUMNS: &str = task_columns!();

fn conv_err(idx: usize, ty: Type, msg: impl Into<String>) -> rusqlite::Error {
    let msg: String = msg.into();
    rusqlite::Error::FromSqlConversionFailure(idx, ty, msg.into())
}

/// The instant `ms` milliseconds after the epoch. Every instant a [`Timestamp`] holds reads
/// back, up to its last millisecond (`Timestamp::from_millisecond` stops a second short, at
/// 9999-12-30T22:00:00Z, so rows written with sub-second times beyond it, as an older release
/// could, failed every listing); a number beyond that is a corrupt row, naming the column.
pub(crate) fn ts(idx: usize, ms: i64) -> rusqlite::Result<Timestamp> {
    from_millis(ms).map_err(|e| conv_err(idx, Type::Integer, e))
}

/// `ms` as an instant, or why it is none.
fn from_millis(ms: i64) -> Result<Timestamp, String> {
    let nanos = i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0);
    Timestamp::new(ms.div_euclid(1000), nanos)
        .map_err(|_| format!("{ms} ms since 1970 is not an instant a timestamp can hold"))
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

/// The status stored as `code` in column `idx`; a code outside 0–5 is a corrupt row, naming
/// the column.
pub(crate) fn status(idx: usize, code: i64) -> rusqlite::Result<TaskStatus> {
    usize::try_from(code)
        .ok()
        .and_then(|i| STATUSES.get(i).copied())
        .ok_or_else(|| {
            conv_err(
                idx,
                Type::Integer,
                format!("{code} is not a task status code (0 queued to 5 cancelled)"),
            )
        })
}

/// Reads a task and its interned type id from a row selected (or returned) with
/// [`TASK_COLUMNS`] followed by `type_id`: what a status change needs to move the task's
/// count (`queue::move_count`).
pub(crate) fn task_and_type_from_row(row: &Row<'_>) -> rusqlite::Result<(Task, i64)> {
    Ok((task_from_row(row)?, row.get(19)?))
}

/// Reads a task from a row selected with [`TASK_COLUMNS`].
pub(crate) fn task_from_row(row: &Row<'_>) -> rusqlite::Result<Task> {
    let task_type: String = row.get(1)?;
    let priority: i64 = row.get(3)?;
    let status_code: i64 = row.get(4)?;
    let claimed_by: Option<String> = row.get(9)?;
    // NULL is a task that requires nothing (schema v12).
    let compat = json_opt(row, 12)?.unwrap_or_else(|| Value::Object(Default::default()));
    Ok(Task {
        id: TaskId(row.get(0)?),
        task_type: TaskType::new(task_type).map_err(|e| conv_err(1, Type::Text, e.to_string()))?,
        params: json(row, 2)?,
        priority: Priority::new(priority).map_err(|e| conv_err(3, Type::Integer, e.to_string()))?,
        status: status(4, status_code)?,
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
        lapses: row.get(18)?,
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

#[cfg(test)]
mod tests {
    use super::*;
    use prismq_domain::time_range::{EARLIEST, LATEST};

    #[test]
    fn every_instant_a_timestamp_holds_reads_back_from_its_milliseconds() {
        for t in [
            EARLIEST,
            LATEST,
            Timestamp::UNIX_EPOCH,
            "9999-12-30T22:00:00.5Z".parse().unwrap(),
            "1969-12-31T23:59:59.999Z".parse().unwrap(),
        ] {
            assert_eq!(ts(7, t.as_millisecond()).unwrap(), t, "{t}");
        }
        // The last millisecond (what `Timestamp::MAX` is stored as) and the first.
        for t in [Timestamp::MAX, Timestamp::MIN] {
            let ms = t.as_millisecond();
            assert_eq!(ts(7, ms).unwrap().as_millisecond(), ms, "{t}");
        }
    }

    #[test]
    fn every_status_reads_back_from_its_code_and_no_other_code_reads() {
        for s in STATUSES {
            assert_eq!(status(4, status_code(s)).unwrap(), s);
        }
        for code in [-1, 6, i64::MAX] {
            let e = status(4, code).unwrap_err();
            assert!(e.to_string().contains("not a task status code"), "{e}");
        }
    }

    #[test]
    fn a_number_beyond_any_timestamp_is_a_conversion_error_naming_the_column() {
        for ms in [i64::MAX, i64::MIN, Timestamp::MAX.as_millisecond() + 1] {
            let e = ts(7, ms).unwrap_err();
            assert!(
                matches!(
                    e,
                    rusqlite::Error::FromSqlConversionFailure(7, Type::Integer, _)
                ),
                "{e:?}"
            );
            assert!(e.to_string().contains("not an instant"), "{e}");
        }
    }
}
