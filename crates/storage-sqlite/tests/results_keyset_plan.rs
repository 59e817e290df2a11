//! Keyset paging of `query` on a real file: for every order, the page after a cursor deep in
//! the listing walks the order's index from the cursor (no sort, and only about a page of
//! index steps, not the rows before it), then the items without a value through the same
//! index; and the pages put together are the whole listing.

use std::sync::Arc;
use std::time::Duration;

use prismq_domain::ports::{ResultOrder, ResultQuery, ResultStore};
use prismq_domain::Timestamp;
use prismq_storage_sqlite::{query_statements, SqliteOptions, SqliteStore};
use prismq_testkit::fixtures::ranked_videos;
use prismq_testkit::FakeClock;
use rusqlite::StatementStatus;

const N: i64 = 4_000;

#[tokio::test]
async fn a_page_after_a_deep_cursor_walks_the_index_from_the_cursor() {
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
    store
        .save(
            None,
            &ranked_videos(N, clock.now(), |i| {
                (i % 7 != 0).then_some(1_000 + (i * 7_919) % 4_001)
            }),
        )
        .await
        .unwrap();
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
        // A cursor with a value (item 2,000) and one without (past the last value).
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
        for at in [2_000, first_none + 10] {
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
                store
                    .with_connection(|c| {
                        let plan: Vec<String> = c
                            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                            .unwrap()
                            .query_map(rusqlite::params_from_iter(args.iter()), |r| r.get(3))
                            .unwrap()
                            .collect::<Result<_, _>>()
                            .unwrap();
                        let plan = plan.join("\n");
                        assert!(plan.contains(index), "{order:?}: {plan}");
                        assert!(!plan.contains("TEMP B-TREE"), "{order:?}: {plan}");
                        let mut stmt = c.prepare(&sql).unwrap();
                        let _ = stmt
                            .query_map(rusqlite::params_from_iter(args.iter()), |_| Ok(()))
                            .unwrap()
                            .count();
                        assert_eq!(stmt.get_status(StatementStatus::Sort), 0, "{plan}");
                        let steps = stmt.get_status(StatementStatus::FullscanStep);
                        assert!(
                            steps < 200,
                            "{order:?} after item {at}: {steps} index steps for a page of 50: {plan}"
                        );
                        Ok(())
                    })
                    .unwrap();
            }
        }
    }
}
