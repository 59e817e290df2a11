//! Obligations of lease lapse: a lapsed lease is rescued before any queued task (oldest
//! lapse first, logged `lease_expired`), the old lease is fenced off, the lapsed attempt is
//! given back and counted as a lapse instead, so other processes' crashes never use up a
//! task's attempts; only `MAX_LAPSES` lapses dead-letter it, and its own failures still
//! count attempts.

use std::time::Duration;

use prismq_domain::lease::{lapsed_dead_letter_message, MAX_LAPSES};
use prismq_domain::ports::{Failure, TaskEvent};
use prismq_domain::{ClaimingStrategy, ErrorClass, RetryDecision, TaskStatus};
use serde_json::json;

use super::support::{assert_lease_lost, setup};
use super::{ContractEnv, Subject};
use crate::fixtures::{claim_request, new_task, plus_secs, task_type_of, worker_id};

/// A lapsed lease is claimed again before any queued task, whatever the strategy: new
/// worker, fresh token, the lapsed attempt given back and a new one counted (attempts stay
/// 1), one lapse, logged `lease_expired` then `claimed`.
pub async fn lapsed_lease_is_rescued_before_queued_tasks(factory: impl Fn(ContractEnv) -> Subject) {
    for strategy in ClaimingStrategy::ALL {
        let (clock, s) = setup(&factory);
        let t0 = clock.now();
        let leased = s.add(new_task("a")).await;
        let first = s.claim_as("w1", ClaimingStrategy::Fifo).await.unwrap();
        // A queued task that every strategy would otherwise prefer: older and higher.
        let _queued = s
            .add(
                new_task("a")
                    .run_after(plus_secs(t0, -3600))
                    .priority(prismq_domain::Priority::MAX),
            )
            .await;
        clock.advance(Duration::from_secs(31));
        let c = s.claim_as("w2", strategy).await.expect("rescue");
        assert_eq!(c.task.id, leased, "{strategy}");
        assert_eq!(c.task.status, TaskStatus::Claimed);
        assert_eq!((c.task.attempts, c.task.lapses), (1, 1), "{strategy}");
        assert_eq!(s.task(leased).await, c.task, "{strategy}: as stored");
        assert_eq!(c.task.claimed_by, Some(worker_id("w2")));
        assert_ne!(c.lease.token, first.lease.token, "a fresh token");
        assert_eq!(c.lease.expires_at, plus_secs(clock.now(), 30));
        assert_eq!(
            s.events(leased).await,
            vec![
                TaskEvent::Enqueued,
                TaskEvent::Claimed,
                TaskEvent::LeaseExpired,
                TaskEvent::Claimed
            ],
            "{strategy}"
        );
    }
}

/// Among lapsed leases, the one that lapsed first is rescued first.
pub async fn rescue_takes_oldest_lapse_first(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let a = s.add(new_task("a")).await;
    let b = s.add(new_task("a")).await;
    let mut long = claim_request("w1", ClaimingStrategy::Fifo);
    long.lease_for = Duration::from_secs(60);
    assert_eq!(s.queue.claim(&long).await.unwrap().unwrap().task.id, a);
    let mut short = claim_request("w1", ClaimingStrategy::Fifo);
    short.lease_for = Duration::from_secs(20);
    assert_eq!(s.queue.claim(&short).await.unwrap().unwrap().task.id, b);
    clock.advance(Duration::from_secs(61));
    let first = s.claim_as("w2", ClaimingStrategy::Lifo).await.unwrap();
    let second = s.claim_as("w2", ClaimingStrategy::Lifo).await.unwrap();
    assert_eq!((first.task.id, second.task.id), (b, a));
}

/// A lease that has not lapsed is never rescued.
pub async fn live_lease_is_not_rescued(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let id = s.add(new_task("a")).await;
    let c = s.claim(ClaimingStrategy::Fifo).await.unwrap();
    s.queue.start(&c.lease).await.unwrap();
    clock.advance(Duration::from_millis(29_999));
    assert!(s.claim_as("w2", ClaimingStrategy::Fifo).await.is_none());
    assert_eq!(s.task(id).await.status, TaskStatus::Running);
    assert_eq!(
        s.events(id).await,
        vec![TaskEvent::Enqueued, TaskEvent::Claimed, TaskEvent::Started]
    );
}

