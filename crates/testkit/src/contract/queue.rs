//! Obligations of `TaskQueue` outside the claim: enqueue (validation, defaults, idempotency,
//! batches), get, list, purge, stats, cancel and retry.

use std::time::Duration;

use prismq_domain::ports::{StatusCount, TaskEvent, TaskFilter};
use prismq_domain::{ClaimingStrategy, Compatibility, NewTask, Priority, TaskId, TaskStatus};
use serde_json::json;

use super::support::{
    assert_invalid_state, assert_lease_lost, assert_not_found, invalid_field, setup,
};
use super::{ContractEnv, Subject};
use crate::fixtures::{new_task, plus_secs, task_type_of};

/// enqueue: status queued, attempts 0, priority 5, run_after now, max_attempts from the
/// retry policy, no lease, created/updated now; logged `enqueued`.
pub async fn enqueue_sets_defaults(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let now = clock.now();
    let e = s
        .queue
        .enqueue(NewTask::new(
            task_type_of("channel_scrape"),
            json!({"a": 1}),
        ))
        .await
        .unwrap();
    assert!(!e.duplicate);
    assert!(e.id.0 > 0, "ids are positive");
    let t = s.task(e.id).await;
    assert_eq!(t.id, e.id);
    assert_eq!(t.task_type.as_str(), "channel_scrape");
    assert_eq!(t.params, json!({"a": 1}));
    assert_eq!(t.status, TaskStatus::Queued);
    assert_eq!(t.attempts, 0);
    assert_eq!(t.priority, Priority::DEFAULT);
    assert_eq!(t.max_attempts, 3, "the retry policy's default");
    assert_eq!(t.run_after, now);
    assert_eq!((t.created_at, t.updated_at), (now, now));
    assert_eq!(t.lease_expires_at, None);
    assert_eq!(t.lease_token, None);
    assert_eq!(t.claimed_by, None);
    assert_eq!(t.idempotency_key, None);
    assert_eq!(t.compatibility, Compatibility::default());
    assert_eq!((t.last_error, t.summary, t.finished_at), (None, None, None));
    assert_eq!(s.events(e.id).await, vec![TaskEvent::Enqueued]);
}

/// enqueue keeps the task's own priority, run_after, max_attempts, key and region.
pub async fn enqueue_keeps_given_fields(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let later = plus_secs(clock.now(), 3600);
    let id = s
        .add(
            new_task("keyword_search")
                .priority(Priority::new(9).unwrap())
                .run_after(later)
                .max_attempts(7)
                .idempotency_key("k-1")
                .compatibility(Compatibility::with_region("US").unwrap()),
        )
        .await;
    let t = s.task(id).await;
    assert_eq!(t.priority.get(), 9);
    assert_eq!(t.run_after, later);
    assert_eq!(t.max_attempts, 7);
    assert_eq!(t.idempotency_key.as_deref(), Some("k-1"));
    assert_eq!(t.compatibility.region.as_deref(), Some("US"));
    assert_eq!(t.status, TaskStatus::Queued);
}

/// Task ids are positive and increase in enqueue order.
pub async fn enqueue_ids_increase(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let mut last = TaskId(0);
    for _ in 0..5 {
        let id = s.add(new_task("a")).await;
        assert!(id > last, "{id} after {last}");
        last = id;
    }
}

/// enqueue refuses params that are not a JSON object, naming `params`, writing nothing.
pub async fn enqueue_rejects_non_object_params(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    for params in [json!([1, 2]), json!("x"), json!(null), json!(3)] {
        let r = s
            .queue
            .enqueue(NewTask::new(task_type_of("a"), params))
            .await;
        assert_eq!(invalid_field(r), "params");
    }
    assert!(s.all_tasks().await.is_empty());
}

