//! The ports: one trait per capability the application needs from the outside world.
//! Storage adapters implement them; the testkit's contract suite checks every obligation
//! written in their docs.

mod clock;
pub mod keys;
mod quota;
mod results;
mod schedules;
mod task_log;
mod task_queue;
mod work_signal;
mod worker_registry;

pub use clock::{Clock, SystemClock};

use crate::error::ValidationError;

/// The largest page [`TaskQueue::list`], [`TaskQueue::purge`] and [`ResultStore::query`] take.
pub const MAX_PAGE_LIMIT: u32 = 10_000;

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
pub use keys::{ApiKey, ApiKeyId, ApiKeyStore, KeyHash, NewApiKey, PresentedKey, Scope};
pub use quota::{QuotaDecision, QuotaLedger, QuotaUsage};
pub use results::{
    ChannelBaseline, MetricSnapshot, RescoreReport, ResultOrder, ResultQuery, ResultStore,
    StoredResult,
};
pub use schedules::{
    check_fire_limit, duplicate_name, unknown_schedule, ScheduleStore, MAX_FIRE_BATCH,
};
pub use task_log::{LogLevel, LogRecord, NewLogEntry, TaskEvent, TaskLog};
pub use task_queue::{
    check_batch_keys, idempotency_conflict, ClaimFilter, ClaimRequest, ClaimedTask, Enqueued,
    FailOutcome, Failure, QueueStats, RecentActivity, StatusCount, TaskFilter, TaskQueue,
};
pub use work_signal::{WorkNotifier, WorkSubscription};
pub use worker_registry::{
    Heartbeat, HeldType, HoldReason, WorkerHealth, WorkerInfo, WorkerRecord, WorkerRegistry,
};

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
pub use worker_registry::MockWorkerRegistry;
