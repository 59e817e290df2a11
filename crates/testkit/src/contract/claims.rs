//! Obligations of `TaskQueue::claim` that do not depend on the order: eligibility (time,
//! type, region, status), the fields a claim sets, and exclusivity.

use std::collections::HashSet;
use std::time::Duration;

use prismq_domain::ports::{ClaimFilter, TaskEvent};
use prismq_domain::{ClaimingStrategy, Compatibility, TaskId, TaskStatus};

use super::support::setup;
use super::{ContractEnv, Subject};
use crate::fixtures::{claim_request, new_task, plus_millis, plus_secs, task_type_of, worker_id};

/// claim on an empty queue (or one with nothing eligible) is `None`.
pub async fn claim_on_empty_queue_is_none(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    for strategy in ClaimingStrategy::ALL {
        assert!(s.claim(strategy).await.is_none(), "{strategy}");
    }
}

/// claim sets status claimed, claimed_by, attempts + 1, a lease expiring at now + lease_for
/// and a fresh non-zero token, returns the task as stored, and logs `claimed`.
pub async fn claim_sets_lease_fields(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let id = s.add(new_task("a")).await;
    clock.advance(Duration::from_secs(2));
    let now = clock.now();
    let mut req = claim_request("worker-7", ClaimingStrategy::Lifo);
    req.lease_for = Duration::from_millis(45_500);
    let c = s.queue.claim(&req).await.unwrap().expect("eligible");
    assert_eq!(c.task.id, id);
    assert_eq!(c.task.status, TaskStatus::Claimed);
    assert_eq!(c.task.attempts, 1);
    assert_eq!(c.task.claimed_by, Some(worker_id("worker-7")));
    let expires = plus_millis(now, 45_500);
    assert_eq!(c.task.lease_expires_at, Some(expires));
    assert_eq!(c.task.lease_token, Some(c.lease.token));
    assert_ne!(c.lease.token.0, 0, "tokens are non-zero");
    assert_eq!(c.lease.task_id, id);
    assert_eq!(c.lease.worker, worker_id("worker-7"));
    assert_eq!(c.lease.expires_at, expires);
    assert_eq!(c.task.updated_at, now);
    assert_eq!(
        s.task(id).await,
        c.task,
        "the returned task is what is stored"
    );
    assert_eq!(
        s.events(id).await,
        vec![TaskEvent::Enqueued, TaskEvent::Claimed]
    );
}

/// A task whose run_after is in the future is not eligible until the clock reaches it
/// (`run_after <= now`).
pub async fn claim_waits_for_run_after(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let at = plus_secs(clock.now(), 60);
    let id = s.add(new_task("a").run_after(at)).await;
    for strategy in ClaimingStrategy::ALL {
        assert!(s.claim(strategy).await.is_none(), "{strategy} before");
    }
    clock.advance(Duration::from_millis(59_999));
    assert!(
        s.claim(ClaimingStrategy::Fifo).await.is_none(),
        "1 ms early"
    );
    clock.set(at);
    let c = s
        .claim(ClaimingStrategy::Lifo)
        .await
        .expect("due at run_after");
    assert_eq!(c.task.id, id);
}

/// A task with a live lease is not handed out again.
pub async fn claimed_task_is_not_claimed_again(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let a = s.add(new_task("a")).await;
    let b = s.add(new_task("a")).await;
    let first = s.claim_as("w1", ClaimingStrategy::Fifo).await.unwrap();
    let second = s.claim_as("w2", ClaimingStrategy::Fifo).await.unwrap();
    assert_eq!((first.task.id, second.task.id), (a, b));
    clock.advance(Duration::from_secs(29));
    for strategy in ClaimingStrategy::ALL {
        assert!(s.claim_as("w3", strategy).await.is_none(), "{strategy}");
    }
}

/// Only tasks of the filter's types are claimed; an empty filter takes every type.
pub async fn claim_filters_by_task_type(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let a = s.add(new_task("alpha")).await;
    let b = s.add(new_task("beta")).await;
    let g = s.add(new_task("gamma")).await;
    let mut req = claim_request("w1", ClaimingStrategy::Fifo);
    req.filter.task_types = vec![task_type_of("beta"), task_type_of("delta")];
    let c = s.queue.claim(&req).await.unwrap().unwrap();
    assert_eq!(c.task.id, b);
    assert!(s.queue.claim(&req).await.unwrap().is_none());
    req.filter.task_types = vec![task_type_of("gamma")];
    assert_eq!(s.queue.claim(&req).await.unwrap().unwrap().task.id, g);
    req.filter.task_types = vec![];
    assert_eq!(s.queue.claim(&req).await.unwrap().unwrap().task.id, a);
}

