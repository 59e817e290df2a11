//! The pages a task's transitions write at one task a transaction, on a real file: a claim
//! and a completion, counted as the WAL's frames (each page a commit changes is one frame
//! of the WAL). These pages, not SQL, are what one task a call costs above the bare loop
//! (docs/performance.md, target 3), so the bound keeps the write path from growing unseen:
//! one more index or trigger on `task_queue` shows here as a page more a transition. With
//! `database.page_size = 1024` the pages are as many and a quarter the size, and a new file
//! takes the configured size while an existing one keeps its own.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use prismq_domain::ports::{ClaimFilter, ClaimRequest, SystemClock};
use prismq_domain::task::{NewTask, Priority, TaskType, WorkerId};
use prismq_domain::ClaimingStrategy;
use prismq_storage_sqlite::{PageSize, SqliteOptions, SqliteStore};
use serde_json::json;

#[path = "../benches/common/wal.rs"]
mod wal;
use wal::{empty_wal, wal_frames};

const QUEUED: usize = 2_000;
/// Few enough that the WAL stays short of SQLite's 1,000-frame autocheckpoint, so it only
/// grows and its length counts every frame written.
const TASKS: u64 = 80;

fn open(path: &Path) -> SqliteStore {
    open_with(path, PageSize::DEFAULT)
}

fn open_with(path: &Path, page_size: PageSize) -> SqliteStore {
    let mut o = SqliteOptions::new(path);
    o.page_size = page_size;
    SqliteStore::open(o, Arc::new(SystemClock)).unwrap()
}

/// The file's page size, read on a connection of its own.
fn file_page_size(path: &Path) -> i64 {
    rusqlite::Connection::open(path)
        .and_then(|c| c.query_row("PRAGMA page_size", [], |r| r.get(0)))
        .unwrap()
}

/// A store over `QUEUED` tasks of 200-odd bytes of params, with its WAL emptied into the
/// file, so the next writes start a WAL of their own.
fn filled(path: &Path, page_size: PageSize) -> SqliteStore {
    let store = open_with(path, page_size);
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
    open_with(path, page_size)
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

/// The pages a task: `drain` takes `TASKS` tasks from a store over `QUEUED` in a file of
/// `page_size` pages, and the WAL's frames it wrote are divided by them.
fn pages_a_task_with(page_size: PageSize, drain: impl FnOnce(&SqliteStore, &ClaimRequest)) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let store = filled(&path, page_size);
    assert_eq!(file_page_size(&path), i64::from(page_size.get()));
    let before = frames(&store, &path);
    drain(&store, &request());
    (frames(&store, &path) - before) as f64 / TASKS as f64
}

fn pages_a_task(drain: impl FnOnce(&SqliteStore, &ClaimRequest)) -> f64 {
    pages_a_task_with(PageSize::DEFAULT, drain)
}

/// One task a transaction: `claim_and_start` then `complete`.
fn one_a_call(store: &SqliteStore, req: &ClaimRequest) {
    for _ in 0..TASKS {
        let c = store.claim_and_start_blocking(req).unwrap().unwrap();
        store.complete_blocking(&c.lease, None).unwrap();
    }
}

