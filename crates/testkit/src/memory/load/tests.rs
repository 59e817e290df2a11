//! The fake's dump and load beyond the contract's obligations: every column survives a
//! round trip, the columns it keeps follow the SQL adapters, ids continue, bad rows are
//! refused, and a commit meets the state as it is then.

use std::sync::Arc;
use std::time::Duration;

use prismq_domain::ports::dump::Value as Cell;
use prismq_domain::ports::{
    Dump, DumpSink, Failure, Heartbeat, LogLevel, NewLogEntry, QuotaLedger, ResultQuery,
    ResultStore, ScheduleStore, TaskEvent, TaskLog, TaskQueue, WorkerRegistry,
};
use prismq_domain::schedule::{Cadence, NewSchedule, ScheduleId};
use prismq_domain::{ClaimingStrategy, ContentItem, ErrorClass, NewTask, TaskId};
use serde_json::json;

use super::*;
use crate::contract::contract_retry_policy;
use crate::fixtures::{
    claim_request, new_task, plus_secs, scored_channel, task_type_of, worker_info,
};
use crate::memory::dump::{int, table, text};
use crate::FakeClock;

/// Collects a dump's rows per table.
struct Collect(Vec<Vec<Row>>);

#[async_trait]
impl DumpSink for Collect {
    async fn write(&mut self, table: usize, rows: Vec<Row>) -> Result<(), StorageError> {
        self.0[table].extend(rows);
        Ok(())
    }
}

async fn dump_all(s: &MemoryStore) -> Vec<Vec<Row>> {
    let mut sink = Collect(vec![Vec::new(); DUMP_TABLES.len()]);
    let counts = s.dump(3, &mut sink).await.expect("dump");
    let sent: Vec<u64> = sink.0.iter().map(|r| r.len() as u64).collect();
    assert_eq!(counts, sent);
    sink.0
}

async fn load(target: &MemoryStore, tables: &[Vec<Row>]) -> Result<(), StorageError> {
    let mut session = target.begin_load().await?;
    for (t, rows) in tables.iter().enumerate() {
        if !rows.is_empty() {
            session.write(t, rows.clone()).await?;
        }
    }
    session.commit().await
}

fn store(clock: &Arc<FakeClock>) -> MemoryStore {
    MemoryStore::new(clock.clone(), contract_retry_policy())
}

/// A store with something in every column that can hold something: tasks completed,
/// retried, running, cancelled and waiting for a region, a note with details, workers
/// active and stopped, a channel's videos saved twice (history, growth, baselines,
/// scores, a task's sighting moved and one outside a task), quota charged and only
/// marked exhausted, schedules fired and paused.
async fn populated(clock: &Arc<FakeClock>) -> MemoryStore {
    let s = store(clock);
    let done = s
        .enqueue(new_task("a").idempotency_key("k-1"))
        .await
        .unwrap()
        .id;
    let mut regional = NewTask::new(task_type_of("a"), json!({"r": 1}));
    regional.compatibility.region = Some("US".into());
    s.enqueue(regional).await.unwrap();
    let retried = s.enqueue(new_task("b")).await.unwrap().id;
    let running = s.enqueue(new_task("b")).await.unwrap().id;
    let cancelled = s.enqueue(new_task("c")).await.unwrap().id;
    clock.advance(Duration::from_secs(1));
    let req = claim_request("w1", ClaimingStrategy::Fifo);
    let c = s.claim(&req).await.unwrap().expect("a task");
    assert_eq!(c.task.id, done);
    s.start(&c.lease).await.unwrap();
    s.complete(&c.lease, Some(json!({"found": 3})))
        .await
        .unwrap();
    let c = s.claim(&req).await.unwrap().expect("a task");
    assert_eq!(c.task.id, retried);
    s.start(&c.lease).await.unwrap();
    let failure = Failure {
        class: ErrorClass::Retryable,
        message: "timed out".into(),
    };
    s.fail(&c.lease, &failure).await.unwrap();
    let c = s.claim(&req).await.unwrap().expect("a task");
    assert_eq!(c.task.id, running);
    clock.advance(Duration::from_millis(250));
    s.start(&c.lease).await.unwrap();
    TaskLog::append(
        &s,
        running,
        NewLogEntry {
            level: LogLevel::Debug,
            event: TaskEvent::Progress,
            message: "page 2".into(),
            details: json!({"page": 2}),
        },
    )
    .await
    .unwrap();
    TaskQueue::cancel(&s, cancelled).await.unwrap();
    s.register(&worker_info("w1")).await.unwrap();
    s.heartbeat(
        &worker_info("w1").id,
        Heartbeat {
            current_task: Some(running),
            tasks_done: 1,
            tasks_failed: 1,
            held: Vec::new(),
        },
    )
    .await
    .unwrap();
    s.register(&worker_info("w0")).await.unwrap();
    s.deregister(&worker_info("w0").id).await.unwrap();

    let now = clock.now();
    s.save(Some(running), &scored_channel(now, 0))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(2 * 3_600));
    s.save(Some(running), &scored_channel(now, 50))
        .await
        .unwrap();
    let mut trending = ContentItem::new("youtube_trending", "v03", "t");
    trending.rank = Some(3);
    s.save(None, &[trending]).await.unwrap();

    let end = plus_secs(clock.now(), 3_600);
    s.try_consume("yt", 5, 100, end).await.unwrap();
    s.mark_exhausted("other", plus_secs(clock.now(), 7_200))
        .await
        .unwrap();

    s.add_schedule(NewSchedule::new(
        "hourly",
        task_type_of("a"),
        json!({"every": true}),
        Cadence::every("1h").unwrap(),
    ))
    .await
    .unwrap();
    let mut nightly = NewSchedule::new(
        "nightly",
        task_type_of("b"),
        json!({}),
        Cadence::cron("0 3 * * *").unwrap(),
    );
    nightly.time_zone = "America/Los_Angeles".into();
    nightly.jitter = Duration::from_secs(30);
    s.add_schedule(nightly).await.unwrap();
    s.set_schedule_paused("nightly", true).await.unwrap();
    clock.advance(Duration::from_secs(3_600));
    let fired = s.fire_due(&[task_type_of("a")], 10).await.unwrap();
    assert_eq!(fired.len(), 1);
    s
}

