//! The database's directory — and the database and -wal files in it, since an immutable
//! directory alone still lets SQLite write the files it already has open — frozen read-only
//! with `chattr +i` for a few seconds mid-drain. The -shm file stays writable: it is
//! memory-mapped, and ext4 answers a write fault on a mapped immutable file with SIGBUS,
//! which kills the process like the SIGKILLs of the crash storm rather than testing a
//! read-only database. Running workers must back off and carry
//! on; a worker started meanwhile must refuse with exit 4 and say why. Skipped, loudly,
//! where `chattr +i` is not permitted (not root, or a filesystem without the attribute).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{all_stderr, completed, enqueue_batch, pending, start_worker, stop_all, storm_sandbox};
use prismq_tests::harness::invariants::{verify, OrdinaryFailures};
use prismq_tests::harness::{env_usize, serial, wait_exit, wait_until};

/// Sets or clears the immutable attribute on `paths`.
fn chattr(flag: &str, paths: &[PathBuf]) -> bool {
    Command::new("chattr")
        .arg(flag)
        .args(paths)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Keeps paths immutable until dropped (also on a failing assertion, so the temp dir can
/// be removed).
struct Frozen(Vec<PathBuf>);

impl Frozen {
    fn new(dir: &Path) -> Option<Frozen> {
        let mut paths = vec![dir.to_path_buf()];
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if !path.to_string_lossy().ends_with("-shm") {
                paths.push(path);
            }
        }
        chattr("+i", &paths).then_some(Frozen(paths))
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        assert!(
            chattr("-i", &self.0),
            "could not clear chattr +i on {:?}",
            self.0
        );
    }
}

#[test]
fn a_read_only_database_directory_stalls_workers_who_then_recover() {
    let _one_at_a_time = serial();
    let tasks = env_usize("PRISMQ_STORM_FAULT_TASKS", 4_000);
    let (s, _fake) = storm_sandbox();
    let dir = s.db().parent().unwrap().to_path_buf();
    // Probe whether the attribute can be set here at all.
    let probe = s.path("probe");
    std::fs::write(&probe, "x").unwrap();
    if !chattr("+i", std::slice::from_ref(&probe)) {
        eprintln!(
            "SKIPPED: `chattr +i` is not permitted here (needs root and ext4/xfs/btrfs); \
             the read-only directory scenario did not run"
        );
        return;
    }
    assert!(chattr("-i", &[probe]));
    enqueue_batch(&s, tasks);

    let mut workers: Vec<_> = (0..4).map(|n| start_worker(&s, n)).collect();
    let names: Vec<String> = workers.iter().map(|w| w.0.clone()).collect();
    wait_until(Duration::from_secs(60), "some progress", || {
        completed(&s) >= 300
    });

    let frozen = Frozen::new(&dir).expect("chattr +i on the database directory");
    let frozen_at = Instant::now();
    // A worker started now cannot use the database: exit 4, saying what is wrong.
    let mut late = s.spawn("late", &["work", "--concurrency", "1"]);
    let status = wait_exit(&mut late, Duration::from_secs(30), "the late worker");
    let late_err = s.stderr_of("late");
    assert_eq!(status.code(), Some(4), "late worker: {late_err}");
    assert!(late_err.contains("read-only"), "{late_err}");
    std::thread::sleep(Duration::from_secs(3).saturating_sub(frozen_at.elapsed()));
    for (name, c) in &mut workers {
        let status = c.try_wait().unwrap();
        assert!(
            status.is_none(),
            "{name} gave up while the directory was read-only ({status:?}): {}{}",
            s.stdout_of(name),
            s.stderr_of(name)
        );
    }
    drop(frozen);

    wait_until(Duration::from_secs(120), "the batch to drain", || {
        pending(&s) == 0
    });
    stop_all(&s, &mut workers);
    let logs = all_stderr(&s, &names);
    assert!(
        logs.contains("retrying"),
        "no worker noticed the read-only database: {logs}"
    );
    let f = verify(&s, OrdinaryFailures::AttemptsExhausted);
    eprintln!(
        "read-only: {tasks} tasks, {} completed, {} dead letters by policy ({} poisoned, {} flaky, \
         {} lease lapsed, {} retries used up), {} leases rescued, {} results rows",
        f.completed,
        tasks - f.completed,
        f.dead_poison,
        f.dead_flaky,
        f.dead_lease_lapsed,
        f.dead_other,
        f.lease_expired_events,
        f.results
    );
}