/// enqueue refuses params over the default 1 MiB limit; exactly at the limit is accepted.
pub async fn enqueue_rejects_oversized_params(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    // {"x":"…"} serializes to 8 bytes plus the string.
    let over = json!({ "x": "y".repeat(1024 * 1024 - 7) });
    let r = s.queue.enqueue(NewTask::new(task_type_of("a"), over)).await;
    assert_eq!(invalid_field(r), "params");
    assert!(s.all_tasks().await.is_empty());
    let at_limit = json!({ "x": "y".repeat(1024 * 1024 - 8) });
    s.add(NewTask::new(task_type_of("a"), at_limit)).await;
}

/// enqueue refuses an empty, over-long (256 bytes) or control-character idempotency key.
pub async fn enqueue_rejects_bad_idempotency_key(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    for key in [String::new(), "k".repeat(256), "a\nb".to_owned()] {
        let r = s.queue.enqueue(new_task("a").idempotency_key(key)).await;
        assert_eq!(invalid_field(r), "idempotency_key");
    }
    assert!(s.all_tasks().await.is_empty());
    s.add(new_task("a").idempotency_key("k".repeat(255))).await;
}

/// enqueue refuses max_attempts outside 1–100.
pub async fn enqueue_rejects_bad_max_attempts(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    for n in [0, 101] {
        let r = s.queue.enqueue(new_task("a").max_attempts(n)).await;
        assert_eq!(invalid_field(r), "max_attempts");
    }
    assert!(s.all_tasks().await.is_empty());
}

/// enqueue refuses a region that is not two letters.
pub async fn enqueue_rejects_bad_region(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    for region in ["USA", "1A", ""] {
        let task = new_task("a").compatibility(Compatibility {
            region: Some(region.into()),
        });
        assert_eq!(invalid_field(s.queue.enqueue(task).await), "region");
    }
    assert!(s.all_tasks().await.is_empty());
}

/// An existing idempotency key returns the existing id with `duplicate: true` and creates
/// nothing (the first task's params stay, its log gains nothing).
pub async fn enqueue_duplicate_key_returns_existing_task(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let first = s
        .add(NewTask::new(task_type_of("a"), json!({"v": 1})).idempotency_key("same"))
        .await;
    let again = s
        .queue
        .enqueue(NewTask::new(task_type_of("a"), json!({"v": 2})).idempotency_key("same"))
        .await
        .unwrap();
    assert_eq!((again.id, again.duplicate), (first, true));
    let all = s.all_tasks().await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].params, json!({"v": 1}));
    assert_eq!(s.events(first).await, vec![TaskEvent::Enqueued]);
}

/// The key stays taken while its task exists, whatever its status.
pub async fn enqueue_key_of_finished_task_is_still_duplicate(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (_, s) = setup(factory);
    let id = s.add(new_task("a").idempotency_key("done")).await;
    let c = s.claim(ClaimingStrategy::Fifo).await.unwrap();
    s.queue.start(&c.lease).await.unwrap();
    s.queue.complete(&c.lease, None).await.unwrap();
    let again = s
        .queue
        .enqueue(new_task("a").idempotency_key("done"))
        .await
        .unwrap();
    assert_eq!((again.id, again.duplicate), (id, true));
    assert_eq!(s.all_tasks().await.len(), 1);
}

/// enqueue_batch returns one result per input, in order, with increasing ids.
pub async fn batch_returns_one_result_per_input_in_order(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let out = s
        .queue
        .enqueue_batch(vec![new_task("a"), new_task("b"), new_task("c")])
        .await
        .unwrap();
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|e| !e.duplicate));
    assert!(out[0].id < out[1].id && out[1].id < out[2].id);
    for (e, ty) in out.iter().zip(["a", "b", "c"]) {
        let t = s.task(e.id).await;
        assert_eq!((t.task_type.as_str(), t.status), (ty, TaskStatus::Queued));
        assert_eq!(s.events(e.id).await, vec![TaskEvent::Enqueued]);
    }
}