/// After a rescue, every write with the old lease is `LeaseLost` and changes nothing.
pub async fn old_lease_is_fenced_after_rescue(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let id = s.add(new_task("a")).await;
    let old = s.claim_as("w1", ClaimingStrategy::Fifo).await.unwrap();
    s.queue.start(&old.lease).await.unwrap();
    clock.advance(Duration::from_secs(40));
    let new = s.claim_as("w2", ClaimingStrategy::Fifo).await.unwrap();
    assert_eq!(new.task.id, id);
    let before = s.task(id).await;
    let log_before = s.events(id).await;
    let failure = Failure {
        class: ErrorClass::Retryable,
        message: "late".into(),
    };
    assert_lease_lost(s.queue.complete(&old.lease, Some(json!({}))).await, id);
    assert_lease_lost(s.queue.fail(&old.lease, &failure).await, id);
    assert_lease_lost(s.queue.start(&old.lease).await, id);
    assert_lease_lost(s.queue.release(&old.lease).await, id);
    assert_lease_lost(
        s.queue
            .renew_lease(&old.lease, Duration::from_secs(30))
            .await,
        id,
    );
    assert_eq!(s.task(id).await, before, "the new attempt is untouched");
    assert_eq!(s.events(id).await, log_before);
    s.queue.start(&new.lease).await.unwrap();
    s.queue.complete(&new.lease, None).await.unwrap();
    assert_eq!(s.task(id).await.status, TaskStatus::Completed);
}

/// A lapse is not the task's own failure: a task on its only attempt whose worker dies is
/// claimed again, not dead-lettered. Each rescue gives the lapsed attempt back (attempts − 1)
/// and counts a lapse, and its `lease_expired` entry says so; the task then completes.
pub async fn lapse_gives_the_attempt_back_and_counts_a_lapse(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (clock, s) = setup(factory);
    let id = s.add(new_task("a").max_attempts(1)).await;
    let first = s.claim_as("w1", ClaimingStrategy::Fifo).await.unwrap();
    assert_eq!((first.task.attempts, first.task.lapses), (1, 0));
    s.queue.start(&first.lease).await.unwrap();
    let mut last = first;
    for lapse in 1..=3u32 {
        clock.advance(Duration::from_secs(31));
        let c = s
            .claim_as(&format!("w{}", lapse + 1), ClaimingStrategy::Fifo)
            .await
            .expect("rescued, not dead-lettered");
        assert_eq!(c.task.id, id);
        assert_eq!(c.task.status, TaskStatus::Claimed);
        assert_eq!((c.task.attempts, c.task.lapses), (1, lapse));
        assert_lease_lost(s.queue.complete(&last.lease, None).await, id);
        let log = s.logs.list(id).await.unwrap();
        let lapsed = log
            .iter()
            .rev()
            .find(|r| r.event == TaskEvent::LeaseExpired)
            .expect("a lease_expired entry");
        assert!(
            lapsed.message.contains("attempt was given back")
                && lapsed
                    .message
                    .contains(&format!("lapse {lapse} of at most {MAX_LAPSES}")),
            "{}",
            lapsed.message
        );
        last = c;
    }
    s.queue.start(&last.lease).await.unwrap();
    s.queue.complete(&last.lease, None).await.unwrap();
    let t = s.task(id).await;
    assert_eq!(
        (t.status, t.attempts, t.lapses, t.last_error),
        (TaskStatus::Completed, 1, 3, None)
    );
    let events = s.events(id).await;
    let count = |e: TaskEvent| events.iter().filter(|x| **x == e).count();
    assert_eq!(
        (count(TaskEvent::Claimed), count(TaskEvent::LeaseExpired)),
        (4, 3),
        "{events:?}"
    );
}