/// A task requiring a region goes only to a worker of that region: not to a worker without
/// a region, not to one of another region.
pub async fn region_task_needs_worker_of_that_region(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let us = s
        .add(new_task("a").compatibility(Compatibility::with_region("US").unwrap()))
        .await;
    let mut req = claim_request("w1", ClaimingStrategy::Fifo);
    assert!(s.queue.claim(&req).await.unwrap().is_none(), "no region");
    req.filter.region = Some("GB".into());
    assert!(s.queue.claim(&req).await.unwrap().is_none(), "GB");
    req.filter.region = Some("US".into());
    let c = s.queue.claim(&req).await.unwrap().expect("US worker");
    assert_eq!(c.task.id, us);
}

/// A region given in any case and with spaces around it (` gb`, as `NewTask::validate`
/// accepts) is stored normalised, by `enqueue` and `enqueue_batch` alike, so a worker of
/// that region claims the task and a worker of another region does not.
pub async fn a_region_is_stored_normalised(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let given = |region: &str| Compatibility {
        region: Some(region.into()),
    };
    let one = s.add(new_task("a").compatibility(given(" gb"))).await;
    let batch = s
        .queue
        .enqueue_batch(vec![new_task("a").compatibility(given("Gb "))])
        .await
        .unwrap();
    for id in [one, batch[0].id] {
        assert_eq!(
            s.task(id).await.compatibility.region.as_deref(),
            Some("GB"),
            "task {id:?}"
        );
    }
    let mut req = claim_request("w1", ClaimingStrategy::Fifo);
    req.filter.region = Some("US".into());
    assert!(s.queue.claim(&req).await.unwrap().is_none(), "a US worker");
    req.filter.region = Some("GB".into());
    let mut claimed = HashSet::new();
    for strategy in [ClaimingStrategy::Fifo, ClaimingStrategy::Priority] {
        req.strategy = strategy;
        let c = s
            .queue
            .claim(&req)
            .await
            .unwrap()
            .expect("a GB worker claims it");
        claimed.insert(c.task.id);
    }
    assert_eq!(claimed, HashSet::from([one, batch[0].id]));
}

/// A task without a region goes to any worker, with or without a region.
pub async fn regionless_task_goes_to_any_worker(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let a = s.add(new_task("a")).await;
    let b = s.add(new_task("a")).await;
    let mut req = claim_request("w1", ClaimingStrategy::Fifo);
    req.filter.region = Some("DE".into());
    assert_eq!(s.queue.claim(&req).await.unwrap().unwrap().task.id, a);
    req.filter = ClaimFilter::default();
    assert_eq!(s.queue.claim(&req).await.unwrap().unwrap().task.id, b);
}

/// Completed, failed and cancelled tasks are never claimed, whatever the strategy.
pub async fn finished_tasks_are_never_claimed(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    s.completed("a").await;
    s.dead_lettered("a").await;
    s.cancelled("a").await;
    clock.advance(Duration::from_secs(3600));
    for strategy in ClaimingStrategy::ALL {
        assert!(s.claim(strategy).await.is_none(), "{strategy}");
    }
}

/// Many concurrent claims never hand one task to two leases, and take every task.
pub async fn concurrent_claims_never_share_a_task(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let out = s
        .queue
        .enqueue_batch((0..40).map(|_| new_task("a")).collect())
        .await
        .unwrap();
    let want: HashSet<TaskId> = out.iter().map(|e| e.id).collect();
    let mut handles = Vec::new();
    for w in 0..8 {
        let q = s.queue.clone();
        handles.push(tokio::spawn(async move {
            let strategy = ClaimingStrategy::ALL[w % 4];
            let req = claim_request(&format!("w{w}"), strategy);
            let mut got = Vec::new();
            while let Some(c) = q.claim(&req).await.unwrap() {
                got.push(c.task.id);
                tokio::task::yield_now().await;
            }
            got
        }));
    }
    let mut seen = Vec::new();
    for h in handles {
        seen.extend(h.await.unwrap());
    }
    let unique: HashSet<TaskId> = seen.iter().copied().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "a task was claimed twice: {seen:?}"
    );
    assert_eq!(unique, want);
}
