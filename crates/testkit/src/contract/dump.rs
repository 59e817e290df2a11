//! Obligations of `Dump` and `Load`: a dump loaded into a fresh store of the same engine
//! reproduces every row (tasks with their ids, states and logs in order, workers, results
//! with their history, quota), batches are never larger than asked, a load dropped before
//! its commit leaves the target as it was, and a load sees and may clear what the target
//! holds. A subject without dump and load passes over them.

use std::sync::Arc;

use async_trait::async_trait;
use prismq_domain::ports::dump::{Row, DUMP_TABLES};
use prismq_domain::ports::{DumpSink, Failure, LoadSession, ResultQuery, StorageError};
use prismq_domain::{ClaimingStrategy, ErrorClass, NewTask};
use serde_json::json;

use super::support::setup;
use super::{ContractEnv, Subject};
use crate::fixtures::{content_item, new_task, task_type_of, worker_info};
use crate::FakeClock;

/// A store with tasks in several states (one completed, one failed, one queued), a worker,
/// results with history, and quota used.
async fn populate(s: &Subject, clock: &FakeClock) {
    let done = s
        .add(NewTask::new(task_type_of("a"), json!({"n": 1})))
        .await;
    s.add(NewTask::new(task_type_of("b"), json!({"n": 2})))
        .await;
    s.add(NewTask::new(task_type_of("a"), json!({"n": 3})))
        .await;
    let c = s.claim(ClaimingStrategy::Fifo).await.expect("claim");
    assert_eq!(c.task.id, done);
    s.queue.start(&c.lease).await.expect("start");
    s.queue
        .complete(&c.lease, Some(json!({"found": 2})))
        .await
        .expect("complete");
    let c = s.claim(ClaimingStrategy::Fifo).await.expect("claim");
    let failure = Failure {
        class: ErrorClass::Permanent,
        message: "broken".into(),
    };
    s.queue.fail(&c.lease, &failure).await.expect("fail");
    s.workers
        .register(&worker_info("w1"))
        .await
        .expect("register");
    s.results
        .save(
            Some(done),
            &[
                content_item("youtube_api", "aaaaaaaaaaa", 10),
                content_item("youtube_api", "bbbbbbbbbbb", 20),
            ],
        )
        .await
        .expect("save");
    s.results
        .save(
            Some(done),
            &[content_item("youtube_api", "aaaaaaaaaaa", 15)],
        )
        .await
        .expect("save again");
    let window_end = crate::fixtures::plus_secs(clock.now(), 3600);
    s.quota
        .try_consume("bucket", 3, 100, window_end)
        .await
        .expect("quota");
}

/// Collects a dump's batches (and checks their size).
struct Collect {
    most: usize,
    batches: Vec<(usize, Vec<Row>)>,
}

#[async_trait]
impl DumpSink for Collect {
    async fn write(&mut self, table: usize, rows: Vec<Row>) -> Result<(), StorageError> {
        assert!(
            !rows.is_empty() && rows.len() <= self.most,
            "batch of {}",
            rows.len()
        );
        assert!(
            self.batches.last().is_none_or(|(t, _)| *t <= table),
            "tables out of order"
        );
        assert!(rows
            .iter()
            .all(|r| r.len() == DUMP_TABLES[table].columns.len()));
        self.batches.push((table, rows));
        Ok(())
    }
}

/// Feeds a dump into a load.
struct LoadInto<'a>(&'a mut dyn LoadSession);

#[async_trait]
impl DumpSink for LoadInto<'_> {
    async fn write(&mut self, table: usize, rows: Vec<Row>) -> Result<(), StorageError> {
        self.0.write(table, rows).await
    }
}

