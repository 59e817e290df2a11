//! What `prismq stats` and `prismq workers` say about running and stopped workers: the task
//! types a worker holds back (here a quota bucket our own count spent, against a loopback
//! stand-in for the Data API) and the counters written when a worker stops.

mod support;

#[cfg(unix)]
#[path = "../../../tests/e2e/fake_ytdlp.rs"]
mod fake_ytdlp;

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::Sandbox;

fn initialised() -> Sandbox {
    let s = Sandbox::new();
    s.ok(&["init"]);
    s
}

fn workers_total(s: &Sandbox, field: &str) -> u64 {
    s.json(&["workers"])
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["heartbeat"][field].as_u64().unwrap())
        .sum()
}

/// A run shorter than the heartbeat interval (10 s by default) still leaves its counters.
#[cfg(unix)]
#[test]
fn a_stopped_worker_shows_what_it_did() {
    let fake = fake_ytdlp::FakeYtdlp::new(0);
    let mut s = initialised();
    s.env("PRISMQ_YOUTUBE__YTDLP_PATH", fake.path());
    for channel in ["@One", "@Two", "@Three"] {
        s.ok(&["enqueue", "channel", channel, "--top-n", "1"]);
    }
    s.ok(&["enqueue", "channel", "@Four", "--top-n", "1"]);
    s.ok(&["tasks", "cancel", "4"]);
    let started = Instant::now();
    s.ok(&["work", "--drain", "--concurrency", "2"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the run must be shorter than the heartbeat interval for this test to mean anything"
    );
    let list = s.json(&["workers"]);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|w| w["health"] == "stopped"),
        "{list}"
    );
    assert_eq!(workers_total(&s, "tasks_done"), 3, "{list}");
    assert_eq!(workers_total(&s, "tasks_failed"), 0, "{list}");
    let text = s.ok(&["workers"]);
    let done: u64 = text
        .lines()
        .skip(1)
        .filter(|l| l.contains("stopped"))
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells[4].parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(done, 3, "{text}");
}

/// A worker process killed if the test fails before it stops it.
struct Worker(std::process::Child);

impl Drop for Worker {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn chart_body() -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/videos_chart_page.json"),
    )
    .unwrap()
}

/// With 1 unit a day, the first trending task (the whole chart: one page, one unit) spends
/// it, the second is refused the chart by our own count, which marks the bucket spent: the running worker then holds back every type charging it, says
/// so in its heartbeats, and never claims the third task.
#[test]
fn stats_and_workers_show_the_types_a_running_worker_holds_back() {
    let api = support::data_api::FakeDataApi::start(chart_body());
    let mut s = initialised();
    s.env("YOUTUBE_API_KEY", "AIzaSyLoopbackTestKey")
        .env("PRISMQ_YOUTUBE__API_BASE_URL", &api.base_url)
        .env("PRISMQ_YOUTUBE__QUOTA_UNITS_PER_DAY", "1")
        .env("PRISMQ_WORKER__HEARTBEAT_INTERVAL", "200ms")
        // One task at a time: the loopback API answers at once, so a loop on the default
        // `auto` would claim the second and third tasks together, before the second finds
        // the quota spent and the type is held back.
        .env("PRISMQ_WORKER__PREFETCH", "1");
    for _ in 0..3 {
        s.ok(&["enqueue", "trending", "--country", "IN", "--top-n", "1"]);
    }
    let mut worker = Worker(
        s.command(&["work", "--concurrency", "1", "--strategy", "fifo"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let stats = loop {
        let stats = s.json(&["stats"]);
        if stats["held_back"].as_array().is_some_and(|a| !a.is_empty()) {
            break stats;
        }
        assert!(worker.0.try_wait().unwrap().is_none(), "work exited");
        assert!(
            Instant::now() < deadline,
            "nothing held after 30 s: {stats}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // Every YouTube type charges the general bucket (the API backend, with a key).
    let types: Vec<&str> = stats["held_back"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["task_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "api_scrape",
            "channel_scrape",
            "keyword_search",
            "refresh_stats",
            "trending_scrape"
        ],
        "{stats}"
    );
    let held = &stats["held_back"][4];
    assert_eq!(held["reason"], "quota", "{stats}");
    assert_eq!(held["bucket"], "youtube_data_api.general", "{stats}");
    assert!(held["until"].is_string(), "{stats}");
    assert_eq!(held["processes"].as_array().unwrap().len(), 1, "{stats}");
    let text = s.ok(&["stats"]);
    assert!(text.contains("held back (not claimed for now):"), "{text}");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("trending_scrape until "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("quota bucket youtube_data_api.general spent"),
        "{line}"
    );
    let workers = s.ok(&["workers"]);
    assert!(
        workers.lines().next().unwrap().contains("HELD"),
        "{workers}"
    );
    assert!(
        workers
            .lines()
            .nth(1)
            .unwrap()
            .trim_end()
            .ends_with("api_scrape,channel_scrape,keyword_search,refresh_stats,trending_scrape"),
        "{workers}"
    );
    assert!(
        workers.contains("held back (not claimed for now):"),
        "{workers}"
    );
    // Held, the third task is never claimed, however long the worker runs.
    std::thread::sleep(Duration::from_secs(2));
    let third: Value = s.json(&["tasks", "show", "3"]);
    assert_eq!(third["task"]["status"], "queued", "{third}");
    assert_eq!(third["task"]["attempts"], 0, "{third}");
    assert!(
        third["log"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["event"] == "enqueued"),
        "never claimed: {third}"
    );
    assert_eq!(api.requests().len(), 1, "{:?}", api.requests());
    let second: Value = s.json(&["tasks", "show", "2"]);
    assert_eq!(second["task"]["status"], "queued", "{second}");
    assert!(
        second["task"]["run_after"].as_str().unwrap()
            > third["task"]["run_after"].as_str().unwrap(),
        "the second was deferred to the reset: {second} {third}"
    );
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &worker.0.id().to_string()])
        .status()
        .unwrap()
        .success());
    assert!(worker.0.wait().unwrap().success());
    // Stopped, it holds nothing; its counters stay.
    let stats = s.json(&["stats"]);
    assert_eq!(stats["held_back"], serde_json::json!([]), "{stats}");
    assert!(s.ok(&["stats"]).contains("held back: none"));
    assert_eq!(workers_total(&s, "tasks_done"), 1);
    assert_eq!(workers_total(&s, "tasks_failed"), 1, "the deferral");
}
