//! The one range of instants PrismQ accepts from outside (`--run-at`, `--delay`, a JSONL
//! `run_after`, `--since`, anything an adapter is asked to store as a task's `run_after`):
//! from 2000-01-01T00:00:00Z to 9999-01-01T00:00:00Z, both included.
//!
//! Why these bounds:
//! - **Lower, 2000-01-01.** Claims order by `run_after`, so a task due in year 0001 (which the
//!   store could hold) would jump ahead of every task enqueued today. Nothing PrismQ does
//!   needs an earlier instant: YouTube itself dates from 2005.
//! - **Upper, 9999-01-01.** RFC 3339 has four-digit years, and `jiff` (our time type) ends at
//!   9999-12-30T22:00:00.999999999Z, so that any UTC offset still gives a 9999 civil date. Both
//!   engines store milliseconds in a 64-bit integer, which holds any such instant. Stopping a
//!   year short of `jiff`'s end leaves room for the arithmetic done on a stored instant (a
//!   lease, a retry delay, a local-time rendering with any offset) so that it never overflows.
//!
//! Both bounds are whole seconds, so they survive the millisecond precision of the stores.

use std::time::Duration;

use crate::error::ValidationError;
use crate::Timestamp;

/// The earliest instant accepted: 2000-01-01T00:00:00Z.
pub const EARLIEST: Timestamp = Timestamp::constant(946_684_800, 0);

/// The latest instant accepted: 9999-01-01T00:00:00Z.
pub const LATEST: Timestamp = Timestamp::constant(253_370_764_800, 0);

/// The range as messages print it.
pub const RANGE: &str = "2000-01-01T00:00:00Z to 9999-01-01T00:00:00Z";

/// What an instant flag or field accepts, for messages.
pub const INSTANT_ACCEPTED: &str = "an RFC 3339 instant from 2000-01-01T00:00:00Z to 9999-01-01T00:00:00Z, such as 2026-01-31T08:00:00Z or one with an offset (+01:00)";

/// Whether `t` lies within [`EARLIEST`]`..=`[`LATEST`].
pub fn contains(t: Timestamp) -> bool {
    (EARLIEST..=LATEST).contains(&t)
}

/// `t` moved into the range: [`EARLIEST`] if before it, [`LATEST`] if after it.
pub fn clamp(t: Timestamp) -> Timestamp {
    t.clamp(EARLIEST, LATEST)
}

/// The error for an instant outside the range; `shown` is the value as the user wrote it.
pub fn out_of_range(field: &str, shown: &str) -> ValidationError {
    ValidationError::new(
        field,
        format!("{shown} is outside the accepted range {RANGE}"),
        "an RFC 3339 instant within that range, such as 2026-01-31T08:00:00Z",
    )
}

/// `t` if it lies within the range.
///
/// # Errors
/// An instant before [`EARLIEST`] or after [`LATEST`], naming `field` and the range.
pub fn check(field: &str, t: Timestamp) -> Result<Timestamp, ValidationError> {
    if contains(t) {
        Ok(t)
    } else {
        Err(out_of_range(field, &t.to_string()))
    }
}

/// `now + delay`, if it lies within the range. `shown` is the delay as the user wrote it.
///
/// # Errors
/// A sum after [`LATEST`] (or beyond what a timestamp can hold at all), naming `field`, the
/// range and the longest delay accepted from `now`.
pub fn after(
    field: &str,
    shown: &str,
    now: Timestamp,
    delay: Duration,
) -> Result<Timestamp, ValidationError> {
    let sum = jiff::SignedDuration::try_from(delay)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .filter(|t| contains(*t));
    sum.ok_or_else(|| {
        let days = LATEST.duration_since(now).as_secs().max(0) / 86_400;
        ValidationError::new(
            field,
            format!("{shown} from now ends outside the accepted range {RANGE}"),
            format!("a duration such as 30s, 5m, 1h30m or 7d, at most {days}d from now"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn bounds_are_the_instants_the_text_names() {
        assert_eq!(EARLIEST, ts("2000-01-01T00:00:00Z"));
        assert_eq!(LATEST, ts("9999-01-01T00:00:00Z"));
        assert_eq!(RANGE, format!("{EARLIEST} to {LATEST}"));
        assert!(INSTANT_ACCEPTED.contains(RANGE));
        assert!(out_of_range("run_at", "x")
            .accepted
            .contains("within that range"));
    }

    #[test]
    fn bounds_survive_millisecond_storage_and_any_offset() {
        for t in [EARLIEST, LATEST] {
            let back = Timestamp::from_millisecond(t.as_millisecond()).unwrap();
            assert_eq!(back, t);
            for hours in [-25, 25] {
                let off = jiff::tz::Offset::from_hours(hours).unwrap();
                assert!(off.to_datetime(t).year() > 1000, "{t} at {hours}h");
            }
        }
        // A year of headroom above LATEST: a week's retry delay plus a day's lease fit.
        let week = jiff::SignedDuration::from_hours(8 * 24);
        assert!(LATEST.checked_add(week).is_ok());
    }

    #[test]
    fn check_accepts_the_range_inclusive_and_refuses_outside_it() {
        assert_eq!(check("run_after", EARLIEST).unwrap(), EARLIEST);
        assert_eq!(check("run_after", LATEST).unwrap(), LATEST);
        assert!(check("run_after", ts("2026-01-31T08:00:00Z")).is_ok());
        for t in [
            ts("1999-12-31T23:59:59.999Z"),
            ts("0001-01-01T00:00:00Z"),
            ts("9999-01-01T00:00:00.001Z"),
            ts("9999-12-30T22:00:00.5Z"),
            Timestamp::MAX,
            Timestamp::MIN,
        ] {
            let e = check("run_after", t).unwrap_err();
            assert_eq!(e.field, "run_after");
            assert!(e.problem.contains(&t.to_string()), "{e}");
            assert!(e.problem.contains("outside the accepted range"), "{e}");
            assert!(e.problem.contains(RANGE), "{e}");
        }
    }

    #[test]
    fn clamp_moves_into_the_range() {
        assert_eq!(clamp(Timestamp::MIN), EARLIEST);
        assert_eq!(clamp(Timestamp::MAX), LATEST);
        let t = ts("2026-01-31T08:00:00Z");
        assert_eq!(clamp(t), t);
    }

    #[test]
    fn after_adds_within_the_range_and_names_the_longest_delay() {
        let now = ts("2026-01-31T08:00:00Z");
        assert_eq!(
            after("delay", "1h", now, Duration::from_secs(3600)).unwrap(),
            ts("2026-01-31T09:00:00Z")
        );
        let to_latest =
            Duration::from_secs(u64::try_from(LATEST.as_second() - now.as_second()).unwrap());
        assert_eq!(after("delay", "x", now, to_latest).unwrap(), LATEST);
        for d in [
            to_latest + Duration::from_millis(1),
            Duration::from_secs(1_000_000_000 * 3600),
            Duration::MAX,
        ] {
            let e = after("delay", "1000000000h", now, d).unwrap_err();
            assert_eq!(e.field, "delay");
            assert!(e.problem.contains("1000000000h from now"), "{e}");
            assert!(e.problem.contains(RANGE), "{e}");
            assert!(e.accepted.contains("at most 2912047d from now"), "{e}");
        }
    }
}
