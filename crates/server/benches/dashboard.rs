//! The dashboard's pages against a large store: a real server on loopback over a SQLite
//! file seeded with `PRISMQ_BENCH_TASKS` tasks (default 1,000,000, 100 of them dead
//! letters, the oldest 50 cancelled) and `PRISMQ_BENCH_VIDEOS` videos (default 100,000) with
//! `PRISMQ_BENCH_SNAPSHOTS` captures each (default 10). Each page is fetched
//! `PRISMQ_BENCH_ROUNDS` times (default 50) by a signed-in client; the time is measured at
//! the client over loopback (the server's time plus the HTTP round trip: an upper bound of
//! the server time), reported as p50, p95 and max per page.
//!
//! `cargo bench -p prismq-server --bench dashboard`

use std::time::{Duration, Instant};

use serde_json::json;

use prismq_domain::content::Metrics;
use prismq_domain::ports::{ClaimFilter, ClaimRequest, Failure, Scope};
use prismq_domain::task::WorkerId;
use prismq_domain::{ClaimingStrategy, ContentItem, ErrorClass, NewTask, TaskType};

#[allow(dead_code)]
#[path = "../tests/api/support.rs"]
mod support;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn cookie_value(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.strip_prefix(&format!("{name}="))?
                .split(';')
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[at..at + 64].to_owned()
}

async fn seed(s: &support::Server, tasks: u64, videos: u64, snapshots: u64) {
    let t0 = Instant::now();
    let ty = TaskType::new("keyword_search").unwrap();
    let mut done = 0;
    while done < tasks {
        let n = (tasks - done).min(10_000);
        let batch = (0..n)
            .map(|i| {
                NewTask::new(
                    ty.clone(),
                    json!({ "query": format!("topic {}", done + i) }),
                )
            })
            .collect();
        s.app.queue.enqueue_batch(batch).await.unwrap();
        done += n;
    }
    for _ in 0..100.min(tasks) {
        let c = s
            .app
            .queue
            .claim(&ClaimRequest {
                worker: WorkerId::new("bench").unwrap(),
                filter: ClaimFilter::default(),
                strategy: ClaimingStrategy::Lifo,
                lease_for: Duration::from_secs(60),
            })
            .await
            .unwrap()
            .unwrap();
        let f = Failure {
            class: ErrorClass::Permanent,
            message: "bench".into(),
        };
        s.app.queue.fail(&c.lease, &f).await.unwrap();
    }
    // 50 cancelled tasks among the oldest: a status few tasks have, far from the newest ids.
    for id in 1..=50.min(tasks as i64) {
        s.app.queue.cancel(prismq_domain::TaskId(id)).await.unwrap();
    }
    eprintln!("seeded {tasks} tasks in {:.1?}", t0.elapsed());
    let t0 = Instant::now();
    for round in 0..snapshots as i64 {
        let mut from = 0;
        while from < videos {
            let n = (videos - from).min(1_000);
            let items: Vec<ContentItem> = (from..from + n)
                .map(|i| {
                    let mut v = ContentItem::new(
                        "youtube_keyword",
                        format!("v{i:010}"),
                        format!("Video {i}"),
                    );
                    v.channel_id = Some(format!("UC{:022}", i % 1_000));
                    v.channel = Some(format!("Channel {}", i % 1_000));
                    v.metrics = Metrics {
                        views: Some((i as i64 % 9_973 + 1) * (round + 1) * 10),
                        likes: Some(round + 1),
                        comments: None,
                    };
                    v
                })
                .collect();
            s.app.results.save(None, &items).await.unwrap();
            from += n;
        }
    }
    eprintln!(
        "seeded {videos} videos x {snapshots} captures in {:.1?}",
        t0.elapsed()
    );
}

fn runtime(name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        // Blocking threads stay, so their CPU time stays readable by thread.
        .thread_keep_alive(Duration::from_secs(24 * 3_600))
        .enable_all()
        .build()
        .unwrap()
}

fn main() {
    let server_rt = runtime("prismq-srv");
    let client_rt = runtime("bench-client");
    let s = server_rt.block_on(support::Server::start());
    client_rt.block_on(run(&s));
    server_rt.block_on(s.stop());
}

