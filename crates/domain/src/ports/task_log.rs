//! The task log port: an audit trail of everything that happened to a task.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

use crate::error::PortError;
use crate::task::TaskId;
use crate::Timestamp;

/// Severity of a log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// Detail.
    Debug,
    /// Normal progress.
    Info,
    /// Something went wrong but the task goes on.
    Warn,
    /// The attempt failed.
    Error,
}

impl LogLevel {
    /// Lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// What happened. The queue writes the lifecycle events itself in the same transaction as
/// the change; handlers write `Progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskEvent {
    /// Enqueued.
    Enqueued,
    /// Claimed by a worker (a new attempt).
    Claimed,
    /// The handler started.
    Started,
    /// Put back with a backoff after a retryable error.
    Retried,
    /// Put back without using an attempt (quota, rate limit).
    Deferred,
    /// Finished successfully.
    Completed,
    /// Dead-lettered.
    Failed,
    /// Cancelled by an operator.
    Cancelled,
    /// Its lease lapsed and another claim took it over.
    LeaseExpired,
    /// Handed back by its worker without using an attempt (shutdown).
    Released,
    /// A dead letter sent back to the queue by an operator.
    Requeued,
    /// A handler's progress note.
    Progress,
}

impl TaskEvent {
    /// Every event.
    pub const ALL: [TaskEvent; 12] = [
        TaskEvent::Enqueued,
        TaskEvent::Claimed,
        TaskEvent::Started,
        TaskEvent::Retried,
        TaskEvent::Deferred,
        TaskEvent::Completed,
        TaskEvent::Failed,
        TaskEvent::Cancelled,
        TaskEvent::LeaseExpired,
        TaskEvent::Released,
        TaskEvent::Requeued,
        TaskEvent::Progress,
    ];

    /// snake_case name, as stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            TaskEvent::Enqueued => "enqueued",
            TaskEvent::Claimed => "claimed",
            TaskEvent::Started => "started",
            TaskEvent::Retried => "retried",
            TaskEvent::Deferred => "deferred",
            TaskEvent::Completed => "completed",
            TaskEvent::Failed => "failed",
            TaskEvent::Cancelled => "cancelled",
            TaskEvent::LeaseExpired => "lease_expired",
            TaskEvent::Released => "released",
            TaskEvent::Requeued => "requeued",
            TaskEvent::Progress => "progress",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<TaskEvent> {
        TaskEvent::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

impl fmt::Display for TaskEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An entry to append.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewLogEntry {
    /// Severity.
    pub level: LogLevel,
    /// What happened.
    pub event: TaskEvent,
    /// One line for humans.
    pub message: String,
    /// Structured detail (a JSON object or null).
    pub details: Value,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// The task it belongs to.
    pub task_id: TaskId,
    /// When it was written.
    pub at: Timestamp,
    /// Severity.
    pub level: LogLevel,
    /// What happened.
    pub event: TaskEvent,
    /// One line for humans.
    pub message: String,
    /// Structured detail.
    pub details: Value,
}

/// The per-task audit log.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait TaskLog: Send + Sync {
    /// Appends `entry` to `task`'s log, stamped with the store's clock.
    /// MUST fail with `NotFound` when the task does not exist, writing nothing.
    async fn append(&self, task: TaskId, entry: NewLogEntry) -> Result<(), PortError>;

    /// `task`'s entries in the order they were written (oldest first). MUST return an empty
    /// list for a task without entries and `NotFound` for a task that does not exist.
    async fn list(&self, task: TaskId) -> Result<Vec<LogRecord>, PortError>;
}