/// Every row dumped from a populated store and loaded into a fresh one reads back the same
/// through the ports, ids included; the counts of both sides agree.
pub async fn dump_then_load_copies_every_row(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, source) = setup(&factory);
    let (_clock2, target) = setup(&factory);
    let (Some((dump, _)), Some((_, load))) = (source.dump.clone(), target.dump.clone()) else {
        return;
    };
    populate(&source, &clock).await;
    let mut session = load.begin_load().await.expect("begin load");
    assert_eq!(session.existing_rows().await.expect("existing"), 0);
    let dumped = dump
        .dump(2, &mut LoadInto(&mut *session))
        .await
        .expect("dump");
    assert_eq!(dumped.len(), DUMP_TABLES.len());
    assert_eq!(dumped[0], 3, "three tasks");
    assert_eq!(session.counts().await.expect("counts"), dumped);
    session.commit().await.expect("commit");

    assert_eq!(target.all_tasks().await, source.all_tasks().await);
    for t in source.all_tasks().await {
        assert_eq!(
            target.events(t.id).await,
            source.events(t.id).await,
            "{:?}",
            t.id
        );
    }
    let query = ResultQuery::default();
    let (a, b) = (
        source.results.query(&query).await.expect("query"),
        target.results.query(&query).await.expect("query"),
    );
    assert_eq!(a.len(), 2);
    assert_eq!(
        a.iter()
            .map(|r| (&r.item.source_id, r.item.metrics.views))
            .collect::<Vec<_>>(),
        b.iter()
            .map(|r| (&r.item.source_id, r.item.metrics.views))
            .collect::<Vec<_>>()
    );
    let workers = target
        .workers
        .list(std::time::Duration::from_secs(60))
        .await
        .expect("workers");
    assert_eq!(workers.len(), 1);
    // The loaded store goes on: a new task gets an id after the loaded ones.
    let next = target.add(new_task("a")).await;
    assert!(source.all_tasks().await.iter().all(|t| t.id < next));
}

/// Batches hold at most the given number of rows, tables come in [`DUMP_TABLES`] order, and
/// the rows sent add up to the counts returned.
pub async fn dump_streams_in_batches_of_the_given_size(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let Some((dump, _)) = s.dump.clone() else {
        return;
    };
    populate(&s, &clock).await;
    let mut sink = Collect {
        most: 1,
        batches: Vec::new(),
    };
    let counts = dump.dump(1, &mut sink).await.expect("dump");
    for (i, n) in counts.iter().enumerate() {
        let sent: usize = sink
            .batches
            .iter()
            .filter(|(t, _)| *t == i)
            .map(|(_, r)| r.len())
            .sum();
        assert_eq!(sent as u64, *n, "{}", DUMP_TABLES[i].name);
    }
    assert_eq!(counts[0], 3);
}

/// A session dropped without commit leaves the target as it was.
pub async fn a_load_dropped_before_commit_leaves_the_target_as_it_was(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (clock, source) = setup(&factory);
    let (_clock2, target) = setup(&factory);
    let (Some((dump, _)), Some((_, load))) = (source.dump.clone(), target.dump.clone()) else {
        return;
    };
    populate(&source, &clock).await;
    let mut session = load.begin_load().await.expect("begin load");
    dump.dump(100, &mut LoadInto(&mut *session))
        .await
        .expect("dump");
    drop(session);
    assert!(target.all_tasks().await.is_empty());
    let mut again = load.begin_load().await.expect("begin load again");
    assert_eq!(again.existing_rows().await.expect("existing"), 0);
}

/// A session counts the rows the target holds; `clear` empties the tables inside the
/// session, and dropping it keeps them.
pub async fn a_load_sees_existing_rows_and_may_clear_them(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (clock, s) = setup(factory);
    let Some((_, load)) = s.dump.clone() else {
        return;
    };
    populate(&s, &clock).await;
    let before = s.all_tasks().await;
    let load: Arc<dyn prismq_domain::ports::Load> = load;
    let mut session = load.begin_load().await.expect("begin load");
    assert!(session.existing_rows().await.expect("existing") >= 3);
    session.clear().await.expect("clear");
    assert_eq!(session.existing_rows().await.expect("existing"), 0);
    assert!(session
        .counts()
        .await
        .expect("counts")
        .iter()
        .all(|n| *n == 0));
    drop(session);
    assert_eq!(s.all_tasks().await, before);
}
