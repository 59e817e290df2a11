//! `collect` never waits in silence: a `--region` its own worker does not serve is refused
//! (naming `--country`), a deferred task's wait says until when (local time and UTC), and
//! `--no-wait` leaves a deferred task queued and exits 1. Through the real binary against
//! loopback stand-ins for the Data API: one that answers every request with the 403
//! `quotaExceeded` body of the reference, and the chart stand-in the other collect tests use.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::Sandbox;

/// A Data API that has spent its quota: every request gets 403 `quotaExceeded`.
fn quota_spent_api() -> String {
    let body = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../plugins/tests/fixtures/data_api/error_quota_exceeded.json"),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if line == "\r\n" => break,
                    Ok(_) => {}
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.1 403 Forbidden\r\ncontent-type: application/json; charset=UTF-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://127.0.0.1:{port}/youtube/v3")
}

fn initialised() -> Sandbox {
    let s = Sandbox::new();
    s.ok(&["init"]);
    s
}

fn with_spent_quota() -> Sandbox {
    let mut s = initialised();
    s.env("YOUTUBE_API_KEY", "AIzaSyLoopbackTestKey")
        .env("PRISMQ_YOUTUBE__API_BASE_URL", quota_spent_api())
        .env("TZ", "America/Los_Angeles");
    s
}

/// `YYYY-MM-DD HH:MM:SS UTC` of an RFC 3339 instant such as `2026-12-03T08:00:00Z`.
fn as_utc_text(rfc3339: &str) -> String {
    format!("{} UTC", rfc3339.trim_end_matches('Z').replace('T', " "))
}

#[test]
fn no_wait_leaves_a_deferred_task_queued_saying_until_when_and_exits_1() {
    let s = with_spent_quota();
    let started = Instant::now();
    let err = s.fails(&["collect", "videos", "dQw4w9WgXcQ", "--no-wait"], 1);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let task = s.json(&["tasks", "show", "1"]);
    assert_eq!(task["task"]["status"], "queued", "{task}");
    let until = task["task"]["run_after"].as_str().unwrap().to_owned();
    // The quota resets at midnight Pacific: local midnight in this time zone.
    let local = format!("{} 00:00:00 P", &until[..10]);
    let utc = as_utc_text(&until);
    assert!(err.starts_with("error: task 1 is deferred until "), "{err}");
    assert!(
        err.contains(&local) && err.contains(&format!("({utc})")),
        "expected {local}… ({utc}) in {err}"
    );
    assert!(err.contains("quota"), "{err}");
    assert!(err.contains("it stays queued (--no-wait)"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // --json: the task, what it saved (nothing) and until when, on stdout; still exit 1.
    let out = s.run(&["--json", "collect", "videos", "Kq9MZLmFMHQ", "--no-wait"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["task"]["id"], 2, "{v}");
    assert_eq!(v["task"]["status"], "queued", "{v}");
    assert_eq!(v["waiting_until"], v["task"]["run_after"], "{v}");
    assert_eq!(v["results"], serde_json::json!([]), "{v}");
}

#[test]
fn without_no_wait_it_says_until_when_it_waits_and_ctrl_c_leaves_the_task_queued() {
    let s = with_spent_quota();
    let err_path = s.path("collect.err");
    let mut child = s
        .command(&["collect", "videos", "dQw4w9WgXcQ"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let note = loop {
        let text = std::fs::read_to_string(&err_path).unwrap_or_default();
        if text.contains("waiting until") {
            break text;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "collect exited: {text}"
        );
        assert!(Instant::now() < deadline, "no note after 30 s: {text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "it waits: {note}");
    assert!(std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let task = s.json(&["tasks", "show", "1"]);
    assert_eq!(task["task"]["status"], "queued", "{task}");
    let until = task["task"]["run_after"].as_str().unwrap();
    let first = note.lines().next().unwrap();
    assert!(
        first.starts_with("task 1: deferred, waiting until ")
            && first.contains(&format!("{} 00:00:00 P", &until[..10]))
            && first.contains(&format!("({})", as_utc_text(until)))
            && first.contains("--no-wait exits instead"),
        "{first}"
    );
}

#[test]
fn a_region_its_own_worker_does_not_serve_is_refused_and_one_it_serves_runs() {
    let body = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/videos_chart_page.json"),
    )
    .unwrap();
    let api = support::data_api::FakeDataApi::start(body);
    let mut s = initialised();
    s.env("YOUTUBE_API_KEY", "AIzaSyLoopbackTestKey")
        .env("PRISMQ_YOUTUBE__API_BASE_URL", &api.base_url);
    let before = s.db_bytes();
    let err = s.fails(&["collect", "trending", "--region", "GB"], 2);
    assert!(
        err.starts_with("error: invalid region: --region GB routes the task to workers serving GB only, and collect's own worker serves no region (worker.region), so it would wait forever; for YouTube's chart or search region use --country GB;"),
        "{err}"
    );
    let err = s.fails(&["collect", "keyword", "rust", "--region", "de"], 2);
    assert!(err.contains("use --country DE"), "{err}");
    assert!(s.db_bytes() == before, "a refused collect wrote");
    assert!(api.requests().is_empty(), "{:?}", api.requests());

    // A collect whose worker serves GB takes the task routed to GB.
    s.env("PRISMQ_WORKER__REGION", "GB");
    let v = s.json(&[
        "collect",
        "trending",
        "--region",
        "GB",
        "--country",
        "IN",
        "--top-n",
        "1",
    ]);
    assert_eq!(v["task"]["status"], "completed", "{v}");
    assert_eq!(v["task"]["compatibility"]["region"], "GB", "{v}");
    assert_eq!(v["results"][0]["item"]["source_id"], "V41Iou1O0uQ", "{v}");
}

#[test]
fn no_wait_also_leaves_a_task_scheduled_for_later_queued() {
    let s = with_spent_quota();
    let err = s.fails(
        &[
            "collect",
            "videos",
            "dQw4w9WgXcQ",
            "--run-at",
            "2100-01-01T08:00:00Z",
            "--no-wait",
        ],
        1,
    );
    assert!(
        err.starts_with("error: task 1 is not due until 2100-01-01 00:00:00 PST (2100-01-01 08:00:00 UTC); it stays queued (--no-wait)"),
        "{err}"
    );
    let task = s.json(&["tasks", "show", "1"]);
    assert_eq!(task["task"]["status"], "queued", "{task}");
    assert_eq!(task["task"]["attempts"], 0, "{task}");
}
