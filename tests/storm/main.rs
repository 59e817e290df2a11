//! Crash storms: several `prismq work` processes drain a large batch from one SQLite file
//! while a controller SIGKILLs them, while the database's directory and files are frozen
//! read-only, and while another program holds an exclusive lock. Every scenario stops by
//! itself and ends with the invariants of `harness::invariants`: nothing in flight, every
//! task completed exactly once or dead-lettered by policy, one results row per video, and a
//! clean integrity check.
//!
//! Sizes: `PRISMQ_STORM_TASKS` (default 20,000, the figure), `PRISMQ_STORM_KILLS`
//! (default 20), `PRISMQ_STORM_FAULT_TASKS` (default 4,000 for the lock and read-only runs),
//! `PRISMQ_STORM_SEED` to repeat a run's random choices.
#![cfg(unix)]

mod crash;
mod frozen;
mod locked;

use std::process::Child;
use std::time::Duration;

pub use prismq_tests::harness::enqueue_batch;
use prismq_tests::harness::fake::FastFake;
use prismq_tests::harness::{signal, wait_exit, Sandbox};

/// Lease used by every worker: short, so a killed worker's task is rescued quickly.
pub const LEASE: &str = "2s";

/// A sandbox whose workers run the fast fake with a short lease and quick retries.
pub fn storm_sandbox() -> (Sandbox, FastFake) {
    let mut s = Sandbox::new();
    let fake = FastFake::new(&s.path("fake"));
    s.env("PRISMQ_YOUTUBE__BACKEND", "ytdlp")
        .env("PRISMQ_YOUTUBE__YTDLP_PATH", fake.path())
        .env("PRISMQ_WORKER__LEASE", LEASE)
        .env("PRISMQ_WORKER__HEARTBEAT_INTERVAL", "1s")
        .env("PRISMQ_WORKER__IDLE_BACKOFF_MIN", "20ms")
        .env("PRISMQ_WORKER__IDLE_BACKOFF_MAX", "200ms")
        .env("PRISMQ_WORKER__SHUTDOWN_GRACE", "5s")
        .env("PRISMQ_RETRY__BASE", "100ms")
        .env("PRISMQ_RETRY__CAP", "500ms")
        .env("PRISMQ_LOGGING__LEVEL", "warn");
    s.ok(&["init"]);
    (s, fake)
}

/// Tasks not yet completed or dead-lettered, from the trigger-kept counts.
pub fn pending(s: &Sandbox) -> i64 {
    s.count(
        "SELECT coalesce(sum(n), 0) FROM queue_counts WHERE status IN (0, 1, 2) /* queued, claimed, running */",
    )
}

pub fn completed(s: &Sandbox) -> i64 {
    s.count("SELECT coalesce(sum(n), 0) FROM queue_counts WHERE status = 3 /* completed */")
}

const STRATEGIES: [&str; 4] = ["lifo", "fifo", "priority", "weighted_random"];

/// Starts worker number `n` (its strategy rotates through the four).
pub fn start_worker(s: &Sandbox, n: usize) -> (String, Child) {
    let name = format!("worker{n}");
    let child = s.spawn(
        &name,
        &[
            "work",
            "--concurrency",
            "2",
            "--strategy",
            STRATEGIES[n % STRATEGIES.len()],
        ],
    );
    (name, child)
}

/// SIGTERMs every worker and checks each shuts down cleanly (exit 0, no panic).
pub fn stop_all(s: &Sandbox, workers: &mut Vec<(String, Child)>) {
    for (_, c) in workers.iter() {
        signal(c.id(), "TERM");
    }
    for (name, c) in workers.iter_mut() {
        let status = wait_exit(c, Duration::from_secs(60), name);
        let err = s.stderr_of(name);
        assert!(status.success(), "{name} exited {status:?}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
    workers.clear();
}

/// Every worker's stderr, for checking that a fault was seen and survived.
pub fn all_stderr(s: &Sandbox, names: &[String]) -> String {
    names.iter().map(|n| s.stderr_of(n)).collect()
}
