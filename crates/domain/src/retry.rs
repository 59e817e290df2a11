//! The retry policy: a pure decision, from an attempt number, an error class and a random
//! sample, between retrying later, deferring for free, and dead-lettering.

use serde::{Deserialize, Serialize};
use std::time::Duration;

use crate::Timestamp;

/// How a task's error should be treated. Decided where the error arises (a plugin knows a
/// quota error from a typo); the runtime acts on the class, never on message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "class", content = "until")]
pub enum ErrorClass {
    /// May succeed if tried again: retried with exponential backoff while attempts remain.
    Retryable,
    /// Will succeed only after an instant (quota reset, Retry-After): deferred until then,
    /// and the attempt is given back.
    RetryableAfter(Timestamp),
    /// Will never succeed as asked: dead-lettered at once.
    Permanent,
}

/// What happens to a task after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryDecision {
    /// Back to the queue, claimable from this instant; the attempt stays counted.
    RetryAt(Timestamp),
    /// Back to the queue until this instant without using an attempt (quota, rate limits).
    Defer(Timestamp),
    /// To the dead-letter queue (status `failed`).
    DeadLetter,
}

/// Exponential backoff with equal jitter (a floor) and a cap, plus the default attempt limit.
///
/// The delay before attempt `n + 1` after attempt `n` failed is uniform in `[d/2, d]`, where
/// `d = min(cap, base × 2^(n−1))` ("equal jitter"): retries of many tasks that failed
/// together spread out instead of stampeding, and no retry comes sooner than half its
/// step, so a short outage cannot use up a task's attempts in a second (full jitter, from
/// zero, let hundreds of tasks spend three attempts in under a second).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// The first retry's maximum delay (it waits between `base / 2` and `base`).
    #[serde(with = "duration_ms")]
    pub base: Duration,
    /// No delay exceeds this.
    #[serde(with = "duration_ms")]
    pub cap: Duration,
    /// Attempts given to a task that names none.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(600),
            max_attempts: 3,
        }
    }
}

