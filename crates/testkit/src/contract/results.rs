//! Obligations of `ResultStore`: dedupe on (source, source_id), exact save counts, metric
//! snapshots only on metric change, views per hour, queries, paging and counts.

use std::time::Duration;

use prismq_domain::ports::{ResultOrder, ResultQuery};
use prismq_domain::{ContentItem, SaveReport, TaskId};

use super::support::{assert_not_found, invalid_field, setup};
use super::{ContractEnv, Subject};
use crate::fixtures::{content_item, plus_secs};

fn report(inserted: u64, updated: u64, unchanged: u64) -> SaveReport {
    SaveReport {
        inserted,
        updated,
        unchanged,
    }
}

/// The (source, source_id) pairs a query returns, in order.
async fn keys(s: &Subject, q: ResultQuery) -> Vec<(String, String)> {
    s.results
        .query(&q)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.item.source, r.item.source_id))
        .collect()
}

fn key(source: &str, id: &str) -> (String, String) {
    (source.to_owned(), id.to_owned())
}

/// An unseen item is inserted with first_seen = last_seen = now, the saving task, and one
/// metrics snapshot.
pub async fn save_inserts_unseen_items(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let a = content_item("youtube_api", "a", 100);
    let mut b = content_item("youtube_api", "b", 5);
    b.tags = vec!["rust".into()];
    b.published_at = Some(plus_secs(clock.now(), -86_400));
    let r = s
        .results
        .save(Some(TaskId(7)), &[a.clone(), b.clone()])
        .await
        .unwrap();
    assert_eq!(r, report(2, 0, 0));
    let got = s.results.get("youtube_api", "b").await.unwrap();
    assert_eq!(got.item, b);
    assert_eq!(
        (got.first_seen_at, got.last_seen_at),
        (clock.now(), clock.now())
    );
    assert_eq!(got.last_task_id, Some(TaskId(7)));
    assert_eq!(got.views_per_hour, 0.0);
    let h = s.results.history("youtube_api", "a").await.unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!((h[0].captured_at, h[0].metrics), (clock.now(), a.metrics));
    assert_eq!(s.results.count(None).await.unwrap(), 2);
}

/// Saving an identical item again counts it unchanged, updates last_seen_at and
/// last_task_id, and writes no snapshot.
pub async fn save_same_item_again_is_unchanged(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let a = content_item("youtube_api", "a", 100);
    s.results
        .save(Some(TaskId(1)), std::slice::from_ref(&a))
        .await
        .unwrap();
    let first = clock.now();
    clock.advance(Duration::from_secs(60));
    let r = s
        .results
        .save(Some(TaskId(2)), std::slice::from_ref(&a))
        .await
        .unwrap();
    assert_eq!(r, report(0, 0, 1));
    let got = s.results.get("youtube_api", "a").await.unwrap();
    assert_eq!((got.first_seen_at, got.last_seen_at), (first, clock.now()));
    assert_eq!(got.last_task_id, Some(TaskId(2)));
    assert_eq!(
        s.results.history("youtube_api", "a").await.unwrap().len(),
        1
    );
    assert_eq!(s.results.count(None).await.unwrap(), 1);
}

/// A changed field (not a metric) counts updated, is stored, and writes no snapshot.
pub async fn changed_field_updates_without_snapshot(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let a = content_item("youtube_api", "a", 100);
    s.results
        .save(None, std::slice::from_ref(&a))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(60));
    let mut renamed = a.clone();
    renamed.title = "a better title".into();
    renamed.extra.insert("lang".into(), "en".into());
    let r = s.results.save(None, &[renamed.clone()]).await.unwrap();
    assert_eq!(r, report(0, 1, 0));
    let got = s.results.get("youtube_api", "a").await.unwrap();
    assert_eq!(got.item, renamed);
    assert_eq!(got.last_task_id, None);
    assert_eq!(
        s.results.history("youtube_api", "a").await.unwrap().len(),
        1
    );
}

