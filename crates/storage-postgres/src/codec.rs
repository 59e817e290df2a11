//! Conversions between rows and domain values: timestamps as BIGINT milliseconds, JSONB
//! columns, and the task row.

use serde_json::Value;
use tokio_postgres::types::FromSql;
use tokio_postgres::Row;

use prismq_domain::task::{Compatibility, LeaseToken, Priority, Task, TaskId, TaskType, WorkerId};
use prismq_domain::{PortError, TaskStatus, Timestamp};

use crate::error::corrupt;

/// The task columns as a literal, for `concat!` in the claim statements.
macro_rules! task_columns {
    () => {
        "id, type, params, priority, status, attempts, max_attempts, run_after, \
         lease_expires_at, claimed_by, lease_token, idempotency_key, compatibility, last_error, summary, \
         created_at, updated_at, finished_at, lapses"
    };
}
pub(crate) use task_columns;

/// The task columns, in the order [`task_from_row`] reads them.
pub(crate) const TASK_COLUMNS: &str = task_columns!();

/// Reads column `idx`, mapping a type mismatch to `Unavailable` (a corrupt row).
pub(crate) fn get<'a, T: FromSql<'a>>(row: &'a Row, idx: usize) -> Result<T, PortError> {
    row.try_get(idx)
        .map_err(|e| corrupt(&format!("column {idx}"), e))
}

/// The instant `ms` milliseconds after the epoch. Every instant a [`Timestamp`] holds reads
/// back, up to its last millisecond (`Timestamp::from_millisecond` stops a second short, at
/// 9999-12-30T22:00:00Z, so rows written with sub-second times beyond it, as an older release
/// could, failed every listing); a number beyond that is a corrupt row.
pub(crate) fn ts(ms: i64) -> Result<Timestamp, PortError> {
    let nanos = i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0);
    Timestamp::new(ms.div_euclid(1000), nanos).map_err(|e| corrupt("timestamp", e))
}

pub(crate) fn ts_opt(ms: Option<i64>) -> Result<Option<Timestamp>, PortError> {
    ms.map(ts).transpose()
}

pub(crate) fn status(s: &str) -> Result<TaskStatus, PortError> {
    s.parse().map_err(|e| corrupt("status", e))
}

fn u32_of(v: i64, what: &str) -> Result<u32, PortError> {
    u32::try_from(v).map_err(|e| corrupt(what, e))
}

/// Reads a task from a row selected with [`TASK_COLUMNS`].
pub(crate) fn task_from_row(row: &Row) -> Result<Task, PortError> {
    let task_type: String = get(row, 1)?;
    let priority: i64 = get(row, 3)?;
    let status_text: String = get(row, 4)?;
    let claimed_by: Option<String> = get(row, 9)?;
    let compat: Value = get(row, 12)?;
    Ok(Task {
        id: TaskId(get(row, 0)?),
        task_type: TaskType::new(task_type).map_err(|e| corrupt("task type", e))?,
        params: get(row, 2)?,
        priority: Priority::new(priority).map_err(|e| corrupt("priority", e))?,
        status: status(&status_text)?,
        attempts: u32_of(get(row, 5)?, "attempts")?,
        max_attempts: u32_of(get(row, 6)?, "max_attempts")?,
        run_after: ts(get(row, 7)?)?,
        lease_expires_at: ts_opt(get(row, 8)?)?,
        claimed_by: claimed_by
            .map(WorkerId::new)
            .transpose()
            .map_err(|e| corrupt("worker id", e))?,
        lease_token: get::<Option<i64>>(row, 10)?.map(LeaseToken),
        idempotency_key: get(row, 11)?,
        compatibility: serde_json::from_value::<Compatibility>(compat)
            .map_err(|e| corrupt("compatibility", e))?,
        last_error: get(row, 13)?,
        summary: get(row, 14)?,
        created_at: ts(get(row, 15)?)?,
        updated_at: ts(get(row, 16)?)?,
        finished_at: ts_opt(get(row, 17)?)?,
        lapses: u32_of(get(row, 18)?, "lapses")?,
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

/// Milliseconds of a duration, saturating.
pub(crate) fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
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
            assert_eq!(ts(t.as_millisecond()).unwrap(), t, "{t}");
        }
        for t in [Timestamp::MAX, Timestamp::MIN] {
            let ms = t.as_millisecond();
            assert_eq!(ts(ms).unwrap().as_millisecond(), ms, "{t}");
        }
        assert_eq!(ts_opt(None).unwrap(), None);
    }

    #[test]
    fn a_number_beyond_any_timestamp_is_a_corrupt_row() {
        for ms in [i64::MAX, i64::MIN, Timestamp::MAX.as_millisecond() + 1] {
            assert!(
                matches!(ts(ms), Err(PortError::Unavailable(m)) if m.contains("timestamp")),
                "{ms}"
            );
        }
    }
}
