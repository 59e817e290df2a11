//! Timing on mockall mocks under tokio's paused clock: lease renewals, heartbeats, idle
//! backoff, and store errors.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use prismq_app::{PluginRegistry, RunOptions, Runtime, RuntimeError, WorkerSettings};
use prismq_domain::ports::{ClaimedTask, Heartbeat};
use prismq_domain::{PortError, ValidationError};

use crate::handlers::{Scripted, Step};
use crate::mocks::{MockTaskQueue, MockWorkerRegistry};
use crate::support::{self, claimed_task, LEASE};

const DRAIN: RunOptions = RunOptions {
    drain: true,
    max_tasks: None,
};

/// A worker registry that accepts everything and records heartbeats.
fn workers(beats: Arc<Mutex<Vec<(Instant, Heartbeat)>>>) -> MockWorkerRegistry {
    let mut w = MockWorkerRegistry::new();
    w.expect_register().returning(|_| Ok(()));
    w.expect_heartbeat().returning(move |_, beat| {
        beats.lock().unwrap().push((Instant::now(), beat));
        Ok(())
    });
    w.expect_deregister().times(1).returning(|_| Ok(()));
    w
}

fn runtime(
    queue: MockTaskQueue,
    workers: MockWorkerRegistry,
    registry: Arc<PluginRegistry>,
    s: WorkerSettings,
) -> Runtime {
    let mem = support::Mem::new();
    Runtime::new(
        Arc::new(queue),
        Arc::new(workers),
        // Neither is touched by these tests (no items, no progress notes).
        Arc::new(mem.store.clone()),
        Arc::new(mem.store.clone()),
        registry,
        s,
    )
}

fn one_task_then_nothing(q: &mut MockTaskQueue) {
    let handed = AtomicU32::new(0);
    q.expect_claim().returning(move |req| {
        assert_eq!(req.lease_for, LEASE);
        if handed.fetch_add(1, Ordering::SeqCst) == 0 {
            let (task, lease) = claimed_task(1, "sleepy");
            Ok(Some(ClaimedTask { task, lease }))
        } else {
            Ok(None)
        }
    });
    q.expect_start().times(1).returning(|_| Ok(()));
}

/// Runs one task whose handler sleeps `run_for`; returns (renewals, heartbeats).
async fn renewals_for(run_for: Duration) -> (u32, Vec<(Instant, Heartbeat)>) {
    let mut q = MockTaskQueue::new();
    one_task_then_nothing(&mut q);
    let renewals = Arc::new(AtomicU32::new(0));
    let r = renewals.clone();
    q.expect_renew_lease().returning(move |lease, lease_for| {
        assert_eq!(lease_for, LEASE);
        r.fetch_add(1, Ordering::SeqCst);
        Ok(lease.clone())
    });
    q.expect_complete().times(1).returning(|_, _| Ok(()));
    let beats = Arc::new(Mutex::new(Vec::new()));
    let h = Scripted::new("sleepy", vec![Step::Sleep(run_for)]);
    let rt = runtime(
        q,
        workers(beats.clone()),
        support::registry(vec![h]),
        support::settings(),
    );
    let report = rt.run(DRAIN, CancellationToken::new()).await.unwrap();
    assert_eq!(report.completed, 1);
    let beats = beats.lock().unwrap().clone();
    (renewals.load(Ordering::SeqCst), beats)
}

#[tokio::test(start_paused = true)]
async fn lease_is_renewed_every_third_of_its_length() {
    // Renewals at 10 s, 20 s, … (LEASE / 3) while the handler runs.
    // 3 lease lengths and a bit (95 s): renewals at 10, 20, …, 90 → 9.
    let (n, beats) = renewals_for(LEASE * 3 + LEASE / 6).await;
    assert_eq!(n, 9);
    // Heartbeats every 10 s during the task carry it; one last beat at shutdown carries
    // the final counters and no task.
    assert_eq!(beats.len(), 10);
    assert!(beats[..9]
        .iter()
        .all(|(_, b)| b.current_task == Some(prismq_domain::TaskId(1))));
    assert_eq!(beats[9].1.current_task, None);
    assert_eq!(beats[9].1.tasks_done, 1);
    // Just under 3 lease lengths: the 90 s renewal never comes → 8.
    let (n, _) = renewals_for(LEASE * 3 - Duration::from_millis(1)).await;
    assert_eq!(n, 8);
    // Shorter than a third: no renewal at all.
    let (n, _) = renewals_for(LEASE / 3 - Duration::from_millis(1)).await;
    assert_eq!(n, 0);
}

