//! Query plans and wake-ups on a real server: every claim query reads an index (no Seq Scan
//! on task_queue, no Sort over it), and LISTEN/NOTIFY wakes a waiting worker.

mod common;

use prismq_domain::ports::{ClaimFilter, ClaimRequest, TaskQueue};
use prismq_domain::task::{NewTask, Priority, TaskType, WorkerId};
use prismq_domain::ClaimingStrategy;
use prismq_storage_postgres::CLAIM_QUERIES;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_postgres::types::ToSql;

fn tt(s: &str) -> TaskType {
    TaskType::new(s).unwrap()
}

/// Every scan of task_queue in `plan`, and whether it sits under a Sort with no Limit between
/// them (a Sort over a scan's first few rows, such as a batch merging each type's first
/// tasks, sorts those rows, not the queue).
fn scans(plan: &Value, under_sort: bool, out: &mut Vec<(String, String, bool)>) {
    let node = plan["Node Type"].as_str().unwrap_or_default();
    let sorting = (under_sort && node != "Limit") || node == "Sort" || node == "Incremental Sort";
    if plan["Relation Name"].as_str() == Some("task_queue") && node != "ModifyTable" {
        out.push((
            node.to_owned(),
            plan["Index Name"].as_str().unwrap_or_default().to_owned(),
            sorting,
        ));
    }
    if let Some(children) = plan["Plans"].as_array() {
        for c in children {
            scans(c, sorting, out);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_claim_query_reads_an_index_and_never_sorts_the_queue() {
    let schema = common::fresh_schema("plan");
    let store = common::store_in(&schema);
    let types = ["a", "b", "c"];
    let tasks: Vec<NewTask> = (0..30_000)
        .map(|i| {
            NewTask::new(tt(types[i % 3]), json!({ "i": i }))
                .priority(Priority::new((i % 10) as i64 + 1).unwrap())
        })
        .collect();
    for chunk in tasks.chunks(5_000) {
        store.enqueue_batch(chunk.to_vec()).await.unwrap();
    }
    // Some finished and in-flight tasks, so the partial indexes have something to exclude.
    let req = ClaimRequest {
        worker: WorkerId::new("w").unwrap(),
        filter: ClaimFilter::default(),
        strategy: ClaimingStrategy::Fifo,
        lease_for: Duration::from_secs(60),
    };
    for _ in 0..200 {
        let c = store.claim(&req).await.unwrap().unwrap();
        store.complete(&c.lease, None).await.unwrap();
    }
    let client = store.connection().await.unwrap();
    client.batch_execute("ANALYZE").await.unwrap();

    let now: i64 = 4_000_000_000_000;
    let region: Option<String> = None;
    let type_list: Vec<String> = types.iter().map(|s| s.to_string()).collect();
    let (worker, expires, token, strategy, level) = ("w", now + 1, 7i64, "fifo", 5i64);
    let (done_id, done_token, summary) = (1i64, 8i64, None::<Value>);
    let tokens: Vec<i64> = (1..=16).collect();
    // WeightedRandom's batch: levels 10, 7 and 2 drawn 9, 5 and 2 times, in that order.
    let (draw_levels, draw_counts, draw_offsets) =
        (vec![10i64, 7, 2], vec![9i64, 5, 2], vec![0i64, 9, 14]);
    let draw_places: Vec<i64> = (1..=16).collect();
    for (name, sql) in CLAIM_QUERIES {
        let one = 1i64;
        let args: Vec<&(dyn ToSql + Sync)> = if *name == "claim one" {
            vec![
                &one, &now, &region, &worker, &expires, &token, &strategy, &type_list,
            ]
        } else if name.starts_with("claim") || name.starts_with("handover") {
            // A batched claim takes the types to claim from and one lease token a task.
            let many = name.starts_with("claim many");
            let (task_type, token): (&(dyn ToSql + Sync), &(dyn ToSql + Sync)) = if many {
                (&type_list, &tokens)
            } else {
                (&"a", &token)
            };
            let mut a: Vec<&(dyn ToSql + Sync)> = vec![
                task_type, &now, &region, &worker, &expires, token, &strategy, &type_list,
            ];
            if name.starts_with("handover") {
                a.extend([
                    &done_id as &(dyn ToSql + Sync),
                    &done_token,
                    &summary,
                    &summary,
                ]);
            }
            if *name == "claim many levels, started" {
                a.extend([
                    &draw_levels as &(dyn ToSql + Sync),
                    &draw_counts,
                    &draw_offsets,
                    &draw_places,
                ]);
            } else if name.contains(" level") {
                a.push(&level);
            }
            a
        } else if name.starts_with("heads") {
            vec![&type_list, &now, &region]
        } else if *name == "lapsed leases" {
            vec![&now, &type_list, &region, &None::<i64>]
        } else {
            vec![]
        };
        let row = client
            .query_one(&format!("EXPLAIN (FORMAT JSON) {sql}"), &args)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let plan: Value = row.get(0);
        let mut found = Vec::new();
        scans(&plan[0]["Plan"], false, &mut found);
        let text = serde_json::to_string(&plan).unwrap();
        if *name != "queued types" {
            assert!(
                !found.is_empty(),
                "{name} reads no task_queue index: {text}"
            );
        }
        for (node, index, sorted) in &found {
            assert!(
                node == "Index Scan" || node == "Index Only Scan",
                "{name}: {node} on task_queue: {text}"
            );
            // The claim's UPDATE finds its one row by primary key.
            assert!(
                index.starts_with("ix_queue_") || index == "task_queue_pkey",
                "{name}: index {index}: {text}"
            );
            assert!(!sorted, "{name} sorts the queue: {text}");
        }
        // The claim statements lock exactly the one row they update.
        if name.starts_with("claim") || name.starts_with("handover") {
            assert!(text.contains("\"LockRows\""), "{name}: no LockRows: {text}");
            assert!(
                text.contains("\"Subplan Name\":\"CTE picked\""),
                "{name}: {text}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enqueue_wakes_a_waiting_worker_within_milliseconds() {
    let schema = common::fresh_schema("wake");
    let store = common::store_in(&schema);
    let other = common::store_in(&schema);
    let mut signal = store.subscribe();
    // Connected listener: the first tick says "connected, re-poll".
    signal.wait(Duration::from_secs(5)).await;
    assert!(
        !signal.wait(Duration::from_millis(300)).await,
        "no enqueue, no wake-up"
    );
    let sent = Instant::now();
    let enqueue = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        other
            .enqueue(NewTask::new(tt("a"), json!({})))
            .await
            .unwrap();
        Instant::now()
    });
    assert!(signal.wait(Duration::from_secs(10)).await, "woken");
    let woke = Instant::now();
    let enqueued = enqueue.await.unwrap();
    assert!(woke >= enqueued - Duration::from_millis(50));
    assert!(
        woke.duration_since(enqueued) < Duration::from_secs(1),
        "woke {:?} after the enqueue",
        woke.duration_since(enqueued)
    );
    assert!(sent.elapsed() < Duration::from_secs(5));
    // A notification for another schema does not wake this one.
    let elsewhere = common::store_in(&common::fresh_schema("wake2"));
    elsewhere
        .enqueue(NewTask::new(tt("a"), json!({})))
        .await
        .unwrap();
    assert!(!signal.wait(Duration::from_millis(300)).await);
}

/// The task list filtered by an in-flight status reads only in-flight tasks from
/// `ix_queue_lease` (their ids are the oldest under FIFO claiming, so a walk of ids down
/// from the newest would pass every other task), and returns them newest first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_flight_status_is_listed_from_the_lease_index() {
    use prismq_domain::ports::TaskFilter;
    use prismq_domain::TaskStatus;
    use prismq_storage_postgres::list_statement;
    let schema = common::fresh_schema("inflight");
    let store = common::store_in(&schema);
    let tasks: Vec<NewTask> = (0..20_000)
        .map(|i| NewTask::new(tt("a"), json!({ "i": i })))
        .collect();
    for chunk in tasks.chunks(5_000) {
        store.enqueue_batch(chunk.to_vec()).await.unwrap();
    }
    let req = ClaimRequest {
        worker: WorkerId::new("w").unwrap(),
        filter: ClaimFilter::default(),
        strategy: ClaimingStrategy::Fifo,
        lease_for: Duration::from_secs(60),
    };
    let mut running = Vec::new();
    for _ in 0..5 {
        running.push(store.claim_and_start(&req).await.unwrap().unwrap().task.id);
    }
    let claimed = store.claim(&req).await.unwrap().unwrap().task.id;
    running.reverse();
    let client = store.connection().await.unwrap();
    // A prepared statement run often gets a generic plan, which cannot see the status bound:
    // the statement must reach the in-flight index without it.
    client
        .batch_execute("ANALYZE; SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    for (status, want) in [
        (TaskStatus::Running, running.clone()),
        (TaskStatus::Claimed, vec![claimed]),
    ] {
        let filter = TaskFilter {
            status: Some(status),
            limit: 50,
            ..TaskFilter::default()
        };
        // The generic plan, as a prepared statement gets once it is reused: PREPARE, then
        // EXPLAIN EXECUTE under force_generic_plan.
        let (sql, _) = list_statement(&filter, "id");
        let name = format!("inflight_{status}");
        client
            .batch_execute(&format!("PREPARE {name} AS {sql}"))
            .await
            .unwrap();
        let row = client
            .query_one(
                &format!("EXPLAIN (FORMAT JSON) EXECUTE {name}('{status}', 50)"),
                &[],
            )
            .await
            .unwrap();
        let plan: Value = row.get(0);
        let text = serde_json::to_string(&plan).unwrap();
        // An index scan of ix_queue_lease, or a bitmap scan built from it; never a walk of
        // the table or of its primary key.
        assert!(
            text.contains("\"Index Name\":\"ix_queue_lease\""),
            "{status}: {text}"
        );
        assert!(!text.contains("Seq Scan"), "{status}: {text}");
        assert!(!text.contains("task_queue_pkey"), "{status}: {text}");
        let listed: Vec<_> = store
            .list(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(listed, want, "{status}: newest first");
    }
}
