//! API v1's performance targets, each measured in one run on a real server on loopback over
//! a real SQLite file (release build):
//!
//! - **batch enqueue**: `POST /v1/tasks/batch` with JSON arrays of 1,000 `keyword_search`
//!   tasks against the same batches handed straight to the store (`TaskQueue::enqueue_batch`),
//!   in alternating rounds, each on a fresh file; tasks per second, the median of the rounds
//!   with the min–max spread, and the ratio HTTP / direct of the medians (target ≥ 0.5);
//! - **`GET /v1/stats`** with 1,000,000 tasks queued: p50, p95, p99 and max of sequential
//!   requests on one keep-alive connection, timed at the client (the server's time plus the
//!   loopback round trip: an upper bound of the server's), target p95 < 5 ms;
//! - **idle RSS**: the bench runs itself again as a child that only serves (`App::open` with
//!   every plugin over a fresh file and the same `prismq_server::serve` as `prismq serve`),
//!   sends it one request, waits a second and reads the child's `VmRSS` (and `VmHWM`, the
//!   peak) from `/proc/PID/status`; target < 30 MB.
//!
//! `cargo bench -p prismq-server --bench api`. Settings: `PRISMQ_BENCH_ONLY` (`enqueue`,
//! `stats` or `rss`), `PRISMQ_BENCH_API_ROUNDS` (3), `PRISMQ_BENCH_API_BATCHES` (batches of
//! 1,000 per round, 50), `PRISMQ_BENCH_API_TASKS` (the queue behind the stats, 1,000,000),
//! `PRISMQ_BENCH_API_REQUESTS` (stats requests, 2,000).

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use prismq_app::{App, Config, LoadOptions};
use prismq_domain::ports::{NewApiKey, Scope};
use prismq_domain::{NewTask, TaskType};

#[allow(dead_code)]
#[path = "../tests/api/support.rs"]
mod support;

/// Set in the child that only serves: the directory of its database.
const CHILD: &str = "PRISMQ_BENCH_API_CHILD";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn only(part: &str) -> bool {
    std::env::var("PRISMQ_BENCH_ONLY").map_or(true, |v| v.trim() == part)
}

fn config_for(dir: &Path) -> Config {
    Config::load(&LoadOptions {
        platform_config_dir: None,
        working_dir: Some(dir.to_path_buf()),
        config_file: None,
        env: BTreeMap::new(),
        non_utf8_env: Vec::new(),
        overrides: vec![(
            "database.path".into(),
            dir.join("queue.db").display().to_string(),
        )],
    })
    .expect("config")
}

/// Batch `b` of 1,000 tasks, as JSON lines and as the store's tasks.
fn batch(b: u64) -> (Value, Vec<NewTask>) {
    let ty = TaskType::new("keyword_search").expect("type");
    let lines: Vec<Value> = (0..1000)
        .map(|i| json!({"type": "keyword_search", "params": {"query": format!("topic {b}-{i}")}}))
        .collect();
    let tasks = (0..1000)
        .map(|i| NewTask::new(ty.clone(), json!({"query": format!("topic {b}-{i}")})))
        .collect();
    (Value::Array(lines), tasks)
}

fn median_spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

async fn enqueue_over_http(batches: u64) -> f64 {
    let s = support::Server::start().await;
    let key = s.key(&[Scope::Enqueue], 100_000).await;
    let bodies: Vec<String> = (0..batches).map(|b| batch(b).0.to_string()).collect();
    let url = s.url("/v1/tasks/batch");
    let t0 = Instant::now();
    for body in bodies {
        let r = s
            .client
            .post(&url)
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("send");
        assert_eq!(
            r.status().as_u16(),
            201,
            "{}",
            r.text().await.unwrap_or_default()
        );
        r.bytes().await.expect("answer");
    }
    let rate = (batches * 1000) as f64 / t0.elapsed().as_secs_f64();
    assert_eq!(s.task_count().await, batches * 1000);
    s.stop().await;
    rate
}

async fn enqueue_direct(batches: u64) -> f64 {
    let s = support::Server::start().await;
    let all: Vec<Vec<NewTask>> = (0..batches).map(|b| batch(b).1).collect();
    let t0 = Instant::now();
    for tasks in all {
        s.app.queue.enqueue_batch(tasks).await.expect("enqueue");
    }
    let rate = (batches * 1000) as f64 / t0.elapsed().as_secs_f64();
    assert_eq!(s.task_count().await, batches * 1000);
    s.stop().await;
    rate
}

