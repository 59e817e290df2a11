//! The gate at work in whole runs: a source that keeps failing opens its type's circuit
//! breaker (no more attempts burned until a probe), a spent quota bucket means no claims of
//! its types at all, both show in the workers' heartbeats, and the final counters are
//! written at shutdown.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use prismq_app::{BreakerSettings, RunOptions, WorkerSettings};
use prismq_domain::ports::{
    HoldReason, QuotaLedger, TaskEvent, TaskLog, TaskQueue, WorkerHealth, WorkerRegistry,
};
use prismq_domain::{
    Task, TaskContext, TaskError, TaskHandler, TaskId, TaskResult, TaskStatus, TaskType, Timestamp,
    ValidationError,
};

use crate::handlers::{Scripted, Step};
use crate::support::{self, t0, tt, Mem};

/// A source that is up or down, charging `buckets`.
struct Source {
    name: &'static str,
    up: AtomicBool,
    calls: AtomicU32,
    buckets: Vec<String>,
}

impl Source {
    fn new(name: &'static str, up: bool, buckets: &[&str]) -> Arc<Self> {
        Arc::new(Source {
            name,
            up: AtomicBool::new(up),
            calls: AtomicU32::new(0),
            buckets: buckets.iter().map(|b| (*b).to_owned()).collect(),
        })
    }

    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl TaskHandler for Source {
    fn task_type(&self) -> TaskType {
        tt(self.name)
    }

    fn validate(&self, _: &Map<String, Value>) -> Result<(), ValidationError> {
        Ok(())
    }

    async fn handle(&self, _: &Task, _: &TaskContext) -> Result<TaskResult, TaskError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.up.load(Ordering::SeqCst) {
            Ok(TaskResult::default())
        } else {
            Err(TaskError::retryable("could not reach the source"))
        }
    }

    fn quota_buckets(&self) -> Vec<String> {
        self.buckets.clone()
    }
}

fn breaker_settings() -> WorkerSettings {
    WorkerSettings {
        breaker: BreakerSettings {
            threshold: 3,
            cool_down: Duration::from_secs(60),
            max_cool_down: Duration::from_secs(120),
        },
        ..support::settings()
    }
}

/// A run that ends when nothing is left to claim.
const DRAIN: RunOptions = RunOptions {
    drain: true,
    max_tasks: None,
};

/// The store's ledger with the `api.general` bucket marked spent until 20 h after `t0`.
async fn general_bucket_spent(mem: &Mem) -> (Arc<dyn QuotaLedger>, Timestamp) {
    let ledger: Arc<dyn QuotaLedger> = Arc::new(mem.store.clone());
    let reset = t0()
        .checked_add(jiff::SignedDuration::from_hours(20))
        .unwrap();
    ledger.mark_exhausted("api.general", reset).await.unwrap();
    (ledger, reset)
}

async fn enqueue_n(mem: &Mem, task_type: &str, n: usize, max_attempts: u32) -> Vec<TaskId> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let mut t = prismq_testkit::fixtures::new_task(task_type);
        t.max_attempts = Some(max_attempts);
        ids.push(mem.store.enqueue(t).await.unwrap().id);
    }
    ids
}

async fn attempts(mem: &Mem, ids: &[TaskId]) -> (u32, usize) {
    let mut used = 0;
    let mut failed = 0;
    for id in ids {
        let t = mem.task(*id).await;
        used += t.attempts;
        failed += usize::from(t.status == TaskStatus::Failed);
    }
    (used, failed)
}

async fn worker(mem: &Mem) -> prismq_domain::ports::WorkerRecord {
    WorkerRegistry::list(&mem.store, Duration::from_secs(3600))
        .await
        .unwrap()
        .remove(0)
}

async fn statuses(mem: &Mem, ids: &[TaskId]) -> Vec<TaskStatus> {
    let mut out = Vec::new();
    for id in ids {
        out.push(mem.task(*id).await.status);
    }
    out
}

