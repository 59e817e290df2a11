//! Whole-runtime scenarios on the testkit's `MemoryStore` (retries are due at once; the fake
//! clock stands still unless a test moves it).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use prismq_app::{RunOptions, RunReport, RuntimeError};
use prismq_domain::ports::{ResultStore, TaskEvent, TaskLog, WorkerHealth, WorkerRegistry};
use prismq_domain::{TaskHandler, TaskStatus};

use crate::handlers::{Scripted, Step};
use crate::support::{self, t0, tt, Mem};

const DRAIN: RunOptions = RunOptions {
    drain: true,
    max_tasks: None,
};

#[tokio::test(start_paused = true)]
async fn fails_twice_then_succeeds_after_three_attempts() {
    let mem = Mem::new();
    let h = Scripted::new("flaky", vec![Step::Retryable, Step::Retryable, Step::Ok(2)]);
    let rt = mem.runtime(support::registry(vec![h.clone()]), support::settings());
    let id = mem.enqueue("flaky").await;
    let report = rt.run(DRAIN, CancellationToken::new()).await.unwrap();
    assert_eq!(
        report,
        RunReport {
            claimed: 3,
            completed: 1,
            retried: 2,
            ..RunReport::default()
        }
    );
    let task = mem.task(id).await;
    assert_eq!(task.status, TaskStatus::Completed);
    assert_eq!(task.attempts, 3);
    assert_eq!(h.calls(), 3);
    let summary = task.summary.unwrap();
    assert_eq!(summary["summary"], "2 items");
    assert_eq!(summary["counters"]["pages"], 1);
    assert_eq!(summary["saved"]["inserted"], 2);
    let stored = mem.store.get("test", &format!("t{id}-0")).await.unwrap();
    assert_eq!(stored.last_task_id, Some(id));
    let ev = support::events(&mem, id).await;
    assert_eq!(ev.iter().filter(|e| **e == TaskEvent::Retried).count(), 2);
    assert_eq!(ev.last(), Some(&TaskEvent::Completed));
}

#[tokio::test(start_paused = true)]
async fn permanent_error_dead_letters_at_once() {
    let mem = Mem::new();
    let h = Scripted::new("doomed", vec![Step::Permanent]);
    let rt = mem.runtime(support::registry(vec![h.clone()]), support::settings());
    let id = mem.enqueue("doomed").await;
    let report = rt.run(DRAIN, CancellationToken::new()).await.unwrap();
    assert_eq!((report.claimed, report.failed, report.retried), (1, 1, 0));
    let task = mem.task(id).await;
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.attempts, 1);
    assert_eq!(task.last_error.as_deref(), Some("never"));
}

#[tokio::test(start_paused = true)]
async fn deferral_uses_no_attempt() {
    let mem = Mem::new();
    let until = support::t0()
        .checked_add(jiff::SignedDuration::from_hours(1))
        .unwrap();
    let h = Scripted::new("quota", vec![Step::DeferUntil(until), Step::Ok(0)]);
    let rt = mem.runtime(support::registry(vec![h.clone()]), support::settings());
    let id = mem.enqueue("quota").await;
    let report = rt.run(DRAIN, CancellationToken::new()).await.unwrap();
    assert_eq!((report.claimed, report.deferred), (1, 1));
    let task = mem.task(id).await;
    assert_eq!(task.status, TaskStatus::Queued);
    assert_eq!(task.attempts, 0, "the deferral gave the attempt back");
    assert_eq!(task.run_after, until);

    // Once the quota resets, the task runs and completes on its first counted attempt.
    mem.clock.set(until);
    let report = rt.run(DRAIN, CancellationToken::new()).await.unwrap();
    assert_eq!(report.completed, 1);
    assert_eq!(mem.task(id).await.attempts, 1);
}

