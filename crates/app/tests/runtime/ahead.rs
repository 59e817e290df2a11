//! Loops that keep tasks ahead (`worker.prefetch` above 1): every task still runs once, a
//! long task does not keep finished ones unwritten, held tasks are handed back on shutdown
//! and when their type's breaker opens, a held task's lease is renewed before it starts,
//! `max_tasks` caps what is claimed ahead, and schedules fire between held tasks.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use prismq_app::{BreakerSettings, RunOptions, RunReport, WorkerSettings};
use prismq_domain::ports::{ClaimFilter, ClaimRequest, TaskEvent, TaskQueue};
use prismq_domain::{ClaimingStrategy, TaskStatus, WorkerId};

use crate::handlers::{Scripted, Step};
use crate::support::{self, Mem};

const DRAIN: RunOptions = RunOptions {
    drain: true,
    max_tasks: None,
};

fn ahead(loops: usize, prefetch: usize) -> WorkerSettings {
    WorkerSettings {
        concurrency: loops,
        prefetch: prismq_app::config::Prefetch::AtMost(prefetch),
        ..support::settings()
    }
}

#[tokio::test(start_paused = true)]
async fn every_task_runs_once_with_loops_keeping_tasks_ahead() {
    let mem = Mem::new();
    let h = Scripted::new("quick", vec![Step::Ok(1)]);
    let rt = mem.runtime(support::registry(vec![h.clone()]), ahead(3, 4));
    let mut ids = Vec::new();
    for _ in 0..30 {
        ids.push(mem.enqueue("quick").await);
    }
    let report = rt.run(DRAIN, CancellationToken::new()).await.unwrap();
    assert_eq!(
        report,
        RunReport {
            claimed: 30,
            completed: 30,
            ..RunReport::default()
        }
    );
    assert_eq!(h.calls(), 30);
    for id in ids {
        let task = mem.task(id).await;
        assert_eq!((task.status, task.attempts), (TaskStatus::Completed, 1));
        assert_eq!(task.summary.unwrap()["saved"]["inserted"], 1);
        assert_eq!(
            support::events(&mem, id).await,
            vec![
                TaskEvent::Enqueued,
                TaskEvent::Claimed,
                TaskEvent::Started,
                TaskEvent::Completed
            ]
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_long_task_does_not_keep_the_finished_ones_unwritten() {
    let mem = Mem::new();
    let h = Scripted::new(
        "mixed",
        vec![
            Step::Ok(0),
            Step::Ok(0),
            Step::Sleep(Duration::from_secs(60)),
        ],
    );
    let rt = mem.runtime(support::registry(vec![h.clone()]), ahead(1, 3));
    let ids = [
        mem.enqueue("mixed").await,
        mem.enqueue("mixed").await,
        mem.enqueue("mixed").await,
    ];
    let run = tokio::spawn(async move { rt.run(DRAIN, CancellationToken::new()).await });
    // Well before the long task ends (and within a second of its start), the two tasks
    // that finished before it are written.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(mem.task(ids[0]).await.status, TaskStatus::Completed);
    assert_eq!(mem.task(ids[1]).await.status, TaskStatus::Completed);
    assert_eq!(mem.task(ids[2]).await.status, TaskStatus::Running);
    let report = run.await.unwrap().unwrap();
    assert_eq!((report.claimed, report.completed), (3, 3));
    assert_eq!(mem.task(ids[2]).await.status, TaskStatus::Completed);
}

#[tokio::test(start_paused = true)]
async fn shutdown_hands_back_the_held_tasks_unrun_without_using_attempts() {
    let mem = Mem::new();
    let h = Scripted::new("long", vec![Step::Sleep(Duration::from_secs(3600))]);
    let mut s = ahead(1, 4);
    s.shutdown_grace = Duration::from_secs(5);
    let rt = mem.runtime(support::registry(vec![h.clone()]), s);
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(mem.enqueue("long").await);
    }
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        trigger.cancel();
    });
    let report = rt.run(RunOptions::default(), shutdown).await.unwrap();
    assert_eq!((report.claimed, report.released), (4, 4));
    assert_eq!(h.calls(), 1, "the held tasks never started");
    for id in ids {
        let task = mem.task(id).await;
        assert_eq!((task.status, task.attempts), (TaskStatus::Queued, 0));
        assert_eq!(
            support::events(&mem, id).await.last(),
            Some(&TaskEvent::Released)
        );
    }
}

#[tokio::test(start_paused = true)]
async fn max_tasks_caps_the_tasks_claimed_ahead() {
    let mem = Mem::new();
    let h = Scripted::new("quick", vec![Step::Ok(0)]);
    let rt = mem.runtime(support::registry(vec![h.clone()]), ahead(2, 4));
    for _ in 0..10 {
        mem.enqueue("quick").await;
    }
    let opts = RunOptions {
        drain: false,
        max_tasks: Some(6),
    };
    let report = rt.run(opts, CancellationToken::new()).await.unwrap();
    assert_eq!((report.claimed, report.completed), (6, 6));
    assert_eq!(h.calls(), 6);
    let stats = TaskQueue::stats(&mem.store).await.unwrap();
    assert_eq!(stats.total(TaskStatus::Queued), 4);
    assert_eq!(stats.total(TaskStatus::Running), 0);
}

