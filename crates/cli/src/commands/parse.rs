//! Small conversions of flag text into domain values, each refusing bad input with the
//! accepted values (exit 2): durations, instants (within the domain's
//! [`time_range`]), task ids, statuses and types.

use std::time::Duration;

use prismq_app::config::{parse_duration, DURATION_ACCEPTED};
use prismq_domain::time_range;
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

/// An RFC 3339 instant such as `2026-01-31T08:00:00Z`, within the accepted range
/// ([`time_range::RANGE`]).
///
/// # Errors
/// Malformed text, or a well-formed instant outside the range (said as such, even when it is
/// beyond what a timestamp can hold, such as `9999-12-31T23:59:59Z`), naming `flag`.
pub fn instant(flag: &str, text: &str) -> CliResult<Timestamp> {
    read_instant(flag, text).map_err(|e| {
        e.unwrap_or_else(|| {
            ValidationError::new(
                flag,
                format!("{:?} is not an RFC 3339 timestamp", cut(text)),
                time_range::INSTANT_ACCEPTED,
            )
        })
        .into()
    })
}

/// An instant within the range; `Err(None)` for text that is no instant at all,
/// `Err(Some(e))` for one outside the range.
fn read_instant(flag: &str, text: &str) -> Result<Timestamp, Option<ValidationError>> {
    let t = text.trim();
    match t.parse::<Timestamp>() {
        Ok(at) if time_range::contains(at) => Ok(at),
        Ok(_) => Err(Some(time_range::out_of_range(flag, &cut(t)))),
        Err(_) if is_unrepresentable_instant(t) => {
            Err(Some(time_range::out_of_range(flag, &cut(t))))
        }
        Err(_) => Err(None),
    }
}

/// Whether `text` is a well-formed date, time and offset that only fails to parse as a
/// timestamp because it lies beyond the last one `jiff` holds (9999-12-30T22:00:00.999999999Z).
fn is_unrepresentable_instant(text: &str) -> bool {
    jiff::fmt::temporal::Pieces::parse(text)
        .is_ok_and(|p| p.time().is_some() && p.offset().is_some())
}

/// Text quoted back in a message, at most 80 characters.
fn cut(text: &str) -> String {
    prismq_domain::task::truncate_for_message(text)
}

/// `now + DURATION` for `--delay`: a duration such as `30s` or `7d`, ending within the
/// accepted range.
///
/// # Errors
/// Malformed text, or a delay that ends after [`time_range::LATEST`], naming `flag`.
pub fn delay(flag: &str, text: &str, now: Timestamp) -> CliResult<Timestamp> {
    let d = duration(flag, text)?;
    Ok(time_range::after(flag, &cut(text.trim()), now, d)?)
}

/// `now - d` for a duration (never before [`time_range::EARLIEST`], so a longer one means
/// "everything"), or an RFC 3339 instant within the accepted range.
///
/// # Errors
/// Neither parses, or the instant is outside the range.
pub fn since(flag: &str, text: &str, now: Timestamp) -> CliResult<Timestamp> {
    if let Some(d) = parse_duration(text) {
        let span = jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX);
        return Ok(time_range::clamp(
            now.checked_sub(span).unwrap_or(Timestamp::MIN),
        ));
    }
    read_instant(flag, text).map_err(|e| {
        e.unwrap_or_else(|| {
            ValidationError::new(
                flag,
                format!("{:?} is neither a duration nor a timestamp", cut(text)),
                format!(
                    "a duration such as 7d or 12h, or {}",
                    time_range::INSTANT_ACCEPTED
                ),
            )
        })
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

    #[test]
    fn instants_outside_the_range_are_refused_as_such() {
        let ok = instant("run_at", "2026-01-31T09:00:00+01:00").unwrap();
        assert_eq!(ok.to_string(), "2026-01-31T08:00:00Z");
        assert_eq!(
            instant("run_at", "9999-01-01T00:00:00Z").unwrap(),
            time_range::LATEST
        );
        assert_eq!(
            instant("run_at", "2000-01-01T00:00:00Z").unwrap(),
            time_range::EARLIEST
        );
        for text in [
            "9999-12-31T23:59:59Z",
            "9999-12-30T22:00:00.5Z",
            "9999-01-01T00:00:00.001Z",
            "0001-01-01T00:00:00Z",
            "1999-12-31T23:59:59+00:00",
        ] {
            let e = instant("run_at", text).unwrap_err();
            assert_eq!(e.exit, crate::exit::Exit::Usage, "{text}");
            assert!(
                e.message.contains(&format!(
                    "{text} is outside the accepted range {}",
                    time_range::RANGE
                )),
                "{text}: {}",
                e.message
            );
            assert!(!e.message.contains("not an RFC 3339"), "{}", e.message);
        }
        for text in ["tomorrow", "2026-01-31", "+010000-01-01T00:00:00Z", ""] {
            let e = instant("run_at", text).unwrap_err();
            assert!(
                e.message.contains("not an RFC 3339"),
                "{text}: {}",
                e.message
            );
        }
    }

    #[test]
    fn delays_end_within_the_range() {
        let now = instant("x", "2026-01-31T08:00:00Z").unwrap();
        assert_eq!(
            delay("delay", "1h30m", now).unwrap().to_string(),
            "2026-01-31T09:30:00Z"
        );
        for text in ["1000000000h", "2912048d", "18446744073709551615"] {
            let e = delay("delay", text, now).unwrap_err();
            assert!(e.message.contains("invalid delay"), "{}", e.message);
            assert!(
                e.message.contains("outside the accepted range"),
                "{}",
                e.message
            );
        }
        assert!(delay("delay", "2912047d", now).is_ok());
        assert!(delay("delay", "soon", now)
            .unwrap_err()
            .message
            .contains("not a duration"));
    }

    #[test]
    fn since_clamps_durations_and_checks_instants() {
        let now = instant("x", "2026-01-31T08:00:00Z").unwrap();
        assert_eq!(
            since("since", "100000d", now).unwrap(),
            time_range::EARLIEST
        );
        let e = since("since", "1990-01-01T00:00:00Z", now).unwrap_err();
        assert!(
            e.message.contains("outside the accepted range"),
            "{}",
            e.message
        );
        let e = since("since", "last week", now).unwrap_err();
        assert!(e.message.contains("neither a duration"), "{}", e.message);
    }
}
