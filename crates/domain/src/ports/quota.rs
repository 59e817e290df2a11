//! The quota ledger port: API quota shared by every worker and process using one store.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::PortError;
use crate::Timestamp;

/// The answer to a request for quota units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaDecision {
    /// The units were charged; this many remain in the window.
    Granted {
        /// Units left in the current window after this charge.
        remaining: u64,
    },
    /// Nothing was charged; the bucket has no room until this instant.
    Exhausted {
        /// When units become available again.
        until: Timestamp,
    },
}

/// One bucket's state, for operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaUsage {
    /// The bucket's name.
    pub bucket: String,
    /// Units used in the current window (0 when the stored window has ended).
    pub used: u64,
    /// When the stored window ends (or ended).
    pub window_end: Timestamp,
    /// When an exhaustion mark lifts, if one is in force now.
    pub exhausted_until: Option<Timestamp>,
}

/// Per-bucket usage counters with a window (a day, for YouTube) and an exhaustion mark.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait QuotaLedger: Send + Sync {
    /// Charges `units` to `bucket` if they fit under `limit` in the window ending at `window_end`.
    ///
    /// An implementation MUST:
    /// - start a new window (usage 0) when the stored window has ended (its end ≤ now) or the
    ///   bucket was never used;
    /// - answer `Exhausted { until }` without charging when the bucket is marked exhausted
    ///   until a later instant, or when `used + units > limit` (`until` is the window's end);
    /// - otherwise charge atomically and answer `Granted { remaining: limit - used }`, so two
    ///   callers racing for the last units never both get them.
    async fn try_consume(
        &self,
        bucket: &str,
        units: u64,
        limit: u64,
        window_end: Timestamp,
    ) -> Result<QuotaDecision, PortError>;

    /// Marks `bucket` exhausted until `until` (the API said so before our count did).
    /// MUST make every `try_consume` on the bucket answer `Exhausted { until }` until then.
    async fn mark_exhausted(&self, bucket: &str, until: Timestamp) -> Result<(), PortError>;

    /// Units used in `bucket`'s current window (0 if none or if the window ended).
    async fn used(&self, bucket: &str) -> Result<u64, PortError>;

    /// Every bucket ever charged or marked, ordered by name. MUST report `used` 0 for a bucket
    /// whose window has ended, and `exhausted_until` only while that instant is still ahead.
    async fn usage(&self) -> Result<Vec<QuotaUsage>, PortError>;
}
