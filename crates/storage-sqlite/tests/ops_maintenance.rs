//! Maintenance and backup on real files: prune deletes exactly what is older than the
//! cutoffs, in batches, archiving parseable JSON lines first; checkpoint, optimize and
//! vacuum report truthfully; a backup taken while a thread enqueues is a valid database.

use prismq_domain::ports::Failure;
use prismq_domain::ports::{ClaimFilter, ClaimRequest, SystemClock};
use prismq_domain::task::{NewTask, TaskType, WorkerId};
use prismq_domain::{ClaimingStrategy, ErrorClass, Timestamp};
use prismq_storage_sqlite::ops::{self, OpsError, PruneOptions, VacuumMode};
use prismq_storage_sqlite::{SqliteOptions, SqliteStore};
use prismq_testkit::clock::FakeClock;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

fn open(path: &Path, clock: Arc<FakeClock>) -> SqliteStore {
    SqliteStore::open(SqliteOptions::new(path), clock).unwrap()
}

fn tt() -> TaskType {
    TaskType::new("keyword_search").unwrap()
}

fn claim(store: &SqliteStore) -> prismq_domain::ports::ClaimedTask {
    let req = ClaimRequest {
        worker: WorkerId::new("w1").unwrap(),
        filter: ClaimFilter::default(),
        strategy: ClaimingStrategy::Fifo,
        lease_for: Duration::from_secs(600),
    };
    store
        .claim_blocking(&req)
        .unwrap()
        .expect("a task to claim")
}

/// Enqueues `n` tasks and finishes them: `complete` of them completed, the rest failed
/// permanently. Each finished task has two log entries (claimed, then completed/failed).
fn finish(store: &SqliteStore, n: usize, complete: usize) {
    let tasks: Vec<NewTask> = (0..n)
        .map(|i| NewTask::new(tt(), json!({"query": format!("q{i}")})))
        .collect();
    store.enqueue_batch_blocking(&tasks).unwrap();
    for i in 0..n {
        let c = claim(store);
        if i < complete {
            store.complete_blocking(&c.lease, None).unwrap();
        } else {
            let f = Failure {
                class: ErrorClass::Permanent,
                message: "gone".into(),
            };
            store.fail_blocking(&c.lease, &f).unwrap();
        }
    }
}

fn count(store: &SqliteStore, sql: &str) -> i64 {
    store
        .with_connection(|c| Ok(c.query_row(sql, [], |r| r.get(0)).unwrap()))
        .unwrap()
}

#[test]
fn prune_counts_are_exact_batched_and_archived_first() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FakeClock::default());
    let store = open(&dir.path().join("q.db"), clock.clone());
    finish(&store, 23, 15); // old: 15 completed, 8 failed
    clock.advance(40 * DAY);
    let cutoff = clock.now();
    clock.advance(DAY);
    finish(&store, 5, 3); // recent: 3 completed, 2 failed
    let archive = dir.path().join("archive.jsonl");
    let opts = PruneOptions {
        completed_before: Some(cutoff),
        failed_before: Some(cutoff),
        archive: Some(archive.clone()),
        batch_size: 4,
        pause: Duration::ZERO,
        ..PruneOptions::default()
    };
    let r = ops::prune(&store, &opts).unwrap();
    assert_eq!((r.completed, r.failed, r.cancelled), (15, 8, 0));
    assert_eq!(r.task_logs, 46, "two log entries per pruned task");
    assert_eq!(r.logs, 0);
    assert_eq!(r.batches, 4 + 2, "ceil(15/4) + ceil(8/4)");
    assert_eq!(r.archived_lines, 23);
    assert_eq!(count(&store, "SELECT count(*) FROM task_queue"), 5);
    assert_eq!(count(&store, "SELECT count(*) FROM task_log_entries"), 10);
    assert_eq!(
        count(&store, "SELECT count(*) FROM task_logs"),
        4,
        "a completed task's entries are read from its row; a failed one's are rows"
    );
    assert_eq!(
        count(&store, "SELECT sum(n) FROM queue_counts"),
        5,
        "trigger-kept counts follow"
    );
    let text = std::fs::read_to_string(&archive).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 23);
    for l in &lines {
        assert_eq!(l["kind"], "task");
        assert!(l["task"]["id"].as_i64().unwrap() > 0);
        assert_eq!(l["logs"].as_array().unwrap().len(), 2, "{l}");
        let status = l["task"]["status"].as_str().unwrap();
        assert!(status == "completed" || status == "failed");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // A second run finds nothing.
    let again = ops::prune(&store, &opts).unwrap();
    assert_eq!(
        (again.completed, again.failed, again.archived_lines),
        (0, 0, 0)
    );
}

