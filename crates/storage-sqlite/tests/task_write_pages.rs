//! The pages a task's transitions write at one task a transaction, on a real file: a claim
//! and a completion, counted as the WAL's frames (each page a commit changes is one frame
//! of the WAL). These pages, not SQL, are what one task a call costs above the bare loop
//! (docs/performance.md, target 3), so the bound keeps the write path from growing unseen:
//! one more index or trigger on `task_queue` shows here as a page more a transition.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use prismq_domain::ports::{ClaimFilter, ClaimRequest, SystemClock};
use prismq_domain::task::{NewTask, Priority, TaskType, WorkerId};
use prismq_domain::ClaimingStrategy;
use prismq_storage_sqlite::{SqliteOptions, SqliteStore};
use serde_json::json;

#[path = "../benches/common/wal.rs"]
mod wal;
use wal::{empty_wal, wal_frames};

const QUEUED: usize = 2_000;
/// Few enough that the WAL stays short of SQLite's 1,000-frame autocheckpoint, so it only
/// grows and its length counts every frame written.
const TASKS: u64 = 80;

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(SqliteOptions::new(path), Arc::new(SystemClock)).unwrap()
}

/// A store over `QUEUED` tasks of 200-odd bytes of params, with its WAL emptied into the
/// file, so the next writes start a WAL of their own.
fn filled(path: &Path) -> SqliteStore {
    let store = open(path);
    let tasks: Vec<NewTask> = (0..QUEUED)
        .map(|i| {
            NewTask::new(
                TaskType::new("t").unwrap(),
                json!({ "channel": format!("@creator-{i:08}"), "pad": "x".repeat(160) }),
            )
            .priority(Priority::new(i as i64 % 10 + 1).unwrap())
        })
        .collect();
    for batch in tasks.chunks(1_000) {
        store.enqueue_batch_blocking(batch).unwrap();
    }
    drop(store);
    empty_wal(path);
    open(path)
}

/// The WAL's frames so far, read while the store is open (the last connection to close
/// checkpoints the WAL and deletes it).
fn frames(store: &SqliteStore, path: &Path) -> u64 {
    store.with_connection(|c| Ok(wal_frames(path, c))).unwrap()
}

fn request() -> ClaimRequest {
    ClaimRequest {
        worker: WorkerId::new("w").unwrap(),
        filter: ClaimFilter {
            task_types: vec![TaskType::new("t").unwrap()],
            ..ClaimFilter::default()
        },
        strategy: ClaimingStrategy::Fifo,
        lease_for: Duration::from_secs(300),
    }
}

/// The pages a task: `drain` takes `TASKS` tasks from a store over `QUEUED`, and the WAL's
/// frames it wrote are divided by them.
fn pages_a_task(drain: impl FnOnce(&SqliteStore, &ClaimRequest)) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let store = filled(&path);
    let before = frames(&store, &path);
    drain(&store, &request());
    (frames(&store, &path) - before) as f64 / TASKS as f64
}

/// A claim (and start) writes the row, its entries in both claim indexes, its lease entry
/// and the counts: five pages; a completion the row, the lease and finished entries and the
/// counts: four. Nine a task, and a little more where a page splits.
#[test]
fn a_claim_and_a_completion_write_nine_pages() {
    let per_task = pages_a_task(|store, req| {
        for _ in 0..TASKS {
            let c = store.claim_and_start_blocking(req).unwrap().unwrap();
            store.complete_blocking(&c.lease, None).unwrap();
        }
    });
    assert!(
        (9.0..=10.0).contains(&per_task),
        "pages a task, one task a transaction: {per_task:.2} (nine expected)"
    );
}

/// With each completion and the next claim in one transaction (what the runtime does), the
/// lease entries and the counts are one page for both, and the next row often shares the
/// finished row's page: six pages and a fraction.
#[test]
fn a_completion_with_the_next_claim_writes_fewer_pages() {
    let per_task = pages_a_task(|store, req| {
        let mut c = store.claim_and_start_blocking(req).unwrap().unwrap();
        for _ in 1..TASKS {
            c = store
                .complete_and_claim_blocking(&c.lease, None, req)
                .unwrap()
                .unwrap()
                .unwrap();
        }
        store.complete_blocking(&c.lease, None).unwrap();
    });
    assert!(
        (5.5..=7.0).contains(&per_task),
        "pages a task, a completion and the next claim a transaction: {per_task:.2}"
    );
}
