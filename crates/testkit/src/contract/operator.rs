//! Obligations of `TaskQueue`'s operator actions: cancel (fencing the running attempt) and
//! retry of a dead letter.

use std::time::Duration;

use prismq_domain::ports::TaskEvent;
use prismq_domain::{ClaimingStrategy, TaskId, TaskStatus};
use serde_json::json;

use super::support::{assert_invalid_state, assert_lease_lost, assert_not_found, setup};
use super::{ContractEnv, Subject};
use crate::fixtures::new_task;

/// cancel of a queued task: status cancelled, finished now, logged `cancelled`, never claimed.
pub async fn cancel_queued_task(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let id = s.add(new_task("a")).await;
    clock.advance(Duration::from_secs(5));
    let t = s.queue.cancel(id).await.unwrap();
    assert_eq!((t.id, t.status), (id, TaskStatus::Cancelled));
    assert_eq!(t.finished_at, Some(clock.now()));
    assert_eq!(s.task(id).await, t);
    assert_eq!(
        s.events(id).await,
        vec![TaskEvent::Enqueued, TaskEvent::Cancelled]
    );
    assert!(s.claim(ClaimingStrategy::Fifo).await.is_none());
}

/// cancel of a claimed task: its lease's later writes get `LeaseLost`.
pub async fn cancel_claimed_task_fences_its_lease(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let id = s.add(new_task("a")).await;
    let c = s.claim(ClaimingStrategy::Fifo).await.unwrap();
    let t = s.queue.cancel(id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Cancelled);
    assert_lease_lost(s.queue.start(&c.lease).await, id);
    assert_lease_lost(
        s.queue.renew_lease(&c.lease, Duration::from_secs(30)).await,
        id,
    );
    assert_lease_lost(s.queue.release(&c.lease).await, id);
    assert_eq!(s.task(id).await, t, "refused writes changed nothing");
    assert_eq!(
        s.events(id).await,
        vec![
            TaskEvent::Enqueued,
            TaskEvent::Claimed,
            TaskEvent::Cancelled
        ]
    );
}

/// cancel of a running task: its handler's complete gets `LeaseLost`.
pub async fn cancel_running_task_fences_its_lease(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let id = s.add(new_task("a")).await;
    let c = s.claim(ClaimingStrategy::Fifo).await.unwrap();
    s.queue.start(&c.lease).await.unwrap();
    let t = s.queue.cancel(id).await.unwrap();
    assert_eq!(t.status, TaskStatus::Cancelled);
    assert_lease_lost(s.queue.complete(&c.lease, Some(json!({}))).await, id);
    let failure = prismq_domain::ports::Failure {
        class: prismq_domain::ErrorClass::Retryable,
        message: "x".into(),
    };
    assert_lease_lost(s.queue.fail(&c.lease, &failure).await, id);
    assert_eq!(s.task(id).await, t);
}

/// cancel of a completed, failed or cancelled task is `InvalidState`, changing nothing.
pub async fn cancel_final_task_is_invalid_state(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let done = s.completed("a").await;
    let failed = s.dead_lettered("a").await;
    let cancelled = s.cancelled("a").await;
    for (id, status) in [
        (done, TaskStatus::Completed),
        (failed, TaskStatus::Failed),
        (cancelled, TaskStatus::Cancelled),
    ] {
        let before = s.task(id).await;
        let log_before = s.events(id).await;
        assert_invalid_state(s.queue.cancel(id).await, id, status);
        assert_eq!(s.task(id).await, before);
        assert_eq!(s.events(id).await, log_before);
    }
}

/// cancel of an unknown id is `NotFound`.
pub async fn cancel_unknown_is_not_found(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    assert_not_found(s.queue.cancel(TaskId(42)).await);
}

/// retry of a dead letter: queued, attempts 0, run_after now, logged `requeued`, claimable.
pub async fn retry_requeues_dead_letter(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let id = s.dead_lettered("a").await;
    clock.advance(Duration::from_secs(30));
    let t = s.queue.retry(id).await.unwrap();
    assert_eq!((t.id, t.status, t.attempts), (id, TaskStatus::Queued, 0));
    assert_eq!(t.run_after, clock.now());
    assert_eq!(s.task(id).await, t);
    assert_eq!(
        s.events(id).await,
        vec![
            TaskEvent::Enqueued,
            TaskEvent::Claimed,
            TaskEvent::Failed,
            TaskEvent::Requeued
        ]
    );
    let c = s.claim(ClaimingStrategy::Fifo).await.unwrap();
    assert_eq!((c.task.id, c.task.attempts), (id, 1));
}

/// retry of anything but a failed task is `InvalidState`; of an unknown id `NotFound`.
pub async fn retry_refuses_other_statuses(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let done = s.completed("a").await;
    let cancelled = s.cancelled("a").await;
    let running = s.add(new_task("a")).await;
    let c = s.claim(ClaimingStrategy::Fifo).await.unwrap();
    s.queue.start(&c.lease).await.unwrap();
    let claimed = s.add(new_task("a")).await;
    s.claim(ClaimingStrategy::Fifo).await.unwrap();
    let queued = s.add(new_task("a")).await;
    for (id, status) in [
        (done, TaskStatus::Completed),
        (cancelled, TaskStatus::Cancelled),
        (running, TaskStatus::Running),
        (claimed, TaskStatus::Claimed),
        (queued, TaskStatus::Queued),
    ] {
        let before = s.task(id).await;
        assert_invalid_state(s.queue.retry(id).await, id, status);
        assert_eq!(s.task(id).await, before);
    }
    assert_not_found(s.queue.retry(TaskId(queued.0 + 100)).await);
}
