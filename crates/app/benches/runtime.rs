//! Runtime overhead: drains tasks through the whole worker runtime (claim, start, lease
//! renewal, heartbeat, handler, complete) with a no-op handler, against the storage-only
//! drain (claim_and_start, complete on the same adapter) and the minimal bare rusqlite loop
//! (the storage crate's benches/common/minimal.rs, issue 20's floor), all in the same run,
//! on tasks with 200-byte params.
//!
//! Run: `cargo bench -p prismq-app --bench runtime`.
//! `PRISMQ_BENCH_PAGE_SIZE` sets the page size of the store's files (`common/page.rs`;
//! the store's default, 2048, otherwise). `PRISMQ_BENCH_RUNTIME_TASKS` sets the
//! number of tasks per run (default 100,000), `PRISMQ_BENCH_CONCURRENCY` the loop counts
//! (default 1,2,4), `PRISMQ_BENCH_PREFETCH` the `worker.prefetch` values the runtime runs
//! with (`auto` or a number; default 1,auto,16: a row each), `PRISMQ_BENCH_THREADS` the async runtime's threads
//! (default: as `prismq work` builds it, one a loop up to the cores), `PRISMQ_BENCH_RUNS`
//! the runs per figure (default 3);
//! `PRISMQ_BENCH_ONLY=runtime` runs only the runtime's drains and prints no figures (to
//! profile with `perf record`). Each figure is the
//! median of the runs with the min–max spread; the ratios are the figures that matter on a noisy machine, and the
//! process's CPU time per task moves least with other work on the machine.

/// The `prismq` binary's allocator, for the bare loop and the runtime alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../../storage-sqlite/benches/common/minimal.rs"]
mod minimal;

#[path = "../../storage-sqlite/benches/common/page.rs"]
mod page;

use async_trait::async_trait;
use prismq_app::config::Prefetch;
use prismq_app::{PluginRegistry, RunOptions, Runtime, WorkerSettings};
use prismq_domain::ports::{ClaimFilter, ClaimRequest, SystemClock};
use prismq_domain::task::{NewTask, Task, TaskType, WorkerId};
use prismq_domain::{
    ClaimingStrategy, Registrar, TaskContext, TaskError, TaskHandler, TaskResult, ValidationError,
};
use prismq_storage_sqlite::SqliteStore;
use serde_json::{Map, Value};
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
    SqliteStore::open(page::options(path), Arc::new(SystemClock)).expect("open")
}

/// 200 bytes of JSON params.
fn payload(i: usize) -> String {
    let head = format!("{{\"i\":\"{i:08}\",\"pad\":\"");
    format!("{head}{}\"}}", "x".repeat(200 - head.len() - 2))
}

