//! Firing schedules from the worker runtime: every running `prismq work` process asks the
//! store for due schedules at most once per poll interval (one indexed read when nothing is
//! due), shared by all of its loops. The store's `fire_due` makes each slot one task however
//! many processes ask; this module only decides when to ask and reports what fired.
//!
//! Only the types registered in this build are passed to the store, so a schedule whose
//! task type this build lacks is neither fired nor advanced: a build that has the type fires
//! it (once, for the latest slot), and `prismq schedule list` shows the problem meanwhile.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use prismq_domain::ports::ScheduleStore;
use prismq_domain::TaskType;

/// The most due schedules one check fires; the rest fire at the next check.
pub const FIRE_BATCH: u32 = 100;

/// Decides when this process checks for due schedules, and checks.
pub(crate) struct Scheduler {
    store: Arc<dyn ScheduleStore>,
    /// The task types registered in this build.
    types: Vec<TaskType>,
    /// At most one check per this interval, across the process's loops.
    every: Duration,
    /// When the last check started; `None` before the first.
    last: Mutex<Option<Instant>>,
}

impl Scheduler {
    pub(crate) fn new(
        store: Arc<dyn ScheduleStore>,
        types: Vec<TaskType>,
        every: Duration,
    ) -> Self {
        Scheduler {
            store,
            types,
            every,
            last: Mutex::new(None),
        }
    }

    /// True, and the check is this caller's, when no loop checked within the interval.
    fn take_turn(&self) -> bool {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        match *last {
            Some(t) if now.duration_since(t) < self.every => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }

    /// Fires the due schedules if it is this caller's turn; returns how many tasks were
    /// enqueued. Store errors are logged and retried at the next turn: a schedule that did
    /// not fire stays due, so nothing is lost.
    pub(crate) async fn tick(&self) -> usize {
        if self.types.is_empty() || !self.take_turn() {
            return 0;
        }
        match self.store.fire_due(&self.types, FIRE_BATCH).await {
            Ok(fired) => {
                for f in &fired {
                    tracing::info!(
                        schedule = %f.name,
                        slot = %f.slot,
                        task_id = f.task.0,
                        caught_up = f.caught_up,
                        "schedule fired"
                    );
                }
                fired.len()
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not fire due schedules; trying again at the next poll");
                0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prismq_domain::ports::{ScheduleStore, TaskQueue};
    use prismq_domain::schedule::{Cadence, NewSchedule};
    use prismq_testkit::{FakeClock, MemoryStore};

    fn tt(s: &str) -> TaskType {
        TaskType::new(s).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn checks_at_most_once_per_interval_and_fires_due_slots() {
        let clock = Arc::new(FakeClock::default());
        let store = MemoryStore::new(clock.clone(), prismq_domain::RetryPolicy::default());
        store
            .add_schedule(NewSchedule::new(
                "h",
                tt("a"),
                serde_json::json!({}),
                Cadence::every("1h").unwrap(),
            ))
            .await
            .unwrap();
        let s = Scheduler::new(
            Arc::new(store.clone()),
            vec![tt("a")],
            Duration::from_secs(1),
        );
        assert_eq!(s.tick().await, 0, "not due");
        clock.advance(Duration::from_secs(3_600));
        assert_eq!(s.tick().await, 0, "within the interval: no check");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(s.tick().await, 1, "due and checked");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(s.tick().await, 0, "the slot fired once");
        let tasks = store
            .list(&prismq_domain::ports::TaskFilter::default())
            .await
            .unwrap();
        assert_eq!(tasks.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn schedule_of_a_type_not_in_this_build_is_left_due() {
        let clock = Arc::new(FakeClock::default());
        let store = MemoryStore::new(clock.clone(), prismq_domain::RetryPolicy::default());
        store
            .add_schedule(NewSchedule::new(
                "gone",
                tt("removed"),
                serde_json::json!({}),
                Cadence::every("1h").unwrap(),
            ))
            .await
            .unwrap();
        clock.advance(Duration::from_secs(3_600));
        let s = Scheduler::new(
            Arc::new(store.clone()),
            vec![tt("a")],
            Duration::from_secs(1),
        );
        assert_eq!(s.tick().await, 0);
        let kept = store.get_schedule("gone").await.unwrap();
        assert!(kept.next_slot <= clock.now(), "still due, nothing lost");
    }
}
