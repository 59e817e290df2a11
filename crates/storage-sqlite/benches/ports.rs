//! The store against the minimal bare loop (benches/common/minimal.rs) in the same run:
//! drain throughput through the blocking methods, through the async ports, and with each completion
//! and the next claim in one transaction (`complete_and_claim`, what the runtime does), and claim
//! latency through the async ports at scale, each as a ratio to the bare loop (issue 20's
//! targets 2 and 3, and the async half of target 1).
//!
//! Run: `cargo bench -p prismq-storage-sqlite --bench ports`. `PRISMQ_BENCH_TASKS` sets the
//! tasks per drain (default 20,000), `PRISMQ_BENCH_WORKERS` the worker counts (default
//! 1,2,4), `PRISMQ_BENCH_RUNS` the runs per drain figure (default 3), `PRISMQ_BENCH_QUEUED`
//! the queue size for the latency part (default 1,000,000), `PRISMQ_BENCH_AHEAD` the tasks of
//! another region ahead in the region part (default 200,000), `PRISMQ_BENCH_LOAD` the tasks loaded in the load part (default 200,000),
//! `PRISMQ_BENCH_ONLY=drain|pages|structures|wal|latency|load|region`
//! one part (`pages`: the WAL frames a task's transitions write, one task a call;
//! `structures`: the one-task drain with indexes dropped, what each costs, and the bare loop
//! on a file of 1 KiB pages; `wal`: the one-task drain with WAL writes batched a commit and
//! two a frame, at each of `PRISMQ_BENCH_WORKERS`); `PRISMQ_BENCH_ONLY=handover` runs only the `complete_and_claim` drain (at one
//! worker unless `PRISMQ_BENCH_WORKERS` says otherwise), to profile with `perf record`;
//! `PRISMQ_BENCH_ONLY=batched` only K completions and claims per transaction
//! (`complete_and_claim_many`) against the bare loop, K = 1 to 16. Every figure is the median of the interleaved runs with the min–max spread;
//! the drain also reports the process's CPU time per task, which moves less than wall-clock
//! rates when other work shares the machine. `PRISMQ_BENCH_PAGE_SIZE` sets the page size of
//! the store's files (bytes; the store's default, 2048, otherwise) and `PRISMQ_BENCH_WAL_WRITES=frames`
//! turns off their batched WAL writes; the bare loop keeps SQLite's defaults.

/// The `prismq` binary's allocator, for the bare loop and the store alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "common/minimal.rs"]
mod minimal;
#[path = "common/wal.rs"]
mod wal;

#[path = "common/page.rs"]
mod page;

use prismq_domain::ports::{ClaimFilter, ClaimRequest, Handover, SystemClock, TaskQueue};
use prismq_domain::task::{Lease, NewTask, Priority, TaskType, WorkerId};
use prismq_domain::ClaimingStrategy;
use prismq_storage_sqlite::{SqliteOptions, SqliteStore};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wal::{empty_wal, wal_frames};

/// Runs per figure (`PRISMQ_BENCH_RUNS` overrides it for the drain).
const RUNS: usize = 3;
const CLAIMS: usize = 2_000;
const TYPE: &str = "bench";