fn fill(store: &SqliteStore, n: usize) {
    let tt = TaskType::new("noop").expect("type");
    let tasks: Vec<NewTask> = (0..n)
        .map(|i| {
            let params: Value = serde_json::from_str(&payload(i)).expect("json");
            NewTask::new(tt.clone(), params)
        })
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

fn runtime_drain(
    rt: &tokio::runtime::Runtime,
    path: &Path,
    concurrency: usize,
    prefetch: Prefetch,
    n: usize,
) -> f64 {
    let store = open(path);
    let mut registry = PluginRegistry::new();
    registry.add(Arc::new(Noop)).expect("register");
    let settings = WorkerSettings {
        concurrency,
        strategy: ClaimingStrategy::Lifo,
        prefetch,
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

/// CPU time (user + system) of this process so far, from `/proc/self/stat` (Linux; zero
/// elsewhere), in USER_HZ ticks of 10 ms.
fn cpu() -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
            Some(after.get(11)?.parse::<u64>().ok()? + after.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// (tasks/s, CPU µs per task) of a drain of `n` tasks.
fn measured(n: usize, drain: impl FnOnce() -> f64) -> (f64, f64) {
    let before = cpu();
    let rate = drain();
    (rate, (cpu() - before).as_secs_f64() * 1e6 / n as f64)
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
    let levels: Vec<usize> = std::env::var("PRISMQ_BENCH_CONCURRENCY")
        .ok()
        .map(|v| v.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2, 4]);
    let runs: usize = std::env::var("PRISMQ_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(RUNS);
    let prefetches: Vec<Prefetch> = std::env::var("PRISMQ_BENCH_PREFETCH")
        .ok()
        .map(|v| {
            v.split(',')
                .filter_map(|c| Prefetch::parse(c).ok())
                .collect()
        })
        .unwrap_or_else(|| vec![Prefetch::AtMost(1), Prefetch::Auto, Prefetch::AtMost(16)]);
    println!("# prismq-app runtime benchmark: {n} tasks of 200-byte params, no-op handler, LIFO (the bare loop FIFO); median of {runs} runs, min–max");
    println!("{}", page::describe());
    println!("| concurrency | prefetch | minimal bare loop tasks/s | storage-only tasks/s | runtime tasks/s | runtime / storage | runtime / bare | CPU µs/task: bare, storage, runtime |\n|---|---|---|---|---|---|---|---|");
    // Only the runtime's drains, printing nothing: what to run under `perf record`.
    let runtime_only = std::env::var("PRISMQ_BENCH_ONLY").as_deref() == Ok("runtime");
    for concurrency in levels {
        // As `prismq work` builds it: one thread a loop, up to the cores.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(
                std::env::var("PRISMQ_BENCH_THREADS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| prismq_app::runtime::async_threads(concurrency)),
            )
            .enable_all()
            .build()
            .expect("tokio");
        let (mut bare, mut storage) = (Vec::new(), Vec::new());
        let mut runtime = vec![Vec::new(); prefetches.len()];
        let (mut cpu_bare, mut cpu_storage) = (Vec::new(), Vec::new());
        let mut cpu_runtime = vec![Vec::new(); prefetches.len()];
        for _ in 0..runs {
            let dir = tempfile::tempdir().expect("dir");
            let floor = dir.path().join("minimal.db");
            minimal::fill(&floor, n, "noop", payload);
            let s = dir.path().join("s.db");
            fill(&open(&s), n);
            let files: Vec<_> = prefetches
                .iter()
                .map(|k| {
                    let r = dir.path().join(format!("r{k}.db"));
                    fill(&open(&r), n);
                    r
                })
                .collect();
            if !runtime_only {
                let (rate, per) = measured(n, || minimal::drain(&floor, concurrency, "noop", n));
                bare.push(rate);
                cpu_bare.push(per);
                let (rate, per) = measured(n, || storage_drain(&s, concurrency, n));
                storage.push(rate);
                cpu_storage.push(per);
            }
            for (i, (k, r)) in prefetches.iter().zip(&files).enumerate() {
                let (rate, per) = measured(n, || runtime_drain(&rt, r, concurrency, *k, n));
                runtime[i].push(rate);
                cpu_runtime[i].push(per);
            }
        }
        if runtime_only {
            continue;
        }
        let ratio =
            |a: &[f64], b: &[f64]| median_spread(a.iter().zip(b).map(|(a, b)| a / b).collect());
        let (b, bmin, bmax) = median_spread(bare.clone());
        let (s, smin, smax) = median_spread(storage.clone());
        let cb = median_spread(cpu_bare.clone()).0;
        let cs = median_spread(cpu_storage.clone()).0;
        for (i, k) in prefetches.iter().enumerate() {
            let (q, qmin, qmax) = ratio(&runtime[i], &storage);
            let (w, wmin, wmax) = ratio(&runtime[i], &bare);
            let (r, rmin, rmax) = median_spread(runtime[i].clone());
            let cr = median_spread(cpu_runtime[i].clone()).0;
            println!("| {concurrency} | {k} | {b:.0} ({bmin:.0}–{bmax:.0}) | {s:.0} ({smin:.0}–{smax:.0}) | {r:.0} ({rmin:.0}–{rmax:.0}) | {q:.2} ({qmin:.2}–{qmax:.2}) | {w:.2} ({wmin:.2}–{wmax:.2}) | {cb:.0}, {cs:.0}, {cr:.0} |");
        }
    }
}
