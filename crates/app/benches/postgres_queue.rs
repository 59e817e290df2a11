//! PostgreSQL benchmarks, beside SQLite in the same run:
//! - drain throughput (claim + start + complete; claim_and_start then complete_and_claim per
//!   task, as a worker loop taking one task at a time does; claim_and_start_many then
//!   complete_and_claim_many per batch of 16, as a loop keeping quick tasks ahead does) with
//!   1, 4 and 16 concurrent workers, FIFO and WeightedRandom;
//! - claim latency (p50/p95) per strategy with `PRISMQ_BENCH_QUEUED` tasks queued
//!   (default 1,000,000) in 4 types and 10 priority levels;
//! - enqueue-to-claim latency on an idle queue, waking on LISTEN/NOTIFY versus polling;
//! - `prismq work`'s runtime (leases, heartbeats, logs, a no-op handler per type) draining
//!   the same queue of 4 types with 1, 4 and 16 loops, one task at a time
//!   (`worker.prefetch = 1`) and with the default (`auto`).
//!
//! Run: `source scripts/services/postgres.sh && cargo bench -p prismq-app --bench postgres_queue`
//! (in the app, which knows both adapters: the PostgreSQL crate does not depend on SQLite).
//! `PRISMQ_BENCH_DRAIN` sets the drain size (default 5,000), `PRISMQ_BENCH_ONLY=runtime` runs
//! only the runtime's drains. Each run uses fresh schemas.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use prismq_app::config::Prefetch;
use prismq_app::{PluginRegistry, RunOptions, Runtime, WorkerSettings};
use prismq_domain::ports::{ClaimFilter, ClaimRequest, Clock, Handover, SystemClock, TaskQueue};
use prismq_domain::task::{NewTask, Priority, Task, TaskType, WorkerId};
use prismq_domain::{
    ClaimingStrategy, Registrar, TaskContext, TaskError, TaskHandler, TaskResult, ValidationError,
};
use prismq_storage_postgres::{PostgresOptions, PostgresStore};
use prismq_storage_sqlite::{SqliteOptions, SqliteStore};
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

const TYPES: [&str; 4] = [
    "channel_scrape",
    "trending_scrape",
    "keyword_search",
    "api_scrape",
];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn task(i: usize) -> NewTask {
    task_of(i, &TYPES)
}

/// Task `i` of a queue of `types` (in turn).
fn task_of(i: usize, types: &[&str]) -> NewTask {
    NewTask::new(
        TaskType::new(types[i % types.len()]).expect("type"),
        json!({"channel_url": format!("@channel{i:08}"), "top_n": 10, "tab": "videos"}),
    )
    .priority(Priority::new((i / 4 % 10) as i64 + 1).expect("priority"))
}

fn request(worker: &str, strategy: ClaimingStrategy) -> ClaimRequest {
    request_for(worker, strategy, &TYPES)
}

/// A claim request of a worker taking `types`.
fn request_for(worker: &str, strategy: ClaimingStrategy, types: &[&str]) -> ClaimRequest {
    ClaimRequest {
        worker: WorkerId::new(worker).expect("worker"),
        filter: ClaimFilter {
            task_types: types
                .iter()
                .map(|t| TaskType::new(*t).expect("type"))
                .collect(),
            region: None,
            only: None,
        },
        strategy,
        lease_for: Duration::from_secs(600),
    }
}

fn schema(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("bench_{tag}_{}_{nanos}", std::process::id())
}

async fn pg(url: &str, tag: &str) -> PostgresStore {
    let mut o = PostgresOptions::new(url).with_schema(schema(tag));
    o.pool_size = 24;
    PostgresStore::open(o, Arc::new(SystemClock) as Arc<dyn Clock>)
        .await
        .expect("open PostgreSQL")
}

async fn fill(q: &dyn TaskQueue, n: usize) -> Duration {
    fill_of(q, n, &TYPES).await
}

/// Fills the queue with `n` tasks of `types` in turn.
async fn fill_of(q: &dyn TaskQueue, n: usize, types: &[&str]) -> Duration {
    let start = Instant::now();
    let mut i = 0;
    while i < n {
        let batch: Vec<NewTask> = (i..(i + 10_000).min(n))
            .map(|i| task_of(i, types))
            .collect();
        i += batch.len();
        q.enqueue_batch(batch).await.expect("enqueue");
    }
    start.elapsed()
}

