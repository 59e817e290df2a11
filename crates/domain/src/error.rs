//! Errors shared by every layer: validation failures and the meaningful errors ports return.

use std::fmt;

/// Input that was refused. Names the field, what was wrong with the value, and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// The field or parameter that was wrong (`priority`, `params.top_n`, …).
    pub field: String,
    /// What was wrong with the value as given.
    pub problem: String,
    /// What would have been accepted.
    pub accepted: String,
}

impl ValidationError {
    /// Builds an error for `field`: `problem` says what is wrong, `accepted` what is allowed.
    pub fn new(
        field: impl Into<String>,
        problem: impl Into<String>,
        accepted: impl Into<String>,
    ) -> Self {
        ValidationError {
            field: field.into(),
            problem: problem.into(),
            accepted: accepted.into(),
        }
    }

    /// The same error with its field nested under `parent` (`params` + `top_n` → `params.top_n`).
    pub fn within(mut self, parent: &str) -> Self {
        self.field = format!("{parent}.{}", self.field);
        self
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {}: {}; accepted: {}",
            self.field, self.problem, self.accepted
        )
    }
}

impl std::error::Error for ValidationError {}

/// What a port can fail with. Variants carry meaning; no driver type ever appears here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The named thing does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The caller's lease on the task lapsed and the task moved on (claimed again, cancelled,
    /// finished). Nothing was changed.
    #[error("lease lost on task {task_id}: it was claimed again, cancelled or finished after the lease lapsed")]
    LeaseLost {
        /// The task whose lease was lost.
        task_id: i64,
    },
    /// Something that must be unique already exists.
    #[error("duplicate: {0}")]
    Duplicate(String),
    /// The store stayed locked by other writers past the configured timeout.
    #[error("store busy: {0}")]
    Busy(String),
    /// The request was refused before anything was written.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The operation is not legal in the task's current state (cancelling a completed task, …).
    #[error("task {task_id} is {status}: {action} is not possible in that state")]
    InvalidState {
        /// The task concerned.
        task_id: i64,
        /// Its current status.
        status: crate::TaskStatus,
        /// What was attempted.
        action: &'static str,
    },
    /// The store cannot be used: unreachable, read-only, corrupt, out of space, or its schema
    /// does not match. The message says which and what to do.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store's data is damaged (corrupt pages, a file that is no longer a database):
    /// retrying cannot help, and a worker must stop rather than loop on it. The message says
    /// what to do (validate it, restore a backup).
    #[error("database corrupt: {0}")]
    Corrupt(String),
    /// The store's file was deleted or replaced while this process had it open: whatever it
    /// writes now goes to a file nobody else sees, so it must stop. The message says which
    /// file and what to do.
    #[error("database gone: {0}")]
    Gone(String),
}

impl PortError {
    /// True when retrying the same call later may succeed (`Busy`, `Unavailable`); never for
    /// `Corrupt` or `Gone`, which no retry fixes.
    pub fn is_transient(&self) -> bool {
        matches!(self, PortError::Busy(_) | PortError::Unavailable(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_error_names_field_problem_and_accepted() {
        let e =
            ValidationError::new("top_n", "0 is below the minimum", "1 to 500").within("params");
        assert_eq!(
            e.to_string(),
            "invalid params.top_n: 0 is below the minimum; accepted: 1 to 500"
        );
    }

    #[test]
    fn transient_errors() {
        assert!(PortError::Busy("x".into()).is_transient());
        assert!(!PortError::NotFound("x".into()).is_transient());
        assert!(!PortError::LeaseLost { task_id: 1 }.is_transient());
        assert!(!PortError::Corrupt("malformed".into()).is_transient());
        assert!(!PortError::Gone("deleted".into()).is_transient());
    }
}
