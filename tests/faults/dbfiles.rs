//! The database file itself failing under PrismQ: damaged pages behind a valid header (a
//! worker must stop with what to do, not retry forever; `init` and `migrate` must not call
//! the file ready), and the file deleted under a running worker (it must notice and stop,
//! not keep working on a file nobody else sees).

use std::io::{Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

use prismq_tests::harness::{self, Sandbox};

/// A queue of 2,000 tasks whose pages in the second half of the file are overwritten with
/// garbage, past the header and the schema pages, so the file still opens.
fn damaged() -> Sandbox {
    let s = Sandbox::new();
    s.ok(&["init"]);
    let lines: String = (0..2_000)
        .map(|i| {
            format!(
                "{{\"type\":\"keyword_search\",\"params\":{{\"query\":\"padding padding padding {i}\"}}}}\n"
            )
        })
        .collect();
    std::fs::write(s.path("tasks.jsonl"), lines).unwrap();
    s.ok(&["enqueue", "--file", "tasks.jsonl"]);
    s.ok(&["maintenance", "checkpoint"]);
    let db = s.db();
    let size: u64 = rusqlite::Connection::open(&db)
        .and_then(|c| c.query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0)))
        .unwrap() as u64;
    let len = std::fs::metadata(&db).unwrap().len();
    assert!(
        len > 100 * size,
        "{len} bytes: too small to damage its second half"
    );
    let mut f = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
    let mut page = (len / 2) / size * size;
    while page < len {
        // Inside the page, past its b-tree header's first bytes: cell pointers and content.
        f.seek(SeekFrom::Start(page + 100)).unwrap();
        f.write_all(&vec![0xff; (size - 200) as usize]).unwrap();
        page += 2 * size;
    }
    f.sync_all().unwrap();
    s
}

#[test]
fn a_damaged_database_stops_the_workers_and_is_not_called_ready() {
    let _one = harness::serial();
    let s = damaged();
    // The header and the schema are intact: the file opens, the damage is met later.
    s.ok(&["migrate", "status"]);
    let started = Instant::now();
    let mut work = s.spawn("work", &["work", "--drain", "-c", "2"]);
    let status = harness::wait_exit(&mut work, Duration::from_secs(20), "work --drain");
    let err = s.stderr_of("work");
    assert_eq!(status.code(), Some(4), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ")
            && last.contains("database corrupt")
            && last.contains("prismq validate")
            && last.contains("prismq backup"),
        "{err}"
    );
    assert!(
        !err.contains("retrying"),
        "a corrupt database is not retried: {err}"
    );
    let bytes = std::fs::read(s.db()).unwrap();
    for args in [
        &["init"][..],
        &["migrate", "up"],
        &["migrate", "down", "--to", "1", "--yes"],
    ] {
        let err = s.fails(args, 4);
        assert!(
            err.starts_with("error: ")
                && err.contains("is corrupt")
                && err.contains("prismq validate"),
            "{args:?}: {err}"
        );
        assert_eq!(std::fs::read(s.db()).unwrap(), bytes, "{args:?} wrote");
    }
}

#[test]
fn a_database_deleted_under_a_running_worker_stops_it() {
    let _one = harness::serial();
    let s = Sandbox::new();
    s.ok(&["init"]);
    let mut work = s.spawn("work", &["work", "-c", "2"]);
    harness::wait_until(Duration::from_secs(20), "two registered workers", || {
        s.count("SELECT count(*) FROM workers") == 2
    });
    for suffix in ["", "-wal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{}{suffix}", s.db().display()));
        let _ = std::fs::remove_file(p);
    }
    let deleted = Instant::now();
    let status = harness::wait_exit(&mut work, Duration::from_secs(15), "work after deletion");
    let err = s.stderr_of("work");
    assert_eq!(status.code(), Some(4), "{err}");
    assert!(
        deleted.elapsed() < Duration::from_secs(10),
        "noticed after {:?}",
        deleted.elapsed()
    );
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ")
            && last.contains("queue.db was deleted while this process had it open"),
        "{err}"
    );
    assert!(!s.db().exists(), "the deleted file was recreated");
}
