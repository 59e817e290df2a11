//! `queue_counts` stays exact on every path that writes task rows. Since schema v11 no
//! trigger counts inserted tasks: enqueue, enqueue_batch, schedules (fired and run now), the
//! legacy import and a dump's load each count their own rows; since v14 the code that changes
//! a status moves the task's count, and only deletes are counted by a trigger (the last test
//! goes through every transition a worker makes, and the cancellations and the retry an
//! operator makes). After each path the kept counts are compared with the rows' (`v_task_stats`, a
//! count of the table by type and status); `validate` finds counts
//! that disagree, and rows the adapter would never write.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use prismq_domain::lease::MAX_LAPSES;
use prismq_domain::ports::dump::Row;
use prismq_domain::ports::{
    ClaimFilter, ClaimRequest, Dump, DumpSink, Failure, Handover, Load, ScheduleStore,
    StorageError, TaskQueue,
};
use prismq_domain::schedule::{Cadence, NewSchedule};
use prismq_domain::task::{Compatibility, NewTask, TaskType, WorkerId};
use prismq_domain::{ClaimingStrategy, ErrorClass, PortError, TaskStatus, Timestamp};
use prismq_storage_sqlite::ops::{import_legacy, validate, Outcome, ValidateOptions};
use prismq_storage_sqlite::{SqliteOptions, SqliteStore};
use prismq_testkit::FakeClock;
use serde_json::json;

const START: &str = "2026-01-01T00:00:00Z";

fn open(path: &Path, clock: Arc<FakeClock>) -> SqliteStore {
    SqliteStore::open(SqliteOptions::new(path), clock).unwrap()
}

fn tt(name: &str) -> TaskType {
    TaskType::new(name).unwrap()
}

type Counts = BTreeMap<(String, String), i64>;

fn counts(store: &SqliteStore, sql: &str) -> Counts {
    store
        .with_connection(|c| {
            let mut s = c.prepare(sql).unwrap();
            let rows = s
                .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
                .unwrap();
            Ok(rows.map(Result::unwrap).collect())
        })
        .unwrap()
}

/// The counts `stats` and the claim's type list read, against the rows themselves; returns
/// the real counts so a test can also say what it expects.
fn assert_exact(store: &SqliteStore, after: &str) -> Counts {
    let kept = counts(
        store,
        "SELECT t.name, s.word, c.n FROM queue_counts c JOIN task_types t ON t.id = c.type_id
         JOIN (SELECT 0 AS code, 'queued' AS word UNION ALL SELECT 1, 'claimed' UNION ALL SELECT 2, 'running'
               UNION ALL SELECT 3, 'completed' UNION ALL SELECT 4, 'failed' UNION ALL SELECT 5, 'cancelled') s
           ON s.code = c.status
         WHERE c.n <> 0",
    );
    let real = counts(store, "SELECT type, status, count FROM v_task_stats");
    assert_eq!(kept, real, "queue_counts after {after}");
    real
}

fn n(c: &Counts, task_type: &str, status: &str) -> i64 {
    c.get(&(task_type.to_owned(), status.to_owned()))
        .copied()
        .unwrap_or(0)
}

fn request(types: &[&str]) -> ClaimRequest {
    ClaimRequest {
        worker: WorkerId::new("w").unwrap(),
        filter: ClaimFilter {
            task_types: types.iter().map(|t| tt(t)).collect(),
            region: Some("GB".into()),
            ..ClaimFilter::default()
        },
        strategy: ClaimingStrategy::Fifo,
        lease_for: Duration::from_secs(60),
    }
}

