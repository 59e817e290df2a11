//! Remote workers end to end: a real `prismq serve` on loopback over a real SQLite file,
//! `prismq work --server URL` processes with no database of their own, and the invariants
//! of `harness::invariants` at the end (every task completed exactly once or dead-lettered
//! by policy, every claim ended one way, one results row per video, a clean file).
//!
//! Needs `cargo build -p prismq-cli` first. `PRISMQ_REMOTE_TASKS` sets the batch size
//! (default 600).
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use prismq_tests::harness::invariants::{verify, OrdinaryFailures};
use prismq_tests::harness::{
    enqueue_batch, env_usize, expect_code, serial, signal, wait_exit, wait_until, Sandbox,
};

/// Leases are short so a killed worker's task is rescued quickly.
const LEASE: &str = "2s";

/// A fake `yt-dlp` in the harness's shape that sleeps `FAKE_YTDLP_SLEEP` seconds per call
/// and 3 s for ids starting `slow`, so a run lasts long enough to be interrupted.
fn slow_fake(dir: &std::path::Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let script = r#"#!/bin/sh
sleep "${FAKE_YTDLP_SLEEP:-0}"
for a in "$@"; do
  case "$a" in
    https://www.youtube.com/watch\?v=poison*)
      echo "yt-dlp: error: no such option: --poisoned" >&2
      exit 2 ;;
    https://www.youtube.com/watch\?v=flaky*)
      echo "ERROR: [youtube] ${a#*v=}: HTTP Error 429: Too Many Requests" >&2
      exit 1 ;;
    https://www.youtube.com/watch\?v=*)
      id="${a#*v=}"
      case "$id" in slow*) sleep 3 ;; esac
      printf '{"id":"%s","title":"video %s","channel":"Remote","channel_id":"UCremoteremoteremoterem","timestamp":1700000000,"duration":61,"view_count":100,"like_count":5,"comment_count":1}\n' "$id" "$id" ;;
  esac
done
exit 0
"#;
    let path = dir.join("yt-dlp");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A sandbox whose workers run the slow fake, a key file (scope work) and a free port.
struct Remote {
    s: Sandbox,
    key: String,
    port: u16,
}

