//! Worker identity, the lease that fences one attempt of one task, and how a lapsed lease
//! counts ([`MAX_LAPSES`]).

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

/// How many times a task's lease may lapse before the task is dead-lettered for it.
///
/// A lease lapses when the worker holding it dies (SIGKILL, OOM, power loss) or freezes past
/// the lease. That is not the task's own failure: when a lapsed lease is taken back, the
/// attempt counted at its claim is given back (attempts − 1, never below 0) and the task's
/// `lapses` goes up by one instead. Crashes of other processes alone therefore never use up a
/// task's `max_attempts`. A task whose lease lapses this many times is dead-lettered anyway,
/// with [`lapsed_dead_letter_message`] as its `last_error`: a task that kills or freezes
/// every worker that runs it must not be retried forever. The limit is larger than any
/// default `max_attempts`, so a storm of unrelated crashes does not reach it.
pub const MAX_LAPSES: u32 = 10;

/// The `last_error` of a task dead-lettered because its lease lapsed [`MAX_LAPSES`] times;
/// `worker` is the last worker that held it.
pub fn lapsed_dead_letter_message(lapses: u32, worker: Option<&str>) -> String {
    format!(
        "its lease lapsed {lapses} times: the workers that claimed it died or froze; the last was \
         {}. If its handler crashes or hangs the worker, fix that, then `prismq tasks retry` it",
        worker.unwrap_or("unknown")
    )
}

/// The message of the `lease_expired` entry written when a lapsed lease is taken back: the
/// attempt was given back, the lapse count, and what happens next (`dead`: the count
/// reached [`MAX_LAPSES`] and the task is dead-lettered; otherwise it is claimed again).
pub fn lapse_log_message(lapses: u32, dead: bool) -> String {
    let next = if dead {
        "the limit is reached: dead-lettered"
    } else {
        "claimed again"
    };
    format!(
        "lease lapsed; the attempt was given back (lapse {lapses} of at most {MAX_LAPSES}); {next}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lapse_limit_is_larger_than_any_default_attempt_limit() {
        assert!(MAX_LAPSES > crate::RetryPolicy::default().max_attempts);
    }

    #[test]
    fn the_lapse_dead_letter_message_says_why_and_who() {
        let m = lapsed_dead_letter_message(MAX_LAPSES, Some("host-1-0"));
        assert!(
            m.starts_with("its lease lapsed 10 times: the workers that claimed it died or froze; "),
            "{m}"
        );
        assert!(m.contains("host-1-0"), "{m}");
        assert!(lapsed_dead_letter_message(3, None).contains("unknown"));
    }
}
