//! The runtime end to end on a real PostgreSQL server, in real time: on PostgreSQL a loop
//! taking one task at a time claims and starts in one statement and completes a task and
//! claims its next in one statement, and a loop keeping tasks ahead claims a batch in one
//! statement and completes it in another, so these check what both paths leave in the tables.
//!
//! Needs the test server (`source scripts/services/postgres.sh`): the tests fail, never
//! skip, without it.

use std::sync::atomic::{AtomicU32, Ordering};

use prismq_app::App;
use prismq_domain::TaskHandler;

use crate::handlers::{Scripted, Step};
use crate::support;

/// The test server's URL.
fn url() -> String {
    match std::env::var("PRISMQ_TEST_POSTGRES_URL") {
        Ok(u) if !u.trim().is_empty() => u,
        _ => panic!(
            "PRISMQ_TEST_POSTGRES_URL is not set: run `source scripts/services/postgres.sh` first"
        ),
    }
}

/// An app on a schema of its own on the test server.
fn app(tag: &str, handlers: Vec<std::sync::Arc<dyn TaskHandler>>, concurrency: &str) -> App {
    app_with(tag, handlers, &[("worker.concurrency", concurrency)])
}

/// [`app`] with these settings on top.
fn app_with(
    tag: &str,
    handlers: Vec<std::sync::Arc<dyn TaskHandler>>,
    extra: &[(&str, &str)],
) -> App {
    static N: AtomicU32 = AtomicU32::new(0);
    let schema = format!(
        "t_rt_{tag}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let url = url();
    let overrides = [
        ("database.url", url.as_str()),
        ("database.schema", schema.as_str()),
        ("retry.base", "0s"),
        ("retry.cap", "0s"),
        ("worker.idle_backoff_min", "5ms"),
        ("worker.idle_backoff_max", "50ms"),
    ];
    let mut overrides = overrides.to_vec();
    overrides.extend_from_slice(extra);
    support::app_with(&overrides, handlers)
}

/// Four loops taking one task at a time (`worker.prefetch = 1`) drain 40 quick tasks and one
/// that fails twice: every task runs to completion once, and each completed task's log reads enqueued, claimed, started, completed in that
/// order (the claim and start come from one statement, most completions with the next claim).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drains_every_task_once_with_chained_claims_on_postgresql() {
    let flaky = Scripted::new("flaky", vec![Step::Retryable, Step::Retryable, Step::Ok(3)]);
    let quick = Scripted::new("quick", vec![Step::Ok(1)]);
    let app = app_with(
        "drain",
        vec![flaky.clone(), quick.clone()],
        &[("worker.concurrency", "4"), ("worker.prefetch", "1")],
    );
    assert!(app.queue.completes_and_claims_at_once());
    support::drain_and_check_the_logs(&app, &quick).await;
}

/// A claim made with a completion counts against `max_tasks`: the run stops at the cap
/// with nothing left claimed or running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chained_claims_respect_max_tasks_on_postgresql() {
    let quick = Scripted::new("quick", vec![Step::Ok(1)]);
    let app = app("cap", vec![quick.clone()], "2");
    support::chained_claims_stop_at_the_cap(&app, &quick).await;
}

/// Loops keeping tasks ahead on PostgreSQL, where a batch's claims are one statement and its
/// completions another: every task still runs once, and each log reads in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loops_keeping_tasks_ahead_drain_every_task_once_on_postgresql() {
    let flaky = Scripted::new("flaky", vec![Step::Retryable, Step::Retryable, Step::Ok(3)]);
    let quick = Scripted::new("quick", vec![Step::Ok(1)]);
    let app = app_with(
        "ahead",
        vec![flaky.clone(), quick.clone()],
        &[("worker.concurrency", "3"), ("worker.prefetch", "8")],
    );
    support::drain_and_check_the_logs(&app, &quick).await;
}

/// The default `worker.prefetch`, `auto`, on PostgreSQL (which claims and completes a batch
/// in a statement each): quick tasks are held ahead, slow ones taken one at a time. Loops'
/// completions are not gathered behind one writer there (the pool writes them in parallel).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_prefetch_holds_quick_tasks_ahead_on_postgresql() {
    let probe = app("auto", vec![], "1");
    assert!(probe.queue.claims_in_batches());
    assert!(!probe.queue.completes_in_batches());
    for (takes, tasks) in [
        (std::time::Duration::ZERO, 60),
        (std::time::Duration::from_millis(25), 8),
    ] {
        let app = |h| app("auto", h, "1");
        support::auto_prefetch_holds_quick_tasks_only(app, takes, tasks).await;
    }
}
