//! A server restart in the middle of a run loses nothing: workers see `Unavailable`
//! (transient), back off and resume on fresh connections; a claim or completion whose commit
//! outcome was lost is resolved by the lease. Its own test binary, so nothing else runs
//! against the server while it is down.

mod common;

use prismq_domain::ports::{ClaimFilter, ClaimRequest, TaskQueue};
use prismq_domain::task::{NewTask, TaskType, WorkerId};
use prismq_domain::{ClaimingStrategy, PortError, TaskStatus};
use prismq_storage_postgres::PostgresStore;
use serde_json::json;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TASKS: usize = 600;
const WORKERS: usize = 4;

fn ctl(action: &str) {
    let script = common::service_var("PRISMQ_TEST_POSTGRES_CTL");
    let out = std::process::Command::new(&script)
        .arg(action)
        .output()
        .expect("run the server control script");
    assert!(
        out.status.success(),
        "{script} {action}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A worker loop as the runtime runs it: transient errors back off and retry, a lost lease
/// moves on. Returns the ids it completed (acknowledged by the server).
async fn work(store: PostgresStore, me: String, errors: Arc<AtomicU64>) -> Vec<i64> {
    let req = ClaimRequest {
        worker: WorkerId::new(me).unwrap(),
        filter: ClaimFilter::default(),
        strategy: ClaimingStrategy::Fifo,
        // Short, so a claim whose commit outcome was lost is rescued quickly.
        lease_for: Duration::from_secs(2),
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut done = Vec::new();
    let mut backoff = Duration::from_millis(20);
    while Instant::now() < deadline {
        let step: Result<bool, PortError> = async {
            match store.claim(&req).await? {
                Some(c) => {
                    store.start(&c.lease).await?;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    match store.complete(&c.lease, None).await {
                        Ok(()) => done.push(c.task.id.0),
                        Err(PortError::LeaseLost { .. }) => {}
                        Err(e) => return Err(e),
                    }
                    Ok(true)
                }
                None => {
                    let s = store.stats().await?;
                    let open = s.total(TaskStatus::Queued)
                        + s.total(TaskStatus::Claimed)
                        + s.total(TaskStatus::Running);
                    if open == 0 {
                        return Ok(false);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok(true)
                }
            }
        }
        .await;
        match step {
            Ok(true) => backoff = Duration::from_millis(20),
            Ok(false) => return done,
            Err(e) => {
                assert!(
                    e.is_transient(),
                    "only transient errors while restarting: {e}"
                );
                errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
        }
    }
    panic!("the queue did not drain within 90 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_run_loses_nothing() {
    let schema = common::fresh_schema("restart");
    let store = common::store_in(&schema);
    let tasks: Vec<NewTask> = (0..TASKS)
        .map(|i| NewTask::new(TaskType::new("a").unwrap(), json!({ "i": i })))
        .collect();
    store.enqueue_batch(tasks).await.unwrap();
    let errors = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..WORKERS)
        .map(|i| tokio::spawn(work(store.clone(), format!("w{i}"), errors.clone())))
        .collect();
    // Let the run get going, then restart the server under it.
    let started = Instant::now();
    loop {
        let s = store.stats().await.unwrap();
        if s.total(TaskStatus::Completed) >= 100 || started.elapsed() > Duration::from_secs(30) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::task::spawn_blocking(|| {
        ctl("stop");
        std::thread::sleep(Duration::from_millis(1500));
        ctl("start");
    })
    .await
    .unwrap();
    let mut acknowledged = Vec::new();
    for h in handles {
        acknowledged.extend(h.await.unwrap());
    }
    let unique: HashSet<i64> = acknowledged.iter().copied().collect();
    assert_eq!(unique.len(), acknowledged.len(), "no task completed twice");
    let stats = store.stats().await.unwrap();
    assert_eq!(
        stats.total(TaskStatus::Completed),
        TASKS as u64,
        "every task completed: {stats:?}"
    );
    assert!(
        errors.load(Ordering::Relaxed) > 0,
        "the workers saw the server go away"
    );
    // Completions acknowledged to a worker are exactly what the server holds, minus those
    // whose acknowledgement was lost with the connection.
    assert!(acknowledged.len() <= TASKS);
    assert!(acknowledged.len() >= TASKS - 3 * WORKERS);
}
