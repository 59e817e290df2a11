//! `validate` on real files: a healthy database passes every check and benchmarks; a
//! missing file, a foreign file, a dropped index, an altered checksum and a corrupted page
//! each fail the check that owns them, with a reason; check 4 names a configured page size
//! the file does not have.

use prismq_domain::ports::SystemClock;
use prismq_domain::task::{NewTask, TaskType};
use prismq_storage_sqlite::ops::{validate, Outcome, ValidateOptions, ValidationReport};
use prismq_storage_sqlite::{PageSize, SqliteOptions, SqliteStore};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

fn create(path: &Path, tasks: usize) {
    let store = SqliteStore::open(SqliteOptions::new(path), Arc::new(SystemClock)).unwrap();
    let t = TaskType::new("channel_scrape").unwrap();
    let batch: Vec<NewTask> = (0..tasks)
        .map(|i| {
            NewTask::new(
                t.clone(),
                json!({"channel_url": format!("@c{i}"), "pad": "x".repeat(200)}),
            )
        })
        .collect();
    for chunk in batch.chunks(500) {
        store.enqueue_batch_blocking(chunk).unwrap();
    }
}

fn run(path: &Path, quick: bool) -> ValidationReport {
    let mut v = ValidateOptions::new(quick);
    v.benchmark_tasks = 30;
    validate(&SqliteOptions::new(path), &v)
}

fn outcome(r: &ValidationReport, n: u8) -> Outcome {
    r.check(n)
        .unwrap_or_else(|| panic!("check {n} missing: {r:#?}"))
        .outcome
}

fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[test]
fn a_healthy_database_passes_checks_two_to_eight_and_benchmarks() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    create(&db, 100);
    let r = run(&db, false);
    for n in 2..=8 {
        assert_eq!(
            outcome(&r, n),
            Outcome::Pass,
            "check {n}: {:#?}",
            r.check(n)
        );
    }
    assert!(r.passed());
    assert_eq!(r.checks.len(), 7, "check 1 is the app's");
    let b = r.benchmark.as_ref().expect("benchmark ran");
    assert_eq!(b.tasks, 30);
    assert!(b.inserts_per_sec > 0.0 && b.claims_per_sec > 0.0 && b.completes_per_sec > 0.0);
    assert!(r
        .check(3)
        .unwrap()
        .details
        .iter()
        .any(|d| d == "integrity_check: ok"));
    // Nothing left behind: no probe rows, no scratch files.
    let c = raw(&db);
    let n: i64 = c
        .query_row("SELECT count(*) FROM task_queue", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 100);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("validate-bench"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The report serializes.
    let j = serde_json::to_value(&r).unwrap();
    assert_eq!(j["checks"][0]["outcome"], "pass");
    let q = run(&db, true);
    assert!(q
        .check(3)
        .unwrap()
        .details
        .iter()
        .any(|d| d == "quick_check: ok"));
}

/// Check 4 reports the file's page size, and when `database.page_size` asks another, says
/// that only a new file takes it (the file is as healthy as before: check 4 still passes).
#[test]
fn check_four_tells_when_the_configured_page_size_is_not_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    create(&db, 10);
    let details = |o: &SqliteOptions| {
        let mut v = ValidateOptions::new(true);
        v.benchmark_tasks = 0;
        let r = validate(o, &v);
        let c4 = r.check(4).unwrap().clone();
        assert_eq!(c4.outcome, Outcome::Pass, "{c4:?}");
        c4.details
    };
    let same = details(&SqliteOptions::new(&db));
    assert!(same.iter().any(|d| d == "page_size = 2048"), "{same:?}");
    let mut o = SqliteOptions::new(&db);
    o.page_size = PageSize::new(1024).unwrap();
    let other = details(&o);
    assert!(
        other.iter().any(|d| d.starts_with(
            "page_size = 2048 (database.page_size is 1024, which only a new file takes"
        ) && d.contains("`prismq db page-size 1024` rewrites this one")),
        "{other:?}"
    );
}

