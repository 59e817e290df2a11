//! The store's connections write the WAL through the `prismq-wal` VFS by default: a claim's
//! or a completion's frames reach the file in one write. With `batch_wal_writes` off they go
//! through SQLite's default VFS, two writes a frame. One test in its own binary, as the
//! shim's counters are the process's.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use prismq_domain::ports::{ClaimFilter, ClaimRequest, SystemClock};
use prismq_domain::task::{NewTask, TaskType, WorkerId};
use prismq_domain::ClaimingStrategy;
use prismq_storage_sqlite::{SqliteOptions, SqliteStore};
use prismq_wal_vfs::counters;
use serde_json::json;

const TASKS: usize = 50;

fn request() -> ClaimRequest {
    ClaimRequest {
        worker: WorkerId::new("w").unwrap(),
        filter: ClaimFilter {
            task_types: vec![TaskType::new("t").unwrap()],
            region: None,
            only: None,
        },
        strategy: ClaimingStrategy::Fifo,
        lease_for: Duration::from_secs(60),
    }
}

/// A store on `path` with `TASKS` tasks queued.
fn queued(path: &Path, batch_wal_writes: bool) -> SqliteStore {
    let mut o = SqliteOptions::new(path);
    o.batch_wal_writes = batch_wal_writes;
    let store = SqliteStore::open(o, Arc::new(SystemClock)).unwrap();
    let tasks: Vec<NewTask> = (0..TASKS)
        .map(|i| NewTask::new(TaskType::new("t").unwrap(), json!({ "i": i })))
        .collect();
    store.enqueue_batch_blocking(&tasks).unwrap();
    store
}

/// Claims and completes every task, one call each (two commits a task); returns how many.
fn drain(store: &SqliteStore) -> usize {
    let mut done = 0;
    while let Some(c) = store.claim_and_start_blocking(&request()).unwrap() {
        store.complete_blocking(&c.lease, None).unwrap();
        done += 1;
    }
    done
}

#[test]
fn the_store_batches_each_commits_wal_writes_unless_told_not_to() {
    let dir = tempfile::tempdir().unwrap();

    let store = queued(&dir.path().join("batched.db"), true);
    let before = counters();
    assert_eq!(drain(&store), TASKS);
    let after = counters();
    let written = after.written - before.written;
    let kept = after.kept - before.kept;
    // Two commits a task, each of four pages or more: eight writes asked for or more, one
    // made.
    assert_eq!(
        written,
        2 * TASKS as u64,
        "one write a commit: {before:?} -> {after:?}"
    );
    assert!(kept >= 16 * TASKS as u64, "{before:?} -> {after:?}");

    let store = queued(&dir.path().join("frames.db"), false);
    let before = counters();
    assert_eq!(drain(&store), TASKS);
    assert_eq!(
        counters(),
        before,
        "SQLite's default VFS: the shim saw nothing"
    );
}
