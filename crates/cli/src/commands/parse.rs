//! Small conversions of flag text into domain values, each refusing bad input with the
//! accepted values (exit 2): durations, instants, task ids, statuses and types.

use std::time::Duration;

use prismq_app::config::{parse_duration, DURATION_ACCEPTED};
use prismq_domain::{TaskId, TaskStatus, TaskType, Timestamp, ValidationError};

use crate::exit::CliResult;

/// A duration such as `30s`, `5m`, `1h30m` or `7d`.
///
/// # Errors
/// Malformed text, naming `flag`.
pub fn duration(flag: &str, text: &str) -> CliResult<Duration> {
    parse_duration(text).ok_or_else(|| {
        ValidationError::new(
            flag,
            format!("{text:?} is not a duration"),
            DURATION_ACCEPTED,
        )
        .into()
    })
}

/// An RFC 3339 instant such as `2026-01-31T08:00:00Z`.
///
/// # Errors
/// Malformed text, naming `flag`.
pub fn instant(flag: &str, text: &str) -> CliResult<Timestamp> {
    text.trim().parse::<Timestamp>().map_err(|_| {
        ValidationError::new(
            flag,
            format!("{text:?} is not an RFC 3339 timestamp"),
            "a UTC instant such as 2026-01-31T08:00:00Z or one with an offset (+01:00)",
        )
        .into()
    })
}

/// `now - d` for a duration, or an RFC 3339 instant.
///
/// # Errors
/// Neither parses.
pub fn since(flag: &str, text: &str, now: Timestamp) -> CliResult<Timestamp> {
    if let Some(d) = parse_duration(text) {
        let span = jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX);
        return Ok(now.checked_sub(span).unwrap_or(Timestamp::MIN));
    }
    instant(flag, text).map_err(|_| {
        ValidationError::new(
            flag,
            format!("{text:?} is neither a duration nor a timestamp"),
            "a duration such as 7d or 12h, or an RFC 3339 instant such as 2026-01-31T08:00:00Z",
        )
        .into()
    })
}

/// A task id (positive).
///
/// # Errors
/// Zero or negative.
pub fn task_id(id: i64) -> CliResult<TaskId> {
    if id > 0 {
        Ok(TaskId(id))
    } else {
        Err(
            ValidationError::new("id", format!("{id} is not a task id"), "a positive integer")
                .into(),
        )
    }
}

/// A task status name.
///
/// # Errors
/// Unknown names, listing the statuses.
pub fn status(text: &str) -> CliResult<TaskStatus> {
    Ok(text.parse::<TaskStatus>()?)
}

/// A task type name.
///
/// # Errors
/// Malformed names.
pub fn task_type(text: &str) -> CliResult<TaskType> {
    Ok(TaskType::new(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_instants_and_since() {
        assert_eq!(duration("delay", "1m").unwrap(), Duration::from_secs(60));
        let e = duration("delay", "soon").unwrap_err();
        assert!(e.message.contains("delay"), "{e}");
        let t = instant("run_at", "2026-01-31T08:00:00Z").unwrap();
        assert_eq!(
            since("since", "1d", t).unwrap().to_string(),
            "2026-01-30T08:00:00Z"
        );
        assert!(since("since", "yesterday", t).is_err());
        assert!(task_id(0).is_err());
    }
}
