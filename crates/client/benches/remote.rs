//! Remote against local workers: four worker runtimes (one loop each) drain no-op tasks
//! from one SQLite file, either straight on the store (local workers) or through
//! `RemoteStore` over a real server on 127.0.0.1 (the router `prismq serve` runs, on a tokio
//! runtime of its own) — the same file, the same tasks, in the same run.
//!
//! Run: `cargo bench -p prismq-client --bench remote`. `PRISMQ_BENCH_REMOTE_TASKS` sets the
//! number of tasks per run (default 20,000). Each figure is the median of three runs with
//! the min–max spread; the ratio (remote / local) is the figure that matters on a noisy
//! machine. Each remote worker has a key of its own (a key's rate limit caps at 100,000
//! requests a minute, about 800 tasks/s for one key's workers).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use prismq_app::{
    App, Config, LoadOptions, PluginRegistry, Ports, RunOptions, Runtime, WorkerSettings,
};
use prismq_client::{ApiKeySecret, RemoteOptions, RemoteStore};
use prismq_domain::ports::{ApiKeyStore, NewApiKey, Scope, SystemClock};
use prismq_domain::task::{NewTask, Task, TaskType};
use prismq_domain::{
    ClaimingStrategy, Registrar, TaskContext, TaskError, TaskHandler, TaskResult, ValidationError,
};
use prismq_storage_sqlite::{SqliteOptions, SqliteStore};

const RUNS: usize = 3;
const WORKERS: usize = 4;

/// Does nothing, successfully.
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

fn registry() -> Arc<PluginRegistry> {
    let mut registry = PluginRegistry::new();
    registry.add(Arc::new(Noop)).expect("register");
    Arc::new(registry)
}

fn settings(index: usize) -> WorkerSettings {
    WorkerSettings {
        concurrency: 1,
        strategy: ClaimingStrategy::Lifo,
        hostname: format!("bench{index}"),
        ..WorkerSettings::default()
    }
}

/// Runs one runtime per set of ports to a drained queue; tasks per second.
fn drain(rt: &tokio::runtime::Runtime, runtimes: Vec<Runtime>, n: usize) -> f64 {
    let start = Instant::now();
    let completed: u64 = rt.block_on(async {
        let mut all = tokio::task::JoinSet::new();
        for r in runtimes {
            all.spawn(async move {
                r.run(
                    RunOptions {
                        drain: true,
                        max_tasks: None,
                    },
                    CancellationToken::new(),
                )
                .await
                .expect("run")
                .completed
            });
        }
        let mut sum = 0;
        while let Some(done) = all.join_next().await {
            sum += done.expect("join");
        }
        sum
    });
    assert_eq!(completed as usize, n);
    n as f64 / start.elapsed().as_secs_f64()
}

fn local(rt: &tokio::runtime::Runtime, path: &Path, n: usize) -> f64 {
    let s = Arc::new(open(path));
    let runtimes = (0..WORKERS)
        .map(|i| {
            Runtime::new(
                s.clone(),
                s.clone(),
                s.clone(),
                s.clone(),
                registry(),
                settings(i),
            )
        })
        .collect();
    drain(rt, runtimes, n)
}

fn remote(
    rt: &tokio::runtime::Runtime,
    server_rt: &tokio::runtime::Runtime,
    path: &Path,
    n: usize,
) -> f64 {
    let store = open(path);
    let secrets: Vec<String> = (0..WORKERS)
        .map(|i| {
            let secret = prismq_server::secret::generate();
            let key =
                NewApiKey::for_secret(&secret, format!("bench{i}"), vec![Scope::Work], 100_000)
                    .expect("key");
            server_rt.block_on(store.create(key)).expect("create key");
            secret
        })
        .collect();
    let config = Config::load(&LoadOptions::default()).expect("config");
    let app = App::from_parts(
        Ports::from_store(store),
        Arc::new(SystemClock),
        registry(),
        config,
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    let stop = CancellationToken::new();
    let router =
        prismq_server::router_until(app, prismq_server::ServerOptions::new(addr), stop.clone());
    let serving = stop.clone();
    let server = server_rt.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { serving.cancelled().await })
            .await
            .expect("serve");
    });
    let runtimes = secrets
        .iter()
        .enumerate()
        .map(|(i, secret)| {
            let mut o = RemoteOptions::new(
                &format!("http://{addr}"),
                ApiKeySecret::new(secret).expect("key"),
            )
            .expect("options");
            o.claim_wait = Duration::ZERO;
            let s = Arc::new(RemoteStore::new(o).expect("client"));
            Runtime::new(s.clone(), s.clone(), s.clone(), s, registry(), settings(i))
        })
        .collect();
    let rate = drain(rt, runtimes, n);
    stop.cancel();
    server_rt.block_on(server).expect("server stopped");
    rate
}

fn median_spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: usize = std::env::var("PRISMQ_BENCH_REMOTE_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let (mut locals, mut remotes) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        for which in 0..2 {
            let dir = tempfile::tempdir().expect("dir");
            let path = dir.path().join("q.db");
            fill(&open(&path), n);
            if which == 0 {
                locals.push(local(&rt, &path, n));
            } else {
                remotes.push(remote(&rt, &server_rt, &path, n));
            }
        }
    }
    let ratios: Vec<f64> = remotes.iter().zip(&locals).map(|(r, l)| r / l).collect();
    let (l, lmin, lmax) = median_spread(locals);
    let (r, rmin, rmax) = median_spread(remotes);
    let (q, qmin, qmax) = median_spread(ratios);
    println!("# prismq-client remote benchmark: {n} no-op tasks, {WORKERS} workers of one loop each, LIFO (median of {RUNS} runs, min–max)");
    println!("| local tasks/s | remote tasks/s | remote / local |\n|---|---|---|");
    println!("| {l:.0} ({lmin:.0}–{lmax:.0}) | {r:.0} ({rmin:.0}–{rmax:.0}) | {q:.2} ({qmin:.2}–{qmax:.2}) |");
}