async fn bench_enqueue() {
    let rounds = env("PRISMQ_BENCH_API_ROUNDS", 3);
    let batches = env("PRISMQ_BENCH_API_BATCHES", 50);
    let (mut http, mut direct) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate which goes first, so a slow spell of the machine lands on both.
        if round % 2 == 0 {
            direct.push(enqueue_direct(batches).await);
            http.push(enqueue_over_http(batches).await);
        } else {
            http.push(enqueue_over_http(batches).await);
            direct.push(enqueue_direct(batches).await);
        }
    }
    let (h, hmin, hmax) = median_spread(http);
    let (d, dmin, dmax) = median_spread(direct);
    println!(
        "batch enqueue, {rounds} rounds of {batches} batches of 1,000: direct {d:.0} tasks/s ({dmin:.0}-{dmax:.0}), HTTP {h:.0} tasks/s ({hmin:.0}-{hmax:.0}); HTTP / direct {:.2} (target >= 0.5)",
        h / d
    );
}

async fn bench_stats() {
    let tasks = env("PRISMQ_BENCH_API_TASKS", 1_000_000);
    let requests = env("PRISMQ_BENCH_API_REQUESTS", 2_000);
    let s = support::Server::start().await;
    let t0 = Instant::now();
    let ty = TaskType::new("keyword_search").expect("type");
    let mut done = 0;
    while done < tasks {
        let n = (tasks - done).min(10_000);
        let batch = (0..n)
            .map(|i| NewTask::new(ty.clone(), json!({"query": format!("topic {}", done + i)})))
            .collect();
        s.app.queue.enqueue_batch(batch).await.expect("seed");
        done += n;
    }
    println!(
        "seeded {tasks} tasks in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let key = s.key(&[Scope::Read], 100_000).await;
    let url = s.url("/v1/stats");
    let get = || async {
        let t = Instant::now();
        let r = s
            .client
            .get(&url)
            .bearer_auth(&key)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 200);
        r.bytes().await.expect("body");
        t.elapsed()
    };
    for _ in 0..20 {
        get().await;
    }
    let mut times = Vec::with_capacity(requests as usize);
    for _ in 0..requests {
        times.push(get().await);
    }
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "GET /v1/stats, {tasks} tasks queued, {requests} requests: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target p95 < 5 ms)",
        ms(at(0.50)),
        ms(at(0.95)),
        ms(at(0.99)),
        ms(times[times.len() - 1])
    );
    s.stop().await;
}

/// The child: serves `dir`'s database until killed, printing its address.
async fn child(dir: &Path) {
    let app = App::open(config_for(dir)).expect("open");
    let options = prismq_server::ServerOptions::new("127.0.0.1:0".parse().expect("addr"));
    prismq_server::serve(app, options, CancellationToken::new(), |a| {
        println!("listening {a}");
    })
    .await
    .expect("serve");
}

fn status_kb(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    text.lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

async fn bench_rss() {
    let dir = tempfile::tempdir().expect("dir");
    let secret = prismq_server::secret::generate();
    {
        let app = App::open(config_for(dir.path())).expect("open");
        app.keys
            .create(NewApiKey::for_secret(&secret, "bench", vec![Scope::Read], 600).expect("key"))
            .await
            .expect("create key");
    }
    let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
        .env(CHILD, dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the serving child");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the child's address");
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .expect("listening ADDR");
    let r = reqwest::Client::new()
        .get(format!("http://{addr}/v1/stats"))
        .bearer_auth(&secret)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 200);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss = status_kb(child.id(), "VmRSS:");
    let hwm = status_kb(child.id(), "VmHWM:");
    child.kill().expect("kill");
    let _ = child.wait();
    println!(
        "idle server (every plugin, empty SQLite file, after one request): RSS {:.1} MB, peak {:.1} MB (target < 30 MB)",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    if let Some(dir) = std::env::var_os(CHILD) {
        rt.block_on(child(Path::new(&dir)));
        return;
    }
    if only("rss") {
        rt.block_on(bench_rss());
    }
    if only("enqueue") {
        rt.block_on(bench_enqueue());
    }
    if only("stats") {
        rt.block_on(bench_stats());
    }
}
