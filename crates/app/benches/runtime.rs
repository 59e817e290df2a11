//! Runtime overhead: drains tasks through the whole worker runtime (claim, start, lease
//! renewal, heartbeat, handler, complete) with a no-op handler, against the storage-only
//! drain (claim_and_start, complete on the same adapter) measured in the same run.
//!
//! Run: `cargo bench -p prismq-app --bench runtime`. `PRISMQ_BENCH_RUNTIME_TASKS` sets the
//! number of tasks per run (default 100,000). Each figure is the median of three runs with
//! the min–max spread; the ratio is the figure that matters on a noisy machine.

use async_trait::async_trait;
use prismq_app::{PluginRegistry, RunOptions, Runtime, WorkerSettings};
use prismq_domain::ports::{ClaimFilter, ClaimRequest, SystemClock};
use prismq_domain::task::{NewTask, Task, TaskType, WorkerId};
use prismq_domain::{
    ClaimingStrategy, Registrar, TaskContext, TaskError, TaskHandler, TaskResult, ValidationError,
};
use prismq_storage_sqlite::{SqliteOptions, SqliteStore};
use serde_json::{json, Map, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const RUNS: usize = 3;

/// Does nothing, successfully: the runtime's own cost is what is left.
struct Noop;

#[async_trait]
impl TaskHandler for Noop {
    fn task_type(&self) -> TaskType {
        TaskType::new("noop").expect("type")
    }
    fn validate(&self, _: &Map<String, Value>) -> Result<(), ValidationError> {
        Ok(())
    }
    async fn handle(&self, _: &Task, _: &TaskContext) -> Result<TaskResult, TaskError> {
        Ok(TaskResult::default())
    }
}

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(SqliteOptions::new(path), Arc::new(SystemClock)).expect("open")
}

fn fill(store: &SqliteStore, n: usize) {
    let tt = TaskType::new("noop").expect("type");
    let tasks: Vec<NewTask> = (0..n)
        .map(|i| NewTask::new(tt.clone(), json!({ "i": i })))
        .collect();
    for chunk in tasks.chunks(1000) {
        store.enqueue_batch_blocking(chunk).expect("enqueue");
    }
}

fn storage_drain(path: &Path, threads: usize, n: usize) -> f64 {
    let store = open(path);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let req = ClaimRequest {
                    worker: WorkerId::new(format!("s{t}")).expect("id"),
                    filter: ClaimFilter {
                        task_types: vec![TaskType::new("noop").expect("type")],
                        region: None,
                        only: None,
                    },
                    strategy: ClaimingStrategy::Lifo,
                    lease_for: Duration::from_secs(60),
                };
                let mut done = 0usize;
                while let Some(c) = store.claim_and_start_blocking(&req).expect("claim") {
                    store.complete_blocking(&c.lease, None).expect("complete");
                    done += 1;
                }
                done
            })
        })
        .collect();
    let done: usize = handles.into_iter().map(|h| h.join().expect("join")).sum();
    assert_eq!(done, n);
    n as f64 / start.elapsed().as_secs_f64()
}

fn runtime_drain(rt: &tokio::runtime::Runtime, path: &Path, concurrency: usize, n: usize) -> f64 {
    let store = open(path);
    let mut registry = PluginRegistry::new();
    registry.add(Arc::new(Noop)).expect("register");
    let settings = WorkerSettings {
        concurrency,
        strategy: ClaimingStrategy::Lifo,
        ..WorkerSettings::default()
    };
    let s = Arc::new(store);
    let runtime = Runtime::new(
        s.clone(),
        s.clone(),
        s.clone(),
        s,
        Arc::new(registry),
        settings,
    );
    let start = Instant::now();
    let report = rt
        .block_on(runtime.run(
            RunOptions {
                drain: true,
                max_tasks: None,
            },
            CancellationToken::new(),
        ))
        .expect("run");
    assert_eq!(report.completed as usize, n);
    n as f64 / start.elapsed().as_secs_f64()
}

fn median_spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: usize = std::env::var("PRISMQ_BENCH_RUNTIME_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    println!("# prismq-app runtime benchmark: {n} tasks, no-op handler, LIFO (median of {RUNS} runs, min–max)");
    println!("| concurrency | storage-only tasks/s | runtime tasks/s | ratio |\n|---|---|---|---|");
    for concurrency in [1, 2, 4] {
        let (mut storage, mut runtime) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            for which in 0..2 {
                let dir = tempfile::tempdir().expect("dir");
                let path = dir.path().join("q.db");
                fill(&open(&path), n);
                if which == 0 {
                    storage.push(storage_drain(&path, concurrency, n));
                } else {
                    runtime.push(runtime_drain(&rt, &path, concurrency, n));
                }
            }
        }
        let ratios: Vec<f64> = runtime.iter().zip(&storage).map(|(r, s)| r / s).collect();
        let (s, smin, smax) = median_spread(storage);
        let (r, rmin, rmax) = median_spread(runtime);
        let (q, qmin, qmax) = median_spread(ratios);
        println!("| {concurrency} | {s:.0} ({smin:.0}–{smax:.0}) | {r:.0} ({rmin:.0}–{rmax:.0}) | {q:.2} ({qmin:.2}–{qmax:.2}) |");
    }
}
