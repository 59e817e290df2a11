//! What a run did ([`RunReport`]) and why one could not start or had to stop
//! ([`RuntimeError`]).

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
