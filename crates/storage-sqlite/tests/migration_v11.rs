//! Schemas v11, v12, v13 and v15 rebuild `task_queue` (v12 also `queue_counts`, with interned
//! types and status codes; v13 with cheaper CHECKs; v15 with updated_at NULL until a task
//! changes), and v14 drops the status-change trigger: a v10 file with queued, running,
//! finished and purged tasks, stored logs and a region goes up to v15, down to v14, v13, v12,
//! v11 and v10, and up again with every row, every log
//! entry, the AUTOINCREMENT high-water mark and exact counts kept, on a store connection
//! (foreign keys on, so a rebuild that dropped the table with them on would take the logs
//! with it), and each version's schema is what `validate` expects of it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use prismq_domain::ports::{ClaimFilter, ClaimRequest, SystemClock, TaskQueue};
use prismq_domain::task::WorkerId;
use prismq_domain::ClaimingStrategy;
use prismq_storage_sqlite::ops::{validate, Outcome, ValidateOptions};
use prismq_storage_sqlite::{migrations, SqliteOptions, SqliteStore};
use rusqlite::Connection;

/// The stored columns every version keeps, in one order; `{type}`, `{status}` and
/// `{compatibility}` stand for how a version stores them ([`columns`]). `updated_at` as it
/// reads: v15 stores NULL for a task that never changed.
const COLUMNS: &str = "id, {type}, params, priority, {status}, attempts, max_attempts, run_after, \
    lease_expires_at, claimed_by, lease_token, idempotency_key, {compatibility}, last_error, summary, \
    created_at, coalesce(updated_at, created_at), started_at, finished_at, log_seq, claimed_at, claimed_with, claim_seq, \
    lapses, region";

/// The status word of the integer status v12 stores.
const WORD: &str = "CASE status WHEN 0 THEN 'queued' WHEN 1 THEN 'claimed' WHEN 2 THEN 'running' \
    WHEN 3 THEN 'completed' WHEN 4 THEN 'failed' WHEN 5 THEN 'cancelled' END";

