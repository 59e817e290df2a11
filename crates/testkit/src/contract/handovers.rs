//! Obligations of `complete_and_claim_many`: several completions, each with the claim its
//! worker makes after it, answered item by item as the calls one at a time would be.

use std::time::Duration;

use prismq_domain::ports::{ClaimedTask, Handover, HandoverAnswer, TaskEvent};
use prismq_domain::{ClaimingStrategy, TaskId, TaskStatus};
use serde_json::json;

use super::support::{assert_lease_lost, setup};
use super::{ContractEnv, Subject};
use crate::fixtures::{claim_request, new_task};

/// `n` tasks of type `a` enqueued a second apart, each claimed and started by its own worker
/// (`w0`, `w1`, …), in enqueue order.
async fn running(s: &Subject, clock: &crate::FakeClock, n: usize) -> Vec<ClaimedTask> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(s.add(new_task("a")).await);
        clock.advance(Duration::from_secs(1));
    }
    let mut claimed = Vec::new();
    for (i, id) in ids.into_iter().enumerate() {
        let c = s
            .queue
            .claim_and_start(&claim_request(&format!("w{i}"), ClaimingStrategy::Fifo))
            .await
            .unwrap()
            .expect("a queued task");
        assert_eq!(c.task.id, id);
        claimed.push(c);
    }
    claimed
}

fn item(c: &ClaimedTask, summary: serde_json::Value, next: Option<&str>) -> Handover {
    Handover {
        lease: c.lease.clone(),
        summary: Some(summary),
        next: next.map(|w| claim_request(w, ClaimingStrategy::Fifo)),
    }
}

/// Completes every attempt of `held` in one batch, each item (summary: its index) with its
/// worker's next claim.
async fn each_claims_again(s: &Subject, held: &[ClaimedTask]) -> Vec<HandoverAnswer> {
    let items: Vec<Handover> = held
        .iter()
        .enumerate()
        .map(|(i, c)| item(c, json!(i), Some(c.lease.worker.as_str())))
        .collect();
    s.queue
        .complete_and_claim_many(&items)
        .await
        .expect("the batch")
}

/// The task an answer claimed (`None`: the completion was written and nothing claimed).
fn claimed_id(answer: &HandoverAnswer) -> Option<TaskId> {
    answer
        .as_ref()
        .expect("the completion")
        .as_ref()
        .expect("the claim")
        .as_ref()
        .map(|c| c.task.id)
}

/// Each item is completed (summary stored, logged) and, when it asks, the next queued task
/// is claimed and started for its worker, in the items' order: the answers come back in
/// that order, and an item without `next` claims nothing.
pub async fn complete_and_claim_many_answers_each_item_in_order(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (clock, s) = setup(factory);
    let held = running(&s, &clock, 3).await;
    let first = s.add(new_task("a")).await;
    clock.advance(Duration::from_secs(1));
    let second = s.add(new_task("a")).await;
    clock.advance(Duration::from_secs(1));
    let third = s.add(new_task("a")).await;
    clock.advance(Duration::from_secs(5));
    let answers = s
        .queue
        .complete_and_claim_many(&[
            item(&held[0], json!({"n": 0}), Some("w0")),
            item(&held[1], json!({"n": 1}), None),
            item(&held[2], json!({"n": 2}), Some("w2")),
        ])
        .await
        .expect("the batch");
    assert_eq!(answers.len(), 3);
    assert_eq!(claimed_id(&answers[0]), Some(first));
    assert_eq!(claimed_id(&answers[1]), None);
    assert_eq!(claimed_id(&answers[2]), Some(second));
    for (i, c) in held.iter().enumerate() {
        let t = s.task(c.task.id).await;
        assert_eq!(t.status, TaskStatus::Completed, "item {i}");
        assert_eq!(t.summary, Some(json!({"n": i})), "item {i}");
        assert_eq!(t.finished_at, Some(clock.now()), "item {i}");
        assert_eq!(
            s.events(c.task.id).await.last(),
            Some(&TaskEvent::Completed),
            "item {i}"
        );
    }
    for (answer, worker) in [(&answers[0], "w0"), (&answers[2], "w2")] {
        let c = answer.as_ref().unwrap().as_ref().unwrap().as_ref().unwrap();
        assert_eq!(c.lease.worker.as_str(), worker);
        let t = s.task(c.task.id).await;
        assert_eq!((t.status, t.attempts), (TaskStatus::Running, 1));
        assert_eq!(t.lease_token, Some(c.lease.token));
        assert_eq!(
            s.events(c.task.id).await,
            vec![TaskEvent::Enqueued, TaskEvent::Claimed, TaskEvent::Started]
        );
    }
    assert_eq!(s.task(third).await.status, TaskStatus::Queued);
}

