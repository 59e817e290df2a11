//! Region routing on a real file: a worker takes tasks that require no region or its own,
//! each claim probes the claim index's entries of exactly those regions (counted in the rows
//! the claim's statements read, not only by EXPLAIN), so tasks of another region ahead in the
//! queue cost it nothing, and the stats' oldest eligible task sees every region.

use std::sync::Arc;
use std::time::Duration;

use prismq_domain::ports::{ClaimFilter, ClaimRequest, SystemClock};
use prismq_domain::task::{Compatibility, NewTask, Priority, TaskType, WorkerId};
use prismq_domain::ClaimingStrategy;
use prismq_storage_sqlite::{claim_regions, SqliteOptions, SqliteStore, CLAIM_QUERIES};
use rusqlite::types::Value;
use rusqlite::StatementStatus;
use serde_json::json;

const AHEAD: usize = 20_000;

fn request(strategy: ClaimingStrategy, region: Option<&str>) -> ClaimRequest {
    ClaimRequest {
        worker: WorkerId::new("w").unwrap(),
        filter: ClaimFilter {
            task_types: vec![TaskType::new("a").unwrap()],
            region: region.map(str::to_owned),
            only: None,
        },
        strategy,
        lease_for: Duration::from_secs(60),
    }
}

fn task(i: usize, region: Option<&str>) -> NewTask {
    let mut t = NewTask::new(TaskType::new("a").unwrap(), json!({ "i": i }))
        .priority(Priority::new((i % 10) as i64 + 1).unwrap());
    if let Some(r) = region {
        t.compatibility = Compatibility::with_region(r).unwrap();
    }
    t
}

/// A file with `AHEAD` tasks requiring GB, then four requiring no region, then three
/// requiring US that became eligible an hour before all the others.
fn queue(dir: &tempfile::TempDir) -> SqliteStore {
    let store = SqliteStore::open(
        SqliteOptions::new(dir.path().join("q.db")),
        Arc::new(SystemClock),
    )
    .unwrap();
    let gb: Vec<NewTask> = (0..AHEAD).map(|i| task(i, Some("gb"))).collect();
    for chunk in gb.chunks(1000) {
        store.enqueue_batch_blocking(chunk).unwrap();
    }
    let free: Vec<NewTask> = (0..4).map(|i| task(i, None)).collect();
    store.enqueue_batch_blocking(&free).unwrap();
    let early = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    let us: Vec<NewTask> = (0..3)
        .map(|i| NewTask {
            run_after: Some(early),
            ..task(i, Some("US"))
        })
        .collect();
    store.enqueue_batch_blocking(&us).unwrap();
    store
}

/// Runs one claim probe statement as a claim binds it; the id it finds and the virtual
/// machine steps it took (a handful per entry read).
fn probe(store: &SqliteStore, sql: &str, region: Option<&str>, level: u8) -> (Option<i64>, i32) {
    store
        .with_connection(|c| {
            let mut stmt = c.prepare(sql).unwrap();
            let now = jiff::Timestamp::now().as_millisecond();
            // The probes key on the type's interned id (schema v12).
            let type_id: i64 = c
                .query_row("SELECT id FROM task_types WHERE name = 'a'", [], |r| {
                    r.get(0)
                })
                .unwrap();
            let mut args = vec![
                Value::Integer(type_id),
                Value::Integer(now),
                region.map_or(Value::Null, |r| Value::Text(r.into())),
                Value::Integer(level.into()),
            ];
            args.truncate(stmt.parameter_count());
            let id = stmt
                .query_map(rusqlite::params_from_iter(args.iter()), |r| r.get(0))
                .unwrap()
                .next()
                .map(Result::unwrap);
            Ok((id, stmt.get_status(StatementStatus::VmStep)))
        })
        .unwrap()
}

#[test]
fn a_worker_without_a_region_reads_no_entry_of_the_tasks_that_require_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = queue(&dir);
    let probes = ["fifo", "lifo", "priority level"];
    for (name, sql) in CLAIM_QUERIES.iter().filter(|(n, _)| probes.contains(n)) {
        for level in 1..=10 {
            let mut found = Vec::new();
            for region in claim_regions(None) {
                let (id, steps) = probe(&store, sql, region, level);
                // A probe that walked the 20,000 GB entries (or the 2,000 of one level)
                // takes tens of thousands of steps; one that reads its own region's first
                // entry takes well under a hundred.
                assert!(steps < 200, "{name} level {level}: {steps} steps");
                found.extend(id);
            }
            if *name != "priority level" || level == 1 {
                assert!(
                    !found.is_empty(),
                    "{name}: the tasks without a region are found"
                );
            }
            for id in found {
                assert!(
                    id > AHEAD as i64 && id <= AHEAD as i64 + 4,
                    "{name}: took {id}"
                );
            }
        }
    }
    // A GB worker's second probe reads the GB entries, from the first.
    let fifo = CLAIM_QUERIES.iter().find(|(n, _)| *n == "fifo").unwrap().1;
    let (id, steps) = probe(&store, fifo, Some("GB"), 0);
    assert_eq!(id, Some(1));
    assert!(steps < 200, "{steps} steps");
}

#[test]
fn each_strategy_takes_only_what_the_worker_may_and_stats_see_every_region() {
    let dir = tempfile::tempdir().unwrap();
    let store = queue(&dir);
    let stats = store.stats_blocking().unwrap();
    let oldest = stats.oldest_eligible.expect("an eligible task");
    assert!(
        oldest < jiff::Timestamp::now() - jiff::SignedDuration::from_mins(59),
        "the US tasks an hour early are the oldest eligible: {oldest}"
    );
    let region_of = |c: &prismq_domain::ports::ClaimedTask| c.task.compatibility.region.clone();
    // GB, FIFO: the oldest of GB's and the region-free tasks: the first GB task.
    let c = store
        .claim_blocking(&request(ClaimingStrategy::Fifo, Some("gb")))
        .unwrap()
        .unwrap();
    assert_eq!((c.task.id.0, region_of(&c)), (1, Some("GB".to_owned())));
    // US, LIFO: the newest of US's and the region-free tasks: the last region-free one
    // (the US tasks run an hour earlier).
    let c = store
        .claim_blocking(&request(ClaimingStrategy::Lifo, Some("US")))
        .unwrap()
        .unwrap();
    assert_eq!((c.task.id.0, region_of(&c)), (AHEAD as i64 + 4, None));
    // US, FIFO: a US task, an hour older than everything else.
    let c = store
        .claim_blocking(&request(ClaimingStrategy::Fifo, Some("US")))
        .unwrap()
        .unwrap();
    assert_eq!(region_of(&c), Some("US".to_owned()));
    // No region: the three region-free tasks left, whatever the strategy, and then nothing.
    for strategy in [
        ClaimingStrategy::Fifo,
        ClaimingStrategy::Priority,
        ClaimingStrategy::WeightedRandom,
    ] {
        let c = store
            .claim_blocking(&request(strategy, None))
            .unwrap()
            .unwrap();
        assert_eq!(region_of(&c), None, "{strategy:?}");
    }
    for strategy in [
        ClaimingStrategy::Fifo,
        ClaimingStrategy::Lifo,
        ClaimingStrategy::Priority,
        ClaimingStrategy::WeightedRandom,
    ] {
        assert!(
            store
                .claim_blocking(&request(strategy, None))
                .unwrap()
                .is_none(),
            "{strategy:?}: only GB and US tasks are left"
        );
    }
}
