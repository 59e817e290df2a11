//! What 10,000 schedules cost an idle worker: the CPU time (user + system) a `prismq work`
//! process spends in a fixed span over an empty queue, without schedules and with 10,000
//! that are not due, in alternating rounds of the same run. The schedules' only cost is the
//! due check (one read of the partial index on `next_slot`, at most once a second per
//! process), so the ratio should stay within the machine's noise.
//!
//! The CPU time is the child's resource usage as `bash`'s `times` reports it after
//! `timeout` stops the worker with SIGTERM: every thread the process ever had, exited ones
//! included, to the millisecond.
//!
//! Run: `cargo bench -p prismq-cli --bench idle_schedules` (release build of the binary).
//! `PRISMQ_BENCH_IDLE_SECS` sets each round's span (default 20), `PRISMQ_BENCH_IDLE_ROUNDS`
//! the rounds per setting (default 3), `PRISMQ_BENCH_SCHEDULES` the schedules (10,000).

use prismq_domain::ports::{ScheduleStore, SystemClock, TaskQueue};
use prismq_domain::schedule::{Cadence, NewSchedule};
use prismq_domain::TaskType;
use prismq_storage_sqlite::{SqliteOptions, SqliteStore};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn init(db: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_prismq"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", db.parent().expect("dir"))
        .arg("--db")
        .arg(db)
        .arg("init")
        .stdout(Stdio::null())
        .status()
        .expect("spawn prismq init");
    assert!(status.success(), "prismq init failed");
}

/// Adds `n` schedules through the store's own `add_schedule`, every 366 days: none comes
/// due within the run (checked at the end: no task is enqueued).
fn add_schedules(db: &Path, n: u64) {
    let store = SqliteStore::open(SqliteOptions::new(db), Arc::new(SystemClock)).expect("open");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for i in 0..n {
            store
                .add_schedule(NewSchedule::new(
                    format!("track-{i}"),
                    TaskType::new("keyword_search").expect("type"),
                    serde_json::json!({ "query": format!("query {i}") }),
                    Cadence::every("366d").expect("cadence"),
                ))
                .await
                .expect("add schedule");
        }
    });
}

fn tasks_in(db: &Path) -> u64 {
    let store = SqliteStore::open(SqliteOptions::new(db), Arc::new(SystemClock)).expect("open");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stats = rt.block_on(store.stats()).expect("stats");
    stats.counts.iter().map(|c| c.count).sum()
}

/// CPU seconds (user + system) of `prismq work` on `db` over `secs` seconds.
fn idle_cpu(db: &Path, secs: u64) -> f64 {
    let script =
        format!("timeout -s TERM {secs} \"$PRISMQ\" --db \"$DB\" work >/dev/null 2>&1; times");
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", db.parent().expect("dir"))
        .env("PRISMQ", env!("CARGO_BIN_EXE_prismq"))
        .env("DB", db)
        .env("PRISMQ_YOUTUBE__YTDLP_PATH", "/bin/false")
        .output()
        .expect("spawn bash");
    let text = String::from_utf8_lossy(&out.stdout);
    // `times`: the shell's own user and system time, then its children's.
    let children = text
        .lines()
        .nth(1)
        .unwrap_or_else(|| panic!("no children line in {text:?}"));
    children.split_whitespace().map(seconds).sum()
}

/// `0m1.234s` as seconds.
fn seconds(field: &str) -> f64 {
    let (m, s) = field
        .trim_end_matches('s')
        .split_once('m')
        .unwrap_or_else(|| panic!("not a `times` field: {field:?}"));
    m.parse::<f64>().expect("minutes") * 60.0 + s.parse::<f64>().expect("seconds")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") || !cfg!(target_os = "linux") {
        return;
    }
    let secs = env_number("PRISMQ_BENCH_IDLE_SECS", 20);
    let rounds = env_number("PRISMQ_BENCH_IDLE_ROUNDS", 3) as usize;
    let n = env_number("PRISMQ_BENCH_SCHEDULES", 10_000);
    let dir = tempfile::tempdir().expect("dir");
    let empty = dir.path().join("empty.db");
    let scheduled = dir.path().join("scheduled.db");
    init(&empty);
    init(&scheduled);
    let started = std::time::Instant::now();
    add_schedules(&scheduled, n);
    println!("# idle `prismq work` CPU with {n} schedules");
    println!(
        "- {n} schedules added in {:.1} s; {rounds} alternating rounds of {secs} s each",
        started.elapsed().as_secs_f64()
    );
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let a = idle_cpu(&empty, secs);
        let b = idle_cpu(&scheduled, secs);
        println!(
            "- round {round}: no schedules {:.3} s CPU, {n} schedules {:.3} s CPU",
            a, b
        );
        without.push(a);
        with.push(b);
    }
    assert_eq!(tasks_in(&scheduled), 0, "a schedule fired during the run");
    let (a, b) = (median(without), median(with));
    println!(
        "- median CPU over {secs} s: {:.3} s without, {:.3} s with: ratio {:.3} ({:+.1} %)",
        a,
        b,
        b / a,
        (b / a - 1.0) * 100.0
    );
}
