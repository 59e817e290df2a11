//! Migrations and opening: schema snapshot, up/down round trips, refusal of newer or altered
//! schemas, bad files, and PRAGMAs — all on real files in temporary directories.

use prismq_domain::ports::SystemClock;
use prismq_storage_sqlite::{migrations, SqliteOptions, SqliteStore, StoreError, Synchronous};
use rusqlite::Connection;
use std::path::Path;
use std::sync::Arc;

fn open(path: &Path) -> Result<SqliteStore, StoreError> {
    SqliteStore::open(SqliteOptions::new(path), Arc::new(SystemClock))
}

fn sha(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn schema_after_all_migrations_matches_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    open(&path).unwrap();
    let conn = Connection::open(&path).unwrap();
    insta::assert_snapshot!(migrations::schema_dump(&conn).unwrap());
}

#[test]
fn up_twice_is_a_no_op_and_down_up_round_trips_keeping_other_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let store = open(&path).unwrap();
    assert!(
        store.migrate_up(None).unwrap().is_empty(),
        "second up applies nothing"
    );
    let before = migrations::schema_dump(&Connection::open(&path).unwrap()).unwrap();
    // A table no migration touches survives a down/up cycle with its rows.
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE keep_me (v TEXT); INSERT INTO keep_me VALUES ('x');")
        .unwrap();
    for m in migrations::MIGRATIONS.iter().rev() {
        assert_eq!(store.migrate_down(m.version - 1).unwrap(), vec![m.version]);
    }
    let conn = Connection::open(&path).unwrap();
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'task_queue'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0, "down to 0 removes the schema");
    assert_eq!(
        store.migrate_up(None).unwrap(),
        migrations::MIGRATIONS
            .iter()
            .map(|m| m.version)
            .collect::<Vec<_>>()
    );
    let kept: String = conn
        .query_row("SELECT v FROM keep_me", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, "x");
    conn.execute_batch("DROP TABLE keep_me").unwrap();
    assert_eq!(before, migrations::schema_dump(&conn).unwrap());
    let status = store.migration_status().unwrap();
    assert!(status.iter().all(|s| s.applied_at.is_some()));
}

#[test]
fn unknown_target_versions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("q.db")).unwrap();
    let e = store.migrate_down(-1).unwrap_err().to_string();
    assert!(e.contains("no migration version -1"), "{e}");
    let e = store.migrate_up(Some(999)).unwrap_err().to_string();
    assert!(e.contains("999"), "{e}");
}

#[test]
fn a_newer_schema_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    drop(open(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .execute("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (99, 'future', 'x', 0)", [])
        .unwrap();
    let before = sha(&path);
    let e = open(&path).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::SchemaTooNew {
                found: 99,
                known: 1
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("version 99") && e.to_string().contains("version 1"),
        "{e}"
    );
    assert_eq!(before, sha(&path));
}

#[test]
fn an_altered_migration_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    drop(open(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE schema_migrations SET checksum = 'deadbeef' WHERE version = 1",
            [],
        )
        .unwrap();
    let e = open(&path).unwrap_err();
    assert!(
        matches!(e, StoreError::ChecksumMismatch { version: 1, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("migration 1 (initial)"), "{e}");
}

#[test]
fn a_file_that_is_not_a_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "these are my notes, not a database\n".repeat(100)).unwrap();
    let before = sha(&path);
    let e = open(&path).unwrap_err();
    assert!(matches!(e, StoreError::NotADatabase { .. }), "{e}");
    assert!(e.to_string().contains("is not a SQLite database"), "{e}");
    assert_eq!(before, sha(&path));
    assert!(!dir.path().join("notes.txt-wal").exists());
}

#[test]
fn a_directory_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("is a directory"), "{e}");
}

#[cfg(unix)]
#[test]
fn a_read_only_file_is_refused_untouched() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    drop(open(&path).unwrap());
    // Checkpoint so the -wal file is folded in, then make the file read-only.
    Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    // Root ignores permission bits; the immutable attribute stops root too.
    let mut immutable = false;
    if std::fs::OpenOptions::new().write(true).open(&path).is_ok() {
        immutable = std::process::Command::new("chattr")
            .arg("+i")
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        if !immutable {
            eprintln!("SKIPPED: running as a user that ignores file permissions, and chattr +i is unavailable here");
            return;
        }
    }
    struct Unlock<'a>(&'a Path, bool);
    impl Drop for Unlock<'_> {
        fn drop(&mut self) {
            if self.1 {
                let _ = std::process::Command::new("chattr")
                    .arg("-i")
                    .arg(self.0)
                    .status();
            }
        }
    }
    let _unlock = Unlock(&path, immutable);
    let before = sha(&path);
    let e = open(&path).unwrap_err();
    assert!(matches!(e, StoreError::ReadOnly { .. }), "{e}");
    assert!(e.to_string().contains("read-only"), "{e}");
    assert_eq!(before, sha(&path));
}

#[cfg(unix)]
#[test]
fn new_files_are_owner_only_and_directories_are_created() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/c/q.db");
    open(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn pragmas_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let mut opts = SqliteOptions::new(&path);
    opts.synchronous = Synchronous::Full;
    let store = SqliteStore::open(opts, Arc::new(SystemClock)).unwrap();
    store
        .with_connection(|c| {
            let get = |p: &str| {
                c.query_row(&format!("PRAGMA {p}"), [], |r| {
                    r.get::<_, rusqlite::types::Value>(0)
                })
                .unwrap()
            };
            assert_eq!(
                get("journal_mode"),
                rusqlite::types::Value::Text("wal".into())
            );
            assert_eq!(get("synchronous"), rusqlite::types::Value::Integer(2));
            assert_eq!(get("foreign_keys"), rusqlite::types::Value::Integer(1));
            assert_eq!(get("temp_store"), rusqlite::types::Value::Integer(2));
            assert_eq!(get("busy_timeout"), rusqlite::types::Value::Integer(5000));
            assert_eq!(get("cache_size"), rusqlite::types::Value::Integer(-20000));
            Ok(())
        })
        .unwrap();
}

#[test]
fn schema_checks_reject_bad_rows_written_behind_our_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    drop(open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    let insert = |params: &str, priority: i64, status: &str| {
        conn.execute(
            "INSERT INTO task_queue (type, params, priority, status, run_after, created_at, updated_at) VALUES ('t', ?1, ?2, ?3, 0, 0, 0)",
            rusqlite::params![params, priority, status],
        )
    };
    assert!(insert("{}", 5, "queued").is_ok());
    assert!(
        insert("not json", 5, "queued").is_err(),
        "params must be JSON"
    );
    assert!(
        insert("[1]", 5, "queued").is_err(),
        "params must be an object"
    );
    assert!(insert("{}", 0, "queued").is_err(), "priority 0");
    assert!(insert("{}", 11, "queued").is_err(), "priority 11");
    assert!(insert("{}", 5, "done").is_err(), "unknown status");
}