/// A claim (and start) writes the row, its entries in both claim indexes, its lease entry
/// and the counts: five pages; a completion the row, the lease and finished entries and the
/// counts: four. Nine a task, and a little more where a page splits.
#[test]
fn a_claim_and_a_completion_write_nine_pages() {
    let per_task = pages_a_task(one_a_call);
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

/// A file made with 1 KiB pages: a task changes as many pages (a few more where the smaller
/// pages split), so its commits write about a quarter of the bytes (a frame is a page and a
/// 24-byte header), which is what makes one task a call faster there.
#[test]
fn one_kib_pages_write_as_many_pages_and_a_quarter_of_the_bytes() {
    let small = PageSize::new(1024).unwrap();
    let big = PageSize::new(4096).unwrap();
    let four = pages_a_task_with(big, one_a_call);
    let one = pages_a_task_with(small, one_a_call);
    assert!(
        (9.0..=11.0).contains(&one),
        "pages a task with 1 KiB pages: {one:.2}"
    );
    let bytes = |pages: f64, size: PageSize| pages * f64::from(size.get() + 24);
    let ratio = bytes(one, small) / bytes(four, big);
    assert!(
        (0.2..=0.35).contains(&ratio),
        "WAL bytes a task, 1 KiB pages over 4 KiB: {ratio:.3} ({one:.2} and {four:.2} pages)"
    );
}

/// The configured page size applies to a file the store creates; a file that exists keeps
/// its own (SQLite fixes it with the first table), and works as before.
#[test]
fn a_new_file_takes_the_configured_page_size_and_an_existing_file_keeps_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let small = PageSize::new(1024).unwrap();
    let new = dir.path().join("new.db");
    drop(open_with(&new, small));
    assert_eq!(file_page_size(&new), 1024);
    let default = dir.path().join("default.db");
    drop(open(&default));
    assert_eq!(file_page_size(&default), 2048);

    // The 2 KiB file opened by a store configured for 1 KiB pages: unchanged, and a task
    // goes through it.
    let store = open_with(&default, small);
    let task = NewTask::new(TaskType::new("t").unwrap(), json!({ "n": 1 }));
    store.enqueue_blocking(&task).unwrap();
    let c = store.claim_and_start_blocking(&request()).unwrap().unwrap();
    store.complete_blocking(&c.lease, None).unwrap();
    drop(store);
    assert_eq!(file_page_size(&default), 2048);
    // And the other way round.
    drop(open(&new));
    assert_eq!(file_page_size(&new), 1024);
}

#[test]
fn page_sizes_are_the_powers_of_two_sqlite_accepts() {
    for ok in [512, 1024, 2048, 4096, 8192, 16_384, 32_768, 65_536] {
        assert_eq!(PageSize::new(ok).map(PageSize::get), Some(ok));
    }
    for bad in [0, 256, 1000, 3072, 4095, 131_072, u32::MAX] {
        assert_eq!(PageSize::new(bad), None, "{bad}");
    }
    assert_eq!(PageSize::default(), PageSize::DEFAULT);
    assert_eq!(PageSize::DEFAULT.get(), 2048);
}

/// A queued task stores no `updated_at` (schema v15: six bytes a row, target 6) until it
/// changes, and reads as updated when it was created; a claim stores the claim's time. Both
/// ways of enqueueing (one task, a batch's multi-row insert) and the idempotent insert.
#[test]
fn a_task_stores_updated_at_only_once_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let store = open(&path);
    let t = |n: i64| NewTask::new(TaskType::new("t").unwrap(), json!({ "n": n }));
    let one = store.enqueue_blocking(&t(1)).unwrap().id;
    let keyed = store
        .enqueue_blocking(&t(2).idempotency_key("k-2"))
        .unwrap()
        .id;
    let batch: Vec<_> = store
        .enqueue_batch_blocking(&[t(3), t(4), t(5)])
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let stored = |id: i64| -> Option<i64> {
        raw.query_row(
            "SELECT updated_at FROM task_queue WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap()
    };
    for id in [one, keyed].into_iter().chain(batch.iter().copied()) {
        assert_eq!(stored(id.0), None, "task {id:?} stores no updated_at");
        let task = store.get_blocking(id).unwrap();
        assert_eq!(task.updated_at, task.created_at, "task {id:?}");
    }
    std::thread::sleep(Duration::from_millis(3));
    let claimed = store.claim_and_start_blocking(&request()).unwrap().unwrap();
    assert_eq!(claimed.task.id, one, "FIFO: the first task");
    let task = store.get_blocking(one).unwrap();
    assert_eq!(stored(one.0), Some(task.updated_at.as_millisecond()));
    assert!(task.updated_at > task.created_at, "{task:?}");
    assert_eq!(stored(keyed.0), None, "the others did not change");
}
