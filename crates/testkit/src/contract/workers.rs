//! Obligations of `WorkerRegistry`: register, heartbeat, deregister, list with health, prune.

use std::time::Duration;

use prismq_domain::ports::{Heartbeat, HeldType, HoldReason, WorkerHealth};
use prismq_domain::{ClaimingStrategy, TaskId, Timestamp};

use super::support::{assert_not_found, setup};
use super::{ContractEnv, Subject};
use crate::fixtures::{task_type_of, worker_id, worker_info};

const STALE: Duration = Duration::from_secs(60);

/// register records now as both started_at and heartbeat_at, zero counters, health active.
pub async fn register_records_now_as_start_and_heartbeat(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let mut info = worker_info("w-1");
    info.capabilities = vec![task_type_of("channel_scrape"), task_type_of("api_scrape")];
    info.strategy = ClaimingStrategy::WeightedRandom;
    s.workers.register(&info).await.unwrap();
    let list = s.workers.list(STALE).await.unwrap();
    assert_eq!(list.len(), 1);
    let w = &list[0];
    assert_eq!(w.info, info);
    assert_eq!((w.started_at, w.heartbeat_at), (clock.now(), clock.now()));
    assert_eq!(w.heartbeat, Heartbeat::default());
    assert_eq!(w.health, WorkerHealth::Active);
}

/// Registering an existing id again resets it: active, zero counters, new start time.
pub async fn reregister_resets_worker(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let info = worker_info("w-1");
    s.workers.register(&info).await.unwrap();
    s.workers
        .heartbeat(
            &info.id,
            Heartbeat {
                current_task: Some(TaskId(3)),
                tasks_done: 5,
                tasks_failed: 1,
                held: held_types(),
            },
        )
        .await
        .unwrap();
    s.workers.deregister(&info.id).await.unwrap();
    clock.advance(Duration::from_secs(600));
    let mut again = info.clone();
    again.pid = 9999;
    s.workers.register(&again).await.unwrap();
    let list = s.workers.list(STALE).await.unwrap();
    assert_eq!(list.len(), 1);
    let w = &list[0];
    assert_eq!(w.info, again);
    assert_eq!((w.started_at, w.heartbeat_at), (clock.now(), clock.now()));
    assert_eq!(w.heartbeat, Heartbeat::default());
    assert_eq!(w.health, WorkerHealth::Active);
}

/// heartbeat records now and the worker's state.
pub async fn heartbeat_records_now_and_state(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let info = worker_info("w-1");
    s.workers.register(&info).await.unwrap();
    let started = clock.now();
    clock.advance(Duration::from_secs(90));
    assert_eq!(
        s.workers.list(STALE).await.unwrap()[0].health,
        WorkerHealth::Stale
    );
    let beat = Heartbeat {
        current_task: Some(TaskId(17)),
        tasks_done: 4,
        tasks_failed: 2,
        held: Vec::new(),
    };
    s.workers.heartbeat(&info.id, beat.clone()).await.unwrap();
    let w = s.workers.list(STALE).await.unwrap().remove(0);
    assert_eq!((w.started_at, w.heartbeat_at), (started, clock.now()));
    assert_eq!(w.heartbeat, beat);
    assert_eq!(w.health, WorkerHealth::Active);
}

/// Two held types: one behind an open breaker (with and without a known end), one behind a
/// spent quota bucket.
fn held_types() -> Vec<HeldType> {
    vec![
        HeldType {
            task_type: task_type_of("channel_scrape"),
            until: Some(Timestamp::from_millisecond(1_800_000_030_250).unwrap()),
            reason: HoldReason::Breaker { failures: 5 },
        },
        HeldType {
            task_type: task_type_of("keyword_search"),
            until: Some(Timestamp::from_second(1_800_025_200).unwrap()),
            reason: HoldReason::Quota {
                bucket: "youtube_data_api.search".into(),
            },
        },
        HeldType {
            task_type: task_type_of("api_scrape"),
            until: None,
            reason: HoldReason::Breaker { failures: 7 },
        },
    ]
}

