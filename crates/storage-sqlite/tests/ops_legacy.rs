//! The legacy import on fixtures built from the Python-era DDL (background 000): statuses
//! kept (claimed and running come back queued), retry_count as attempts, logs of imported
//! tasks, results deduplicated, malformed rows reported by id and skipped, one transaction
//! (an error or a dry run leaves the target untouched), and a second run imports nothing.

use prismq_domain::ports::SystemClock;
use prismq_domain::task::TaskId;
use prismq_domain::{ContentItem, TaskStatus};
use prismq_storage_sqlite::ops::{import_legacy, OpsError};
use prismq_storage_sqlite::{SqliteOptions, SqliteStore};
use std::path::Path;
use std::sync::Arc;

/// The Python-era schema: task_queue and youtube_results as background 000 gives them;
/// task_logs as its INSERT example implies (task_id, event_type, timestamp); a
/// worker_heartbeats table (000 names it without DDL).
const LEGACY_DDL: &str = "
CREATE TABLE task_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_type TEXT NOT NULL,
    parameters TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 5,
    status TEXT NOT NULL DEFAULT 'queued',
    claimed_by TEXT,
    claimed_at TEXT,
    retry_count INTEGER NOT NULL DEFAULT 0,
    max_retries INTEGER NOT NULL DEFAULT 3,
    result_data TEXT,
    error_message TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    completed_at TEXT,
    CHECK (priority BETWEEN 1 AND 10),
    CHECK (status IN ('queued', 'claimed', 'running', 'completed', 'failed', 'cancelled'))
);
CREATE INDEX idx_task_queue_claiming ON task_queue(status, priority DESC, created_at DESC) WHERE status = 'queued';
CREATE TABLE worker_heartbeats (worker_id TEXT PRIMARY KEY, last_heartbeat TEXT NOT NULL, status TEXT);
CREATE TABLE task_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    timestamp TEXT NOT NULL
);
CREATE TABLE youtube_results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    source_id TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT,
    tags TEXT,
    metrics TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE(source, source_id)
);
CREATE INDEX idx_results_source ON youtube_results(source, created_at DESC);
";

const LEGACY_ROWS: &str = r#"
INSERT INTO task_queue (id, task_type, parameters, priority, status, claimed_by, retry_count, max_retries, result_data, error_message, created_at, updated_at, completed_at) VALUES
 (1, 'channel_scrape', '{"channel_url": "@mkbhd", "top_n": 10}', 5, 'queued', NULL, 0, 3, NULL, NULL, '2025-11-11T12:00:00', '2025-11-11T12:00:00', NULL),
 (2, 'trending_scrape', '{"region": "US"}', 8, 'claimed', 'worker-1', 1, 3, NULL, NULL, '2025-11-11 12:01:00', '2025-11-11 12:02:00', NULL),
 (3, 'keyword_search', '{"query": "rust"}', 3, 'running', 'worker-2', 2, 3, NULL, NULL, '2025-11-11T12:02:00.500000', '2025-11-11T12:03:00', NULL),
 (4, 'keyword_search', '{"query": "sqlite"}', 5, 'completed', 'worker-1', 0, 3, '{"videos": 12}', NULL, '2025-11-11T12:03:00Z', '2025-11-11T12:05:00Z', '2025-11-11T12:05:00Z'),
 (5, 'channel_scrape', '{"channel_url": "@gone"}', 5, 'failed', 'worker-2', 3, 3, NULL, 'channel not found', '2025-11-11T12:04:00', '2025-11-11T12:06:00', '2025-11-11T12:06:00'),
 (6, 'trending_scrape', '{"region": "GB"}', 5, 'cancelled', NULL, 0, 0, 'not json at all', NULL, '2025-11-11T12:05:00', '2025-11-11T12:07:00', NULL),
 (7, 'keyword_search', '{"query": "broken"', 5, 'queued', NULL, 0, 3, NULL, NULL, '2025-11-11T12:06:00', '2025-11-11T12:06:00', NULL),
 (9, 'keyword_search', '{"query": "when"}', 5, 'queued', NULL, 0, 3, NULL, NULL, 'last tuesday', 'last tuesday', NULL);
INSERT INTO task_logs (id, task_id, event_type, timestamp) VALUES
 (1, 4, 'created', '2025-11-11T12:03:00'),
 (2, 4, 'claimed', '2025-11-11T12:04:00'),
 (3, 4, 'completed', '2025-11-11T12:05:00'),
 (4, 5, 'claimed', '2025-11-11T12:05:00'),
 (5, 5, 'failed', '2025-11-11T12:06:00'),
 (6, 5, 'retried', 'not a time'),
 (7, 7, 'claimed', '2025-11-11T12:06:30'),
 (8, 99, 'claimed', '2025-11-11T12:06:30');