#[tokio::test(start_paused = true)]
async fn a_panic_fails_the_attempt_and_the_loop_lives_on() {
    let mem = Mem::new();
    let h = Scripted::new("panicky", vec![Step::Panic, Step::Ok(1)]);
    let rt = mem.runtime(support::registry(vec![h.clone()]), support::settings());
    let id = mem.enqueue("panicky").await;
    let report = rt.run(DRAIN, CancellationToken::new()).await.unwrap();
    assert_eq!(
        (report.claimed, report.retried, report.completed),
        (2, 1, 1)
    );
    let task = mem.task(id).await;
    assert_eq!(task.status, TaskStatus::Completed);
    assert_eq!(task.attempts, 2);
    // The first attempt's error was recorded in the log with the panic message.
    let logs = TaskLog::list(&mem.store, id).await.unwrap();
    let retried = logs.iter().find(|r| r.event == TaskEvent::Retried).unwrap();
    assert!(
        retried.message.contains("boom in handler"),
        "{}",
        retried.message
    );
}

#[tokio::test(start_paused = true)]
async fn a_handler_that_always_panics_is_dead_lettered_after_its_attempts() {
    let mem = Mem::new();
    let h = Scripted::new("panicky", vec![Step::Panic]);
    let rt = mem.runtime(support::registry(vec![h.clone()]), support::settings());
    let id = mem.enqueue("panicky").await;
    let report = rt.run(DRAIN, CancellationToken::new()).await.unwrap();
    assert_eq!((report.claimed, report.retried, report.failed), (3, 2, 1));
    assert_eq!(mem.task(id).await.status, TaskStatus::Failed);
}

#[tokio::test(start_paused = true)]
async fn handler_timeout_cancels_and_fails_retryable() {
    let mem = Mem::new();
    let h = Scripted::new("slow", vec![Step::UntilCancelled, Step::Ok(0)]);
    let mut s = support::settings();
    s.handler_timeout = Duration::from_secs(5);
    let rt = mem.runtime(support::registry(vec![h.clone()]), s);
    let id = mem.enqueue("slow").await;
    let started = tokio::time::Instant::now();
    let report = rt.run(DRAIN, CancellationToken::new()).await.unwrap();
    assert_eq!(
        (report.claimed, report.retried, report.completed),
        (2, 1, 1)
    );
    assert!(h.signals.lock().unwrap()[0].is_cancelled());
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    let logs = TaskLog::list(&mem.store, id).await.unwrap();
    let retried = logs.iter().find(|r| r.event == TaskEvent::Retried).unwrap();
    assert!(
        retried.message.contains("handler_timeout (5s)"),
        "{}",
        retried.message
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_releases_unfinished_tasks_without_using_attempts() {
    let mem = Mem::new();
    let h = Scripted::new("long", vec![Step::Sleep(Duration::from_secs(3600))]);
    let mut s = support::settings();
    s.concurrency = 2;
    s.shutdown_grace = Duration::from_secs(5);
    let rt = mem.runtime(support::registry(vec![h.clone()]), s);
    let a = mem.enqueue("long").await;
    let b = mem.enqueue("long").await;
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        trigger.cancel();
    });
    let started = tokio::time::Instant::now();
    let report = rt.run(RunOptions::default(), shutdown).await.unwrap();
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(7),
        "1 s of work + 5 s grace + 1 s for a handler told to stop to return (this one ignores it)"
    );
    assert_eq!((report.claimed, report.released), (2, 2));
    assert!(h.all_cancelled());
    for id in [a, b] {
        let task = mem.task(id).await;
        assert_eq!(task.status, TaskStatus::Queued);
        assert_eq!(task.attempts, 0);
        assert_eq!(
            support::events(&mem, id).await.last(),
            Some(&TaskEvent::Released)
        );
    }
    // Both loops deregistered.
    let workers = WorkerRegistry::list(&mem.store, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(workers.len(), 2);
    assert!(workers.iter().all(|w| w.health == WorkerHealth::Stopped));
    let ids: Vec<&str> = workers.iter().map(|w| w.info.id.as_str()).collect();
    assert_eq!(ids, ["testhost-7-0", "testhost-7-1"]);
}

#[tokio::test(start_paused = true)]
async fn in_flight_handlers_finish_within_the_grace() {
    let mem = Mem::new();
    let h = Scripted::new("short", vec![Step::Sleep(Duration::from_secs(3))]);
    let rt = mem.runtime(support::registry(vec![h.clone()]), support::settings());
    let id = mem.enqueue("short").await;
    mem.enqueue("short").await;
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        trigger.cancel();
    });
    let report = rt.run(RunOptions::default(), shutdown).await.unwrap();
    assert_eq!(
        (report.claimed, report.completed, report.released),
        (1, 1, 0),
        "no claim after the signal"
    );
    assert_eq!(mem.task(id).await.status, TaskStatus::Completed);
}