/// An item whose lease is stale answers `LeaseLost`, writes nothing and claims nothing for
/// its worker; the items before and after it are written and claim as if it were absent.
pub async fn complete_and_claim_many_leaves_the_others_when_one_lease_is_stale(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (clock, s) = setup(factory);
    let held = running(&s, &clock, 3).await;
    // The middle attempt ended already: its token is stale.
    s.queue.complete(&held[1].lease, None).await.unwrap();
    let before = s.task(held[1].task.id).await;
    let first = s.add(new_task("a")).await;
    clock.advance(Duration::from_secs(1));
    let second = s.add(new_task("a")).await;
    let answers = each_claims_again(&s, &held).await;
    assert_eq!(claimed_id(&answers[0]), Some(first));
    assert_lease_lost(answers[1].clone().map(|_| ()), held[1].task.id);
    assert_eq!(claimed_id(&answers[2]), Some(second));
    assert_eq!(s.task(held[1].task.id).await, before);
    assert_eq!(s.task(held[2].task.id).await.status, TaskStatus::Completed);
}

/// When the queue runs dry within a batch, the items after the last task claimed are
/// completed and answer no task.
pub async fn complete_and_claim_many_answers_none_once_the_queue_is_dry(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (clock, s) = setup(factory);
    let held = running(&s, &clock, 3).await;
    let last = s.add(new_task("a")).await;
    let answers = each_claims_again(&s, &held).await;
    assert_eq!(
        answers.iter().map(claimed_id).collect::<Vec<_>>(),
        vec![Some(last), None, None]
    );
    for c in &held {
        assert_eq!(s.task(c.task.id).await.status, TaskStatus::Completed);
    }
    assert!(s.claim_as("w9", ClaimingStrategy::Fifo).await.is_none());
}

/// `claim_and_start_many` takes up to `max` tasks in the strategy's order, each running
/// under its own lease for the worker (claimed and started in its log, one attempt), as
/// that many `claim_and_start` calls would; the rest stay queued.
pub async fn claim_and_start_many_takes_tasks_in_order_each_with_its_own_lease(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (clock, s) = setup(factory);
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(s.add(new_task("a")).await);
        clock.advance(Duration::from_secs(1));
    }
    let claimed = s
        .queue
        .claim_and_start_many(&claim_request("w0", ClaimingStrategy::Fifo), 3)
        .await
        .expect("the claims");
    assert_eq!(
        claimed.iter().map(|c| c.task.id).collect::<Vec<_>>(),
        ids[..3].to_vec(),
        "the three oldest, oldest first"
    );
    let mut tokens = Vec::new();
    for c in &claimed {
        assert_eq!(c.lease.worker.as_str(), "w0");
        assert_eq!(c.task.status, TaskStatus::Running);
        let t = s.task(c.task.id).await;
        assert_eq!((t.status, t.attempts), (TaskStatus::Running, 1));
        assert_eq!(t.lease_token, Some(c.lease.token));
        assert_eq!(
            s.events(c.task.id).await,
            vec![TaskEvent::Enqueued, TaskEvent::Claimed, TaskEvent::Started]
        );
        tokens.push(c.lease.token.0);
    }
    tokens.sort_unstable();
    tokens.dedup();
    assert_eq!(tokens.len(), 3, "a lease token each");
    assert_eq!(s.task(ids[3]).await.status, TaskStatus::Queued);
    // Each lease fences its own task: one completes, the others stay running.
    s.queue.complete(&claimed[1].lease, None).await.unwrap();
    assert_eq!(s.task(ids[1]).await.status, TaskStatus::Completed);
    assert_eq!(s.task(ids[0]).await.status, TaskStatus::Running);
}

/// Fewer than `max` when the queue runs dry (none from an empty queue), and nothing at all
/// for `max` 0.
pub async fn claim_and_start_many_stops_when_the_queue_is_dry(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (clock, s) = setup(factory);
    let request = claim_request("w0", ClaimingStrategy::Fifo);
    assert!(s
        .queue
        .claim_and_start_many(&request, 4)
        .await
        .unwrap()
        .is_empty());
    let first = s.add(new_task("a")).await;
    clock.advance(Duration::from_secs(1));
    let second = s.add(new_task("a")).await;
    assert!(s
        .queue
        .claim_and_start_many(&request, 0)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(s.task(first).await.status, TaskStatus::Queued);
    let claimed = s.queue.claim_and_start_many(&request, 4).await.unwrap();
    assert_eq!(
        claimed.iter().map(|c| c.task.id).collect::<Vec<_>>(),
        vec![first, second]
    );
    assert!(s.claim_as("w9", ClaimingStrategy::Fifo).await.is_none());
}
