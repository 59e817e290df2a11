//! Schedules across OS processes on one SQLite file: four processes, each with its own fake
//! clock walking through the same ten slots and firing at every step, enqueue exactly ten
//! tasks, one per slot; and the due read is one probe of the partial index.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use prismq_domain::ports::{ScheduleStore, TaskFilter, TaskQueue};
use prismq_domain::schedule::{Cadence, NewSchedule};
use prismq_domain::{TaskType, Timestamp};
use prismq_storage_sqlite::{SqliteOptions, SqliteStore};
use prismq_testkit::FakeClock;

const START: &str = "2026-01-01T00:00:00Z";
const SLOTS: i64 = 10;

fn open(path: &Path, clock: Arc<FakeClock>) -> SqliteStore {
    let mut o = SqliteOptions::new(path);
    o.busy_timeout = Duration::from_secs(30);
    SqliteStore::open(o, clock).unwrap()
}

fn types() -> Vec<TaskType> {
    vec![TaskType::new("a").unwrap()]
}

/// Runs as a child process: walks its own clock through the ten hourly slots in small steps,
/// calling fire_due at each, and prints every slot it fired.
#[test]
#[ignore = "run as a child process by the multi-process test"]
fn child_firer() {
    let Some(path) = std::env::var_os("PRISMQ_TEST_DB") else {
        return;
    };
    let start: Timestamp = START.parse().unwrap();
    let clock = Arc::new(FakeClock::new(start));
    let store = open(Path::new(&path), clock.clone());
    println!();
    // 60 steps per hour (every minute), so the processes overlap on every slot.
    for minute in 1..=(SLOTS * 60) {
        clock.set(start + jiff::SignedDuration::from_mins(minute));
        for f in store.fire_due_blocking(&types(), 100).unwrap() {
            println!("fired {}", f.slot);
        }
    }
}

#[test]
fn four_processes_over_ten_slots_enqueue_ten_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let clock = Arc::new(FakeClock::new(START.parse().unwrap()));
    let store = open(&path, clock);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(store.add_schedule(NewSchedule::new(
        "h",
        types()[0].clone(),
        serde_json::json!({}),
        Cadence::every("1h").unwrap(),
    )))
    .unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
            cmd.args([
                "--ignored",
                "--exact",
                "child_firer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("PRISMQ_TEST_DB", &path)
            .stdout(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    let mut fired = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "child failed: {text}");
        fired.extend(
            text.lines()
                .filter_map(|l| l.strip_prefix("fired "))
                .map(str::to_owned),
        );
    }
    fired.sort();
    let want: Vec<String> = (1..=SLOTS)
        .map(|h| {
            (START.parse::<Timestamp>().unwrap() + jiff::SignedDuration::from_hours(h)).to_string()
        })
        .collect();
    assert_eq!(fired, want, "each slot fired once, by one process");
    let tasks = rt.block_on(store.list(&TaskFilter::default())).unwrap();
    assert_eq!(tasks.len(), SLOTS as usize);
}

#[test]
fn the_due_read_probes_the_partial_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    drop(open(&path, Arc::new(FakeClock::default())));
    let conn = rusqlite::Connection::open(&path).unwrap();
    let plan: Vec<String> = conn
        .prepare(&format!(
            "EXPLAIN QUERY PLAN {}",
            prismq_storage_sqlite::DUE_SCHEDULES_SQL
        ))
        .unwrap()
        .query_map(rusqlite::params![1_i64, "[\"a\"]", 100_i64], |r| {
            r.get::<_, String>(3)
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let joined = plan.join("\n");
    assert!(
        joined.contains("SEARCH schedules USING INDEX ix_schedules_due (next_slot<?)"),
        "{joined}"
    );
    assert!(!joined.contains("SCAN schedules"), "{joined}");
}
