//! `db copy` on the dump and load ports, against real SQLite files and the real PostgreSQL
//! server (`source scripts/services/postgres.sh`): a populated queue copied SQLite →
//! PostgreSQL → SQLite, SQLite → SQLite and PostgreSQL → PostgreSQL reads the same through
//! every port; a non-empty target is refused without force and replaced with it; a region
//! an older source kept as given arrives normalised.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prismq_app::copy::{copy_between, copy_database, CopyError, CopyReport};
use prismq_app::storage::Endpoint;
use prismq_domain::ports::Load;
use prismq_domain::ports::{
    ClaimFilter, ClaimRequest, Clock, QuotaLedger, ResultQuery, ResultStore, SystemClock,
    TaskFilter, TaskLog, TaskQueue, WorkerInfo, WorkerRegistry,
};
use prismq_domain::task::{NewTask, Priority, TaskType, WorkerId};
use prismq_domain::{ClaimingStrategy, ContentItem, ErrorClass, Timestamp};
use prismq_storage_postgres::{PostgresOptions, PostgresStore};
use prismq_storage_sqlite::PageSize;
use prismq_storage_sqlite::{SqliteOptions, SqliteStore};
use serde_json::json;

/// The test server's URL; the test fails, never skips, without it.
fn url() -> String {
    match std::env::var("PRISMQ_TEST_POSTGRES_URL") {
        Ok(u) if !u.trim().is_empty() => u,
        _ => panic!(
            "PRISMQ_TEST_POSTGRES_URL is not set: run `source scripts/services/postgres.sh` first"
        ),
    }
}

/// A schema name no other test uses.
fn fresh_schema(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("t_{tag}_{}_{n}_{nanos}", std::process::id())
}

/// A store on `schema` of the test server.
fn store_in(schema: &str) -> PostgresStore {
    let o = PostgresOptions::new(url()).with_schema(schema);
    PostgresStore::connect_lazy(o, Arc::new(SystemClock) as Arc<dyn Clock>).expect("store")
}

/// `db copy` from the SQLite file `from` to PostgreSQL in `schema`.
async fn sqlite_to_pg(
    from: &std::path::Path,
    schema: &str,
    force: bool,
) -> Result<CopyReport, CopyError> {
    copy_database(
        &Endpoint::Sqlite(from.to_path_buf()),
        &Endpoint::Postgres(url()),
        force,
        Some(schema),
        PageSize::DEFAULT,
    )
    .await
}

/// `db copy` from PostgreSQL in `schema` to the SQLite file `to`.
async fn pg_to_sqlite(
    schema: &str,
    to: &std::path::Path,
    force: bool,
) -> Result<CopyReport, CopyError> {
    copy_database(
        &Endpoint::Postgres(url()),
        &Endpoint::Sqlite(to.to_path_buf()),
        force,
        Some(schema),
        PageSize::DEFAULT,
    )
    .await
}

fn tt(s: &str) -> TaskType {
    TaskType::new(s).unwrap()
}

