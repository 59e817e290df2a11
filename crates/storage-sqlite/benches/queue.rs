//! Storage benchmarks: claim latency at scale for every strategy, drain throughput against a
//! bare rusqlite loop on the same schema, enqueue and upsert rates, size on disk against the
//! size of a minimal queue table holding the same tasks, stats.
//!
//! Run: `cargo bench -p prismq-storage-sqlite --bench queue`.
//! `PRISMQ_BENCH_PAGE_SIZE` sets the page size of the store's files (`common/page.rs`;
//! the store's default, 2048, otherwise). `PRISMQ_BENCH_TASKS` sets the
//! queue size for the latency, size and stats figures (default 1,000,000);
//! `PRISMQ_BENCH_ONLY=drain|scale|upsert` runs one part; `PRISMQ_BENCH_ONLY=size` runs only
//! the fill, its size on disk and the floor table's (issue 20's target 6), without the latency
//! rounds. Throughput figures are the median of
//! three runs with the min–max spread, latency figures the median of three rounds, so the
//! machine's noise is visible; the figures that carry over to other machines are the ratios
//! to the bare loop measured in the same run.

/// The `prismq` binary's allocator, for the bare loop and the store alike.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "common/page.rs"]
mod page;

use prismq_domain::ports::{ClaimFilter, ClaimRequest, SystemClock};
use prismq_domain::task::{NewTask, Priority, TaskType, WorkerId};
use prismq_domain::{ClaimingStrategy, ContentItem};
use prismq_storage_sqlite::SqliteStore;
use rusqlite::{params, Connection, TransactionBehavior};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DRAIN_TASKS: usize = 20_000;
const RUNS: usize = 3;
/// Claims timed per strategy in each round of the latency figures.
const CLAIMS: usize = 2_000;

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(page::options(path), Arc::new(SystemClock)).expect("open")
}

fn tt() -> TaskType {
    TaskType::new("bench").expect("type")
}

/// 69 bytes of params as stored (`{"channel_url":"@creator-channel-00000042","tab":"videos","top_n":10}`),
/// like a small scrape task.
fn params_of(i: usize) -> serde_json::Value {
    json!({"channel_url": format!("@creator-channel-{i:08}"), "top_n": 10, "tab": "videos"})
}

fn task(i: usize) -> NewTask {
    NewTask::new(tt(), params_of(i)).priority(Priority::new((i % 10) as i64 + 1).expect("priority"))
}

/// Bytes on disk of a file after its WAL is checkpointed away.
fn size_on_disk(c: &Connection) -> i64 {
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").ok();
    let pages: i64 = c
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .expect("pages");
    let size: i64 = c
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .expect("size");
    pages * size
}