#[tokio::test(start_paused = true)]
async fn an_outage_opens_the_breaker_and_burns_no_attempts_until_a_probe_succeeds() {
    let mem = Mem::new();
    let feed = Source::new("feed", false, &[]);
    let local = Scripted::new("local", vec![Step::Ok(0)]);
    let rt = mem.runtime(
        support::registry(vec![feed.clone(), local.clone()]),
        breaker_settings(),
    );
    let feeds = enqueue_n(&mem, "feed", 20, 10).await;
    let locals = enqueue_n(&mem, "local", 5, 3).await;
    let stop = CancellationToken::new();
    let run = tokio::spawn({
        let stop = stop.clone();
        async move { rt.run(RunOptions::default(), stop).await }
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    // Three transient failures opened the breaker: no fourth call, other types still run.
    assert_eq!(feed.calls(), 3);
    assert_eq!(attempts(&mem, &feeds).await, (3, 0));
    assert_eq!(local.calls(), 5);
    assert!(statuses(&mem, &locals)
        .await
        .iter()
        .all(|s| *s == TaskStatus::Completed));
    // Heartbeats say so.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let w = worker(&mem).await;
    assert_eq!(w.heartbeat.held.len(), 1, "{:?}", w.heartbeat);
    assert_eq!(w.heartbeat.held[0].task_type, tt("feed"));
    assert_eq!(
        w.heartbeat.held[0].reason,
        HoldReason::Breaker { failures: 3 }
    );
    assert!(w.heartbeat.held[0].until.is_some());
    // After the cool-down one probe is let through; it fails, the breaker opens for 120 s.
    tokio::time::sleep(Duration::from_secs(52)).await;
    assert_eq!(feed.calls(), 4, "one probe after 60 s");
    tokio::time::sleep(Duration::from_secs(100)).await;
    assert_eq!(feed.calls(), 4, "no claim while open again");
    assert_eq!(attempts(&mem, &feeds).await, (4, 0));
    // The source is back: the next probe succeeds and closes the breaker; all complete.
    feed.up.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(40)).await;
    assert!(statuses(&mem, &feeds)
        .await
        .iter()
        .all(|s| *s == TaskStatus::Completed));
    assert_eq!(attempts(&mem, &feeds).await, (20 + 4, 0));
    tokio::time::sleep(Duration::from_secs(10)).await;
    let w = worker(&mem).await;
    assert!(w.heartbeat.held.is_empty(), "{:?}", w.heartbeat);
    stop.cancel();
    let report = run.await.unwrap().unwrap();
    assert_eq!(
        (report.completed, report.retried, report.failed),
        (25, 4, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn one_success_resets_the_count_of_consecutive_failures() {
    let mem = Mem::new();
    // fail, fail, succeed, fail, fail, succeed, …: never three in a row.
    let h = Scripted::new(
        "wobbly",
        vec![
            Step::Retryable,
            Step::Retryable,
            Step::Ok(0),
            Step::Retryable,
            Step::Retryable,
            Step::Ok(0),
            Step::Ok(0),
        ],
    );
    let rt = mem.runtime(support::registry(vec![h.clone()]), breaker_settings());
    let ids = enqueue_n(&mem, "wobbly", 3, 10).await;
    let started = tokio::time::Instant::now();
    rt.run(DRAIN, CancellationToken::new()).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(60), "never held");
    assert!(statuses(&mem, &ids)
        .await
        .iter()
        .all(|s| *s == TaskStatus::Completed));
    assert_eq!(h.calls(), 7);
}

#[tokio::test(start_paused = true)]
async fn a_spent_quota_bucket_means_no_claims_of_its_types() {
    let mem = Mem::new();
    let metered = Source::new("metered", true, &["api.general"]);
    let other = Source::new("other_metered", true, &["api.search"]);
    let local = Scripted::new("local", vec![Step::Ok(0)]);
    let (ledger, _) = general_bucket_spent(&mem).await;
    let rt = mem
        .runtime(
            support::registry(vec![metered.clone(), other.clone(), local.clone()]),
            support::settings(),
        )
        .with_quota(ledger.clone());
    let held = enqueue_n(&mem, "metered", 50, 3).await;
    let free = enqueue_n(&mem, "other_metered", 5, 3).await;
    let locals = enqueue_n(&mem, "local", 5, 3).await;
    let report = rt.run(DRAIN, CancellationToken::new()).await.unwrap();
    // Not one claim of the held type: the other types ran.
    assert_eq!((report.claimed, report.deferred), (10, 0));
    assert_eq!(metered.calls(), 0);
    assert_eq!(other.calls(), 5);
    assert_eq!(local.calls(), 5);
    for id in &held {
        let t = mem.task(*id).await;
        assert_eq!((t.status, t.attempts), (TaskStatus::Queued, 0));
        let log = TaskLog::list(&mem.store, *id).await.unwrap();
        assert!(log.iter().all(|e| e.event != TaskEvent::Claimed), "{log:?}");
    }
    assert!(statuses(&mem, &free)
        .await
        .iter()
        .chain(statuses(&mem, &locals).await.iter())
        .all(|s| *s == TaskStatus::Completed));
    // The bucket resets: the type is claimed again.
    mem.clock.advance(Duration::from_secs(21 * 3600));
    let rt = mem
        .runtime(
            support::registry(vec![metered.clone(), other.clone(), local.clone()]),
            support::settings(),
        )
        .with_quota(ledger);
    let report = rt.run(DRAIN, CancellationToken::new()).await.unwrap();
    assert_eq!(report.completed, 50);
}

#[tokio::test(start_paused = true)]
async fn a_spent_bucket_shows_in_the_heartbeat_with_its_reset() {
    let mem = Mem::new();
    let metered = Source::new("metered", true, &["api.general"]);
    let (ledger, reset) = general_bucket_spent(&mem).await;
    let rt = mem
        .runtime(
            support::registry(vec![metered.clone()]),
            support::settings(),
        )
        .with_quota(ledger);
    enqueue_n(&mem, "metered", 3, 3).await;
    let stop = CancellationToken::new();
    let run = tokio::spawn({
        let stop = stop.clone();
        async move { rt.run(RunOptions::default(), stop).await }
    });
    tokio::time::sleep(Duration::from_secs(15)).await;
    let w = worker(&mem).await;
    assert_eq!(w.heartbeat.held.len(), 1);
    assert_eq!(w.heartbeat.held[0].until, Some(reset));
    assert_eq!(
        w.heartbeat.held[0].reason,
        HoldReason::Quota {
            bucket: "api.general".into()
        }
    );
    stop.cancel();
    assert_eq!(run.await.unwrap().unwrap().claimed, 0);
    assert_eq!(metered.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_final_counters_are_written_at_shutdown() {
    let mem = Mem::new();
    let h = Scripted::new("quick", vec![Step::Ok(0), Step::Permanent, Step::Ok(0)]);
    let settings = WorkerSettings {
        heartbeat_interval: Duration::from_secs(3600),
        ..support::settings()
    };
    let rt = mem.runtime(support::registry(vec![h.clone()]), settings);
    enqueue_n(&mem, "quick", 13, 3).await;
    rt.run(DRAIN, CancellationToken::new()).await.unwrap();
    let w = worker(&mem).await;
    assert_eq!(w.health, WorkerHealth::Stopped);
    assert_eq!((w.heartbeat.tasks_done, w.heartbeat.tasks_failed), (12, 1));
    assert_eq!(w.heartbeat.current_task, None);
}

/// `collect` runs one task: the gate holds nothing back, so a spent quota defers the task
/// (and `collect` can say until when) instead of leaving it unclaimed.
#[tokio::test(start_paused = true)]
async fn a_run_limited_to_one_task_claims_it_despite_a_spent_bucket() {
    let mem = Mem::new();
    let metered = Source::new("metered", true, &["api.general"]);
    let (ledger, _) = general_bucket_spent(&mem).await;
    let id = enqueue_n(&mem, "metered", 1, 3).await[0];
    let settings = WorkerSettings {
        only_task: Some(id),
        ..support::settings()
    };
    let rt = mem
        .runtime(support::registry(vec![metered.clone()]), settings)
        .with_quota(ledger);
    let report = rt.run(DRAIN, CancellationToken::new()).await.unwrap();
    assert_eq!(report.claimed, 1);
    assert_eq!(
        TaskQueue::get(&mem.store, id).await.unwrap().status,
        TaskStatus::Completed
    );
}