#[test]
fn a_missing_file_fails_check_two_skips_the_rest_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("absent.db");
    let r = run(&db, true);
    assert_eq!(outcome(&r, 2), Outcome::Fail);
    assert!(
        r.check(2).unwrap().reason.contains("prismq init"),
        "{:?}",
        r.check(2)
    );
    for n in 3..=8 {
        assert_eq!(outcome(&r, n), Outcome::Skip);
    }
    assert!(!r.passed());
    assert!(!db.exists());
}

#[test]
fn a_file_that_is_not_sqlite_fails_check_two() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notes.db");
    std::fs::write(&db, "these are my notes, not a database").unwrap();
    let r = run(&db, true);
    assert_eq!(outcome(&r, 2), Outcome::Fail);
    assert!(r.check(2).unwrap().reason.contains("not a SQLite database"));
}

#[test]
fn a_dropped_claim_index_fails_schema_and_index_usage() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    create(&db, 10);
    raw(&db)
        .execute_batch("DROP INDEX ix_queue_claim_time")
        .unwrap();
    let r = run(&db, true);
    assert_eq!(outcome(&r, 3), Outcome::Fail);
    assert!(
        r.check(3)
            .unwrap()
            .reason
            .contains("index ix_queue_claim_time is missing"),
        "{:?}",
        r.check(3)
    );
    assert_eq!(outcome(&r, 7), Outcome::Fail);
    assert!(
        r.check(7).unwrap().reason.contains("ix_queue_claim_time"),
        "{:?}",
        r.check(7)
    );
    for n in [2, 4, 5, 6, 8] {
        assert_eq!(outcome(&r, n), Outcome::Pass, "check {n}: {:?}", r.check(n));
    }
}

#[test]
fn an_altered_checksum_fails_schema_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    create(&db, 10);
    raw(&db)
        .execute_batch(
            "UPDATE schema_migrations SET checksum = '0000000000000000' WHERE version = 1",
        )
        .unwrap();
    let r = run(&db, true);
    assert_eq!(outcome(&r, 3), Outcome::Fail);
    assert!(
        r.check(3).unwrap().reason.contains("checksum"),
        "{:?}",
        r.check(3)
    );
    for n in [2, 4, 5, 6, 7, 8] {
        assert_eq!(outcome(&r, n), Outcome::Pass, "check {n}: {:?}", r.check(n));
    }
}

#[test]
fn an_index_added_by_hand_is_a_warning_not_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    create(&db, 10);
    raw(&db)
        .execute_batch("CREATE INDEX my_index ON results (title)")
        .unwrap();
    let r = run(&db, true);
    assert_eq!(outcome(&r, 3), Outcome::Warn, "{:?}", r.check(3));
    assert!(r.check(3).unwrap().reason.contains("my_index"));
    assert!(r.passed());
}

#[test]
fn a_corrupted_page_fails_the_integrity_check() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("q.db");
    create(&db, 3000);
    {
        // Fold the WAL into the file so the damage below is what readers see.
        let c = raw(&db);
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
    }
    let page_size = raw(&db)
        .query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))
        .unwrap() as u64;
    let len = std::fs::metadata(&db).unwrap().len();
    let pages = len / page_size;
    assert!(pages > 20, "{pages} pages");
    let mut bytes = std::fs::read(&db).unwrap();
    // Damage a few pages in the last quarter: task rows and index entries, far from the
    // schema pages at the start.
    for p in [pages * 3 / 4, pages * 3 / 4 + 1, pages - 2] {
        let start = (p * page_size) as usize;
        for b in &mut bytes[start..start + page_size as usize] {
            *b = 0xA5;
        }
    }
    std::fs::write(&db, &bytes).unwrap();
    let r = run(&db, false);
    assert_eq!(outcome(&r, 2), Outcome::Pass, "{:?}", r.check(2));
    let c3 = r.check(3).unwrap();
    assert_eq!(c3.outcome, Outcome::Fail, "{c3:?}");
    assert!(c3.reason.contains("integrity_check"), "{c3:?}");
    assert!(c3.reason.contains("restore a backup"), "{c3:?}");
    assert!(!r.passed());
}
