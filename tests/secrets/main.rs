//! Secrets and permissions. A run with a canary API key against a loopback Data API
//! stand-in, at trace level, through success, network failures, timeouts and a refused
//! configuration: the key must appear in no log line, error, task log, stats, results,
//! workers, `config show` output, nor anywhere in the database file. Files PrismQ creates
//! (database, -wal, -shm, exports, backups) are readable by their owner only. yt-dlp is
//! started directly (its parent is prismq, not a shell). TLS verification cannot be turned
//! off: no source uses the reqwest switches that would, and no setting exists for it.
#![cfg(unix)]

use prismq_tests::harness;
mod hostile_server;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use prismq_tests::harness::stand_in::{Mode, StandIn};
use prismq_tests::harness::{signal, wait_exit, wait_until, Sandbox};

const CANARY: &str = "AIzaSyCanary0000SecretKey1111XyZ98765";

fn page() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/videos_chart_page.json"),
    )
    .unwrap()
}

/// Runs `args` and returns stdout + stderr, whatever the exit code (never a panic).
fn everything(s: &Sandbox, args: &[&str]) -> String {
    let out = s.run(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("panicked"), "{args:?}: {text}");
    text
}

#[test]
fn the_api_key_appears_nowhere() {
    let api = StandIn::start(Mode::Ok(page()));
    let mut s = Sandbox::new();
    s.env("YOUTUBE_API_KEY", CANARY)
        .env("RUST_LOG", "trace")
        .env("PRISMQ_YOUTUBE__BACKEND", "api")
        .env("PRISMQ_YOUTUBE__API_BASE_URL", &api.base_url)
        .env("PRISMQ_YOUTUBE__REQUEST_TIMEOUT", "1s")
        .env("PRISMQ_WORKER__IDLE_BACKOFF_MAX", "100ms")
        .env("PRISMQ_RETRY__BASE", "100ms")
        .env("PRISMQ_RETRY__CAP", "200ms");
    let mut seen = String::new();
    seen += &everything(&s, &["init"]);
    seen += &everything(
        &s,
        &["collect", "trending", "--country", "IN", "--top-n", "1"],
    );
    seen += &everything(&s, &["--json", "collect", "videos", "V41Iou1O0uQ"]);
    // Failures: the connection closed, then a hang past the timeout, then success again.
    for mode in [Mode::Close, Mode::Hang, Mode::TruncatedJson(page())] {
        api.set(mode);
        seen += &everything(
            &s,
            &["enqueue", "videos", "V41Iou1O0uQ", "--max-attempts", "2"],
        );
        let mut w = s.spawn("worker", &["-vv", "work", "--concurrency", "1"]);
        wait_until(
            Duration::from_secs(30),
            "the task to be dead-lettered",
            || {
                s.json(&["dlq", "list"])
                    .as_array()
                    .is_some_and(|a| !a.is_empty())
            },
        );
        signal(w.id(), "TERM");
        assert!(wait_exit(&mut w, Duration::from_secs(20), "worker").success());
        seen += &s.stderr_of("worker");
        seen += &s.stdout_of("worker");
        seen += &everything(&s, &["--json", "dlq", "list"]);
        seen += &everything(&s, &["dlq", "purge", "--older-than", "0s"]);
    }
    api.set(Mode::Ok(page()));
    for args in [
        &["tasks", "list"][..],
        &["--json", "tasks", "list"],
        &["--json", "tasks", "show", "1"],
        &["--json", "tasks", "show", "2"],
        &["stats"],
        &["--json", "stats"],
        &["--json", "results", "list"],
        &["--json", "workers"],
        &["config", "show"],
        &["--json", "config", "show"],
        &["-vv", "validate", "--quick"],
    ] {
        seen += &everything(&s, args);
    }
    // A key the configuration refuses is not quoted back either.
    let mut bad = Sandbox::new();
    bad.env("YOUTUBE_API_KEY", format!("{CANARY} with spaces"))
        .env("RUST_LOG", "trace");
    seen += &everything(&bad, &["config", "show"]);
    seen += &everything(&bad, &["stats"]);

    assert!(
        api.requests().iter().any(|r| r.contains(CANARY)),
        "the stand-in never received the key: the test would prove nothing"
    );
    assert!(seen.contains("TRACE"), "trace logging was not on");
    assert!(seen.len() > 10_000, "too little output to be a real check");
    let at = seen
        .find(CANARY)
        .map(|i| &seen[i.saturating_sub(300)..i + CANARY.len()]);
    assert!(at.is_none(), "the key leaked: …{}", at.unwrap_or_default());
    // Nor in the database, its -wal, or any task log.
    for file in [s.db(), harness::wal_of(&s.db())] {
        if let Ok(bytes) = std::fs::read(&file) {
            let hit = bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes());
            assert!(!hit, "the key is stored in {}", file.display());
        }
    }
    let logs: String = s
        .sql()
        .query_row(
            "SELECT coalesce(group_concat(message || ' ' || coalesce(details, ''), '\n'), '') FROM task_log_entries",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!logs.is_empty() && !logs.contains(CANARY));
}