/// A changed metric counts updated and appends a snapshot (any counter: views, likes,
/// comments); history is oldest first.
pub async fn changed_metric_updates_with_snapshot(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let t0 = clock.now();
    let a = content_item("youtube_api", "a", 100);
    s.results
        .save(None, std::slice::from_ref(&a))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(60));
    let mut more = a.clone();
    more.metrics.views = Some(150);
    assert_eq!(
        s.results.save(None, &[more.clone()]).await.unwrap(),
        report(0, 1, 0)
    );
    clock.advance(Duration::from_secs(60));
    more.metrics.likes = Some(3);
    assert_eq!(
        s.results.save(None, &[more.clone()]).await.unwrap(),
        report(0, 1, 0)
    );
    let h = s.results.history("youtube_api", "a").await.unwrap();
    let got: Vec<_> = h
        .iter()
        .map(|m| (m.captured_at, m.metrics.views, m.metrics.likes))
        .collect();
    assert_eq!(
        got,
        vec![
            (t0, Some(100), None),
            (plus_secs(t0, 60), Some(150), None),
            (plus_secs(t0, 120), Some(150), Some(3)),
        ]
    );
    assert_eq!(s.results.get("youtube_api", "a").await.unwrap().item, more);
}

/// save validates every item first: `Invalid` naming `items[i].field`, nothing written.
pub async fn save_validates_every_item_first(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let good = content_item("youtube_api", "a", 1);
    let mut bad = content_item("youtube_api", "", 1);
    bad.source_id = String::new();
    let r = s.results.save(None, &[good.clone(), bad]).await;
    assert_eq!(invalid_field(r), "items[1].source_id");
    let mut negative = content_item("youtube_api", "b", 1);
    negative.metrics.comments = Some(-5);
    let r = s
        .results
        .save(None, &[good.clone(), good.clone(), negative])
        .await;
    assert_eq!(invalid_field(r), "items[2].metrics.comments");
    assert_eq!(s.results.count(None).await.unwrap(), 0);
    assert_not_found(s.results.get("youtube_api", "a").await);
}

/// An item repeated within a batch is saved once per occurrence, in order.
pub async fn item_repeated_in_batch_is_saved_per_occurrence(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (_, s) = setup(factory);
    let a = content_item("youtube_api", "a", 10);
    let b1 = content_item("youtube_api", "b", 10);
    let b2 = content_item("youtube_api", "b", 20);
    let r = s
        .results
        .save(None, &[a.clone(), a.clone(), b1, b2.clone()])
        .await
        .unwrap();
    assert_eq!(r, report(2, 1, 1));
    assert_eq!(s.results.count(None).await.unwrap(), 2);
    assert_eq!(s.results.get("youtube_api", "b").await.unwrap().item, b2);
    let h = s.results.history("youtube_api", "b").await.unwrap();
    let views: Vec<_> = h.iter().map(|m| m.metrics.views).collect();
    assert_eq!(views, vec![Some(10), Some(20)]);
}

/// get and history of an unknown item are `NotFound`.
pub async fn get_and_history_of_unknown_item_are_not_found(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (_, s) = setup(factory);
    s.results
        .save(None, &[content_item("youtube_api", "a", 1)])
        .await
        .unwrap();
    assert_not_found(s.results.get("youtube_api", "zz").await);
    assert_not_found(s.results.get("youtube_keyword", "a").await);
    assert_not_found(s.results.history("youtube_api", "zz").await);
}

