//! Shared by every test binary of this package (`e2e`, `storm`, `faults`, `bad_input`,
//! `secrets`, `remote`) and by `crates/cli/tests`, which import it as
//! `prismq_tests::harness`: a sandbox that runs the
//! real `prismq` binary with a clean environment and reads the queue it wrote (direct
//! read-only SQL, or the app's ports), a fast fake `yt-dlp` with poisoned and flaky video
//! ids, a Data API stand-in, the final invariants every scenario checks, and a small seeded
//! random generator.

pub mod fake;
pub mod invariants;
pub mod stand_in;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use prismq_app::{App, Config};
use prismq_domain::ports::{LogRecord, TaskFilter};
use prismq_domain::{Task, TaskId};

/// The `prismq` binary built next to this test (`target/<profile>/prismq`). Build it first
/// with `cargo build -p prismq-cli` (`cargo test --workspace` does).
pub fn prismq() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let bin = dir.join(format!("prismq{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} does not exist: run `cargo build -p prismq-cli` first",
        bin.display()
    );
    bin
}

/// The `prismq` binary run in `dir`, with nothing of the caller's configuration: no
/// `PRISMQ_*`, `YOUTUBE_API_KEY`, `RUST_LOG` or `COLUMNS` from outside (a table's width is
/// the test's choice, not the shell's), HOME and XDG_CONFIG_HOME inside `dir`, no colour.
pub fn isolated(dir: &Path) -> Command {
    let mut c = Command::new(prismq());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("PRISMQ_") || k == "YOUTUBE_API_KEY" || k == "RUST_LOG" || k == "COLUMNS" {
            c.env_remove(&k);
        }
    }
    c.current_dir(dir)
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("NO_COLOR", "1");
    c
}

