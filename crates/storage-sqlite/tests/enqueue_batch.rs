//! Batch enqueue on a real file: runs of tasks without an idempotency key go in by multi-row
//! inserts, and every task still gets its own id, in order, whatever the mix of keys, types
//! and regions, with ids above those of purged tasks.

use std::path::Path;
use std::sync::Arc;

use prismq_domain::ports::{SystemClock, TaskQueue};
use prismq_domain::task::{Compatibility, NewTask, TaskType};
use prismq_domain::{TaskStatus, Timestamp};
use prismq_storage_sqlite::{SqliteOptions, SqliteStore};
use serde_json::json;

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(SqliteOptions::new(path), Arc::new(SystemClock)).unwrap()
}

fn task(kind: &str, i: usize) -> NewTask {
    NewTask::new(TaskType::new(kind).unwrap(), json!({ "i": i }))
}

#[tokio::test]
async fn each_task_of_a_batch_gets_its_own_id_in_order_whatever_the_mix() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("q.db"));
    // Ten tasks, the newest three purged: the next id is 11, not 8.
    let mut first: Vec<NewTask> = (0..10).map(|i| task("a", 1000 + i)).collect();
    first[0] = first[0].clone().idempotency_key("existing");
    let old = store.enqueue_batch(first).await.unwrap();
    for e in &old[7..] {
        store.cancel(e.id).await.unwrap();
    }
    let purged = store
        .purge(
            TaskStatus::Cancelled,
            Timestamp::now() + std::time::Duration::from_secs(60),
            100,
        )
        .await
        .unwrap();
    assert_eq!(purged, 3);

    // 150 tasks: three types (one never seen before, first used mid-batch), a key on every
    // 37th (breaking the runs into lengths the insert splits 64 / 16 / 4 / 1 ways), the
    // first task's key again (a duplicate), and a region on every 5th.
    let batch: Vec<NewTask> = (0..150)
        .map(|i| {
            let kind = match i {
                0..=59 => ["a", "b"][i % 2],
                _ => ["a", "b", "c"][i % 3],
            };
            let mut t = task(kind, i);
            if i % 37 == 36 {
                t = t.idempotency_key(format!("key-{i}"));
            }
            if i % 5 == 0 {
                t = t.compatibility(Compatibility::with_region("GB").unwrap());
            }
            t
        })
        .chain(std::iter::once(task("a", 1000).idempotency_key("existing")))
        .collect();
    let got = store.enqueue_batch(batch.clone()).await.unwrap();
    assert_eq!(got.len(), 151);
    let new: Vec<i64> = got
        .iter()
        .filter(|e| !e.duplicate)
        .map(|e| e.id.0)
        .collect();
    assert_eq!(
        new,
        (11..161).collect::<Vec<i64>>(),
        "consecutive ids after the purged ones, in the batch's order"
    );
    assert!(got[150].duplicate);
    assert_eq!(got[150].id, old[0].id, "the key resolves to its task");
    for (i, (e, t)) in got.iter().zip(&batch).enumerate().take(150) {
        let stored = store.get(e.id).await.unwrap();
        assert_eq!(stored.params, t.params, "task {i}");
        assert_eq!(stored.task_type, t.task_type, "task {i}");
        assert_eq!(stored.compatibility, t.compatibility, "task {i}");
        assert_eq!(stored.idempotency_key, t.idempotency_key, "task {i}");
        assert_eq!(stored.status, TaskStatus::Queued, "task {i}");
    }
    let stats = store.stats().await.unwrap();
    let queued = |kind: &str| {
        stats
            .counts
            .iter()
            .find(|c| c.task_type.as_str() == kind && c.status == TaskStatus::Queued)
            .map_or(0, |c| c.count)
    };
    assert_eq!(
        (queued("a"), queued("b"), queued("c")),
        (7 + 30 + 30, 30 + 30, 30)
    );
}