#[tokio::test(start_paused = true)]
async fn a_transient_renewal_error_is_tolerated() {
    let mut q = MockTaskQueue::new();
    one_task_then_nothing(&mut q);
    let calls = AtomicU32::new(0);
    q.expect_renew_lease().returning(move |lease, _| {
        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            Err(PortError::Busy("locked".into()))
        } else {
            Ok(lease.clone())
        }
    });
    q.expect_complete().times(1).returning(|_, _| Ok(()));
    let h = Scripted::new("sleepy", vec![Step::Sleep(LEASE)]);
    let rt = runtime(
        q,
        workers(Arc::default()),
        support::registry(vec![h]),
        support::settings(),
    );
    let report = rt.run(DRAIN, CancellationToken::new()).await.unwrap();
    assert_eq!((report.completed, report.lost), (1, 0));
}

fn never_anything(q: &mut MockTaskQueue, claims: Arc<Mutex<Vec<Instant>>>) {
    q.expect_claim().returning(move |_| {
        claims.lock().unwrap().push(Instant::now());
        Ok(None)
    });
}

fn stop_after(d: Duration) -> CancellationToken {
    let t = CancellationToken::new();
    let c = t.clone();
    tokio::spawn(async move {
        tokio::time::sleep(d).await;
        c.cancel();
    });
    t
}

#[tokio::test(start_paused = true)]
async fn idle_heartbeats_on_their_own_interval_then_a_last_one_then_deregisters() {
    let mut q = MockTaskQueue::new();
    never_anything(&mut q, Arc::default());
    let beats = Arc::new(Mutex::new(Vec::new()));
    let h = Scripted::new("sleepy", vec![Step::Ok(0)]);
    let rt = runtime(
        q,
        workers(beats.clone()),
        support::registry(vec![h]),
        support::settings(),
    );
    let start = Instant::now();
    let report = rt
        .run(RunOptions::default(), stop_after(Duration::from_secs(35)))
        .await
        .unwrap();
    assert_eq!(report, prismq_app::RunReport::default());
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(35),
        "stops at once when idle"
    );
    let beats = beats.lock().unwrap();
    let at: Vec<u64> = beats.iter().map(|(t, _)| (*t - start).as_secs()).collect();
    // Every 10 s, then the final one at shutdown.
    assert_eq!(at, [10, 20, 30, 35]);
    assert!(beats.iter().all(|(_, b)| *b == Heartbeat::default()));
}

#[tokio::test(start_paused = true)]
async fn idle_backoff_doubles_with_jitter_up_to_the_maximum() {
    let mut q = MockTaskQueue::new();
    let claims = Arc::new(Mutex::new(Vec::new()));
    never_anything(&mut q, claims.clone());
    let h = Scripted::new("sleepy", vec![Step::Ok(0)]);
    let s = support::settings();
    let (min, max) = (s.idle_backoff_min, s.idle_backoff_max);
    let rt = runtime(q, workers(Arc::default()), support::registry(vec![h]), s);
    rt.run(RunOptions::default(), stop_after(Duration::from_secs(60)))
        .await
        .unwrap();
    let claims = claims.lock().unwrap();
    assert!(claims.len() > 12, "{}", claims.len());
    let mut ceiling = min;
    for pair in claims.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= (ceiling / 2).max(min) && gap <= ceiling,
            "{gap:?} outside [{:?}, {ceiling:?}]",
            ceiling / 2
        );
        ceiling = (ceiling * 2).min(max);
    }
    assert_eq!(ceiling, max);
}

