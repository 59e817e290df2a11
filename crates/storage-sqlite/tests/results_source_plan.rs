//! `results list --source K` for a kind of source few videos have, on a real file: the page
//! is read from the kind's sightings (each of its records once, by id), not by walking the
//! order's index past every other video, counted in SQLite's own step counters; the pages
//! equal the filtered listing; a common kind still walks the index.

use std::sync::Arc;
use std::time::Duration;

use prismq_domain::growth::GrowthWindow;
use prismq_domain::ports::{ResultOrder, ResultQuery, ResultStore};
use prismq_domain::task::TaskId;
use prismq_domain::Timestamp;
use prismq_storage_sqlite::{
    query_statements_with, source_plan, SourcePlan, SqliteOptions, SqliteStore,
};
use prismq_testkit::fixtures::ranked_videos;
use prismq_testkit::FakeClock;
use rusqlite::StatementStatus;

const N: i64 = 4_000;
const RARE: usize = 30;

#[test]
fn the_plan_reads_the_sightings_only_when_that_is_cheaper() {
    // 30 sightings among 4,000 records, a page of 50: walking reads ~6,700 rows.
    assert_eq!(source_plan(30, 4_000, 50), SourcePlan::FromSightings);
    // Every record: walking fills the page in 50 rows.
    assert_eq!(source_plan(4_000, 4_000, 50), SourcePlan::WalkOrder);
    // At a million records, 7,000 sightings still cost less than a walk (~7,100 rows).
    assert_eq!(source_plan(7_000, 1_000_000, 50), SourcePlan::FromSightings);
    assert_eq!(
        source_plan(10_000, 1_000_000_000, 50),
        SourcePlan::WalkOrder
    );
}

#[tokio::test]
async fn a_rare_source_reads_only_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FakeClock::new(
        Timestamp::from_second(1_800_000_000).unwrap(),
    ));
    let store =
        SqliteStore::open(SqliteOptions::new(dir.path().join("q.db")), clock.clone()).unwrap();
    store
        .save(
            None,
            &ranked_videos(N, clock.now(), |i| (i % 7 != 0).then_some(1_000)),
        )
        .await
        .unwrap();
    clock.advance(Duration::from_secs(2 * 3600));
    let second = ranked_videos(N, clock.now(), |i| {
        (i % 7 != 0).then_some(1_000 + (i * 7_919) % 4_001)
    });
    store.save(None, &second).await.unwrap();
    let order = |source: Option<&str>, limit: u32| ResultQuery {
        order: ResultOrder::Growth,
        window: GrowthWindow::Day,
        source: source.map(str::to_owned),
        limit,
        ..ResultQuery::default()
    };
    let all = store.query(&order(None, 10_000)).await.unwrap();
    assert_eq!(all.len() as i64, N);
    // The rare kind found the 30 videos lowest in the order (the last with a growth and
    // the first without): the worst case for a walk, which passes every other video first.
    let rare_ids: Vec<String> = all[all.len() - 600..all.len() - 570]
        .iter()
        .map(|r| r.item.source_id.clone())
        .collect();
    let found: Vec<_> = second
        .iter()
        .filter(|it| rare_ids.contains(&it.source_id))
        .map(|it| {
            let mut it = it.clone();
            it.source = "youtube_trending".into();
            it
        })
        .collect();
    assert_eq!(found.len(), RARE);
    clock.advance(Duration::from_secs(60));
    store.save(Some(TaskId(77)), &found).await.unwrap();
    let want: Vec<String> = store
        .query(&order(None, 10_000))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.item.source_id)
        .filter(|id| rare_ids.contains(id))
        .collect();

    // The store's pages (10 at a time, through the cursor) are the filtered listing.
    let mut got = Vec::new();
    let mut q = order(Some("youtube_trending"), 10);
    loop {
        let page = store.query(&q).await.unwrap();
        let Some(last) = page.last() else { break };
        q.after = Some(q.cursor_after(last));
        got.extend(page.into_iter().map(|r| r.item.source_id));
    }
    assert_eq!(got, want);

    // What each plan reads for the first page of 50.
    let q = order(Some("youtube_trending"), 50);
    let run = |plan: SourcePlan| -> (String, i32, i32, usize) {
        let (sql, args) = query_statements_with(&q, plan).swap_remove(0);
        store
            .with_connection(|c| {
                let text: Vec<String> = c
                    .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                    .unwrap()
                    .query_map(rusqlite::params_from_iter(args.iter()), |r| r.get(3))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                let mut stmt = c.prepare(&sql).unwrap();
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(args.iter()), |_| Ok(()))
                    .unwrap()
                    .count();
                Ok((
                    text.join("\n"),
                    stmt.get_status(StatementStatus::VmStep),
                    stmt.get_status(StatementStatus::FullscanStep),
                    rows,
                ))
            })
            .unwrap()
    };
    let (walk_plan, walk_steps, walk_scan, walk_rows) = run(SourcePlan::WalkOrder);
    let (plan, steps, scan, rows) = run(SourcePlan::FromSightings);
    eprintln!("walk: {walk_steps} VM steps, {walk_scan} scan steps; from the sightings: {steps} / {scan}\n{plan}");
    assert_eq!((rows, walk_rows), (RARE, RARE));
    // The walk passes ~3,400 index entries before its first match.
    assert!(walk_scan > 3_000, "{walk_scan} index steps: {walk_plan}");
    // From the sightings: a range of the source index, each record by its key, no scan.
    assert!(
        plan.contains("ix_result_sightings_source")
            && plan.contains("results USING INTEGER PRIMARY KEY"),
        "{plan}"
    );
    assert!(!plan.contains("SCAN results"), "{plan}");
    assert_eq!(scan, 0, "no table or index is scanned: {plan}");
    assert!(
        steps * 5 < walk_steps,
        "{steps} VM steps from the sightings against {walk_steps} walking"
    );
    // About what the 30 records cost to read and sort, whatever the table's size.
    assert!(steps < 200 * RARE as i32, "{steps} VM steps: {plan}");
}