/// Whether the file at `path` interns task types (schema v12 on).
fn compact(path: &Path) -> bool {
    Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'task_types'",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

/// [`COLUMNS`] as the file at `path` stores them: a type name, a status word and a
/// compatibility object whatever the version, so the versions' rows compare as values.
fn columns(path: &Path) -> String {
    let (t, s, c) = if compact(path) {
        (
            "(SELECT name FROM task_types WHERE task_types.id = type_id)".to_owned(),
            WORD.to_owned(),
            "coalesce(compatibility, '{}')",
        )
    } else {
        ("type".to_owned(), "status".to_owned(), "compatibility")
    };
    COLUMNS
        .replace("{type}", &t)
        .replace("{status}", &s)
        .replace("{compatibility}", c)
}

/// A v10 file written as a v10 binary would have: tasks in every state (one of them running
/// with its attempt's entries held on the row, one requiring GB), stored log rows, and the
/// newest task purged so the AUTOINCREMENT mark is above every id left.
fn v10_file(path: &Path) {
    let mut c = Connection::open(path).unwrap();
    migrations::up(&mut c, Some(10), 0).unwrap();
    c.execute_batch(
        r#"
        INSERT INTO task_queue (type, params, priority, status, attempts, run_after, compatibility, created_at, updated_at) VALUES
            ('a', '{"n": 1}', 5, 'queued', 0, 100, '{"region":"GB"}', 100, 100),
            ('a', '{"n": 2}', 7, 'queued', 0, 200, '{}', 200, 200),
            ('b', '{"n": 3, "s": "ünï"}', 5, 'queued', 0, 300, '{}', 300, 300);
        UPDATE task_queue SET status = 'running', attempts = 1, claimed_by = 'w1', lease_token = 42,
            lease_expires_at = 9000, claimed_at = 350, claimed_with = 'fifo', claim_seq = 0, log_seq = 2,
            started_at = 360
        WHERE id = 3;
        INSERT INTO task_queue (type, params, status, attempts, run_after, created_at, updated_at, finished_at, summary, last_error, idempotency_key, log_seq) VALUES
            ('b', '{"n": 4}', 'completed', 1, 400, 400, 450, 450, '{"found": 3}', NULL, 'key-4', 0),
            ('a', '{"n": 5}', 'failed', 3, 500, 500, 550, 550, NULL, 'boom', NULL, 3),
            ('c', '{"n": 6}', 'completed', 1, 600, 600, 650, 650, NULL, NULL, NULL, 0);
        INSERT INTO task_logs (task_id, seq, at, level, event, message, details) VALUES
            (5, 1, 510, 'info', 'claimed', 'claimed by w1', '{"worker": "w1"}'),
            (5, 2, 520, 'warn', 'failed', 'boom', NULL),
            (5, 3, 530, 'error', 'dead_lettered', 'gave up', NULL);
        DELETE FROM task_queue WHERE id = 6;
        "#,
    )
    .unwrap();
}

fn rows(path: &Path, sql: &str) -> Vec<Vec<rusqlite::types::Value>> {
    let c = Connection::open(path).unwrap();
    let mut s = c.prepare(sql).unwrap();
    let n = s.column_count();
    s.query_map([], |r| (0..n).map(|i| r.get(i)).collect())
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The one integer `sql` answers on the file at `path`, on a connection of its own.
fn count(path: &Path, sql: &str) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

/// Everything the rebuild must keep, as values.
fn state(path: &Path) -> Vec<Vec<Vec<rusqlite::types::Value>>> {
    vec![
        rows(
            path,
            &format!("SELECT {} FROM task_queue ORDER BY id", columns(path)),
        ),
        rows(path, "SELECT * FROM task_logs ORDER BY task_id, seq"),
        rows(path, "SELECT * FROM task_log_entries ORDER BY task_id, seq"),
        rows(
            path,
            "SELECT seq FROM sqlite_sequence WHERE name = 'task_queue'",
        ),
        if compact(path) {
            rows(
                path,
                &format!(
                    "SELECT t.name, {WORD}, n FROM queue_counts JOIN task_types t ON t.id = type_id
                     WHERE n <> 0 ORDER BY 1, 2"
                ),
            )
        } else {
            rows(
                path,
                "SELECT type, status, n FROM queue_counts WHERE n <> 0 ORDER BY 1, 2",
            )
        },
        rows(
            path,
            &if compact(path) {
                format!(
                    "SELECT (SELECT name FROM task_types WHERE task_types.id = type_id), {WORD}, count(*)
                     FROM task_queue GROUP BY 1, 2 ORDER BY 1, 2"
                )
            } else {
                "SELECT type, status, count(*) FROM task_queue GROUP BY 1, 2 ORDER BY 1, 2"
                    .to_owned()
            },
        ),
        rows(path, "SELECT * FROM v_active_tasks"),
    ]
}

fn check3(path: &Path) -> (Outcome, String) {
    let report = validate(&SqliteOptions::new(path), &ValidateOptions::new(false));
    let c = report.checks.iter().find(|c| c.number == 3).unwrap();
    (c.outcome, format!("{} {:?}", c.reason, c.details))
}

#[tokio::test]
async fn a_v10_file_goes_up_down_and_up_with_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    v10_file(&path);
    let before = state(&path);
    assert_eq!(before[0].len(), 5, "five tasks");
    assert_eq!(before[1].len(), 3, "three stored log rows");
    assert_eq!(
        before[3],
        vec![vec![rusqlite::types::Value::Integer(6)]],
        "the purged id's mark"
    );
    assert_eq!(before[4], before[5], "v10's trigger-kept counts are exact");

    let store = SqliteStore::open(SqliteOptions::new(&path), Arc::new(SystemClock)).unwrap();
    let fk: i64 = store
        .with_connection(|c| {
            Ok(c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))
                .unwrap())
        })
        .unwrap();
    assert_eq!(
        fk, 1,
        "the store migrated with foreign keys on, and put them back"
    );
    assert_eq!(state(&path), before, "up to the latest version");
    let (outcome, why) = check3(&path);
    assert_eq!(outcome, Outcome::Pass, "{why}");
    assert_eq!(
        rows(
            &path,
            "SELECT hidden FROM pragma_table_xinfo('task_queue') WHERE name = 'region'",
        ),
        vec![vec![rusqlite::types::Value::Integer(0)]],
        "region is a plain column"
    );

    // The new code on the migrated rows: the GB task goes to a GB worker only, and a new
    // task takes the id after the purged one.
    let request = |region: Option<&str>| ClaimRequest {
        worker: WorkerId::new("w2").unwrap(),
        filter: ClaimFilter {
            task_types: vec![prismq_domain::task::TaskType::new("a").unwrap()],
            region: region.map(str::to_owned),
            ..ClaimFilter::default()
        },
        strategy: ClaimingStrategy::Fifo,
        lease_for: Duration::from_secs(60),
    };
    let id = store
        .enqueue(prismq_domain::task::NewTask::new(
            prismq_domain::task::TaskType::new("d").unwrap(),
            serde_json::json!({}),
        ))
        .await
        .unwrap()
        .id;
    assert_eq!(id.0, 7, "ids of purged tasks are not reused");
    let claimed = store.claim(&request(None)).await.unwrap().unwrap();
    assert_eq!(
        claimed.task.id.0, 2,
        "a worker without a region skips the GB task"
    );
    let claimed = store.claim(&request(Some("GB"))).await.unwrap().unwrap();
    assert_eq!(claimed.task.id.0, 1);
    let after_use = state(&path);
    assert_eq!(after_use[4], after_use[5], "counts exact after use");

    // Down to v14 (updated_at NOT NULL again, each row's value as it read) and up again.
    let unchanged = || {
        count(
            &path,
            "SELECT count(*) FROM task_queue WHERE updated_at IS NULL",
        )
    };
    assert_eq!(
        unchanged(),
        2,
        "v15 stores no updated_at for the two tasks that never changed"
    );
    assert_eq!(store.migrate_down(14).unwrap(), vec![15]);
    assert_eq!(state(&path), after_use, "down to v14");
    assert_eq!(unchanged(), 0, "v14 stores every updated_at");
    assert_eq!(
        check3(&path).0,
        Outcome::Warn,
        "v14's own schema, only behind"
    );
    assert_eq!(store.migrate_up(None).unwrap(), vec![15]);
    assert_eq!(state(&path), after_use, "up to v15 again");
    assert_eq!(unchanged(), 2);

    // Down to v13 (the status-change trigger back), v12, v11, then v10, and up again: the
    // same rows every way.
    let status_trigger = || {
        count(
            &path,
            "SELECT count(*) FROM sqlite_master WHERE name = 'trg_queue_counts_update'",
        )
    };
    assert_eq!(status_trigger(), 0, "v14 counts status changes in code");
    assert_eq!(store.migrate_down(13).unwrap(), vec![15, 14]);
    assert_eq!(state(&path), after_use, "down to v13");
    assert_eq!(status_trigger(), 1, "v13 counts status changes by trigger");
    assert_eq!(
        check3(&path).0,
        Outcome::Warn,
        "v13's own schema, only behind"
    );
    assert_eq!(store.migrate_up(None).unwrap(), vec![14, 15]);
    assert_eq!(status_trigger(), 0);
    assert_eq!(store.migrate_down(12).unwrap(), vec![15, 14, 13]);
    assert_eq!(state(&path), after_use, "down to v12");
    let (outcome, why) = check3(&path);
    assert_eq!(
        outcome,
        Outcome::Warn,
        "v12's own schema, only behind: {why}"
    );
    assert_eq!(store.migrate_up(None).unwrap(), vec![13, 14, 15]);
    assert_eq!(state(&path), after_use, "up to v15 again from v12");
    assert_eq!(store.migrate_down(11).unwrap(), vec![15, 14, 13, 12]);
    assert_eq!(state(&path), after_use, "down to v11");
    let (outcome, why) = check3(&path);
    assert_eq!(
        outcome,
        Outcome::Warn,
        "v11's own schema, only behind: {why}"
    );
    assert_eq!(store.migrate_up(None).unwrap(), vec![12, 13, 14, 15]);
    assert_eq!(state(&path), after_use, "up to v15 again from v11");
    assert_eq!(store.migrate_down(10).unwrap(), vec![15, 14, 13, 12, 11]);
    let fk: i64 = store
        .with_connection(|c| {
            Ok(c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))
                .unwrap())
        })
        .unwrap();
    assert_eq!(fk, 1);
    assert_eq!(state(&path), after_use, "down to v10");
    let (outcome, why) = check3(&path);
    assert_eq!(
        outcome,
        Outcome::Warn,
        "v10's own schema, only behind: {why}"
    );
    assert!(why.contains("behind"), "{why}");
    let trigger = count(
        &path,
        "SELECT count(*) FROM sqlite_master WHERE name = 'trg_queue_counts_insert'",
    );
    assert_eq!(trigger, 1, "v10 counts inserts by trigger again");
    assert_eq!(store.migrate_up(None).unwrap(), vec![11, 12, 13, 14, 15]);
    assert_eq!(state(&path), after_use, "up again");
    assert_eq!(check3(&path).0, Outcome::Pass);
}

