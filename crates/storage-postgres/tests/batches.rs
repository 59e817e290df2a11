//! Batched claims and completions on a real server: `claim_and_start_many` takes what the same
//! number of single claims would, in one transaction (the rows share one `xmin`), each task
//! with its own lease and its `claimed` and `started` log rows; `complete_and_claim_many`
//! completes a batch in one transaction and leaves a stale token's attempt be; a lapsed lease
//! is still rescued first; with several task types a batch merges them in claim order;
//! WeightedRandom's batches draw each task's level as its single claims do, take a level's
//! tasks oldest first in one transaction, and draw again for a level that ran out;
//! concurrent batches of every strategy over several types never take a task twice; and a
//! batch statement that loses a lock conflict is run again.

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
    // Four types in turn, so batches and their completions change the counts of several
    // types in one statement (in an order PostgreSQL chooses).
    let types = ["a", "b", "c", "d"];
    let tasks: Vec<NewTask> = (0..4_000)
        .map(|i| {
            NewTask::new(TaskType::new(types[i % 4]).unwrap(), json!({ "i": i }))
                .priority(Priority::new((i % 10) as i64 + 1).unwrap())
        })
        .collect();
    let all: Vec<i64> = store
        .enqueue_batch(tasks)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id.0)
        .collect();
    // Sixteen loops, four of each strategy, WeightedRandom's batches among them.
    let workers: Vec<_> = (0..16)
        .map(|w| {
            let store = common::store_in(&schema);
            tokio::spawn(async move {
                let mut req = request(&format!("w{w}"), ClaimingStrategy::ALL[w % 4]);
                req.filter.task_types = types.iter().map(|t| TaskType::new(*t).unwrap()).collect();
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
    assert_eq!(stats.total(TaskStatus::Completed), 4_000);
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

/// Enqueues `per_level` tasks of types `a` and `b` in turn at each of the levels given;
/// returns (id, level) in order.
async fn fill_levels(store: &PostgresStore, levels: &[(i64, usize)]) -> Vec<(i64, i64)> {
    let mut tasks = Vec::new();
    let mut level_of = Vec::new();
    for &(level, n) in levels {
        for i in 0..n {
            let ty = if i % 2 == 0 { "a" } else { "b" };
            tasks.push(
                NewTask::new(
                    TaskType::new(ty).unwrap(),
                    json!({ "i": i, "level": level }),
                )
                .priority(Priority::new(level).unwrap()),
            );
            level_of.push(level);
        }
    }
    let out = store.enqueue_batch(tasks).await.unwrap();
    out.iter().map(|e| e.id.0).zip(level_of).collect()
}

fn two_types(strategy: ClaimingStrategy) -> ClaimRequest {
    let mut req = request("w", strategy);
    req.filter.task_types = vec![TaskType::new("a").unwrap(), TaskType::new("b").unwrap()];
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_random_batches_draw_levels_by_weight_and_take_each_level_oldest_first() {
    let store = common::store_in(&common::fresh_schema("wr_batch"));
    // 150 tasks at each level, of two types in turn: 400 claims draw level 10 about 73
    // times (± 8), so no level runs out and every batch is one statement.
    let levels: Vec<(i64, usize)> = (1..=10).map(|p| (p, 150)).collect();
    let all = fill_levels(&store, &levels).await;
    let level_of: std::collections::HashMap<i64, i64> = all.iter().copied().collect();
    let req = two_types(ClaimingStrategy::WeightedRandom);
    let mut taken: Vec<i64> = Vec::new();
    let mut one_transaction = 0;
    for _ in 0..25 {
        let batch = store.claim_and_start_many(&req, 16).await.unwrap();
        assert_eq!(batch.len(), 16, "no level runs out in 400 claims");
        if writers(&store, &ids(&batch)).await == 1 {
            one_transaction += 1;
        }
        let tokens: HashSet<i64> = batch.iter().map(|c| c.lease.token.0).collect();
        assert_eq!(tokens.len(), 16, "a token each");
        for c in &batch {
            assert_eq!(c.task.status, TaskStatus::Running);
            assert_eq!(events(&store, c.task.id.0).await, ["claimed", "started"]);
            store.complete(&c.lease, None).await.unwrap();
        }
        taken.extend(ids(&batch));
    }
    assert_eq!(one_transaction, 25, "every batch is one statement");
    assert_eq!(
        taken.iter().collect::<HashSet<_>>().len(),
        400,
        "each task once"
    );
    // Each level's tasks are taken oldest first (by id: one enqueue, one run_after), over
    // both types, as single claims of the level take them.
    for level in 1..=10 {
        let of_level: Vec<i64> = taken
            .iter()
            .copied()
            .filter(|id| level_of[id] == level)
            .collect();
        let mut sorted = of_level.clone();
        sorted.sort_unstable();
        assert_eq!(of_level, sorted, "level {level} oldest first");
        let expected: Vec<i64> = all
            .iter()
            .filter(|(_, l)| *l == level)
            .map(|(id, _)| *id)
            .take(of_level.len())
            .collect();
        assert_eq!(of_level, expected, "level {level}: its oldest tasks");
    }
    // Level p is drawn with probability p / 55: 400 draws, each level's count within four
    // standard deviations of its expectation (a false alarm about once in 3,000 runs of
    // this test), and the top level ahead of the bottom one.
    let count = |level: i64| taken.iter().filter(|id| level_of[id] == level).count() as f64;
    for level in 1..=10 {
        let q = level as f64 / 55.0;
        let (mean, sd) = (400.0 * q, (400.0 * q * (1.0 - q)).sqrt());
        let got = count(level);
        assert!(
            (got - mean).abs() <= 4.0 * sd,
            "level {level}: {got} of 400, expected {mean:.0} ± {:.0}",
            4.0 * sd
        );
    }
    assert!(count(10) > count(1), "{} against {}", count(10), count(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weighted_random_batch_draws_again_for_a_level_that_ran_out() {
    let store = common::store_in(&common::fresh_schema("wr_short"));
    // Level 10 holds 2 tasks and level 1 holds 100: most of a batch's 16 draws go to level
    // 10, which has only 2, so the rest are drawn again among what is left (level 1).
    let all = fill_levels(&store, &[(10, 2), (1, 100)]).await;
    let req = two_types(ClaimingStrategy::WeightedRandom);
    let batch = store.claim_and_start_many(&req, 16).await.unwrap();
    assert_eq!(batch.len(), 16, "the batch is filled from the level left");
    let taken: HashSet<i64> = ids(&batch).into_iter().collect();
    assert_eq!(taken.len(), 16, "each task once");
    let tens: Vec<i64> = all
        .iter()
        .filter(|(_, l)| *l == 10)
        .map(|(id, _)| *id)
        .collect();
    assert!(
        tens.iter().all(|id| taken.contains(id)),
        "with 16 draws at 10 : 1, both level-10 tasks are taken (a miss is about 1 in 10^15)"
    );
    let ones: Vec<i64> = all
        .iter()
        .filter(|(_, l)| *l == 1)
        .map(|(id, _)| *id)
        .collect();
    assert!(
        ones[..14].iter().all(|id| taken.contains(id)),
        "level 1's oldest fill the rest"
    );
    let tokens: HashSet<i64> = batch.iter().map(|c| c.lease.token.0).collect();
    assert_eq!(tokens.len(), 16);
    for c in &batch {
        store.complete(&c.lease, None).await.unwrap();
    }
    // What is left drains in batches, and then nothing.
    let mut left = 0;
    loop {
        let b = store.claim_and_start_many(&req, 16).await.unwrap();
        if b.is_empty() {
            break;
        }
        left += b.len();
        for c in &b {
            store.complete(&c.lease, None).await.unwrap();
        }
    }
    assert_eq!(left, 102 - 16);
}

/// A store on `schema` whose sessions give up waiting for a row lock after 50 ms (the
/// server's `lock_timeout`): each statement that meets a held lock fails as `Busy`, as the
/// statement the server rolls back to break a deadlock does.
fn impatient_store(schema: &str, busy_retries: u32) -> PostgresStore {
    let url = common::url();
    let sep = if url.contains('?') { '&' } else { '?' };
    let mut o = prismq_storage_postgres::PostgresOptions::new(format!(
        "{url}{sep}options=-c%20lock_timeout%3D50"
    ))
    .with_schema(schema);
    o.busy_retries = busy_retries;
    PostgresStore::connect_lazy(
        o,
        std::sync::Arc::new(prismq_domain::ports::SystemClock)
            as std::sync::Arc<dyn prismq_domain::ports::Clock>,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_statement_that_meets_a_lock_conflict_is_run_again() {
    let schema = common::fresh_schema("busy");
    let store = common::store_in(&schema);
    fill(&store, 8).await;
    let req = request("w", ClaimingStrategy::Fifo);
    let held = store.claim_and_start_many(&req, 8).await.unwrap();
    let handovers = |tasks: &[ClaimedTask]| -> Vec<Handover> {
        tasks
            .iter()
            .map(|c| Handover {
                lease: c.lease.clone(),
                summary: None,
                next: None,
            })
            .collect()
    };
    let (first, second) = held.split_at(4);
    // Another session holds the rows of the batch's tasks.
    let hold = |ids: Vec<i64>| {
        let store = store.clone();
        async move {
            let holder = store.connection().await.unwrap();
            holder.batch_execute("BEGIN").await.unwrap();
            holder
                .query(
                    "SELECT id FROM task_queue WHERE id = ANY($1) FOR UPDATE",
                    &[&ids],
                )
                .await
                .unwrap();
            holder
        }
    };

    // Held for 300 ms: the completions fail on the lock a few times, are run again, and
    // are written once the lock is let go.
    let holder = hold(ids(first)).await;
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        holder.batch_execute("COMMIT").await.unwrap();
    });
    let started = std::time::Instant::now();
    let answers = impatient_store(&schema, 20)
        .complete_and_claim_many(&handovers(first))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "it waited for the lock"
    );
    assert!(
        answers.iter().all(|a| matches!(a, Ok(Ok(None)))),
        "{answers:?}"
    );
    release.await.unwrap();
    for c in first {
        assert_eq!(
            store.get(c.task.id).await.unwrap().status,
            TaskStatus::Completed
        );
    }

    // Without retries the same conflict is an error, and nothing is written.
    let holder = hold(ids(second)).await;
    let err = impatient_store(&schema, 0)
        .complete_and_claim_many(&handovers(second))
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::Busy(_)), "{err:?}");
    holder.batch_execute("ROLLBACK").await.unwrap();
    for c in second {
        assert_eq!(
            store.get(c.task.id).await.unwrap().status,
            TaskStatus::Running
        );
    }
}
