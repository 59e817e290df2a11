//! Migrations and opening: schema snapshot, up/down round trips, refusal of newer or altered
//! schemas, bad files, and PRAGMAs — all on real files in temporary directories.

use prismq_domain::growth::GrowthWindow;
use prismq_domain::ports::{
    ClaimFilter, ClaimRequest, Failure, LogLevel, NewLogEntry, ResultOrder, ResultQuery,
    SystemClock, TaskEvent,
};
use prismq_domain::schema::MigrationError;
use prismq_domain::task::{NewTask, TaskId, TaskType, WorkerId};
use prismq_domain::{ClaimingStrategy, ErrorClass};
use prismq_storage_sqlite::{migrations, SqliteOptions, SqliteStore, StoreError, Synchronous};
use rusqlite::Connection;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn open(path: &Path) -> Result<SqliteStore, StoreError> {
    SqliteStore::open(SqliteOptions::new(path), Arc::new(SystemClock))
}

/// The versions `migrate_down(to)` reverts from the newest: newest first.
fn down_to(to: i64) -> Vec<i64> {
    (to + 1..=migrations::latest_version()).rev().collect()
}

/// The versions `migrate_up(None)` applies after `migrate_down(from)`: oldest first.
fn up_from(from: i64) -> Vec<i64> {
    (from + 1..=migrations::latest_version()).collect()
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

fn request(worker: &str) -> ClaimRequest {
    ClaimRequest {
        worker: WorkerId::new(worker).unwrap(),
        filter: ClaimFilter::default(),
        strategy: ClaimingStrategy::Fifo,
        lease_for: Duration::from_secs(300),
    }
}

/// Every task's log as (seq-ordered) events, messages and details.
fn logs(store: &SqliteStore, ids: &[TaskId]) -> Vec<Vec<(TaskEvent, String, serde_json::Value)>> {
    ids.iter()
        .map(|id| {
            store
                .log_blocking(*id)
                .unwrap()
                .into_iter()
                .map(|r| (r.event, r.message, r.details))
                .collect()
        })
        .collect()
}

/// Schema v2 reads the current attempt's log entries from the task row. Going down to v1
/// stores them as rows, and coming back up reads the same log; tasks claimed under v1 (their
/// entries already rows) finish correctly under v2.
#[test]
fn the_attempt_log_survives_down_and_up_and_v1_claims_finish_under_v2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let store = open(&path).unwrap();
    let add = |n: i64| {
        store
            .enqueue_blocking(&NewTask::new(
                TaskType::new("t").unwrap(),
                json!({ "n": n }),
            ))
            .unwrap()
            .id
    };
    let (done, running, claimed, queued) = (add(1), add(2), add(3), add(4));
    let c = store.claim_blocking(&request("w1")).unwrap().unwrap();
    assert_eq!(c.task.id, done);
    store.start_blocking(&c.lease).unwrap();
    let note = NewLogEntry {
        level: LogLevel::Info,
        event: TaskEvent::Progress,
        message: "page 1 of 2".into(),
        details: serde_json::Value::Null,
    };
    store.append_blocking(done, &note).unwrap();
    store.complete_blocking(&c.lease, None).unwrap();
    let c_running = store
        .claim_and_start_blocking(&request("w2"))
        .unwrap()
        .unwrap();
    assert_eq!(c_running.task.id, running);
    let c_claimed = store.claim_blocking(&request("w3")).unwrap().unwrap();
    assert_eq!(c_claimed.task.id, claimed);
    let ids = [done, running, claimed, queued];
    let before = logs(&store, &ids);
    use TaskEvent::*;
    let events =
        |l: &Vec<(TaskEvent, String, serde_json::Value)>| l.iter().map(|e| e.0).collect::<Vec<_>>();
    assert_eq!(
        events(&before[0]),
        vec![Enqueued, Claimed, Started, Progress, Completed]
    );
    assert_eq!(events(&before[1]), vec![Enqueued, Claimed, Started]);
    assert_eq!(events(&before[2]), vec![Enqueued, Claimed]);
    assert_eq!(events(&before[3]), vec![Enqueued]);
    assert_eq!(before[1][1].1, "claimed by w2");
    assert_eq!(
        before[1][1].2,
        json!({ "worker": "w2", "attempt": 1, "strategy": "fifo" })
    );
    let conn = Connection::open(&path).unwrap();
    let stored = || -> i64 {
        conn.query_row("SELECT count(*) FROM task_logs", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(stored(), 1, "under v2 only the handler's note is a row");

    assert_eq!(store.migrate_down(1).unwrap(), down_to(1));
    assert_eq!(stored(), 4 + 2 + 1, "down stores the row-held entries");
    // v1 reads task_logs directly: the same entries in the same order.
    let v1: Vec<String> = conn
        .prepare("SELECT event FROM task_logs WHERE task_id = ?1 ORDER BY seq")
        .unwrap()
        .query_map([done.0], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(v1, ["claimed", "started", "progress", "completed"]);

    assert_eq!(store.migrate_up(None).unwrap(), up_from(1));
    assert_eq!(logs(&store, &ids), before, "up reads the same log");
    // Attempts claimed under v1 (entries already rows) finish under v2 without losing or
    // doubling an entry, and new entries number after the stored ones.
    store.complete_blocking(&c_running.lease, None).unwrap();
    store.start_blocking(&c_claimed.lease).unwrap();
    let after = logs(&store, &ids);
    assert_eq!(
        events(&after[1]),
        vec![Enqueued, Claimed, Started, Completed]
    );
    assert_eq!(events(&after[2]), vec![Enqueued, Claimed, Started]);
    let c = store.claim_blocking(&request("w4")).unwrap().unwrap();
    assert_eq!(c.task.id, queued);
    store
        .fail_blocking(
            &c.lease,
            &Failure {
                class: ErrorClass::Permanent,
                message: "gone".into(),
            },
        )
        .unwrap();
    assert_eq!(
        events(&logs(&store, &[queued])[0]),
        vec![Enqueued, Claimed, Failed]
    );
}

/// Schema v4's outlier columns and baselines: down to v3 drops them and keeps every result;
/// up again brings them back empty (no score is made up). A save scores only the videos it
/// saves (their channel has no other video with values yet, so no baseline), and
/// `rescore` brings the whole channel back.
#[test]
fn outlier_scores_go_down_and_come_back_with_rescore() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let store = open(&path).unwrap();
    let now = jiff::Timestamp::now();
    let items: Vec<prismq_domain::ContentItem> = (0..12)
        .map(|i| {
            let mut item =
                prismq_domain::ContentItem::new("youtube_channel", format!("v{i:02}"), "t");
            item.channel_id = Some("UCx".into());
            item.published_at = Some(now - jiff::SignedDuration::from_hours(24 * (40 + i)));
            item.metrics.views = Some(if i == 0 { 3_000 } else { 1_000 });
            item.extra.insert("is_short".into(), json!(false));
            item
        })
        .collect();
    store.save_blocking(None, &items).unwrap();
    let conn = Connection::open(&path).unwrap();
    let score = |id: &str| -> Option<f64> {
        conn.query_row(
            "SELECT outlier_score FROM results WHERE source_id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(score("v00"), Some(2.0));

    assert_eq!(store.migrate_down(3).unwrap(), down_to(3));
    let columns: i64 = conn
        .query_row(
            "SELECT count(*) FROM pragma_table_info('results') WHERE name LIKE 'outlier%' OR name = 'video_format'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(columns, 0);
    let baselines: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'channel_baselines'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(baselines, 0);
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM results", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 12);

    assert_eq!(store.migrate_up(None).unwrap(), up_from(3));
    assert_eq!(
        score("v00"),
        None,
        "no score until the channel is saved again"
    );
    store.save_blocking(None, &items[..1]).unwrap();
    assert_eq!(score("v00"), None, "11 other videos have no values yet");
    let report = store.rescore_blocking(None).unwrap();
    assert_eq!((report.channels, report.videos), (1, 12));
    assert_eq!(score("v00"), Some(2.0));
    assert_eq!(score("v05"), Some(0.0));
}

#[test]
fn growth_windows_go_down_and_come_back_computed_by_migrate_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let store = open(&path).unwrap();
    let mut item = prismq_domain::ContentItem::new("youtube_api", "g1", "t");
    item.metrics.views = Some(1_000);
    store
        .save_blocking(None, std::slice::from_ref(&item))
        .unwrap();
    item.metrics.views = Some(3_000);
    store
        .save_blocking(None, std::slice::from_ref(&item))
        .unwrap();
    let conn = Connection::open(&path).unwrap();
    // The first snapshot two hours back, as if collected then.
    conn.execute(
        "UPDATE result_metrics SET captured_at = captured_at - 7200000 WHERE views = 1000",
        [],
    )
    .unwrap();
    assert_eq!(store.migrate_down(6).unwrap(), down_to(6));
    let columns: i64 = conn
        .query_row(
            "SELECT count(*) FROM pragma_table_info('results') WHERE name LIKE 'growth%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(columns, 0);
    assert_eq!(store.migrate_up(None).unwrap(), up_from(6));
    let growth = || -> Option<f64> {
        conn.query_row(
            "SELECT growth_24h FROM results WHERE source_id = 'g1'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    // Computed by `migrate up` itself (v9's catch-up), no rescore needed.
    let rate = growth().unwrap();
    assert!(
        (rate - 1_000.0).abs() < 5.0,
        "2,000 views over about 2 h: {rate}"
    );
    let pending: i64 = conn
        .query_row("SELECT count(*) FROM growth_pending", [], |r| r.get(0))
        .unwrap();
    assert_eq!(pending, 0, "the catch-up is recorded as done");
    let report = store.rescore_blocking(None).unwrap();
    assert_eq!(report.growth, 1);
    assert_eq!(growth(), Some(rate), "a rescore finds the same");
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
            StoreError::Migration(MigrationError::SchemaTooNew { found: 99, known }) if known == migrations::latest_version()
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("version 99")
            && e.to_string()
                .contains(&format!("version {}", migrations::latest_version())),
        "{e}"
    );
    assert_eq!(before, sha(&path));
}

#[test]
fn the_embedded_migrations_are_numbered_in_order() {
    migrations::SCHEMA.verify().unwrap();
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
        matches!(
            e,
            StoreError::Migration(MigrationError::ChecksumMismatch { version: 1, .. })
        ),
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
    conn.execute_batch("PRAGMA foreign_keys = ON; INSERT INTO task_types (name) VALUES ('t');")
        .unwrap();
    let insert = |params: &str, priority: i64, status: i64| {
        conn.execute(
            "INSERT INTO task_queue (type_id, params, priority, status, run_after, created_at, updated_at) VALUES ((SELECT id FROM task_types WHERE name = 't'), ?1, ?2, ?3, 0, 0, 0)",
            rusqlite::params![params, priority, status],
        )
    };
    assert!(insert("{}", 5, 0).is_ok());
    // Since v11 the schema does not parse params (the adapter writes them from serde_json;
    // validate's check 3 scans them): it refuses text that cannot be an object.
    assert!(
        insert("not json", 5, 0).is_err(),
        "params must be an object's text"
    );
    assert!(insert("[1]", 5, 0).is_err(), "params must be an object");
    let region = |compatibility: &str, r: &str| {
        conn.execute(
            "INSERT INTO task_queue (type_id, params, compatibility, region, run_after, created_at, updated_at) VALUES ((SELECT id FROM task_types WHERE name = 't'), '{}', ?1, ?2, 0, 0, 0)",
            [compatibility, r],
        )
    };
    assert!(region(r#"{"region":"GB"}"#, "GB").is_ok());
    assert!(
        region(r#"{"region":"gb"}"#, "gb").is_err(),
        "a region is two capital letters"
    );
    assert!(
        region(r#"{"region":"GBR"}"#, "GBR").is_err(),
        "a region is two capital letters"
    );
    assert!(
        region("{}", "GB").is_err(),
        "the region is the one compatibility names"
    );
    assert!(insert("{}", 0, 0).is_err(), "priority 0");
    assert!(insert("{}", 11, 0).is_err(), "priority 11");
    assert!(insert("{}", 5, 6).is_err(), "unknown status code");
    assert!(insert("{}", 5, -1).is_err(), "unknown status code");
    // A type id no name was interned for: refused by the foreign key.
    assert!(
        conn.execute(
            "INSERT INTO task_queue (type_id, params, run_after, created_at, updated_at) VALUES (999, '{}', 0, 0, 0)",
            [],
        )
        .is_err(),
        "a type id must name an interned type"
    );
}

/// Schema v13 rewrote three of `task_queue`'s CHECKs to be cheaper; each must accept and
/// refuse exactly what v12's did. A CHECK refuses only a false result (NULL passes), and an
/// error (json_extract on text that is not JSON) refuses the row too, so each pair is
/// compared by the outcome a row would get: pass, refuse, or error.
#[test]
fn v13_checks_decide_every_row_as_v12_did() {
    let conn = Connection::open_in_memory().unwrap();
    let outcome = |expr: &str, params: &str, compatibility: Option<&str>, region: Option<&str>| {
        let sql = format!(
            "SELECT ({expr}) IS NOT 0 FROM (SELECT ?1 AS params, ?2 AS compatibility, ?3 AS region)"
        );
        match conn.query_row(
            &sql,
            rusqlite::params![params, compatibility, region],
            |r| r.get::<_, bool>(0),
        ) {
            Ok(true) => "pass",
            Ok(false) => "refuse",
            Err(_) => "error",
        }
    };
    let pairs = [
        (
            "substr(params, 1, 1) = '{'",
            "params >= '{' AND params < '|'",
        ),
        (
            "compatibility IS NULL OR substr(compatibility, 1, 1) = '{'",
            "compatibility IS NULL OR compatibility >= '{' AND compatibility < '|'",
        ),
        (
            "region IS json_extract(compatibility, '$.region')",
            "compatibility IS NULL AND region IS NULL OR region IS json_extract(compatibility, '$.region')",
        ),
    ];
    let texts = [
        "",
        "{",
        "{}",
        "{\"a\":1}",
        "{ünï}",
        "{\u{10FFFF}",
        "|",
        "|{}",
        "z",
        "zz{",
        "[1]",
        "}",
        " {}",
        "\u{7f}{",
        "{{",
        "not json",
        "\u{0}{",
    ];
    let compatibilities = [
        None,
        Some("{}"),
        Some(r#"{"region":"GB"}"#),
        Some(r#"{"region":"US","x":1}"#),
        Some("{not json"),
        Some("[\"GB\"]"),
        Some("|"),
        Some(""),
    ];
    let regions = [None, Some("GB"), Some("US"), Some(""), Some("gb")];
    // The expressions compared are the ones the two steps write.
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let v12 = words(include_str!("../migrations/0012_compact_rows.up.sql"));
    let v13 = words(include_str!("../migrations/0013_cheaper_checks.up.sql"));
    for (old, new) in pairs {
        assert!(v12.contains(&format!("CHECK ({old})")), "{old}");
        assert!(v13.contains(&format!("CHECK ({new})")), "{new}");
        assert!(!v13.contains(&format!("CHECK ({old})")), "{old}");
    }
    let mut compared = 0;
    for (old, new) in pairs {
        for params in texts {
            for compatibility in compatibilities {
                for region in regions {
                    assert_eq!(
                        outcome(old, params, compatibility, region),
                        outcome(new, params, compatibility, region),
                        "{new:?} on params {params:?}, compatibility {compatibility:?}, region {region:?}"
                    );
                    compared += 1;
                }
            }
        }
    }
    assert_eq!(
        compared,
        3 * texts.len() * compatibilities.len() * regions.len()
    );
}

/// Opening a queue whose schema is current takes no write lock: a worker starting while
/// another process holds the write lock (a long transaction, a busy queue) opens at once
/// instead of failing with "database is locked" after `busy_timeout`.
#[test]
fn opening_a_current_queue_takes_no_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    drop(open(&path).unwrap());
    let holder = Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut o = SqliteOptions::new(&path);
    o.busy_timeout = std::time::Duration::from_millis(200);
    assert!(o.migrate, "stores migrate on open by default");
    let store = SqliteStore::open(o, Arc::new(SystemClock));
    holder.execute_batch("ROLLBACK").unwrap();
    store.expect("a current schema opens while another connection holds the write lock");
}

/// SQLite before 3.51.3 has the WAL-reset bug: two connections checkpointing and writing at
/// the same moment can corrupt the file. Our workers are exactly that (several processes,
/// a background checkpoint thread each), and the crash storm found "database disk image is
/// malformed" with the 3.46 that rusqlite 0.32 bundled. The bundled SQLite must stay past
/// the fix.
#[test]
fn the_bundled_sqlite_has_the_wal_reset_fix() {
    assert!(
        rusqlite::version_number() >= 3_051_003,
        "SQLite {} has the WAL-reset corruption bug; bundle 3.51.3 or later",
        rusqlite::version()
    );
}

/// Schema v8 merges a video's rows under several sources into one record (one history, the
/// earliest first sighting, fields the latest row lacks taken from the others, sightings
/// from what each row knew), and down splits it back into one row per source.
#[test]
fn one_record_per_video_merges_rows_and_splits_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let store = open(&path).unwrap();
    assert_eq!(store.migrate_down(7).unwrap(), down_to(7));
    let conn = Connection::open(&path).unwrap();
    let (t0, t1) = (1_800_000_000_000_i64, 1_800_003_600_000_i64);
    let row = |source: &str,
               id: &str,
               views: i64,
               likes: Option<i64>,
               at: i64,
               task: i64,
               extra: &str| {
        conn.execute(
            "INSERT INTO results (source, source_id, title, channel_id, views, likes, extra, first_seen_at,
                 last_seen_at, last_task_id, first_views, first_metrics_at, metrics_at)
             VALUES (?1, ?2, 'title of ' || ?1, CASE WHEN ?1 = 'youtube_channel' THEN 'UC1' END, ?3, ?4, ?5,
                 ?6, ?6, ?7, ?3, ?6, ?6)",
            rusqlite::params![source, id, views, likes, extra, at, task],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO result_metrics (result_id, captured_at, views, likes) VALUES (last_insert_rowid(), ?1, ?2, ?3)",
            rusqlite::params![at, views, likes],
        )
        .unwrap();
    };
    row(
        "youtube_channel",
        "v",
        100,
        Some(7),
        t0,
        1,
        r#"{"upload_rank": 3, "is_short": false}"#,
    );
    row(
        "youtube_keyword",
        "v",
        160,
        None,
        t1,
        2,
        r#"{"search_rank": 1}"#,
    );
    row("youtube_api", "w", 5, None, t0, 3, "{}");

    assert_eq!(store.migrate_up(None).unwrap(), up_from(7));
    let v = store.find_blocking("v").unwrap();
    assert_eq!(v.len(), 1, "one record for the video");
    let v = &v[0];
    assert_eq!(
        (
            v.item.platform.as_str(),
            v.item.source.as_str(),
            v.item.rank
        ),
        ("youtube", "youtube_keyword", Some(1))
    );
    assert_eq!(v.item.title, "title of youtube_keyword", "the latest row's");
    assert_eq!(v.item.metrics.views, Some(160));
    assert_eq!(v.item.metrics.likes, Some(7), "kept from the other row");
    assert_eq!(v.item.channel_id.as_deref(), Some("UC1"));
    assert_eq!(v.item.extra["is_short"], json!(false));
    assert_eq!(v.item.extra["search_rank"], json!(1));
    assert_eq!(v.first_seen_at.as_millisecond(), t0);
    assert_eq!(v.last_seen_at.as_millisecond(), t1);
    // The merged history (100 views at t0, 160 an hour later) gives the record its growth
    // at once: 60 views an hour over the hour it covers.
    let day = v.growth.get(GrowthWindow::Day).expect("growth over 24 h");
    assert!((day.views_per_hour - 60.0).abs() < 1e-9, "{day:?}");
    assert_eq!(day.span_secs, 3_600);
    let listed = store
        .query_blocking(&ResultQuery {
            order: ResultOrder::Growth,
            window: GrowthWindow::Day,
            ..ResultQuery::default()
        })
        .unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|r| (
                r.item.source_id.as_str(),
                r.growth.get(GrowthWindow::Day).map(|g| g.views_per_hour)
            ))
            .collect::<Vec<_>>(),
        vec![("v", Some(60.0)), ("w", None)],
        "listed by growth over 24 h, the merged record first"
    );
    let history = |id: &str| -> Vec<(i64, Option<i64>)> {
        conn.prepare(
            "SELECT m.captured_at, m.views FROM result_metrics m JOIN results r ON r.id = m.result_id
             WHERE r.source_id = ?1 ORDER BY m.captured_at, m.id",
        )
        .unwrap()
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
    };
    assert_eq!(history("v"), vec![(t0, Some(100)), (t1, Some(160))]);
    let seen = |id: &str| -> Vec<(String, Option<i64>, Option<i64>, i64)> {
        conn.prepare(
            "SELECT s.source, s.task_id, s.rank, s.seen_at FROM result_sightings s
             JOIN results r ON r.id = s.result_id WHERE r.source_id = ?1 ORDER BY s.seen_at, s.source",
        )
        .unwrap()
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
    };
    assert_eq!(
        seen("v"),
        vec![
            ("youtube_channel".to_owned(), Some(1), Some(3), t0),
            ("youtube_keyword".to_owned(), Some(2), Some(1), t1),
        ]
    );
    // The record goes on like any other: a save merges into it.
    let mut again = prismq_domain::ContentItem::new("youtube_trending", "v", "t");
    again.metrics.views = Some(200);
    again.rank = Some(9);
    let r = store.save_blocking(Some(TaskId(4)), &[again]).unwrap();
    assert_eq!((r.inserted, r.updated), (0, 1));
    assert_eq!(history("v").len(), 3);
    let table = |sql: &str| -> Vec<(String, String)> {
        conn.prepare(sql)
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(
        table("SELECT source, source_id FROM youtube_results ORDER BY source_id, source"),
        [
            ("youtube_channel", "v"),
            ("youtube_keyword", "v"),
            ("youtube_trending", "v"),
            ("youtube_api", "w"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned())),
        "the seed-era view still answers per (source, source_id)"
    );

    assert_eq!(store.migrate_down(7).unwrap(), down_to(7));
    assert_eq!(
        table("SELECT source, source_id FROM results ORDER BY source_id, source"),
        [
            ("youtube_channel", "v"),
            ("youtube_keyword", "v"),
            ("youtube_trending", "v"),
            ("youtube_api", "w"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned())),
        "down: a row per source that found it"
    );
    let task_of = |source: &str| -> Option<i64> {
        conn.query_row(
            "SELECT last_task_id FROM results WHERE source = ?1 AND source_id = 'v'",
            [source],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(
        (
            task_of("youtube_channel"),
            task_of("youtube_keyword"),
            task_of("youtube_trending")
        ),
        (Some(1), Some(2), Some(4))
    );
    let per_row: i64 = conn
        .query_row(
            "SELECT count(*) FROM result_metrics m JOIN results r ON r.id = m.result_id
             WHERE r.source = 'youtube_channel' AND r.source_id = 'v'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(per_row, 3, "each row has the whole history");
    // And up again: one record, its history not doubled.
    assert_eq!(store.migrate_up(None).unwrap(), up_from(7));
    assert_eq!(store.find_blocking("v").unwrap().len(), 1);
    assert_eq!(history("v").len(), 3);
}

/// An old-shape database (v7: a row per source) with history, upgraded by simply opening it
/// (as any command that migrates does): the merged records have their growth, listed by it.
#[test]
fn opening_an_old_database_gives_merged_records_their_growth() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let store = open(&path).unwrap();
    assert_eq!(store.migrate_down(7).unwrap(), down_to(7));
    drop(store);
    let conn = Connection::open(&path).unwrap();
    let h = 3_600_000_i64;
    let t0 = 1_800_000_000_000_i64;
    // Video "a": seen by a channel task at t0 and t0 + 12 h, by a keyword search at
    // t0 + 24 h; video "b": one source, two snapshots 24 h apart; "c": one snapshot.
    for (source, id, first, snaps) in [
        (
            "youtube_channel",
            "a",
            t0,
            vec![(t0, 1_000), (t0 + 12 * h, 2_200)],
        ),
        (
            "youtube_keyword",
            "a",
            t0 + 24 * h,
            vec![(t0 + 24 * h, 3_400)],
        ),
        ("youtube_api", "b", t0, vec![(t0, 10), (t0 + 24 * h, 250)]),
        ("youtube_api", "c", t0, vec![(t0, 7)]),
    ] {
        let (last, views) = *snaps.last().unwrap();
        conn.execute(
            "INSERT INTO results (source, source_id, title, views, first_seen_at, last_seen_at,
                 first_views, first_metrics_at, metrics_at)
             VALUES (?1, ?2, 't', ?3, ?4, ?5, ?3, ?4, ?5)",
            rusqlite::params![source, id, views, first, last],
        )
        .unwrap();
        let row = conn.last_insert_rowid();
        for (at, v) in snaps {
            conn.execute(
                "INSERT INTO result_metrics (result_id, captured_at, views) VALUES (?1, ?2, ?3)",
                rusqlite::params![row, at, v],
            )
            .unwrap();
        }
    }
    drop(conn);
    let store = open(&path).unwrap();
    let listed = store
        .query_blocking(&ResultQuery {
            order: ResultOrder::Growth,
            window: GrowthWindow::Day,
            ..ResultQuery::default()
        })
        .unwrap();
    let got: Vec<(&str, Option<(f64, i64)>)> = listed
        .iter()
        .map(|r| {
            (
                r.item.source_id.as_str(),
                r.growth
                    .get(GrowthWindow::Day)
                    .map(|g| (g.views_per_hour, g.span_secs)),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("a", Some((100.0, 86_400))),
            ("b", Some((10.0, 86_400))),
            ("c", None)
        ],
        "a: 2,400 views over the day its merged history covers; b: 240; c: no history"
    );
    let conn = Connection::open(&path).unwrap();
    let pending: i64 = conn
        .query_row("SELECT count(*) FROM growth_pending", [], |r| r.get(0))
        .unwrap();
    assert_eq!(pending, 0);
    // Opening again computes nothing more (the record of the catch-up is the empty table).
    assert_eq!(open(&path).unwrap().catch_up_growth_blocking().unwrap(), 0);
}