/// The size floor for the same tasks: a minimal queue table holding only what a claim needs
/// (id, type, priority, status, run_after, params), with a single claim index, and no
/// attempts, lease, timestamps or log columns. `params_sql` is how params are stored: `?6`
/// (JSON text, as the adapter does) or `jsonb(?6)` (SQLite's binary JSON).
fn minimal_queue_size(n: usize, params_sql: &str) -> i64 {
    let dir = tempfile::tempdir().expect("dir");
    let mut c = Connection::open(dir.path().join("floor.db")).expect("open");
    c.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE q (id INTEGER PRIMARY KEY, type TEXT NOT NULL, priority INTEGER NOT NULL,
                         status TEXT NOT NULL, run_after INTEGER NOT NULL, params BLOB NOT NULL);
         CREATE INDEX ix_q_claim ON q (type, priority, run_after) WHERE status = 'queued';",
    )
    .expect("schema");
    let sql = format!("INSERT INTO q VALUES (?1, ?2, ?3, ?4, ?5, {params_sql})");
    let now = jiff::Timestamp::now().as_millisecond();
    for start in (0..n).step_by(1000) {
        let tx = c.transaction().expect("begin");
        {
            let mut st = tx.prepare_cached(&sql).expect("prepare");
            for i in start..(start + 1000).min(n) {
                st.execute(params![
                    i as i64 + 1,
                    "bench",
                    (i % 10) as i64 + 1,
                    "queued",
                    now,
                    params_of(i).to_string()
                ])
                .expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
    size_on_disk(&c)
}

fn fill(store: &SqliteStore, n: usize) -> Duration {
    let start = Instant::now();
    let mut i = 0;
    while i < n {
        let batch: Vec<NewTask> = (i..(i + 1000).min(n)).map(task).collect();
        store.enqueue_batch_blocking(&batch).expect("enqueue");
        i += batch.len();
    }
    start.elapsed()
}

fn request(worker: &str, strategy: ClaimingStrategy) -> ClaimRequest {
    ClaimRequest {
        worker: WorkerId::new(worker).expect("worker"),
        filter: ClaimFilter {
            task_types: vec![tt()],
            region: None,
            only: None,
        },
        strategy,
        lease_for: Duration::from_secs(300),
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let idx = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[idx]
}

/// p50, p95 and p99 of a run.
fn percentiles(samples: &mut [Duration]) -> [Duration; 3] {
    [0.5, 0.95, 0.99].map(|p| percentile(samples, p))
}

fn median_spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn adapter_drain(path: &Path, threads: usize, with_start: bool) -> f64 {
    let store = open(path);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let req = request(&format!("w{t}"), ClaimingStrategy::Lifo);
                let mut n = 0usize;
                let claim = |req: &ClaimRequest| {
                    if with_start {
                        store.claim_and_start_blocking(req)
                    } else {
                        store.claim_blocking(req)
                    }
                };
                while let Some(c) = claim(&req).expect("claim") {
                    store.complete_blocking(&c.lease, None).expect("complete");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let done: usize = handles.into_iter().map(|h| h.join().expect("join")).sum();
    assert_eq!(done, DRAIN_TASKS);
    done as f64 / start.elapsed().as_secs_f64()
}

const BARE_CLAIM: &str = "UPDATE task_queue SET status = 1 /* claimed */, claimed_by = ?1, lease_expires_at = ?2, lease_token = ?3,
      attempts = attempts + 1, updated_at = ?4
    WHERE id = (SELECT id FROM task_queue INDEXED BY ix_queue_claim_time
                WHERE status = 0 /* queued */ AND type_id = (SELECT id FROM task_types WHERE name = 'bench')
                  AND region IS NULL AND run_after <= ?4
                ORDER BY run_after DESC, id DESC LIMIT 1)
    RETURNING id";
const BARE_COMPLETE: &str =
    "UPDATE task_queue SET status = 3 /* completed */, finished_at = ?3, updated_at = ?3,
      lease_expires_at = NULL, lease_token = NULL WHERE id = ?1 AND lease_token = ?2";
/// A task's count moved from status ?2 to ?3, as the adapter does with every status change
/// (schema v14 has no status-change trigger).
const BARE_MOVE_COUNT: &str =
    "INSERT INTO queue_counts (type_id, status, n) VALUES (?1, ?2, -1), (?1, ?3, 1)
    ON CONFLICT (status, type_id) DO UPDATE SET n = n + excluded.n";

/// The floor: one UPDATE … RETURNING claim and one UPDATE complete per task, each in its own
/// IMMEDIATE transaction, on the same file and schema (counts moved as the adapter moves
/// them), no logs.
fn bare_drain(path: &Path, threads: usize) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let path = path.to_path_buf();
            std::thread::spawn(move || {
                let mut conn = Connection::open(&path).expect("open");
                conn.busy_timeout(Duration::from_secs(5)).expect("busy");
                conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
                    .expect("pragmas");
                let type_id: i64 = conn
                    .query_row("SELECT id FROM task_types WHERE name = 'bench'", [], |r| {
                        r.get(0)
                    })
                    .expect("type id");
                let mut n = 0usize;
                loop {
                    let now = jiff::Timestamp::now().as_millisecond();
                    let token: i64 = rand::random();
                    let tx = conn
                        .transaction_with_behavior(TransactionBehavior::Immediate)
                        .expect("begin");
                    let id: Option<i64> = {
                        let mut st = tx.prepare_cached(BARE_CLAIM).expect("prepare");
                        let mut rows = st
                            .query(params![format!("bare{t}"), now + 300_000, token, now])
                            .expect("claim");
                        rows.next().expect("row").map(|r| r.get(0).expect("id"))
                    };
                    if id.is_some() {
                        tx.prepare_cached(BARE_MOVE_COUNT)
                            .expect("prepare")
                            .execute(params![type_id, 0, 1])
                            .expect("count");
                    }
                    tx.commit().expect("commit");
                    let Some(id) = id else { break };
                    let tx = conn
                        .transaction_with_behavior(TransactionBehavior::Immediate)
                        .expect("begin");
                    tx.prepare_cached(BARE_COMPLETE)
                        .expect("prepare")
                        .execute(params![id, token, now])
                        .expect("complete");
                    tx.prepare_cached(BARE_MOVE_COUNT)
                        .expect("prepare")
                        .execute(params![type_id, 1, 3])
                        .expect("count");
                    tx.commit().expect("commit");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let done: usize = handles.into_iter().map(|h| h.join().expect("join")).sum();
    assert_eq!(done, DRAIN_TASKS);
    done as f64 / start.elapsed().as_secs_f64()
}

fn drain_figures() {
    println!(
        "\n## Drain: claim + complete, {DRAIN_TASKS} tasks, LIFO (median of {RUNS} runs, min–max)"
    );
    println!("| workers | bare rusqlite tasks/s | adapter claim+complete tasks/s | ratio | adapter claim_and_start+complete tasks/s | ratio |");
    println!("|---|---|---|---|---|---|");
    let workers: Vec<usize> = std::env::var("PRISMQ_BENCH_WORKERS")
        .ok()
        .map(|v| v.split(',').filter_map(|w| w.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2, 4]);
    for threads in workers {
        let (mut bare, mut two, mut three) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..RUNS {
            for which in 0..3 {
                let dir = tempfile::tempdir().expect("dir");
                let path = dir.path().join("q.db");
                fill(&open(&path), DRAIN_TASKS);
                match which {
                    0 => bare.push(bare_drain(&path, threads)),
                    1 => two.push(adapter_drain(&path, threads, false)),
                    _ => three.push(adapter_drain(&path, threads, true)),
                }
            }
        }
        let ratio = |a: &[f64]| median_spread(a.iter().zip(&bare).map(|(a, b)| a / b).collect());
        let (r2, r2min, r2max) = ratio(&two);
        let (r3, r3min, r3max) = ratio(&three);
        let (b, bmin, bmax) = median_spread(bare.clone());
        let (a2, _, _) = median_spread(two);
        let (a3, _, _) = median_spread(three);
        println!(
            "| {threads} | {b:.0} ({bmin:.0}–{bmax:.0}) | {a2:.0} | {r2:.2} ({r2min:.2}–{r2max:.2}) | {a3:.0} | {r3:.2} ({r3min:.2}–{r3max:.2}) |"
        );
    }
    println!("(two transactions per task in every column; the bare loop writes no task log, the adapter keeps one: the attempt's entries read from the task row, schema v2)");
}

fn scale_figures(n: usize) {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("q.db");
    let store = open(&path);
    println!("\n## Queue of {n} tasks (69-byte params)");
    let took = fill(&store, n);
    println!(
        "- enqueue in batches of 1,000: {:.0} tasks/s",
        n as f64 / took.as_secs_f64()
    );
    let bytes = store
        .with_connection(|c| Ok(size_on_disk(c)))
        .expect("size");
    let mb = |b: i64| b as f64 / 1e6;
    println!(
        "- size on disk, indexes included: {:.1} MB ({:.0} bytes/task)",
        mb(bytes),
        bytes as f64 / n as f64
    );
    // The fill left ~190 MB for the kernel to write back; flush it now rather than under the
    // latency rounds.
    std::fs::File::open(&path)
        .and_then(|f| f.sync_all())
        .expect("sync");
    let mut stats = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        store.stats_blocking().expect("stats");
        stats.push(t.elapsed());
    }
    println!(
        "- stats: p50 {:?}, p95 {:?}",
        percentile(&mut stats.clone(), 0.5),
        percentile(&mut stats, 0.95)
    );
    // Latency: RUNS rounds, each claiming CLAIMS tasks with every strategy in turn and then
    // with the bare loop's claim statement on the same file (the floor on this machine), so a
    // slow spell of the machine lands on all of them alike. Per strategy: the median of the
    // rounds' percentiles, and the p95's min–max over the rounds.
    let mut bare = Connection::open(&path).expect("open");
    bare.execute_batch("PRAGMA synchronous = NORMAL;")
        .expect("pragmas");
    let labels: Vec<String> = ClaimingStrategy::ALL
        .iter()
        .map(ToString::to_string)
        .chain(["bare rusqlite claim (LIFO, same file)".to_owned()])
        .collect();
    let mut rounds: Vec<Vec<[Duration; 3]>> = vec![Vec::new(); labels.len()];
    for round in 0..RUNS {
        for (k, strategy) in ClaimingStrategy::ALL.into_iter().enumerate() {
            let req = request("lat", strategy);
            let mut samples = Vec::with_capacity(CLAIMS);
            for _ in 0..CLAIMS {
                let t = Instant::now();
                let c = store.claim_blocking(&req).expect("claim").expect("a task");
                samples.push(t.elapsed());
                store.start_blocking(&c.lease).expect("start");
                store.complete_blocking(&c.lease, None).expect("complete");
            }
            rounds[k].push(percentiles(&mut samples));
        }
        let mut samples = Vec::with_capacity(CLAIMS);
        for i in 0..CLAIMS as i64 {
            let token = (round * CLAIMS) as i64 + i;
            let now = jiff::Timestamp::now().as_millisecond();
            let t = Instant::now();
            let tx = bare
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .expect("begin");
            let id: i64 = tx
                .prepare_cached(BARE_CLAIM)
                .expect("prepare")
                .query_row(params!["bare", now + 300_000, token, now], |r| r.get(0))
                .expect("claim");
            tx.commit().expect("commit");
            samples.push(t.elapsed());
            bare.prepare_cached(BARE_COMPLETE)
                .expect("prepare")
                .execute(params![id, token, now])
                .expect("complete");
        }
        rounds[labels.len() - 1].push(percentiles(&mut samples));
    }
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let column = |r: &[[Duration; 3]], i: usize| -> (f64, f64, f64) {
        median_spread(r.iter().map(|p| us(p[i])).collect())
    };
    println!(
        "\n{CLAIMS} claims per strategy per round, {RUNS} rounds; median of the rounds (p95 min–max)\n\n| strategy | claim p50 | claim p95 | claim p99 | p95 / bare p95 |\n|---|---|---|---|---|"
    );
    let bare_p95 = column(&rounds[labels.len() - 1], 1).0;
    for (label, r) in labels.iter().zip(&rounds) {
        let (p50, (p95, lo, hi), p99) = (column(r, 0).0, column(r, 1), column(r, 2).0);
        println!(
            "| {label} | {p50:.0} µs | {p95:.0} µs ({lo:.0}–{hi:.0}) | {p99:.0} µs | {:.2} |",
            p95 / bare_p95
        );
    }
    // The floor last: building two more million-task files just before the latency rounds
    // left their write-back running under them.
    let (text, binary) = (
        minimal_queue_size(n, "?6"),
        minimal_queue_size(n, "jsonb(?6)"),
    );
    println!(
        "\n- the floor, a minimal queue table (id, type, priority, status, run_after, params) with one claim index and nothing else: {:.1} MB with JSON text params, {:.1} MB with JSONB; the adapter is {:.2}x the text floor",
        mb(text),
        mb(binary),
        bytes as f64 / text as f64
    );
    let single_dir = tempfile::tempdir().expect("dir");
    let single = open(&single_dir.path().join("s.db"));
    let t = Instant::now();
    for i in 0..2000 {
        single.enqueue_blocking(&task(i)).expect("enqueue");
    }
    println!(
        "\n- single-task enqueue: {:.0} tasks/s",
        2000.0 / t.elapsed().as_secs_f64()
    );
}

/// Issue 20's target 6 alone: `n` tasks loaded in batches of 1,000, the file's size after a
/// checkpoint, and the floor table's size for the same tasks, built right after it.
fn size_figures(n: usize) {
    let dir = tempfile::tempdir().expect("dir");
    let store = open(&dir.path().join("q.db"));
    println!("\n## Size of a queue of {n} tasks (69-byte params)");
    let took = fill(&store, n);
    let bytes = store
        .with_connection(|c| Ok(size_on_disk(c)))
        .expect("size");
    drop(store);
    drop(dir);
    let floor = minimal_queue_size(n, "?6");
    let mb = |b: i64| b as f64 / 1e6;
    println!(
        "- enqueue in batches of 1,000: {:.0} tasks/s\n- size on disk, indexes included: {:.1} MB ({:.0} bytes/task)\n- the floor table (id, type, priority, status, run_after, params; one claim index): {:.1} MB; the store is {:.3}x the floor",
        n as f64 / took.as_secs_f64(),
        mb(bytes),
        bytes as f64 / n as f64,
        mb(floor),
        bytes as f64 / floor as f64
    );
}

fn upsert_figures() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open(&dir.path().join("r.db"));
    let items = |round: i64| -> Vec<ContentItem> {
        (0..100_000)
            .map(|i| {
                let mut it =
                    ContentItem::new("youtube_api", format!("vid{i:08}"), format!("Video {i}"));
                it.url = Some(format!("https://www.youtube.com/watch?v=vid{i:08}"));
                it.channel = Some("Channel".into());
                it.metrics.views = Some(1000 + i + round * 10);
                it.tags = vec!["a".into(), "b".into()];
                it
            })
            .collect()
    };
    println!("\n## Result upsert, 100,000 items in batches of 1,000");
    for (label, round) in [
        ("insert", 0),
        ("update (metrics changed)", 1),
        ("unchanged", 1),
    ] {
        let batch = items(round);
        let t = Instant::now();
        for chunk in batch.chunks(1000) {
            store.save_blocking(None, chunk).expect("save");
        }
        println!(
            "- {label}: {:.0} items/s",
            batch.len() as f64 / t.elapsed().as_secs_f64()
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: usize = std::env::var("PRISMQ_BENCH_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let only = std::env::var("PRISMQ_BENCH_ONLY").unwrap_or_default();
    println!("# prismq-storage-sqlite benchmarks");
    println!("{}", page::describe());
    if only.is_empty() || only == "drain" {
        drain_figures();
    }
    if only.is_empty() || only == "scale" {
        scale_figures(n);
    }
    if only == "size" {
        size_figures(n);
    }
    if only.is_empty() || only == "upsert" {
        upsert_figures();
    }
}
