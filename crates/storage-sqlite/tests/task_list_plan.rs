//! The query plans of the task list's shapes as the dashboard and `prismq tasks list` use
//! them (`TaskQueue::list`: `… ORDER BY id DESC LIMIT n` with a status, a type and a keyset
//! bound), on a real file after `ANALYZE`: none sorts the table, a keyset page is a range of
//! the primary key, and a finished status bounded by `finished_at` (what the dashboard asks
//! for a status few tasks have) is a search of the finished-time index that sorts only its
//! matches. The statements mirror `queue.rs`'s `list_blocking`, whose text is private.

use std::sync::Arc;

use prismq_domain::ports::SystemClock;
use prismq_domain::task::{NewTask, TaskType};
use prismq_storage_sqlite::{SqliteOptions, SqliteStore};
use serde_json::json;

const COLUMNS: &str = "id, type, status, params, finished_at";

fn plan(store: &SqliteStore, sql: &str, args: &[rusqlite::types::Value]) -> String {
    store
        .with_connection(|c| {
            let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                    r.get::<_, String>(3)
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            Ok(rows.join(" | "))
        })
        .unwrap()
}

#[test]
fn task_list_shapes_never_sort_the_table_and_keyset_pages_are_key_ranges() {
    use rusqlite::types::Value::{Integer, Text};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        SqliteOptions::new(dir.path().join("q.db")),
        Arc::new(SystemClock),
    )
    .unwrap();
    let tt = TaskType::new("keyword_search").unwrap();
    let batch: Vec<NewTask> = (0..3_000)
        .map(|i| NewTask::new(tt.clone(), json!({ "i": i })))
        .collect();
    for chunk in batch.chunks(1000) {
        store.enqueue_batch_blocking(chunk).unwrap();
    }
    store
        .with_connection(|c| {
            c.execute_batch("ANALYZE").unwrap();
            Ok(())
        })
        .unwrap();
    let base = format!("SELECT {COLUMNS} FROM task_queue WHERE 1 = 1");
    let cases: Vec<(&str, String, Vec<rusqlite::types::Value>, &str)> = vec![
        (
            "newest page",
            format!("{base} ORDER BY id DESC LIMIT ?"),
            vec![Integer(50)],
            "SCAN task_queue",
        ),
        (
            "keyset page",
            format!("{base} AND id < ? ORDER BY id DESC LIMIT ?"),
            vec![Integer(1_500), Integer(50)],
            "USING INTEGER PRIMARY KEY (rowid<?)",
        ),
        (
            "status and type, keyset page",
            format!("{base} AND status = ? AND type = ? AND id < ? ORDER BY id DESC LIMIT ?"),
            vec![
                Text("queued".into()),
                Text("keyword_search".into()),
                Integer(1_500),
                Integer(50),
            ],
            "USING INTEGER PRIMARY KEY (rowid<?)",
        ),
    ];
    for (name, sql, args, want) in &cases {
        let p = plan(&store, sql, args);
        assert!(p.contains(want), "{name}: {p}");
        assert!(!p.contains("TEMP B-TREE"), "{name} sorts: {p}");
    }
    // A finished status bounded by finished_at: the finished-time index, sorting only the
    // matches (the dashboard asks this only when the counts say they are at most 5,000).
    for sql in [
        format!("{base} AND status = ? AND finished_at < ? ORDER BY id DESC LIMIT ?"),
        format!("{base} AND status = ? AND type = ? AND finished_at < ? ORDER BY id DESC LIMIT ?"),
    ] {
        let mut args = vec![Text("cancelled".into())];
        if sql.contains("type = ?") {
            args.push(Text("keyword_search".into()));
        }
        args.extend([Integer(i64::MAX / 2), Integer(50)]);
        let p = plan(&store, &sql, &args);
        assert!(
            p.contains("USING INDEX ix_queue_finished (status=? AND finished_at<?)")
                || p.contains(
                    "USING COVERING INDEX ix_queue_finished (status=? AND finished_at<?)"
                ),
            "{sql}: {p}"
        );
        assert!(!p.contains("SCAN task_queue"), "{sql} scans: {p}");
    }
}