#[test]
fn prune_logs_by_age_keeps_the_tasks_and_newer_entries() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FakeClock::default());
    let store = open(&dir.path().join("q.db"), clock.clone());
    let tasks: Vec<NewTask> = (0..30)
        .map(|i| NewTask::new(tt(), json!({"query": i.to_string()})))
        .collect();
    store.enqueue_batch_blocking(&tasks).unwrap();
    // 30 claims now (30 old "claimed" entries, read from the rows while the attempts run);
    // 12 released later, which stores their old "claimed" entry and a new "released" one.
    let claimed: Vec<_> = (0..30).map(|_| claim(&store)).collect();
    clock.advance(10 * DAY);
    let cutoff = clock.now();
    clock.advance(DAY);
    for c in &claimed[..12] {
        store.release_blocking(&c.lease).unwrap();
    }
    let archive = dir.path().join("logs.jsonl");
    let opts = PruneOptions {
        logs_before: Some(cutoff),
        archive: Some(archive.clone()),
        batch_size: 7,
        pause: Duration::ZERO,
        ..PruneOptions::default()
    };
    let r = ops::prune(&store, &opts).unwrap();
    // The 18 running attempts' entries belong to their rows and stay with them.
    assert_eq!(r.logs, 12);
    assert_eq!(r.batches, 2, "ceil(12/7)");
    assert_eq!(r.archived_lines, 12);
    assert_eq!(count(&store, "SELECT count(*) FROM task_logs"), 12);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM task_log_entries WHERE event = 'claimed'"
        ),
        18
    );
    assert_eq!(count(&store, "SELECT count(*) FROM task_queue"), 30);
    for line in std::fs::read_to_string(&archive).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["kind"], "log");
        assert_eq!(v["log"]["event"], "claimed");
        assert!(
            v["log"]["at"]
                .as_str()
                .unwrap()
                .parse::<Timestamp>()
                .unwrap()
                < cutoff
        );
    }
}

#[test]
fn prune_refuses_a_zero_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("q.db"), Arc::new(FakeClock::default()));
    let opts = PruneOptions {
        batch_size: 0,
        ..PruneOptions::default()
    };
    assert!(matches!(
        ops::prune(&store, &opts),
        Err(OpsError::Invalid { .. })
    ));
}