/// views_per_hour = (views at the latest snapshot − views at the first) / hours between
/// them; an unchanged save adds no snapshot and so does not dilute it.
pub async fn views_per_hour_spans_first_and_latest_snapshot(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (clock, s) = setup(factory);
    let mut a = content_item("youtube_api", "a", 1000);
    s.results
        .save(None, std::slice::from_ref(&a))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(2 * 3600));
    a.metrics.views = Some(3000);
    s.results
        .save(None, std::slice::from_ref(&a))
        .await
        .unwrap();
    let vph = s
        .results
        .get("youtube_api", "a")
        .await
        .unwrap()
        .views_per_hour;
    assert!((vph - 1000.0).abs() < 1e-6, "{vph}");
    clock.advance(Duration::from_secs(3600));
    s.results
        .save(None, std::slice::from_ref(&a))
        .await
        .unwrap();
    let vph = s
        .results
        .get("youtube_api", "a")
        .await
        .unwrap()
        .views_per_hour;
    assert!((vph - 1000.0).abs() < 1e-6, "unchanged save: {vph}");
    clock.advance(Duration::from_secs(3600));
    a.metrics.views = Some(6000);
    s.results
        .save(None, std::slice::from_ref(&a))
        .await
        .unwrap();
    let vph = s
        .results
        .get("youtube_api", "a")
        .await
        .unwrap()
        .views_per_hour;
    assert!((vph - 1250.0).abs() < 1e-6, "(6000 - 1000) / 4 h: {vph}");
}

/// Views order: most views first, items without views last, ties by (source, source_id).
pub async fn query_orders_by_views(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let mut no_views = content_item("youtube_api", "n", 0);
    no_views.metrics.views = None;
    s.results
        .save(
            None,
            &[
                no_views,
                content_item("youtube_api", "low", 5),
                content_item("youtube_keyword", "tie", 50),
                content_item("youtube_api", "tie", 50),
                content_item("youtube_api", "top", 500),
            ],
        )
        .await
        .unwrap();
    let q = ResultQuery {
        order: ResultOrder::Views,
        ..ResultQuery::default()
    };
    assert_eq!(
        keys(&s, q).await,
        vec![
            key("youtube_api", "top"),
            key("youtube_api", "tie"),
            key("youtube_keyword", "tie"),
            key("youtube_api", "low"),
            key("youtube_api", "n"),
        ]
    );
}

/// Recent order: latest published first, items without a date last, ties by key.
pub async fn query_orders_by_recent(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let day = |d: i64| Some(plus_secs(clock.now(), -86_400 * d));
    let with_date = |id: &str, d: Option<i64>| {
        let mut i = content_item("youtube_api", id, 1);
        i.published_at = d.and_then(day);
        i
    };
    let items: Vec<ContentItem> = vec![
        with_date("old", Some(30)),
        with_date("undated", None),
        with_date("new-b", Some(1)),
        with_date("mid", Some(7)),
        with_date("new-a", Some(1)),
    ];
    s.results.save(None, &items).await.unwrap();
    let q = ResultQuery {
        order: ResultOrder::Recent,
        ..ResultQuery::default()
    };
    let ids: Vec<String> = keys(&s, q).await.into_iter().map(|k| k.1).collect();
    assert_eq!(ids, vec!["new-a", "new-b", "mid", "old", "undated"]);
}

/// Growth order: highest views per hour first, ties by key.
pub async fn query_orders_by_growth(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let start: Vec<ContentItem> = ["fast", "slow", "flat", "same-b", "same-a"]
        .iter()
        .map(|id| content_item("youtube_api", id, 1000))
        .collect();
    s.results.save(None, &start).await.unwrap();
    clock.advance(Duration::from_secs(3600));
    let later = vec![
        content_item("youtube_api", "fast", 9000),
        content_item("youtube_api", "slow", 1100),
        content_item("youtube_api", "same-b", 2000),
        content_item("youtube_api", "same-a", 2000),
    ];
    s.results.save(None, &later).await.unwrap();
    let q = ResultQuery {
        order: ResultOrder::Growth,
        ..ResultQuery::default()
    };
    let rows = s.results.query(&q).await.unwrap();
    let got: Vec<(&str, f64)> = rows
        .iter()
        .map(|r| (r.item.source_id.as_str(), r.views_per_hour.round()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("fast", 8000.0),
            ("same-a", 1000.0),
            ("same-b", 1000.0),
            ("slow", 100.0),
            ("flat", 0.0)
        ]
    );
}

