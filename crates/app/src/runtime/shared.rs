//! What the loops of one run share: the ports, the settings, the stop signal and the
//! counters ([`Shared`]), and each loop's heartbeat state ([`BeatState`]). The supervisor
//! builds it; the worker loops and their attempts read it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;

use prismq_domain::ports::{
    ClaimFilter, ClaimRequest, Heartbeat, ResultStore, TaskLog, TaskQueue, WorkNotifier,
    WorkerRegistry,
};
use prismq_domain::{TaskType, WorkerId};

use super::gate::Gate;
use super::handovers::Handovers;
use super::scheduler::Scheduler;
use super::settings::{RunOptions, WorkerSettings};
use crate::registry::PluginRegistry;

/// What every loop of one run shares.
pub(crate) struct Shared {
    pub queue: Arc<dyn TaskQueue>,
    pub workers: Arc<dyn WorkerRegistry>,
    pub logs: Arc<dyn TaskLog>,
    pub results: Arc<dyn ResultStore>,
    pub registry: Arc<PluginRegistry>,
    pub settings: WorkerSettings,
    pub options: RunOptions,
    /// The types this run claims (and registers as its capabilities).
    pub capabilities: Vec<TaskType>,
    /// Raised by the caller's shutdown signal, or by the supervisor after a fatal error.
    pub stop: CancellationToken,
    /// Loops that are claiming or holding a task (drain mode's "no other loop is busy").
    pub busy: AtomicUsize,
    /// Claims left under `max_tasks`.
    pub remaining: Option<AtomicU64>,
    /// Wakes idle loops when tasks are enqueued (PostgreSQL); `None`: poll with backoff.
    pub notifier: Option<Arc<dyn WorkNotifier>>,
    /// Which types may be claimed now (circuit breakers, quota holds).
    pub gate: Gate,
    /// Fires due schedules (a store with schedules, and not a one-task run).
    pub scheduler: Option<Scheduler>,
    /// Completions written together, when the store writes a batch in one step
    /// ([`TaskQueue::completes_in_batches`]); `None`: each loop writes its own.
    pub handovers: Option<Handovers>,
}

impl Shared {
    /// A claim for loop `worker`: every capability of the run (the gate narrows the types
    /// before each claim), the run's region, strategy and lease.
    pub fn claim_request(&self, worker: &WorkerId) -> ClaimRequest {
        ClaimRequest {
            worker: worker.clone(),
            filter: ClaimFilter {
                task_types: self.capabilities.clone(),
                region: self.settings.region.clone(),
                only: self.settings.only_task,
            },
            strategy: self.settings.strategy,
            lease_for: self.settings.lease,
        }
    }

    /// Takes one claim from the `max_tasks` budget; false when it is spent.
    pub fn reserve_claim(&self) -> bool {
        match &self.remaining {
            None => true,
            Some(r) => r
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok(),
        }
    }

    /// Gives back a claim that found nothing.
    pub fn return_claim(&self) {
        self.return_claims(1);
    }

    /// Takes up to `n` claims from the `max_tasks` budget: how many were taken.
    pub fn reserve_claims(&self, n: usize) -> usize {
        match &self.remaining {
            None => n,
            Some(r) => {
                let want = n as u64;
                match r.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                    (left > 0).then(|| left - left.min(want))
                }) {
                    Ok(left) => usize::try_from(left.min(want)).unwrap_or(n),
                    Err(_) => 0,
                }
            }
        }
    }

    /// Gives back `n` claims that found nothing.
    pub fn return_claims(&self, n: usize) {
        if let (Some(r), true) = (&self.remaining, n > 0) {
            r.fetch_add(n as u64, Ordering::SeqCst);
        }
    }
}

/// The heartbeat state a loop shares with its heartbeat task.
pub(crate) type BeatState = Arc<Mutex<Heartbeat>>;

pub(crate) fn update(state: &BeatState, f: impl FnOnce(&mut Heartbeat)) {
    f(&mut state.lock().unwrap_or_else(PoisonError::into_inner));
}