#[test]
fn checkpoint_optimize_and_vacuum_report_truthfully() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FakeClock::default());
    let store = open(&dir.path().join("q.db"), clock.clone());
    finish(&store, 300, 300);
    let cp = ops::checkpoint(&store).unwrap();
    assert!(!cp.busy);
    assert_eq!(cp.wal_bytes_after, 0);
    let opt = ops::optimize(&store).unwrap();
    assert!(opt.indexes_with_stats > 0, "{opt:?}");
    clock.advance(DAY);
    let opts = PruneOptions {
        completed_before: Some(clock.now()),
        pause: Duration::ZERO,
        ..PruneOptions::default()
    };
    assert_eq!(ops::prune(&store, &opts).unwrap().completed, 300);
    // The schema leaves auto_vacuum off: incremental says so and does nothing.
    let inc = ops::vacuum(&store, VacuumMode::Incremental { pages: None }).unwrap();
    assert!(!inc.ran);
    assert_eq!(inc.auto_vacuum_before, "none");
    assert!(inc.note.contains("--full"), "{}", inc.note);
    assert!(inc.free_pages_before > 0);
    let full = ops::vacuum(&store, VacuumMode::Full).unwrap();
    assert!(full.ran);
    assert_eq!(full.auto_vacuum_after, "incremental");
    assert_eq!(full.free_pages_after, 0);
    assert!(full.bytes_reclaimed > 0, "{full:?}");
    // From now on incremental vacuum works.
    finish(&store, 200, 200);
    clock.advance(DAY);
    let opts = PruneOptions {
        completed_before: Some(clock.now()),
        pause: Duration::ZERO,
        ..PruneOptions::default()
    };
    ops::prune(&store, &opts).unwrap();
    let inc = ops::vacuum(&store, VacuumMode::Incremental { pages: None }).unwrap();
    assert!(inc.ran);
    assert_eq!(inc.free_pages_after, 0);
    assert!(inc.bytes_reclaimed > 0, "{inc:?}");
}