#[tokio::test]
async fn enqueue_paths_count_what_they_insert_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(
        &dir.path().join("q.db"),
        Arc::new(FakeClock::new(START.parse().unwrap())),
    );
    let mut gb = NewTask::new(tt("a"), json!({"n": 1}));
    gb.compatibility = Compatibility::with_region("gb").unwrap();
    store.enqueue(gb).await.unwrap();
    store
        .enqueue(NewTask::new(tt("b"), json!({"n": 2})).idempotency_key("k1"))
        .await
        .unwrap();
    assert_exact(&store, "single enqueues");

    // The same key again: the existing task, no new count.
    let again = store
        .enqueue(NewTask::new(tt("b"), json!({"n": 2})).idempotency_key("k1"))
        .await
        .unwrap();
    assert!(again.duplicate);
    // The same key with other params: refused, nothing written.
    let clash = store
        .enqueue(NewTask::new(tt("b"), json!({"n": 3})).idempotency_key("k1"))
        .await;
    assert!(matches!(clash, Err(PortError::Invalid(_))), "{clash:?}");
    let c = assert_exact(&store, "a duplicate and a clashing key");
    assert_eq!((n(&c, "a", "queued"), n(&c, "b", "queued")), (1, 1));

    // A batch of several types, one of them a duplicate of an existing key.
    let batch: Vec<NewTask> = (0..30)
        .map(|i| NewTask::new(tt(["a", "b", "c"][i % 3]), json!({"i": i})))
        .chain([NewTask::new(tt("b"), json!({"n": 2})).idempotency_key("k1")])
        .collect();
    let out = store.enqueue_batch(batch).await.unwrap();
    assert_eq!(out.iter().filter(|e| e.duplicate).count(), 1);
    let c = assert_exact(&store, "a batch with a duplicate");
    assert_eq!(
        (
            n(&c, "a", "queued"),
            n(&c, "b", "queued"),
            n(&c, "c", "queued")
        ),
        (11, 11, 10)
    );

    // A batch that fails part way (a clashing key after new tasks): nothing written.
    let failing = vec![
        NewTask::new(tt("d"), json!({})),
        NewTask::new(tt("b"), json!({"n": 9})).idempotency_key("k1"),
    ];
    assert!(store.enqueue_batch(failing).await.is_err());
    let c = assert_exact(&store, "a batch that failed");
    assert_eq!(n(&c, "d", "queued"), 0);

    // Transitions (moved by the code that makes them) and deletes (by the trigger).
    let c1 = store.claim(&request(&["a"])).await.unwrap().unwrap();
    assert_eq!(
        c1.task.compatibility.region.as_deref(),
        Some("GB"),
        "the region task first"
    );
    store.start(&c1.lease).await.unwrap();
    store
        .complete(&c1.lease, Some(json!({"ok": true})))
        .await
        .unwrap();
    let c2 = store.claim(&request(&["b"])).await.unwrap().unwrap();
    let permanent = Failure {
        class: ErrorClass::Permanent,
        message: "no".into(),
    };
    store.fail(&c2.lease, &permanent).await.unwrap();
    store.retry(c2.task.id).await.unwrap();
    let c3 = store.claim(&request(&["c"])).await.unwrap().unwrap();
    store.cancel(c3.task.id).await.unwrap();
    let purged = store
        .purge(TaskStatus::Completed, Timestamp::MAX, 100)
        .await
        .unwrap();
    assert_eq!(purged, 1);
    let c = assert_exact(
        &store,
        "claims, completion, failure, retry, cancel and purge",
    );
    assert_eq!(n(&c, "c", "cancelled"), 1);
}

#[tokio::test]
async fn schedules_count_the_tasks_they_enqueue() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FakeClock::new(START.parse().unwrap()));
    let store = open(&dir.path().join("q.db"), clock.clone());
    store
        .add_schedule(NewSchedule::new(
            "hourly",
            tt("s"),
            json!({"q": 1}),
            Cadence::every("1h").unwrap(),
        ))
        .await
        .unwrap();
    store.run_schedule_now("hourly").await.unwrap();
    let c = assert_exact(&store, "a schedule run now");
    assert_eq!(n(&c, "s", "queued"), 1);
    let mut fired = 0;
    for h in 1..=3 {
        clock.set(START.parse::<Timestamp>().unwrap() + jiff::SignedDuration::from_hours(h));
        fired += store.fire_due(&[tt("s")], 10).await.unwrap().len();
    }
    assert_eq!(fired, 3);
    let c = assert_exact(&store, "schedules firing");
    assert_eq!(n(&c, "s", "queued"), 4);
}

