//! `query` with the growth order on a real file: for every window the statement walks that
//! window's `ix_results_growth_*` index in order and stops at the page, never sorting the
//! results (checked by the plan and by SQLite's own counters), and a save reads a video's
//! history for its growth through `ix_result_metrics_result` only.

use std::sync::Arc;
use std::time::Duration;

use prismq_domain::growth::GrowthWindow;
use prismq_domain::ports::{ResultOrder, ResultQuery, ResultStore};
use prismq_domain::{ContentItem, Timestamp};
use prismq_storage_sqlite::{query_sql, SqliteOptions, SqliteStore, GROWTH_HISTORY_SQL};
use prismq_testkit::FakeClock;
use rusqlite::StatementStatus;

fn items(views: impl Fn(i64) -> i64) -> Vec<ContentItem> {
    (0..4_000)
        .map(|i| {
            let mut it = ContentItem::new("youtube_channel", format!("v{i:04}"), "t");
            it.channel_id = Some(format!("UC{:02}", i % 40));
            it.metrics.views = Some(views(i));
            it
        })
        .collect()
}

#[tokio::test]
async fn growth_order_walks_the_window_index_and_never_sorts() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FakeClock::new(
        Timestamp::from_second(1_800_000_000).unwrap(),
    ));
    let store =
        SqliteStore::open(SqliteOptions::new(dir.path().join("q.db")), clock.clone()).unwrap();
    store.save(None, &items(|_| 1_000)).await.unwrap();
    clock.advance(Duration::from_secs(2 * 3600));
    store
        .save(None, &items(|i| 1_000 + (i * 7_919) % 4_001))
        .await
        .unwrap();
    for window in GrowthWindow::ALL {
        let q = ResultQuery {
            order: ResultOrder::Growth,
            window,
            limit: 50,
            ..ResultQuery::default()
        };
        let got = store.query(&q).await.unwrap();
        assert_eq!(got.len(), 50);
        let rates: Vec<f64> = got
            .iter()
            .map(|r| r.growth.get(window).unwrap().views_per_hour)
            .collect();
        assert!(
            rates.windows(2).all(|w| w[0] >= w[1]),
            "{window}: {rates:?}"
        );
        let (sql, args) = query_sql(&q);
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
                let index = format!("ix_results_growth_{window}");
                assert!(plan.contains(&index), "{plan}");
                assert!(!plan.contains("TEMP B-TREE"), "{plan}");
                let mut stmt = c.prepare(&sql).unwrap();
                let n = stmt
                    .query_map(rusqlite::params_from_iter(args.iter()), |_| Ok(()))
                    .unwrap()
                    .count();
                assert_eq!(n, 50);
                assert_eq!(stmt.get_status(StatementStatus::Sort), 0, "{plan}");
                let steps = stmt.get_status(StatementStatus::FullscanStep);
                assert!(steps < 100, "{steps} full-scan steps for 50 rows: {plan}");
                Ok(())
            })
            .unwrap();
    }
    // The history a save reads for one video's growth: index probes, no scan, no sort.
    let from = clock.now().as_millisecond() - GrowthWindow::Month.seconds() * 1_000;
    store
        .with_connection(|c| {
            let plan: Vec<String> = c
                .prepare(&format!("EXPLAIN QUERY PLAN {GROWTH_HISTORY_SQL}"))
                .unwrap()
                .query_map(rusqlite::params![17, from], |r| r.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let plan = plan.join("\n");
            assert!(plan.contains("ix_result_metrics_result"), "{plan}");
            let mut stmt = c.prepare(GROWTH_HISTORY_SQL).unwrap();
            let n = stmt
                .query_map(rusqlite::params![17, from], |_| Ok(()))
                .unwrap()
                .count();
            assert_eq!(n, 2, "both snapshots of one video");
            assert_eq!(stmt.get_status(StatementStatus::FullscanStep), 0, "{plan}");
            assert_eq!(stmt.get_status(StatementStatus::Sort), 0, "{plan}");
            Ok(())
        })
        .unwrap();
}
