//! Database paths that must never be adopted, created or migrated: another application's
//! SQLite database (refused by every command, not a byte or its journal mode changed), a
//! missing or empty file under commands that only read, an older schema under commands that
//! only read, and paths that cannot be a database file (`file:` URIs, `:memory:`, devices,
//! FIFOs, directories), refused before anything is created.

use std::path::{Path, PathBuf};
use std::process::Command;

use prismq_tests::harness::{self, Sandbox};

/// Every command that opens the database, with its arguments (a task id 1 where one is
/// needed): those that only read, and those that write.
const READS: &[&[&str]] = &[
    &["tasks", "list"],
    &["tasks", "show", "1"],
    &["stats"],
    &["results", "list"],
    &["results", "show", "dQw4w9WgXcQ"],
    &["results", "export", "--format", "csv", "--out", "out.csv"],
    &["workers"],
    &["dlq", "list"],
    &["migrate", "status"],
    &["backup", "--out", "b.db"],
];

const WRITES: &[&[&str]] = &[
    &["init"],
    &["migrate", "up"],
    &["migrate", "down", "--to", "0", "--yes"],
    &["enqueue", "keyword", "q"],
    &["work", "--drain"],
    &["tasks", "cancel", "1"],
    &["tasks", "retry", "1"],
    &["dlq", "retry", "--all"],
    &["dlq", "purge", "--older-than", "1d"],
    &["workers", "prune"],
    &["maintenance", "checkpoint"],
    &["maintenance", "optimize"],
    &["maintenance", "vacuum"],
];

/// `path` with `suffix` appended (`-wal`, `-shm`, `-journal`).
fn beside(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", path.display()))
}

fn run_on(s: &Sandbox, db: &Path, args: &[&str]) -> std::process::Output {
    s.bare()
        .arg("--db")
        .arg(db)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run prismq")
}

/// Files and directories under the sandbox, to prove a refusal created none.
fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn another_applications_database_is_refused_by_every_command_and_left_untouched() {
    let s = Sandbox::new();
    let app = s.path("app.db");
    let c = rusqlite::Connection::open(&app).unwrap();
    c.execute_batch(
        "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO users(name) VALUES ('ada');",
    )
    .unwrap();
    drop(c);
    let bytes = std::fs::read(&app).unwrap();
    for args in READS.iter().chain(WRITES) {
        let out = run_on(&s, &app, args);
        let err = harness::expect_code(&out, 4, &format!("{args:?}"));
        assert!(
            err.starts_with("error: ") && err.lines().count() == 1,
            "{args:?}: {err}"
        );
        assert!(
            err.contains("app.db is not a PrismQ database") && err.contains("(users)"),
            "{args:?}: {err}"
        );
        assert_eq!(std::fs::read(&app).unwrap(), bytes, "{args:?} wrote");
        for suffix in ["-wal", "-shm", "-journal"] {
            assert!(!beside(&app, suffix).exists(), "{args:?} left {suffix}");
        }
    }
    // validate reports it as its check 2 (exit 1) and skips the checks that would set WAL.
    let out = run_on(&s, &app, &["validate", "--quick", "--no-benchmark"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("is not a PrismQ database"), "{text}");
    assert_eq!(std::fs::read(&app).unwrap(), bytes, "validate wrote");
    let c = rusqlite::Connection::open(&app).unwrap();
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
    let tables: i64 = c
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 1, "only the application's own table");
}

