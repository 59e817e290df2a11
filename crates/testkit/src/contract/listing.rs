//! Obligations of `TaskQueue`'s read and housekeeping side: get, list (filters, paging,
//! limits), purge and stats.

use std::time::Duration;

use prismq_domain::ports::{StatusCount, TaskFilter};
use prismq_domain::{ClaimingStrategy, TaskId, TaskStatus};

use super::support::{assert_not_found, invalid_field, setup};
use super::{ContractEnv, Subject};
use crate::fixtures::{new_task, plus_secs, task_type_of};

/// get of an unknown id is `NotFound`.
pub async fn get_unknown_is_not_found(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    assert_not_found(s.queue.get(TaskId(1)).await);
    let id = s.add(new_task("a")).await;
    assert_not_found(s.queue.get(TaskId(id.0 + 1000)).await);
}

/// list returns tasks newest first (id descending).
pub async fn list_is_newest_first(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(s.add(new_task("a")).await);
    }
    ids.reverse();
    let got: Vec<TaskId> = s.all_tasks().await.iter().map(|t| t.id).collect();
    assert_eq!(got, ids);
}

/// list filters by status and by type, separately and together.
pub async fn list_filters_by_status_and_type(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let a_done = s.completed("a").await;
    let a_queued = s.add(new_task("a")).await;
    let b_queued = s.add(new_task("b")).await;
    let b_cancelled = s.cancelled("b").await;
    let ids = |filter: TaskFilter| {
        let q = s.queue.clone();
        async move {
            q.list(&filter)
                .await
                .unwrap()
                .iter()
                .map(|t| t.id)
                .collect::<Vec<_>>()
        }
    };
    let queued = TaskFilter {
        status: Some(TaskStatus::Queued),
        ..TaskFilter::default()
    };
    assert_eq!(ids(queued.clone()).await, vec![b_queued, a_queued]);
    let of_b = TaskFilter {
        task_type: Some(task_type_of("b")),
        ..TaskFilter::default()
    };
    assert_eq!(ids(of_b.clone()).await, vec![b_cancelled, b_queued]);
    let queued_a = TaskFilter {
        task_type: Some(task_type_of("a")),
        ..queued
    };
    assert_eq!(ids(queued_a).await, vec![a_queued]);
    let completed = TaskFilter {
        status: Some(TaskStatus::Completed),
        ..TaskFilter::default()
    };
    assert_eq!(ids(completed).await, vec![a_done]);
}