#[tokio::test(start_paused = true)]
async fn backoff_resets_after_a_claim() {
    let mut q = MockTaskQueue::new();
    let claims = Arc::new(Mutex::new(Vec::new()));
    let c = claims.clone();
    q.expect_claim().returning(move |_| {
        let mut c = c.lock().unwrap();
        c.push(Instant::now());
        if c.len() == 6 {
            let (task, lease) = claimed_task(1, "quick");
            Ok(Some(ClaimedTask { task, lease }))
        } else {
            Ok(None)
        }
    });
    q.expect_start().times(1).returning(|_| Ok(()));
    q.expect_complete().times(1).returning(|_, _| Ok(()));
    let h = Scripted::new("quick", vec![Step::Ok(0)]);
    let rt = runtime(
        q,
        workers(Arc::default()),
        support::registry(vec![h]),
        support::settings(),
    );
    rt.run(RunOptions::default(), stop_after(Duration::from_secs(20)))
        .await
        .unwrap();
    let claims = claims.lock().unwrap();
    // Claim 6 got a task; claim 7 follows at once; claim 8 waits exactly the minimum again.
    assert!(
        claims[5] - claims[4] >= Duration::from_millis(400),
        "grown before the claim"
    );
    assert_eq!(claims[6] - claims[5], Duration::ZERO);
    assert_eq!(claims[7] - claims[6], Duration::from_millis(50));
}

#[tokio::test(start_paused = true)]
async fn transient_claim_errors_are_retried_never_fatal() {
    let mut q = MockTaskQueue::new();
    let n = AtomicU32::new(0);
    q.expect_claim().times(4).returning(move |_| {
        if n.fetch_add(1, Ordering::SeqCst) < 3 {
            Err(PortError::Unavailable("disk full".into()))
        } else {
            Ok(None)
        }
    });
    let h = Scripted::new("quick", vec![Step::Ok(0)]);
    let rt = runtime(
        q,
        workers(Arc::default()),
        support::registry(vec![h]),
        support::settings(),
    );
    let report = rt.run(DRAIN, CancellationToken::new()).await.unwrap();
    assert_eq!(report.claimed, 0);
}

#[tokio::test(start_paused = true)]
async fn a_claim_error_retrying_cannot_fix_ends_the_run_after_deregistering() {
    let mut q = MockTaskQueue::new();
    q.expect_claim().times(1).returning(|_| {
        Err(PortError::Invalid(ValidationError::new(
            "filter", "bad", "good",
        )))
    });
    let h = Scripted::new("quick", vec![Step::Ok(0)]);
    let rt = runtime(
        q,
        workers(Arc::default()),
        support::registry(vec![h]),
        support::settings(),
    );
    match rt.run(DRAIN, CancellationToken::new()).await.unwrap_err() {
        RuntimeError::Port {
            worker,
            operation,
            source,
        } => {
            assert_eq!(worker.as_str(), "testhost-7-0");
            assert_eq!(operation, "claim");
            assert!(matches!(source, PortError::Invalid(_)));
        }
        e => panic!("{e:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_forgotten_worker_registers_again_on_heartbeat() {
    let mut q = MockTaskQueue::new();
    never_anything(&mut q, Arc::default());
    let mut w = MockWorkerRegistry::new();
    w.expect_register().times(2).returning(|_| Ok(()));
    let n = AtomicU32::new(0);
    w.expect_heartbeat().returning(move |id, _| {
        if n.fetch_add(1, Ordering::SeqCst) == 0 {
            Err(PortError::NotFound(format!("worker {id}")))
        } else {
            Ok(())
        }
    });
    w.expect_deregister().times(1).returning(|_| Ok(()));
    let h = Scripted::new("quick", vec![Step::Ok(0)]);
    let rt = runtime(q, w, support::registry(vec![h]), support::settings());
    rt.run(RunOptions::default(), stop_after(Duration::from_secs(25)))
        .await
        .unwrap();
}