INSERT INTO worker_heartbeats VALUES ('worker-1', '2025-11-11T12:07:00', 'active'), ('worker-2', '2025-11-11T12:07:00', 'stopped');
INSERT INTO youtube_results (id, source, source_id, title, description, tags, metrics, created_at, updated_at) VALUES
 (1, 'youtube_channel', 'dQw4w9WgXcQ', 'Never Gonna', 'a classic', '["music", "80s"]', '{"views": 1500000000, "likes": 17000000, "comment_count": "2400000", "favorite_count": 0}', '2025-11-10T10:00:00', '2025-11-11T10:00:00'),
 (2, 'youtube_trending', 'abcdefghijk', 'Trending thing', NULL, NULL, NULL, '2025-11-10T11:00:00', '2025-11-10T11:00:00'),
 (3, 'youtube_keyword', 'zzzzzzzzzzz', 'Bad tags', NULL, '["unclosed"', '{}', '2025-11-10T12:00:00', '2025-11-10T12:00:00'),
 (4, 'youtube_keyword', 'kkkkkkkkkkk', 'Already here', NULL, '[]', '{"views": 5}', '2025-11-10T13:00:00', '2025-11-10T13:00:00');
"#;

fn legacy(path: &Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(LEGACY_DDL).unwrap();
    c.execute_batch(LEGACY_ROWS).unwrap();
    // A row an older build wrote before the status CHECK existed.
    c.execute_batch(
        "PRAGMA ignore_check_constraints = ON;
         INSERT INTO task_queue (id, task_type, parameters, status, created_at, updated_at)
         VALUES (8, 'keyword_search', '{}', 'paused', '2025-11-11T12:07:00', '2025-11-11T12:07:00');",
    )
    .unwrap();
}

fn target(dir: &Path) -> SqliteStore {
    let store = SqliteStore::open(
        SqliteOptions::new(dir.join("queue.db")),
        Arc::new(SystemClock),
    )
    .unwrap();
    // A result the new system already found: the legacy copy must not replace it.
    let mut item = ContentItem::new("youtube_keyword", "kkkkkkkkkkk", "Found by PrismQ");
    item.metrics.views = Some(99);
    store.save_blocking(None, &[item]).unwrap();
    store
}

fn count(store: &SqliteStore, sql: &str) -> i64 {
    store
        .with_connection(|c| Ok(c.query_row(sql, [], |r| r.get(0)).unwrap()))
        .unwrap()
}

fn snapshot(store: &SqliteStore) -> (i64, i64, i64, i64) {
    (
        count(store, "SELECT count(*) FROM task_queue"),
        count(store, "SELECT count(*) FROM task_logs"),
        count(store, "SELECT count(*) FROM results"),
        count(store, "SELECT count(*) FROM result_metrics"),
    )
}

fn task_by_key(store: &SqliteStore, id: i64) -> prismq_domain::Task {
    let new_id = count(
        store,
        &format!("SELECT id FROM task_queue WHERE idempotency_key = 'legacy:{id}'"),
    );
    store.get_blocking(TaskId(new_id)).unwrap()
}