/// The worker (thread) counts `PRISMQ_BENCH_WORKERS` lists, comma-separated, or `default`.
fn env_workers(default: &[usize]) -> Vec<usize> {
    std::env::var("PRISMQ_BENCH_WORKERS")
        .ok()
        .map(|v| v.split(',').filter_map(|w| w.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(page::options(path), Arc::new(SystemClock)).expect("open")
}

/// 200 bytes of JSON params.
fn payload(i: usize) -> String {
    let head = format!("{{\"channel_url\":\"@creator-channel-{i:08}\",\"top_n\":10,\"pad\":\"");
    let mut s = head.clone();
    s.push_str(&"x".repeat(200 - head.len() - 2));
    s.push_str("\"}");
    debug_assert_eq!(s.len(), 200);
    s
}

fn task(i: usize) -> NewTask {
    let params: serde_json::Value = serde_json::from_str(&payload(i)).expect("json");
    NewTask::new(TaskType::new(TYPE).expect("type"), params)
        .priority(Priority::new((i % 10) as i64 + 1).expect("priority"))
}

fn fill(store: &SqliteStore, n: usize) -> minimal::Load {
    let start = Instant::now();
    let mut writes = Duration::ZERO;
    for first in (0..n).step_by(1000) {
        let batch: Vec<NewTask> = (first..(first + 1000).min(n)).map(task).collect();
        let clock = Instant::now();
        store.enqueue_batch_blocking(&batch).expect("enqueue");
        writes += clock.elapsed();
    }
    minimal::Load {
        total: start.elapsed(),
        writes,
    }
}

fn request(worker: &str, strategy: ClaimingStrategy) -> ClaimRequest {
    ClaimRequest {
        worker: WorkerId::new(worker).expect("worker"),
        filter: ClaimFilter {
            task_types: vec![TaskType::new(TYPE).expect("type")],
            region: None,
            only: None,
        },
        strategy,
        lease_for: Duration::from_secs(300),
    }
}

/// Runs `drain` on `threads` plain threads over the store at `path` (each gets the store and
/// its claim request, worker `{tag}{t}`, FIFO, and answers the tasks it finished), and
/// returns the tasks per second; asserts that every one of the `n` tasks was taken once.
fn on_threads<F>(path: &Path, threads: usize, n: usize, tag: &str, drain: F) -> f64
where
    F: Fn(&SqliteStore, &ClaimRequest) -> usize + Send + Sync + Copy + 'static,
{
    on_threads_with(page::options(path), threads, n, tag, drain)
}

/// [`on_threads`] on a store opened with `options`.
fn on_threads_with<F>(options: SqliteOptions, threads: usize, n: usize, tag: &str, drain: F) -> f64
where
    F: Fn(&SqliteStore, &ClaimRequest) -> usize + Send + Sync + Copy + 'static,
{
    let store = SqliteStore::open(options, Arc::new(SystemClock)).expect("open");
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = store.clone();
            let req = request(&format!("{tag}{t}"), ClaimingStrategy::Fifo);
            std::thread::spawn(move || drain(&store, &req))
        })
        .collect();
    let done: usize = handles.into_iter().map(|h| h.join().expect("join")).sum();
    let rate = done as f64 / start.elapsed().as_secs_f64();
    assert_eq!(done, n, "every task taken once");
    rate
}

/// One claim_and_start per thread, then complete_and_claim per task (each completion and
/// the next claim in one transaction), the blocking methods: what the worker runtime does.
fn fused_drain(path: &Path, threads: usize, n: usize) -> f64 {
    on_threads(path, threads, n, "f", |store, req| {
        let mut done = 0usize;
        let mut next = store.claim_and_start_blocking(req).expect("claim");
        while let Some(c) = next {
            next = store
                .complete_and_claim_blocking(&c.lease, None, req)
                .expect("complete")
                .expect("claim");
            done += 1;
        }
        done
    })
}

/// claim_and_start + complete per task from plain threads, the blocking methods.
fn blocking_drain(path: &Path, threads: usize, n: usize) -> f64 {
    blocking_drain_with(page::options(path), threads, n)
}

/// [`blocking_drain`] on a store opened with `options`.
fn blocking_drain_with(options: SqliteOptions, threads: usize, n: usize) -> f64 {
    on_threads_with(options, threads, n, "b", |store, req| {
        let mut done = 0usize;
        while let Some(c) = store.claim_and_start_blocking(req).expect("claim") {
            store.complete_blocking(&c.lease, None).expect("complete");
            done += 1;
        }
        done
    })
}