/// `before_id` pages backwards through the ids; `limit` caps each page.
pub async fn list_pages_with_before_id(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(s.add(new_task("a")).await);
    }
    let page = |before: Option<TaskId>| {
        let q = s.queue.clone();
        async move {
            q.list(&TaskFilter {
                before_id: before,
                limit: 2,
                ..TaskFilter::default()
            })
            .await
            .unwrap()
            .iter()
            .map(|t| t.id)
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(page(None).await, vec![ids[4], ids[3]]);
    assert_eq!(page(Some(ids[3])).await, vec![ids[2], ids[1]]);
    assert_eq!(page(Some(ids[1])).await, vec![ids[0]]);
    assert_eq!(page(Some(ids[0])).await, Vec::<TaskId>::new());
}

/// `finished_before` keeps only tasks that finished strictly before the instant.
pub async fn list_filters_finished_before(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let early = s.completed("a").await;
    clock.advance(Duration::from_secs(10));
    let cut = clock.now();
    let at_cut = s.completed("a").await;
    clock.advance(Duration::from_secs(10));
    let _late = s.cancelled("a").await;
    let _open = s.add(new_task("a")).await;
    let got: Vec<TaskId> = s
        .queue
        .list(&TaskFilter {
            finished_before: Some(plus_secs(cut, 1)),
            ..TaskFilter::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(got, vec![at_cut, early]);
    let got: Vec<TaskId> = s
        .queue
        .list(&TaskFilter {
            finished_before: Some(cut),
            ..TaskFilter::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(got, vec![early]);
}

/// list refuses a limit of 0 or over 10,000 with `Invalid`; 1 and 10,000 are fine.
pub async fn list_refuses_limit_out_of_range(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    s.add(new_task("a")).await;
    s.add(new_task("a")).await;
    for limit in [0, 10_001] {
        let r = s
            .queue
            .list(&TaskFilter {
                limit,
                ..TaskFilter::default()
            })
            .await;
        assert_eq!(invalid_field(r), "limit");
    }
    for (limit, n) in [(1, 1), (10_000, 2)] {
        let got = s
            .queue
            .list(&TaskFilter {
                limit,
                ..TaskFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(got.len(), n);
    }
}

/// purge deletes tasks of the given final status finished before the instant, with their
/// logs, and nothing else.
pub async fn purge_removes_final_tasks_and_their_logs(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let old_done = s.completed("a").await;
    let old_failed = s.dead_lettered("a").await;
    let old_cancelled = s.cancelled("a").await;
    let queued = s.add(new_task("a")).await;
    clock.advance(Duration::from_secs(60));
    let cut = clock.now();
    let new_done = s.completed("a").await;
    assert_eq!(
        s.queue
            .purge(TaskStatus::Completed, cut, 100)
            .await
            .unwrap(),
        1
    );
    assert_not_found(s.queue.get(old_done).await);
    assert_not_found(s.logs.list(old_done).await);
    for id in [old_failed, old_cancelled, queued, new_done] {
        s.task(id).await;
        assert!(!s.events(id).await.is_empty());
    }
    assert_eq!(
        s.queue.purge(TaskStatus::Failed, cut, 100).await.unwrap(),
        1
    );
    assert_eq!(
        s.queue
            .purge(TaskStatus::Cancelled, cut, 100)
            .await
            .unwrap(),
        1
    );
    let left: Vec<TaskId> = s.all_tasks().await.iter().map(|t| t.id).collect();
    assert_eq!(left, vec![new_done, queued]);
}

/// purge deletes at most `limit` per call.
pub async fn purge_respects_limit(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    for _ in 0..5 {
        s.cancelled("a").await;
    }
    clock.advance(Duration::from_secs(1));
    let now = clock.now();
    assert_eq!(
        s.queue.purge(TaskStatus::Cancelled, now, 2).await.unwrap(),
        2
    );
    assert_eq!(s.all_tasks().await.len(), 3);
    assert_eq!(
        s.queue.purge(TaskStatus::Cancelled, now, 10).await.unwrap(),
        3
    );
    assert_eq!(
        s.queue.purge(TaskStatus::Cancelled, now, 10).await.unwrap(),
        0
    );
    assert!(s.all_tasks().await.is_empty());
}

/// purge refuses queued, claimed and running with `Invalid`, deleting nothing.
pub async fn purge_refuses_non_final_status(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    s.add(new_task("a")).await;
    clock.advance(Duration::from_secs(1));
    let later = plus_secs(clock.now(), 3600);
    for status in [TaskStatus::Queued, TaskStatus::Claimed, TaskStatus::Running] {
        let r = s.queue.purge(status, later, 100).await;
        assert!(
            matches!(r, Err(prismq_domain::PortError::Invalid(_))),
            "{status}: {r:?}"
        );
    }
    assert_eq!(s.all_tasks().await.len(), 1);
}

/// stats counts tasks per (type, status), non-zero only, ordered by type then status
/// (lifecycle order: queued, claimed, running, completed, failed, cancelled).
pub async fn stats_counts_by_type_and_status(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    assert_eq!(s.queue.stats().await.unwrap().counts, vec![]);
    s.completed("b").await;
    s.cancelled("a").await;
    s.add(new_task("b")).await;
    s.add(new_task("b")).await;
    s.dead_lettered("a").await;
    s.add(new_task("a")).await;
    let c = s.claim(ClaimingStrategy::Fifo).await.unwrap();
    s.queue.start(&c.lease).await.unwrap();
    let row = |ty: &str, status, count| StatusCount {
        task_type: task_type_of(ty),
        status,
        count,
    };
    let stats = s.queue.stats().await.unwrap();
    // The FIFO claim took the oldest queued task: the first "b".
    assert_eq!(
        stats.counts,
        vec![
            row("a", TaskStatus::Queued, 1),
            row("a", TaskStatus::Failed, 1),
            row("a", TaskStatus::Cancelled, 1),
            row("b", TaskStatus::Queued, 1),
            row("b", TaskStatus::Running, 1),
            row("b", TaskStatus::Completed, 1),
        ]
    );
    assert_eq!(stats.total(TaskStatus::Queued), 2);
}

/// stats' oldest_eligible is the smallest run_after among queued tasks already due;
/// future and non-queued tasks do not count.
pub async fn stats_oldest_eligible(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    assert_eq!(s.queue.stats().await.unwrap().oldest_eligible, None);
    let t0 = clock.now();
    s.add(new_task("a").run_after(plus_secs(t0, 100))).await;
    assert_eq!(s.queue.stats().await.unwrap().oldest_eligible, None);
    s.add(new_task("a").run_after(plus_secs(t0, -50))).await;
    s.add(new_task("a").run_after(plus_secs(t0, -20))).await;
    assert_eq!(
        s.queue.stats().await.unwrap().oldest_eligible,
        Some(plus_secs(t0, -50))
    );
    // Claiming the oldest leaves the next one as the oldest eligible.
    let c = s.claim(ClaimingStrategy::Fifo).await.unwrap();
    s.queue.start(&c.lease).await.unwrap();
    s.queue.complete(&c.lease, None).await.unwrap();
    assert_eq!(
        s.queue.stats().await.unwrap().oldest_eligible,
        Some(plus_secs(t0, -20))
    );
    clock.advance(Duration::from_secs(200));
    s.claim(ClaimingStrategy::Fifo).await.unwrap();
    assert_eq!(
        s.queue.stats().await.unwrap().oldest_eligible,
        Some(plus_secs(t0, 100))
    );
}

/// stats counts completions in the last minute and hour and dead letters in the last hour, by
/// `finished_at`, window start included.
pub async fn stats_counts_recent_finishes(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    assert_eq!(s.queue.stats().await.unwrap().recent, Default::default());
    let finish = |ok: bool| {
        let s = &s;
        async move {
            s.add(new_task("a").max_attempts(1)).await;
            let c = s.claim(ClaimingStrategy::Fifo).await.unwrap();
            s.queue.start(&c.lease).await.unwrap();
            if ok {
                s.queue.complete(&c.lease, None).await.unwrap();
            } else {
                let f = super::support::failure(prismq_domain::ErrorClass::Permanent);
                s.queue.fail(&c.lease, &f).await.unwrap();
            }
        }
    };
    finish(true).await; // t = 0
    finish(false).await; // t = 0
    clock.advance(Duration::from_secs(3000));
    finish(true).await; // t = 3000 s
    clock.advance(Duration::from_secs(590));
    finish(true).await; // t = 3590 s
    clock.advance(Duration::from_secs(10)); // now = 3600 s: the first two are exactly an hour old
    let r = s.queue.stats().await.unwrap().recent;
    assert_eq!(
        (
            r.completed_last_minute,
            r.completed_last_hour,
            r.failed_last_hour
        ),
        (1, 3, 1)
    );
    assert!((r.failure_rate() - 0.25).abs() < 1e-9);
    clock.advance(Duration::from_millis(1));
    let r = s.queue.stats().await.unwrap().recent;
    assert_eq!(
        (
            r.completed_last_minute,
            r.completed_last_hour,
            r.failed_last_hour
        ),
        (1, 2, 0)
    );
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        s.queue.stats().await.unwrap().recent.completed_last_minute,
        0
    );
}

/// `key_prefix` keeps only tasks whose idempotency key starts with the text (a schedule's
/// tasks), newest first; a key that merely contains it, or no key, is left out.
pub async fn list_filters_by_idempotency_key_prefix(factory: impl Fn(ContractEnv) -> Subject) {
    let (_clock, s) = setup(factory);
    let a = s
        .add(new_task("a").idempotency_key("schedule:1:2026"))
        .await;
    let _other = s
        .add(new_task("a").idempotency_key("schedule:12:2026"))
        .await;
    let _inside = s.add(new_task("a").idempotency_key("x-schedule:1:")).await;
    let _none = s.add(new_task("a")).await;
    let b = s
        .add(new_task("b").idempotency_key("schedule:1:run-now:1"))
        .await;
    let list = |prefix: &str| {
        let filter = TaskFilter {
            key_prefix: Some(prefix.to_owned()),
            ..TaskFilter::default()
        };
        let queue = s.queue.clone();
        async move {
            queue
                .list(&filter)
                .await
                .unwrap()
                .iter()
                .map(|t| t.id)
                .collect::<Vec<TaskId>>()
        }
    };
    assert_eq!(list("schedule:1:").await, vec![b, a]);
    assert_eq!(list("schedule:1:run-now").await, vec![b]);
    assert_eq!(list("schedule:9:").await, Vec::<TaskId>::new());
}
