//! A baseline's sample on a real PostgreSQL server: each basis's statement
//! ([`baseline_sample_statement`]) reads the channel's rows of one format through
//! `ix_results_recent`, newest first, and never sorts (schema v9 serves the 7- and 30-day
//! bases from the same index as the total, their values included in it).

mod common;

use std::sync::Arc;

use common::reads;
use prismq_domain::outlier::AgeBasis;
use prismq_domain::ports::{Clock, ResultStore};
use prismq_domain::Timestamp;
use prismq_storage_postgres::{baseline_sample_statement, PostgresOptions, PostgresStore};
use prismq_testkit::fixtures::channel_scrape;
use prismq_testkit::FakeClock;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_basis_sample_walks_the_recent_index_without_sorting() {
    let schema = common::fresh_schema("baseline_plan");
    let now = 1_800_000_000_i64;
    let clock = Arc::new(FakeClock::new(Timestamp::from_second(now).unwrap()));
    let mut o = PostgresOptions::new(common::url()).with_schema(&schema);
    o.pool_size = 2;
    let store = PostgresStore::connect_lazy(o, clock.clone() as Arc<dyn Clock>).unwrap();
    for c in 0..20 {
        store
            .save(None, &channel_scrape(c, 300, 0, now))
            .await
            .unwrap();
    }
    let client = store.connection().await.unwrap();
    // Half the rows with values at 7 and 30 days, as videos first seen young have.
    client
        .batch_execute(
            "UPDATE results SET views_7d = views / 2, views_30d = views WHERE id % 2 = 0;
             ANALYZE results",
        )
        .await
        .unwrap();
    let channel = "UCbench00007".to_owned();
    let format = "long".to_owned();
    let (before, limit, skip) = (now * 1_000, 50_i64, vec![1_i64, 2, 3]);
    for basis in [AgeBasis::Age7d, AgeBasis::Age30d, AgeBasis::Total] {
        let sql = baseline_sample_statement(basis);
        let plan: Value = client
            .query_one(
                &format!("EXPLAIN (FORMAT JSON) {sql}"),
                &[&channel, &format, &before, &limit, &skip],
            )
            .await
            .unwrap_or_else(|e| panic!("{basis:?}: {e}: {sql}"))
            .get(0);
        let text = serde_json::to_string(&plan).unwrap();
        let mut found = Vec::new();
        reads(&plan[0]["Plan"], false, &mut found);
        assert_eq!(found.len(), 1, "{basis:?}: {text}");
        let (node, ix, sorted) = &found[0];
        assert!(
            node.starts_with("Index") && ix == "ix_results_recent" && !sorted,
            "{basis:?}: {node} {ix} (sorted: {sorted}) instead of ix_results_recent: {text}"
        );
    }
}