impl RetryPolicy {
    /// The smallest delay the policy may choose after attempt `attempt` (1-based) failed:
    /// half of [`RetryPolicy::max_delay`] (rounded up to the millisecond).
    pub fn min_delay(&self, attempt: u32) -> Duration {
        let max_ms = u64::try_from(self.max_delay(attempt).as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(max_ms - max_ms / 2)
    }

    /// The largest delay the policy may choose after attempt `attempt` (1-based) failed.
    pub fn max_delay(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(62);
        let factor = 1u64 << exp;
        let base_ms = u64::try_from(self.base.as_millis()).unwrap_or(u64::MAX);
        let cap_ms = u64::try_from(self.cap.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(base_ms.saturating_mul(factor).min(cap_ms))
    }

    /// Decides what follows a failed attempt.
    ///
    /// - `attempt` is the number of the attempt that failed (1 for the first), `max_attempts`
    ///   the task's limit, `now` the current instant and `sample` a uniform random `u64`.
    /// - `Permanent` → `DeadLetter`, always.
    /// - `RetryableAfter(t)` → `Defer(max(t, now))`: free, whatever the attempt count.
    /// - `Retryable` → `RetryAt(now + delay)` with the delay uniform in
    ///   [`min_delay`](RetryPolicy::min_delay)`..=`[`max_delay`](RetryPolicy::max_delay)
    ///   while `attempt < max_attempts`, else `DeadLetter`.
    pub fn decide(
        &self,
        attempt: u32,
        max_attempts: u32,
        class: ErrorClass,
        now: Timestamp,
        sample: u64,
    ) -> RetryDecision {
        match class {
            ErrorClass::Permanent => RetryDecision::DeadLetter,
            ErrorClass::RetryableAfter(until) => RetryDecision::Defer(until.max(now)),
            ErrorClass::Retryable if attempt >= max_attempts => RetryDecision::DeadLetter,
            ErrorClass::Retryable => {
                let max_ms = u64::try_from(self.max_delay(attempt).as_millis()).unwrap_or(u64::MAX);
                let min_ms = u64::try_from(self.min_delay(attempt).as_millis()).unwrap_or(0);
                // Uniform in [min_ms, max_ms]; the span is at most u64::MAX / 2 + 1.
                let span = max_ms - min_ms;
                let delay_ms = min_ms + sample % (span + 1);
                let delay =
                    jiff::SignedDuration::from_millis(i64::try_from(delay_ms).unwrap_or(i64::MAX));
                RetryDecision::RetryAt(now.checked_add(delay).unwrap_or(Timestamp::MAX))
            }
        }
    }
}

mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    #[test]
    fn backoff_doubles_then_caps() {
        let p = RetryPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(10),
            max_attempts: 10,
        };
        let got: Vec<u64> = (1..=6).map(|a| p.max_delay(a).as_secs()).collect();
        assert_eq!(got, vec![1, 2, 4, 8, 10, 10]);
        assert_eq!(p.max_delay(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn delay_has_a_floor_of_half_the_step() {
        let p = RetryPolicy {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(600),
            max_attempts: 3,
        };
        let after =
            |attempt, sample| match p.decide(attempt, 10, ErrorClass::Retryable, now(), sample) {
                RetryDecision::RetryAt(t) => t.duration_since(now()).as_millis(),
                other => panic!("unexpected {other:?}"),
            };
        // Sample 0 was "retry at once" under full jitter; now it is the floor.
        assert_eq!(after(1, 0), 1_000);
        assert_eq!(after(2, 0), 2_000);
        assert_eq!(after(3, 0), 4_000);
        // The largest sample in range reaches the step itself.
        assert_eq!(after(1, 1_000), 2_000);
        assert_eq!(after(2, 2_000), 4_000);
        assert_eq!(p.min_delay(1), Duration::from_secs(1));
        assert_eq!(p.min_delay(20), Duration::from_secs(300));
        let odd = RetryPolicy {
            base: Duration::from_millis(3),
            ..p
        };
        assert_eq!(odd.min_delay(1), Duration::from_millis(2));
    }

    #[test]
    fn retryable_until_attempts_run_out() {
        let p = RetryPolicy::default();
        assert!(matches!(
            p.decide(1, 3, ErrorClass::Retryable, now(), 7),
            RetryDecision::RetryAt(_)
        ));
        assert!(matches!(
            p.decide(2, 3, ErrorClass::Retryable, now(), 7),
            RetryDecision::RetryAt(_)
        ));
        assert_eq!(
            p.decide(3, 3, ErrorClass::Retryable, now(), 7),
            RetryDecision::DeadLetter
        );
    }

    #[test]
    fn deferral_in_the_past_is_now() {
        let p = RetryPolicy::default();
        let past = Timestamp::from_second(1).unwrap();
        assert_eq!(
            p.decide(1, 3, ErrorClass::RetryableAfter(past), now(), 0),
            RetryDecision::Defer(now())
        );
    }

    fn class() -> impl Strategy<Value = ErrorClass> {
        prop_oneof![
            Just(ErrorClass::Retryable),
            Just(ErrorClass::Permanent),
            (0i64..4_000_000_000)
                .prop_map(|s| ErrorClass::RetryableAfter(Timestamp::from_second(s).unwrap())),
        ]
    }

    proptest! {
        #[test]
        fn never_past_the_cap(base_ms in 0u64..100_000, cap_ms in 0u64..10_000_000, attempt in 1u32..200, sample in any::<u64>()) {
            let p = RetryPolicy { base: Duration::from_millis(base_ms), cap: Duration::from_millis(cap_ms), max_attempts: 1000 };
            match p.decide(attempt, 1000, ErrorClass::Retryable, now(), sample) {
                RetryDecision::RetryAt(t) => {
                    prop_assert!(t >= now());
                    let waited = t.duration_since(now()).as_millis();
                    prop_assert!(waited <= i128::from(cap_ms));
                    prop_assert!(waited <= p.max_delay(attempt).as_millis() as i128);
                    prop_assert!(waited >= p.min_delay(attempt).as_millis() as i128);
                    prop_assert!(2 * waited >= p.max_delay(attempt).as_millis() as i128);
                }
                other => prop_assert!(false, "unexpected {other:?}"),
            }
        }

        #[test]
        fn never_retries_a_permanent_error(attempt in 0u32..200, max in 0u32..200, sample in any::<u64>()) {
            prop_assert_eq!(RetryPolicy::default().decide(attempt, max, ErrorClass::Permanent, now(), sample), RetryDecision::DeadLetter);
        }

        #[test]
        fn never_exceeds_max_attempts(attempt in 0u32..200, max in 1u32..100, c in class(), sample in any::<u64>()) {
            let d = RetryPolicy::default().decide(attempt, max, c, now(), sample);
            if attempt >= max && c == ErrorClass::Retryable {
                prop_assert_eq!(d, RetryDecision::DeadLetter);
            }
            if let RetryDecision::RetryAt(_) = d {
                prop_assert!(attempt < max);
            }
        }

        #[test]
        fn deferral_is_free_and_never_dead_letters(attempt in 0u32..1000, max in 1u32..100, secs in 0i64..4_000_000_000, sample in any::<u64>()) {
            let until = Timestamp::from_second(secs).unwrap();
            let d = RetryPolicy::default().decide(attempt, max, ErrorClass::RetryableAfter(until), now(), sample);
            prop_assert_eq!(d, RetryDecision::Defer(until.max(now())));
        }
    }
}
