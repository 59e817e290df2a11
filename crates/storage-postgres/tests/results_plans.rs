//! Keyset paging of `query` on a real PostgreSQL server: for every order, each statement of
//! a page deep in the listing reads the order's index and never sorts the results table,
//! and the page equals the same slice of the whole listing.

mod common;

use std::sync::Arc;
use std::time::Duration;

use prismq_domain::ports::{Clock, ResultOrder, ResultQuery, ResultStore};
use prismq_domain::Timestamp;
use prismq_storage_postgres::{query_statements, PostgresOptions, PostgresStore};
use prismq_testkit::fixtures::ranked_videos;
use prismq_testkit::FakeClock;
use serde_json::Value;
use tokio_postgres::types::ToSql;

const N: i64 = 6_000;

/// Every node that reads `results` in `plan` (its type and index), and whether a Sort sits
/// above it.
fn reads(plan: &Value, under_sort: bool, out: &mut Vec<(String, String, bool)>) {
    let node = plan["Node Type"].as_str().unwrap_or_default();
    let sorting = under_sort || node == "Sort" || node == "Incremental Sort";
    if plan["Relation Name"].as_str() == Some("results") {
        out.push((
            node.to_owned(),
            plan["Index Name"].as_str().unwrap_or_default().to_owned(),
            sorting,
        ));
    }
    for c in plan["Plans"].as_array().into_iter().flatten() {
        reads(c, sorting, out);
    }
}

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
