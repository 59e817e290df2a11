//! The bundle of storage ports an application works through, usually all backed by one
//! store: what the app holds, what the contract suite tests, what a new engine provides.

use std::fmt;
use std::sync::Arc;

use super::{
    ApiKeyStore, QuotaLedger, ResultStore, ScheduleStore, TaskLog, TaskQueue, TrackedVideos,
    WorkNotifier, WorkerRegistry,
};

/// A store that implements every storage port of [`Ports`] (the SQLite and PostgreSQL
/// stores, the testkit's `MemoryStore`): one bound instead of eight. Implemented for every
/// such type; nothing implements it by hand.
pub trait WholeStore:
    TaskQueue
    + WorkerRegistry
    + TaskLog
    + ResultStore
    + QuotaLedger
    + ScheduleStore
    + ApiKeyStore
    + TrackedVideos
{
}

impl<S> WholeStore for S where
    S: TaskQueue
        + WorkerRegistry
        + TaskLog
        + ResultStore
        + QuotaLedger
        + ScheduleStore
        + ApiKeyStore
        + TrackedVideos
{
}

/// The storage ports, usually all backed by one store.
#[derive(Clone)]
pub struct Ports {
    /// The task queue.
    pub queue: Arc<dyn TaskQueue>,
    /// The worker registry.
    pub workers: Arc<dyn WorkerRegistry>,
    /// The task log.
    pub logs: Arc<dyn TaskLog>,
    /// The result store.
    pub results: Arc<dyn ResultStore>,
    /// The quota ledger.
    pub quota: Arc<dyn QuotaLedger>,
    /// The schedules.
    pub schedules: Arc<dyn ScheduleStore>,
    /// The API keys of `prismq serve`.
    pub keys: Arc<dyn ApiKeyStore>,
    /// Which videos are tracked (read by `refresh_stats`).
    pub tracked: Arc<dyn TrackedVideos>,
    /// Wakes idle workers when tasks are enqueued, for stores that push (PostgreSQL).
    pub notifier: Option<Arc<dyn WorkNotifier>>,
}

impl fmt::Debug for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ports").finish_non_exhaustive()
    }
}

impl Ports {
    /// Every port from one store that implements them all (the SQLite store, the testkit's
    /// `MemoryStore`).
    pub fn from_store<S>(store: S) -> Ports
    where
        S: WholeStore + 'static,
    {
        let s = Arc::new(store);
        Ports {
            queue: s.clone(),
            workers: s.clone(),
            logs: s.clone(),
            results: s.clone(),
            quota: s.clone(),
            schedules: s.clone(),
            keys: s.clone(),
            tracked: s,
            notifier: None,
        }
    }

    /// The same ports with a work notifier (idle workers wait for its notices instead of polling).
    pub fn with_notifier(mut self, notifier: Arc<dyn WorkNotifier>) -> Ports {
        self.notifier = Some(notifier);
        self
    }
}
