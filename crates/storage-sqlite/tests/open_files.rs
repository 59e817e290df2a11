//! What opening may do to a file: another application's database is refused unchanged
//! (even one with its own `schema_migrations`), a missing or empty file is created only when
//! asked, an older schema is refused to readers, paths that cannot be a database are refused,
//! corruption is the typed `Corrupt` error, and a file deleted under the store is `Gone`.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use prismq_domain::ports::{ClaimFilter, ClaimRequest, SystemClock};
use prismq_domain::task::{NewTask, TaskType, WorkerId};
use prismq_domain::{ClaimingStrategy, PortError};
use prismq_storage_sqlite::{SqliteOptions, SqliteStore, StoreError};
use rusqlite::Connection;

fn options(path: &Path, create: bool, migrate: bool) -> SqliteOptions {
    let mut o = SqliteOptions::new(path);
    o.create = create;
    o.migrate = migrate;
    o
}

fn open(o: SqliteOptions) -> Result<SqliteStore, StoreError> {
    SqliteStore::open(o, Arc::new(SystemClock))
}

fn beside(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", path.display()))
}

fn task(i: usize) -> NewTask {
    NewTask::new(
        TaskType::new("keyword_search").unwrap(),
        serde_json::json!({ "query": format!("padding padding padding {i}") }),
    )
}

#[test]
fn another_applications_database_is_refused_and_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    for (name, sql) in [
        ("app.db", "CREATE TABLE users(id INTEGER PRIMARY KEY)"),
        // In WAL mode a plain read-only connection would leave a -wal and a -shm behind.
        (
            "wal.db",
            "PRAGMA journal_mode = WAL; CREATE TABLE users(id INTEGER PRIMARY KEY)",
        ),
        // Rails and golang-migrate keep a schema_migrations table too, without our columns.
        (
            "rails.db",
            "CREATE TABLE schema_migrations(version TEXT PRIMARY KEY); INSERT INTO schema_migrations VALUES ('20240101')",
        ),
    ] {
        let path = dir.path().join(name);
        Connection::open(&path).unwrap().execute_batch(sql).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        for (create, migrate) in [(true, true), (true, false), (false, true), (false, false)] {
            let err = open(options(&path, create, migrate)).unwrap_err();
            assert!(
                matches!(err, StoreError::Foreign { .. }),
                "{name} {create} {migrate}: {err}"
            );
            assert!(err.to_string().contains("is not a PrismQ database"), "{err}");
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name} changed");
            for suffix in ["-wal", "-shm", "-journal"] {
                assert!(!beside(&path, suffix).exists(), "{name}{suffix}");
            }
        }
        let mode: String = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let expected = if name == "wal.db" { "wal" } else { "delete" };
        assert_eq!(mode, expected, "{name}");
    }
}

#[test]
fn without_create_a_missing_or_empty_file_is_refused_and_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("sub").join("q.db");
    let err = open(options(&missing, false, true)).unwrap_err();
    assert!(matches!(err, StoreError::Missing { .. }), "{err}");
    assert!(!dir.path().join("sub").exists());
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let err = open(options(&empty, false, true)).unwrap_err();
    assert!(matches!(err, StoreError::Uninitialised { .. }), "{err}");
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
    // A SQLite file with no schema objects is empty too.
    let blank = dir.path().join("blank.db");
    Connection::open(&blank)
        .unwrap()
        .execute_batch("PRAGMA user_version = 0; VACUUM;")
        .unwrap();
    assert!(matches!(
        open(options(&blank, false, false)).unwrap_err(),
        StoreError::Uninitialised { .. }
    ));
    // With create (the default) both become queues.
    open(options(&empty, true, true)).unwrap();
    open(options(&missing, true, true)).unwrap();
    open(options(&empty, false, false))
        .unwrap()
        .require_current()
        .unwrap();
}

#[test]
fn an_older_schema_opens_as_is_without_migrate_and_readers_are_told_to_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    open(options(&path, true, true))
        .unwrap()
        .migrate_down(1)
        .unwrap();
    let store = open(options(&path, false, false)).unwrap();
    let err = store.require_current().unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooOld { found: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("prismq migrate up"), "{err}");
    drop(store);
    // Opening with migrate brings it up to date.
    open(options(&path, false, true))
        .unwrap()
        .require_current()
        .unwrap();
}

#[test]
fn paths_that_cannot_be_a_database_are_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let cwd_entries = || std::fs::read_dir(dir.path()).unwrap().count();
    for p in ["file:q.db", "file:/tmp/x/q.db", ":memory:", ""] {
        let err = open(options(Path::new(p), true, true)).unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidPath { .. }),
            "{p:?}: {err}"
        );
    }
    let err = open(options(dir.path(), true, true)).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotAFile {
                kind: "a directory",
                ..
            }
        ),
        "{err}"
    );
    #[cfg(unix)]
    {
        let err = open(options(Path::new("/dev/null"), true, true)).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::NotAFile {
                    kind: "a character device",
                    ..
                }
            ),
            "{err}"
        );
    }
    assert_eq!(cwd_entries(), 0);
}

/// A queue whose second half of pages is overwritten, past the schema pages.
fn damage(path: &Path) {
    let len = std::fs::metadata(path).unwrap().len();
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let mut page = (len / 2) / 4096 * 4096;
    while page < len {
        f.seek(SeekFrom::Start(page + 100)).unwrap();
        f.write_all(&[0xff; 3_000]).unwrap();
        page += 2 * 4096;
    }
    f.sync_all().unwrap();
}

#[test]
fn corruption_is_a_typed_error_that_no_retry_fixes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let store = open(options(&path, true, true)).unwrap();
    let tasks: Vec<NewTask> = (0..2_000).map(task).collect();
    store.enqueue_batch_blocking(&tasks).unwrap();
    drop(store);
    damage(&path);
    let store = open(options(&path, false, false)).unwrap();
    let err = store.quick_check().unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("prismq validate"), "{err}");
    let request = ClaimRequest {
        worker: WorkerId::new("w").unwrap(),
        filter: ClaimFilter::default(),
        strategy: ClaimingStrategy::Fifo,
        lease_for: Duration::from_secs(60),
    };
    // Claims walk the queue until they meet a damaged page.
    let err = loop {
        match store.claim_blocking(&request) {
            Ok(Some(_)) => {}
            Ok(None) => panic!("every task was claimed from a damaged file"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, PortError::Corrupt(_)), "{err}");
    assert!(!err.is_transient());
}

#[test]
fn a_file_deleted_under_the_store_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let store = open(options(&path, true, true)).unwrap();
    store.enqueue_batch_blocking(&[task(1)]).unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(beside(&path, suffix));
    }
    // The check runs at most once a second.
    std::thread::sleep(Duration::from_millis(1_100));
    let err = store.enqueue_batch_blocking(&[task(2)]).unwrap_err();
    assert!(matches!(err, PortError::Gone(_)), "{err}");
    assert!(err.to_string().contains("was deleted"), "{err}");
    assert!(!err.is_transient());
    assert!(!path.exists());
    // Replaced by another file of the same name: also gone.
    let path2 = dir.path().join("r.db");
    let store = open(options(&path2, true, true)).unwrap();
    store.enqueue_batch_blocking(&[task(1)]).unwrap();
    let other = dir.path().join("other.db");
    open(options(&other, true, true)).unwrap();
    std::fs::rename(&other, &path2).unwrap();
    std::thread::sleep(Duration::from_millis(1_100));
    let err = store.enqueue_batch_blocking(&[task(2)]).unwrap_err();
    assert!(
        err.to_string().contains("was replaced by another file"),
        "{err}"
    );
}
