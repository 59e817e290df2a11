//! The worker runtime: N concurrent worker loops in one process that claim tasks, run their
//! handlers under leases, and record the outcome — and never lose a task on the way.
//!
//! - [`Runtime::run`] (in [`supervisor`]) checks the set-up, starts the loops and waits for
//!   them; it returns a [`RunReport`].
//! - Each loop ([`worker_loop`]) registers itself in the worker registry as
//!   `hostname-pid-index`, heartbeats on its own interval, and loops: claim with the
//!   configured strategy and filter; when nothing is eligible, wait with [`backoff`]; on a
//!   claim, mark the task running, renew its lease every third of its length while the
//!   handler runs under its timeout, save the items, and complete — or fail with the error's
//!   class.
//!
//! Outcomes, by what the handler did:
//!
//! | handler | the task |
//! | --- | --- |
//! | `Ok(result)` | items saved (with the task id), then `complete` with a JSON summary |
//! | `Err(e)` | `e.partial` (items fetched before the failure) saved with the task id and noted in the task's log, then `fail` with `e.class` as is (retry, free deferral or dead letter by the queue's policy); a failed save is logged and never stops the `fail` |
//! | panicked | `fail` as `Retryable` with the panic message: a panic may be a transient bug trigger, and the attempt limit still dead-letters a handler that always panics |
//! | ran past `handler_timeout` | its cancel signal is raised and it gets 1 s to return: the `partial` items of the error it returns are saved as above (it is aborted if it does not return), and the attempt fails as `Retryable`; a success returned in that second completes the task |
//! | its lease was lost | cancel signal raised, the handler stopped, its result discarded |
//! | still running when the shutdown grace ends | cancel signal raised, 1 s to return its `partial` items (saved as above), lease released (no attempt used) |
//!
//! Before each claim a loop asks the process's [`gate`] which types it may claim: a type
//! whose runs keep failing transiently (its circuit breaker is open) or whose quota bucket
//! is spent is left out of the claim filter (and, with nothing left, the loop idles), and
//! every heartbeat carries the types held back and why.
//!
//! Transient store errors ([`PortError::is_transient`]) are retried with backoff and never
//! end a loop; other errors from `claim` or `register` end the run with [`RuntimeError`].

mod attempt;
pub mod backoff;
pub mod gate;
#[cfg(test)]
mod partial_tests;
mod scheduler;
pub use scheduler::FIRE_BATCH;
mod settings;
pub mod supervisor;
pub mod worker_loop;

pub use backoff::Backoff;
pub use gate::BreakerSettings;
pub use settings::{hostname, RunOptions, WorkerSettings};
pub use supervisor::Runtime;

use serde::Serialize;

use prismq_domain::{PortError, WorkerId};

/// What a run did, counted over every loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RunReport {
    /// Tasks claimed (attempts started).
    pub claimed: u64,
    /// Attempts that completed their task.
    pub completed: u64,
    /// Attempts that dead-lettered their task (permanent error or attempts exhausted).
    pub failed: u64,
    /// Attempts that sent their task back for a retry later (attempt used).
    pub retried: u64,
    /// Attempts that deferred their task without using an attempt (quota, rate limits).
    pub deferred: u64,
    /// Attempts handed back at shutdown without using an attempt.
    pub released: u64,
    /// Attempts whose lease was lost (or could not be written back after repeated store
    /// errors): their outcome was discarded and the task is another claim's to finish.
    pub lost: u64,
}

impl RunReport {
    /// Adds another report's counts.
    pub fn merge(&mut self, other: RunReport) {
        self.claimed += other.claimed;
        self.completed += other.completed;
        self.failed += other.failed;
        self.retried += other.retried;
        self.deferred += other.deferred;
        self.released += other.released;
        self.lost += other.lost;
    }
}

/// Why a run could not start or had to stop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    /// No plugin registered a handler.
    #[error("no task handler is registered, so there is nothing to work on; register a plugin")]
    NoHandlers,
    /// `worker.task_types` names a type no plugin handles.
    #[error("worker.task_types names {task_type:?}, which no registered plugin handles; registered: {registered}")]
    UnknownTaskType {
        /// The type named.
        task_type: String,
        /// The registered types, comma-separated.
        registered: String,
    },
    /// The worker id built from the host name was refused.
    #[error("cannot build a worker id: {0}")]
    WorkerId(String),
    /// A store operation failed with an error that retrying cannot fix.
    #[error("worker {worker}: {operation} failed: {source}")]
    Port {
        /// The loop that hit it.
        worker: WorkerId,
        /// What it was doing (`claim`, `register`).
        operation: &'static str,
        /// The store's error.
        #[source]
        source: PortError,
    },
    /// A worker loop panicked (a bug in the runtime, not in a handler).
    #[error("a worker loop crashed: {0}")]
    LoopCrashed(String),
}