#[test]
fn the_legacy_import_counts_the_tasks_it_imports() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.db");
    let c = rusqlite::Connection::open(&old).unwrap();
    c.execute_batch(
        "CREATE TABLE task_queue (
            id INTEGER PRIMARY KEY AUTOINCREMENT, task_type TEXT NOT NULL, parameters TEXT NOT NULL,
            priority INTEGER NOT NULL DEFAULT 5, status TEXT NOT NULL DEFAULT 'queued',
            claimed_by TEXT, claimed_at TEXT, retry_count INTEGER NOT NULL DEFAULT 0,
            max_retries INTEGER NOT NULL DEFAULT 3, result_data TEXT, error_message TEXT,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL, completed_at TEXT);
         INSERT INTO task_queue (task_type, parameters, status, created_at, updated_at, completed_at) VALUES
            ('x', '{\"q\": 1}', 'queued', '2025-11-11T12:00:00', '2025-11-11T12:00:00', NULL),
            ('x', '{\"q\": 2}', 'running', '2025-11-11T12:00:00', '2025-11-11T12:00:00', NULL),
            ('y', '{\"q\": 3}', 'completed', '2025-11-11T12:00:00', '2025-11-11T12:01:00', '2025-11-11T12:01:00'),
            ('y', '{\"q\": 4', 'queued', '2025-11-11T12:00:00', '2025-11-11T12:00:00', NULL);",
    )
    .unwrap();
    drop(c);
    let store = open(
        &dir.path().join("q.db"),
        Arc::new(FakeClock::new(START.parse().unwrap())),
    );
    let report = import_legacy(&store, &old, false).unwrap();
    assert_eq!(report.tasks_imported, 3, "{report:?}");
    let c = assert_exact(&store, "the legacy import");
    assert_eq!((n(&c, "x", "queued"), n(&c, "y", "completed")), (2, 1));
    // A second run finds them imported already and adds nothing.
    import_legacy(&store, &old, false).unwrap();
    let again = assert_exact(&store, "the legacy import run again");
    assert_eq!(again, c);
}

/// Collects a dump's batches.
#[derive(Default)]
struct Collect(Vec<(usize, Vec<Row>)>);

#[async_trait]
impl DumpSink for Collect {
    async fn write(&mut self, table: usize, rows: Vec<Row>) -> Result<(), StorageError> {
        self.0.push((table, rows));
        Ok(())
    }
}

#[tokio::test]
async fn a_dump_loaded_into_another_file_has_exact_counts_and_regions() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FakeClock::new(START.parse().unwrap()));
    let source = open(&dir.path().join("a.db"), clock.clone());
    let mut gb = NewTask::new(tt("a"), json!({"n": 1}));
    gb.compatibility = Compatibility::with_region("GB").unwrap();
    source
        .enqueue_batch(vec![
            gb,
            NewTask::new(tt("a"), json!({"n": 2})),
            NewTask::new(tt("b"), json!({"n": 3})),
        ])
        .await
        .unwrap();
    let c = source.claim(&request(&["b"])).await.unwrap().unwrap();
    source.complete(&c.lease, None).await.unwrap();
    let want = assert_exact(&source, "the source's enqueues");
    let mut dump = Collect::default();
    source.dump(2, &mut dump).await.unwrap();

    let target = open(&dir.path().join("b.db"), clock.clone());
    target
        .enqueue(NewTask::new(tt("old"), json!({})))
        .await
        .unwrap();
    let mut load = target.begin_load().await.unwrap();
    load.clear().await.unwrap();
    for (table, rows) in dump.0 {
        load.write(table, rows).await.unwrap();
    }
    load.commit().await.unwrap();
    assert_eq!(assert_exact(&target, "a load that replaced"), want);
    // The stored region came with the task: a GB worker claims it, one without does not.
    let mut no_region = request(&["a"]);
    no_region.filter.region = None;
    let first = target.claim(&no_region).await.unwrap().unwrap();
    assert_eq!(first.task.compatibility.region, None);
    assert!(target.claim(&no_region).await.unwrap().is_none());
    let gb_task = target.claim(&request(&["a"])).await.unwrap().unwrap();
    assert_eq!(gb_task.task.compatibility.region.as_deref(), Some("GB"));
    assert_exact(&target, "claims on the loaded file");
}

