//! Another program (here rusqlite in the test process) holds `BEGIN EXCLUSIVE` on the
//! queue for 10 seconds mid-drain: no worker writes meanwhile, none gives up, and once the
//! lock goes they finish the batch, losing nothing.

use std::time::{Duration, Instant};

use crate::{all_stderr, completed, enqueue_batch, pending, start_worker, stop_all, storm_sandbox};
use prismq_tests::harness::invariants::{verify, OrdinaryFailures};
use prismq_tests::harness::{env_usize, serial, wait_until};

#[test]
fn an_exclusive_lock_for_ten_seconds_stalls_workers_who_then_recover() {
    let _one_at_a_time = serial();
    let tasks = env_usize("PRISMQ_STORM_FAULT_TASKS", 4_000);
    let (s, _fake) = storm_sandbox();
    enqueue_batch(&s, tasks);

    let mut workers: Vec<_> = (0..4).map(|n| start_worker(&s, n)).collect();
    let names: Vec<String> = workers.iter().map(|w| w.0.clone()).collect();
    wait_until(Duration::from_secs(60), "some progress", || {
        completed(&s) >= 300
    });

    let holder = rusqlite::Connection::open(s.db()).unwrap();
    holder.busy_timeout(Duration::from_secs(30)).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let locked_at = Instant::now();
    let before = completed(&s);
    std::thread::sleep(Duration::from_secs(10));
    let during = completed(&s);
    for (name, c) in &mut workers {
        assert!(
            c.try_wait().unwrap().is_none(),
            "{name} gave up under the lock: {}",
            s.stderr_of(name)
        );
    }
    holder.execute_batch("COMMIT").unwrap();
    let held = locked_at.elapsed();
    drop(holder);
    assert_eq!(
        before, during,
        "a task completed while the database was locked"
    );
    let left = pending(&s);
    assert!(
        left > 0,
        "the batch drained before the lock: nothing was tested"
    );

    let released = Instant::now();
    wait_until(Duration::from_secs(120), "the batch to drain", || {
        pending(&s) == 0
    });
    let recovered = released.elapsed();
    stop_all(&s, &mut workers);
    let logs = all_stderr(&s, &names);
    assert!(
        logs.contains("database is locked"),
        "no worker reported the lock: {logs}"
    );
    let f = verify(&s, OrdinaryFailures::AttemptsExhausted);
    eprintln!(
        "exclusive lock: held {:.1}s with {left} tasks pending; drained {:.1}s after release; \
         {} completed, {} dead letters by policy ({} poisoned, {} flaky, {} lease lapsed, {} retries \
         used up), {} leases rescued, {} results rows",
        held.as_secs_f64(),
        recovered.as_secs_f64(),
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