/// Heavy scenarios share two cores: one at a time per test binary.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A temp dir holding the database (in `db/`, so the directory can be frozen alone), with
/// the environment every process gets: no `PRISMQ_*`, `YOUTUBE_API_KEY` or `RUST_LOG` from
/// outside, HOME and the XDG directories inside, and a PATH without yt-dlp.
#[derive(Debug)]
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("db")).unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        Sandbox {
            dir,
            env: Vec::new(),
        }
    }

    /// A sandbox whose commands all get these environment variables.
    pub fn with_env(env: &[(&str, &str)]) -> Self {
        let mut s = Self::new();
        for (k, v) in env {
            s.env(k, v);
        }
        s
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("db").join("queue.db")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Sets an environment variable for every later command.
    pub fn env(&mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> &mut Self {
        self.env.push((
            key.to_owned(),
            value.as_ref().to_string_lossy().into_owned(),
        ));
        self
    }

    /// The binary with the sandbox's environment, no arguments.
    pub fn bare(&self) -> Command {
        let d = self.dir.path();
        let mut c = isolated(d);
        c.env("XDG_DATA_HOME", d.join("data"))
            .env("APPDATA", d.join("config"))
            .env("LOCALAPPDATA", d.join("data"))
            .env("PATH", format!("{}:/usr/bin:/bin", d.join("bin").display()));
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// `prismq --db db/queue.db ARGS…`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = self.bare();
        c.arg("--db").arg(self.db()).args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .expect("run prismq")
    }

    /// Runs and asserts success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "prismq {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs with `--json` and parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"))
    }

    /// Runs, expecting exit `code`, and returns stderr (never a panic).
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        expect_code(&self.run(args), code, &format!("{args:?}"))
    }

    /// Starts a long-running command with its output in `name.out` / `name.err`.
    pub fn spawn(&self, name: &str, args: &[&str]) -> Child {
        let out = std::fs::File::create(self.path(&format!("{name}.out"))).unwrap();
        let err = std::fs::File::create(self.path(&format!("{name}.err"))).unwrap();
        self.command(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn prismq")
    }

    pub fn stderr_of(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(&format!("{name}.err"))).unwrap_or_default()
    }

    pub fn stdout_of(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(&format!("{name}.out"))).unwrap_or_default()
    }

    /// The database file's bytes and its -wal file's, to prove nothing was written.
    pub fn db_bytes(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        (
            std::fs::read(self.db()).expect("read db"),
            std::fs::read(wal_of(&self.db())).ok(),
        )
    }

    /// A read-only connection to the queue (WAL readers never block the workers).
    pub fn sql(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open_with_flags(
            self.db(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .expect("open the queue read-only");
        c.busy_timeout(Duration::from_secs(30)).unwrap();
        c
    }

    /// One integer from a query on a fresh read-only connection.
    pub fn count(&self, sql: &str) -> i64 {
        self.sql()
            .query_row(sql, [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Reads (or writes) the queue through the app's ports, on a runtime of its own.
    pub fn inspect<T>(&self, f: impl AsyncFnOnce(&App) -> T) -> T {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut config = Config::default();
        config.database.path = Some(self.db());
        let app = App::open_with(config, &[]).expect("open the queue");
        rt.block_on(f(&app))
    }

    /// Task `id`, through the app's ports.
    pub fn task(&self, id: i64) -> Task {
        self.inspect(async |app| app.queue.get(TaskId(id)).await.expect("task"))
    }

    /// Every task (up to 10,000), through the app's ports.
    pub fn tasks(&self) -> Vec<Task> {
        self.inspect(async |app| {
            app.queue
                .list(&TaskFilter {
                    limit: 10_000,
                    ..TaskFilter::default()
                })
                .await
                .expect("list")
        })
    }

    /// Task `id`'s log, through the app's ports.
    pub fn log(&self, id: i64) -> Vec<LogRecord> {
        self.inspect(async |app| app.logs.list(TaskId(id)).await.expect("log"))
    }
}

pub fn wal_of(db: &Path) -> PathBuf {
    PathBuf::from(format!("{}-wal", db.display()))
}

/// Asserts the exit code and that nothing panicked; returns stderr.
pub fn expect_code(out: &Output, code: i32, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: expected exit {code}\nstdout: {}\nstderr: {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    stderr
}

/// FNV-1a of `bytes`, for messages.
pub fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Polls `cond` every 50 ms until it holds; panics with `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for `child` to exit within `limit`, killing it (and failing) otherwise.
pub fn wait_exit(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `signal` (`TERM`, `KILL`, …) to `pid` with the system's `kill`.
pub fn signal(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether we run as root (chattr and prlimit need it or work better with it).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A seeded xorshift generator: the seed is printed so a run can be repeated.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded from `env_var` when set, else from the clock; prints the seed.
    pub fn from_env(env_var: &str) -> Self {
        let seed = std::env::var(env_var)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("random seed {seed} (repeat with {env_var}={seed})");
        Rng(seed | 1)
    }

    /// The next number of the sequence.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// An environment variable parsed as a number, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Writes and enqueues `n` tasks: every 500th a poisoned one (permanent failure), every
/// 500th (offset) a flaky one (retryable until its attempts run out), the rest ordinary
/// `api_scrape` tasks of two videos each, the second shared with another task so results
/// must deduplicate. Every 10th ordinary task allows one attempt only: a kill during it
/// must not use that attempt up (a lapsed lease gives its attempt back). Priorities vary so
/// every strategy has work.
pub fn enqueue_batch(s: &Sandbox, n: usize) {
    let mut lines = String::with_capacity(n * 96);
    for i in 0..n {
        let priority = 1 + (i * 7) % 10;
        let line = if i % 500 == 7 {
            serde_json::json!({"type": "api_scrape", "params": {"videos": [fake::poison(i)]}, "priority": priority})
        } else if i % 500 == 11 {
            serde_json::json!({"type": "api_scrape", "params": {"videos": [fake::flaky(i)]}, "priority": priority, "max_attempts": 3})
        } else {
            let shared = fake::video((i * 7919) % n);
            let mut task = serde_json::json!({"type": "api_scrape", "params": {"videos": [fake::video(i), shared]}, "priority": priority});
            if i % 10 == 3 {
                task["max_attempts"] = 1.into();
            }
            task
        };
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    let file = s.path("batch.jsonl");
    std::fs::write(&file, lines).unwrap();
    let out = s.ok(&["enqueue", "--file", file.to_str().unwrap()]);
    assert!(out.contains(&format!("enqueued {n} tasks")), "{out}");
}