#[tokio::test(start_paused = true)]
async fn a_lost_lease_cancels_the_handler_and_discards_its_result() {
    let mem = Mem::new();
    let h = Scripted::new("long", vec![Step::UntilCancelled]);
    let rt = mem.runtime(support::registry(vec![h.clone()]), support::settings());
    let id = mem.enqueue("long").await;
    let store = mem.store.clone();
    tokio::spawn(async move {
        // An operator cancels the task mid-run; the next renewal (at 10 s) finds out.
        tokio::time::sleep(Duration::from_secs(5)).await;
        prismq_domain::ports::TaskQueue::cancel(&store, id)
            .await
            .unwrap();
    });
    let started = tokio::time::Instant::now();
    let report = rt.run(DRAIN, CancellationToken::new()).await.unwrap();
    assert_eq!(started.elapsed(), support::LEASE / 3);
    assert_eq!((report.claimed, report.lost), (1, 1));
    assert!(h.all_cancelled());
    assert_eq!(mem.task(id).await.status, TaskStatus::Cancelled);
}

#[tokio::test(start_paused = true)]
async fn drain_runs_every_task_exactly_once_with_many_loops() {
    let mem = Mem::new();
    let h = Scripted::new("quick", vec![Step::Sleep(Duration::from_millis(10))]);
    let mut s = support::settings();
    s.concurrency = 4;
    let rt = mem.runtime(support::registry(vec![h.clone()]), s);
    let mut ids = Vec::new();
    for _ in 0..25 {
        ids.push(mem.enqueue("quick").await);
    }
    let report = rt.run(DRAIN, CancellationToken::new()).await.unwrap();
    assert_eq!((report.claimed, report.completed), (25, 25));
    assert_eq!(h.calls(), 25);
    for id in ids {
        assert_eq!(mem.task(id).await.status, TaskStatus::Completed);
    }
}

#[tokio::test(start_paused = true)]
async fn max_tasks_stops_after_that_many_claims() {
    let mem = Mem::new();
    let h = Scripted::new("quick", vec![Step::Ok(0)]);
    let mut s = support::settings();
    s.concurrency = 2;
    let rt = mem.runtime(support::registry(vec![h.clone()]), s);
    for _ in 0..5 {
        mem.enqueue("quick").await;
    }
    let opts = RunOptions {
        drain: false,
        max_tasks: Some(3),
    };
    let report = rt.run(opts, CancellationToken::new()).await.unwrap();
    assert_eq!((report.claimed, report.completed), (3, 3));
    let stats = prismq_domain::ports::TaskQueue::stats(&mem.store)
        .await
        .unwrap();
    assert_eq!(stats.total(TaskStatus::Queued), 2);
}

