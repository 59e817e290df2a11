//! The in-memory fake beside SQLite on the dump and load ports: the same history dumps the
//! same rows from both (what differs is named below), and a SQLite file copied into the
//! fake and out again into a fresh file dumps exactly as the first did.

use std::sync::Arc;
use std::time::Duration;

use prismq_app::copy::copy_between;
use prismq_domain::ports::dump::{Row, Value, DUMP_TABLES};
use prismq_domain::ports::{
    Clock, Dump, DumpSink, Failure, Heartbeat, Load, LogLevel, NewLogEntry, QuotaLedger,
    ResultStore, ScheduleStore, StorageError, TaskEvent, TaskLog, TaskQueue, WorkerRegistry,
};
use prismq_domain::schedule::{Cadence, NewSchedule};
use prismq_domain::{ClaimingStrategy, ContentItem, ErrorClass, NewTask};
use prismq_storage_sqlite::{SqliteOptions, SqliteStore};
use prismq_testkit::contract::contract_retry_policy;
use prismq_testkit::fixtures::{
    claim_request, new_task, plus_secs, scored_channel, task_type_of, worker_info,
};
use prismq_testkit::{FakeClock, MemoryStore};
use serde_json::json;

/// Collects a dump's rows per table.
struct Collect(Vec<Vec<Row>>);

#[async_trait::async_trait]
impl DumpSink for Collect {
    async fn write(&mut self, table: usize, rows: Vec<Row>) -> Result<(), StorageError> {
        self.0[table].extend(rows);
        Ok(())
    }
}

async fn dump_all(s: &dyn Dump) -> Vec<Vec<Row>> {
    let mut sink = Collect(vec![Vec::new(); DUMP_TABLES.len()]);
    s.dump(7, &mut sink).await.expect("dump");
    sink.0
}

fn sqlite(dir: &tempfile::TempDir, name: &str, clock: &Arc<FakeClock>) -> SqliteStore {
    let mut options = SqliteOptions::new(dir.path().join(name));
    options.retry = contract_retry_policy();
    SqliteStore::open(options, clock.clone() as Arc<dyn Clock>).expect("open")
}

/// Tasks completed, dead-lettered, running (with a note), cancelled and waiting for a
/// region; workers active and stopped; a channel's uploads saved twice by one task and once
/// outside a task (history, growth, baselines, scores, views at 7 and 30 days); quota
/// charged and only marked exhausted; schedules fired and paused. Nothing random but lease
/// tokens.
async fn history<S>(s: &S, clock: &FakeClock)
where
    S: TaskQueue + TaskLog + WorkerRegistry + ResultStore + QuotaLedger + ScheduleStore,
{
    let done = s
        .enqueue(new_task("a").idempotency_key("k-1"))
        .await
        .unwrap()
        .id;
    let mut regional = NewTask::new(task_type_of("a"), json!({"r": 1}));
    regional.compatibility.region = Some("US".into());
    s.enqueue(regional).await.unwrap();
    s.enqueue(new_task("b")).await.unwrap();
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
    s.start(&c.lease).await.unwrap();
    let failure = Failure {
        class: ErrorClass::Permanent,
        message: "gone".into(),
    };
    s.fail(&c.lease, &failure).await.unwrap();
    let c = s.claim(&req).await.unwrap().expect("a task");
    assert_eq!(c.task.id, running);
    clock.advance(Duration::from_millis(250));
    s.start(&c.lease).await.unwrap();
    let note = NewLogEntry {
        level: LogLevel::Debug,
        event: TaskEvent::Progress,
        message: "page 2".into(),
        details: json!({"page": 2}),
    };
    TaskLog::append(s, running, note).await.unwrap();
    TaskQueue::cancel(s, cancelled).await.unwrap();
    s.register(&worker_info("w1")).await.unwrap();
    let beat = Heartbeat {
        current_task: Some(running),
        tasks_done: 1,
        tasks_failed: 1,
        held: Vec::new(),
    };
    s.heartbeat(&worker_info("w1").id, beat).await.unwrap();
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

    s.try_consume("yt", 5, 100, plus_secs(clock.now(), 3_600))
        .await
        .unwrap();
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
    assert_eq!(s.fire_due(&[task_type_of("a")], 10).await.unwrap().len(), 1);
}

fn column(table: usize, name: &str) -> usize {
    DUMP_TABLES[table]
        .columns
        .iter()
        .position(|(c, _)| *c == name)
        .expect("a column")
}

/// A row with the columns the engines fill differently for the same history reduced to
/// what they agree on: a lease token is random (only whether there is one is compared),
/// and log entries are written with each engine's own wording (`claimed by w1 (attempt 1)`
/// here, `claimed by w1` with the attempt in its details there), so only their task,
/// time, level and event are compared.
fn comparable(table: usize, mut row: Row) -> Row {
    match DUMP_TABLES[table].name {
        "task_queue" => {
            let i = column(table, "lease_token");
            if let Value::Int(Some(_)) = row[i] {
                row[i] = Value::Int(Some(1));
            }
        }
        "task_logs" => {
            row.truncate(column(table, "message"));
        }
        _ => {}
    }
    row
}

/// The same history, driven through the ports with clocks reading the same instants,
/// dumps the same rows from the fake as from SQLite, table by table and column by column
/// (see [`comparable`] for the two columns compared loosely).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_dumps_what_sqlite_dumps_for_the_same_history() {
    let dir = tempfile::tempdir().unwrap();
    let (c1, c2) = (
        Arc::new(FakeClock::default()),
        Arc::new(FakeClock::default()),
    );
    let file = sqlite(&dir, "same.db", &c1);
    let fake = MemoryStore::new(c2.clone(), contract_retry_policy());
    history(&file, &c1).await;
    history(&fake, &c2).await;
    let (a, b) = (dump_all(&file).await, dump_all(&fake).await);
    for (ti, t) in DUMP_TABLES.iter().enumerate() {
        assert!(!a[ti].is_empty(), "SQLite dumped no {}", t.name);
        assert_eq!(a[ti].len(), b[ti].len(), "{} rows", t.name);
        for (n, (x, y)) in a[ti].iter().zip(&b[ti]).enumerate() {
            let (x, y) = (comparable(ti, x.clone()), comparable(ti, y.clone()));
            for (ci, (col, _)) in t.columns.iter().enumerate() {
                if ci < x.len() {
                    assert_eq!(x[ci], y[ci], "{}.{col}, row {n}", t.name);
                }
            }
        }
    }
}

/// A SQLite file copied into the fake, and from the fake into a fresh file, dumps exactly
/// as the first file did: the fake keeps every column of every row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_through_the_fake_and_back_keeps_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FakeClock::default());
    let source = sqlite(&dir, "source.db", &clock);
    history(&source, &clock).await;
    let fake = MemoryStore::new(clock.clone(), contract_retry_policy());
    let there = copy_between(&source, fake.begin_load().await.unwrap(), false)
        .await
        .expect("SQLite into the fake");
    let back = sqlite(&dir, "back.db", &clock);
    let again = copy_between(&fake, back.begin_load().await.unwrap(), false)
        .await
        .expect("the fake into SQLite");
    assert_eq!(there, again);
    assert!(there.tasks > 0 && there.sightings > 0 && there.baselines > 0);
    assert_eq!(dump_all(&back).await, dump_all(&source).await);
}
