//! Obligations of the claiming strategies: the exact order each one documents in
//! `prismq_domain::claiming`, ties by id, and WeightedRandom's distribution.

use std::time::Duration;

use prismq_domain::ports::{Failure, TaskEvent};
use prismq_domain::{ClaimingStrategy, ErrorClass, NewTask, Priority, TaskId};

use super::support::setup;
use super::{ContractEnv, Subject};
use crate::fixtures::{new_task, plus_secs};

fn p(v: i64) -> Priority {
    Priority::new(v).expect("valid priority")
}

/// Enqueues tasks `(priority, run_after offset in seconds)` one by one; returns their ids.
async fn seed(s: &Subject, base: prismq_domain::Timestamp, spec: &[(i64, i64)]) -> Vec<TaskId> {
    let mut ids = Vec::new();
    for &(prio, offset) in spec {
        let task: NewTask = new_task("a")
            .priority(p(prio))
            .run_after(plus_secs(base, offset));
        ids.push(s.add(task).await);
    }
    ids
}

/// The mixed set every order test uses: (priority, run_after offset).
const SPEC: [(i64, i64); 6] = [(5, -30), (9, -10), (5, -40), (9, -40), (1, -10), (5, -30)];

/// FIFO: run_after ascending, then id ascending.
pub async fn fifo_order_with_ties_by_id(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let ids = seed(&s, clock.now(), &SPEC).await;
    let want = vec![ids[2], ids[3], ids[0], ids[5], ids[1], ids[4]];
    assert_eq!(s.drain(ClaimingStrategy::Fifo).await, want);
}

/// LIFO: run_after descending, then id descending.
pub async fn lifo_order_with_ties_by_id(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let ids = seed(&s, clock.now(), &SPEC).await;
    let want = vec![ids[4], ids[1], ids[5], ids[0], ids[3], ids[2]];
    assert_eq!(s.drain(ClaimingStrategy::Lifo).await, want);
}

/// Priority: priority descending, then run_after ascending, then id ascending.
pub async fn priority_order_with_ties_by_id(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let ids = seed(&s, clock.now(), &SPEC).await;
    let want = vec![ids[3], ids[1], ids[2], ids[0], ids[5], ids[4]];
    assert_eq!(s.drain(ClaimingStrategy::Priority).await, want);
}

/// A task put back by a retry is ordered by its new run_after, not its enqueue time.
pub async fn retried_task_is_ordered_by_its_new_run_after(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (clock, s) = setup(factory);
    let t0 = clock.now();
    let ids = seed(&s, t0, &[(5, -30), (5, -20)]).await;
    let c = s.claim(ClaimingStrategy::Fifo).await.unwrap();
    assert_eq!(c.task.id, ids[0]);
    let failure = Failure {
        class: ErrorClass::RetryableAfter(plus_secs(t0, 5)),
        message: "quota".into(),
    };
    s.queue.fail(&c.lease, &failure).await.unwrap();
    clock.advance(Duration::from_secs(10));
    let later = s.add(new_task("a")).await;
    // ids[0] now waits since t0+5, after ids[1] (t0-20) and before `later` (t0+10).
    assert_eq!(
        s.drain(ClaimingStrategy::Fifo).await,
        vec![ids[1], ids[0], later]
    );
    assert_eq!(
        s.events(ids[0]).await,
        vec![
            TaskEvent::Enqueued,
            TaskEvent::Claimed,
            TaskEvent::Deferred,
            TaskEvent::Claimed
        ]
    );
}

/// WeightedRandom: within the drawn level, the oldest task (run_after, then id) comes first.
pub async fn weighted_random_takes_oldest_of_drawn_level(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let ids = seed(&s, clock.now(), &[(7, -10), (7, -50), (7, -10), (7, -30)]).await;
    assert_eq!(
        s.drain(ClaimingStrategy::WeightedRandom).await,
        vec![ids[1], ids[3], ids[0], ids[2]]
    );
}

/// WeightedRandom draws level p with probability p / Σ q over non-empty levels: per level,
/// not per task. With 3,000 tasks at priority 1, 500 at 5 and 1,000 at 10, no level empties
/// in 1,100 claims, so each level's share must sit within 5 standard deviations of 1/16,
/// 5/16 and 10/16 (a false failure has probability below 1e-5). Weighting per task instead
/// would give priority 1 about 19 % of the claims, far outside the bound. Within a level
/// the oldest task is taken first.
pub async fn weighted_random_draws_levels_in_proportion(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let base = plus_secs(clock.now(), -10_000);
    let mut batch = Vec::new();
    for (prio, n) in [(1, 3000i64), (5, 500), (10, 1000)] {
        for i in 0..n {
            batch.push(
                new_task("a")
                    .priority(p(prio))
                    .run_after(plus_secs(base, i)),
            );
        }
    }
    s.queue.enqueue_batch(batch).await.unwrap();
    const CLAIMS: u32 = 1100;
    let mut counts = [0u32; 11];
    let mut last_run_after = [None; 11];
    for _ in 0..CLAIMS {
        let c = s
            .claim(ClaimingStrategy::WeightedRandom)
            .await
            .expect("tasks left");
        let level = usize::from(c.task.priority.get());
        counts[level] += 1;
        if let Some(prev) = last_run_after[level] {
            assert!(c.task.run_after > prev, "level {level} not in FIFO order");
        }
        last_run_after[level] = Some(c.task.run_after);
    }
    assert_eq!(counts[1] + counts[5] + counts[10], CLAIMS);
    let n = f64::from(CLAIMS);
    for (level, share) in [(1usize, 1.0 / 16.0), (5, 5.0 / 16.0), (10, 10.0 / 16.0)] {
        let expected = n * share;
        let sd = (n * share * (1.0 - share)).sqrt();
        let got = f64::from(counts[level]);
        assert!(
            (got - expected).abs() <= 5.0 * sd,
            "priority {level}: {got} claims, expected {expected:.1} ± {:.1} (counts {counts:?})",
            5.0 * sd
        );
    }
}
