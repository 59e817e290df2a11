//! Migrations on a real server: concurrent first use applies them once under the advisory
//! lock; down and up again; a newer or altered schema is refused.

mod common;

use prismq_domain::growth::GrowthWindow;
use prismq_domain::ports::{ResultOrder, ResultQuery, ResultStore, TaskQueue};
use prismq_domain::schema::MigrationError;
use prismq_domain::PortError;
use prismq_storage_postgres::{migrations, StoreError, MIGRATIONS};

#[test]
fn the_embedded_migrations_are_numbered_in_order() {
    migrations::SCHEMA.verify().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_stores_starting_at_once_migrate_the_schema_once() {
    let schema = common::fresh_schema("mig");
    let stores: Vec<_> = (0..8).map(|_| common::store_in(&schema)).collect();
    let handles: Vec<_> = stores
        .iter()
        .cloned()
        .map(|s| tokio::spawn(async move { s.stats().await }))
        .collect();
    for h in handles {
        h.await.unwrap().expect("every store starts");
    }
    let status = stores[0].migration_status().await.unwrap();
    assert_eq!(status.len(), MIGRATIONS.len());
    assert!(status.iter().all(|m| m.applied_at.is_some()));
    let client = stores[0].connection().await.unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, MIGRATIONS.len() as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_and_up_again_and_refusals() {
    let schema = common::fresh_schema("mig");
    let store = common::store_in(&schema);
    store.stats().await.unwrap();
    assert_eq!(
        store.migrate_down(0).await.unwrap(),
        vec![10, 9, 8, 7, 6, 5, 4, 3, 2, 1]
    );
    let client = store.connection().await.unwrap();
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name <> 'schema_migrations'",
            &[&schema],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "down removes every table");
    assert_eq!(
        store.migrate_up(None).await.unwrap(),
        vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    );
    assert!(store.migrate_up(None).await.unwrap().is_empty());
    assert!(matches!(
        store.migrate_up(Some(99)).await,
        Err(StoreError::Migration(MigrationError::UnknownVersion(99, _)))
    ));

    // An altered migration is refused by a new store.
    client
        .execute(
            "UPDATE schema_migrations SET checksum = 'x' WHERE version = 1",
            &[],
        )
        .await
        .unwrap();
    match common::store_in(&schema).stats().await {
        Err(PortError::Unavailable(m)) => assert!(m.contains("checksum"), "{m}"),
        other => panic!("expected a checksum refusal, got {other:?}"),
    }
    // So is a schema migrated by a newer binary.
    let sum = MIGRATIONS[0].checksum();
    client
        .execute(
            "UPDATE schema_migrations SET checksum = $1 WHERE version = 1",
            &[&sum],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (99, 'future', 'f', 0)",
            &[],
        )
        .await
        .unwrap();
    match common::store_in(&schema).stats().await {
        Err(PortError::Unavailable(m)) => assert!(m.contains("newer than this binary"), "{m}"),
        other => panic!("expected a too-new refusal, got {other:?}"),
    }
}

/// Schema v3's outlier columns and baselines: down to v2 drops them and keeps every result;
/// up again brings them back empty; a save scores only the videos it saves, and `rescore`
/// brings the whole channel back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outlier_scores_go_down_and_come_back_with_rescore() {
    let schema = common::fresh_schema("mig");
    let store = common::store_in(&schema);
    let now = jiff::Timestamp::now();
    let items: Vec<prismq_domain::ContentItem> = (0..12)
        .map(|i| {
            let mut item =
                prismq_domain::ContentItem::new("youtube_channel", format!("v{i:02}"), "t");
            item.channel_id = Some("UCx".into());
            item.published_at = Some(now - jiff::SignedDuration::from_hours(24 * (40 + i)));
            item.metrics.views = Some(if i == 0 { 3_000 } else { 1_000 });
            item.extra
                .insert("is_short".into(), serde_json::json!(false));
            item
        })
        .collect();
    store.save(None, &items).await.unwrap();
    let client = store.connection().await.unwrap();
    let score = |id: &'static str| {
        let client = &client;
        async move {
            client
                .query_one(
                    "SELECT outlier_score FROM results WHERE source_id = $1",
                    &[&id],
                )
                .await
                .unwrap()
                .get::<_, Option<f64>>(0)
        }
    };
    assert_eq!(score("v00").await, Some(2.0));

    assert_eq!(
        store.migrate_down(2).await.unwrap(),
        vec![10, 9, 8, 7, 6, 5, 4, 3]
    );
    let columns: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'results'
               AND (column_name LIKE 'outlier%' OR column_name = 'video_format')",
            &[&schema],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(columns, 0);
    let rows: i64 = client
        .query_one("SELECT count(*) FROM results", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 12);

    assert_eq!(
        store.migrate_up(None).await.unwrap(),
        vec![3, 4, 5, 6, 7, 8, 9, 10]
    );
    assert_eq!(
        score("v00").await,
        None,
        "no score until the channel is saved again"
    );
    store.save(None, &items[..1]).await.unwrap();
    assert_eq!(
        score("v00").await,
        None,
        "11 other videos have no values yet"
    );
    let report = store.rescore(None).await.unwrap();
    assert_eq!((report.channels, report.videos), (1, 12));
    assert_eq!(score("v00").await, Some(2.0));
    assert_eq!(score("v05").await, Some(0.0));
}

