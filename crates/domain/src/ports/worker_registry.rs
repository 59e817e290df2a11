//! The worker registry port: who is working, on what, and whether they are alive.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::time::Duration;

use crate::claiming::ClaimingStrategy;
use crate::error::PortError;
use crate::task::{TaskId, TaskType, WorkerId};
use crate::Timestamp;

/// What a worker says about itself when it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Unique id.
    pub id: WorkerId,
    /// Host it runs on.
    pub hostname: String,
    /// Its process id.
    pub pid: u32,
    /// The task types it handles.
    pub capabilities: Vec<TaskType>,
    /// The strategy it claims with.
    pub strategy: ClaimingStrategy,
}

/// A periodic sign of life.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The task it is working on, if any.
    pub current_task: Option<TaskId>,
    /// Tasks it completed so far.
    pub tasks_done: u64,
    /// Attempts it failed so far.
    pub tasks_failed: u64,
    /// The task types its process holds back from claiming now, and why.
    #[serde(default)]
    pub held: Vec<HeldType>,
}

/// A task type a worker process does not claim for now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldType {
    /// The type held back.
    pub task_type: TaskType,
    /// When the hold lifts, if known (a breaker waiting for its probe's outcome: `None`).
    pub until: Option<Timestamp>,
    /// Why.
    #[serde(flatten)]
    pub reason: HoldReason,
}

/// Why a task type is held back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum HoldReason {
    /// The type's circuit breaker is open: its runs kept failing transiently.
    Breaker {
        /// Consecutive transient failures that opened it.
        failures: u32,
    },
    /// A quota bucket its runs charge is spent.
    Quota {
        /// The bucket's name in the quota ledger.
        bucket: String,
    },
}

impl std::fmt::Display for HoldReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HoldReason::Breaker { failures } => write!(
                f,
                "circuit breaker open after {failures} consecutive transient failures"
            ),
            HoldReason::Quota { bucket } => write!(f, "quota bucket {bucket} spent"),
        }
    }
}

/// A worker's state as others see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerHealth {
    /// Heartbeat within the staleness threshold.
    Active,
    /// Registered, but silent for longer than the threshold (crashed or hung).
    Stale,
    /// Deregistered cleanly.
    Stopped,
}

/// A registered worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerRecord {
    /// What it registered with.
    pub info: WorkerInfo,
    /// When it registered.
    pub started_at: Timestamp,
    /// Its last heartbeat (registration counts as one).
    pub heartbeat_at: Timestamp,
    /// Its last heartbeat's state.
    pub heartbeat: Heartbeat,
    /// Alive, silent or gone.
    pub health: WorkerHealth,
}

/// The registry of worker processes and loops.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait WorkerRegistry: Send + Sync {
    /// Registers a worker (or re-registers one with the same id, resetting it to active with
    /// zero counters). MUST record now as both `started_at` and `heartbeat_at`.
    async fn register(&self, info: &WorkerInfo) -> Result<(), PortError>;

    /// Records a heartbeat at now, with its state (current task, counters, held types) as
    /// given, which [`WorkerRegistry::list`] MUST read back unchanged. MUST fail with
    /// `NotFound` for an unknown worker.
    async fn heartbeat(&self, id: &WorkerId, beat: Heartbeat) -> Result<(), PortError>;

    /// Marks the worker stopped (kept for history, counters as last heartbeated; its held
    /// types cleared). MUST fail with `NotFound` when unknown.
    async fn deregister(&self, id: &WorkerId) -> Result<(), PortError>;

    /// Every worker, with health: `Stopped` if deregistered, `Stale` if its heartbeat is older
    /// than `stale_after`, else `Active`. Ordered by id.
    async fn list(&self, stale_after: Duration) -> Result<Vec<WorkerRecord>, PortError>;

    /// Removes stopped workers and those stale for longer than `stale_after`; returns how many.
    async fn prune(&self, stale_after: Duration) -> Result<u64, PortError>;
}
