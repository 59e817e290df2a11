//! `query` with the outlier order on a real file: the statement walks `ix_results_outlier`
//! in order and stops at the page, never sorting the results (checked by the plan and by
//! SQLite's own counters of sorts and full-scan steps), with or without score bounds.

use std::sync::Arc;

use prismq_domain::outlier::{AgeBasis, VideoFormat};
use prismq_domain::ports::{ResultOrder, ResultQuery, ResultStore, SystemClock};
use prismq_domain::{ContentItem, Timestamp};
use prismq_storage_sqlite::{
    query_sql, sample_sql, SqliteOptions, SqliteStore, AGE_SNAPSHOTS_SQL, FORMAT_PRESENT_SQL,
    VIDEO_ROWS_SQL,
};
use rusqlite::StatementStatus;
use serde_json::json;

/// 40 channels of 100 long-form uploads, 40 to 139 days old, views spread so every channel
/// has scores above and below its median.
fn channel(c: usize) -> Vec<ContentItem> {
    let now = Timestamp::now().as_second();
    (0..100)
        .map(|i| {
            let mut it = ContentItem::new("youtube_channel", format!("c{c:02}v{i:03}"), "t");
            it.channel_id = Some(format!("UC{c:02}"));
            it.published_at = Timestamp::from_second(now - 86_400 * (40 + i)).ok();
            it.metrics.views = Some(1_000 + ((i * 37 + c as i64 * 11) % 100) * 50);
            it.extra.insert("is_short".into(), json!(false));
            it
        })
        .collect()
}

#[tokio::test]
async fn outlier_order_walks_the_score_index_and_never_sorts() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        SqliteOptions::new(dir.path().join("q.db")),
        Arc::new(SystemClock),
    )
    .unwrap();
    for c in 0..40 {
        store.save(None, &channel(c)).await.unwrap();
    }
    let plain = ResultQuery {
        order: ResultOrder::Outlier,
        limit: 50,
        ..ResultQuery::default()
    };
    let bounded = ResultQuery {
        min_score: Some(0.2),
        max_score: Some(1.0),
        ..plain.clone()
    };
    let short = ResultQuery {
        format: Some(VideoFormat::Long),
        ..plain.clone()
    };
    for q in [&plain, &bounded, &short] {
        let got = store.query(q).await.unwrap();
        assert_eq!(got.len(), 50);
        let scores: Vec<f64> = got.iter().map(|r| r.outlier.unwrap().score).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
        let (sql, args) = query_sql(q);
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
                assert!(plan.contains("ix_results_outlier"), "{plan}");
                assert!(!plan.contains("TEMP B-TREE"), "{plan}");
                let mut stmt = c.prepare(&sql).unwrap();
                let n = stmt
                    .query_map(rusqlite::params_from_iter(args.iter()), |_| Ok(()))
                    .unwrap()
                    .count();
                assert_eq!(n, 50);
                assert_eq!(stmt.get_status(StatementStatus::Sort), 0, "{plan}");
                let steps = stmt.get_status(StatementStatus::FullscanStep);
                assert!(
                    steps < 500,
                    "{steps} full-scan steps for 50 rows of 4,000: {plan}"
                );
                Ok(())
            })
            .unwrap();
    }
}

/// Saving videos of a channel reads only what is bounded by the window and the saved
/// videos: each baseline's sample walks its `ix_results_recent*` index newest first (no
/// sort, no scan) and one video's rows come through `ix_results_channel`.
#[tokio::test]
async fn rescoring_reads_samples_and_videos_through_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        SqliteOptions::new(dir.path().join("q.db")),
        Arc::new(SystemClock),
    )
    .unwrap();
    for c in 0..5 {
        store.save(None, &channel(c)).await.unwrap();
    }
    let now = Timestamp::now().as_millisecond();
    store
        .with_connection(|c| {
            for basis in AgeBasis::ALL {
                let sql = sample_sql(basis);
                let plan: Vec<String> = c
                    .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                    .unwrap()
                    .query_map(rusqlite::params!["UC03", "long", now], |r| r.get(3))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                let plan = plan.join("\n");
                assert!(plan.contains("ix_results_recent"), "{basis}: {plan}");
                assert!(!plan.contains("TEMP B-TREE"), "{basis}: {plan}");
                let mut stmt = c.prepare(sql).unwrap();
                let mut rows = stmt.query(rusqlite::params!["UC03", "long", now]).unwrap();
                let mut n = 0;
                while n < 30 && rows.next().unwrap().is_some() {
                    n += 1;
                }
                drop(rows);
                assert_eq!(stmt.get_status(StatementStatus::Sort), 0, "{plan}");
                assert_eq!(stmt.get_status(StatementStatus::FullscanStep), 0, "{plan}");
                if basis == AgeBasis::Total {
                    assert_eq!(n, 30, "a window of the channel's 100 uploads");
                }
            }
            for format in ["long", "short", "stream"] {
                let mut stmt = c.prepare(FORMAT_PRESENT_SQL).unwrap();
                let found = stmt.exists(["UC03", format]).unwrap();
                assert_eq!(found, format == "long");
                assert_eq!(stmt.get_status(StatementStatus::FullscanStep), 0);
                assert!(
                    stmt.get_status(StatementStatus::VmStep) < 100,
                    "a probe, not a walk of the channel's 100 rows"
                );
            }
            let plan: Vec<String> = c
                .prepare(&format!("EXPLAIN QUERY PLAN {VIDEO_ROWS_SQL}"))
                .unwrap()
                .query_map(["UC03", "c03v007"], |r| r.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let plan = plan.join("\n");
            assert!(plan.contains("ix_results_channel"), "{plan}");
            // A video's snapshots near 7 and 30 days of age: two range probes of the
            // snapshots' index, never a scan.
            let plan: Vec<String> = c
                .prepare(&format!("EXPLAIN QUERY PLAN {AGE_SNAPSHOTS_SQL}"))
                .unwrap()
                .query_map(rusqlite::params![1, 0, 1, 2, 3], |r| r.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let plan = plan.join("\n");
            assert_eq!(
                plan.matches(
                    "ix_result_metrics_result (result_id=? AND captured_at>? AND captured_at<?)"
                )
                .count(),
                2,
                "{plan}"
            );
            assert!(!plan.contains("SCAN"), "{plan}");
            Ok(())
        })
        .unwrap();
}
