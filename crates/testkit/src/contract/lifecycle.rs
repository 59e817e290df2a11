//! Obligations of one attempt's fenced lifecycle: renew_lease, start, complete and release.

use std::time::Duration;

use prismq_domain::ports::TaskEvent;
use prismq_domain::{ClaimingStrategy, ErrorClass, Lease, LeaseToken, TaskStatus};
use serde_json::json;

use super::support::{assert_lease_lost, failure, setup};
use super::{ContractEnv, Subject};
use crate::fixtures::plus_secs;

/// renew_lease moves the expiry to now + lease_for, keeps the token, and the task is not
/// rescued before the new expiry.
pub async fn renew_extends_the_lease(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let c = s.one_claimed(None).await;
    clock.advance(Duration::from_secs(20));
    let renewed = s
        .queue
        .renew_lease(&c.lease, Duration::from_secs(60))
        .await
        .unwrap();
    let expires = plus_secs(clock.now(), 60);
    assert_eq!(renewed.expires_at, expires);
    assert_eq!(
        (renewed.task_id, renewed.token, &renewed.worker),
        (c.lease.task_id, c.lease.token, &c.lease.worker)
    );
    let t = s.task(c.task.id).await;
    assert_eq!(t.lease_expires_at, Some(expires));
    assert_eq!(t.status, TaskStatus::Claimed);
    assert_eq!(t.attempts, 1);
    clock.advance(Duration::from_secs(59));
    assert!(s.claim_as("w2", ClaimingStrategy::Fifo).await.is_none());
    s.queue.start(&renewed).await.unwrap();
}

