//! A misbehaving `yt-dlp` under a real `prismq work`: hanging, leaving a background child
//! that holds its output pipes, printing garbage, flooding stderr or stdout. Each attempt
//! must end by the yt-dlp time limit with a classified error, the child killed and reaped
//! (no zombie under the worker), and the worker still healthy.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use prismq_tests::harness::{serial, signal, wait_exit, wait_until, Sandbox};

/// Children of `pid` that are zombies (exited, never reaped).
fn zombie_children(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid …; comm may hold spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r.trim().to_owned()) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("");
        let ppid: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if ppid == pid && state == "Z" {
            out.push(stat);
        }
    }
    out
}

fn alive(pid: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) else {
        return false;
    };
    // A zombie is dead but not reaped; count it as alive (it is still there).
    !stat.is_empty()
}

/// A `yt-dlp` script whose body runs after it records its pid in `pids`.
fn fake(dir: &Path, body: &str) -> std::path::PathBuf {
    let path = dir.join("yt-dlp");
    let script = format!("#!/bin/sh\necho $$ >> '{}/pids'\n{body}\n", dir.display());
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

const VIDEO_JSON: &str = r#"{"id":"dQw4w9WgXcQ","title":"ok","view_count":1,"duration":10}"#;

struct Case {
    name: &'static str,
    body: String,
    /// Expected final status and a piece of the last error.
    status: &'static str,
    says: &'static str,
    attempts: u32,
}

#[test]
fn misbehaving_ytdlp_is_killed_at_the_limit_and_classified() {
    let _one_at_a_time = serial();
    let cases = [
        Case {
            name: "hangs",
            body: "exec sleep 300".into(),
            status: "failed",
            says: "timed out",
            attempts: 2,
        },
        Case {
            name: "hangs with a background child holding the pipes",
            body: "sleep 300 &\nsleep 300".into(),
            status: "failed",
            says: "timed out",
            attempts: 2,
        },
        Case {
            name: "answers but leaves a background child holding the pipes",
            // Its output cannot be known to be complete while the pipe is open.
            body: format!("sleep 300 &\nprintf '%s\\n' '{VIDEO_JSON}'\nexit 0"),
            status: "failed",
            says: "timed out",
            attempts: 2,
        },
        Case {
            name: "prints garbage",
            body:
                "head -c 20000 /dev/urandom; printf '\\nnot json at all\\n{\"id\": tru\\n'; exit 0"
                    .into(),
            status: "failed",
            says: "not JSON",
            attempts: 2,
        },
        Case {
            name: "floods stderr then hangs",
            body: "yes 'WARNING: chatter chatter chatter' | head -c 30000000 >&2\nexec sleep 300"
                .into(),
            status: "failed",
            says: "timed out",
            attempts: 2,
        },
        Case {
            name: "floods stdout past the cap",
            body: "head -c 80000000 /dev/zero\nexit 0".into(),
            status: "failed",
            says: "cap",
            attempts: 1,
        },
    ];
    for case in cases {
        let mut s = Sandbox::new();
        let dir = s.path("fake");
        std::fs::create_dir_all(&dir).unwrap();
        let path = fake(&dir, &case.body);
        s.env("PRISMQ_YOUTUBE__BACKEND", "ytdlp")
            .env("PRISMQ_YOUTUBE__YTDLP_PATH", &path)
            .env("PRISMQ_YOUTUBE__YTDLP_TIMEOUT", "2s")
            .env("PRISMQ_WORKER__LEASE", "20s")
            .env("PRISMQ_WORKER__IDLE_BACKOFF_MAX", "100ms")
            .env("PRISMQ_WORKER__SHUTDOWN_GRACE", "1s")
            .env("PRISMQ_RETRY__BASE", "100ms")
            .env("PRISMQ_RETRY__CAP", "200ms");
        s.ok(&["init"]);
        s.ok(&["enqueue", "videos", "dQw4w9WgXcQ", "--max-attempts", "2"]);

        let started = Instant::now();
        let mut worker = s.spawn("worker", &["work", "--concurrency", "1"]);
        let mut t = serde_json::Value::Null;
        let limit = Duration::from_secs(30);
        wait_until(limit, case.name, || {
            t = s.json(&["tasks", "show", "1"]);
            matches!(t["task"]["status"].as_str(), Some("completed" | "failed"))
        });
        let took = started.elapsed();
        // Give the runtime a moment to reap, then look for zombies under the live worker.
        std::thread::sleep(Duration::from_millis(300));
        let zombies = zombie_children(worker.id());
        let pids = std::fs::read_to_string(dir.join("pids")).unwrap_or_default();
        let left: Vec<&str> = pids.lines().filter(|p| alive(p)).collect();
        signal(worker.id(), "TERM");
        let status = wait_exit(&mut worker, Duration::from_secs(30), "worker");
        let err = s.stderr_of("worker");
        let error = t["task"]["last_error"].as_str().unwrap_or("").to_owned();
        eprintln!(
            "yt-dlp {}: {} after {} attempt(s) in {:.1}s: {error}",
            case.name,
            t["task"]["status"],
            t["task"]["attempts"],
            took.as_secs_f64()
        );
        assert!(status.success(), "{}: worker {status:?}: {err}", case.name);
        assert!(!err.contains("panicked"), "{}: {err}", case.name);
        assert_eq!(t["task"]["status"], case.status, "{}: {t}", case.name);
        assert_eq!(t["task"]["attempts"], case.attempts, "{}: {t}", case.name);
        assert!(error.contains(case.says), "{}: {error}", case.name);
        assert!(zombies.is_empty(), "{}: zombies {zombies:?}", case.name);
        assert!(
            left.is_empty(),
            "{}: yt-dlp processes {left:?} still running after the attempt",
            case.name
        );
        // Each attempt is bounded by the 2 s limit (plus backoff and polling).
        assert!(
            took < Duration::from_secs(15),
            "{}: took {took:?}",
            case.name
        );
    }
}