/// Schema v7 merges a video's rows under several sources into one record (as SQLite's v8:
/// one history, the earliest first sighting, fields the latest row lacks taken from the
/// others, sightings from what each row knew), and down splits it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_record_per_video_merges_rows_and_splits_them_back() {
    let schema = common::fresh_schema("mig_merge");
    let store = common::store_in(&schema);
    store.stats().await.unwrap();
    assert_eq!(store.migrate_down(6).await.unwrap(), vec![10, 9, 8, 7]);
    let client = store.connection().await.unwrap();
    let (t0, t1) = (1_800_000_000_000_i64, 1_800_003_600_000_i64);
    for (source, id, views, likes, at, task, extra) in [
        (
            "youtube_channel",
            "v",
            100_i64,
            Some(7_i64),
            t0,
            1_i64,
            r#"{"upload_rank": 3, "is_short": false}"#,
        ),
        (
            "youtube_keyword",
            "v",
            160,
            None,
            t1,
            2,
            r#"{"search_rank": 1}"#,
        ),
        ("youtube_api", "w", 5, None, t0, 3, "{}"),
    ] {
        let extra: serde_json::Value = serde_json::from_str(extra).unwrap();
        let channel = (source == "youtube_channel").then_some("UC1");
        client
            .execute(
                "WITH r AS (INSERT INTO results (source, source_id, title, channel_id, views, likes, extra,
                     first_seen_at, last_seen_at, last_task_id, first_views, first_metrics_at, metrics_at)
                 VALUES ($1, $2, 'title of ' || $1, $3, $4, $5, $6, $7, $7, $8, $4, $7, $7) RETURNING id)
                 INSERT INTO result_metrics (result_id, captured_at, views, likes) SELECT id, $7, $4, $5 FROM r",
                &[&source, &id, &channel, &views, &likes, &extra, &at, &task],
            )
            .await
            .unwrap();
    }
    assert_eq!(store.migrate_up(None).await.unwrap(), vec![7, 8, 9, 10]);
    let v = store.find("v").await.unwrap();
    assert_eq!(v.len(), 1, "one record for the video");
    let v = &v[0];
    assert_eq!(
        (
            v.item.platform.as_str(),
            v.item.source.as_str(),
            v.item.rank
        ),
        ("youtube", "youtube_keyword", Some(1))
    );
    assert_eq!(v.item.metrics.likes, Some(7), "kept from the other row");
    assert_eq!(v.item.channel_id.as_deref(), Some("UC1"));
    assert_eq!(v.item.extra["is_short"], serde_json::json!(false));
    assert_eq!(v.first_seen_at.as_millisecond(), t0);
    // `migrate up` gave the merged record its growth: 60 views an hour over the hour its
    // history covers.
    let day = v.growth.get(GrowthWindow::Day).expect("growth over 24 h");
    assert!((day.views_per_hour - 60.0).abs() < 1e-9, "{day:?}");
    assert_eq!(day.span_secs, 3_600);
    let views: Vec<_> = store
        .history("youtube", "v")
        .await
        .unwrap()
        .iter()
        .map(|h| h.metrics.views)
        .collect();
    assert_eq!(views, vec![Some(100), Some(160)]);
    let seen: Vec<_> = store
        .sightings("youtube", "v", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.source, s.task_id.map(|t| t.0), s.rank))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("youtube_keyword".to_owned(), Some(2), Some(1)),
            ("youtube_channel".to_owned(), Some(1), Some(3)),
        ]
    );
    let rows = |sql: &'static str| {
        let client = &client;
        async move {
            client
                .query(sql, &[])
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
                .collect::<Vec<_>>()
        }
    };
    let per_source = [
        ("youtube_channel", "v"),
        ("youtube_keyword", "v"),
        ("youtube_api", "w"),
    ]
    .map(|(a, b)| (a.to_owned(), b.to_owned()));
    assert_eq!(
        rows("SELECT source, source_id FROM youtube_results ORDER BY source_id, source").await,
        per_source,
        "the seed-era view still answers per (source, source_id)"
    );
    assert_eq!(store.migrate_down(6).await.unwrap(), vec![10, 9, 8, 7]);
    assert_eq!(
        rows("SELECT source, source_id FROM results ORDER BY source_id, source").await,
        per_source,
        "down: a row per source that found it"
    );
    assert_eq!(store.migrate_up(None).await.unwrap(), vec![7, 8, 9, 10]);
    assert_eq!(
        store.history("youtube", "v").await.unwrap().len(),
        2,
        "not doubled"
    );
}

