//! The query plans of the task list's shapes as the dashboard and `prismq tasks list` use
//! them (`TaskQueue::list`: `… ORDER BY id DESC LIMIT n` with a status, a type and a keyset
//! bound), on a real file after `ANALYZE`, read from the adapter's own statement
//! (`list_statement`): none sorts the table, a keyset page is a range of the primary key, a
//! finished status bounded by `finished_at` (what the dashboard asks for a status few tasks
//! have) is a search of the finished-time index that sorts only its matches, and an in-flight
//! status reads only in-flight tasks, counted in rows the statement reads.

use std::sync::Arc;

use prismq_domain::ports::{ClaimFilter, ClaimRequest, SystemClock, TaskFilter};
use prismq_domain::task::{NewTask, TaskId, TaskType, WorkerId};
use prismq_domain::{ClaimingStrategy, TaskStatus, Timestamp};
use prismq_storage_sqlite::{list_statement, SqliteOptions, SqliteStore};
use rusqlite::StatementStatus;
use serde_json::json;

const COLUMNS: &str = "id, type_id, status, params, finished_at";

fn plan(store: &SqliteStore, filter: &TaskFilter) -> String {
    let (sql, args) = list_statement(filter, COLUMNS);
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

/// Runs the list statement for `filter`: the ids it returns and the virtual machine steps it
/// took (each row read is several; a walk of the table is thousands).
fn run(store: &SqliteStore, filter: &TaskFilter) -> (Vec<i64>, i32) {
    let (sql, args) = list_statement(filter, COLUMNS);
    store
        .with_connection(|c| {
            let mut stmt = c.prepare(&sql).unwrap();
            let ids: Vec<i64> = stmt
                .query_map(rusqlite::params_from_iter(args.iter()), |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            Ok((ids, stmt.get_status(StatementStatus::VmStep)))
        })
        .unwrap()
}

fn store_with(dir: &tempfile::TempDir, n: i64) -> SqliteStore {
    let store = SqliteStore::open(
        SqliteOptions::new(dir.path().join("q.db")),
        Arc::new(SystemClock),
    )
    .unwrap();
    let tt = TaskType::new("keyword_search").unwrap();
    let batch: Vec<NewTask> = (0..n)
        .map(|i| NewTask::new(tt.clone(), json!({ "i": i })))
        .collect();
    for chunk in batch.chunks(1000) {
        store.enqueue_batch_blocking(chunk).unwrap();
    }
    store
}

fn analyze(store: &SqliteStore) {
    store
        .with_connection(|c| {
            c.execute_batch("ANALYZE").unwrap();
            Ok(())
        })
        .unwrap();
}

#[test]
fn task_list_shapes_never_sort_the_table_and_keyset_pages_are_key_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(&dir, 3_000);
    analyze(&store);
    let tt = TaskType::new("keyword_search").unwrap();
    let page = |status: Option<TaskStatus>, task_type: Option<&TaskType>, before: Option<i64>| {
        TaskFilter {
            status,
            task_type: task_type.cloned(),
            before_id: before.map(TaskId),
            limit: 50,
            ..TaskFilter::default()
        }
    };
    let cases = [
        ("newest page", page(None, None, None), "SCAN task_queue"),
        (
            "keyset page",
            page(None, None, Some(1_500)),
            "USING INTEGER PRIMARY KEY (rowid<?)",
        ),
        (
            "status and type, keyset page",
            page(Some(TaskStatus::Queued), Some(&tt), Some(1_500)),
            "USING INTEGER PRIMARY KEY (rowid<?)",
        ),
    ];
    for (name, filter, want) in &cases {
        let p = plan(&store, filter);
        assert!(p.contains(want), "{name}: {p}");
        assert!(!p.contains("TEMP B-TREE"), "{name} sorts: {p}");
    }
    // A finished status bounded by finished_at: the finished-time index, sorting only the
    // matches (the dashboard asks this only when the counts say they are at most 5,000).
    for task_type in [None, Some(&tt)] {
        let filter = TaskFilter {
            finished_before: Some(Timestamp::from_millisecond(i64::MAX / 1_000_000).unwrap()),
            ..page(Some(TaskStatus::Cancelled), task_type, None)
        };
        let p = plan(&store, &filter);
        assert!(
            p.contains("USING INDEX ix_queue_finished (status=? AND finished_at<?)")
                || p.contains(
                    "USING COVERING INDEX ix_queue_finished (status=? AND finished_at<?)"
                ),
            "{filter:?}: {p}"
        );
        assert!(!p.contains("SCAN task_queue"), "{filter:?} scans: {p}");
    }
}

#[test]
fn an_in_flight_status_reads_only_in_flight_tasks_however_deep_they_are() {
    // 20,000 queued tasks; a worker claims the 5 oldest (FIFO), so the running tasks have
    // the smallest ids: a walk of ids down from the newest would read 20,000 rows first.
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(&dir, 20_000);
    let req = ClaimRequest {
        worker: WorkerId::new("w1").unwrap(),
        filter: ClaimFilter::default(),
        strategy: ClaimingStrategy::Fifo,
        lease_for: std::time::Duration::from_secs(60),
    };
    let mut running = Vec::new();
    for _ in 0..5 {
        let claimed = store.claim_and_start_blocking(&req).unwrap().unwrap();
        running.push(claimed.task.id.0);
    }
    let claimed = store.claim_blocking(&req).unwrap().unwrap();
    analyze(&store);
    running.reverse();
    for (status, want) in [
        (TaskStatus::Running, running.clone()),
        (TaskStatus::Claimed, vec![claimed.task.id.0]),
    ] {
        let filter = TaskFilter {
            status: Some(status),
            limit: 50,
            ..TaskFilter::default()
        };
        let p = plan(&store, &filter);
        assert!(p.contains("ix_queue_lease"), "{status}: {p}");
        let (ids, steps) = run(&store, &filter);
        assert_eq!(ids, want, "{status}: newest first");
        // Six in-flight rows read and sorted: a few hundred steps. Walking the ids of
        // 20,000 rows is well over 100,000.
        assert!(steps < 2_000, "{status}: {steps} VM steps ({p})");
        // The keyset page after the third: the two oldest running tasks.
        let next = TaskFilter {
            before_id: Some(TaskId(ids[ids.len().min(3) - 1])),
            ..filter
        };
        let (rest, _) = run(&store, &next);
        assert_eq!(
            rest,
            want[want.len().min(3)..].to_vec(),
            "{status}: next page"
        );
    }
}
