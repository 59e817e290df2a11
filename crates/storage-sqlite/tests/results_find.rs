//! `find` by id alone on a real file: it probes the (platform, source_id) key once per
//! distinct platform and never scans the results, checked by the plan and by SQLite's own
//! count of full-scan steps.

use std::sync::Arc;

use prismq_domain::ports::{ResultStore, SystemClock};
use prismq_domain::ContentItem;
use prismq_storage_sqlite::{find_sql, SqliteOptions, SqliteStore};
use rusqlite::StatementStatus;

fn items(source: &str, n: usize) -> Vec<ContentItem> {
    (0..n)
        .map(|i| {
            let mut it = ContentItem::new(source, format!("vid{i:06}"), format!("Video {i}"));
            it.metrics.views = Some(i as i64);
            it
        })
        .collect()
}

#[tokio::test]
async fn find_by_id_alone_probes_each_platform_and_never_scans() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        SqliteOptions::new(dir.path().join("q.db")),
        Arc::new(SystemClock),
    )
    .unwrap();
    // Three platforms (a second source of one of them adds no record).
    for source in ["youtube_api", "blog_feed", "vimeo_api", "youtube_keyword"] {
        for chunk in items(source, 5_000).chunks(1_000) {
            store.save(None, chunk).await.unwrap();
        }
    }
    // Only two of the three sources have this id.
    store
        .save(None, &items("zz_other", 10)[7..8])
        .await
        .unwrap();

    let found = store.find("vid000007").await.unwrap();
    let platforms: Vec<&str> = found.iter().map(|r| r.item.platform.as_str()).collect();
    assert_eq!(platforms, ["blog", "vimeo", "youtube", "zz"]);
    assert_eq!(
        found[2].item.source, "youtube_keyword",
        "the latest sighting's"
    );
    assert!(found.iter().all(|r| r.item.source_id == "vid000007"));
    let found = store.find("vid004999").await.unwrap();
    assert_eq!(found.len(), 3, "zz_other has only vid000007");
    assert!(store.find("nope").await.unwrap().is_empty());

    store
        .with_connection(|c| {
            let plan: Vec<String> = c
                .prepare(&format!("EXPLAIN QUERY PLAN {}", find_sql()))
                .unwrap()
                .query_map(["vid000007"], |r| r.get::<_, String>(3))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let text = plan.join(" | ");
            assert!(
                !plan
                    .iter()
                    .any(|l| l.starts_with("SCAN results") || l.starts_with("SCAN r")),
                "find scans the results: {text}"
            );
            // SQLite counts the rows a statement stepped through in full scans: only the
            // handful of rows of the walk over the platforms here (one per platform), where a
            // scan of the results would step through all 15,001.
            let mut stmt = c.prepare(&find_sql()).unwrap();
            let n = stmt.query_map(["vid000007"], |_| Ok(())).unwrap().count();
            assert_eq!(n, 4);
            assert!(
                stmt.get_status(StatementStatus::FullscanStep) <= 5,
                "{} full-scan steps: {text}",
                stmt.get_status(StatementStatus::FullscanStep)
            );
            assert!(
                stmt.get_status(StatementStatus::VmStep) < 2_000,
                "find ran {} VM steps for 15,001 stored results: {text}",
                stmt.get_status(StatementStatus::VmStep)
            );
            Ok(())
        })
        .unwrap();
}