/// An old-shape schema (v6: a row per source) with history, upgraded by a store's first use
/// (which migrates): the merged records have their growth and list by it, and the catch-up
/// is recorded as done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_use_of_an_old_schema_gives_merged_records_their_growth() {
    let schema = common::fresh_schema("mig_growth");
    let store = common::store_in(&schema);
    store.stats().await.unwrap();
    assert_eq!(store.migrate_down(6).await.unwrap(), vec![10, 9, 8, 7]);
    let client = store.connection().await.unwrap();
    let h = 3_600_000_i64;
    let t0 = 1_800_000_000_000_i64;
    for (source, id, first, snaps) in [
        (
            "youtube_channel",
            "a",
            t0,
            vec![(t0, 1_000_i64), (t0 + 12 * h, 2_200)],
        ),
        (
            "youtube_keyword",
            "a",
            t0 + 24 * h,
            vec![(t0 + 24 * h, 3_400)],
        ),
        ("youtube_api", "b", t0, vec![(t0, 10), (t0 + 24 * h, 250)]),
        ("youtube_api", "c", t0, vec![(t0, 7)]),
    ] {
        let (last, views) = *snaps.last().unwrap();
        let row: i64 = client
            .query_one(
                "INSERT INTO results (source, source_id, title, views, first_seen_at, last_seen_at,
                     first_views, first_metrics_at, metrics_at)
                 VALUES ($1, $2, 't', $3, $4, $5, $3, $4, $5) RETURNING id",
                &[&source, &id, &views, &first, &last],
            )
            .await
            .unwrap()
            .get(0);
        for (at, v) in snaps {
            client
                .execute(
                    "INSERT INTO result_metrics (result_id, captured_at, views) VALUES ($1, $2, $3)",
                    &[&row, &at, &v],
                )
                .await
                .unwrap();
        }
    }
    let fresh = common::store_in(&schema);
    let listed = fresh
        .query(&ResultQuery {
            order: ResultOrder::Growth,
            window: GrowthWindow::Day,
            ..ResultQuery::default()
        })
        .await
        .unwrap();
    let got: Vec<(&str, Option<(f64, i64)>)> = listed
        .iter()
        .map(|r| {
            (
                r.item.source_id.as_str(),
                r.growth
                    .get(GrowthWindow::Day)
                    .map(|g| (g.views_per_hour, g.span_secs)),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("a", Some((100.0, 86_400))),
            ("b", Some((10.0, 86_400))),
            ("c", None)
        ],
        "a: 2,400 views over the day its merged history covers; b: 240; c: no history"
    );
    let pending: i64 = client
        .query_one("SELECT count(*) FROM growth_pending", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(pending, 0, "the catch-up is recorded as done");
    client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .unwrap();
}

/// Schema v10: a region an older enqueue stored as given (` gb`, which validation accepts) is
/// normalised, so a worker of that region claims the task; other regions and tasks without
/// one are left as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_stored_as_given_is_normalised_and_claimable() {
    use prismq_domain::ports::{ClaimFilter, ClaimRequest};
    use prismq_domain::{ClaimingStrategy, Compatibility, NewTask, TaskType, WorkerId};
    let schema = common::fresh_schema("mig");
    let store = common::store_in(&schema);
    let task = |region: Option<&str>| {
        let t = NewTask::new(TaskType::new("a").unwrap(), serde_json::json!({}));
        match region {
            Some(r) => t.compatibility(Compatibility::with_region(r).unwrap()),
            None => t,
        }
    };
    let gb = store.enqueue(task(Some("GB"))).await.unwrap().id;
    let us = store.enqueue(task(Some("US"))).await.unwrap().id;
    let none = store.enqueue(task(None)).await.unwrap().id;
    assert_eq!(store.migrate_down(9).await.unwrap(), vec![10]);
    let client = store.connection().await.unwrap();
    // What an enqueue stored before v10 for a region given as " gb".
    client
        .execute(
            r#"UPDATE task_queue SET compatibility = '{"region": " gb"}' WHERE id = $1"#,
            &[&gb.0],
        )
        .await
        .unwrap();
    assert_eq!(store.migrate_up(None).await.unwrap(), vec![10]);
    let region_of = |id: prismq_domain::TaskId| {
        let client = &client;
        async move {
            client
                .query_one("SELECT region FROM task_queue WHERE id = $1", &[&id.0])
                .await
                .unwrap()
                .get::<_, Option<String>>(0)
        }
    };
    assert_eq!(region_of(gb).await.as_deref(), Some("GB"));
    assert_eq!(region_of(us).await.as_deref(), Some("US"));
    assert_eq!(region_of(none).await, None);
    let claim = ClaimRequest {
        worker: WorkerId::new("w1").unwrap(),
        filter: ClaimFilter {
            region: Some("GB".into()),
            ..ClaimFilter::default()
        },
        strategy: ClaimingStrategy::Fifo,
        lease_for: std::time::Duration::from_secs(30),
    };
    let mut claimed = Vec::new();
    while let Some(c) = store.claim(&claim).await.unwrap() {
        claimed.push(c.task.id);
    }
    claimed.sort_unstable();
    let mut expected = vec![gb, none];
    expected.sort_unstable();
    assert_eq!(
        claimed, expected,
        "a GB worker takes the GB task and the regionless one"
    );
}