/// A dump row whose status is not one of the six words is refused by the load, naming the
/// task and what is accepted, and the target keeps what it had.
#[tokio::test]
async fn a_load_refuses_an_unknown_status_naming_the_task() {
    use prismq_domain::ports::dump::{Value, DUMP_TABLES};
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FakeClock::new(START.parse().unwrap()));
    let source = open(&dir.path().join("a.db"), clock.clone());
    source
        .enqueue(NewTask::new(tt("a"), json!({"n": 1})))
        .await
        .unwrap();
    let mut dump = Collect::default();
    source.dump(10, &mut dump).await.unwrap();
    let tasks = DUMP_TABLES
        .iter()
        .position(|t| t.name == "task_queue")
        .unwrap();
    let status = DUMP_TABLES[tasks]
        .columns
        .iter()
        .position(|(c, _)| *c == "status")
        .unwrap();
    for (table, rows) in &mut dump.0 {
        if *table == tasks {
            // What a damaged or hostile file may hold: a control sequence and a long tail.
            rows[0][status] = Value::Text(Some(format!("done\u{1b}[31m{}", "x".repeat(5000))));
        }
    }

    let target = open(&dir.path().join("b.db"), clock.clone());
    target
        .enqueue(NewTask::new(tt("old"), json!({})))
        .await
        .unwrap();
    let mut load = target.begin_load().await.unwrap();
    load.clear().await.unwrap();
    let mut refused = None;
    for (table, rows) in dump.0 {
        if let Err(e) = load.write(table, rows).await {
            refused = Some(e.to_string());
            break;
        }
    }
    drop(load);
    let refused = refused.expect("the row was refused");
    assert!(
        refused.contains("task_queue[1].status")
            && refused.contains("\"done\u{FFFD}[31mxx")
            && refused.contains("…\" is not a task status")
            && !refused.contains('\u{1b}')
            && refused.len() < 400
            && refused.contains("queued, claimed, running, completed, failed, cancelled"),
        "{refused}"
    );
    let kept = target.list(&Default::default()).await.unwrap();
    assert_eq!(kept.len(), 1, "nothing of the load is kept");
    assert_eq!(kept[0].task_type, tt("old"));
}

fn check3(path: &Path) -> (Outcome, String, Vec<String>) {
    let report = validate(&SqliteOptions::new(path), &ValidateOptions::new(false));
    let c = report.checks.iter().find(|c| c.number == 3).unwrap();
    (c.outcome, c.reason.clone(), c.details.clone())
}

