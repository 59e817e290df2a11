//! Batched claims and completions on a real server: `claim_and_start_many` takes what the same
//! number of single claims would, in one transaction (the rows share one `xmin`), each task
//! with its own lease and its `claimed` and `started` log rows; `complete_and_claim_many`
//! completes a batch in one transaction and leaves a stale token's attempt be; a lapsed lease
//! is still rescued first; with several task types a batch merges them in claim order; and
//! concurrent batches never take a task twice.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use prismq_domain::ports::{ClaimFilter, ClaimRequest, ClaimedTask, Handover, TaskQueue};
use prismq_domain::task::{LeaseToken, NewTask, Priority, TaskType, WorkerId};
use prismq_domain::{ClaimingStrategy, PortError, TaskStatus};
use prismq_storage_postgres::PostgresStore;
use serde_json::json;

fn request(worker: &str, strategy: ClaimingStrategy) -> ClaimRequest {
    ClaimRequest {
        worker: WorkerId::new(worker).unwrap(),
        filter: ClaimFilter {
            task_types: vec![TaskType::new("a").unwrap()],
            region: None,
            only: None,
        },
        strategy,
        lease_for: Duration::from_secs(120),
    }
}

/// Enqueues `n` tasks of type `a`, priorities cycling 1..=10; returns their ids in order.
async fn fill(store: &PostgresStore, n: usize) -> Vec<i64> {
    let tasks: Vec<NewTask> = (0..n)
        .map(|i| {
            NewTask::new(TaskType::new("a").unwrap(), json!({ "i": i }))
                .priority(Priority::new((i % 10) as i64 + 1).unwrap())
        })
        .collect();
    let out = store.enqueue_batch(tasks).await.unwrap();
    out.iter().map(|e| e.id.0).collect()
}

/// How many transactions last wrote the rows of `ids` (distinct `xmin`s).
async fn writers(store: &PostgresStore, ids: &[i64]) -> i64 {
    let client = store.connection().await.unwrap();
    client
        .query_one(
            "SELECT count(DISTINCT xmin::text) FROM task_queue WHERE id = ANY($1)",
            &[&ids],
        )
        .await
        .unwrap()
        .get(0)
}