async fn populate(s: &SqliteStore) {
    let tasks: Vec<NewTask> = (0..50)
        .map(|i| {
            NewTask::new(
                tt(["a", "b"][i % 2]),
                json!({ "i": i, "nested": { "x": [1, 2.5, "z"] } }),
            )
            .priority(Priority::new((i % 10) as i64 + 1).unwrap())
        })
        .collect();
    s.enqueue_batch(tasks).await.unwrap();
    s.enqueue(NewTask::new(tt("a"), json!({})).idempotency_key("key-1"))
        .await
        .unwrap();
    let req = ClaimRequest {
        worker: WorkerId::new("w1").unwrap(),
        filter: ClaimFilter::default(),
        strategy: ClaimingStrategy::Fifo,
        lease_for: Duration::from_secs(600),
    };
    for i in 0..10 {
        let c = s.claim(&req).await.unwrap().unwrap();
        s.start(&c.lease).await.unwrap();
        match i % 3 {
            0 => s
                .complete(&c.lease, Some(json!({ "found": i })))
                .await
                .unwrap(),
            1 => {
                let failure = prismq_domain::ports::Failure {
                    class: ErrorClass::Permanent,
                    message: format!("broken {i}"),
                };
                s.fail(&c.lease, &failure).await.unwrap();
            }
            _ => {} // left running
        }
    }
    // A lease that lapses and is taken back: the task carries a lapse count.
    let short = ClaimRequest {
        lease_for: Duration::from_millis(1),
        ..req.clone()
    };
    let lapsing = s.claim(&short).await.unwrap().unwrap().task.id;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let rescued = s.claim(&req).await.unwrap().unwrap();
    assert_eq!((rescued.task.id, rescued.task.lapses), (lapsing, 1));
    s.register(&WorkerInfo {
        id: WorkerId::new("w1").unwrap(),
        hostname: "h".into(),
        pid: 42,
        capabilities: vec![tt("a"), tt("b")],
        strategy: ClaimingStrategy::Fifo,
    })
    .await
    .unwrap();
    let mut item = ContentItem::new("youtube_api", "vid1", "A video");
    item.tags = vec!["t1".into()];
    item.metrics.views = Some(10);
    s.save(
        None,
        &[item.clone(), ContentItem::new("youtube_api", "vid2", "B")],
    )
    .await
    .unwrap();
    item.metrics.views = Some(25);
    s.save(None, &[item]).await.unwrap();
    // A channel with enough old uploads to have baselines and scores.
    let old = Timestamp::now().as_second() - 60 * 86_400;
    let channel: Vec<ContentItem> = (0..12)
        .map(|i| {
            let mut v = ContentItem::new("youtube_channel", format!("ch{i:02}"), "c");
            v.channel_id = Some("UCcopy".into());
            v.published_at = Timestamp::from_second(old - i * 86_400).ok();
            v.metrics.views = Some(if i == 0 { 3_000 } else { 1_000 });
            v.extra.insert("is_short".into(), json!(false));
            v
        })
        .collect();
    s.save(None, &channel).await.unwrap();
    // Growth as a later save would have stored it (the clock here cannot move).
    s.with_connection(|c| {
        c.execute(
            "UPDATE results SET growth_24h = 12.5, growth_24h_span = 7200 WHERE source_id = 'vid1'",
            [],
        )
        .unwrap();
        Ok(())
    })
    .unwrap();
    let end = Timestamp::from_second(4_000_000_000).unwrap();
    s.try_consume("yt", 7, 100, end).await.unwrap();
}