/// A heartbeat's held types read back as written, in order; the next heartbeat replaces
/// them (an empty list clears them); deregister clears them and keeps the counters of the
/// last heartbeat.
pub async fn heartbeat_records_held_types(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let info = worker_info("w-1");
    s.workers.register(&info).await.unwrap();
    let beat = Heartbeat {
        current_task: None,
        tasks_done: 13,
        tasks_failed: 1,
        held: held_types(),
    };
    s.workers.heartbeat(&info.id, beat.clone()).await.unwrap();
    assert_eq!(s.workers.list(STALE).await.unwrap()[0].heartbeat, beat);
    let fewer = Heartbeat {
        held: held_types()[1..2].to_vec(),
        ..beat.clone()
    };
    s.workers.heartbeat(&info.id, fewer.clone()).await.unwrap();
    assert_eq!(s.workers.list(STALE).await.unwrap()[0].heartbeat, fewer);
    s.workers.heartbeat(&info.id, beat.clone()).await.unwrap();
    s.workers.deregister(&info.id).await.unwrap();
    let w = s.workers.list(STALE).await.unwrap().remove(0);
    assert_eq!(w.health, WorkerHealth::Stopped);
    assert_eq!(
        w.heartbeat,
        Heartbeat {
            held: Vec::new(),
            ..beat
        }
    );
}

/// heartbeat of an unknown worker is `NotFound` and registers nothing.
pub async fn heartbeat_unknown_is_not_found(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    assert_not_found(
        s.workers
            .heartbeat(&worker_id("ghost"), Heartbeat::default())
            .await,
    );
    assert!(s.workers.list(STALE).await.unwrap().is_empty());
}

/// deregister marks the worker stopped and keeps it; an unknown id is `NotFound`.
pub async fn deregister_marks_stopped_and_keeps_it(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let info = worker_info("w-1");
    s.workers.register(&info).await.unwrap();
    s.workers.deregister(&info.id).await.unwrap();
    let list = s.workers.list(STALE).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (&list[0].info.id, list[0].health),
        (&info.id, WorkerHealth::Stopped)
    );
    assert_not_found(s.workers.deregister(&worker_id("ghost")).await);
}

/// list reports Stopped, Stale (heartbeat older than stale_after) or Active, ordered by id.
pub async fn list_reports_health_ordered_by_id(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    for id in ["w-c", "w-a", "w-d", "w-b"] {
        s.workers.register(&worker_info(id)).await.unwrap();
    }
    clock.advance(Duration::from_secs(100));
    s.workers
        .heartbeat(&worker_id("w-c"), Heartbeat::default())
        .await
        .unwrap();
    s.workers.deregister(&worker_id("w-d")).await.unwrap();
    let got: Vec<(String, WorkerHealth)> = s
        .workers
        .list(STALE)
        .await
        .unwrap()
        .into_iter()
        .map(|w| (w.info.id.as_str().to_owned(), w.health))
        .collect();
    let want = vec![
        ("w-a".to_owned(), WorkerHealth::Stale),
        ("w-b".to_owned(), WorkerHealth::Stale),
        ("w-c".to_owned(), WorkerHealth::Active),
        ("w-d".to_owned(), WorkerHealth::Stopped),
    ];
    assert_eq!(got, want);
    // A longer threshold makes the silent ones active again.
    let lenient = s.workers.list(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(lenient[0].health, WorkerHealth::Active);
    assert_eq!(lenient[3].health, WorkerHealth::Stopped);
}

/// prune removes stopped workers and those stale for longer than stale_after, returning
/// how many; active ones stay.
pub async fn prune_removes_stopped_and_stale(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    for id in ["w-1", "w-2", "w-3", "w-4"] {
        s.workers.register(&worker_info(id)).await.unwrap();
    }
    s.workers.deregister(&worker_id("w-1")).await.unwrap();
    assert_eq!(
        s.workers.prune(STALE).await.unwrap(),
        1,
        "only the stopped one"
    );
    clock.advance(Duration::from_secs(120));
    s.workers
        .heartbeat(&worker_id("w-3"), Heartbeat::default())
        .await
        .unwrap();
    assert_eq!(s.workers.prune(STALE).await.unwrap(), 2);
    let left: Vec<String> = s
        .workers
        .list(STALE)
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.info.id.as_str().to_owned())
        .collect();
    assert_eq!(left, vec!["w-3".to_owned()]);
    assert_eq!(s.workers.prune(STALE).await.unwrap(), 0);
}