/// claim_and_start + complete per task through the async port (`dyn TaskQueue`), one tokio
/// task per worker on a multi-thread runtime, as `prismq work` runs them.
fn async_drain(rt: &tokio::runtime::Runtime, path: &Path, workers: usize, n: usize) -> f64 {
    let queue: Arc<dyn TaskQueue> = Arc::new(open(path));
    let start = Instant::now();
    let done: usize = rt.block_on(async {
        let handles: Vec<_> = (0..workers)
            .map(|t| {
                let queue = queue.clone();
                tokio::spawn(async move {
                    let req = request(&format!("a{t}"), ClaimingStrategy::Fifo);
                    let mut done = 0usize;
                    while let Some(c) = queue.claim_and_start(&req).await.expect("claim") {
                        queue.complete(&c.lease, None).await.expect("complete");
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        let mut sum = 0;
        for h in handles {
            sum += h.await.expect("join");
        }
        sum
    });
    let rate = done as f64 / start.elapsed().as_secs_f64();
    assert_eq!(done, n, "every task taken once");
    rate
}

/// CPU time (user + system) this process has used so far, from `/proc/self/stat` (Linux;
/// zero elsewhere). Wall-clock rates on a machine shared with other work move with the
/// others' load; CPU per task moves much less.
fn cpu() -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
            // Fields 14 and 15 (utime, stime), counted after the command's ')'.
            Some(after.get(11)?.parse::<u64>().ok()? + after.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    // The kernel's USER_HZ is 100 on every Linux this runs on.
    Duration::from_millis(ticks * 10)
}

/// Runs a drain and returns (tasks/s, CPU µs per task).
fn measured(n: usize, drain: impl FnOnce() -> f64) -> (f64, f64) {
    let before = cpu();
    let rate = drain();
    (rate, (cpu() - before).as_secs_f64() * 1e6 / n as f64)
}

fn median_spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio")
}

fn drain_figures(rt: &tokio::runtime::Runtime) {
    let n = env_usize("PRISMQ_BENCH_TASKS", 20_000);
    let workers = env_workers(&[1, 2, 4]);
    let runs = env_usize("PRISMQ_BENCH_RUNS", RUNS);
    println!("\n## Drain: {n} tasks of 200-byte params, FIFO, median of {runs} interleaved runs (min–max)");
    println!("| workers | minimal bare loop tasks/s | store, blocking methods tasks/s | ratio | store, async ports tasks/s | ratio | store, complete_and_claim tasks/s | ratio | CPU µs/task: bare, blocking, async, complete_and_claim |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for threads in workers {
        let (mut bare, mut blocking, mut ports, mut fused) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut cpus = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..runs {
            let dir = tempfile::tempdir().expect("dir");
            let floor = dir.path().join("minimal.db");
            minimal::fill(&floor, n, TYPE, payload);
            let b = dir.path().join("b.db");
            fill(&open(&b), n);
            let a = dir.path().join("a.db");
            fill(&open(&a), n);
            let f = dir.path().join("f.db");
            fill(&open(&f), n);
            for (k, (rate, per)) in [
                measured(n, || minimal::drain(&floor, threads, TYPE, n)),
                measured(n, || blocking_drain(&b, threads, n)),
                measured(n, || async_drain(rt, &a, threads, n)),
                measured(n, || fused_drain(&f, threads, n)),
            ]
            .into_iter()
            .enumerate()
            {
                [&mut bare, &mut blocking, &mut ports, &mut fused][k].push(rate);
                cpus[k].push(per);
            }
        }
        let [cb, ck, ca, cf] = cpus.map(|v| median_spread(v).0);
        let ratio = |a: &[f64]| median_spread(a.iter().zip(&bare).map(|(a, b)| a / b).collect());
        let (b, bmin, bmax) = median_spread(bare.clone());
        let ((k, kmin, kmax), (rk, rkmin, rkmax)) =
            (median_spread(blocking.clone()), ratio(&blocking));
        let ((p, pmin, pmax), (rp, rpmin, rpmax)) = (median_spread(ports.clone()), ratio(&ports));
        let ((f, fmin, fmax), (rf, rfmin, rfmax)) = (median_spread(fused.clone()), ratio(&fused));
        println!(
            "| {threads} | {b:.0} ({bmin:.0}–{bmax:.0}) | {k:.0} ({kmin:.0}–{kmax:.0}) | {rk:.2} ({rkmin:.2}–{rkmax:.2}) | {p:.0} ({pmin:.0}–{pmax:.0}) | {rp:.2} ({rpmin:.2}–{rpmax:.2}) | {f:.0} ({fmin:.0}–{fmax:.0}) | {rf:.2} ({rfmin:.2}–{rfmax:.2}) | {cb:.0}, {ck:.0}, {ca:.0}, {cf:.0} |"
        );
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort_unstable();
    let idx = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[idx].as_secs_f64() * 1e6
}

fn latency_figures(rt: &tokio::runtime::Runtime) {
    let n = env_usize("PRISMQ_BENCH_QUEUED", 1_000_000);
    let dir = tempfile::tempdir().expect("dir");
    let floor = dir.path().join("minimal.db");
    let path = dir.path().join("q.db");
    let bare_fill = minimal::fill(&floor, n, TYPE, payload);
    let store = open(&path);
    let store_fill = fill(&store, n);
    println!("\n## Claim latency with {n} queued (200-byte params)");
    let line = |what: &str, bare: Duration, store: Duration| {
        println!(
            "- load in batches of 1,000, {what}: bare {:.1} s ({:.0} tasks/s), store {:.1} s ({:.0} tasks/s), store's time {:.2} × bare's",
            bare.as_secs_f64(),
            n as f64 / bare.as_secs_f64(),
            store.as_secs_f64(),
            n as f64 / store.as_secs_f64(),
            store.as_secs_f64() / bare.as_secs_f64()
        );
    };
    line("the writes", bare_fill.writes, store_fill.writes);
    line(
        "the whole loop (inputs built in it)",
        bare_fill.total,
        store_fill.total,
    );
    for p in [&floor, &path] {
        std::fs::File::open(p)
            .and_then(|f| f.sync_all())
            .expect("sync");
    }
    let queue: Arc<dyn TaskQueue> = Arc::new(store.clone());
    let bare = minimal::connect(&floor);
    // Rows: each strategy through the async port, FIFO through the blocking method, the bare
    // claim; each round times CLAIMS claims of each in turn.
    let mut labels: Vec<String> = ClaimingStrategy::ALL
        .iter()
        .map(|s| format!("{s}, async port"))
        .collect();
    labels.push("FIFO, blocking method".into());
    labels.push("minimal bare claim".into());
    // The completions of the last two rows' tasks, timed too: where each side's commits pay
    // SQLite's checkpoint (the bare claim's RETURNING never does; docs/performance.md).
    labels.push("(its completion) blocking method".into());
    labels.push("(its completion) minimal bare loop".into());
    let mut p95: Vec<Vec<f64>> = vec![Vec::new(); labels.len()];
    let mut p50: Vec<Vec<f64>> = vec![Vec::new(); labels.len()];
    // The tail beside the p95: a claim whose commit copies the WAL back pays it here. The
    // p99.9 is taken over every round's samples together (one round has only two above it).
    let mut p99: Vec<Vec<f64>> = vec![Vec::new(); labels.len()];
    let mut max: Vec<Vec<f64>> = vec![Vec::new(); labels.len()];
    let mut pooled: Vec<Vec<Duration>> = vec![Vec::new(); labels.len()];
    let mut record = |k: usize, mut samples: Vec<Duration>| {
        p50[k].push(percentile(&mut samples, 0.5));
        p95[k].push(percentile(&mut samples, 0.95));
        p99[k].push(percentile(&mut samples, 0.99));
        max[k].push(percentile(&mut samples, 1.0));
        pooled[k].extend(samples);
    };
    for _ in 0..RUNS {
        for (k, strategy) in ClaimingStrategy::ALL.into_iter().enumerate() {
            let req = request("lat", strategy);
            let mut samples = Vec::with_capacity(CLAIMS);
            rt.block_on(async {
                for _ in 0..CLAIMS {
                    let t = Instant::now();
                    let c = queue.claim(&req).await.expect("claim").expect("a task");
                    samples.push(t.elapsed());
                    queue.start(&c.lease).await.expect("start");
                    queue.complete(&c.lease, None).await.expect("complete");
                }
            });
            record(k, samples);
        }
        let k = ClaimingStrategy::ALL.len();
        let req = request("lat", ClaimingStrategy::Fifo);
        let mut samples = Vec::with_capacity(CLAIMS);
        let mut completions = Vec::with_capacity(CLAIMS);
        for _ in 0..CLAIMS {
            let t = Instant::now();
            let c = store.claim_blocking(&req).expect("claim").expect("a task");
            samples.push(t.elapsed());
            store.start_blocking(&c.lease).expect("start");
            let t = Instant::now();
            store.complete_blocking(&c.lease, None).expect("complete");
            completions.push(t.elapsed());
        }
        record(k, samples);
        record(k + 2, completions);
        let mut samples = Vec::with_capacity(CLAIMS);
        let mut completions = Vec::with_capacity(CLAIMS);
        for _ in 0..CLAIMS {
            let t = Instant::now();
            let id = minimal::claim(&bare, TYPE).expect("a task");
            samples.push(t.elapsed());
            let t = Instant::now();
            minimal::complete(&bare, id);
            completions.push(t.elapsed());
        }
        record(k + 1, samples);
        record(k + 3, completions);
    }
    let bare_claim = ClaimingStrategy::ALL.len() + 1;
    let bare_p95 = median_spread(p95[bare_claim].clone()).0;
    println!(
        "\n{CLAIMS} claims of each per round, {RUNS} rounds; median of the rounds (p95 min–max)\n"
    );
    println!("| claim | p50 | p95 | p95 / bare p95 | p99 | p99.9 (all rounds) | max (median of the rounds) |\n|---|---|---|---|---|---|---|");
    for (i, label) in labels.iter().enumerate() {
        let (m50, _, _) = median_spread(p50[i].clone());
        let (m95, lo, hi) = median_spread(p95[i].clone());
        let (m99, _, _) = median_spread(p99[i].clone());
        let (mmax, _, _) = median_spread(max[i].clone());
        let p999 = percentile(&mut pooled[i], 0.999);
        // Claims against the bare claim; the completions have no ratio.
        let ratio = if i <= bare_claim {
            format!("{:.2}", m95 / bare_p95)
        } else {
            "–".to_owned()
        };
        println!(
            "| {label} | {m50:.0} µs | {m95:.0} µs ({lo:.0}–{hi:.0}) | {ratio} | {m99:.0} µs | {p999:.0} µs | {mmax:.0} µs |"
        );
    }
}

/// Issue 20's target 5: a worker with no region behind `PRISMQ_BENCH_AHEAD` tasks that
/// require region GB, against the same claims on a queue of the same size with no regions,
/// each strategy through the async port, rounds interleaved.
fn region_figures(rt: &tokio::runtime::Runtime) {
    let ahead = env_usize("PRISMQ_BENCH_AHEAD", 200_000);
    let behind = CLAIMS * RUNS * ClaimingStrategy::ALL.len();
    let dir = tempfile::tempdir().expect("dir");
    let restricted = open(&dir.path().join("restricted.db"));
    let open_queue = open(&dir.path().join("unrestricted.db"));
    let gb = prismq_domain::task::Compatibility::with_region("GB").expect("region");
    for first in (0..ahead).step_by(1000) {
        let batch: Vec<NewTask> = (first..(first + 1000).min(ahead))
            .map(|i| NewTask {
                compatibility: gb.clone(),
                ..task(i)
            })
            .collect();
        restricted.enqueue_batch_blocking(&batch).expect("enqueue");
    }
    for first in (ahead..ahead + behind).step_by(1000) {
        let batch: Vec<NewTask> = (first..(first + 1000).min(ahead + behind))
            .map(task)
            .collect();
        restricted.enqueue_batch_blocking(&batch).expect("enqueue");
    }
    fill(&open_queue, ahead + behind);
    let queues: [(&str, Arc<dyn TaskQueue>); 2] = [
        ("no region, behind GB's tasks", Arc::new(restricted)),
        ("no region, unrestricted queue", Arc::new(open_queue)),
    ];
    let mut p95: Vec<Vec<f64>> = vec![Vec::new(); 2 * ClaimingStrategy::ALL.len()];
    for _ in 0..RUNS {
        for (k, strategy) in ClaimingStrategy::ALL.into_iter().enumerate() {
            for (q, (_, queue)) in queues.iter().enumerate() {
                let req = request("region", strategy);
                let mut samples = Vec::with_capacity(CLAIMS);
                rt.block_on(async {
                    for _ in 0..CLAIMS {
                        let t = Instant::now();
                        let c = queue.claim(&req).await.expect("claim").expect("a task");
                        samples.push(t.elapsed());
                        assert!(c.task.compatibility.region.is_none());
                        queue.start(&c.lease).await.expect("start");
                        queue.complete(&c.lease, None).await.expect("complete");
                    }
                });
                p95[2 * k + q].push(percentile(&mut samples, 0.95));
            }
        }
    }
    println!("\n## A worker with no region behind {ahead} tasks that require GB");
    println!("\n{CLAIMS} claims per round, {RUNS} rounds; median p95 of the rounds (min–max)\n");
    println!("| strategy | behind GB's tasks | unrestricted | ratio |\n|---|---|---|---|");
    for (k, strategy) in ClaimingStrategy::ALL.into_iter().enumerate() {
        let (a, alo, ahi) = median_spread(p95[2 * k].clone());
        let (b, blo, bhi) = median_spread(p95[2 * k + 1].clone());
        println!(
            "| {strategy} | {a:.0} µs ({alo:.0}–{ahi:.0}) | {b:.0} µs ({blo:.0}–{bhi:.0}) | {:.2} |",
            a / b
        );
    }
}

/// The pages each task's transitions write, one thread, one task a call: the WAL's frames
/// after `PAGES_TASKS` tasks from an empty WAL, over the tasks (at most a few hundred frames,
/// short of every autocheckpoint, so the WAL only grows). Each frame is one page written at
/// a commit, and later copied into the file by a checkpoint; it is what one task a
/// transaction costs above the bare loop (docs/performance.md, target 3).
fn pages_figures() {
    const QUEUED: usize = 10_000;
    const PAGES_TASKS: usize = 100;
    let dir = tempfile::tempdir().expect("dir");
    let floor = dir.path().join("minimal.db");
    minimal::fill(&floor, QUEUED, TYPE, payload);
    empty_wal(&floor);
    let c = minimal::connect(&floor);
    for _ in 0..PAGES_TASKS {
        let id = minimal::claim(&c, TYPE).expect("a task");
        minimal::complete(&c, id);
    }
    let bare = wal_frames(&floor, &c) as f64 / PAGES_TASKS as f64;
    drop(c);
    let store_pages = |name: &str, ddl: &str, drain: &dyn Fn(&SqliteStore, &ClaimRequest)| -> f64 {
        let path = dir.path().join(name);
        fill(&open(&path), QUEUED);
        without(&path, ddl);
        empty_wal(&path);
        let store = open(&path);
        let frames = || {
            store
                .with_connection(|c| Ok(wal_frames(&path, c)))
                .expect("connection")
        };
        let at_open = frames();
        drain(&store, &request("p", ClaimingStrategy::Fifo));
        (frames() - at_open) as f64 / PAGES_TASKS as f64
    };
    let one_a_call = |store: &SqliteStore, req: &ClaimRequest| {
        for _ in 0..PAGES_TASKS {
            let c = store
                .claim_and_start_blocking(req)
                .expect("claim")
                .expect("a task");
            store.complete_blocking(&c.lease, None).expect("complete");
        }
    };
    let blocking = store_pages("b.db", "", &one_a_call);
    let fewer: Vec<(&str, f64)> = STRUCTURES[1..]
        .iter()
        .enumerate()
        .map(|(i, (what, ddl))| (*what, store_pages(&format!("s{i}.db"), ddl, &one_a_call)))
        .collect();
    let fused = store_pages("f.db", "", &|store, req| {
        let mut c = store
            .claim_and_start_blocking(req)
            .expect("claim")
            .expect("a task");
        for _ in 1..PAGES_TASKS {
            c = store
                .complete_and_claim_blocking(&c.lease, None, req)
                .expect("complete")
                .expect("claim")
                .expect("a task");
        }
        store.complete_blocking(&c.lease, None).expect("complete");
    });
    println!("\n## Pages written a task: WAL frames over {PAGES_TASKS} tasks from an empty WAL, one thread, {QUEUED} queued");
    println!("- minimal bare loop (claim, complete): {bare:.2}");
    println!("- store, claim_and_start + complete: {blocking:.2}");
    println!("- store, complete_and_claim: {fused:.2}");
    for (what, pages) in fewer {
        println!("- store {what}, claim_and_start + complete: {pages:.2}");
    }
}

/// The store's file with some of its structures dropped, for [`structures_figures`] and
/// [`pages_figures`]: what one task a call costs without them. FIFO claims never read
/// `ix_queue_claim_priority` (Priority and WeightedRandom do), and a drain never reads
/// `ix_queue_finished` (`stats` and the prunes do), so the drain runs as before on such a
/// file, every task taken once; nothing else should open it.
const STRUCTURES: [(&str, &str); 3] = [
    ("as it is", ""),
    ("without ix_queue_finished", "DROP INDEX ix_queue_finished;"),
    (
        "without ix_queue_finished and ix_queue_claim_priority",
        "DROP INDEX ix_queue_finished; DROP INDEX ix_queue_claim_priority;",
    ),
];

/// Runs `ddl` on the store's file (closed) on a connection of its own.
fn without(db: &Path, ddl: &str) {
    if !ddl.is_empty() {
        rusqlite::Connection::open(db)
            .and_then(|c| c.execute_batch(ddl))
            .expect("drop");
    }
}

/// The blocking drain at one thread, one task a call, on the store as it is and with
/// [`STRUCTURES`] dropped, each against the bare loop in the same run (interleaved runs):
/// how much of target 3's gap each structure is; and the bare loop on a file of 1 KiB pages
/// against itself on SQLite's default, what `database.page_size = 1024` would give it.
fn structures_figures() {
    let n = env_usize("PRISMQ_BENCH_TASKS", 20_000);
    let runs = env_usize("PRISMQ_BENCH_RUNS", RUNS);
    let mut ratios = vec![Vec::new(); STRUCTURES.len()];
    let mut small_bare = Vec::new();
    for run in 0..runs {
        let dir = tempfile::tempdir().expect("dir");
        let floor = dir.path().join("minimal.db");
        minimal::fill(&floor, n, TYPE, payload);
        // The reference itself on a file of 1 KiB pages: what the page size buys any loop.
        let small = dir.path().join("minimal-1k.db");
        minimal::fill(&small, n, TYPE, payload);
        without(&small, TO_SMALL_PAGES);
        let files: Vec<_> = STRUCTURES
            .iter()
            .enumerate()
            .map(|(i, (_, ddl))| {
                let path = dir.path().join(format!("s{i}.db"));
                fill(&open(&path), n);
                without(&path, ddl);
                path
            })
            .collect();
        let bare = minimal::drain(&floor, 1, TYPE, n);
        small_bare.push(minimal::drain(&small, 1, TYPE, n) / bare);
        // Each run starts with another file, so none is always drained last.
        for k in 0..files.len() {
            let i = (k + run) % files.len();
            ratios[i].push(blocking_drain(&files[i], 1, n) / bare);
        }
    }
    println!("\n## The store's structures at one task a call: blocking drain / bare loop, one thread, {n} tasks, median of {runs} interleaved runs (min–max)");
    for ((what, _), r) in STRUCTURES.iter().zip(ratios) {
        let (m, lo, hi) = median_spread(r);
        println!("- {what}: {m:.2} ({lo:.2}–{hi:.2})");
    }
    let (m, lo, hi) = median_spread(small_bare);
    println!("- (the reference) the bare loop on a file of 1 KiB pages / the bare loop: {m:.2} ({lo:.2}–{hi:.2})");
}

/// The blocking drain, one task a call, with the store's WAL writes batched a commit (its
/// default) and two a frame (SQLite's default VFS), each against the bare loop in the same
/// run, at each of `PRISMQ_BENCH_WORKERS` thread counts; with the WAL writes a task the
/// batched store made and what the shim does for the bare loop itself.
fn wal_figures() {
    let n = env_usize("PRISMQ_BENCH_TASKS", 20_000);
    let runs = env_usize("PRISMQ_BENCH_RUNS", RUNS);
    let workers = env_workers(&[1, 2, 4]);
    let shim = prismq_wal_vfs::register().expect("register the shim");
    println!("\n## WAL writes: blocking drain (one task a call) / bare loop, {n} tasks, median of {runs} interleaved runs (min–max)");
    println!("| threads | batched a commit (the default) | two a frame | WAL writes a task, batched (two a frame would make) | the bare loop through the shim / the bare loop |");
    println!("|---|---|---|---|---|");
    for &threads in &workers {
        let (mut batched, mut frames, mut bare_shim) = (Vec::new(), Vec::new(), Vec::new());
        let (mut written, mut kept) = (0u64, 0u64);
        for run in 0..runs {
            let dir = tempfile::tempdir().expect("dir");
            let floor = dir.path().join("minimal.db");
            minimal::fill(&floor, n, TYPE, payload);
            let floor_shim = dir.path().join("minimal-shim.db");
            minimal::fill(&floor_shim, n, TYPE, payload);
            let files: Vec<_> = [true, false]
                .iter()
                .map(|&batch| {
                    let mut o = page::options(&dir.path().join(format!("store-{batch}.db")));
                    o.batch_wal_writes = batch;
                    fill(
                        &SqliteStore::open(o.clone(), Arc::new(SystemClock)).expect("open"),
                        n,
                    );
                    o
                })
                .collect();
            let bare = minimal::drain(&floor, threads, TYPE, n);
            bare_shim.push(minimal::drain_via(&floor_shim, threads, TYPE, n, Some(shim)) / bare);
            for k in 0..files.len() {
                let i = (k + run) % files.len();
                let before = prismq_wal_vfs::counters();
                let rate = blocking_drain_with(files[i].clone(), threads, n) / bare;
                if i == 0 {
                    let after = prismq_wal_vfs::counters();
                    written += after.written + after.passed - before.written - before.passed;
                    kept += after.kept + after.passed - before.kept - before.passed;
                    batched.push(rate);
                } else {
                    frames.push(rate);
                }
            }
        }
        let f = |v: Vec<f64>| {
            let (m, lo, hi) = median_spread(v);
            format!("{m:.2} ({lo:.2}–{hi:.2})")
        };
        let per_task = |w: u64| w as f64 / (n * runs) as f64;
        println!(
            "| {threads} | {} | {} | {:.2} ({:.2}) | {} |",
            f(batched),
            f(frames),
            per_task(written),
            per_task(kept),
            f(bare_shim)
        );
    }
}

/// Rewrites a closed file with 1 KiB pages (VACUUM can change the page size only outside WAL).
const TO_SMALL_PAGES: &str =
    "PRAGMA journal_mode = DELETE; PRAGMA page_size = 1024; VACUUM; PRAGMA journal_mode = WAL;";

/// Only the store's `complete_and_claim` drain, `PRISMQ_BENCH_RUNS` times at each worker
/// count, with no other drain in the process: what to run under `perf record` to see where
/// the runtime's storage time goes.
fn handover_figures() {
    let n = env_usize("PRISMQ_BENCH_TASKS", 20_000);
    let workers = env_workers(&[1]);
    let runs = env_usize("PRISMQ_BENCH_RUNS", RUNS);
    println!("\n## complete_and_claim drain alone: {n} tasks, {runs} runs");
    println!("| workers | tasks/s | CPU µs/task |\n|---|---|---|");
    for threads in workers {
        for _ in 0..runs {
            let dir = tempfile::tempdir().expect("dir");
            let f = dir.path().join("f.db");
            fill(&open(&f), n);
            let (rate, per) = measured(n, || fused_drain(&f, threads, n));
            println!("| {threads} | {rate:.0} | {per:.0} |");
        }
    }
}

/// Issue 20's target 4: loading `PRISMQ_BENCH_LOAD` tasks (default 200,000) in batches of
/// 1,000 through `enqueue_batch`, against the bare loop's batch insert, runs interleaved.
fn load_figures() {
    let n = env_usize("PRISMQ_BENCH_LOAD", 200_000);
    let (mut bare, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let dir = tempfile::tempdir().expect("dir");
        bare.push(minimal::fill(
            &dir.path().join("minimal.db"),
            n,
            TYPE,
            payload,
        ));
        let store = open(&dir.path().join("q.db"));
        ours.push(fill(&store, n));
    }
    println!("\n## Loading {n} tasks (200-byte params) in batches of 1,000, {RUNS} runs\n");
    println!("| | writes, tasks/s (min–max) | whole loop with its inputs built, tasks/s (min–max) |\n|---|---|---|");
    let rates = |loads: &[minimal::Load], pick: fn(&minimal::Load) -> Duration| -> Vec<f64> {
        loads
            .iter()
            .map(|l| n as f64 / pick(l).as_secs_f64())
            .collect()
    };
    let writes = |l: &minimal::Load| l.writes;
    let total = |l: &minimal::Load| l.total;
    let mut cells = Vec::new();
    for pick in [writes as fn(&minimal::Load) -> Duration, total] {
        let (b, o) = (rates(&bare, pick), rates(&ours, pick));
        let ratios: Vec<f64> = o.iter().zip(&b).map(|(o, b)| o / b).collect();
        cells.push([median_spread(b), median_spread(o), median_spread(ratios)]);
    }
    for (row, label) in ["minimal bare loop", "`enqueue_batch`", "ratio"]
        .iter()
        .enumerate()
    {
        let cell = |(m, lo, hi): (f64, f64, f64)| {
            if row == 2 {
                format!("{m:.2} ({lo:.2}–{hi:.2})")
            } else {
                format!("{m:.0} ({lo:.0}–{hi:.0})")
            }
        };
        println!(
            "| {label} | {} | {} |",
            cell(cells[0][row]),
            cell(cells[1][row])
        );
    }
}

/// K completions and K claims per transaction (`complete_and_claim_many`), from plain
/// threads: each thread claims K tasks, then completes them and claims its next K in one
/// transaction until nothing is left: what a batch of K loops finishing together writes.
fn batched_drain(path: &Path, threads: usize, n: usize, k: usize) -> f64 {
    on_threads(path, threads, n, "k", move |store, req| {
        let mut held: Vec<Lease> = (0..k)
            .map_while(|_| store.claim_and_start_blocking(req).expect("claim"))
            .map(|c| c.lease)
            .collect();
        let mut done = 0usize;
        while !held.is_empty() {
            let items: Vec<Handover> = held
                .drain(..)
                .map(|lease| Handover {
                    lease,
                    summary: None,
                    next: Some(req.clone()),
                })
                .collect();
            for answer in store
                .complete_and_claim_many_blocking(&items)
                .expect("batch")
            {
                done += 1;
                if let Some(c) = answer.expect("completed").expect("claimed") {
                    held.push(c.lease);
                }
            }
        }
        done
    })
}

/// `PRISMQ_BENCH_ONLY=batched`: the bare loop against K completions and claims per
/// transaction, K = 1, 2, 4, 8, 16, at one and two threads, `PRISMQ_BENCH_RUNS` runs each.
fn batched_figures() {
    let n = env_usize("PRISMQ_BENCH_TASKS", 20_000);
    let runs = env_usize("PRISMQ_BENCH_RUNS", RUNS);
    println!("\n## K completions and claims per transaction: {n} tasks, FIFO, {runs} runs each (bare loop run just before each)");
    println!("| threads | K | bare tasks/s | batched tasks/s | ratio | CPU µs/task: bare, batched |\n|---|---|---|---|---|---|");
    for threads in [1usize, 2] {
        for k in [1usize, 2, 4, 8, 16] {
            for _ in 0..runs {
                let dir = tempfile::tempdir().expect("dir");
                let m = dir.path().join("minimal.db");
                minimal::fill(&m, n, TYPE, payload);
                let (b, bc) = measured(n, || minimal::drain(&m, threads, TYPE, n));
                let f = dir.path().join("f.db");
                fill(&open(&f), n);
                let (r, rc) = measured(n, || batched_drain(&f, threads, n, k));
                println!(
                    "| {threads} | {k} | {b:.0} | {r:.0} | {:.2} | {bc:.0}, {rc:.0} |",
                    r / b
                );
            }
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let only = std::env::var("PRISMQ_BENCH_ONLY").unwrap_or_default();
    let rt = runtime();
    println!("# prismq-storage-sqlite: the store against the minimal bare loop");
    println!("{}", page::describe());
    if only == "batched" {
        batched_figures();
        return;
    }
    if only.is_empty() || only == "drain" {
        drain_figures(&rt);
    }
    if only.is_empty() || only == "pages" {
        pages_figures();
    }
    if only.is_empty() || only == "structures" {
        structures_figures();
    }
    if only.is_empty() || only == "wal" {
        wal_figures();
    }
    if only.is_empty() || only == "latency" {
        latency_figures(&rt);
    }
    if only.is_empty() || only == "load" {
        load_figures();
    }
    if only.is_empty() || only == "region" {
        region_figures(&rt);
    }
    // Not part of the default run: a profiling aid.
    if only == "handover" {
        handover_figures();
    }
}
