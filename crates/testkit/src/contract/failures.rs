//! Obligations of `TaskQueue::fail`: the retry policy applied in the same step (retry with
//! backoff, free deferral, dead letter) and fencing.

use std::time::Duration;

use prismq_domain::ports::TaskEvent;
use prismq_domain::{ClaimingStrategy, ErrorClass, Lease, LeaseToken, RetryDecision, TaskStatus};

use super::support::{assert_lease_lost, failure, setup};
use super::{contract_retry_policy, ContractEnv, Subject};
use crate::fixtures::{new_task, plus_millis, plus_secs};

/// A retryable failure with attempts left: back to queued at the policy's RetryAt, within
/// [now, now + base] after attempt 1; attempts stay counted; last_error set; logged `retried`.
pub async fn fail_retryable_requeues_with_backoff(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let c = s.one_claimed(None).await;
    s.queue.start(&c.lease).await.unwrap();
    clock.advance(Duration::from_secs(2));
    let now = clock.now();
    let f = failure(ErrorClass::Retryable);
    let out = s.queue.fail(&c.lease, &f).await.unwrap();
    let RetryDecision::RetryAt(at) = out.decision else {
        panic!("expected RetryAt, got {:?}", out.decision);
    };
    assert!(
        at >= now && at <= plus_secs(now, 1),
        "{at} outside [now, now+1s]"
    );
    assert_eq!(out.attempts, 1);
    let t = s.task(c.task.id).await;
    assert_eq!(
        (t.status, t.attempts, t.run_after),
        (TaskStatus::Queued, 1, at)
    );
    assert_eq!(t.last_error.as_deref(), Some(f.message.as_str()));
    assert_eq!(
        (t.lease_token, t.lease_expires_at, t.finished_at),
        (None, None, None)
    );
    assert_eq!(
        s.events(c.task.id).await,
        vec![
            TaskEvent::Enqueued,
            TaskEvent::Claimed,
            TaskEvent::Started,
            TaskEvent::Retried
        ]
    );
    assert_lease_lost(s.queue.complete(&c.lease, None).await, c.task.id);
    clock.set(at);
    let again = s.claim(ClaimingStrategy::Fifo).await.expect("due again");
    assert_eq!((again.task.id, again.task.attempts), (c.task.id, 2));
}

/// Every RetryAt lies within [now, now + min(cap, base × 2^(attempt−1))].
pub async fn fail_backoff_stays_under_cap(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let policy = contract_retry_policy();
    let id = s.add(new_task("a").max_attempts(8)).await;
    for attempt in 1..8u32 {
        let c = s.claim(ClaimingStrategy::Fifo).await.expect("due");
        assert_eq!((c.task.id, c.task.attempts), (id, attempt));
        let now = clock.now();
        let out = s
            .queue
            .fail(&c.lease, &failure(ErrorClass::Retryable))
            .await
            .unwrap();
        let RetryDecision::RetryAt(at) = out.decision else {
            panic!(
                "attempt {attempt}: expected RetryAt, got {:?}",
                out.decision
            );
        };
        let max_ms = i64::try_from(policy.max_delay(attempt).as_millis()).unwrap();
        assert!(max_ms <= 10_000);
        assert!(
            at >= now && at <= plus_millis(now, max_ms),
            "attempt {attempt}: {at} outside [now, now+{max_ms}ms]"
        );
        assert_eq!(out.attempts, attempt);
        clock.set(at.max(now));
    }
}

/// A retryable failure of the last attempt dead-letters: failed, finished now, logged
/// `failed`, attempts kept.
pub async fn fail_retryable_at_max_attempts_dead_letters(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let id = s.add(new_task("a")).await;
    for attempt in 1..=3u32 {
        let c = s.claim(ClaimingStrategy::Fifo).await.expect("due");
        assert_eq!(c.task.attempts, attempt);
        let out = s
            .queue
            .fail(&c.lease, &failure(ErrorClass::Retryable))
            .await
            .unwrap();
        assert_eq!(out.attempts, attempt);
        if attempt < 3 {
            assert!(matches!(out.decision, RetryDecision::RetryAt(_)));
            clock.advance(Duration::from_secs(10));
        } else {
            assert_eq!(out.decision, RetryDecision::DeadLetter);
        }
    }
    let t = s.task(id).await;
    assert_eq!((t.status, t.attempts), (TaskStatus::Failed, 3));
    assert_eq!(t.finished_at, Some(clock.now()));
    assert_eq!(s.events(id).await.last(), Some(&TaskEvent::Failed));
    clock.advance(Duration::from_secs(3600));
    assert!(s.claim(ClaimingStrategy::Fifo).await.is_none());
}

