//! Schedules across OS processes on one PostgreSQL schema: four processes, each with its own
//! fake clock walking through the same ten slots and firing at every step, enqueue exactly
//! ten tasks, one per slot.

mod common;

use std::sync::Arc;

use prismq_domain::ports::{Clock, ScheduleStore, TaskFilter, TaskQueue};
use prismq_domain::schedule::{Cadence, NewSchedule};
use prismq_domain::{TaskType, Timestamp};
use prismq_storage_postgres::{PostgresOptions, PostgresStore};
use prismq_testkit::FakeClock;

const START: Timestamp = prismq_testkit::clock::DEFAULT_START;
const SLOTS: i64 = 10;

fn types() -> Vec<TaskType> {
    vec![TaskType::new("a").unwrap()]
}

fn store(schema: &str, clock: Arc<FakeClock>) -> PostgresStore {
    let mut o = PostgresOptions::new(common::url()).with_schema(schema);
    o.pool_size = 4;
    PostgresStore::connect_lazy(o, clock as Arc<dyn Clock>).expect("store")
}

fn at_minute(m: i64) -> Timestamp {
    Timestamp::from_second(START.as_second() + m * 60).unwrap()
}

/// Runs as a child process: walks its own clock through the ten hourly slots minute by
/// minute, calling fire_due at each, and prints every slot it fired.
#[test]
#[ignore = "run as a child process by the multi-process test"]
fn child_firer() {
    let Ok(schema) = std::env::var("PRISMQ_TEST_SCHEMA") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let clock = Arc::new(FakeClock::new(START));
    let s = store(&schema, clock.clone());
    println!();
    rt.block_on(async {
        for minute in 1..=(SLOTS * 60) {
            clock.set(at_minute(minute));
            for f in s.fire_due(&types(), 100).await.unwrap() {
                println!("fired {}", f.slot);
            }
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_over_ten_slots_enqueue_ten_tasks() {
    let schema = common::fresh_schema("sched");
    let s = store(&schema, Arc::new(FakeClock::new(START)));
    s.add_schedule(NewSchedule::new(
        "h",
        types()[0].clone(),
        serde_json::json!({}),
        Cadence::every("1h").unwrap(),
    ))
    .await
    .unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--ignored",
                    "--exact",
                    "child_firer",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("PRISMQ_TEST_SCHEMA", &schema)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let mut fired = Vec::new();
    for out in outputs {
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "child failed: {text}");
        fired.extend(
            text.lines()
                .filter_map(|l| l.strip_prefix("fired "))
                .map(str::to_owned),
        );
    }
    fired.sort();
    let want: Vec<String> = (1..=SLOTS).map(|h| at_minute(h * 60).to_string()).collect();
    assert_eq!(fired, want, "each slot fired once, by one process");
    assert_eq!(
        s.list(&TaskFilter::default()).await.unwrap().len(),
        SLOTS as usize
    );
}
