//! The Data API stand-in misbehaving under a real `prismq work`: hanging, trickling,
//! closing the connection, cutting the body, truncated JSON and a gigabyte body. Each must
//! end the attempt within the request timeout or the size cap with the right class
//! (retryable: retried then dead-lettered when attempts run out; permanent: dead-lettered
//! at once), keep the worker's memory bounded, never show the key, and the task must
//! complete once the stand-in behaves and the dead letter is retried.

use std::time::{Duration, Instant};

use prismq_tests::harness::stand_in::{Mode, StandIn};
use prismq_tests::harness::{serial, signal, wait_exit, wait_until, Sandbox};

const KEY: &str = "AIzaCanaryKeyFaults0123456789abcdefghi";
const VIDEO: &str = "V41Iou1O0uQ";

fn page() -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/videos_chart_page.json"),
    )
    .unwrap()
}

fn sandbox(api: &StandIn) -> Sandbox {
    let mut s = Sandbox::new();
    s.env("YOUTUBE_API_KEY", KEY)
        .env("PRISMQ_YOUTUBE__BACKEND", "api")
        .env("PRISMQ_YOUTUBE__API_BASE_URL", &api.base_url)
        .env("PRISMQ_YOUTUBE__REQUEST_TIMEOUT", "1s")
        .env("PRISMQ_WORKER__LEASE", "10s")
        .env("PRISMQ_WORKER__IDLE_BACKOFF_MAX", "100ms")
        .env("PRISMQ_WORKER__SHUTDOWN_GRACE", "2s")
        .env("PRISMQ_RETRY__BASE", "100ms")
        .env("PRISMQ_RETRY__CAP", "200ms");
    s.ok(&["init"]);
    s
}

/// Peak resident memory of a live process, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Works task 1 until it is finished; returns its row and the worker's peak memory.
fn work_until_finished(s: &Sandbox, name: &str) -> (serde_json::Value, u64, Duration) {
    let started = Instant::now();
    let mut worker = s.spawn(name, &["work", "--concurrency", "1"]);
    let mut peak = 0;
    let mut task = serde_json::Value::Null;
    wait_until(Duration::from_secs(60), "task 1 to finish", || {
        if let Some(kib) = peak_rss_kib(worker.id()) {
            peak = peak.max(kib);
        }
        task = s.json(&["tasks", "show", "1"]);
        matches!(
            task["task"]["status"].as_str(),
            Some("completed" | "failed")
        )
    });
    let took = started.elapsed();
    signal(worker.id(), "TERM");
    let status = wait_exit(&mut worker, Duration::from_secs(30), name);
    let err = s.stderr_of(name);
    assert!(status.success(), "{name}: {status:?}: {err}");
    assert!(!err.contains(KEY), "{name} logged the key: {err}");
    (task, peak, took)
}

struct Case {
    mode: Mode,
    retryable: bool,
    says: &'static str,
}

#[test]
fn data_api_faults_end_with_the_right_class_and_work_resumes() {
    let _one_at_a_time = serial();
    let body = page();
    let cases = [
        Case {
            mode: Mode::Hang,
            retryable: true,
            says: "timed out",
        },
        Case {
            mode: Mode::Trickle,
            retryable: true,
            says: "timed out",
        },
        Case {
            mode: Mode::Close,
            retryable: true,
            says: "could not reach YouTube",
        },
        Case {
            mode: Mode::CutMidBody(body.clone()),
            retryable: true,
            says: "could not reach YouTube",
        },
        Case {
            mode: Mode::TruncatedJson(body.clone()),
            retryable: true,
            says: "could not decode",
        },
        Case {
            mode: Mode::Huge,
            retryable: false,
            says: "byte cap",
        },
    ];
    for case in cases {
        let label = format!("{:?}", case.mode)
            .chars()
            .take(16)
            .collect::<String>();
        let api = StandIn::start(case.mode.clone());
        let s = sandbox(&api);
        s.ok(&["enqueue", "videos", VIDEO, "--max-attempts", "2"]);
        let (t, peak_kib, took) = work_until_finished(&s, "fault");
        let task = &t["task"];
        let error = task["last_error"].as_str().unwrap_or_default().to_owned();
        let events: Vec<&str> = t["log"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["event"].as_str())
            .collect();
        eprintln!(
            "{label}: {} after {} attempt(s) in {:.1}s, peak RSS {} MiB, {} body bytes sent: {error}",
            task["status"],
            task["attempts"],
            took.as_secs_f64(),
            peak_kib / 1024,
            api.body_bytes()
        );
        assert_eq!(task["status"], "failed", "{label}: {t}");
        assert!(error.contains(case.says), "{label}: {error}");
        // What failed, not what was decided: this task is dead-lettered.
        assert!(!error.contains("retrying"), "{label}: {error}");
        assert!(
            !error.contains(KEY) && !t.to_string().contains(KEY),
            "{label}: {t}"
        );
        // Advice that names a setting must name one that exists.
        let keys: Vec<String> = s
            .json(&["config", "show"])
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["key"].as_str().map(str::to_owned))
            .collect();
        for word in error.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.')) {
            let word = word.trim_end_matches('.');
            if ["youtube.", "worker.", "retry.", "database."]
                .iter()
                .any(|p| word.starts_with(p))
            {
                assert!(
                    keys.iter().any(|k| k == word),
                    "{label}: the error advises changing `{word}`, which is not a setting: {error}"
                );
            }
        }
        let retried = events.iter().filter(|e| **e == "retried").count();
        if case.retryable {
            assert_eq!(task["attempts"], 2, "{label}: {t}");
            assert_eq!(retried, 1, "{label}: {events:?}");
        } else {
            assert_eq!(task["attempts"], 1, "{label}: {t}");
            assert_eq!(retried, 0, "{label}: {events:?}");
        }
        // Two attempts of at most the 1 s timeout each, plus backoff and polling.
        assert!(took < Duration::from_secs(20), "{label}: took {took:?}");
        assert!(
            api.requests().iter().all(|r| r.contains("key=")),
            "{label}: the stand-in was not asked with a key"
        );
        if case.mode == Mode::Huge {
            assert!(
                api.body_bytes() < 64 << 20,
                "the client read {} bytes of a body it should cap at 8 MiB",
                api.body_bytes()
            );
            assert!(
                peak_kib < 256 * 1024,
                "the worker's memory grew to {peak_kib} KiB on a huge body"
            );
        }

        // The stand-in behaves again: the dead letter, retried, completes.
        api.set(Mode::Ok(body.clone()));
        s.ok(&["dlq", "retry", "1"]);
        let (t, _, _) = work_until_finished(&s, "recovered");
        assert_eq!(t["task"]["status"], "completed", "{label}: {t}");
        let results = s.json(&["results", "list", "--source", "youtube_api"]);
        assert_eq!(results[0]["item"]["source_id"], VIDEO, "{label}");
    }
}