/// A bad task anywhere in a batch writes nothing, and names `tasks[i].field`.
pub async fn batch_with_invalid_task_writes_nothing(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let r = s
        .queue
        .enqueue_batch(vec![
            new_task("a").idempotency_key("first"),
            new_task("b"),
            NewTask::new(task_type_of("c"), json!([])),
            new_task("d"),
        ])
        .await;
    assert_eq!(invalid_field(r), "tasks[2].params");
    assert!(s.all_tasks().await.is_empty(), "nothing written");
    // The key of the refused batch was not reserved.
    let e = s
        .queue
        .enqueue(new_task("a").idempotency_key("first"))
        .await
        .unwrap();
    assert!(!e.duplicate);
}

/// The error names the first bad task's index.
pub async fn batch_names_first_bad_index(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let r = s
        .queue
        .enqueue_batch(vec![
            new_task("a"),
            new_task("b").max_attempts(0),
            new_task("c"),
            NewTask::new(task_type_of("d"), json!(1)),
        ])
        .await;
    assert_eq!(invalid_field(r), "tasks[1].max_attempts");
    assert!(s.all_tasks().await.is_empty());
}

/// A key that already exists resolves to the existing task, flagged duplicate.
pub async fn batch_existing_key_is_duplicate(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let old = s.add(new_task("a").idempotency_key("k")).await;
    let out = s
        .queue
        .enqueue_batch(vec![new_task("b"), new_task("a").idempotency_key("k")])
        .await
        .unwrap();
    assert!(!out[0].duplicate);
    assert_ne!(out[0].id, old);
    assert_eq!((out[1].id, out[1].duplicate), (old, true));
    assert_eq!(s.all_tasks().await.len(), 2);
}

/// A key repeated within one batch creates one task; later occurrences are duplicates of it.
pub async fn batch_repeated_key_creates_one_task(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let out = s
        .queue
        .enqueue_batch(vec![
            new_task("a").idempotency_key("k"),
            new_task("b"),
            new_task("a").idempotency_key("k"),
        ])
        .await
        .unwrap();
    assert_eq!(out.len(), 3);
    assert!(!out[0].duplicate && !out[1].duplicate);
    assert_eq!((out[2].id, out[2].duplicate), (out[0].id, true));
    let mut ids: Vec<TaskId> = s.all_tasks().await.iter().map(|t| t.id).collect();
    ids.sort();
    assert_eq!(ids, vec![out[0].id, out[1].id]);
}

/// get of an unknown id is `NotFound`.
pub async fn get_unknown_is_not_found(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    assert_not_found(s.queue.get(TaskId(1)).await);
    let id = s.add(new_task("a")).await;
    assert_not_found(s.queue.get(TaskId(id.0 + 1000)).await);
}

/// list returns tasks newest first (id descending).
pub async fn list_is_newest_first(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(s.add(new_task("a")).await);
    }
    ids.reverse();
    let got: Vec<TaskId> = s.all_tasks().await.iter().map(|t| t.id).collect();
    assert_eq!(got, ids);
}

/// list filters by status and by type, separately and together.
pub async fn list_filters_by_status_and_type(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let a_done = s.completed("a").await;
    let a_queued = s.add(new_task("a")).await;
    let b_queued = s.add(new_task("b")).await;
    let b_cancelled = s.cancelled("b").await;
    let ids = |filter: TaskFilter| {
        let q = s.queue.clone();
        async move {
            q.list(&filter)
                .await
                .unwrap()
                .iter()
                .map(|t| t.id)
                .collect::<Vec<_>>()
        }
    };
    let queued = TaskFilter {
        status: Some(TaskStatus::Queued),
        ..TaskFilter::default()
    };
    assert_eq!(ids(queued.clone()).await, vec![b_queued, a_queued]);
    let of_b = TaskFilter {
        task_type: Some(task_type_of("b")),
        ..TaskFilter::default()
    };
    assert_eq!(ids(of_b.clone()).await, vec![b_cancelled, b_queued]);
    let queued_a = TaskFilter {
        task_type: Some(task_type_of("a")),
        ..queued
    };
    assert_eq!(ids(queued_a).await, vec![a_queued]);
    let completed = TaskFilter {
        status: Some(TaskStatus::Completed),
        ..TaskFilter::default()
    };
    assert_eq!(ids(completed).await, vec![a_done]);
}