#[test]
fn backup_while_a_thread_enqueues_is_a_valid_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    let store = SqliteStore::open(SqliteOptions::new(&db), Arc::new(SystemClock)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t = NewTask::new(tt(), json!({"query": n.to_string()}));
                store.enqueue_blocking(&t).unwrap();
                n += 1;
            }
            n
        })
    };
    while count(&store, "SELECT count(*) FROM task_queue") < 200 {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::create_dir_all(dir.path().join("backups")).unwrap();
    let out = dir.path().join("backups").join("q-backup.db");
    let report = ops::backup(&store, &out).unwrap();
    // An empty file the caller created (a temporary file) is written into.
    let second_path = dir.path().join("q-backup-2.db");
    std::fs::write(&second_path, b"").unwrap();
    let second = ops::backup(&store, &second_path).unwrap();
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(report.pages > 0 && report.bytes > 0);
    assert_eq!(report.integrity, "ok");
    // The copy is a whole, consistent database: integrity, counts kept by the triggers
    // match the rows, and PrismQ opens it.
    let c = rusqlite::Connection::open(&out).unwrap();
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let rows: i64 = c
        .query_row("SELECT count(*) FROM task_queue", [], |r| r.get(0))
        .unwrap();
    let counted: i64 = c
        .query_row("SELECT sum(n) FROM queue_counts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, counted);
    assert!(
        rows >= 200 && (rows as u64) <= written,
        "{rows} of {written}"
    );
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete", "a backup is one self-contained file");
    drop(c);
    assert!(second.bytes > 0);
    SqliteStore::open(SqliteOptions::new(&out), Arc::new(SystemClock)).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // Never writes into a file that holds anything, nor into the database itself; where the
    // copy goes next (replacing a file, streaming it) is the CLI's decision.
    let before = std::fs::read(&out).unwrap();
    assert!(matches!(
        ops::backup(&store, &out),
        Err(OpsError::Exists { .. })
    ));
    assert_eq!(std::fs::read(&out).unwrap(), before);
    assert!(matches!(
        ops::backup(&store, &db),
        Err(OpsError::Invalid { .. })
    ));
    let partials: Vec<_> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(partials.is_empty());
}

/// Saves the sightings of the sightings-prune tests, a day apart: video `v` found by a
/// channel task (tasks 1, 2, 3, a save outside a task, then task 6 ten days in) and a
/// keyword search (tasks 4, 5); `w` once. Returns the cutoff (day 5).
fn sightings_history(store: &SqliteStore, clock: &FakeClock) -> Timestamp {
    use prismq_domain::task::TaskId;
    use prismq_domain::ContentItem;
    let start = clock.now();
    let at = |day: u64| start + jiff::SignedDuration::from_secs(86_400 * day as i64);
    let item = |source: &str, id: &str| ContentItem::new(source, id, "t");
    let save = |day: u64, task: Option<i64>, items: Vec<ContentItem>| {
        clock.set(at(day));
        store.save_blocking(task.map(TaskId), &items).unwrap();
    };
    save(
        0,
        Some(1),
        vec![item("youtube_channel", "v"), item("youtube_api", "w")],
    );
    save(1, Some(2), vec![item("youtube_channel", "v")]);
    save(2, Some(3), vec![item("youtube_channel", "v")]);
    save(2, Some(4), vec![item("youtube_keyword", "v")]);
    save(3, Some(5), vec![item("youtube_keyword", "v")]);
    save(3, None, vec![item("youtube_channel", "v")]);
    save(10, Some(6), vec![item("youtube_channel", "v")]);
    at(5)
}

#[test]
fn prune_keeps_each_records_first_and_latest_sighting_per_source_kind() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FakeClock::default());
    let store = open(&dir.path().join("q.db"), clock.clone());
    let cutoff = sightings_history(&store, &clock);
    let left = |store: &SqliteStore| -> Vec<(String, String, Option<i64>)> {
        store
            .with_connection(|c| {
                Ok(c.prepare(
                    "SELECT r.source_id, s.source, s.task_id FROM result_sightings s
                     JOIN results r ON r.id = s.result_id ORDER BY r.source_id, s.source, s.seen_at",
                )
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect())
            })
            .unwrap()
    };
    let view =
        "SELECT group_concat(source || source_id || first_seen_at || ':' || last_seen_at, ',')
                FROM (SELECT * FROM youtube_results ORDER BY source_id, source)";
    let (view_before, metrics_before) = (
        store
            .with_connection(|c| Ok(c.query_row(view, [], |r| r.get::<_, String>(0)).unwrap()))
            .unwrap(),
        count(&store, "SELECT count(*) FROM result_metrics"),
    );
    assert_eq!(left(&store).len(), 8);
    let archive = dir.path().join("archive.jsonl");
    let opts = PruneOptions {
        sightings_before: Some(cutoff),
        archive: Some(archive.clone()),
        batch_size: 1,
        pause: Duration::ZERO,
        ..PruneOptions::default()
    };
    let r = ops::prune(&store, &opts).unwrap();
    assert_eq!((r.sightings, r.batches, r.archived_lines), (3, 1, 3));
    assert_eq!((r.completed, r.logs), (0, 0));
    let s = |id: &str, source: &str, task: Option<i64>| (id.to_owned(), source.to_owned(), task);
    assert_eq!(
        left(&store),
        vec![
            s("v", "youtube_channel", Some(1)),
            s("v", "youtube_channel", Some(6)),
            s("v", "youtube_keyword", Some(4)),
            s("v", "youtube_keyword", Some(5)),
            s("w", "youtube_api", Some(1)),
        ],
        "each record's first and latest by each kind of source stay"
    );
    // Nothing else is lost: the records, their history, and where and when each was first
    // and last seen by each kind of source (the seed-era view) are as before.
    assert_eq!(count(&store, "SELECT count(*) FROM results"), 2);
    assert_eq!(
        count(&store, "SELECT count(*) FROM result_metrics"),
        metrics_before
    );
    assert_eq!(
        store
            .with_connection(|c| Ok(c.query_row(view, [], |r| r.get::<_, String>(0)).unwrap()))
            .unwrap(),
        view_before
    );
    let lines: Vec<Value> = std::fs::read_to_string(&archive)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines
            .iter()
            .map(|l| (
                l["kind"].clone(),
                l["sighting"]["source_id"].clone(),
                l["sighting"]["task_id"].clone()
            ))
            .collect::<Vec<_>>(),
        vec![
            (json!("sighting"), json!("v"), json!(2)),
            (json!("sighting"), json!("v"), json!(3)),
            (json!("sighting"), json!("v"), Value::Null),
        ]
    );
    // Pruning again deletes nothing.
    let again = ops::prune(
        &store,
        &PruneOptions {
            archive: None,
            ..opts
        },
    )
    .unwrap();
    assert_eq!((again.sightings, again.batches), (0, 0));
}
