//! The crash storm: four worker processes drain the batch while a controller SIGKILLs a
//! random one about every second and starts a replacement, at least `PRISMQ_STORM_KILLS`
//! times while work remains.

use std::time::{Duration, Instant};

use prismq_domain::lease::MAX_LAPSES;

use crate::{enqueue_batch, pending, start_worker, stop_all, storm_sandbox};
use prismq_tests::harness::invariants::{verify, OrdinaryFailures};
use prismq_tests::harness::{env_usize, serial, Rng};

/// Also issue 19 item 9: a killed worker's lapsed leases give their attempts back, so not one
/// healthy task (not even those allowed a single attempt) is dead-lettered by the kills.
#[test]
fn sigkill_storm_loses_and_duplicates_nothing() {
    let _one_at_a_time = serial();
    let tasks = env_usize("PRISMQ_STORM_TASKS", 20_000);
    let min_kills = env_usize("PRISMQ_STORM_KILLS", 20);
    let deadline = Duration::from_secs(env_usize("PRISMQ_STORM_DEADLINE_SECS", 300) as u64);
    let mut rng = Rng::from_env("PRISMQ_STORM_SEED");
    let (s, fake) = storm_sandbox();
    enqueue_batch(&s, tasks);

    let started = Instant::now();
    let mut next = 0;
    let mut workers = Vec::new();
    let mut names = Vec::new();
    for _ in 0..4 {
        let w = start_worker(&s, next);
        names.push(w.0.clone());
        workers.push(w);
        next += 1;
    }
    let mut kills = 0;
    let mut kills_with_work_left = 0;
    let drained_at = loop {
        std::thread::sleep(Duration::from_millis(500 + rng.below(1000)));
        let left = pending(&s);
        if left == 0 && kills_with_work_left >= min_kills {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < deadline,
            "the storm did not finish within {deadline:?}: {left} tasks pending after {kills} kills"
        );
        if left == 0 {
            // Drained before enough kills: a smaller batch than the storm needs.
            panic!(
                "the batch of {tasks} drained after only {kills_with_work_left} kills with work left; \
                 raise PRISMQ_STORM_TASKS"
            );
        }
        let victim = usize::try_from(rng.below(workers.len() as u64)).unwrap();
        let (name, mut child) = workers.swap_remove(victim);
        child.kill().expect("SIGKILL a worker");
        let status = child.wait().expect("reap the killed worker");
        assert!(
            status.code().is_none(),
            "{name} had already exited ({status:?}) before the kill: {}",
            s.stderr_of(&name)
        );
        kills += 1;
        kills_with_work_left += 1;
        let w = start_worker(&s, next);
        names.push(w.0.clone());
        workers.push(w);
        next += 1;
    };
    stop_all(&s, &mut workers);

    let f = verify(&s, OrdinaryFailures::Never);
    eprintln!(
        "storm: {tasks} tasks drained in {:.1}s by {next} worker processes, {kills} SIGKILLs; \
         {} completed, dead letters: {} poisoned, {} flaky (attempts used up), {} for {MAX_LAPSES} \
         lapses, {} healthy; {} claims, {} leases rescued ({} lapses counted, attempts given \
         back; {} tasks allowed one attempt lapsed and still completed), {} retries; {} results \
         rows, {} video fetches",
        drained_at.as_secs_f64(),
        f.completed,
        f.dead_poison,
        f.dead_flaky,
        f.dead_lease_lapsed,
        f.dead_healthy,
        f.claims,
        f.lease_expired_events,
        f.lapses,
        f.single_attempt_lapsed_completed,
        f.retried_events,
        f.results,
        fake.fetches(),
    );
    assert!(kills >= min_kills);
    assert!(
        f.lease_expired_events > 0,
        "no kill ever interrupted a task: the storm tested nothing"
    );
    assert_eq!(f.lapses, f.lease_expired_events);
    // Crashes of other processes alone dead-letter nothing: only the poisoned and flaky
    // tasks' own failures do.
    assert_eq!(f.dead_healthy, 0, "healthy tasks dead-lettered");
    assert_eq!(f.dead_lease_lapsed, 0);
    assert_eq!(f.dead_poison + f.dead_flaky, tasks - f.completed);
    assert!(f.claims >= i64::try_from(tasks).unwrap());
}
