//! Obligations of `TaskQueue::enqueue` and `enqueue_batch`: validation, defaults,
//! idempotency keys, and all-or-nothing batches.

use prismq_domain::ports::TaskEvent;
use prismq_domain::{ClaimingStrategy, Compatibility, NewTask, Priority, TaskId, TaskStatus};
use serde_json::json;

use super::support::{invalid_field, setup};
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

/// An existing idempotency key with the same type and params (equal as JSON values, whatever
/// the key order) returns the existing id with `duplicate: true` and creates nothing (its
/// log gains nothing).
pub async fn enqueue_duplicate_key_returns_existing_task(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let first = s
        .add(NewTask::new(task_type_of("a"), json!({"v": 1, "w": [1, 2]})).idempotency_key("same"))
        .await;
    let again = s
        .queue
        .enqueue(
            NewTask::new(task_type_of("a"), json!({"w": [1, 2], "v": 1}))
                .idempotency_key("same")
                .priority(Priority::new(9).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!((again.id, again.duplicate), (first, true));
    let all = s.all_tasks().await;
    assert_eq!(all.len(), 1);
    assert_eq!(
        all[0].priority,
        Priority::DEFAULT,
        "the existing task is kept as it was"
    );
    assert_eq!(s.events(first).await, vec![TaskEvent::Enqueued]);
}

/// An existing idempotency key with another type or other params is `Invalid` (field
/// `idempotency_key`, the message naming the existing task), and writes nothing.
pub async fn enqueue_reused_key_with_other_work_is_invalid(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (_, s) = setup(factory);
    let first = s
        .add(NewTask::new(task_type_of("a"), json!({"v": 1})).idempotency_key("same"))
        .await;
    for other in [
        NewTask::new(task_type_of("a"), json!({"v": 2})),
        NewTask::new(task_type_of("a"), json!({})),
        NewTask::new(task_type_of("b"), json!({"v": 1})),
    ] {
        let r = s.queue.enqueue(other.idempotency_key("same")).await;
        match r {
            Err(prismq_domain::PortError::Invalid(v)) => {
                assert_eq!(v.field, "idempotency_key");
                assert!(
                    v.problem.contains(&format!("task {first}")),
                    "names the existing task: {}",
                    v.problem
                );
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }
    let all = s.all_tasks().await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].params, json!({"v": 1}));
    assert_eq!(s.events(first).await, vec![TaskEvent::Enqueued]);
}

/// A batch reusing an existing key (or repeating one of its own keys) with another type or
/// params fails whole, naming `tasks[i].idempotency_key`, and writes nothing.
pub async fn batch_reused_key_with_other_work_writes_nothing(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (_, s) = setup(factory);
    s.add(NewTask::new(task_type_of("a"), json!({"v": 1})).idempotency_key("old"))
        .await;
    let r = s
        .queue
        .enqueue_batch(vec![
            new_task("b"),
            NewTask::new(task_type_of("a"), json!({"v": 1})).idempotency_key("old"),
            NewTask::new(task_type_of("a"), json!({"v": 2})).idempotency_key("old"),
        ])
        .await;
    assert_eq!(invalid_field(r), "tasks[2].idempotency_key");
    let r = s
        .queue
        .enqueue_batch(vec![
            new_task("a").idempotency_key("new"),
            new_task("b"),
            new_task("c").idempotency_key("new"),
        ])
        .await;
    assert_eq!(invalid_field(r), "tasks[2].idempotency_key");
    assert_eq!(s.all_tasks().await.len(), 1, "nothing written");
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