#[test]
fn commands_that_only_read_never_create_a_database() {
    let s = Sandbox::new();
    let db = s.path("new").join("queue.db");
    let before = listing(s.dir.path());
    for args in READS {
        let out = run_on(&s, &db, args);
        let err = harness::expect_code(&out, 3, &format!("{args:?}"));
        assert!(
            err.contains("no database at") && err.contains("prismq init"),
            "{args:?}: {err}"
        );
        assert_eq!(listing(s.dir.path()), before, "{args:?} created something");
    }
    // An empty file is no queue yet: the readers leave it empty.
    std::fs::write(s.db(), b"").unwrap();
    for args in READS {
        let out = s.run(args);
        let err = harness::expect_code(&out, 3, &format!("{args:?} on an empty file"));
        assert!(err.contains("holds no PrismQ queue yet"), "{args:?}: {err}");
        assert_eq!(
            std::fs::metadata(s.db()).unwrap().len(),
            0,
            "{args:?} wrote"
        );
        assert!(!beside(&s.db(), "-wal").exists(), "{args:?} left a -wal");
    }
    // A command that puts work on the queue still makes one there, as on a fresh machine.
    s.ok(&["enqueue", "keyword", "first"]);
    assert_eq!(s.json(&["tasks", "list"]).as_array().unwrap().len(), 1);
    let elsewhere = s.path("fresh").join("q.db");
    let out = run_on(&s, &elsewhere, &["enqueue", "keyword", "q"]);
    harness::expect_code(&out, 0, "enqueue on a new path");
    assert!(elsewhere.exists());
}

#[test]
fn commands_that_only_read_never_migrate() {
    let s = Sandbox::new();
    s.ok(&["init"]);
    s.ok(&["enqueue", "keyword", "q"]);
    s.ok(&["migrate", "down", "--to", "1", "--yes"]);
    let before = s.db_bytes();
    for args in [&["tasks", "list"][..], &["stats"], &["results", "list"]] {
        let err = s.fails(args, 4);
        assert!(
            err.contains("schema is version 1") && err.contains("prismq migrate up"),
            "{args:?}: {err}"
        );
        assert!(s.db_bytes() == before, "{args:?} changed the database");
    }
    assert_eq!(s.json(&["migrate", "status"])["current"], 1);
    // Commands that write migrate as before.
    s.ok(&["enqueue", "keyword", "again"]);
    let latest = prismq_storage_sqlite::migrations::latest_version();
    assert_eq!(s.json(&["migrate", "status"])["current"], latest);
    assert_eq!(s.json(&["tasks", "list"]).as_array().unwrap().len(), 2);
}

#[test]
fn paths_that_cannot_be_a_database_file_are_refused_before_anything_is_created() {
    let s = Sandbox::new();
    let fifo = s.path("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let dir = s.path("adir");
    std::fs::create_dir(&dir).unwrap();
    let dev_null_sidecars: Vec<PathBuf> = ["-journal", "-wal", "-shm"]
        .iter()
        .map(|x| beside(Path::new("/dev/null"), x))
        .filter(|p| !p.exists())
        .collect();
    let cases: [(&str, &str); 7] = [
        ("file:q.db", "it is a URI"),
        ("file:sub/q.db?mode=rwc", "it is a URI"),
        ("file:///tmp/prismq-uri-test.db", "it is a URI"),
        (":memory:", "in-memory"),
        ("/dev/null", "it is a character device"),
        ("fifo", "it is a FIFO"),
        ("adir", "it is a directory"),
    ];
    let before = listing(s.dir.path());
    for (db, says) in cases {
        for args in [
            &["init"][..],
            &["enqueue", "keyword", "q"],
            &["work", "--drain"],
            &["tasks", "list"],
            &["migrate", "status"],
        ] {
            let out = run_on(&s, Path::new(db), args);
            let err = harness::expect_code(&out, 2, &format!("--db {db} {args:?}"));
            assert!(
                err.starts_with("error: invalid database path")
                    && err.contains(says)
                    && err.contains("accepted: a path to")
                    && err.lines().count() == 1,
                "--db {db} {args:?}: {err}"
            );
            assert_eq!(
                listing(s.dir.path()),
                before,
                "--db {db} {args:?} created something"
            );
        }
    }
    assert!(!Path::new("/tmp/prismq-uri-test.db").exists());
    for p in dev_null_sidecars {
        assert!(!p.exists(), "{} was created", p.display());
    }
}
