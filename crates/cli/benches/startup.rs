//! Worker process start-up and memory: time from spawning `prismq work` to its first claim
//! (the claim's own timestamp in the task log), and the resident memory of an idle worker.
//!
//! Run: `cargo bench -p prismq-cli --bench startup` (release build of the binary). Figures are
//! the median and worst of ten start-ups; wall-clock on a shared machine, so read them with
//! the noise in mind.

use prismq_domain::ports::{SystemClock, TaskEvent};
use prismq_domain::task::TaskId;
use prismq_storage_sqlite::{SqliteOptions, SqliteStore};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const RUNS: usize = 10;

fn prismq(db: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prismq"));
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", db.parent().expect("dir"))
        .env("PRISMQ_QUEUE_DB_PATH", db)
        .env("PRISMQ_YOUTUBE__YTDLP_PATH", "/bin/false")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

fn run(db: &Path, args: &[&str]) {
    let status = prismq(db).args(args).status().expect("spawn prismq");
    assert!(status.success(), "prismq {args:?} failed");
}

fn startup_ms(dir: &Path, i: usize) -> f64 {
    let db = dir.join(format!("s{i}.db"));
    run(&db, &["init"]);
    run(&db, &["enqueue", "videos", "dQw4w9WgXcQ"]);
    let spawned = jiff::Timestamp::now();
    let status = prismq(&db)
        .args(["work", "--drain", "--concurrency", "1"])
        .status()
        .expect("spawn work");
    assert!(status.success());
    let store = SqliteStore::open(SqliteOptions::new(&db), Arc::new(SystemClock)).expect("open");
    let log = store.log_blocking(TaskId(1)).expect("log");
    let claimed = log
        .iter()
        .find(|r| r.event == TaskEvent::Claimed)
        .expect("the task was claimed");
    claimed.at.duration_since(spawned).as_secs_f64() * 1000.0
}

fn idle_rss_kib(dir: &Path) -> u64 {
    let db = dir.join("idle.db");
    run(&db, &["init"]);
    let mut child = prismq(&db)
        .args(["work", "--concurrency", "4"])
        .spawn()
        .expect("spawn work");
    std::thread::sleep(Duration::from_secs(2));
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).expect("proc status");
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    rss
}

fn main() {
    if std::env::args().any(|a| a == "--list") || !cfg!(target_os = "linux") {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let mut samples: Vec<f64> = (0..RUNS).map(|i| startup_ms(dir.path(), i)).collect();
    samples.sort_by(f64::total_cmp);
    println!("# prismq worker start-up and memory");
    println!(
        "- spawn to first claim: median {:.1} ms, worst {:.1} ms ({RUNS} runs)",
        samples[RUNS / 2],
        samples[RUNS - 1]
    );
    println!(
        "- idle worker process (4 loops) resident memory: {:.1} MB",
        idle_rss_kib(dir.path()) as f64 / 1024.0
    );
}