/// A permanent failure dead-letters at once, on the first attempt.
pub async fn fail_permanent_dead_letters_at_once(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let c = s.one_claimed(None).await;
    let f = failure(ErrorClass::Permanent);
    let out = s.queue.fail(&c.lease, &f).await.unwrap();
    assert_eq!((out.decision, out.attempts), (RetryDecision::DeadLetter, 1));
    let t = s.task(c.task.id).await;
    assert_eq!((t.status, t.attempts), (TaskStatus::Failed, 1));
    assert_eq!(t.finished_at, Some(clock.now()));
    assert_eq!(t.last_error.as_deref(), Some(f.message.as_str()));
    assert_eq!((t.lease_token, t.lease_expires_at), (None, None));
    assert_eq!(
        s.events(c.task.id).await,
        vec![TaskEvent::Enqueued, TaskEvent::Claimed, TaskEvent::Failed]
    );
}

/// RetryableAfter(until) defers to exactly `until`, gives the attempt back (attempts − 1),
/// logs `deferred`, and the task is not claimable before `until`.
pub async fn fail_retry_after_defers_and_gives_attempt_back(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (clock, s) = setup(factory);
    let c = s.one_claimed(None).await;
    s.queue.start(&c.lease).await.unwrap();
    let until = plus_secs(clock.now(), 3600);
    let f = failure(ErrorClass::RetryableAfter(until));
    let out = s.queue.fail(&c.lease, &f).await.unwrap();
    assert_eq!(
        (out.decision, out.attempts),
        (RetryDecision::Defer(until), 0)
    );
    let t = s.task(c.task.id).await;
    assert_eq!(
        (t.status, t.attempts, t.run_after),
        (TaskStatus::Queued, 0, until)
    );
    assert_eq!(t.last_error.as_deref(), Some(f.message.as_str()));
    assert_eq!(t.finished_at, None);
    assert_eq!(s.events(c.task.id).await.last(), Some(&TaskEvent::Deferred));
    clock.advance(Duration::from_millis(3_599_999));
    assert!(s.claim(ClaimingStrategy::Fifo).await.is_none());
    clock.set(until);
    let again = s.claim(ClaimingStrategy::Fifo).await.expect("due at until");
    assert_eq!(again.task.attempts, 1);
}

/// RetryableAfter an instant already past defers until now.
pub async fn fail_retry_after_in_past_defers_until_now(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let c = s.one_claimed(None).await;
    clock.advance(Duration::from_secs(5));
    let past = plus_secs(clock.now(), -60);
    let out = s
        .queue
        .fail(&c.lease, &failure(ErrorClass::RetryableAfter(past)))
        .await
        .unwrap();
    assert_eq!(out.decision, RetryDecision::Defer(clock.now()));
    assert_eq!(s.task(c.task.id).await.run_after, clock.now());
    assert_eq!(
        s.claim(ClaimingStrategy::Fifo).await.unwrap().task.id,
        c.task.id
    );
}

/// A deferral is free even on the last attempt: with max_attempts 1 the task defers,
/// comes back at attempt 1, and only a retryable failure then dead-letters it.
pub async fn deferral_never_uses_the_last_attempt(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let c = s.one_claimed(Some(1)).await;
    let mut lease = c.lease;
    for round in 0..3 {
        let until = plus_secs(clock.now(), 10);
        let out = s
            .queue
            .fail(&lease, &failure(ErrorClass::RetryableAfter(until)))
            .await
            .unwrap();
        assert_eq!(
            (out.decision, out.attempts),
            (RetryDecision::Defer(until), 0),
            "round {round}"
        );
        clock.set(until);
        let again = s.claim(ClaimingStrategy::Fifo).await.expect("due");
        assert_eq!(again.task.attempts, 1);
        lease = again.lease;
    }
    let out = s
        .queue
        .fail(&lease, &failure(ErrorClass::Retryable))
        .await
        .unwrap();
    assert_eq!((out.decision, out.attempts), (RetryDecision::DeadLetter, 1));
}

/// fail with a stale token is `LeaseLost` and changes nothing.
pub async fn fail_with_stale_token_is_lease_lost(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let c = s.one_claimed(None).await;
    let forged = Lease {
        token: LeaseToken(c.lease.token.0.wrapping_neg().wrapping_sub(1)),
        ..c.lease.clone()
    };
    let before = s.task(c.task.id).await;
    assert_lease_lost(
        s.queue.fail(&forged, &failure(ErrorClass::Permanent)).await,
        c.task.id,
    );
    assert_eq!(s.task(c.task.id).await, before);
    assert_eq!(s.events(c.task.id).await.len(), 2);
}