/// A lapsed lease nobody claimed yet can still be renewed while its token matches.
pub async fn renew_after_lapse_without_reclaim_succeeds(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let c = s.one_claimed(None).await;
    s.queue.start(&c.lease).await.unwrap();
    clock.advance(Duration::from_secs(45));
    let renewed = s
        .queue
        .renew_lease(&c.lease, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(renewed.expires_at, plus_secs(clock.now(), 30));
    assert!(s.claim_as("w2", ClaimingStrategy::Fifo).await.is_none());
    assert_eq!(s.task(c.task.id).await.status, TaskStatus::Running);
}

/// renew_lease with a token that does not match is `LeaseLost` and changes nothing.
pub async fn renew_with_stale_token_is_lease_lost(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let c = s.one_claimed(None).await;
    let forged = Lease {
        token: LeaseToken(c.lease.token.0.wrapping_add(1)),
        ..c.lease.clone()
    };
    let before = s.task(c.task.id).await;
    assert_lease_lost(
        s.queue.renew_lease(&forged, Duration::from_secs(300)).await,
        c.task.id,
    );
    assert_eq!(s.task(c.task.id).await, before);
}

/// start marks the task running and logs `started`.
pub async fn start_marks_running(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let c = s.one_claimed(None).await;
    clock.advance(Duration::from_secs(1));
    s.queue.start(&c.lease).await.unwrap();
    let t = s.task(c.task.id).await;
    assert_eq!((t.status, t.attempts), (TaskStatus::Running, 1));
    assert_eq!(t.lease_token, Some(c.lease.token));
    assert_eq!(t.updated_at, clock.now());
    assert_eq!(
        s.events(c.task.id).await,
        vec![TaskEvent::Enqueued, TaskEvent::Claimed, TaskEvent::Started]
    );
}

/// start with a stale token is `LeaseLost` and changes nothing.
pub async fn start_with_stale_token_is_lease_lost(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let c = s.one_claimed(None).await;
    let forged = Lease {
        token: LeaseToken(c.lease.token.0.wrapping_add(7)),
        ..c.lease.clone()
    };
    assert_lease_lost(s.queue.start(&forged).await, c.task.id);
    assert_eq!(s.task(c.task.id).await.status, TaskStatus::Claimed);
    assert_eq!(s.events(c.task.id).await.len(), 2);
}

/// complete: status completed, finished now, summary stored, lease cleared, logged
/// `completed`.
pub async fn complete_stores_summary_and_clears_lease(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let c = s.one_claimed(None).await;
    s.queue.start(&c.lease).await.unwrap();
    clock.advance(Duration::from_secs(3));
    let summary = json!({"items": 42, "note": "done"});
    s.queue
        .complete(&c.lease, Some(summary.clone()))
        .await
        .unwrap();
    let t = s.task(c.task.id).await;
    assert_eq!(t.status, TaskStatus::Completed);
    assert_eq!(t.finished_at, Some(clock.now()));
    assert_eq!(t.summary, Some(summary));
    assert_eq!((t.lease_token, t.lease_expires_at), (None, None));
    assert_eq!(t.attempts, 1);
    assert_eq!(
        s.events(c.task.id).await,
        vec![
            TaskEvent::Enqueued,
            TaskEvent::Claimed,
            TaskEvent::Started,
            TaskEvent::Completed
        ]
    );
}

/// A second complete (or any write) with the finished attempt's lease is `LeaseLost`.
pub async fn complete_twice_is_lease_lost(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let c = s.one_claimed(None).await;
    s.queue.start(&c.lease).await.unwrap();
    s.queue.complete(&c.lease, Some(json!(1))).await.unwrap();
    let before = s.task(c.task.id).await;
    assert_lease_lost(s.queue.complete(&c.lease, Some(json!(2))).await, c.task.id);
    assert_lease_lost(
        s.queue
            .fail(&c.lease, &failure(ErrorClass::Permanent))
            .await,
        c.task.id,
    );
    assert_lease_lost(s.queue.release(&c.lease).await, c.task.id);
    assert_eq!(s.task(c.task.id).await, before);
}

/// release hands the task back: queued, run_after now, attempts − 1, lease cleared, logged
/// `released`, and claimable again at once.
pub async fn release_requeues_without_using_attempt(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let c = s.one_claimed(None).await;
    s.queue.start(&c.lease).await.unwrap();
    clock.advance(Duration::from_secs(4));
    s.queue.release(&c.lease).await.unwrap();
    let t = s.task(c.task.id).await;
    assert_eq!((t.status, t.attempts), (TaskStatus::Queued, 0));
    assert_eq!(t.run_after, clock.now());
    assert_eq!((t.lease_token, t.lease_expires_at), (None, None));
    assert_eq!(
        s.events(c.task.id).await,
        vec![
            TaskEvent::Enqueued,
            TaskEvent::Claimed,
            TaskEvent::Started,
            TaskEvent::Released
        ]
    );
    assert_lease_lost(s.queue.start(&c.lease).await, c.task.id);
    let again = s.claim(ClaimingStrategy::Fifo).await.expect("claimable");
    assert_eq!((again.task.id, again.task.attempts), (c.task.id, 1));
}

/// release with a stale token is `LeaseLost` and changes nothing.
pub async fn release_with_stale_token_is_lease_lost(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let c = s.one_claimed(None).await;
    let forged = Lease {
        token: LeaseToken(c.lease.token.0 ^ 0x55),
        ..c.lease.clone()
    };
    let before = s.task(c.task.id).await;
    assert_lease_lost(s.queue.release(&forged).await, c.task.id);
    assert_eq!(s.task(c.task.id).await, before);
}

/// claim_and_start claims like claim (same order, lease, attempt) and leaves the task
/// running, with `claimed` then `started` logged; the lease then completes it.
pub async fn claim_and_start_marks_running_and_logs_both(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let older = s.add(crate::fixtures::new_task("a")).await;
    clock.advance(Duration::from_secs(1));
    s.add(crate::fixtures::new_task("a")).await;
    assert!(s
        .queue
        .claim_and_start(&crate::fixtures::claim_request(
            "w9",
            ClaimingStrategy::Lifo
        ))
        .await
        .unwrap()
        .is_some_and(|c| c.task.id != older));
    let c = s
        .queue
        .claim_and_start(&crate::fixtures::claim_request(
            "w9",
            ClaimingStrategy::Fifo,
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.task.id, older);
    assert_eq!((c.task.status, c.task.attempts), (TaskStatus::Running, 1));
    assert_eq!(c.lease.expires_at, plus_secs(clock.now(), 30));
    let t = s.task(older).await;
    assert_eq!(t.status, TaskStatus::Running);
    assert_eq!(t.lease_token, Some(c.lease.token));
    let events: Vec<TaskEvent> = s
        .logs
        .list(older)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .collect();
    assert_eq!(
        events,
        [TaskEvent::Enqueued, TaskEvent::Claimed, TaskEvent::Started]
    );
    s.queue.complete(&c.lease, None).await.unwrap();
    assert_eq!(s.task(older).await.status, TaskStatus::Completed);
    assert!(s
        .queue
        .claim_and_start(&crate::fixtures::claim_request(
            "w9",
            ClaimingStrategy::Fifo
        ))
        .await
        .unwrap()
        .is_none());
}

fn next_request(worker: &str) -> prismq_domain::ports::ClaimRequest {
    crate::fixtures::claim_request(worker, ClaimingStrategy::Fifo)
}

/// complete_and_claim completes the attempt (summary, finished_at, lease cleared, logged)
/// and answers the next task as claim_and_start would: running, under a new lease.
pub async fn complete_and_claim_completes_then_claims_the_next(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (clock, s) = setup(factory);
    let first = s.add(crate::fixtures::new_task("a")).await;
    clock.advance(Duration::from_secs(1));
    let second = s.add(crate::fixtures::new_task("a")).await;
    let c = s
        .queue
        .claim_and_start(&next_request("w1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.task.id, first);
    clock.advance(Duration::from_secs(2));
    let summary = json!({"items": 3});
    let next = s
        .queue
        .complete_and_claim(&c.lease, Some(summary.clone()), &next_request("w1"))
        .await
        .expect("the completion")
        .expect("the next claim")
        .expect("a next task");
    let t = s.task(first).await;
    assert_eq!(t.status, TaskStatus::Completed);
    assert_eq!(t.finished_at, Some(clock.now()));
    assert_eq!(t.summary, Some(summary));
    assert_eq!((t.lease_token, t.lease_expires_at), (None, None));
    assert_eq!(
        s.events(first).await,
        vec![
            TaskEvent::Enqueued,
            TaskEvent::Claimed,
            TaskEvent::Started,
            TaskEvent::Completed
        ]
    );
    assert_eq!(next.task.id, second);
    assert_eq!(
        (next.task.status, next.task.attempts),
        (TaskStatus::Running, 1)
    );
    assert_eq!(next.lease.expires_at, plus_secs(clock.now(), 30));
    let n = s.task(second).await;
    assert_eq!(n.status, TaskStatus::Running);
    assert_eq!(n.lease_token, Some(next.lease.token));
    assert_eq!(
        s.events(second).await,
        vec![TaskEvent::Enqueued, TaskEvent::Claimed, TaskEvent::Started]
    );
    s.queue.complete(&next.lease, None).await.unwrap();
}

/// complete_and_claim with a stale token is `LeaseLost`, and neither the task nor the one
/// waiting behind it changes: nothing is claimed.
pub async fn complete_and_claim_with_a_stale_token_writes_nothing(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (clock, s) = setup(factory);
    let c = s.one_claimed(None).await;
    s.queue.start(&c.lease).await.unwrap();
    s.queue.complete(&c.lease, None).await.unwrap();
    clock.advance(Duration::from_secs(1));
    let waiting = s.add(crate::fixtures::new_task("a")).await;
    let (done, queued) = (s.task(c.task.id).await, s.task(waiting).await);
    assert_lease_lost(
        s.queue
            .complete_and_claim(&c.lease, Some(json!(2)), &next_request("w1"))
            .await,
        c.task.id,
    );
    assert_eq!(s.task(c.task.id).await, done);
    assert_eq!(s.task(waiting).await, queued);
    assert_eq!(queued.status, TaskStatus::Queued);
}

/// complete_and_claim with nothing left to claim completes the attempt and answers no task.
pub async fn complete_and_claim_on_an_empty_queue_completes(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (_, s) = setup(factory);
    let c = s.one_claimed(None).await;
    s.queue.start(&c.lease).await.unwrap();
    let next = s
        .queue
        .complete_and_claim(&c.lease, None, &next_request("w1"))
        .await
        .expect("the completion")
        .expect("the next claim");
    assert!(next.is_none());
    assert_eq!(s.task(c.task.id).await.status, TaskStatus::Completed);
    assert!(s
        .queue
        .claim_and_start(&next_request("w1"))
        .await
        .unwrap()
        .is_none());
}

/// complete_and_claim takes over a lapsed lease before any queued task, as claim_and_start
/// does, whatever the strategy: the worker's own attempt completed, the lapsed task claimed
/// and started under a fresh lease with its lapse counted.
pub async fn complete_and_claim_rescues_a_lapsed_lease_first(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    for strategy in ClaimingStrategy::ALL {
        let (clock, s) = setup(&factory);
        let t0 = clock.now();
        let lapsing = s.add(crate::fixtures::new_task("a")).await;
        let lost = s.claim_as("w1", ClaimingStrategy::Fifo).await.unwrap();
        assert_eq!(lost.task.id, lapsing);
        let own = s.add(crate::fixtures::new_task("a")).await;
        let c = s
            .queue
            .claim_and_start(&next_request("w2"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.task.id, own);
        let lease = s
            .queue
            .renew_lease(&c.lease, Duration::from_secs(120))
            .await
            .unwrap();
        // A queued task every strategy would otherwise prefer: older and higher.
        let _queued = s
            .add(
                crate::fixtures::new_task("a")
                    .run_after(plus_secs(t0, -3600))
                    .priority(prismq_domain::Priority::MAX),
            )
            .await;
        clock.advance(Duration::from_secs(31));
        let next = s
            .queue
            .complete_and_claim(
                &lease,
                None,
                &crate::fixtures::claim_request("w2", strategy),
            )
            .await
            .expect("the completion")
            .expect("the next claim")
            .expect("the lapsed task");
        assert_eq!(
            s.task(own).await.status,
            TaskStatus::Completed,
            "{strategy}"
        );
        assert_eq!(next.task.id, lapsing, "{strategy}");
        assert_eq!(
            (next.task.status, next.task.attempts, next.task.lapses),
            (TaskStatus::Running, 1, 1),
            "{strategy}"
        );
        assert_ne!(
            next.lease.token, lost.lease.token,
            "{strategy}: a fresh token"
        );
        assert_eq!(
            s.events(lapsing).await,
            vec![
                TaskEvent::Enqueued,
                TaskEvent::Claimed,
                TaskEvent::LeaseExpired,
                TaskEvent::Claimed,
                TaskEvent::Started
            ],
            "{strategy}"
        );
    }
}

/// complete_and_claim picks the next task across the worker's types as claim_and_start
/// does: FIFO the oldest, LIFO the newest, Priority the highest level, whichever type holds
/// it.
pub async fn complete_and_claim_picks_across_types_by_strategy(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let cases = [
        (ClaimingStrategy::Fifo, "oldest"),
        (ClaimingStrategy::Lifo, "newest"),
        (ClaimingStrategy::Priority, "highest"),
    ];
    for (strategy, wanted) in cases {
        let (clock, s) = setup(&factory);
        let t0 = clock.now();
        let c = s.one_claimed(None).await;
        s.queue.start(&c.lease).await.unwrap();
        let queued = |task_type: &str, secs: i64, level: i64| {
            crate::fixtures::new_task(task_type)
                .run_after(plus_secs(t0, secs))
                .priority(prismq_domain::Priority::new(level).unwrap())
        };
        let oldest = s.add(queued("b", -100, 5)).await;
        let highest = s.add(queued("c", -50, 9)).await;
        let newest = s.add(queued("b", -10, 1)).await;
        let expected = match wanted {
            "oldest" => oldest,
            "newest" => newest,
            _ => highest,
        };
        let next = s
            .queue
            .complete_and_claim(
                &c.lease,
                None,
                &crate::fixtures::claim_request("w1", strategy),
            )
            .await
            .expect("the completion")
            .expect("the next claim")
            .expect("a next task");
        assert_eq!(next.task.id, expected, "{strategy}: the {wanted}");
        assert_eq!(next.task.status, TaskStatus::Running, "{strategy}");
        assert_eq!(s.task(c.task.id).await.status, TaskStatus::Completed);
    }
}