impl Remote {
    fn new(sleep: &str) -> Remote {
        let mut s = Sandbox::new();
        let fake = slow_fake(&s.path("fake"));
        s.env("PRISMQ_YOUTUBE__BACKEND", "ytdlp")
            .env("PRISMQ_YOUTUBE__YTDLP_PATH", fake)
            .env("FAKE_YTDLP_SLEEP", sleep)
            .env("PRISMQ_WORKER__LEASE", LEASE)
            .env("PRISMQ_WORKER__HEARTBEAT_INTERVAL", "1s")
            .env("PRISMQ_WORKER__IDLE_BACKOFF_MIN", "20ms")
            .env("PRISMQ_WORKER__IDLE_BACKOFF_MAX", "200ms")
            .env("PRISMQ_WORKER__SHUTDOWN_GRACE", "5s")
            .env("PRISMQ_RETRY__BASE", "100ms")
            .env("PRISMQ_RETRY__CAP", "500ms")
            .env("PRISMQ_LOGGING__LEVEL", "warn");
        s.ok(&["init"]);
        let out = s.ok(&[
            "keys",
            "create",
            "--name",
            "remote",
            "--scope",
            "work",
            "--rate-limit",
            "100000",
        ]);
        let key = out
            .split_whitespace()
            .find(|w| w.starts_with("pqk_"))
            .expect("the new key")
            .to_owned();
        let file = s.path("key.txt");
        std::fs::write(&file, format!("{key}\n")).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Remote { s, key, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `prismq serve` on the port, waited for until it accepts connections.
    fn serve(&self, name: &str) -> Child {
        let bind = format!("127.0.0.1:{}", self.port);
        let child = self.s.spawn(name, &["serve", "--bind", &bind]);
        wait_until(Duration::from_secs(20), "the server to listen", || {
            std::net::TcpStream::connect(&bind).is_ok()
        });
        child
    }

    /// `prismq work --server URL` with no `--db`: it must open no database.
    fn remote_worker(&self, name: &str, extra: &[&str]) -> Child {
        let out = std::fs::File::create(self.s.path(&format!("{name}.out"))).unwrap();
        let err = std::fs::File::create(self.s.path(&format!("{name}.err"))).unwrap();
        let key = self.s.path("key.txt");
        let mut c = self.s.bare();
        c.args(["work", "--server", &self.url(), "--api-key-file"])
            .arg(key)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        c.spawn().expect("spawn a remote worker")
    }

    fn pending(&self) -> i64 {
        self.s.count(
            "SELECT coalesce(sum(n), 0) FROM queue_counts WHERE status IN (0, 1, 2) /* queued, claimed, running */",
        )
    }

    fn completed(&self) -> i64 {
        self.s
            .count("SELECT coalesce(sum(n), 0) FROM queue_counts WHERE status = 3 /* completed */")
    }

    /// Tasks whose last claim was made by process `pid`.
    fn done_by(&self, pid: u32) -> i64 {
        self.s.count(&format!(
            "SELECT count(*) FROM task_queue WHERE status = 3 /* completed */ AND claimed_by LIKE '%-{pid}-%'"
        ))
    }

    /// No output of any process, and no file but the key file, holds the key; the remote
    /// workers made no database.
    fn check_key_and_no_db(&self, names: &[&str]) {
        for n in names {
            for text in [self.s.stdout_of(n), self.s.stderr_of(n)] {
                assert!(!text.contains(&self.key), "{n}'s output holds the API key");
            }
        }
        let default_db = self.s.path("data").join("prismq").join("queue.db");
        assert!(
            !default_db.exists(),
            "a remote worker created a database at {}",
            default_db.display()
        );
    }
}

/// SIGTERMs `children` and checks each exits 0 without a panic.
fn stop(s: &Sandbox, children: &mut [(&str, Child)]) {
    for (_, c) in children.iter() {
        signal(c.id(), "TERM");
    }
    for (name, c) in children.iter_mut() {
        let status = wait_exit(c, Duration::from_secs(60), name);
        let err = s.stderr_of(name);
        assert!(status.success(), "{name} exited {status:?}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
}

fn wait_drained(r: &Remote, limit: Duration) {
    wait_until(limit, "every task to finish", || r.pending() == 0);
}

/// Item 3: two remote workers and one local worker on one queue; every task exactly once.
#[test]
fn two_remote_workers_and_a_local_one_run_every_task_exactly_once() {
    let _one = serial();
    let tasks = env_usize("PRISMQ_REMOTE_TASKS", 600);
    let r = Remote::new("0");
    let server = r.serve("server");
    enqueue_batch(&r.s, tasks);
    let a = r.remote_worker("remote_a", &["--concurrency", "2"]);
    let b = r.remote_worker("remote_b", &["--concurrency", "2", "--strategy", "fifo"]);
    let local = r.s.spawn("local", &["work", "--concurrency", "2"]);
    let pids = (a.id(), b.id(), local.id());
    wait_drained(&r, Duration::from_secs(240));
    let mut all = [
        ("remote_a", a),
        ("remote_b", b),
        ("local", local),
        ("server", server),
    ];
    stop(&r.s, &mut all);

    let f = verify(&r.s, OrdinaryFailures::Never);
    let (by_a, by_b, by_local) = (r.done_by(pids.0), r.done_by(pids.1), r.done_by(pids.2));
    eprintln!(
        "{tasks} tasks: {} completed (remote a {by_a}, remote b {by_b}, local {by_local}), {} poisoned, {} flaky dead letters, {} claims",
        f.completed, f.dead_poison, f.dead_flaky, f.claims
    );
    assert_eq!(f.dead_poison + f.dead_flaky, tasks - f.completed);
    assert!(by_a > 0 && by_b > 0, "both remote workers completed tasks");
    assert_eq!(
        by_a + by_b + by_local,
        i64::try_from(f.completed).unwrap(),
        "every completion is one of the three workers'"
    );
    r.check_key_and_no_db(&["remote_a", "remote_b", "local", "server"]);
}

/// Item 3: a remote worker SIGKILLed mid-task: its lease lapses, another worker completes
/// the task, the attempt given back.
#[test]
fn a_killed_remote_workers_task_is_completed_by_another() {
    let _one = serial();
    let r = Remote::new("0");
    let server = r.serve("server");
    r.s.ok(&["enqueue", "videos", "slow0000001"]);
    let mut victim = r.remote_worker("victim", &["--concurrency", "1"]);
    wait_until(
        Duration::from_secs(30),
        "the victim to run the task",
        || {
            r.s.count(&format!(
            "SELECT count(*) FROM task_queue WHERE status = 2 /* running */ AND claimed_by LIKE '%-{}-%'",
            victim.id()
        )) == 1
        },
    );
    victim.kill().expect("SIGKILL the remote worker");
    victim.wait().unwrap();
    let rescuer = r.remote_worker("rescuer", &["--concurrency", "1"]);
    let rescuer_pid = rescuer.id();
    wait_drained(&r, Duration::from_secs(60));
    let mut rest = [("rescuer", rescuer), ("server", server)];
    stop(&r.s, &mut rest);

    let (status, attempts, lapses, by): (String, i64, i64, String) =
        r.s.sql()
            .query_row(
                "SELECT CASE status WHEN 0 THEN 'queued' WHEN 1 THEN 'claimed' WHEN 2 THEN 'running' WHEN 3 THEN 'completed' WHEN 4 THEN 'failed' WHEN 5 THEN 'cancelled' END, attempts, lapses, claimed_by FROM task_queue",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )
            .unwrap();
    assert_eq!(status, "completed");
    assert_eq!(
        (attempts, lapses),
        (1, 1),
        "the lapse gave its attempt back"
    );
    assert!(
        by.contains(&format!("-{rescuer_pid}-")),
        "completed by {by}"
    );
    assert_eq!(
        r.s.count("SELECT count(*) FROM task_logs WHERE event = 'lease_expired'"),
        1
    );
    assert_eq!(
        r.s.count("SELECT count(*) FROM results WHERE source_id = 'slow0000001'"),
        1
    );
    verify(&r.s, OrdinaryFailures::Never);
    r.check_key_and_no_db(&["rescuer", "server"]);
}

/// Item 3: the server is killed and started again mid-run: nothing is lost, and the remote
/// workers carry on by themselves.
#[test]
fn remote_workers_survive_a_server_restart() {
    let _one = serial();
    let tasks = env_usize("PRISMQ_REMOTE_TASKS", 600);
    let r = Remote::new("0.01");
    let mut server = r.serve("server1");
    enqueue_batch(&r.s, tasks);
    let a = r.remote_worker("remote_a", &["--concurrency", "2"]);
    let b = r.remote_worker("remote_b", &["--concurrency", "2"]);
    let quarter = i64::try_from(tasks / 4).unwrap();
    wait_until(Duration::from_secs(120), "a quarter of the tasks", || {
        r.completed() >= quarter
    });
    server.kill().expect("SIGKILL the server");
    server.wait().unwrap();
    let at_kill = r.completed();
    assert!(
        r.pending() > 0,
        "the batch drained before the server went down: raise PRISMQ_REMOTE_TASKS"
    );
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    let server = r.serve("server2");
    wait_drained(&r, Duration::from_secs(240));
    eprintln!(
        "server down for 2 s at {at_kill} of {tasks} completed; drained {:.1}s after the restart",
        started.elapsed().as_secs_f64()
    );
    let (pa, pb) = (a.id(), b.id());
    let mut all = [("remote_a", a), ("remote_b", b), ("server2", server)];
    stop(&r.s, &mut all);
    let f = verify(&r.s, OrdinaryFailures::Never);
    assert_eq!(f.dead_poison + f.dead_flaky, tasks - f.completed);
    let after = r.done_by(pa) + r.done_by(pb);
    assert_eq!(after, i64::try_from(f.completed).unwrap());
    r.check_key_and_no_db(&["remote_a", "remote_b", "server1", "server2"]);
}

/// A key the server does not know, and one it revoked, are refused before any work, in one
/// line saying what to do; the key is never echoed.
#[test]
fn a_wrong_or_revoked_key_is_refused_with_a_clear_message() {
    let _one = serial();
    let r = Remote::new("0");
    let mut server = r.serve("server");
    let unknown = format!("pqk_{}", "0".repeat(64));
    let out =
        r.s.bare()
            .args(["work", "--server", &r.url(), "--drain"])
            .env("PRISMQ_API_KEY", &unknown)
            .stdin(Stdio::null())
            .output()
            .unwrap();
    let err = expect_code(&out, 5, "an unknown key");
    assert!(err.contains("refused the API key"), "{err}");
    assert!(err.contains("prismq keys create"), "{err}");
    assert!(!err.contains(&unknown) && !String::from_utf8_lossy(&out.stdout).contains(&unknown));

    r.s.ok(&["keys", "revoke", "1"]);
    let key = r.s.path("key.txt");
    let out =
        r.s.bare()
            .args(["work", "--server", &r.url(), "--drain", "--api-key-file"])
            .arg(&key)
            .stdin(Stdio::null())
            .output()
            .unwrap();
    let err = expect_code(&out, 5, "a revoked key");
    assert!(err.contains("refused the API key"), "{err}");
    assert!(!err.contains(&r.key), "the key was echoed: {err}");

    let out =
        r.s.bare()
            .args(["work", "--server", &r.url(), "--drain"])
            .env("PRISMQ_API_KEY", "not-a-key")
            .stdin(Stdio::null())
            .output()
            .unwrap();
    let err = expect_code(&out, 2, "a malformed key");
    assert!(
        err.contains("not a PrismQ API key") && !err.contains("not-a-key"),
        "{err}"
    );
    signal(server.id(), "TERM");
    wait_exit(&mut server, Duration::from_secs(30), "server");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET /metrics` on `port`, the body.
fn scrape(port: u16) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("the metrics listener");
    c.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.0 200"), "{text}");
    text
}

/// The value of the sample `name{labels}` in a text exposition, 0 when absent.
fn sample(text: &str, series: &str) -> i64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as i64)
}

/// Item 6: `prismq work --metrics-bind ADDR` serves a worker's metrics, remote or local; a
/// non-loopback address is refused unless asked for.
#[test]
fn workers_serve_their_metrics_on_a_loopback_address() {
    let _one = serial();
    let r = Remote::new("0");
    let server = r.serve("server");
    enqueue_batch(&r.s, 60);
    let (rp, lp) = (free_port(), free_port());
    let remote = r.remote_worker(
        "remote",
        &[
            "--concurrency",
            "2",
            "--metrics-bind",
            &format!("127.0.0.1:{rp}"),
        ],
    );
    let local = r.s.spawn(
        "local",
        &[
            "work",
            "--concurrency",
            "1",
            "--metrics-bind",
            &format!("127.0.0.1:{lp}"),
        ],
    );
    let (remote_pid, local_pid) = (remote.id(), local.id());
    wait_drained(&r, Duration::from_secs(120));
    let (rm, lm) = (scrape(rp), scrape(lp));
    let completed = r#"prismq_worker_attempts_total{outcome="completed"}"#;
    assert_eq!(sample(&rm, completed), r.done_by(remote_pid), "{rm}");
    assert_eq!(sample(&lm, completed), r.done_by(local_pid), "{lm}");
    assert!(sample(&rm, completed) > 0, "{rm}");
    for m in [&rm, &lm] {
        assert!(
            m.contains("prismq_worker_claim_duration_seconds_bucket"),
            "{m}"
        );
        assert!(
            m.contains("prismq_worker_task_duration_seconds_bucket"),
            "{m}"
        );
    }
    // The local worker reads the queue's depth; the remote one's key reads nothing.
    assert!(lm.contains("prismq_queue_tasks{"), "{lm}");
    assert!(!rm.contains("prismq_queue_tasks{"), "{rm}");
    let mut all = [("remote", remote), ("local", local), ("server", server)];
    stop(&r.s, &mut all);

    let refused = r.s.run(&["work", "--drain", "--metrics-bind", "0.0.0.0:9"]);
    let err = expect_code(&refused, 2, "a non-loopback metrics address");
    assert!(err.contains("--metrics-insecure-bind"), "{err}");
}

/// A key revoked while a remote worker runs ends its run at the next claim, saying why;
/// bad `--server` and key flags are refused before anything starts.
#[test]
fn a_key_revoked_mid_run_ends_the_run_and_bad_flags_are_refused() {
    let _one = serial();
    let r = Remote::new("0");
    let server = r.serve("server");
    let mut worker = r.remote_worker("worker", &["--concurrency", "1"]);
    wait_until(Duration::from_secs(20), "the worker to register", || {
        r.s.count("SELECT count(*) FROM workers") == 1
    });
    r.s.ok(&["keys", "revoke", "1"]);
    // The server caches nothing about keys: the next claim (within the 25 s long poll's
    // end, or at once) is refused.
    let status = wait_exit(&mut worker, Duration::from_secs(60), "the worker");
    let err = r.s.stderr_of("worker");
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("refused it"), "{err}");
    assert!(!err.contains(&r.key), "the key was echoed");

    let key = r.s.path("key.txt");
    let bare = |args: &[&str]| r.s.bare().args(args).stdin(Stdio::null()).output().unwrap();
    let k = key.to_str().unwrap();
    let err = expect_code(
        &bare(&["work", "--server", "ftp://127.0.0.1", "--api-key-file", k]),
        2,
        "an ftp URL",
    );
    assert!(
        err.contains("invalid server") && err.contains("http://"),
        "{err}"
    );
    let err = expect_code(
        &bare(&[
            "work",
            "--server",
            "http://u:p@127.0.0.1:1",
            "--api-key-file",
            k,
        ]),
        2,
        "credentials in the URL",
    );
    assert!(err.contains("credentials"), "{err}");
    let err = expect_code(&bare(&["work", "--server", &r.url()]), 2, "no key");
    assert!(err.contains("PRISMQ_API_KEY"), "{err}");
    let err = expect_code(
        &bare(&[
            "work",
            "--server",
            &r.url(),
            "--api-key-file",
            "/nonexistent/key",
        ]),
        3,
        "a missing key file",
    );
    assert!(err.contains("--api-key-file"), "{err}");
    let err = expect_code(
        &bare(&["work", "--api-key-file", k]),
        2,
        "a key file without --server",
    );
    assert!(err.contains("--server"), "{err}");
    let mut rest = [("server", server)];
    stop(&r.s, &mut rest);
}

/// A remote worker reaches an HTTPS server whose certificate a private CA signed only when
/// it is told to trust that CA (`--ca-cert`); without it the run is refused before any
/// work, saying why.
#[test]
fn a_remote_worker_trusts_a_private_ca_only_when_told() {
    let _one = serial();
    let r = Remote::new("0");
    let certs = prismq_testkit::tls::loopback_certificate(&r.s.path(""));
    let bind = format!("127.0.0.1:{}", r.port);
    let (cert, key) = (
        certs.cert.display().to_string(),
        certs.key.display().to_string(),
    );
    let mut server = r.s.spawn(
        "server",
        &[
            "serve",
            "--bind",
            &bind,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ],
    );
    wait_until(Duration::from_secs(20), "the server to listen", || {
        std::net::TcpStream::connect(&bind).is_ok()
    });
    enqueue_batch(&r.s, 6);
    let url = format!("https://{bind}");
    let key_file = r.s.path("key.txt");

    let untrusted =
        r.s.bare()
            .args(["work", "--server", &url, "--drain", "--api-key-file"])
            .arg(&key_file)
            .stdin(Stdio::null())
            .output()
            .unwrap();
    assert!(!untrusted.status.success(), "an unknown CA must be refused");
    let err = String::from_utf8_lossy(&untrusted.stderr);
    assert!(err.contains("certificate"), "{err}");
    assert_eq!(r.completed(), 0, "nothing ran");

    let trusted =
        r.s.bare()
            .args(["work", "--server", &url, "--drain", "--api-key-file"])
            .arg(&key_file)
            .arg("--ca-cert")
            .arg(&certs.ca)
            .stdin(Stdio::null())
            .output()
            .unwrap();
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    assert_eq!(r.completed(), 6, "every task ran over HTTPS");
    signal(server.id(), "TERM");
    wait_exit(&mut server, Duration::from_secs(30), "server");
    r.check_key_and_no_db(&["server"]);
}
