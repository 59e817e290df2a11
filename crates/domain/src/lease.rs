//! Worker identity and the lease that fences one attempt of one task.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::error::ValidationError;
use crate::task::{truncate_for_message, TaskId};
use crate::Timestamp;

/// A worker's identity: 1–128 printable characters, e.g. `host-1234-0`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WorkerId(String);

impl WorkerId {
    /// Validates a worker id.
    ///
    /// # Errors
    /// Empty, longer than 128 bytes, or containing control characters.
    pub fn new(id: impl Into<String>) -> Result<Self, ValidationError> {
        let id = id.into();
        if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "worker_id",
                format!("{:?} is not a usable worker id", truncate_for_message(&id)),
                "1 to 128 bytes of printable text",
            ));
        }
        Ok(WorkerId(id))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A random token issued with each claim. Every later write of that attempt must present it;
/// once the task is claimed again, the old token no longer matches and the write is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LeaseToken(pub i64);

impl fmt::Display for LeaseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A worker's hold on one attempt of one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The task leased.
    pub task_id: TaskId,
    /// The fencing token of this attempt.
    pub token: LeaseToken,
    /// The holder.
    pub worker: WorkerId,
    /// When the lease lapses unless renewed.
    pub expires_at: Timestamp,
}
