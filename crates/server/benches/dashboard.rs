//! The dashboard's pages against a large store: a real server on loopback over a SQLite
//! file seeded with `PRISMQ_BENCH_TASKS` tasks (default 1,000,000, 100 of them dead
//! letters) and `PRISMQ_BENCH_VIDEOS` videos (default 100,000) with
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

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let (tasks, videos) = (
        env("PRISMQ_BENCH_TASKS", 1_000_000),
        env("PRISMQ_BENCH_VIDEOS", 100_000),
    );
    let (snapshots, rounds) = (
        env("PRISMQ_BENCH_SNAPSHOTS", 10),
        env("PRISMQ_BENCH_ROUNDS", 50),
    );
    let s = support::Server::start().await;
    seed(&s, tasks, videos, snapshots).await;
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
    let video = format!("/ideas/youtube_keyword/v{:010}", videos / 2);
    let pages = [
        "/".to_owned(),
        "/tasks".into(),
        "/tasks?status=queued".into(),
        format!("/tasks?before={mid}"),
        "/tasks?status=failed&type=keyword_search".into(),
        "/tasks?q=topic%2042".into(),
        format!("/tasks/{mid}"),
        "/dead-letters".into(),
        "/workers".into(),
        "/schedules".into(),
        "/enqueue".into(),
        "/ideas?order=views".into(),
        "/ideas?order=recent".into(),
        "/ideas?order=growth".into(),
        "/ideas?order=outlier".into(),
        "/ideas?order=views&page=100".into(),
        video.clone(),
        format!("{video}/chart.svg"),
    ];
    println!("dashboard pages: {tasks} tasks, {videos} videos x {snapshots} captures, {rounds} rounds each");
    println!(
        "{:<48} {:>10} {:>10} {:>10}",
        "page", "p50 ms", "p95 ms", "max ms"
    );
    for p in &pages {
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
    s.stop().await;
}