#[test]
fn imports_tasks_logs_and_results_and_a_second_run_imports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.db");
    legacy(&old);
    let store = target(dir.path());
    let r = import_legacy(&store, &old, false).unwrap();
    assert_eq!(r.tasks_found, 9);
    assert_eq!(r.tasks_imported, 6);
    assert_eq!(r.tasks_requeued, 2);
    assert_eq!(r.logs_found, 8);
    assert_eq!(
        r.logs_imported, 4,
        "claimed/completed of 4, claimed/failed of 5"
    );
    assert_eq!(
        r.logs_not_needed, 3,
        "the created event, a skipped task's, an orphan"
    );
    assert_eq!(
        (r.results_found, r.results_imported, r.results_duplicate),
        (4, 2, 1)
    );
    assert_eq!(r.worker_heartbeats_ignored, 2);
    let skipped: Vec<(&str, i64)> = r.skipped.iter().map(|s| (s.table, s.id)).collect();
    assert_eq!(
        skipped,
        [
            ("task_queue", 7),
            ("task_queue", 8),
            ("task_queue", 9),
            ("task_logs", 6),
            ("youtube_results", 3)
        ]
    );
    assert!(
        r.skipped[0].reason.contains("not JSON"),
        "{:?}",
        r.skipped[0]
    );
    assert!(
        r.skipped[1].reason.contains("unknown status \"paused\""),
        "{:?}",
        r.skipped[1]
    );
    assert!(
        r.skipped[2].reason.contains("created_at"),
        "{:?}",
        r.skipped[2]
    );

    let t1 = task_by_key(&store, 1);
    assert_eq!(t1.status, TaskStatus::Queued);
    assert_eq!(t1.created_at.to_string(), "2025-11-11T12:00:00Z");
    let t2 = task_by_key(&store, 2);
    assert_eq!(
        (t2.status, t2.attempts, t2.priority.get()),
        (TaskStatus::Queued, 1, 8)
    );
    assert_eq!(t2.claimed_by, None);
    let t3 = task_by_key(&store, 3);
    assert_eq!((t3.status, t3.attempts), (TaskStatus::Queued, 2));
    assert_eq!(t3.created_at.to_string(), "2025-11-11T12:02:00.5Z");
    let t4 = task_by_key(&store, 4);
    assert_eq!(t4.status, TaskStatus::Completed);
    assert_eq!(t4.summary, Some(serde_json::json!({"videos": 12})));
    assert_eq!(t4.finished_at.unwrap().to_string(), "2025-11-11T12:05:00Z");
    let t5 = task_by_key(&store, 5);
    assert_eq!(
        (t5.status, t5.attempts, t5.max_attempts),
        (TaskStatus::Failed, 3, 3)
    );
    assert_eq!(t5.last_error.as_deref(), Some("channel not found"));
    let t6 = task_by_key(&store, 6);
    assert_eq!(t6.status, TaskStatus::Cancelled);
    assert_eq!(t6.max_attempts, 1, "max_retries 0 clamps to one attempt");
    assert_eq!(t6.summary, Some(serde_json::json!("not json at all")));
    let log = store.log_blocking(t4.id).unwrap();
    let events: Vec<&str> = log.iter().map(|l| l.event.as_str()).collect();
    assert_eq!(events, ["enqueued", "claimed", "completed"]);

    let rows = store
        .query_blocking(&prismq_domain::ports::ResultQuery {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    let rick = rows
        .iter()
        .find(|r| r.item.source_id == "dQw4w9WgXcQ")
        .unwrap();
    assert_eq!(rick.item.metrics.views, Some(1_500_000_000));
    assert_eq!(rick.item.metrics.comments, Some(2_400_000));
    assert_eq!(rick.item.tags, ["music", "80s"]);
    assert_eq!(rick.item.extra["legacy_metrics"]["favorite_count"], 0);
    assert_eq!(rick.first_seen_at.to_string(), "2025-11-10T10:00:00Z");
    let kept = rows
        .iter()
        .find(|r| r.item.source_id == "kkkkkkkkkkk")
        .unwrap();
    assert_eq!(
        kept.item.title, "Found by PrismQ",
        "an existing result is left alone"
    );

    let before = snapshot(&store);
    let again = import_legacy(&store, &old, false).unwrap();
    assert_eq!((again.tasks_imported, again.tasks_already_imported), (0, 6));
    assert_eq!(
        (
            again.logs_imported,
            again.results_imported,
            again.results_duplicate
        ),
        (0, 0, 3)
    );
    assert_eq!(snapshot(&store), before);
}

#[test]
fn a_dry_run_counts_exactly_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.db");
    legacy(&old);
    let store = target(dir.path());
    let before = snapshot(&store);
    let dry = import_legacy(&store, &old, true).unwrap();
    assert!(dry.dry_run);
    assert_eq!(snapshot(&store), before);
    let real = import_legacy(&store, &old, false).unwrap();
    assert_eq!(
        (
            dry.tasks_imported,
            dry.logs_imported,
            dry.results_imported,
            dry.skipped.len()
        ),
        (
            real.tasks_imported,
            real.logs_imported,
            real.results_imported,
            real.skipped.len()
        )
    );
}

#[test]
fn an_error_part_way_leaves_the_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.db");
    legacy(&old);
    let store = target(dir.path());
    let before = snapshot(&store);
    // Make the last write of the import fail (results are written after tasks and logs).
    store
        .with_connection(|c| {
            c.execute_batch(
                "CREATE TEMP TRIGGER boom BEFORE INSERT ON results WHEN NEW.source_id = 'abcdefghijk'
                 BEGIN SELECT RAISE(ABORT, 'disk on fire'); END",
            )
            .unwrap();
            Ok(())
        })
        .unwrap();
    let err = import_legacy(&store, &old, false).unwrap_err();
    assert!(err.to_string().contains("disk on fire"), "{err}");
    assert_eq!(snapshot(&store), before);
}

#[test]
fn refuses_a_file_that_is_not_legacy_and_the_target_itself() {
    let dir = tempfile::tempdir().unwrap();
    let store = target(dir.path());
    let other = SqliteStore::open(
        SqliteOptions::new(dir.path().join("new.db")),
        Arc::new(SystemClock),
    )
    .unwrap();
    drop(other);
    let e = import_legacy(&store, &dir.path().join("new.db"), true).unwrap_err();
    assert!(matches!(e, OpsError::NotLegacy { .. }), "{e}");
    assert!(e.to_string().contains("task_type"), "{e}");
    let e = import_legacy(&store, &dir.path().join("queue.db"), true).unwrap_err();
    assert!(matches!(e, OpsError::SameFile { .. }), "{e}");
    let e = import_legacy(&store, &dir.path().join("missing.db"), true).unwrap_err();
    assert!(matches!(e, OpsError::Io { .. }), "{e}");
}
