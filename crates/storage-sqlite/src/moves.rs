//! The queue's counts per (type, status) for a worker's transitions: kept by the code that
//! moves a task, netted over one write and applied in it, instead of by a trigger per row.
//!
//! `queue_counts` holds how many tasks of each type are in each status (what `stats` and the
//! claim's list of queued types read). Since schema v12 the status trigger counts only the
//! operator's transitions (a cancel, a dead letter sent back); a worker's claims, starts,
//! completions, failures, releases and lapses are counted here. A write adds each move it
//! makes to a [`Moves`] and applies the net change at its end, in its own transaction (or
//! savepoint), so what it writes and what it counts commit or roll back together: a
//! completion and the claim after it move a task out of `running` and another into it, which
//! nets to one upsert for `queued` and one for `completed`, and a batch of them to the same
//! two. `tests/queue_counts.rs` compares the counts with the rows after every transition.

use rusqlite::{params, Transaction};

use crate::error::map_err;
use prismq_domain::PortError;

/// Moves between statuses made by one write, not yet applied to `queue_counts`.
#[derive(Debug, Default)]
pub(crate) struct Moves {
    net: Vec<(String, &'static str, i64)>,
}

impl Moves {
    /// One task of `task_type` went from `from` to `to`.
    pub(crate) fn moved(&mut self, task_type: &str, from: &'static str, to: &'static str) {
        if from != to {
            self.add(task_type, from, -1);
            self.add(task_type, to, 1);
        }
    }

    fn add(&mut self, task_type: &str, status: &'static str, by: i64) {
        match self
            .net
            .iter_mut()
            .find(|(t, s, _)| *s == status && t == task_type)
        {
            Some((_, _, n)) => *n += by,
            None => self.net.push((task_type.to_owned(), status, by)),
        }
    }

    /// Takes the moves of `other` (a step that succeeded) into these.
    pub(crate) fn merge(&mut self, other: Moves) {
        for (t, s, n) in other.net {
            self.add(&t, s, n);
        }
    }

    /// Applies the net change to `queue_counts` in `tx`: one upsert per (type, status) whose
    /// count changed.
    pub(crate) fn apply(self, tx: &Transaction<'_>) -> Result<(), PortError> {
        for (task_type, status, n) in self.net {
            if n != 0 {
                tx.prepare_cached(
                    "INSERT INTO queue_counts (type, status, n) VALUES (?1, ?2, ?3)
                     ON CONFLICT (status, type) DO UPDATE SET n = n + excluded.n",
                )
                .and_then(|mut s| s.execute(params![task_type, status, n]))
                .map_err(map_err)?;
            }
        }
        Ok(())
    }
}

/// The in-flight status of a claimed or running task, told by `started_at`: every write that
/// sets `running` sets it, and every other (a claim without a start, a requeue) clears it.
pub(crate) fn in_flight(started: bool) -> &'static str {
    if started {
        "running"
    } else {
        "claimed"
    }
}

#[cfg(test)]
mod tests {
    use super::Moves;

    #[test]
    fn a_completion_and_the_next_claim_net_to_two_counts() {
        let mut m = Moves::default();
        m.moved("a", "running", "completed");
        m.moved("a", "queued", "running");
        m.moved("a", "running", "completed");
        m.moved("b", "queued", "running");
        let mut net: Vec<_> = m.net.into_iter().filter(|(_, _, n)| *n != 0).collect();
        net.sort();
        assert_eq!(
            net,
            vec![
                ("a".to_owned(), "completed", 2),
                ("a".to_owned(), "queued", -1),
                ("a".to_owned(), "running", -1),
                ("b".to_owned(), "queued", -1),
                ("b".to_owned(), "running", 1),
            ]
        );
    }
}