/// Everything the ports can read, as JSON, for comparison across stores.
async fn snapshot<S>(s: &S) -> serde_json::Value
where
    S: TaskQueue + TaskLog + ResultStore + WorkerRegistry + QuotaLedger,
{
    let tasks = TaskQueue::list(
        s,
        &TaskFilter {
            limit: 10_000,
            ..TaskFilter::default()
        },
    )
    .await
    .unwrap();
    let mut logs = Vec::new();
    for t in &tasks {
        logs.push(TaskLog::list(s, t.id).await.unwrap());
    }
    let results = s
        .query(&ResultQuery {
            limit: 100,
            ..ResultQuery::default()
        })
        .await
        .unwrap();
    let history = s.history("youtube", "vid1").await.unwrap();
    let mut workers = WorkerRegistry::list(s, Duration::from_secs(1_000_000))
        .await
        .unwrap();
    for w in &mut workers {
        w.health = prismq_domain::ports::WorkerHealth::Active;
    }
    json!({
        "tasks": tasks,
        "logs": logs,
        "results": results,
        "history": history,
        "workers": workers,
        "quota": s.used("yt").await.unwrap(),
        "baselines": s.baselines("UCcopy").await.unwrap(),
        "stats": s.stats().await.unwrap(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_postgres_and_back_preserves_everything() {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let dir = tempfile::tempdir().unwrap();
    let src_path = dir.path().join("src.db");
    let sqlite = SqliteStore::open(SqliteOptions::new(&src_path), clock.clone()).unwrap();
    populate(&sqlite).await;
    let before = snapshot(&sqlite).await;
    let lapsed = before["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["lapses"] == 1)
        .count();
    assert_eq!(lapsed, 1, "the source holds one task with a lapse");
    let scored = before["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["outlier"].is_null())
        .count();
    assert!(scored >= 12, "the source holds scores: {scored}");
    assert!(!before["baselines"].as_array().unwrap().is_empty());
    assert!(before["results"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["growth"]["24h"]["views_per_hour"] == 12.5));

    let schema = fresh_schema("copy");
    let pg = store_in(&schema);
    let report = sqlite_to_pg(&src_path, &schema, false).await.unwrap();
    assert_eq!(report.tasks, 51);
    assert_eq!(
        (report.workers, report.results, report.metrics, report.quota),
        (1, 14, 15, 1)
    );
    assert!(report.baselines > 0);
    assert!(report.logs > 0);
    assert_eq!(
        snapshot(&pg).await,
        before,
        "PostgreSQL reads what SQLite held"
    );

    // A non-empty target is refused, and left unchanged; with force it is replaced.
    match sqlite_to_pg(&src_path, &schema, false).await {
        Err(CopyError::TargetNotEmpty { rows, .. }) => assert!(rows > 0),
        other => panic!("expected TargetNotEmpty, got {other:?}"),
    }
    assert_eq!(
        sqlite_to_pg(&src_path, &schema, true).await.unwrap(),
        report
    );
    assert_eq!(snapshot(&pg).await, before);

    // New ids continue after the copied ones.
    let next = pg.enqueue(NewTask::new(tt("a"), json!({}))).await.unwrap();
    assert!(next.id.0 > 51, "{:?}", next.id);
    let dup = pg
        .enqueue(NewTask::new(tt("a"), json!({})).idempotency_key("key-1"))
        .await
        .unwrap();
    assert!(dup.duplicate);
    TaskQueue::cancel(&pg, next.id).await.unwrap();
    let purged = pg
        .purge(prismq_domain::TaskStatus::Cancelled, Timestamp::MAX, 10)
        .await
        .unwrap();
    assert_eq!(purged, 1);

    // And back to a fresh SQLite file.
    let back_path = dir.path().join("back.db");
    let back_report = pg_to_sqlite(&schema, &back_path, false).await.unwrap();
    assert_eq!(back_report, report);
    let back = SqliteStore::open(SqliteOptions::new(&back_path), clock).unwrap();
    assert_eq!(
        snapshot(&back).await,
        before,
        "SQLite reads back what it held"
    );
    // And stores it as compactly: a task that never changed has no updated_at (v15), though
    // PostgreSQL, between, stored one for every task.
    let unchanged = |p: &std::path::Path| -> i64 {
        rusqlite::Connection::open(p)
            .and_then(|c| {
                c.query_row(
                    "SELECT count(*) FROM task_queue WHERE updated_at IS NULL",
                    [],
                    |r| r.get(0),
                )
            })
            .unwrap()
    };
    assert!(unchanged(&src_path) > 0);
    assert_eq!(unchanged(&back_path), unchanged(&src_path));
    assert!(matches!(
        pg_to_sqlite(&schema, &back_path, false).await,
        Err(CopyError::TargetNotEmpty { .. })
    ));

    // The copied log numbers on: a note appended to a copied task with stored entries
    // follows them (schema v2 numbers entries from the row's log_seq, set by the copy).
    let mut with_logs = None;
    for id in 1..=50 {
        let id = prismq_domain::TaskId(id);
        let entries = TaskLog::list(&back, id).await.unwrap();
        if entries.len() > 1 {
            with_logs = Some((id, entries));
            break;
        }
    }
    let (id, had) = with_logs.expect("a copied task with log entries beyond `enqueued`");
    let note = prismq_domain::ports::NewLogEntry {
        level: prismq_domain::ports::LogLevel::Info,
        event: prismq_domain::ports::TaskEvent::Progress,
        message: "after the copy".into(),
        details: serde_json::Value::Null,
    };
    TaskLog::append(&back, id, note).await.unwrap();
    let now = TaskLog::list(&back, id).await.unwrap();
    assert_eq!(now.len(), had.len() + 1);
    assert_eq!(now[..had.len()], had[..]);
    assert_eq!(now[had.len()].message, "after the copy");
}

/// A SQLite source older than the `lapses` column (schema v2) still copies: every task
/// arrives with no lapses, everything else as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_before_the_lapse_count_copies_with_no_lapses() {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let dir = tempfile::tempdir().unwrap();
    let src_path = dir.path().join("v2.db");
    let sqlite = SqliteStore::open(SqliteOptions::new(&src_path), clock.clone()).unwrap();
    let id = sqlite
        .enqueue(NewTask::new(tt("a"), json!({ "old": true })))
        .await
        .unwrap()
        .id;
    sqlite.migrate_down(2).unwrap();
    drop(sqlite);

    let schema = fresh_schema("copy_v2");
    let pg = store_in(&schema);
    let report = sqlite_to_pg(&src_path, &schema, false).await.unwrap();
    assert_eq!(report.tasks, 1);
    let t = TaskQueue::get(&pg, id).await.unwrap();
    assert_eq!((t.lapses, t.attempts), (0, 0));
    assert_eq!(t.params, json!({ "old": true }));
}

/// A source that kept a region as given (` gb`: SQLite before schema v11 and PostgreSQL
/// before v10 did; a dump reads a store as it is) copies with the region normalised, so the
/// task is claimed by its region's workers on both engines (SQLite's schema, which refuses
/// such a region, takes it too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_kept_as_given_is_copied_normalised() {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let dir = tempfile::tempdir().unwrap();
    let src_path = dir.path().join("v10.db");
    let sqlite = SqliteStore::open(SqliteOptions::new(&src_path), clock.clone()).unwrap();
    let task = NewTask::new(tt("a"), json!({}))
        .compatibility(prismq_domain::task::Compatibility::with_region("GB").unwrap());
    let id = sqlite.enqueue(task).await.unwrap().id;
    sqlite.migrate_down(10).unwrap();
    drop(sqlite);
    rusqlite::Connection::open(&src_path)
        .unwrap()
        .execute(
            "UPDATE task_queue SET compatibility = '{\"region\":\" gb\"}' WHERE id = ?1",
            [id.0],
        )
        .unwrap();

    let claim = ClaimRequest {
        worker: WorkerId::new("w-gb").unwrap(),
        filter: ClaimFilter {
            region: Some("GB".into()),
            ..ClaimFilter::default()
        },
        strategy: ClaimingStrategy::Fifo,
        lease_for: Duration::from_secs(60),
    };

    let dst_path = dir.path().join("copy.db");
    copy_database(
        &Endpoint::Sqlite(src_path.clone()),
        &Endpoint::Sqlite(dst_path.clone()),
        false,
        None,
        PageSize::DEFAULT,
    )
    .await
    .expect("a SQLite target takes the normalised region");
    let dst = SqliteStore::open(SqliteOptions::new(&dst_path), clock.clone()).unwrap();
    let t = TaskQueue::get(&dst, id).await.unwrap();
    assert_eq!(t.compatibility.region.as_deref(), Some("GB"));
    assert_eq!(dst.claim(&claim).await.unwrap().unwrap().task.id, id);

    let schema = fresh_schema("copy_region");
    let pg = store_in(&schema);
    sqlite_to_pg(&src_path, &schema, false).await.unwrap();
    let t = TaskQueue::get(&pg, id).await.unwrap();
    assert_eq!(t.compatibility.region.as_deref(), Some("GB"));
    assert_eq!(pg.claim(&claim).await.unwrap().unwrap().task.id, id);
}

/// SQLite → SQLite (a new direction with the ports): the copy reads the same as the source,
/// a non-empty target is refused and left unchanged, and `force` replaces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_sqlite_preserves_everything() {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let dir = tempfile::tempdir().unwrap();
    let src_path = dir.path().join("src.db");
    let sqlite = SqliteStore::open(SqliteOptions::new(&src_path), clock.clone()).unwrap();
    populate(&sqlite).await;
    let before = snapshot(&sqlite).await;
    let to = dir.path().join("copy.db");
    let (from, target) = (
        Endpoint::Sqlite(src_path.clone()),
        Endpoint::Sqlite(to.clone()),
    );
    // A copy into a new file is how a queue moves to another page size.
    let small = PageSize::new(1024).unwrap();
    let report = copy_database(&from, &target, false, None, small)
        .await
        .unwrap();
    assert_eq!(report.tasks, 51);
    let page_size = |p: &std::path::Path| -> i64 {
        rusqlite::Connection::open(p)
            .and_then(|c| c.query_row("PRAGMA page_size", [], |r| r.get(0)))
            .unwrap()
    };
    assert_eq!((page_size(&src_path), page_size(&to)), (2048, 1024));
    assert_eq!(
        (report.workers, report.results, report.metrics, report.quota),
        (1, 14, 15, 1)
    );
    let copy = SqliteStore::open(SqliteOptions::new(&to), clock).unwrap();
    assert_eq!(
        snapshot(&copy).await,
        before,
        "the copy reads what the source held"
    );
    copy.enqueue(NewTask::new(tt("a"), json!({"after": true})))
        .await
        .unwrap();
    match copy_database(&from, &target, false, None, PageSize::DEFAULT).await {
        Err(e @ CopyError::TargetNotEmpty { .. }) => {
            assert!(e.is_refusal());
            assert!(e.to_string().contains("SQLite database"), "{e}");
        }
        other => panic!("expected TargetNotEmpty, got {other:?}"),
    }
    let all = TaskFilter {
        limit: 10_000,
        ..TaskFilter::default()
    };
    assert_eq!(TaskQueue::list(&copy, &all).await.unwrap().len(), 52);
    assert_eq!(
        copy_database(&from, &target, true, None, PageSize::DEFAULT)
            .await
            .unwrap(),
        report
    );
    assert_eq!(
        page_size(&to),
        1024,
        "an existing target keeps its page size"
    );
    assert_eq!(snapshot(&copy).await, before, "force replaced the target");
}

/// PostgreSQL → PostgreSQL (a new direction with the ports), between two schemas of the
/// real server: the copy reads the same as the source, ids continue after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_to_postgres_preserves_everything() {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let dir = tempfile::tempdir().unwrap();
    let src_path = dir.path().join("src.db");
    let sqlite = SqliteStore::open(SqliteOptions::new(&src_path), clock).unwrap();
    populate(&sqlite).await;
    let before = snapshot(&sqlite).await;
    let (a, b) = (fresh_schema("pg_a"), fresh_schema("pg_b"));
    let report = sqlite_to_pg(&src_path, &a, false).await.unwrap();
    let (source, target) = (store_in(&a), store_in(&b));
    let copied = copy_between(&source, target.begin_load().await.unwrap(), false)
        .await
        .unwrap();
    assert_eq!(copied, report);
    assert_eq!(
        snapshot(&target).await,
        before,
        "the copy reads what the source held"
    );
    let refused = copy_between(&source, target.begin_load().await.unwrap(), false).await;
    assert!(
        matches!(&refused, Err(CopyError::TargetNotEmpty { target, .. }) if target == "PostgreSQL database"),
        "{refused:?}"
    );
    let next = target
        .enqueue(NewTask::new(tt("a"), json!({})))
        .await
        .unwrap();
    assert!(next.id.0 > 51, "{:?}", next.id);
}
