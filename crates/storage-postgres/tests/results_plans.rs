//! Keyset paging of `query` on a real PostgreSQL server: for every order, each statement of
//! a page deep in the listing reads the order's index and never sorts the results table,
//! and the page equals the same slice of the whole listing. A kind of source few videos
//! have is read from its sightings: only its records, each by its key.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::reads;
use prismq_domain::growth::GrowthWindow;
use prismq_domain::ports::{Clock, ResultOrder, ResultQuery, ResultStore};
use prismq_domain::task::TaskId;
use prismq_domain::Timestamp;
use prismq_storage_postgres::{
    query_statements, query_statements_with, PostgresOptions, PostgresStore, SourcePlan,
};
use prismq_testkit::fixtures::ranked_videos;
use prismq_testkit::FakeClock;
use serde_json::Value;
use tokio_postgres::types::ToSql;

const N: i64 = 6_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_after_a_deep_cursor_reads_the_orders_index_without_sorting() {
    let schema = common::fresh_schema("keyset");
    let clock = Arc::new(FakeClock::new(
        Timestamp::from_second(1_800_000_000).unwrap(),
    ));
    let mut o = PostgresOptions::new(common::url()).with_schema(&schema);
    o.pool_size = 4;
    let store = PostgresStore::connect_lazy(o, clock.clone() as Arc<dyn Clock>).unwrap();
    for chunk in ranked_videos(N, clock.now(), |i| (i % 7 != 0).then_some(1_000)).chunks(2_000) {
        store.save(None, chunk).await.unwrap();
    }
    clock.advance(Duration::from_secs(2 * 3600));
    let second = ranked_videos(N, clock.now(), |i| {
        (i % 7 != 0).then_some(1_000 + (i * 7_919) % 4_001)
    });
    for chunk in second.chunks(2_000) {
        store.save(None, chunk).await.unwrap();
    }
    let client = store.connection().await.unwrap();
    client.batch_execute("ANALYZE results").await.unwrap();

    for (order, index) in [
        (ResultOrder::Views, "ix_results_views"),
        (ResultOrder::Recent, "ix_results_published"),
        (ResultOrder::Growth, "ix_results_growth_24h"),
        (ResultOrder::Outlier, "ix_results_outlier"),
    ] {
        let all = store
            .query(&ResultQuery {
                order,
                limit: 10_000,
                ..ResultQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(all.len() as i64, N);
        let first_none = all
            .iter()
            .position(|r| {
                ResultQuery {
                    order,
                    ..ResultQuery::default()
                }
                .value_of(r)
                .is_none()
            })
            .expect("some items have no value");
        // A cursor with a value (item 3,000), and one past the last value.
        for at in [3_000, first_none + 10] {
            let mut q = ResultQuery {
                order,
                limit: 50,
                ..ResultQuery::default()
            };
            q.after = Some(q.cursor_after(&all[at - 1]));
            let page = store.query(&q).await.unwrap();
            let want: Vec<_> = all[at..(at + 50).min(all.len())]
                .iter()
                .map(|r| r.item.source_id.clone())
                .collect();
            let got: Vec<_> = page.iter().map(|r| r.item.source_id.clone()).collect();
            assert_eq!(got, want, "{order:?} after item {at}");
            for (sql, args) in query_statements(&q) {
                let refs: Vec<&(dyn ToSql + Sync)> = args
                    .iter()
                    .map(|a| a.as_ref() as &(dyn ToSql + Sync))
                    .collect();
                let row = client
                    .query_one(&format!("EXPLAIN (FORMAT JSON) {sql}"), &refs)
                    .await
                    .unwrap_or_else(|e| panic!("{order:?}: {e}: {sql}"));
                let plan: Value = row.get(0);
                let text = serde_json::to_string(&plan).unwrap();
                let mut found = Vec::new();
                reads(&plan[0]["Plan"], false, &mut found);
                assert!(!found.is_empty(), "{order:?} reads no results: {text}");
                for (node, ix, sorted) in &found {
                    assert!(
                        node.starts_with("Index") && ix == index,
                        "{order:?} after item {at}: {node} {ix} instead of {index}: {text}"
                    );
                    assert!(!sorted, "{order:?} sorts the results: {text}");
                }
            }
        }
    }
    client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .unwrap();
}

/// Every node of `plan` that reads `relation`: (node type, index).
fn reads_of(plan: &Value, relation: &str, out: &mut Vec<(String, String)>) {
    if plan["Relation Name"].as_str() == Some(relation) {
        out.push((
            plan["Node Type"].as_str().unwrap_or_default().to_owned(),
            plan["Index Name"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    for c in plan["Plans"].as_array().into_iter().flatten() {
        reads_of(c, relation, out);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rare_source_reads_only_its_records() {
    const N: i64 = 4_000;
    let schema = common::fresh_schema("rare_source");
    let clock = Arc::new(FakeClock::new(
        Timestamp::from_second(1_800_000_000).unwrap(),
    ));
    let mut o = PostgresOptions::new(common::url()).with_schema(&schema);
    o.pool_size = 4;
    let store = PostgresStore::connect_lazy(o, clock.clone() as Arc<dyn Clock>).unwrap();
    for chunk in ranked_videos(N, clock.now(), |i| (i % 7 != 0).then_some(1_000)).chunks(2_000) {
        store.save(None, chunk).await.unwrap();
    }
    clock.advance(Duration::from_secs(2 * 3600));
    let second = ranked_videos(N, clock.now(), |i| {
        (i % 7 != 0).then_some(1_000 + (i * 7_919) % 4_001)
    });
    for chunk in second.chunks(2_000) {
        store.save(None, chunk).await.unwrap();
    }
    let order = |source: Option<&str>, limit: u32| ResultQuery {
        order: ResultOrder::Growth,
        window: GrowthWindow::Day,
        source: source.map(str::to_owned),
        limit,
        ..ResultQuery::default()
    };
    let all = store.query(&order(None, 10_000)).await.unwrap();
    // The 30 videos low in the order, around the last with a growth: a walk's worst case.
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
    assert_eq!(found.len(), 30);
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
    let mut got = Vec::new();
    let mut q = order(Some("youtube_trending"), 10);
    loop {
        let page = store.query(&q).await.unwrap();
        let Some(last) = page.last() else { break };
        q.after = Some(q.cursor_after(last));
        got.extend(page.into_iter().map(|r| r.item.source_id));
    }
    assert_eq!(got, want, "the pages are the filtered listing");

    let client = store.connection().await.unwrap();
    client
        .batch_execute("ANALYZE results; ANALYZE result_sightings")
        .await
        .unwrap();
    // The first page, and one after a cursor (both statements).
    let mut after = order(Some("youtube_trending"), 50);
    after.after = Some(after.cursor_after(&all[all.len() - 590]));
    for q in [order(Some("youtube_trending"), 50), after] {
        for (sql, args) in query_statements_with(&q, SourcePlan::FromSightings) {
            let refs: Vec<&(dyn ToSql + Sync)> = args
                .iter()
                .map(|a| a.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let plan: Value = client
                .query_one(&format!("EXPLAIN (FORMAT JSON) {sql}"), &refs)
                .await
                .unwrap_or_else(|e| panic!("{e}: {sql}"))
                .get(0);
            let text = serde_json::to_string(&plan).unwrap();
            let (mut results, mut sightings) = (Vec::new(), Vec::new());
            reads_of(&plan[0]["Plan"], "results", &mut results);
            reads_of(&plan[0]["Plan"], "result_sightings", &mut sightings);
            assert!(
                !results.is_empty()
                    && results
                        .iter()
                        .all(|(node, ix)| node == "Index Scan" && ix == "results_pkey"),
                "results read only by key: {text}"
            );
            assert!(
                !sightings.is_empty()
                    && sightings.iter().all(|(node, ix)| node.starts_with("Index")
                        && ix == "ix_result_sightings_source"),
                "the sightings through the source index: {text}"
            );
        }
    }
    client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .unwrap();
}
