//! The runtime end to end on a real SQLite file, in real time.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use prismq_app::{App, RunOptions};
use prismq_domain::{NewTask, TaskHandler, TaskStatus};

use crate::handlers::{Scripted, Step};
use crate::support::{self, tt};

fn app(
    dir: &tempfile::TempDir,
    handlers: Vec<Arc<dyn TaskHandler>>,
    extra: &[(&str, &str)],
) -> App {
    let db = dir.path().join("queue.db").display().to_string();
    let mut overrides = vec![
        ("database.path", db.as_str()),
        ("retry.base", "0s"),
        ("retry.cap", "0s"),
        ("worker.idle_backoff_min", "5ms"),
        ("worker.idle_backoff_max", "50ms"),
    ];
    overrides.extend_from_slice(extra);
    support::app_with(&overrides, handlers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drains_every_task_once_and_retries_until_success() {
    let dir = tempfile::tempdir().unwrap();
    let flaky = Scripted::new("flaky", vec![Step::Retryable, Step::Retryable, Step::Ok(3)]);
    let quick = Scripted::new("quick", vec![Step::Ok(1)]);
    let app = app(
        &dir,
        vec![flaky.clone(), quick.clone()],
        &[("worker.concurrency", "4")],
    );
    support::drain_flaky_and_quick(&app, &quick).await;
    assert_eq!(app.results.count(None).await.unwrap(), 43);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_releases_on_sqlite_without_using_an_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let long = Scripted::new("long", vec![Step::Sleep(Duration::from_secs(600))]);
    let app = app(
        &dir,
        vec![long.clone()],
        &[
            ("worker.concurrency", "1"),
            ("worker.shutdown_grace", "100ms"),
        ],
    );
    let id = app
        .enqueue(NewTask::new(tt("long"), serde_json::json!({})))
        .await
        .unwrap()
        .id;
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    let report = app.work(RunOptions::default(), shutdown).await.unwrap();
    assert_eq!((report.claimed, report.released), (1, 1));
    let task = app.queue.get(id).await.unwrap();
    assert_eq!((task.status, task.attempts), (TaskStatus::Queued, 0));
}

/// On SQLite a loop completes each task and claims its next in one transaction: the next
/// claim still counts against `max_tasks`, so the run stops at the cap with nothing left
/// claimed or running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chained_claims_respect_max_tasks_and_leave_nothing_claimed() {
    let dir = tempfile::tempdir().unwrap();
    let quick = Scripted::new("quick", vec![Step::Ok(1)]);
    let app = app(&dir, vec![quick.clone()], &[("worker.concurrency", "2")]);
    support::chained_claims_stop_at_the_cap(&app, &quick).await;
}

/// Three loops keeping eight tasks ahead each, on a real file: the claims of a batch and
/// the completions written with the next one's claims are transactions of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loops_keeping_tasks_ahead_drain_every_task_once_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let flaky = Scripted::new("flaky", vec![Step::Retryable, Step::Retryable, Step::Ok(3)]);
    let quick = Scripted::new("quick", vec![Step::Ok(1)]);
    let app = app(
        &dir,
        vec![flaky.clone(), quick.clone()],
        &[("worker.concurrency", "3"), ("worker.prefetch", "8")],
    );
    support::drain_and_check_the_logs(&app, &quick).await;
}

/// The default `worker.prefetch`, `auto`, on a real file: one loop holds quick tasks ahead
/// (the handler sees more than its own task running) and takes tasks slower than its budget
/// one at a time (only its own), every task once either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_prefetch_holds_quick_tasks_ahead_and_takes_slow_ones_one_at_a_time() {
    for (takes, tasks) in [(Duration::ZERO, 60), (Duration::from_millis(25), 8)] {
        let dir = tempfile::tempdir().unwrap();
        let app = |h| app(&dir, h, &[("worker.concurrency", "1")]);
        support::auto_prefetch_holds_quick_tasks_only(app, takes, tasks).await;
    }
}