#[tokio::test]
async fn validate_finds_counts_and_rows_the_adapter_would_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let store = open(&path, Arc::new(FakeClock::new(START.parse().unwrap())));
    store
        .enqueue_batch(vec![
            NewTask::new(tt("a"), json!({"n": 1})),
            NewTask::new(tt("b"), json!({"n": 2})),
        ])
        .await
        .unwrap();
    drop(store);
    let (outcome, reason, details) = check3(&path);
    assert_eq!(outcome, Outcome::Pass, "{reason} {details:?}");
    // The round trip (check 5) wrote a probe task and rolled it back: counts still exact.
    let store = open(&path, Arc::new(FakeClock::new(START.parse().unwrap())));
    assert_exact(&store, "validate");
    drop(store);

    // Written as a tool that ignores CHECKs would (the schema refuses a region that is not
    // compatibility's; check 3 still looks for one).
    let tamper = |sql: &str| {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA ignore_check_constraints = ON")
            .unwrap();
        c.execute_batch(sql).unwrap();
    };
    // `sql` written behind PrismQ's back fails check 3 on queue_counts, naming `what`;
    // `undo` puts the counts and rows back in agreement, and check 3 passes again.
    let miscounted = |sql: &str, what: &str, undo: &str| {
        tamper(sql);
        let (outcome, reason, _) = check3(&path);
        assert_eq!(outcome, Outcome::Fail);
        assert!(
            reason.contains("queue_counts") && reason.contains(what),
            "{reason}"
        );
        tamper(undo);
        assert_eq!(check3(&path).0, Outcome::Pass);
    };
    // A task inserted: counted by nothing.
    miscounted(
        "INSERT INTO task_queue (type_id, params, run_after, created_at, updated_at) VALUES ((SELECT id FROM task_types WHERE name = 'a'), '{}', 0, 0, 0)",
        "a queued",
        "UPDATE queue_counts SET n = n + 1 WHERE type_id = (SELECT id FROM task_types WHERE name = 'a') AND status = 0",
    );
    // A status changed: since v14 no trigger moves its count.
    miscounted(
        "UPDATE task_queue SET status = 5 WHERE type_id = (SELECT id FROM task_types WHERE name = 'b')",
        "given another status",
        "UPDATE task_queue SET status = 0 WHERE type_id = (SELECT id FROM task_types WHERE name = 'b')",
    );

    // Rows the adapter never writes: params that are not JSON, a region that disagrees with
    // the compatibility it comes from.
    for (sql, what) in [
        (
            "UPDATE task_queue SET params = '{broken' WHERE type_id = (SELECT id FROM task_types WHERE name = 'b')",
            "params",
        ),
        (
            "UPDATE task_queue SET region = 'GB' WHERE type_id = (SELECT id FROM task_types WHERE name = 'b')",
            "region",
        ),
        (
            "UPDATE task_queue SET summary = 'not json' WHERE type_id = (SELECT id FROM task_types WHERE name = 'b')",
            "summary",
        ),
    ] {
        tamper(sql);
        // (A region against the CHECK also fails integrity_check, which is listed first.)
        let (outcome, reason, details) = check3(&path);
        assert_eq!(outcome, Outcome::Fail, "{sql}");
        assert!(
            details
                .iter()
                .any(|d| d.starts_with("FAIL") && d.contains("task rows") && d.contains(what)),
            "{sql}: {reason} {details:?}"
        );
        tamper("UPDATE task_queue SET params = '{\"n\": 2}', region = NULL, summary = NULL WHERE type_id = (SELECT id FROM task_types WHERE name = 'b')");
        assert_eq!(check3(&path).0, Outcome::Pass, "repaired after {sql}");
    }
}