/// `before_id` pages backwards through the ids; `limit` caps each page.
pub async fn list_pages_with_before_id(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(s.add(new_task("a")).await);
    }
    let page = |before: Option<TaskId>| {
        let q = s.queue.clone();
        async move {
            q.list(&TaskFilter {
                before_id: before,
                limit: 2,
                ..TaskFilter::default()
            })
            .await
            .unwrap()
            .iter()
            .map(|t| t.id)
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(page(None).await, vec![ids[4], ids[3]]);
    assert_eq!(page(Some(ids[3])).await, vec![ids[2], ids[1]]);
    assert_eq!(page(Some(ids[1])).await, vec![ids[0]]);
    assert_eq!(page(Some(ids[0])).await, Vec::<TaskId>::new());
}

/// `finished_before` keeps only tasks that finished strictly before the instant.
pub async fn list_filters_finished_before(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let early = s.completed("a").await;
    clock.advance(Duration::from_secs(10));
    let cut = clock.now();
    let at_cut = s.completed("a").await;
    clock.advance(Duration::from_secs(10));
    let _late = s.cancelled("a").await;
    let _open = s.add(new_task("a")).await;
    let got: Vec<TaskId> = s
        .queue
        .list(&TaskFilter {
            finished_before: Some(plus_secs(cut, 1)),
            ..TaskFilter::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(got, vec![at_cut, early]);
    let got: Vec<TaskId> = s
        .queue
        .list(&TaskFilter {
            finished_before: Some(cut),
            ..TaskFilter::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(got, vec![early]);
}

/// list refuses a limit of 0 or over 10,000 with `Invalid`; 1 and 10,000 are fine.
pub async fn list_refuses_limit_out_of_range(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    s.add(new_task("a")).await;
    s.add(new_task("a")).await;
    for limit in [0, 10_001] {
        let r = s
            .queue
            .list(&TaskFilter {
                limit,
                ..TaskFilter::default()
            })
            .await;
        assert_eq!(invalid_field(r), "limit");
    }
    for (limit, n) in [(1, 1), (10_000, 2)] {
        let got = s
            .queue
            .list(&TaskFilter {
                limit,
                ..TaskFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(got.len(), n);
    }
}

/// purge deletes tasks of the given final status finished before the instant, with their
/// logs, and nothing else.
pub async fn purge_removes_final_tasks_and_their_logs(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let old_done = s.completed("a").await;
    let old_failed = s.dead_lettered("a").await;
    let old_cancelled = s.cancelled("a").await;
    let queued = s.add(new_task("a")).await;
    clock.advance(Duration::from_secs(60));
    let cut = clock.now();
    let new_done = s.completed("a").await;
    assert_eq!(
        s.queue
            .purge(TaskStatus::Completed, cut, 100)
            .await
            .unwrap(),
        1
    );
    assert_not_found(s.queue.get(old_done).await);
    assert_not_found(s.logs.list(old_done).await);
    for id in [old_failed, old_cancelled, queued, new_done] {
        s.task(id).await;
        assert!(!s.events(id).await.is_empty());
    }
    assert_eq!(
        s.queue.purge(TaskStatus::Failed, cut, 100).await.unwrap(),
        1
    );
    assert_eq!(
        s.queue
            .purge(TaskStatus::Cancelled, cut, 100)
            .await
            .unwrap(),
        1
    );
    let left: Vec<TaskId> = s.all_tasks().await.iter().map(|t| t.id).collect();
    assert_eq!(left, vec![new_done, queued]);
}

/// purge deletes at most `limit` per call.
pub async fn purge_respects_limit(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    for _ in 0..5 {
        s.cancelled("a").await;
    }
    clock.advance(Duration::from_secs(1));
    let now = clock.now();
    assert_eq!(
        s.queue.purge(TaskStatus::Cancelled, now, 2).await.unwrap(),
        2
    );
    assert_eq!(s.all_tasks().await.len(), 3);
    assert_eq!(
        s.queue.purge(TaskStatus::Cancelled, now, 10).await.unwrap(),
        3
    );
    assert_eq!(
        s.queue.purge(TaskStatus::Cancelled, now, 10).await.unwrap(),
        0
    );
    assert!(s.all_tasks().await.is_empty());
}

/// purge refuses queued, claimed and running with `Invalid`, deleting nothing.
pub async fn purge_refuses_non_final_status(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    s.add(new_task("a")).await;
    clock.advance(Duration::from_secs(1));
    let later = plus_secs(clock.now(), 3600);
    for status in [TaskStatus::Queued, TaskStatus::Claimed, TaskStatus::Running] {
        let r = s.queue.purge(status, later, 100).await;
        assert!(
            matches!(r, Err(prismq_domain::PortError::Invalid(_))),
            "{status}: {r:?}"
        );
    }
    assert_eq!(s.all_tasks().await.len(), 1);
}

/// stats counts tasks per (type, status), non-zero only, ordered by type then status
/// (lifecycle order: queued, claimed, running, completed, failed, cancelled).
pub async fn stats_counts_by_type_and_status(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    assert_eq!(s.queue.stats().await.unwrap().counts, vec![]);
    s.completed("b").await;
    s.cancelled("a").await;
    s.add(new_task("b")).await;
    s.add(new_task("b")).await;
    s.dead_lettered("a").await;
    s.add(new_task("a")).await;
    let c = s.claim(ClaimingStrategy::Fifo).await.unwrap();
    s.queue.start(&c.lease).await.unwrap();
    let row = |ty: &str, status, count| StatusCount {
        task_type: task_type_of(ty),
        status,
        count,
    };
    let stats = s.queue.stats().await.unwrap();
    // The FIFO claim took the oldest queued task: the first "b".
    assert_eq!(
        stats.counts,
        vec![
            row("a", TaskStatus::Queued, 1),
            row("a", TaskStatus::Failed, 1),
            row("a", TaskStatus::Cancelled, 1),
            row("b", TaskStatus::Queued, 1),
            row("b", TaskStatus::Running, 1),
            row("b", TaskStatus::Completed, 1),
        ]
    );
    assert_eq!(stats.total(TaskStatus::Queued), 2);
}

/// stats' oldest_eligible is the smallest run_after among queued tasks already due;
/// future and non-queued tasks do not count.
pub async fn stats_oldest_eligible(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    assert_eq!(s.queue.stats().await.unwrap().oldest_eligible, None);
    let t0 = clock.now();
    s.add(new_task("a").run_after(plus_secs(t0, 100))).await;
    assert_eq!(s.queue.stats().await.unwrap().oldest_eligible, None);
    s.add(new_task("a").run_after(plus_secs(t0, -50))).await;
    s.add(new_task("a").run_after(plus_secs(t0, -20))).await;
    assert_eq!(
        s.queue.stats().await.unwrap().oldest_eligible,
        Some(plus_secs(t0, -50))
    );
    // Claiming the oldest leaves the next one as the oldest eligible.
    let c = s.claim(ClaimingStrategy::Fifo).await.unwrap();
    s.queue.start(&c.lease).await.unwrap();
    s.queue.complete(&c.lease, None).await.unwrap();
    assert_eq!(
        s.queue.stats().await.unwrap().oldest_eligible,
        Some(plus_secs(t0, -20))
    );
    clock.advance(Duration::from_secs(200));
    s.claim(ClaimingStrategy::Fifo).await.unwrap();
    assert_eq!(
        s.queue.stats().await.unwrap().oldest_eligible,
        Some(plus_secs(t0, 100))
    );
}

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