/// The events logged for task `id`, in order.
async fn events(store: &PostgresStore, id: i64) -> Vec<String> {
    let client = store.connection().await.unwrap();
    client
        .query(
            "SELECT event FROM task_logs WHERE task_id = $1 ORDER BY id",
            &[&id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn ids(claimed: &[ClaimedTask]) -> Vec<i64> {
    claimed.iter().map(|c| c.task.id.0).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_takes_what_single_claims_would_in_one_transaction_each_with_its_lease() {
    for strategy in [
        ClaimingStrategy::Fifo,
        ClaimingStrategy::Lifo,
        ClaimingStrategy::Priority,
    ] {
        let store = common::store_in(&common::fresh_schema("batch"));
        let all = fill(&store, 30).await;
        // The order single claims take them in: by id (FIFO), newest first (LIFO), by
        // priority then id (Priority; priority i % 10 + 1).
        let mut expected = all.clone();
        match strategy {
            ClaimingStrategy::Lifo => expected.reverse(),
            ClaimingStrategy::Priority => {
                expected.sort_by_key(|id| {
                    let i = all.iter().position(|x| x == id).unwrap();
                    (-((i % 10) as i64), *id)
                });
            }
            _ => {}
        }
        let req = request("w", strategy);
        let batch = store.claim_and_start_many(&req, 7).await.unwrap();
        assert_eq!(ids(&batch), expected[..7].to_vec(), "{strategy}");
        assert_eq!(
            writers(&store, &ids(&batch)).await,
            1,
            "{strategy}: one transaction"
        );
        let tokens: HashSet<i64> = batch.iter().map(|c| c.lease.token.0).collect();
        assert_eq!(tokens.len(), 7, "{strategy}: a token each");
        for c in &batch {
            assert_eq!(c.task.status, TaskStatus::Running);
            assert_eq!(c.lease.task_id, c.task.id);
            assert_eq!(c.task.attempts, 1);
            assert_eq!(
                events(&store, c.task.id.0).await,
                ["claimed", "started"],
                "{strategy}"
            );
            // Each lease is the task's own: it renews, and completes the task.
            let renewed = store
                .renew_lease(&c.lease, Duration::from_secs(60))
                .await
                .unwrap();
            store.complete(&renewed, None).await.unwrap();
        }
        // A batch larger than what is left takes what is left, and then nothing.
        let rest = store.claim_and_start_many(&req, 64).await.unwrap();
        assert_eq!(ids(&rest), expected[7..].to_vec(), "{strategy}");
        assert!(store
            .claim_and_start_many(&req, 8)
            .await
            .unwrap()
            .is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_completions_is_one_transaction_and_a_stale_token_leaves_the_others() {
    let store = common::store_in(&common::fresh_schema("batchdone"));
    let all = fill(&store, 10).await;
    let req = request("w", ClaimingStrategy::Fifo);
    let held = store.claim_and_start_many(&req, 4).await.unwrap();
    assert_eq!(ids(&held), all[..4].to_vec());
    let mut items: Vec<Handover> = held
        .iter()
        .map(|c| Handover {
            lease: c.lease.clone(),
            summary: Some(json!({ "id": c.task.id.0 })),
            next: Some(req.clone()),
        })
        .collect();
    // The third attempt's token is stale: its completion and its claim are not made.
    items[2].lease.token = LeaseToken(items[2].lease.token.0 ^ 1);
    items[3].summary = None;
    let answers = store.complete_and_claim_many(&items).await.unwrap();
    assert_eq!(answers.len(), 4);
    assert!(
        matches!(answers[2], Err(PortError::LeaseLost { task_id }) if task_id == all[2]),
        "{:?}",
        answers[2]
    );
    let next: Vec<i64> = [0, 1, 3]
        .iter()
        .map(|&i| match &answers[i] {
            Ok(Ok(Some(c))) => c.task.id.0,
            other => panic!("item {i}: {other:?}"),
        })
        .collect();
    // Three completions, so three claims, in order, one transaction for each step.
    assert_eq!(next, all[4..7].to_vec());
    let done = [all[0], all[1], all[3]];
    assert_eq!(writers(&store, &done).await, 1);
    assert_eq!(writers(&store, &next).await, 1);
    for (i, id) in [0usize, 1, 3].into_iter().zip(done) {
        let task = store.get(prismq_domain::task::TaskId(id)).await.unwrap();
        assert_eq!(task.status, TaskStatus::Completed);
        assert_eq!(task.summary, items[i].summary);
        assert_eq!(
            events(&store, id).await,
            ["claimed", "started", "completed"]
        );
    }
    let stale = store
        .get(prismq_domain::task::TaskId(all[2]))
        .await
        .unwrap();
    assert_eq!(stale.status, TaskStatus::Running);
    assert_eq!(events(&store, all[2]).await, ["claimed", "started"]);
    // The completion's log row carries the summary as its details, and none without one.
    let client = store.connection().await.unwrap();
    let details: Vec<Option<serde_json::Value>> = client
        .query(
            "SELECT details FROM task_logs WHERE event = 'completed' ORDER BY task_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        details,
        [
            Some(json!({ "id": all[0] })),
            Some(json!({ "id": all[1] })),
            None
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_lease_is_rescued_before_a_batch_claims_queued_tasks() {
    let store = common::store_in(&common::fresh_schema("batchlapse"));
    let all = fill(&store, 6).await;
    let mut short = request("gone", ClaimingStrategy::Fifo);
    short.lease_for = Duration::from_millis(1);
    let lapsing = store.claim_and_start(&short).await.unwrap().unwrap();
    assert_eq!(lapsing.task.id.0, all[0]);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let batch = store
        .claim_and_start_many(&request("w", ClaimingStrategy::Fifo), 3)
        .await
        .unwrap();
    assert_eq!(batch[0].task.id.0, all[0], "the lapsed lease first");
    assert_eq!(batch[0].task.lapses, 1);
    assert!(batch.iter().all(|c| c.task.status == TaskStatus::Running));
    assert_eq!(ids(&batch), [all[0], all[1], all[2]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_never_take_a_task_twice() {
    let schema = common::fresh_schema("batchrace");
    let store = common::store_in(&schema);
    let all = fill(&store, 2_000).await;
    let workers: Vec<_> = (0..6)
        .map(|w| {
            let store = common::store_in(&schema);
            tokio::spawn(async move {
                let req = request(&format!("w{w}"), ClaimingStrategy::ALL[w % 3]);
                let mut done = Vec::new();
                let mut held = store.claim_and_start_many(&req, 8).await.unwrap();
                while !held.is_empty() {
                    done.extend(ids(&held));
                    let items: Vec<Handover> = held
                        .iter()
                        .map(|c| Handover {
                            lease: c.lease.clone(),
                            summary: None,
                            next: Some(req.clone()),
                        })
                        .collect();
                    let answers = store.complete_and_claim_many(&items).await.unwrap();
                    held = Vec::new();
                    for a in answers {
                        if let Some(c) = a.expect("completed").expect("claimed") {
                            held.push(c);
                        }
                    }
                    if held.is_empty() {
                        held = store.claim_and_start_many(&req, 8).await.unwrap();
                    }
                }
                done
            })
        })
        .collect();
    let mut taken = Vec::new();
    for w in workers {
        taken.extend(w.await.unwrap());
    }
    let distinct: HashSet<i64> = taken.iter().copied().collect();
    assert_eq!(distinct.len(), taken.len(), "a task was claimed twice");
    assert_eq!(distinct, all.into_iter().collect::<HashSet<_>>());
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.total(TaskStatus::Completed), 2_000);
}

/// With several types, one batch takes what single claims one after another would, the types
/// interleaved in claim order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_several_types_batches_take_what_single_claims_would_in_order() {
    // (type, priority) in enqueue order; the same run_after, so ids decide within a level.
    let plan = [
        ("a", 5),
        ("a", 5),
        ("a", 9),
        ("b", 5),
        ("a", 5),
        ("b", 9),
        ("b", 2),
        ("a", 2),
    ];
    for strategy in [
        ClaimingStrategy::Fifo,
        ClaimingStrategy::Lifo,
        ClaimingStrategy::Priority,
    ] {
        let single = common::store_in(&common::fresh_schema("multi1"));
        let batched = common::store_in(&common::fresh_schema("multi2"));
        for store in [&single, &batched] {
            let tasks: Vec<NewTask> = plan
                .iter()
                .enumerate()
                .map(|(i, (t, p))| {
                    NewTask::new(TaskType::new(*t).unwrap(), json!({ "i": i }))
                        .priority(Priority::new(*p).unwrap())
                })
                .collect();
            store.enqueue_batch(tasks).await.unwrap();
        }
        let mut req = request("w", strategy);
        req.filter.task_types = vec![TaskType::new("a").unwrap(), TaskType::new("b").unwrap()];
        let mut expected = Vec::new();
        while let Some(c) = single.claim_and_start(&req).await.unwrap() {
            expected.push(c.task.params["i"].as_i64().unwrap());
        }
        assert_eq!(expected.len(), plan.len());
        let mut got = Vec::new();
        let mut batches = 0;
        loop {
            let batch = batched.claim_and_start_many(&req, 16).await.unwrap();
            if batch.is_empty() {
                break;
            }
            batches += 1;
            assert_eq!(writers(&batched, &ids(&batch)).await, 1, "{strategy}");
            got.extend(batch.iter().map(|c| c.task.params["i"].as_i64().unwrap()));
        }
        assert_eq!(got, expected, "{strategy}: the order single claims take");
        // The eight tasks fit in one batch of 16, types interleaved as they are.
        assert_eq!(batches, 1, "{strategy}");
    }
}