/// Clock ticks per second of `/proc`'s times.
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU seconds (user + system) of this process's threads except the client's and the main
/// thread (which drives the client).
fn server_cpu_secs(ticks: f64) -> f64 {
    let me = std::process::id().to_string();
    let mut total = 0u64;
    for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let tid = t.file_name().to_string_lossy().into_owned();
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if tid == me || comm.starts_with("bench-client") {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        // Fields after the command's closing parenthesis: state is the first, utime the
        // 12th, stime the 13th.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        total += f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    }
    total as f64 / ticks
}

/// The server's CPU use, in % of one core, over `secs` with `streams` live overviews open
/// while a task is enqueued every second; and the data events the streams received.
async fn live_cpu(s: &support::Server, cookie: &str, streams: u64, secs: u64) -> (f64, u64) {
    let ticks = clock_ticks();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut readers = Vec::new();
    for _ in 0..streams {
        let mut r = reqwest::Client::new()
            .get(s.url("/events/overview"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        readers.push(tokio::spawn(async move {
            let mut events = 0u64;
            while let Ok(Ok(Some(chunk))) =
                tokio::time::timeout_at(deadline.into(), r.chunk()).await
            {
                events += chunk.windows(5).filter(|w| w == b"data:").count() as u64;
            }
            events
        }));
    }
    let (cpu0, t0) = (server_cpu_secs(ticks), Instant::now());
    let ty = TaskType::new("keyword_search").unwrap();
    let mut i = 0;
    while Instant::now() < deadline {
        s.app
            .queue
            .enqueue_batch(vec![NewTask::new(
                ty.clone(),
                json!({ "query": format!("live {i}") }),
            )])
            .await
            .unwrap();
        i += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let (cpu1, t1) = (server_cpu_secs(ticks), Instant::now());
    let mut events = 0;
    for r in readers {
        events += r.await.unwrap();
    }
    ((cpu1 - cpu0) / (t1 - t0).as_secs_f64() * 100.0, events)
}

async fn run(s: &support::Server) {
    let (tasks, videos) = (
        env("PRISMQ_BENCH_TASKS", 1_000_000),
        env("PRISMQ_BENCH_VIDEOS", 100_000),
    );
    let (snapshots, rounds) = (
        env("PRISMQ_BENCH_SNAPSHOTS", 10),
        env("PRISMQ_BENCH_ROUNDS", 50),
    );
    let (streams, stream_secs) = (
        env("PRISMQ_BENCH_STREAMS", 20),
        env("PRISMQ_BENCH_STREAM_SECS", 30),
    );
    seed(s, tasks, videos, snapshots).await;
    let key = s.key(&[Scope::Admin], 100_000).await;
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = c.get(s.url("/signin")).send().await.unwrap();
    let token = cookie_value(&form, "prismq_signin");
    let csrf = csrf_of(&form.text().await.unwrap());
    let r = c
        .post(s.url("/signin"))
        .header("cookie", format!("prismq_signin={token}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&key={key}"))
        .send()
        .await
        .unwrap();
    let cookie = format!("prismq_session={}", cookie_value(&r, "prismq_session"));
    let mid = tasks / 2;
    let video = format!("/ideas/youtube/v{:010}", videos / 2);
    // The 100th page by views: the cursor after its first 4,950 videos.
    let deep = {
        let q = prismq_domain::ports::ResultQuery {
            order: prismq_domain::ports::ResultOrder::Views,
            limit: 4_950,
            ..prismq_domain::ports::ResultQuery::default()
        };
        let first = s.app.results.query(&q).await.unwrap();
        let cursor = first.last().map(|l| q.cursor_after(l)).unwrap();
        format!(
            "/ideas?order=views&after={}",
            prismq_server::api::results::encode_cursor(&cursor)
        )
    };
    let pages = [
        "/".to_owned(),
        "/tasks".into(),
        "/tasks?status=queued".into(),
        format!("/tasks?before={mid}"),
        "/tasks?status=failed&type=keyword_search".into(),
        "/tasks?q=topic%2042".into(),
        // 50 tasks among the oldest ids: read through the finished-time index.
        "/tasks?status=cancelled".into(),
        // No task matches: not read at all (the counts say so).
        "/tasks?status=running".into(),
        format!("/tasks/{mid}"),
        "/dead-letters".into(),
        "/workers".into(),
        "/schedules".into(),
        "/enqueue?type=keyword_search".into(),
        "/schedules/add?type=channel_scrape".into(),
        "/ideas".into(),
        "/ideas?order=views".into(),
        "/ideas?order=recent".into(),
        "/ideas?order=growth".into(),
        "/ideas?order=outlier".into(),
        "/ideas?order=growth&window=7d".into(),
        format!("/ideas?channel=UC{:022}", 7),
        "/ideas?order=views&new_since=1h".into(),
        deep,
        video.clone(),
        format!("{video}/chart.svg"),
    ];
    println!("dashboard pages: {tasks} tasks, {videos} videos x {snapshots} captures, {rounds} rounds each");
    println!(
        "{:<48} {:>10} {:>10} {:>10}",
        "page", "p50 ms", "p95 ms", "max ms"
    );
    for p in pages.iter().filter(|_| rounds > 0) {
        let mut times = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            let r = c
                .get(s.url(p))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{p}");
            r.bytes().await.unwrap();
            times.push(t.elapsed());
        }
        times.sort();
        let at =
            |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3;
        println!(
            "{p:<48} {:>10.2} {:>10.2} {:>10.2}",
            at(0.5),
            at(0.95),
            at(1.0)
        );
    }
    if streams > 0 && stream_secs > 0 {
        let (idle, _) = live_cpu(s, &cookie, 0, stream_secs).await;
        let (busy, events) = live_cpu(s, &cookie, streams, stream_secs).await;
        println!(
            "live overview: {streams} streams for {stream_secs} s, {events} data events; server CPU {busy:.2} % of a core ({idle:.2} % with none open): {:.3} % per open page",
            (busy - idle).max(0.0) / streams as f64
        );
    }
}