/// `source` keeps one source; `since` keeps items last seen at or after the instant.
pub async fn query_filters_source_and_since(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    s.results
        .save(
            None,
            &[
                content_item("youtube_api", "old", 3),
                content_item("youtube_keyword", "k-old", 2),
            ],
        )
        .await
        .unwrap();
    clock.advance(Duration::from_secs(60));
    let cut = clock.now();
    s.results
        .save(
            None,
            &[
                content_item("youtube_api", "new", 1),
                content_item("youtube_keyword", "k-new", 4),
            ],
        )
        .await
        .unwrap();
    let only_api = ResultQuery {
        source: Some("youtube_api".into()),
        ..ResultQuery::default()
    };
    assert_eq!(
        keys(&s, only_api.clone()).await,
        vec![key("youtube_api", "old"), key("youtube_api", "new")]
    );
    let since = ResultQuery {
        since: Some(cut),
        ..ResultQuery::default()
    };
    assert_eq!(
        keys(&s, since).await,
        vec![key("youtube_keyword", "k-new"), key("youtube_api", "new")]
    );
    let both = ResultQuery {
        since: Some(cut),
        ..only_api
    };
    assert_eq!(keys(&s, both).await, vec![key("youtube_api", "new")]);
    // Seeing an old item again brings it into the window.
    clock.advance(Duration::from_secs(1));
    s.results
        .save(None, &[content_item("youtube_api", "old", 3)])
        .await
        .unwrap();
    let since = ResultQuery {
        since: Some(cut),
        source: Some("youtube_api".into()),
        ..ResultQuery::default()
    };
    assert_eq!(
        keys(&s, since).await,
        vec![key("youtube_api", "old"), key("youtube_api", "new")]
    );
}

/// offset skips and limit caps, over the ordered results.
pub async fn query_pages_with_offset_and_limit(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let items: Vec<ContentItem> = (1..=7)
        .map(|v| content_item("youtube_api", &format!("v{v}"), v * 10))
        .collect();
    s.results.save(None, &items).await.unwrap();
    let page = |offset, limit| ResultQuery {
        offset,
        limit,
        ..ResultQuery::default()
    };
    let ids = |k: Vec<(String, String)>| k.into_iter().map(|k| k.1).collect::<Vec<_>>();
    assert_eq!(ids(keys(&s, page(0, 3)).await), vec!["v7", "v6", "v5"]);
    assert_eq!(ids(keys(&s, page(3, 3)).await), vec!["v4", "v3", "v2"]);
    assert_eq!(ids(keys(&s, page(6, 3)).await), vec!["v1"]);
    assert!(keys(&s, page(7, 3)).await.is_empty());
}

/// query refuses a limit of 0 or over 10,000 with `Invalid`.
pub async fn query_refuses_limit_out_of_range(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    s.results
        .save(None, &[content_item("youtube_api", "a", 1)])
        .await
        .unwrap();
    for limit in [0, 10_001] {
        let q = ResultQuery {
            limit,
            ..ResultQuery::default()
        };
        assert_eq!(invalid_field(s.results.query(&q).await), "limit");
    }
    let q = ResultQuery {
        limit: 10_000,
        ..ResultQuery::default()
    };
    assert_eq!(s.results.query(&q).await.unwrap().len(), 1);
}

/// count counts one row per (source, source_id), for all sources or one.
pub async fn count_all_and_by_source(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    assert_eq!(s.results.count(None).await.unwrap(), 0);
    s.results
        .save(
            None,
            &[
                content_item("youtube_api", "a", 1),
                content_item("youtube_api", "b", 1),
                content_item("youtube_keyword", "a", 1),
                content_item("youtube_api", "a", 2),
            ],
        )
        .await
        .unwrap();
    assert_eq!(s.results.count(None).await.unwrap(), 3);
    assert_eq!(
        s.results.count(Some("youtube_api".into())).await.unwrap(),
        2
    );
    assert_eq!(
        s.results
            .count(Some("youtube_keyword".into()))
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.results.count(Some("nope".into())).await.unwrap(), 0);
}