#[tokio::test(start_paused = true)]
async fn only_configured_task_types_are_claimed() {
    let mem = Mem::new();
    let a = Scripted::new("type_a", vec![Step::Ok(0)]);
    let b = Scripted::new("type_b", vec![Step::Ok(0)]);
    let mut s = support::settings();
    s.task_types = vec![tt("type_a")];
    let rt = mem.runtime(support::registry(vec![a.clone(), b.clone()]), s);
    mem.enqueue("type_a").await;
    let other = mem.enqueue("type_b").await;
    let report = rt.run(DRAIN, CancellationToken::new()).await.unwrap();
    assert_eq!(report.completed, 1);
    assert_eq!((a.calls(), b.calls()), (1, 0));
    assert_eq!(mem.task(other).await.status, TaskStatus::Queued);
    let workers = WorkerRegistry::list(&mem.store, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(workers[0].info.capabilities, vec![tt("type_a")]);
}

#[tokio::test]
async fn set_up_errors() {
    let mem = Mem::new();
    let rt = mem.runtime(support::registry(vec![]), support::settings());
    assert_eq!(
        rt.run(DRAIN, CancellationToken::new()).await.unwrap_err(),
        RuntimeError::NoHandlers
    );
    let h: Arc<dyn TaskHandler> = Scripted::new("type_a", vec![Step::Ok(0)]);
    let mut s = support::settings();
    s.task_types = vec![tt("type_z")];
    let rt = mem.runtime(support::registry(vec![h]), s);
    match rt.run(DRAIN, CancellationToken::new()).await.unwrap_err() {
        RuntimeError::UnknownTaskType {
            task_type,
            registered,
        } => {
            assert_eq!(task_type, "type_z");
            assert_eq!(registered, "type_a");
        }
        e => panic!("{e:?}"),
    }
    let _ = t0();
}

/// Follow-ups are enqueued after the run's items are saved: one whose channel has no
/// baseline is enqueued (and run by the same drain), one whose channel has a baseline is
/// skipped, one its handler refuses (an unknown type) is noted in the task's log, and a
/// second run asking for the same idempotency key gets the existing task back.
#[tokio::test(start_paused = true)]
async fn follow_ups_are_enqueued_unless_their_channel_has_a_baseline() {
    use prismq_domain::{FollowUp, NewTask};
    let mem = Mem::new();
    let old = t0()
        .checked_sub(jiff::SignedDuration::from_hours(40 * 24))
        .unwrap();
    let baselined: Vec<prismq_domain::ContentItem> = (0..10)
        .map(|i| {
            let mut it = prismq_domain::ContentItem::new("test_source", format!("b{i}"), "t");
            it.channel_id = Some("UCbase".into());
            it.published_at = Some(old);
            it.metrics.views = Some(1_000);
            it.extra.insert("is_short".into(), serde_json::json!(false));
            it
        })
        .collect();
    mem.store.save(None, &baselined).await.unwrap();
    assert!(mem
        .store
        .baselines("UCbase")
        .await
        .unwrap()
        .iter()
        .any(|b| b.baseline.median.is_some()));
    let follow = |kind: &str, key: &str, channel: Option<&str>| {
        let mut task = NewTask::new(tt(kind), serde_json::json!({}));
        task.idempotency_key = Some(key.into());
        FollowUp {
            task,
            unless_channel_has_baseline: channel.map(str::to_owned),
        }
    };
    let asks = vec![
        follow("target", "baseline:UCnone", Some("UCnone")),
        follow("target", "baseline:UCbase", Some("UCbase")),
        follow("nosuch", "other", None),
    ];
    let finder = Scripted::new("finder", vec![Step::FollowUps(asks)]);
    let target = Scripted::new("target", vec![Step::Ok(0)]);
    let rt = mem.runtime(
        support::registry(vec![finder.clone(), target.clone()]),
        support::settings(),
    );
    let first = mem.enqueue("finder").await;
    let report = rt.run(DRAIN, CancellationToken::new()).await.unwrap();
    assert_eq!(
        report.completed, 2,
        "the finder and the one follow-up it got"
    );
    assert_eq!(target.calls(), 1);
    let summary = mem.task(first).await.summary.unwrap();
    let f = &summary["follow_ups"];
    assert_eq!(
        (f["skipped"].as_u64(), f["refused"].as_u64()),
        (Some(1), Some(1))
    );
    let enqueued = f["enqueued"][0].as_i64().unwrap();
    let made = mem.task(prismq_domain::TaskId(enqueued)).await;
    assert_eq!(made.task_type, tt("target"));
    assert_eq!(made.idempotency_key.as_deref(), Some("baseline:UCnone"));
    assert_eq!(made.status, TaskStatus::Completed);
    let log = TaskLog::list(&mem.store, first).await.unwrap();
    assert!(
        log.iter()
            .any(|r| r.message.contains("follow-up nosuch refused")),
        "{log:?}"
    );
    // A second run asking for the same key: the existing task, nothing new.
    let second = mem.enqueue("finder").await;
    rt.run(DRAIN, CancellationToken::new()).await.unwrap();
    let f = mem.task(second).await.summary.unwrap()["follow_ups"].clone();
    assert_eq!(f["duplicates"], serde_json::json!([enqueued]));
    assert_eq!(f["enqueued"], serde_json::json!([]));
    assert_eq!(target.calls(), 1);
}