/// The second task waits 25 s behind the first, past a third of its 30 s lease: its lease
/// is renewed before it starts, so a claim at 32 s (after the lease it was claimed with
/// would have lapsed, before the handler's own first renewal at 35 s) cannot take it.
#[tokio::test(start_paused = true)]
async fn a_held_task_that_waited_has_its_lease_renewed_before_it_starts() {
    let mem = Mem::new();
    let h = Scripted::new(
        "slow",
        vec![
            Step::Sleep(Duration::from_secs(25)),
            Step::Sleep(Duration::from_secs(10)),
        ],
    );
    let rt = mem.runtime(support::registry(vec![h.clone()]), ahead(1, 2));
    let first = mem.enqueue("slow").await;
    let second = mem.enqueue("slow").await;
    let store = mem.store.clone();
    let thief = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(32)).await;
        let request = ClaimRequest {
            worker: WorkerId::new("thief").unwrap(),
            filter: ClaimFilter::default(),
            strategy: ClaimingStrategy::Fifo,
            lease_for: support::LEASE,
        };
        TaskQueue::claim(&store, &request).await.unwrap()
    });
    let clock = mem.clock.clone();
    let ticking = tokio::spawn(async move {
        // The memory store's clock moves with tokio's.
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            clock.advance(Duration::from_secs(1));
        }
    });
    let report = rt.run(DRAIN, CancellationToken::new()).await.unwrap();
    assert!(
        thief.await.unwrap().is_none(),
        "the held task's lease was renewed"
    );
    ticking.abort();
    assert_eq!((report.claimed, report.completed), (2, 2));
    for id in [first, second] {
        let task = mem.task(id).await;
        assert_eq!(
            (task.status, task.attempts, task.lapses),
            (TaskStatus::Completed, 1, 0)
        );
    }
}

/// Two transient failures open the type's breaker while two more tasks of it are held:
/// they are handed back unrun, their attempts unused, and the draining run ends.
#[tokio::test(start_paused = true)]
async fn held_tasks_of_a_type_whose_breaker_opened_are_handed_back() {
    let mem = Mem::new();
    let h = Scripted::new("flaky", vec![Step::Retryable]);
    let mut s = ahead(1, 4);
    s.breaker = BreakerSettings {
        threshold: 2,
        cool_down: Duration::from_secs(30),
        max_cool_down: Duration::from_secs(60),
    };
    let rt = mem.runtime(support::registry(vec![h.clone()]), s);
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(mem.enqueue("flaky").await);
    }
    let report = rt.run(DRAIN, CancellationToken::new()).await.unwrap();
    assert_eq!(h.calls(), 2);
    assert_eq!((report.claimed, report.retried, report.released), (4, 2, 2));
    for (i, id) in ids.into_iter().enumerate() {
        let task = mem.task(id).await;
        assert_eq!(task.status, TaskStatus::Queued);
        assert_eq!(task.attempts, u32::from(i < 2), "task {i}");
    }
}

/// A schedule comes due while a loop works through three ten-second tasks it holds: it
/// fires between two of them, not after the batch.
#[tokio::test(start_paused = true)]
async fn schedules_fire_between_held_tasks() {
    use prismq_domain::ports::ScheduleStore;
    use prismq_domain::schedule::{Cadence, NewSchedule};

    let mem = Mem::new();
    let h = Scripted::new("slow", vec![Step::Sleep(Duration::from_secs(10))]);
    mem.store
        .add_schedule(NewSchedule::new(
            "hourly",
            support::tt("slow"),
            serde_json::json!({}),
            Cadence::every("1h").unwrap(),
        ))
        .await
        .unwrap();
    for _ in 0..3 {
        mem.enqueue("slow").await;
    }
    let rt = mem
        .runtime(support::registry(vec![h.clone()]), ahead(1, 3))
        .with_schedules(std::sync::Arc::new(mem.store.clone()));
    let run = tokio::spawn(async move { rt.run(DRAIN, CancellationToken::new()).await });
    // The slot comes due 5 s in, while the first held task runs.
    tokio::time::sleep(Duration::from_secs(5)).await;
    mem.clock.advance(Duration::from_secs(3_600));
    tokio::time::sleep(Duration::from_secs(10)).await;
    let fired = TaskQueue::list(&mem.store, &Default::default())
        .await
        .unwrap();
    assert_eq!(fired.len(), 4, "fired before the batch's last task began");
    let report = run.await.unwrap().unwrap();
    assert_eq!((report.claimed, report.completed), (4, 4));
}
