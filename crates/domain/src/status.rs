//! The task lifecycle: its states and the one function that says which moves are legal.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::error::ValidationError;

/// Where a task is in its lifecycle.
///
/// `queued` → `claimed` (lease taken, attempt counted) → `running` → `completed`, or back to
/// `queued` (retry or deferral), `failed` (the dead letter) or `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Waiting to be claimed once `run_after` has passed.
    Queued,
    /// Leased by a worker that has not started the handler yet.
    Claimed,
    /// The handler is running under a lease.
    Running,
    /// Finished successfully. Terminal.
    Completed,
    /// Dead-lettered: a permanent error or attempts exhausted. Leaves only by an explicit retry.
    Failed,
    /// Cancelled by an operator. Terminal.
    Cancelled,
}

impl TaskStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [TaskStatus; 6] = [
        TaskStatus::Queued,
        TaskStatus::Claimed,
        TaskStatus::Running,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
    ];

    /// The lowercase name used in storage, output and parsing.
    pub const fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Claimed => "claimed",
            TaskStatus::Running => "running",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    /// True for states a task leaves only by an explicit operator action (or never).
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }

    /// True while a worker holds a lease on the task.
    pub const fn is_leased(self) -> bool {
        matches!(self, TaskStatus::Claimed | TaskStatus::Running)
    }

    /// Whether a task may move from `self` to `to`. This is the whole state machine.
    ///
    /// - `queued → claimed` (a claim), `queued → cancelled`;
    /// - `claimed → running` (start), `claimed → queued` (release, retry, deferral),
    ///   `claimed → claimed` (the lease lapsed and another worker claimed it),
    ///   `claimed → failed`, `claimed → cancelled`;
    /// - `running → completed`, `running → queued`, `running → failed`,
    ///   `running → claimed` (lease lapsed, claimed again), `running → cancelled`;
    /// - `failed → queued` (an operator retries a dead letter);
    /// - `completed` and `cancelled` are terminal.
    pub const fn can_transition(self, to: TaskStatus) -> bool {
        use TaskStatus::*;
        matches!(
            (self, to),
            (Queued, Claimed)
                | (Queued, Cancelled)
                | (Claimed, Running)
                | (Claimed, Queued)
                | (Claimed, Claimed)
                | (Claimed, Failed)
                | (Claimed, Cancelled)
                | (Running, Completed)
                | (Running, Queued)
                | (Running, Failed)
                | (Running, Claimed)
                | (Running, Cancelled)
                | (Failed, Queued)
        )
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskStatus {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskStatus::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                ValidationError::new(
                    "status",
                    format!("{s:?} is not a task status"),
                    "queued, claimed, running, completed, failed, cancelled",
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskStatus::*;

    #[test]
    fn transition_table_covers_every_pair() {
        // Rows: from; columns: to, in TaskStatus::ALL order.
        let table: [[bool; 6]; 6] = [
            //  Q      Cl     R      Co     F      Ca
            [false, true, false, false, false, true], // Queued
            [true, true, true, false, true, true],    // Claimed
            [true, true, false, true, true, true],    // Running
            [false, false, false, false, false, false], // Completed
            [true, false, false, false, false, false], // Failed
            [false, false, false, false, false, false], // Cancelled
        ];
        for (i, from) in TaskStatus::ALL.into_iter().enumerate() {
            for (j, to) in TaskStatus::ALL.into_iter().enumerate() {
                assert_eq!(
                    from.can_transition(to),
                    table[i][j],
                    "{from} -> {to} should be {}",
                    table[i][j]
                );
            }
        }
    }

    #[test]
    fn terminal_states_have_no_exit() {
        for to in TaskStatus::ALL {
            assert!(!Completed.can_transition(to));
            assert!(!Cancelled.can_transition(to));
        }
    }

    #[test]
    fn parses_case_insensitively_and_rejects_unknown() {
        assert_eq!("QUEUED".parse::<TaskStatus>().unwrap(), Queued);
        assert_eq!(" failed ".parse::<TaskStatus>().unwrap(), Failed);
        let err = "done".parse::<TaskStatus>().unwrap_err().to_string();
        assert!(err.contains("\"done\""), "{err}");
        assert!(err.contains("queued, claimed"), "{err}");
    }

    #[test]
    fn names_round_trip() {
        for st in TaskStatus::ALL {
            assert_eq!(st.as_str().parse::<TaskStatus>().unwrap(), st);
            assert_eq!(
                serde_json::to_string(&st).unwrap(),
                format!("\"{}\"", st.as_str())
            );
        }
    }
}
