//! The clock port: every "now" in the system comes from here, so tests can fake time.

use crate::Timestamp;

/// A source of the current instant.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant. MUST never go backwards within one process.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}
