//! `maintenance prune` on a real PostgreSQL server: it prunes result sightings as SQLite
//! does (each record's first and latest by each kind of source kept, nothing else lost,
//! exact counts), and refuses what it leaves to the server's own tools.

mod common;

use std::sync::Arc;

use prismq_domain::ports::upkeep::PruneOptions;
use prismq_domain::ports::{Clock, ResultStore, StorageProblem, Upkeep};
use prismq_domain::task::TaskId;
use prismq_domain::{ContentItem, Timestamp};
use prismq_storage_postgres::{PostgresOptions, PostgresStore};
use prismq_testkit::FakeClock;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_keeps_each_records_first_and_latest_sighting_per_source_kind() {
    let schema = common::fresh_schema("prune");
    let start = Timestamp::from_second(1_800_000_000).unwrap();
    let clock = Arc::new(FakeClock::new(start));
    let store = PostgresStore::connect_lazy(
        PostgresOptions::new(common::url()).with_schema(&schema),
        clock.clone() as Arc<dyn Clock>,
    )
    .unwrap();
    let at = |day: i64| start + jiff::SignedDuration::from_secs(86_400 * day);
    let item = |source: &str, id: &str| ContentItem::new(source, id, "t");
    // As SQLite's test: `v` found by a channel task (tasks 1, 2, 3, a save outside a task,
    // task 6 ten days in) and a keyword search (tasks 4, 5); `w` once.
    for (day, task, items) in [
        (
            0,
            Some(1),
            vec![item("youtube_channel", "v"), item("youtube_api", "w")],
        ),
        (1, Some(2), vec![item("youtube_channel", "v")]),
        (2, Some(3), vec![item("youtube_channel", "v")]),
        (2, Some(4), vec![item("youtube_keyword", "v")]),
        (3, Some(5), vec![item("youtube_keyword", "v")]),
        (3, None, vec![item("youtube_channel", "v")]),
        (10, Some(6), vec![item("youtube_channel", "v")]),
    ] {
        clock.set(at(day));
        store.save(task.map(TaskId), &items).await.unwrap();
    }
    let client = store.connection().await.unwrap();
    let left = || async {
        client
            .query(
                "SELECT r.source_id, s.source, s.task_id FROM result_sightings s
                 JOIN results r ON r.id = s.result_id ORDER BY r.source_id, s.source, s.seen_at",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.get::<_, String>(0),
                    r.get::<_, String>(1),
                    r.get::<_, Option<i64>>(2),
                )
            })
            .collect::<Vec<_>>()
    };
    let view = "SELECT string_agg(source || source_id || first_seen_at || ':' || last_seen_at, ','
                ORDER BY source_id, source) FROM youtube_results";
    let view_before: String = client.query_one(view, &[]).await.unwrap().get(0);
    let count = |sql: &'static str| {
        let client = &client;
        async move { client.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    let metrics_before = count("SELECT count(*) FROM result_metrics").await;
    assert_eq!(left().await.len(), 8);

    // What it leaves to the server's tools is refused, nothing deleted.
    for refused in [
        PruneOptions {
            sightings_before: Some(at(5)),
            archive: Some("pruned.jsonl".into()),
            ..PruneOptions::default()
        },
        PruneOptions {
            logs_before: Some(at(5)),
            ..PruneOptions::default()
        },
    ] {
        let e = Upkeep::prune(&store, &refused).await.unwrap_err();
        assert_eq!(e.problem(), StorageProblem::Unsupported, "{e}");
        assert!(e.to_string().contains("--sightings-older-than"), "{e}");
    }
    let e = Upkeep::prune(
        &store,
        &PruneOptions {
            sightings_before: Some(at(5)),
            batch_size: 0,
            ..PruneOptions::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.problem(), StorageProblem::Invalid, "{e}");
    assert_eq!(left().await.len(), 8);

    let opts = PruneOptions {
        sightings_before: Some(at(5)),
        batch_size: 1,
        pause: std::time::Duration::ZERO,
        ..PruneOptions::default()
    };
    let r = Upkeep::prune(&store, &opts).await.unwrap();
    assert_eq!((r.sightings, r.batches), (3, 1));
    let s = |id: &str, source: &str, task: Option<i64>| (id.to_owned(), source.to_owned(), task);
    assert_eq!(
        left().await,
        vec![
            s("v", "youtube_channel", Some(1)),
            s("v", "youtube_channel", Some(6)),
            s("v", "youtube_keyword", Some(4)),
            s("v", "youtube_keyword", Some(5)),
            s("w", "youtube_api", Some(1)),
        ],
        "each record's first and latest by each kind of source stay"
    );
    assert_eq!(count("SELECT count(*) FROM results").await, 2);
    assert_eq!(
        count("SELECT count(*) FROM result_metrics").await,
        metrics_before
    );
    let view_after: String = client.query_one(view, &[]).await.unwrap().get(0);
    assert_eq!(
        view_after, view_before,
        "first and last seen per kind of source unchanged"
    );
    let again = Upkeep::prune(&store, &opts).await.unwrap();
    assert_eq!((again.sightings, again.batches), (0, 0));
    client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .unwrap();
}