/// The `MAX_LAPSES`th lapse dead-letters the task whatever its attempts: status failed,
/// finished now, lease cleared, attempts given back, `last_error` saying why and naming the
/// last worker, logged `lease_expired` then `failed`; the claim moves on, the old lease is
/// fenced, and an operator retry starts it afresh (attempts and lapses 0).
pub async fn max_lapses_dead_letter_with_the_message(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let doomed = s.add(new_task("a").max_attempts(5)).await;
    let mut c = s.claim_as("w0", ClaimingStrategy::Fifo).await.unwrap();
    for lapse in 1..MAX_LAPSES {
        clock.advance(Duration::from_secs(31));
        c = s
            .claim_as(&format!("w{lapse}"), ClaimingStrategy::Fifo)
            .await
            .unwrap();
        assert_eq!(
            (c.task.id, c.task.attempts, c.task.lapses),
            (doomed, 1, lapse)
        );
    }
    let next = s.add(new_task("a")).await;
    clock.advance(Duration::from_secs(31));
    let got = s.claim_as("w99", ClaimingStrategy::Fifo).await.unwrap();
    assert_eq!(got.task.id, next, "the claim moved on");
    let t = s.task(doomed).await;
    assert_eq!(
        (t.status, t.attempts, t.lapses),
        (TaskStatus::Failed, 0, MAX_LAPSES)
    );
    let last_worker = format!("w{}", MAX_LAPSES - 1);
    assert_eq!(
        t.last_error,
        Some(lapsed_dead_letter_message(MAX_LAPSES, Some(&last_worker)))
    );
    assert!(t
        .last_error
        .as_deref()
        .unwrap()
        .starts_with("its lease lapsed 10 times: the workers that claimed it died or froze;"));
    assert_eq!(t.finished_at, Some(clock.now()));
    assert_eq!((t.lease_token, t.lease_expires_at), (None, None));
    let events = s.events(doomed).await;
    assert_eq!(
        events[events.len() - 2..],
        [TaskEvent::LeaseExpired, TaskEvent::Failed],
        "{events:?}"
    );
    let lapses = events
        .iter()
        .filter(|e| **e == TaskEvent::LeaseExpired)
        .count();
    assert_eq!(lapses, MAX_LAPSES as usize);
    assert_lease_lost(s.queue.complete(&c.lease, None).await, doomed);
    assert!(
        s.claim_as("w100", ClaimingStrategy::Fifo).await.is_none(),
        "the dead letter is not handed out"
    );
    let back = s.queue.retry(doomed).await.unwrap();
    assert_eq!(
        (back.status, back.attempts, back.lapses),
        (TaskStatus::Queued, 0, 0)
    );
}

/// A failure of the task's own handler still counts its attempt after lapses: lapses do not
/// give back attempts its handler used, and `fail` leaves the lapse count alone.
pub async fn own_failures_still_count_attempts_after_a_lapse(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (clock, s) = setup(factory);
    let id = s.add(new_task("a").max_attempts(2)).await;
    s.claim_as("w1", ClaimingStrategy::Fifo).await.unwrap();
    clock.advance(Duration::from_secs(31));
    let c = s.claim_as("w2", ClaimingStrategy::Fifo).await.unwrap();
    assert_eq!((c.task.id, c.task.attempts, c.task.lapses), (id, 1, 1));
    let broken = Failure {
        class: ErrorClass::Retryable,
        message: "handler broke".into(),
    };
    let out = s.queue.fail(&c.lease, &broken).await.unwrap();
    assert!(matches!(out.decision, RetryDecision::RetryAt(_)), "{out:?}");
    assert_eq!(out.attempts, 1);
    let t = s.task(id).await;
    assert_eq!((t.status, t.attempts, t.lapses), (TaskStatus::Queued, 1, 1));
    clock.advance(Duration::from_secs(60));
    let c = s.claim_as("w3", ClaimingStrategy::Fifo).await.unwrap();
    assert_eq!((c.task.id, c.task.attempts), (id, 2));
    let out = s.queue.fail(&c.lease, &broken).await.unwrap();
    assert_eq!((out.decision, out.attempts), (RetryDecision::DeadLetter, 2));
    let t = s.task(id).await;
    assert_eq!((t.status, t.attempts, t.lapses), (TaskStatus::Failed, 2, 1));
    assert_eq!(t.last_error.as_deref(), Some("handler broke"));
}