async fn drain(q: Arc<dyn TaskQueue>, workers: usize) -> Duration {
    let start = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let q = q.clone();
            tokio::spawn(async move {
                let req = request(&format!("w{w}"), ClaimingStrategy::Fifo);
                while let Some(c) = q.claim(&req).await.expect("claim") {
                    q.start(&c.lease).await.expect("start");
                    q.complete(&c.lease, None).await.expect("complete");
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("worker");
    }
    start.elapsed()
}

/// What the worker runtime does on an engine that completes and claims in one step: one
/// claim_and_start, then complete_and_claim per task.
async fn handover_drain(
    q: Arc<dyn TaskQueue>,
    workers: usize,
    types: &'static [&'static str],
    strategy: ClaimingStrategy,
) -> Duration {
    let start = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let q = q.clone();
            tokio::spawn(async move {
                let req = request_for(&format!("h{w}"), strategy, types);
                let mut next = q.claim_and_start(&req).await.expect("claim");
                while let Some(c) = next {
                    next = q
                        .complete_and_claim(&c.lease, None, &req)
                        .await
                        .expect("complete")
                        .expect("claim");
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("worker");
    }
    start.elapsed()
}

/// What a worker loop keeping tasks ahead does (`worker.prefetch` 16, or `auto` with quick
/// tasks): claim_and_start_many, then complete_and_claim_many of the batch it ran.
async fn batched_drain(
    q: Arc<dyn TaskQueue>,
    workers: usize,
    k: usize,
    types: &'static [&'static str],
    strategy: ClaimingStrategy,
) -> Duration {
    let start = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let q = q.clone();
            tokio::spawn(async move {
                let req = request_for(&format!("b{w}"), strategy, types);
                let mut held = q.claim_and_start_many(&req, k).await.expect("claim");
                while !held.is_empty() {
                    let items: Vec<Handover> = held
                        .iter()
                        .map(|c| Handover {
                            lease: c.lease.clone(),
                            summary: None,
                            next: Some(req.clone()),
                        })
                        .collect();
                    held = Vec::new();
                    for a in q.complete_and_claim_many(&items).await.expect("write") {
                        held.extend(a.expect("complete").expect("claim"));
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("worker");
    }
    start.elapsed()
}

/// Does nothing, successfully, for one task type: the runtime's own cost is what is left.
struct Noop(&'static str);

#[async_trait]
impl TaskHandler for Noop {
    fn task_type(&self) -> TaskType {
        TaskType::new(self.0).expect("type")
    }
    fn validate(&self, _: &Map<String, Value>) -> Result<(), ValidationError> {
        Ok(())
    }
    async fn handle(&self, _: &Task, _: &TaskContext) -> Result<TaskResult, TaskError> {
        Ok(TaskResult::default())
    }
}

/// `prismq work`'s runtime with `loops` loops and `prefetch`, draining `n` tasks of the four
/// types from a fresh schema; every task completed once.
async fn runtime_drain(url: &str, loops: usize, prefetch: Prefetch, n: usize) -> Duration {
    let p = pg(url, "runtime").await;
    fill(&p, n).await;
    let mut registry = PluginRegistry::new();
    for t in TYPES {
        registry.add(Arc::new(Noop(t))).expect("register");
    }
    let settings = WorkerSettings {
        concurrency: loops,
        strategy: ClaimingStrategy::Fifo,
        prefetch,
        ..WorkerSettings::default()
    };
    let s = Arc::new(p);
    let runtime = Runtime::new(
        s.clone(),
        s.clone(),
        s.clone(),
        s,
        Arc::new(registry),
        settings,
    );
    let start = Instant::now();
    let report = runtime
        .run(
            RunOptions {
                drain: true,
                max_tasks: None,
            },
            CancellationToken::new(),
        )
        .await
        .expect("run");
    let took = start.elapsed();
    assert_eq!(report.completed as usize, n, "every task completed once");
    took
}

async fn runtime_drains(url: &str) {
    let n = env_usize("PRISMQ_BENCH_DRAIN", 5_000);
    println!("\n## The worker runtime draining {n} tasks of 4 types, no-op handlers, tasks/s");
    println!("| loops | `prefetch = 1` | `prefetch = \"auto\"` (the default) |");
    println!("| --- | --- | --- |");
    for loops in [1, 4, 16] {
        let mut cells = Vec::new();
        for prefetch in [Prefetch::AtMost(1), Prefetch::Auto] {
            let took = runtime_drain(url, loops, prefetch, n).await;
            cells.push(format!("{:.0}", n as f64 / took.as_secs_f64()));
        }
        println!("| {loops} | {} |", cells.join(" | "));
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Tasks a batched drain claims and completes at once (`AUTO_PREFETCH`, what `auto` holds
/// at most).
const BATCH: usize = 16;

async fn drains(url: &str, dir: &Path) {
    let n = env_usize("PRISMQ_BENCH_DRAIN", 5_000);
    println!("\n## Drain {n} tasks, tasks/s");
    println!("claim + start + complete per task; (handover) claim_and_start then complete_and_claim per task, what a worker loop taking one task at a time does on PostgreSQL; (batches of {BATCH}) claim_and_start_many then complete_and_claim_many per batch, what a loop keeping quick tasks ahead does. FIFO over tasks of 4 types in turn, or of one type; WeightedRandom over the 4 types\n");
    println!(
        "| workers | PostgreSQL | handover | batches of {BATCH} | one type: handover | one type: batches of {BATCH} | WeightedRandom: handover | WeightedRandom: batches of {BATCH} | SQLite |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for workers in [1, 4, 16] {
        let p = pg(url, "drain").await;
        fill(&p, n).await;
        let tp = drain(Arc::new(p), workers).await;
        let mut rates = Vec::new();
        for (types, strategy) in [
            (&TYPES[..], ClaimingStrategy::Fifo),
            (&TYPES[..1], ClaimingStrategy::Fifo),
            (&TYPES[..], ClaimingStrategy::WeightedRandom),
        ] {
            let p = pg(url, "handover").await;
            fill_of(&p, n, types).await;
            rates.push(handover_drain(Arc::new(p), workers, types, strategy).await);
            let p = pg(url, "batched").await;
            fill_of(&p, n, types).await;
            rates.push(batched_drain(Arc::new(p), workers, BATCH, types, strategy).await);
        }
        let s = SqliteStore::open(
            SqliteOptions::new(dir.join(format!("drain{workers}.db"))),
            Arc::new(SystemClock),
        )
        .expect("open SQLite");
        fill(&s, n).await;
        let ts = drain(Arc::new(s), workers).await;
        let rate = |d: &Duration| format!("{:.0}", n as f64 / d.as_secs_f64());
        let pg_rates: Vec<String> = rates.iter().map(rate).collect();
        println!(
            "| {workers} | {} | {} | {} |",
            rate(&tp),
            pg_rates.join(" | "),
            rate(&ts)
        );
    }
}

async fn claim_latency(url: &str) {
    let queued = env_usize("PRISMQ_BENCH_QUEUED", 1_000_000);
    let p = pg(url, "claims").await;
    let took = fill(&p, queued).await;
    println!(
        "\n## Claim latency, {queued} queued in 4 types × 10 levels (filled in {:.1} s, {:.0} tasks/s)",
        took.as_secs_f64(),
        queued as f64 / took.as_secs_f64()
    );
    let client = p.connection().await.expect("connection");
    client.batch_execute("ANALYZE").await.expect("analyze");
    drop(client);
    println!("| strategy | p50 ms | p95 ms | max ms |");
    println!("| --- | --- | --- | --- |");
    for strategy in ClaimingStrategy::ALL {
        let req = request("lat", strategy);
        let mut times = Vec::with_capacity(1000);
        for _ in 0..1000 {
            let t = Instant::now();
            let c = p.claim(&req).await.expect("claim");
            times.push(t.elapsed());
            assert!(c.is_some());
        }
        times.sort_unstable();
        println!(
            "| {strategy} | {:.3} | {:.3} | {:.3} |",
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.95)),
            ms(*times.last().expect("samples"))
        );
    }
}

/// Enqueue-to-claim latency on an idle queue: the worker either waits on LISTEN/NOTIFY
/// (up to 1 s between polls) or polls every 250 ms.
async fn wake_latency(url: &str) {
    println!("\n## Enqueue-to-claim on an idle queue, 30 tasks each");
    println!("| wake-up | p50 ms | p95 ms |");
    println!("| --- | --- | --- |");
    for notify in [true, false] {
        let worker = pg(url, "wake").await;
        let enqueuer = PostgresStore::connect_lazy(
            worker.options().clone(),
            Arc::new(SystemClock) as Arc<dyn Clock>,
        )
        .expect("store");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
        let w = worker.clone();
        let handle = tokio::spawn(async move {
            let mut signal = w.subscribe();
            signal.wait(Duration::from_secs(2)).await; // listener connected
            let req = request("idle", ClaimingStrategy::Fifo);
            let mut got = 0;
            while got < 30 {
                match w.claim(&req).await.expect("claim") {
                    Some(c) => {
                        tx.send(Instant::now()).expect("send");
                        w.complete(&c.lease, None).await.expect("complete");
                        got += 1;
                    }
                    None if notify => {
                        signal.wait(Duration::from_secs(1)).await;
                    }
                    None => tokio::time::sleep(Duration::from_millis(250)).await,
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut lat = Vec::new();
        for i in 0..30 {
            // Irregular gaps, so polling is caught at every phase.
            tokio::time::sleep(Duration::from_millis(97 + (i * 37 % 200) as u64)).await;
            let t = Instant::now();
            enqueuer.enqueue(task(i)).await.expect("enqueue");
            let claimed = rx.recv().await.expect("claimed");
            lat.push(claimed.duration_since(t));
        }
        handle.await.expect("worker");
        lat.sort_unstable();
        println!(
            "| {} | {:.1} | {:.1} |",
            if notify {
                "LISTEN/NOTIFY"
            } else {
                "polling every 250 ms"
            },
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.95))
        );
    }
}

fn main() {
    let Ok(url) = std::env::var("PRISMQ_TEST_POSTGRES_URL") else {
        eprintln!(
            "PRISMQ_TEST_POSTGRES_URL is not set: run `source scripts/services/postgres.sh` first"
        );
        std::process::exit(2);
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    rt.block_on(async {
        if std::env::var("PRISMQ_BENCH_ONLY").as_deref() == Ok("runtime") {
            runtime_drains(&url).await;
            return;
        }
        wake_latency(&url).await;
        drains(&url, dir.path()).await;
        runtime_drains(&url).await;
        claim_latency(&url).await;
    });
}
