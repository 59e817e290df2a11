//! The operations commands through the real binary: validate's exit codes and JSON, a
//! broken configuration reported as check 1, backup's refusal to overwrite, prune's
//! refusal of an empty request, import legacy (dry run), and workers prune.

use std::path::Path;
use std::process::{Command, Output};

fn prismq(dir: &Path, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_prismq"));
    c.current_dir(dir)
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("APPDATA", dir.join("config"))
        .env("LOCALAPPDATA", dir.join("data"));
    for (k, _) in std::env::vars() {
        if k.starts_with("PRISMQ_") || k == "YOUTUBE_API_KEY" || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    c.arg("--db").arg(dir.join("queue.db")).args(args);
    c.output().expect("run prismq")
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn validate_passes_then_fails_on_a_dropped_index() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(code(&prismq(dir.path(), &["init"])), 0);
    let ok = prismq(dir.path(), &["validate", "--quick", "--no-benchmark"]);
    assert_eq!(code(&ok), 0, "{}", stdout(&ok));
    assert!(stdout(&ok).contains("0 failed"), "{}", stdout(&ok));
    rusqlite::Connection::open(dir.path().join("queue.db"))
        .unwrap()
        .execute_batch("DROP INDEX ix_queue_claim_priority")
        .unwrap();
    let bad = prismq(
        dir.path(),
        &["--json", "validate", "--quick", "--no-benchmark"],
    );
    assert_eq!(code(&bad), 1);
    let v: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    let checks = v["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 8);
    assert_eq!(checks[2]["number"], 3);
    assert_eq!(checks[2]["outcome"], "fail");
    assert_eq!(checks[6]["outcome"], "fail");
}

#[test]
fn validate_reports_a_broken_configuration_as_check_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("prismq.toml"),
        "[worker]\nconcurrency = \"lots\"\n",
    )
    .unwrap();
    let o = prismq(dir.path(), &["validate", "--quick"]);
    assert_eq!(code(&o), 1);
    let out = stdout(&o);
    assert!(out.contains("1 configuration          fail"), "{out}");
    assert!(out.contains("7 skipped"), "{out}");
}

#[test]
fn backup_prune_import_and_workers_prune() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    assert_eq!(code(&prismq(p, &["init"])), 0);
    assert_eq!(code(&prismq(p, &["backup", "--out", "b.db"])), 0);
    let again = prismq(p, &["backup", "--out", "b.db"]);
    assert_eq!(code(&again), 2);
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(code(&prismq(p, &["backup", "--out", "b.db", "--force"])), 0);
    assert_eq!(code(&prismq(p, &["maintenance", "prune"])), 2);
    let pruned = prismq(
        p,
        &[
            "--json",
            "maintenance",
            "prune",
            "--completed-older-than",
            "30d",
        ],
    );
    assert_eq!(code(&pruned), 0);
    let v: serde_json::Value = serde_json::from_slice(&pruned.stdout).unwrap();
    assert_eq!(v["completed"], 0);
    for cmd in [
        ["maintenance", "checkpoint"],
        ["maintenance", "optimize"],
        ["maintenance", "vacuum"],
        ["workers", "prune"],
    ] {
        let o = prismq(p, &cmd);
        assert_eq!(
            code(&o),
            0,
            "{cmd:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let old = p.join("old.db");
    rusqlite::Connection::open(&old)
        .unwrap()
        .execute_batch(
            "CREATE TABLE task_queue (id INTEGER PRIMARY KEY, task_type TEXT, parameters TEXT, priority INTEGER,
               status TEXT, retry_count INTEGER, max_retries INTEGER, created_at TEXT, updated_at TEXT);
             INSERT INTO task_queue VALUES (1, 'keyword_search', '{\"query\": \"rust\"}', 5, 'running', 1, 3,
               '2025-11-11T12:00:00', '2025-11-11T12:00:00');
             INSERT INTO task_queue VALUES (2, 'keyword_search', '{bad', 5, 'queued', 0, 3,
               '2025-11-11T12:00:00', '2025-11-11T12:00:00');",
        )
        .unwrap();
    let dry = prismq(p, &["import", "legacy", "old.db", "--dry-run"]);
    assert_eq!(code(&dry), 0);
    let out = stdout(&dry);
    assert!(
        out.contains("would import 1 of 2 tasks (1 put back in the queue"),
        "{out}"
    );
    assert!(
        out.contains("task_queue 2: parameters is not JSON"),
        "{out}"
    );
    let real = prismq(p, &["--json", "import", "legacy", "old.db"]);
    let v: serde_json::Value = serde_json::from_slice(&real.stdout).unwrap();
    assert_eq!(v["tasks_imported"], 1);
    let again = prismq(p, &["--json", "import", "legacy", "old.db"]);
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(
        (
            v["tasks_imported"].as_u64(),
            v["tasks_already_imported"].as_u64()
        ),
        (Some(0), Some(1))
    );
    assert_eq!(code(&prismq(p, &["import", "legacy", "queue.db"])), 2);
}