#[test]
fn a_rebuild_that_would_orphan_a_log_row_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    v10_file(&path);
    // A log row of a task that is gone, written with foreign keys off.
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO task_logs (task_id, seq, at, level, event, message) VALUES (99, 1, 0, 'info', 'x', 'y');",
        )
        .unwrap();
    let before = state(&path);
    let Err(e) = SqliteStore::open(SqliteOptions::new(&path), Arc::new(SystemClock)) else {
        panic!("the migration went through an orphaned log row");
    };
    assert!(e.to_string().contains("task_logs row"), "{e}");
    assert_eq!(state(&path), before);
    let version: i64 = Connection::open(&path)
        .unwrap()
        .query_row("SELECT max(version) FROM schema_migrations", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(version, 10);
}

#[tokio::test]
async fn a_region_v10_stored_as_given_is_normalised_and_claimable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    v10_file(&path);
    // What a v10 enqueue stored for a NewTask built with ` gb`: no worker could claim it.
    Connection::open(&path)
        .unwrap()
        .execute_batch(r#"UPDATE task_queue SET compatibility = '{"region":" gb"}' WHERE id = 1"#)
        .unwrap();
    let store = SqliteStore::open(SqliteOptions::new(&path), Arc::new(SystemClock)).unwrap();
    assert_eq!(
        rows(
            &path,
            "SELECT compatibility, region FROM task_queue WHERE id = 1"
        ),
        vec![vec![
            rusqlite::types::Value::Text(r#"{"region":"GB"}"#.into()),
            rusqlite::types::Value::Text("GB".into())
        ]]
    );
    let request = ClaimRequest {
        worker: WorkerId::new("w").unwrap(),
        filter: ClaimFilter {
            task_types: vec![prismq_domain::task::TaskType::new("a").unwrap()],
            region: Some("GB".into()),
            ..ClaimFilter::default()
        },
        strategy: ClaimingStrategy::Fifo,
        lease_for: Duration::from_secs(60),
    };
    let claimed = store.claim(&request).await.unwrap().unwrap();
    assert_eq!(claimed.task.id.0, 1);
    assert_eq!(check3(&path).0, Outcome::Pass);
}
