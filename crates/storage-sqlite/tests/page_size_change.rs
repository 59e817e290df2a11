//! `ops::set_page_size` on real files: a queue made with 4 KiB pages rewritten with 2 KiB
//! pages keeps every task as it reads, its logs and counts, and works after; asking for the
//! size it has changes nothing; and while another connection has the file open, in this
//! process or another one, it is refused with nothing changed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use prismq_domain::ports::{ClaimFilter, ClaimRequest, SystemClock, TaskLog};
use prismq_domain::task::{NewTask, Task, TaskId, TaskType, WorkerId};
use prismq_domain::ClaimingStrategy;
use prismq_storage_sqlite::ops::{self, OpsError, ValidateOptions};
use prismq_storage_sqlite::{PageSize, SqliteOptions, SqliteStore};
use rusqlite::Connection;
use serde_json::json;

const WAIT: Duration = Duration::from_millis(200);

fn open(path: &Path, page_size: u32) -> SqliteStore {
    let mut o = SqliteOptions::new(path);
    o.page_size = PageSize::new(page_size).unwrap();
    SqliteStore::open(o, Arc::new(SystemClock)).unwrap()
}

fn pragma(path: &Path, name: &str) -> String {
    Connection::open(path)
        .unwrap()
        .query_row(&format!("PRAGMA {name}"), [], |r| {
            r.get::<_, rusqlite::types::Value>(0)
        })
        .map(|v| match v {
            rusqlite::types::Value::Integer(n) => n.to_string(),
            rusqlite::types::Value::Text(t) => t,
            other => format!("{other:?}"),
        })
        .unwrap()
}

fn request() -> ClaimRequest {
    ClaimRequest {
        worker: WorkerId::new("w").unwrap(),
        filter: ClaimFilter::default(),
        strategy: ClaimingStrategy::Fifo,
        lease_for: Duration::from_secs(300),
    }
}

/// A 4 KiB-page queue of 1,500 tasks: 300 completed, 1 running, the rest queued; closed.
fn queue(path: &Path) -> Vec<TaskId> {
    let store = open(path, 4096);
    let tasks: Vec<NewTask> = (0..1_500)
        .map(|i| {
            NewTask::new(
                TaskType::new(if i % 3 == 0 { "a" } else { "b" }).unwrap(),
                json!({ "n": i, "pad": "x".repeat(100) }),
            )
        })
        .collect();
    let ids = store
        .enqueue_batch_blocking(&tasks)
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    for _ in 0..300 {
        let c = store.claim_and_start_blocking(&request()).unwrap().unwrap();
        store.complete_blocking(&c.lease, None).unwrap();
    }
    store.claim_and_start_blocking(&request()).unwrap().unwrap();
    ids
}

/// Every task as it reads, with its log.
fn everything(store: &SqliteStore, ids: &[TaskId]) -> Vec<(Task, usize)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    ids.iter()
        .map(|&id| {
            let log = rt.block_on(TaskLog::list(store, id)).unwrap();
            (store.get_blocking(id).unwrap(), log.len())
        })
        .collect()
}

#[test]
fn a_queue_rewritten_with_smaller_pages_keeps_every_task_and_works() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let ids = queue(&path);
    let before = everything(&open(&path, 4096), &ids);
    assert_eq!(pragma(&path, "page_size"), "4096");

    let r = ops::set_page_size(&path, PageSize::new(2048).unwrap(), WAIT).unwrap();
    assert!(r.changed, "{r:?}");
    assert_eq!((r.before, r.after), (4096, 2048));
    assert_eq!(pragma(&path, "page_size"), "2048");
    assert_eq!(pragma(&path, "journal_mode"), "wal");
    assert!(r.bytes_after > 0 && r.bytes_before > 0, "{r:?}");

    // The store opens it as it is, and everything reads as before.
    let store = open(&path, 4096);
    assert_eq!(everything(&store, &ids), before);
    let stats = store.stats_blocking().unwrap();
    let total: u64 = stats.counts.iter().map(|c| c.count).sum();
    assert_eq!(total, 1_500);
    let c = store.claim_and_start_blocking(&request()).unwrap().unwrap();
    store.complete_blocking(&c.lease, None).unwrap();
    drop(store);
    let mut v = ValidateOptions::new(false);
    v.benchmark_tasks = 0;
    let report = ops::validate(&SqliteOptions::new(&path), &v);
    assert!(report.passed(), "{report:?}");
}

#[test]
fn the_size_it_has_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    queue(&path);
    let bytes = std::fs::read(&path).unwrap();
    let r = ops::set_page_size(&path, PageSize::new(4096).unwrap(), WAIT).unwrap();
    assert!(!r.changed, "{r:?}");
    assert_eq!((r.before, r.after), (4096, 4096));
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "not rewritten");
}

#[test]
fn a_file_open_elsewhere_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let ids = queue(&path);

    // A store in this process, as a worker holds it.
    let store = open(&path, 4096);
    let before = everything(&store, &ids);
    let e = ops::set_page_size(&path, PageSize::new(2048).unwrap(), WAIT).unwrap_err();
    assert!(matches!(e, OpsError::InUse { .. }), "{e}");
    assert!(e.to_string().contains("nothing was changed"), "{e}");
    assert_eq!(pragma(&path, "page_size"), "4096");
    assert_eq!(pragma(&path, "journal_mode"), "wal");
    // The holder goes on working.
    let c = store.claim_and_start_blocking(&request()).unwrap().unwrap();
    store.complete_blocking(&c.lease, None).unwrap();
    drop(store);

    // Another SQLite in another process (Python's), idle between reads.
    let script = "import sqlite3, sys, time\n\
                  c = sqlite3.connect(sys.argv[1])\n\
                  c.execute('SELECT count(*) FROM task_queue').fetchall()\n\
                  print('open', flush=True)\n\
                  sys.stdin.readline()\n";
    let child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("skipped the other-process case: python3 is not installed");
        return;
    };
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "open");
    let e = ops::set_page_size(&path, PageSize::new(2048).unwrap(), WAIT).unwrap_err();
    assert!(matches!(e, OpsError::InUse { .. }), "{e}");
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    assert_eq!(pragma(&path, "page_size"), "4096");
    let store = open(&path, 4096);
    let after = everything(&store, &ids);
    assert_eq!(after.len(), before.len());
    drop(store);

    // Once nobody has it open, the same call goes through.
    let r = ops::set_page_size(&path, PageSize::new(2048).unwrap(), WAIT).unwrap();
    assert!(r.changed);
    assert_eq!(pragma(&path, "page_size"), "2048");
}

#[test]
fn a_missing_file_is_an_error_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.db");
    let e = ops::set_page_size(&path, PageSize::new(2048).unwrap(), WAIT).unwrap_err();
    assert!(matches!(e, OpsError::Io { .. }), "{e}");
    assert!(!path.exists());
}