#[test]
fn validate_fails_when_a_constraint_the_schema_keeps_is_gone() {
    for (check, names) in [
        (
            "CHECK (region IS NULL OR region GLOB ''[A-Z][A-Z]'')",
            "two capital letters",
        ),
        (
            "CHECK (compatibility IS NULL AND region IS NULL OR region IS json_extract(compatibility, ''$.region''))",
            "the one compatibility names",
        ),
        ("CHECK (priority BETWEEN 1 AND 10)", "priority 11"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        drop(open(
            &path,
            Arc::new(FakeClock::new(START.parse().unwrap())),
        ));
        let check8 = || {
            let report = validate(&SqliteOptions::new(&path), &ValidateOptions::new(true));
            let c = report.checks.iter().find(|c| c.number == 8).unwrap();
            (c.outcome, c.reason.clone())
        };
        assert_eq!(check8().0, Outcome::Pass);
        // One CHECK edited out of the table (the rows' format is unchanged).
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA writable_schema = ON").unwrap();
        let n = c
            .execute(
                &format!(
                    "UPDATE sqlite_schema SET sql = replace(sql, '{check}', '') WHERE name = 'task_queue' AND instr(sql, '{check}') > 0"
                ),
                [],
            )
            .unwrap();
        assert_eq!(n, 1, "{check} is in the table");
        c.execute_batch("PRAGMA writable_schema = OFF").unwrap();
        drop(c);
        let (outcome, reason) = check8();
        assert_eq!(outcome, Outcome::Fail, "without {check}");
        assert!(reason.contains(names), "without {check}: {reason}");
    }
}

#[tokio::test]
async fn a_region_given_in_lower_case_is_stored_normalised_and_claimed_by_its_workers() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(
        &dir.path().join("q.db"),
        Arc::new(FakeClock::new(START.parse().unwrap())),
    );
    // Built directly, past `Compatibility::with_region`: `validate` accepts it as it is.
    let mut task = NewTask::new(tt("a"), json!({}));
    task.compatibility = Compatibility {
        region: Some(" gb".into()),
    };
    let id = store.enqueue(task).await.unwrap().id;
    assert_eq!(
        store.get(id).await.unwrap().compatibility.region.as_deref(),
        Some("GB")
    );
    let claimed = store.claim(&request(&["a"])).await.unwrap().unwrap();
    assert_eq!(claimed.task.id, id, "a GB worker takes it");
    assert_exact(&store, "a normalised region");
}

/// Worker `worker`'s claim of any type, FIFO, a 60 s lease.
fn worker_request(worker: &str) -> ClaimRequest {
    ClaimRequest {
        worker: WorkerId::new(worker).unwrap(),
        filter: ClaimFilter::default(),
        strategy: ClaimingStrategy::Fifo,
        lease_for: Duration::from_secs(60),
    }
}

/// A failure of `class`.
fn failure(class: ErrorClass) -> Failure {
    Failure {
        class,
        message: "no".into(),
    }
}

