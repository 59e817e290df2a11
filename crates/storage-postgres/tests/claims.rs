//! No double claim across processes: 4 OS processes (this test binary re-invoked as a
//! child) × 8 concurrent claimers each drain one queue on the server; every task is
//! completed exactly once. And a claim that meets damaged data is a fatal, typed error.

mod common;

use prismq_domain::ports::{ClaimFilter, ClaimRequest, TaskQueue};
use prismq_domain::task::{NewTask, Priority, TaskType, WorkerId};
use prismq_domain::{ClaimingStrategy, PortError, TaskStatus};
use prismq_storage_postgres::PostgresStore;
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;

const PROCESSES: usize = 4;
const CLAIMERS: usize = 8;
const TASKS: usize = 4_000;

fn tt(s: &str) -> TaskType {
    TaskType::new(s).unwrap()
}

/// Claims, starts and completes until nothing is queued or in flight; returns the ids.
async fn drain(store: PostgresStore, worker: String, strategy: ClaimingStrategy) -> Vec<i64> {
    let req = ClaimRequest {
        worker: WorkerId::new(worker).unwrap(),
        filter: ClaimFilter::default(),
        strategy,
        lease_for: Duration::from_secs(120),
    };
    let mut done = Vec::new();
    loop {
        match store.claim(&req).await.expect("claim") {
            Some(c) => {
                store.start(&c.lease).await.expect("start");
                store.complete(&c.lease, None).await.expect("complete");
                done.push(c.task.id.0);
            }
            None => {
                let stats = store.stats().await.expect("stats");
                if stats.total(TaskStatus::Queued) == 0 {
                    return done;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

/// Runs as a child process: drains the schema in PRISMQ_TEST_SCHEMA with 8 concurrent
/// claimers (one per strategy pair), printing each completed id.
#[test]
#[ignore = "run as a child process by the multi-process test"]
fn child_worker() {
    let Ok(schema) = std::env::var("PRISMQ_TEST_SCHEMA") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ids = rt.block_on(async {
        let store = common::store_in(&schema);
        let handles: Vec<_> = (0..CLAIMERS)
            .map(|i| {
                let store = store.clone();
                let me = format!("proc-{}-{i}", std::process::id());
                tokio::spawn(drain(store, me, ClaimingStrategy::ALL[i % 4]))
            })
            .collect();
        let mut ids = Vec::new();
        for h in handles {
            ids.extend(h.await.unwrap());
        }
        ids
    });
    println!();
    for id in ids {
        println!("done {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_of_eight_claimers_complete_every_task_exactly_once() {
    let schema = common::fresh_schema("procs");
    let store = common::store_in(&schema);
    let tasks: Vec<NewTask> = (0..TASKS)
        .map(|i| {
            NewTask::new(tt(["a", "b"][i % 2]), json!({ "i": i }))
                .priority(Priority::new((i % 10) as i64 + 1).unwrap())
        })
        .collect();
    store.enqueue_batch(tasks).await.unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--ignored",
                    "--exact",
                    "child_worker",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("PRISMQ_TEST_SCHEMA", &schema)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let mut ids = Vec::new();
    let mut per_process = Vec::new();
    for out in outputs {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "child failed: {text}");
        let mine: Vec<i64> = text
            .lines()
            .filter_map(|l| l.strip_prefix("done "))
            .map(|id| id.parse().unwrap())
            .collect();
        per_process.push(mine.len());
        ids.extend(mine);
    }
    let unique: HashSet<i64> = ids.iter().copied().collect();
    assert_eq!(
        ids.len(),
        TASKS,
        "every completion reported once: {per_process:?}"
    );
    assert_eq!(unique.len(), TASKS, "no task claimed twice");
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.total(TaskStatus::Completed), TASKS as u64);
    assert_eq!(stats.total(TaskStatus::Queued), 0);
    assert!(
        per_process.iter().all(|&n| n > 0),
        "every process took part: {per_process:?}"
    );
}

/// The server reporting damaged pages (SQLSTATE XX001, raised here by a trigger as a damaged
/// heap page would raise it on the claim's update) is `Corrupt`, which no retry fixes: the
/// runtime stops instead of retrying for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_meeting_damaged_data_is_a_corrupt_error() {
    let schema = common::fresh_schema("corrupt");
    let store = common::store_in(&schema);
    store
        .enqueue(NewTask::new(tt("t"), json!({})))
        .await
        .unwrap();
    let client = store.connection().await.unwrap();
    client
        .batch_execute(&format!(
            "CREATE FUNCTION \"{schema}\".damaged() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN RAISE EXCEPTION 'invalid page in block 7 of relation base/1/2' \
             USING ERRCODE = 'data_corrupted'; END $$; \
             CREATE TRIGGER damaged BEFORE UPDATE ON \"{schema}\".task_queue \
             FOR EACH ROW EXECUTE FUNCTION \"{schema}\".damaged();"
        ))
        .await
        .unwrap();
    let request = ClaimRequest {
        worker: WorkerId::new("w").unwrap(),
        filter: ClaimFilter::default(),
        strategy: ClaimingStrategy::Fifo,
        lease_for: Duration::from_secs(30),
    };
    match store.claim_and_start(&request).await {
        Err(e @ PortError::Corrupt(_)) => {
            assert!(!e.is_transient());
            let m = e.to_string();
            assert!(m.contains("damaged") && m.contains("XX001"), "{m}");
            assert!(m.contains("prismq validate"), "{m}");
        }
        other => panic!("expected a Corrupt error, got {other:?}"),
    }
}