fn column(tables: &[Vec<Row>], table_name: &str, col: &str) -> Vec<Cell> {
    let ti = table(table_name);
    let ci = DUMP_TABLES[ti]
        .columns
        .iter()
        .position(|(c, _)| *c == col)
        .expect("a column");
    tables[ti].iter().map(|r| r[ci].clone()).collect()
}

fn is_null(c: &Cell) -> bool {
    matches!(
        c,
        Cell::Int(None) | Cell::Text(None) | Cell::Json(None) | Cell::Bool(None) | Cell::Real(None)
    )
}

/// A dump loaded into a fresh fake dumps again row for row, every column, and the ports
/// read the same: the columns the contract's round trip does not look at (started_at,
/// the ids of records, snapshots and sightings, first views, growth, scores, schedules,
/// baselines) survive too.
#[tokio::test]
async fn a_loaded_dump_dumps_the_same_rows_and_reads_the_same() {
    let clock = Arc::new(FakeClock::default());
    let source = populated(&clock).await;
    let rows = dump_all(&source).await;
    for (t, r) in DUMP_TABLES.iter().zip(&rows) {
        assert!(!r.is_empty(), "{} has rows", t.name);
    }
    // Every column holds a value somewhere, so each is compared below.
    for (ti, t) in DUMP_TABLES.iter().enumerate() {
        for (ci, (c, _)) in t.columns.iter().enumerate() {
            assert!(
                rows[ti].iter().any(|r| !is_null(&r[ci])),
                "{}.{c} is NULL in every row",
                t.name
            );
        }
    }
    let target = store(&clock);
    load(&target, &rows).await.expect("load");
    assert_eq!(dump_all(&target).await, rows);

    let all = ResultQuery {
        limit: 100,
        ..ResultQuery::default()
    };
    assert_eq!(
        target.query(&all).await.unwrap(),
        source.query(&all).await.unwrap()
    );
    assert_eq!(
        target.baselines("UCx").await.unwrap(),
        source.baselines("UCx").await.unwrap()
    );
    for id in ["v00", "v03"] {
        assert_eq!(
            target.sightings("youtube", id, 100).await.unwrap(),
            source.sightings("youtube", id, 100).await.unwrap()
        );
        assert_eq!(
            target.history("youtube", id).await.unwrap(),
            source.history("youtube", id).await.unwrap()
        );
    }
    assert_eq!(
        target.list_schedules().await.unwrap(),
        source.list_schedules().await.unwrap()
    );
    assert_eq!(target.usage().await.unwrap(), source.usage().await.unwrap());
    let stale = Duration::from_secs(3_600 * 24);
    assert_eq!(
        WorkerRegistry::list(&target, stale).await.unwrap(),
        WorkerRegistry::list(&source, stale).await.unwrap()
    );
    assert_eq!(target.stats().await.unwrap(), source.stats().await.unwrap());
}