/// Every transition a worker makes keeps the counts exact: claims with and without a start,
/// a start, completions of started and unstarted attempts, a completion with the next claim
/// and a batch of them, a retry, a deferral, a dead letter, a release, a stale lease
/// (nothing counted), lapsed leases taken back from `claimed` and from `running`, one
/// dead-lettered for its lapses, cancellations from queued, claimed and running, and a retry
/// of a dead letter.
#[tokio::test]
async fn every_worker_transition_keeps_the_counts_exact() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FakeClock::default());
    let store =
        SqliteStore::open(SqliteOptions::new(dir.path().join("q.db")), clock.clone()).unwrap();
    for i in 0..30 {
        let t = if i % 3 == 0 { "b" } else { "a" };
        store
            .enqueue(NewTask::new(TaskType::new(t).unwrap(), json!({ "i": i })))
            .await
            .unwrap();
    }
    assert_exact(&store, "enqueue");
    let w = worker_request("w");

    let claimed = store.claim(&w).await.unwrap().unwrap();
    assert_exact(&store, "a claim without a start");
    store.start(&claimed.lease).await.unwrap();
    assert_exact(&store, "a start");
    store.complete(&claimed.lease, None).await.unwrap();
    assert_exact(&store, "a completion");

    let unstarted = store.claim(&w).await.unwrap().unwrap();
    store.complete(&unstarted.lease, None).await.unwrap();
    assert_exact(&store, "the completion of an attempt never started");
    assert!(store.complete(&unstarted.lease, None).await.is_err());
    assert_exact(&store, "a completion with a stale lease");

    let running = store.claim_and_start(&w).await.unwrap().unwrap();
    assert_exact(&store, "claim_and_start");
    let next = store
        .complete_and_claim(&running.lease, None, &w)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_exact(&store, "complete_and_claim");

    let others: Vec<_> = [
        store.claim_and_start(&worker_request("x")).await,
        store.claim(&worker_request("y")).await,
    ]
    .into_iter()
    .map(|c| c.unwrap().unwrap())
    .collect();
    let items: Vec<Handover> = [&next, &others[0], &others[1]]
        .iter()
        .enumerate()
        .map(|(i, c)| Handover {
            lease: c.lease.clone(),
            summary: None,
            next: (i != 1).then(|| worker_request(c.lease.worker.as_str())),
        })
        .collect();
    let answers = store.complete_and_claim_many(&items).await.unwrap();
    assert_exact(&store, "a batch of completions, two with their next claim");
    let held: Vec<_> = answers
        .into_iter()
        .filter_map(|a| a.unwrap().unwrap())
        .collect();
    assert_eq!(held.len(), 2);

    store
        .fail(&held[0].lease, &failure(ErrorClass::Retryable))
        .await
        .unwrap();
    assert_exact(&store, "a failure retried");
    store
        .fail(&held[1].lease, &failure(ErrorClass::Permanent))
        .await
        .unwrap();
    assert_exact(&store, "a dead letter");
    let deferred = store.claim(&w).await.unwrap().unwrap();
    let later = clock
        .now()
        .checked_add(jiff::SignedDuration::from_secs(600))
        .unwrap();
    store
        .fail(&deferred.lease, &failure(ErrorClass::RetryableAfter(later)))
        .await
        .unwrap();
    assert_exact(&store, "a deferral");
    let released = store.claim_and_start(&w).await.unwrap().unwrap();
    store.release(&released.lease).await.unwrap();
    assert_exact(&store, "a release");

    // Lapsed leases, one claimed and one running, taken back by the next claims.
    let lapsing_claimed = store.claim(&worker_request("l1")).await.unwrap().unwrap();
    let lapsing_running = store
        .claim_and_start(&worker_request("l2"))
        .await
        .unwrap()
        .unwrap();
    clock.advance(Duration::from_secs(61));
    let rescued: Vec<_> = [store.claim_and_start(&w).await, store.claim(&w).await]
        .into_iter()
        .map(|c| c.unwrap().unwrap())
        .collect();
    assert_eq!(
        rescued
            .iter()
            .map(|c| c.task.id)
            .collect::<std::collections::BTreeSet<_>>(),
        [lapsing_claimed.task.id, lapsing_running.task.id].into(),
        "both lapsed tasks taken back first"
    );
    assert_exact(&store, "lapsed leases taken back");
    for c in &rescued {
        store.complete(&c.lease, None).await.unwrap();
    }
    assert_exact(&store, "the lapsed tasks completed");

    // One that lapses until it is dead-lettered on the way to a claim.
    let mut lease = store
        .claim_and_start(&worker_request("z"))
        .await
        .unwrap()
        .unwrap();
    for _ in 1..MAX_LAPSES {
        clock.advance(Duration::from_secs(3_600));
        lease = store
            .claim_and_start(&ClaimRequest {
                filter: ClaimFilter {
                    only: Some(lease.task.id),
                    ..ClaimFilter::default()
                },
                ..worker_request("z")
            })
            .await
            .unwrap()
            .unwrap();
    }
    clock.advance(Duration::from_secs(3_600));
    store.claim(&w).await.unwrap();
    assert_eq!(
        store.get(lease.task.id).await.unwrap().status,
        TaskStatus::Failed
    );
    assert_exact(&store, "a lease dead-lettered for its lapses");

    // An operator's transitions: cancellations from queued, claimed and running, and a dead
    // letter sent back to the queue.
    let queued = store
        .enqueue(NewTask::new(tt("b"), json!({ "cancel": 1 })))
        .await
        .unwrap();
    store.cancel(queued.id).await.unwrap();
    assert_exact(&store, "a queued task cancelled");
    let claimed = store.claim(&w).await.unwrap().unwrap();
    store.cancel(claimed.task.id).await.unwrap();
    assert_exact(&store, "a claimed task cancelled");
    let running = store.claim_and_start(&w).await.unwrap().unwrap();
    store.cancel(running.task.id).await.unwrap();
    assert_exact(&store, "a running task cancelled");
    store.retry(lease.task.id).await.unwrap();
    let c = assert_exact(&store, "a dead letter sent back");
    assert!(n(&c, "a", "cancelled") + n(&c, "b", "cancelled") >= 3);
}

