//! A fake clock for tests: time moves only when the test says so, in whole milliseconds.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use jiff::SignedDuration;
use prismq_domain::ports::Clock;
use prismq_domain::Timestamp;

/// A [`Clock`] that stands still until told to move. Every instant it returns is
/// millisecond-aligned (storage adapters keep milliseconds since the epoch) and it never
/// goes backwards.
#[derive(Debug)]
pub struct FakeClock {
    now: Mutex<Timestamp>,
}

/// The instant a [`FakeClock::default`] starts at: 2026-01-01T00:00:00Z.
pub const DEFAULT_START: Timestamp = Timestamp::constant(1_767_225_600, 0);

impl FakeClock {
    /// A clock reading `start`, truncated to the millisecond.
    pub fn new(start: Timestamp) -> Self {
        FakeClock {
            now: Mutex::new(truncate_to_millis(start)),
        }
    }

    /// The current reading (the same as [`Clock::now`], without importing the trait).
    pub fn now(&self) -> Timestamp {
        *self.lock()
    }

    /// Moves the clock forward by `by`, truncated to whole milliseconds.
    ///
    /// # Panics
    /// If the clock would pass [`Timestamp::MAX`].
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).expect("advance: duration too large");
        let mut now = self.lock();
        *now = now
            .checked_add(SignedDuration::from_millis(ms))
            .expect("advance: the clock would pass Timestamp::MAX");
    }

    /// Sets the clock to `at`, truncated to the millisecond.
    ///
    /// # Panics
    /// If `at` is earlier than the current reading: the clock never goes backwards.
    pub fn set(&self, at: Timestamp) {
        let at = truncate_to_millis(at);
        let mut now = self.lock();
        assert!(
            at >= *now,
            "FakeClock::set({at}) would move the clock back from {}",
            *now
        );
        *now = at;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Timestamp> {
        // A poisoned timestamp is still a valid timestamp.
        self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for FakeClock {
    fn default() -> Self {
        FakeClock::new(DEFAULT_START)
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        FakeClock::now(self)
    }
}

/// `t` truncated towards the past to a whole millisecond.
pub fn truncate_to_millis(t: Timestamp) -> Timestamp {
    Timestamp::from_millisecond(t.as_millisecond()).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_moves_and_stays_millisecond_aligned() {
        let c = FakeClock::default();
        assert_eq!(c.now().to_string(), "2026-01-01T00:00:00Z");
        c.advance(Duration::from_micros(1_500));
        assert_eq!(c.now().as_millisecond(), DEFAULT_START.as_millisecond() + 1);
        assert_eq!(c.now().subsec_nanosecond() % 1_000_000, 0);
        let later = DEFAULT_START
            .checked_add(SignedDuration::from_secs(60))
            .unwrap();
        c.set(later);
        assert_eq!(c.now(), later);
    }

    #[test]
    #[should_panic(expected = "move the clock back")]
    fn set_refuses_to_go_backwards() {
        let c = FakeClock::default();
        c.advance(Duration::from_secs(1));
        c.set(DEFAULT_START);
    }
}