/// The columns the fake keeps for the dump hold what the SQL adapters store: the
/// `enqueued` entry is left out (the load reads it back from `created_at`), only the
/// running attempt has a start, a sighting a task moves keeps its id, and a bucket only
/// marked exhausted has its mark as its window's end.
#[tokio::test]
async fn kept_columns_follow_the_sql_adapters() {
    let clock = Arc::new(FakeClock::default());
    let source = populated(&clock).await;
    let rows = dump_all(&source).await;
    let events = column(&rows, "task_logs", "event");
    assert!(!events.contains(&text("enqueued")), "{events:?}");
    let tasks = TaskQueue::list(
        &source,
        &prismq_domain::ports::TaskFilter {
            limit: 100,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let logged: usize = {
        let mut n = 0;
        for t in &tasks {
            n += TaskLog::list(&source, t.id).await.unwrap().len() - 1;
        }
        n
    };
    assert_eq!(events.len(), logged);
    // Task 4 is running (started 250 ms after its claim); task 3 was retried, so the
    // start of its failed attempt no longer stands.
    let started = column(&rows, "task_queue", "started_at");
    let status = column(&rows, "task_queue", "status");
    for (s, st) in started.iter().zip(&status) {
        assert_eq!(
            !is_null(s),
            *st == text("running") || *st == text("completed")
        );
    }
    // The second save by the same task moved its sightings (ids 1 to 14 kept); the
    // save outside a task added sighting 15.
    let ids = column(&rows, "result_sightings", "id");
    assert_eq!(ids, (1..=15).map(int).collect::<Vec<_>>());
    // Metric ids follow the saves: 14 first snapshots, 13 changed views (v00 gains
    // nothing), none for the unchanged trending save.
    let ids = column(&rows, "result_metrics", "id");
    assert_eq!(ids, (1..=27).map(int).collect::<Vec<_>>());
    let quota = &rows[table("quota_usage")];
    assert_eq!(quota[0][0], text("other"));
    assert_eq!(quota[0][1], quota[0][3], "window_end is exhausted_until");

    let target = store(&clock);
    load(&target, &rows).await.unwrap();
    for t in &tasks {
        let log = TaskLog::list(&target, t.id).await.unwrap();
        assert_eq!(log[0].event, TaskEvent::Enqueued);
        assert_eq!(log[0].at, t.created_at);
        assert_eq!(log, TaskLog::list(&source, t.id).await.unwrap());
    }
}

/// After a load every generator continues after the largest id loaded.
#[tokio::test]
async fn ids_continue_after_the_loaded_ones() {
    let clock = Arc::new(FakeClock::default());
    let rows = dump_all(&populated(&clock).await).await;
    let target = store(&clock);
    load(&target, &rows).await.unwrap();
    let task = target.enqueue(new_task("z")).await.unwrap();
    assert_eq!(task.id, TaskId(7), "6 tasks loaded");
    let s = target
        .add_schedule(NewSchedule::new(
            "later",
            task_type_of("z"),
            json!({}),
            Cadence::every("1h").unwrap(),
        ))
        .await
        .unwrap();
    assert_eq!(s.id, ScheduleId(3));
    clock.advance(Duration::from_secs(60));
    let mut item = ContentItem::new("youtube_api", "new", "t");
    item.metrics.views = Some(1);
    target.save(Some(task.id), &[item]).await.unwrap();
    let after = dump_all(&target).await;
    assert_eq!(column(&after, "results", "id").last(), Some(&int(15)));
    assert_eq!(
        column(&after, "result_metrics", "id").last(),
        Some(&int(28))
    );
    assert_eq!(
        column(&after, "result_sightings", "id").last(),
        Some(&int(16))
    );
}

fn field_of(e: StorageError) -> String {
    match e {
        StorageError::Port(PortError::Invalid(v)) => {
            assert!(!v.accepted.is_empty(), "{v:?}");
            v.field
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// A duplicate key, a dangling reference or a value the store cannot hold is refused
/// naming what was wrong; the session is then over and the target as it was.
#[tokio::test]
async fn bad_rows_are_refused_and_nothing_is_loaded() {
    let clock = Arc::new(FakeClock::default());
    let source = populated(&clock).await;
    let rows = dump_all(&source).await;
    let before = dump_all(&source).await;

    // Loading a store's own dump into it without clearing: task 1 is already there.
    let mut session = source.begin_load().await.unwrap();
    let e = session
        .write(table("task_queue"), rows[0].clone())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StorageError::Port(PortError::Duplicate(m)) if m.contains("task 1")),
        "{e:?}"
    );
    // The session is over: the commit is refused too.
    let e = session.commit().await.unwrap_err();
    assert_eq!(field_of(e), "load");
    assert_eq!(dump_all(&source).await, before);

    let target = store(&clock);
    let cases: Vec<(&str, usize, Row, &str)> = vec![
        ("task_logs", 0, rows[1][0].clone(), "task_logs.task_id"),
        (
            "result_metrics",
            0,
            rows[table("result_metrics")][0].clone(),
            "result_metrics.result_id",
        ),
        ("task_queue", 3, rows[0][0].clone(), "task_queue.priority"),
        ("task_queue", 99, rows[0][0].clone(), "task_queue"),
        ("task_queue", 100, rows[0][0].clone(), "task_queue.type"),
        (
            "workers",
            101,
            rows[table("workers")][0].clone(),
            "workers.status",
        ),
    ];
    for (name, how, mut row, field) in cases {
        match how {
            3 => row[3] = int(11),
            99 => {
                row.pop();
            }
            100 => row[1] = Cell::Int(Some(1)),
            101 => row[10] = text("asleep"),
            _ => {}
        }
        let mut session = target.begin_load().await.unwrap();
        let e = session.write(table(name), vec![row]).await.unwrap_err();
        assert_eq!(field_of(e), field, "{name}");
        drop(session);
    }
    assert_eq!(dump_all(&target).await.concat(), Vec::<Row>::new());
}

/// `clear` then a load replaces the tables (API keys, outside the format, stay); a
/// writer's change made during a load without `clear` is kept by its commit, and one
/// that clashes with a loaded key makes the commit refuse, changing nothing.
#[tokio::test]
async fn a_commit_applies_the_load_to_the_state_as_it_is_then() {
    use prismq_domain::ports::{ApiKeyStore, NewApiKey, Scope};

    let clock = Arc::new(FakeClock::default());
    let rows = dump_all(&populated(&clock).await).await;

    let target = store(&clock);
    target.enqueue(new_task("old")).await.unwrap();
    let secret = format!("pqk_{}", "ab".repeat(32));
    let key = NewApiKey::for_secret(&secret, "k", vec![Scope::Read], 60).unwrap();
    target.create(key).await.unwrap();
    let mut session = target.begin_load().await.unwrap();
    assert_eq!(session.existing_rows().await.unwrap(), 1);
    session.clear().await.unwrap();
    assert_eq!(session.existing_rows().await.unwrap(), 0);
    for (t, r) in rows.iter().enumerate() {
        session.write(t, r.clone()).await.unwrap();
    }
    session.commit().await.unwrap();
    assert_eq!(dump_all(&target).await, rows, "the old task is gone");
    assert_eq!(ApiKeyStore::list(&target).await.unwrap().len(), 1);

    // Without clear, a worker registered meanwhile stays.
    let other = store(&clock);
    let mut session = other.begin_load().await.unwrap();
    for (t, r) in rows.iter().enumerate() {
        session.write(t, r.clone()).await.unwrap();
    }
    other.register(&worker_info("w9")).await.unwrap();
    session.commit().await.unwrap();
    let workers = column(&dump_all(&other).await, "workers", "id");
    assert_eq!(workers, vec![text("w0"), text("w1"), text("w9")]);

    // A clash: a task enqueued meanwhile takes id 1, which the load also holds.
    let third = store(&clock);
    let mut session = third.begin_load().await.unwrap();
    session.write(0, rows[0].clone()).await.unwrap();
    third.enqueue(new_task("meanwhile")).await.unwrap();
    let e = session.commit().await.unwrap_err();
    assert!(
        matches!(e, StorageError::Port(PortError::Duplicate(_))),
        "{e:?}"
    );
    let left = dump_all(&third).await;
    assert_eq!(left[0].len(), 1);
    assert_eq!(left[0][0][1], text("meanwhile"));
}