/// Random sequences of everything workers and operators do, from several seeds: after every
/// step the kept counts equal the rows'. A step that the state refuses (a stale lease, a
/// task in the wrong status) must leave them exact too. The seed is in the failure message.
#[tokio::test]
async fn random_transitions_keep_the_counts_exact() {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    for seed in 0..6u64 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FakeClock::default());
        let store =
            SqliteStore::open(SqliteOptions::new(dir.path().join("q.db")), clock.clone()).unwrap();
        let mut held = Vec::new();
        let mut ids = Vec::new();
        for step in 0..250 {
            let op = rng.gen_range(0..11);
            let pick = |rng: &mut SmallRng, n: usize| rng.gen_range(0..n.max(1));
            let worker = worker_request(["w", "x", "y"][rng.gen_range(0..3)]);
            match op {
                0 | 1 => {
                    let t = if rng.gen_bool(0.5) { "a" } else { "b" };
                    let task = store
                        .enqueue(NewTask::new(tt(t), json!({ "step": step })))
                        .await
                        .unwrap();
                    ids.push(task.id);
                }
                2 => held.extend(store.claim(&worker).await.unwrap()),
                3 => held.extend(store.claim_and_start(&worker).await.unwrap()),
                4 if !held.is_empty() => {
                    let c = &held[pick(&mut rng, held.len())];
                    let _ = store.start(&c.lease).await;
                }
                5 if !held.is_empty() => {
                    let c = held.swap_remove(pick(&mut rng, held.len()));
                    let _ = store.complete(&c.lease, None).await;
                }
                6 if !held.is_empty() => {
                    let c = held.swap_remove(pick(&mut rng, held.len()));
                    let class = [ErrorClass::Retryable, ErrorClass::Permanent][rng.gen_range(0..2)];
                    let _ = store.fail(&c.lease, &failure(class)).await;
                }
                7 if !held.is_empty() => {
                    let c = held.swap_remove(pick(&mut rng, held.len()));
                    let _ = store.release(&c.lease).await;
                }
                8 if !held.is_empty() => {
                    let c = held.swap_remove(pick(&mut rng, held.len()));
                    if let Ok(Ok(Some(next))) =
                        store.complete_and_claim(&c.lease, None, &worker).await
                    {
                        held.push(next);
                    }
                }
                9 if !ids.is_empty() => {
                    let id = ids[pick(&mut rng, ids.len())];
                    if rng.gen_bool(0.5) {
                        let _ = store.cancel(id).await;
                    } else {
                        let _ = store.retry(id).await;
                    }
                }
                10 => clock.advance(Duration::from_secs(rng.gen_range(0..90))),
                _ => {}
            }
            let counts = counts(
                &store,
                "SELECT t.name, CAST(c.status AS TEXT), c.n FROM queue_counts c JOIN task_types t ON t.id = c.type_id WHERE c.n <> 0",
            );
            let rows = counts_of_rows(&store);
            assert_eq!(counts, rows, "seed {seed}, step {step}, operation {op}");
        }
    }
}

/// The table's own count by (type, status code), as text keys like [`counts`] reads them.
fn counts_of_rows(store: &SqliteStore) -> Counts {
    counts(
        store,
        "SELECT t.name, CAST(q.status AS TEXT), count(*) FROM task_queue q JOIN task_types t ON t.id = q.type_id GROUP BY 1, 2",
    )
}