/// Runs `c` under `umask 000`, in a clean environment holding only the sandbox's own variables
/// (`c`'s removals of outside `PRISMQ_*` variables cannot carry over through the shell).
fn under_umask_000(c: &std::process::Command, dir: &Path) -> std::process::Output {
    std::process::Command::new("/bin/sh")
        .env_clear()
        .arg("-c")
        .arg("umask 000; exec \"$@\"")
        .arg("sh")
        .arg(c.get_program())
        .args(c.get_args())
        .envs(c.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .current_dir(dir)
        .output()
        .unwrap()
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn files_prismq_creates_are_private() {
    let s = Sandbox::new();
    // Whatever umask the caller has, the files are the owner's only.
    let init = s.command(&["init"]);
    let out = under_umask_000(&init, s.dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Hold a connection open so the -wal and -shm exist while we look.
    let holder = rusqlite::Connection::open(s.db()).unwrap();
    holder
        .execute_batch("CREATE TEMP TABLE t(x); SELECT 1;")
        .unwrap();
    s.ok(&["enqueue", "keyword", "q"]);
    let db = s.db();
    assert_eq!(mode_of(&db), 0o600, "database");
    for suffix in ["-wal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        if p.exists() {
            assert_eq!(mode_of(&p) & 0o077, 0, "{}", p.display());
        }
    }
    drop(holder);
    for (args, file) in [
        (
            &["results", "export", "--format", "csv", "--out", "e.csv"][..],
            "e.csv",
        ),
        (
            &["results", "export", "--format", "jsonl", "--out", "e.jsonl"],
            "e.jsonl",
        ),
        (&["backup", "--out", "b.db"], "b.db"),
    ] {
        let out = under_umask_000(&s.command(args), s.dir.path());
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(mode_of(&s.path(file)), 0o600, "{file} from {args:?}");
    }
}

#[test]
fn directories_prismq_creates_are_private() {
    let s = Sandbox::new();
    // An explicit path two directories deep, the default data directory, and a backup's.
    let deep = s.path("deep").join("er").join("q.db");
    let mut init = s.bare();
    init.arg("--db").arg(&deep).arg("init");
    let out = under_umask_000(&init, s.dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut default = s.bare();
    default.arg("init");
    let out = under_umask_000(&default, s.dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data = s.path("data");
    let mut backup = s.bare();
    backup
        .arg("--db")
        .arg(&deep)
        .args(["backup", "--out", "backups/daily/q.db"]);
    let out = under_umask_000(&backup, s.dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for dir in [
        s.path("deep"),
        s.path("deep").join("er"),
        data.clone(),
        data.join("prismq"),
        s.path("backups"),
        s.path("backups").join("daily"),
    ] {
        assert_eq!(mode_of(&dir), 0o700, "{}", dir.display());
    }
    assert_eq!(mode_of(&data.join("prismq").join("queue.db")), 0o600);
    assert_eq!(mode_of(&deep), 0o600);
    assert_eq!(mode_of(&s.path("backups/daily/q.db")), 0o600);
}

#[test]
fn ytdlp_is_started_without_a_shell() {
    let mut s = Sandbox::new();
    let dir = s.path("fake");
    std::fs::create_dir_all(&dir).unwrap();
    let script = format!(
        "#!/bin/sh\ncat /proc/$PPID/comm > '{d}/parent'\nprintf '%s\\n' '{{\"id\":\"dQw4w9WgXcQ\",\"title\":\"t\"}}'\n",
        d = dir.display()
    );
    let fake = dir.join("yt-dlp");
    std::fs::write(&fake, script).unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    s.env("PRISMQ_YOUTUBE__BACKEND", "ytdlp")
        .env("PRISMQ_YOUTUBE__YTDLP_PATH", &fake);
    s.ok(&["init"]);
    s.ok(&["collect", "videos", "dQw4w9WgXcQ"]);
    let parent = std::fs::read_to_string(dir.join("parent")).unwrap();
    assert_eq!(
        parent.trim(),
        "prismq",
        "yt-dlp's parent was {parent:?}, not prismq"
    );
}

#[test]
fn tls_verification_cannot_be_turned_off() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let forbidden = [
        "danger_accept_invalid_certs",
        "danger_accept_invalid_hostnames",
        "dangerous_configuration",
        "set_certificate_verifier",
        "NoCertificateVerification",
        "tls_built_in_root_certs(false)",
    ];
    let mut scanned = 0;
    let mut stack = vec![root.join("crates")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs" || x == "toml") {
                let text = std::fs::read_to_string(&p).unwrap();
                scanned += 1;
                for f in forbidden {
                    assert!(!text.contains(f), "{} uses {f}", p.display());
                }
            }
        }
    }
    assert!(scanned > 50, "only {scanned} files scanned");
    // The workspace's reqwest has rustls only, with no switch to skip verification.
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let reqwest = manifest.lines().find(|l| l.starts_with("reqwest")).unwrap();
    assert!(
        reqwest.contains("default-features = false") && reqwest.contains("rustls-tls"),
        "{reqwest}"
    );
    // No setting exists to turn it off.
    let s = Sandbox::new();
    for key in [
        "PRISMQ_YOUTUBE__TLS_VERIFY",
        "PRISMQ_YOUTUBE__INSECURE",
        "PRISMQ_YOUTUBE__DANGER_ACCEPT_INVALID_CERTS",
        "PRISMQ_YOUTUBE__VERIFY_TLS",
    ] {
        let out = s
            .bare()
            .env(key, "false")
            .args(["config", "show"])
            .output()
            .unwrap();
        let err = harness::expect_code(&out, 5, key);
        assert!(err.contains("unknown configuration key"), "{key}: {err}");
    }
}