/// The filter applies to rescues too: a lapsed task of another type is left for its workers.
pub async fn rescue_respects_the_filter(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let alpha = s.add(new_task("alpha")).await;
    s.claim_as("w1", ClaimingStrategy::Fifo).await.unwrap();
    let beta = s.add(new_task("beta")).await;
    clock.advance(Duration::from_secs(31));
    let mut req = claim_request("w2", ClaimingStrategy::Fifo);
    req.filter.task_types = vec![task_type_of("beta")];
    assert_eq!(s.queue.claim(&req).await.unwrap().unwrap().task.id, beta);
    assert!(s.queue.claim(&req).await.unwrap().is_none());
    assert_eq!(s.task(alpha).await.status, TaskStatus::Claimed);
    req.filter.task_types = vec![task_type_of("alpha")];
    assert_eq!(s.queue.claim(&req).await.unwrap().unwrap().task.id, alpha);
}

/// `filter.only` takes that task when it is eligible and never another: not the task the
/// strategy would pick, not one that is not due yet, not one of a type the worker does not
/// take, and it leaves another task's lapsed lease alone; its own lapsed lease is rescued.
pub async fn claim_only_takes_that_task_and_no_other(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let t0 = clock.now();
    let wanted = s.add(new_task("a")).await;
    let newer = s.add(new_task("a")).await;
    let later = s.add(new_task("a").run_after(plus_secs(t0, 60))).await;
    let other_type = s.add(new_task("b")).await;
    let only = |worker: &str, id, types: &[&str]| {
        let mut req = claim_request(worker, ClaimingStrategy::Lifo);
        req.filter.only = Some(id);
        req.filter.task_types = types.iter().map(|t| task_type_of(t)).collect();
        req
    };
    // LIFO alone would take `newer`.
    let c = s.queue.claim(&only("w1", wanted, &[])).await.unwrap();
    assert_eq!(c.map(|c| c.task.id), Some(wanted));
    assert!(
        s.queue
            .claim(&only("w1", wanted, &[]))
            .await
            .unwrap()
            .is_none(),
        "already leased"
    );
    assert!(
        s.queue
            .claim(&only("w1", later, &[]))
            .await
            .unwrap()
            .is_none(),
        "not due"
    );
    assert!(
        s.queue
            .claim(&only("w1", other_type, &["a"]))
            .await
            .unwrap()
            .is_none(),
        "a type the worker does not take"
    );
    assert_eq!(s.task(newer).await.status, TaskStatus::Queued);
    // `wanted`'s lease lapses; a claim for another task leaves it alone.
    clock.advance(Duration::from_secs(31));
    let c = s
        .queue
        .claim(&only("w2", newer, &[]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.task.id, newer);
    assert_eq!(s.task(wanted).await.status, TaskStatus::Claimed);
    assert_eq!(s.task(wanted).await.attempts, 1);
    // A claim for it rescues it.
    let c = s
        .queue
        .claim(&only("w3", wanted, &[]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.task.id, c.task.attempts, c.task.lapses), (wanted, 1, 1));
    assert_eq!(c.task.claimed_by, Some(worker_id("w3")));
    assert_eq!(
        s.events(wanted).await,
        vec![
            TaskEvent::Enqueued,
            TaskEvent::Claimed,
            TaskEvent::LeaseExpired,
            TaskEvent::Claimed
        ]
    );
    assert_eq!(s.task(later).await.status, TaskStatus::Queued);
    assert_eq!(s.task(other_type).await.status, TaskStatus::Queued);
}
