//! The ports: one trait per capability the application needs from the outside world.
//! Storage adapters implement them; the testkit's contract suite checks every obligation
//! written in their docs.

pub mod admin;
mod bundle;
mod clock;
pub mod dump;
pub mod keys;
mod quota;
mod results;
mod schedules;
mod task_log;
mod task_queue;
mod tracked;
pub mod upkeep;
pub mod validation;
mod work_signal;
mod worker_registry;

pub use clock::{Clock, SystemClock};

use crate::error::ValidationError;

/// The largest page [`TaskQueue::list`], [`TaskQueue::purge`] and [`ResultStore::query`] take.
pub const MAX_PAGE_LIMIT: u32 = 10_000;

/// The least text greater than every text that starts with `prefix` (its last character
/// that can be, raised by one, after dropping those that cannot), for an index range
/// `key >= prefix AND key < bound` in bytewise order; `None` when no such text exists.
pub fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Checks a page limit against 1–[`MAX_PAGE_LIMIT`], the bound the port docs give.
///
/// # Errors
/// A [`ValidationError`] on `limit` saying what is accepted.
pub fn check_page_limit(limit: u32) -> Result<(), ValidationError> {
    if (1..=MAX_PAGE_LIMIT).contains(&limit) {
        Ok(())
    } else {
        Err(ValidationError::new(
            "limit",
            format!("{limit} is out of range"),
            format!("an integer from 1 to {MAX_PAGE_LIMIT}"),
        ))
    }
}
pub use admin::{SchemaAdmin, ServerInfo, StorageError, StorageProblem};
pub use bundle::{Ports, WholeStore};
pub use dump::{Dump, DumpSink, Load, LoadSession};
pub use keys::{ApiKey, ApiKeyId, ApiKeyStore, KeyHash, NewApiKey, PresentedKey, Scope};
pub use quota::{QuotaDecision, QuotaLedger, QuotaUsage};
pub use results::{
    ChannelBaseline, MetricSnapshot, OrderValue, RescoreReport, ResultCursor, ResultOrder,
    ResultQuery, ResultStore, StoredResult,
};
pub use schedules::{
    check_fire_limit, duplicate_name, unknown_schedule, ScheduleStore, MAX_FIRE_BATCH,
};
pub use task_log::{LogLevel, LogRecord, NewLogEntry, TaskEvent, TaskLog};
pub use task_queue::{
    check_batch_keys, claim_and_start_one_by_one, complete_and_claim_one_by_one,
    idempotency_conflict, ClaimFilter, ClaimRequest, ClaimedTask, Enqueued, FailOutcome, Failure,
    Handover, HandoverAnswer, QueueStats, RecentActivity, StatusCount, TaskFilter, TaskQueue,
};
pub use tracked::{
    TrackedFilter, TrackedVideos, REFRESH_SOURCE, TRACKED_PLATFORM, TRACKED_SOURCE_PREFIX,
};
pub use upkeep::Upkeep;
pub use work_signal::{WorkNotifier, WorkSubscription};
pub use worker_registry::{
    Heartbeat, HeldType, HoldReason, WorkerHealth, WorkerInfo, WorkerRecord, WorkerRegistry,
};

#[cfg(feature = "mocks")]
pub use admin::MockSchemaAdmin;
#[cfg(feature = "mocks")]
pub use clock::MockClock;
#[cfg(feature = "mocks")]
pub use keys::MockApiKeyStore;
#[cfg(feature = "mocks")]
pub use quota::MockQuotaLedger;
#[cfg(feature = "mocks")]
pub use results::MockResultStore;
#[cfg(feature = "mocks")]
pub use schedules::MockScheduleStore;
#[cfg(feature = "mocks")]
pub use task_log::MockTaskLog;
#[cfg(feature = "mocks")]
pub use task_queue::MockTaskQueue;
#[cfg(feature = "mocks")]
pub use tracked::MockTrackedVideos;
#[cfg(feature = "mocks")]
pub use worker_registry::MockWorkerRegistry;

#[cfg(test)]
mod prefix_tests {
    #[test]
    fn upper_bounds_raise_the_last_character_that_can_be() {
        use super::prefix_upper_bound as up;
        assert_eq!(up("schedule:5:").as_deref(), Some("schedule:5;"));
        assert_eq!(up("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(up("b\u{10FFFF}").as_deref(), Some("c"));
        assert_eq!(up("\u{10FFFF}"), None);
        assert_eq!(up(""), None);
    }
}
