//! Obligations of `ResultStore::query` and `count`: the three orders with their tie-breaks,
//! source, since, first-seen, channel and task filters, keyset paging and limit, and counts.

use std::time::Duration;

use prismq_domain::growth::GrowthWindow;
use prismq_domain::ports::{ResultOrder, ResultQuery, StoredResult};
use prismq_domain::{ContentItem, TaskId};

use super::support::{invalid_field, setup};
use super::{ContractEnv, Subject};
use crate::fixtures::{content_item, plus_secs};

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

/// Views order: most views first, items without views last, ties by (platform, source_id).
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
                content_item("youtube_api", "tie", 50),
                content_item("blog_feed", "tie", 50),
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
            key("blog_feed", "tie"),
            key("youtube_api", "tie"),
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

/// Growth order: highest views per hour over the query's window first, ties by key, items
/// without growth in the window last.
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
    for window in [GrowthWindow::Day, GrowthWindow::Hour] {
        let q = ResultQuery {
            window,
            ..q.clone()
        };
        let rows = s.results.query(&q).await.unwrap();
        let got: Vec<(&str, Option<f64>)> = rows
            .iter()
            .map(|r| {
                (
                    r.item.source_id.as_str(),
                    r.growth.get(window).map(|g| g.views_per_hour.round()),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("fast", Some(8000.0)),
                ("same-a", Some(1000.0)),
                ("same-b", Some(1000.0)),
                ("slow", Some(100.0)),
                ("flat", None)
            ],
            "{window}"
        );
    }
}

/// `new_since` keeps items first seen at or after the instant (seeing an old one again does
/// not bring it in); `channel_id` keeps one channel's items; `task` keeps the items a task
/// saved last; together they all apply.
pub async fn query_filters_first_seen_channel_and_task(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let in_channel = |id: &str, channel: &str| {
        let mut i = content_item("youtube_api", id, 10);
        i.channel_id = Some(channel.into());
        i
    };
    s.results
        .save(
            Some(TaskId(1)),
            &[in_channel("old-a", "UCa"), in_channel("old-b", "UCb")],
        )
        .await
        .unwrap();
    clock.advance(Duration::from_secs(60));
    let cut = clock.now();
    s.results
        .save(
            Some(TaskId(2)),
            &[in_channel("new-a", "UCa"), in_channel("old-b", "UCb")],
        )
        .await
        .unwrap();
    let q = |f: fn(&mut ResultQuery)| {
        let mut q = ResultQuery {
            order: ResultOrder::Recent,
            ..ResultQuery::default()
        };
        f(&mut q);
        q
    };
    let ids = |rows: Vec<(String, String)>| rows.into_iter().map(|k| k.1).collect::<Vec<_>>();
    let mut new_since = q(|_| {});
    new_since.new_since = Some(cut);
    assert_eq!(ids(keys(&s, new_since.clone()).await), vec!["new-a"]);
    let mut channel = q(|q| q.channel_id = Some("UCa".into()));
    assert_eq!(ids(keys(&s, channel.clone()).await), vec!["new-a", "old-a"]);
    channel.channel_id = Some("UCnone".into());
    assert!(keys(&s, channel).await.is_empty());
    let task = q(|q| q.task = Some(TaskId(2)));
    assert_eq!(ids(keys(&s, task.clone()).await), vec!["new-a", "old-b"]);
    // A video two tasks found is found by each.
    let task1 = q(|q| q.task = Some(TaskId(1)));
    assert_eq!(ids(keys(&s, task1).await), vec!["old-a", "old-b"]);
    let all = ResultQuery {
        channel_id: Some("UCb".into()),
        ..task
    };
    assert_eq!(ids(keys(&s, all.clone()).await), vec!["old-b"]);
    assert!(keys(
        &s,
        ResultQuery {
            new_since: Some(cut),
            ..all
        }
    )
    .await
    .is_empty());
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

/// Keyset paging: for every order, pages of any size taken with `cursor_after` of each
/// page's last item list exactly the unpaged listing (ties, items without a value, and
/// several platforms included), and the page after the last is empty. A cursor whose value
/// does not fit the order is `Invalid` on `after`.
pub async fn query_pages_after_a_cursor(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let mut items: Vec<ContentItem> = Vec::new();
    for (i, (source, views)) in [
        ("youtube_api", Some(50)),
        ("blog_feed", Some(50)),
        ("youtube_api", Some(70)),
        ("youtube_keyword", None),
        ("blog_feed", None),
        ("youtube_api", Some(50)),
        ("youtube_api", Some(10)),
        ("youtube_api", None),
    ]
    .into_iter()
    .enumerate()
    {
        let mut it = content_item(source, &format!("v{}", i % 4), views.unwrap_or(0));
        it.metrics.views = views;
        it.published_at = (i % 3 != 0).then(|| plus_secs(clock.now(), -(i as i64 % 2) * 3_600));
        it.channel_id = Some("UCpage".into());
        items.push(it);
    }
    s.results.save(None, &items).await.unwrap();
    clock.advance(Duration::from_secs(7_200));
    for it in &mut items {
        it.metrics.views = it.metrics.views.map(|v| v * 2);
    }
    s.results.save(None, &items[..5]).await.unwrap();
    for order in [
        ResultOrder::Views,
        ResultOrder::Recent,
        ResultOrder::Growth,
        ResultOrder::Outlier,
    ] {
        let all = s
            .results
            .query(&ResultQuery {
                order,
                limit: 10_000,
                ..ResultQuery::default()
            })
            .await
            .unwrap();
        assert!(all.len() >= 6, "{order:?}: {}", all.len());
        for limit in [1, 2, 3] {
            let mut q = ResultQuery {
                order,
                limit,
                ..ResultQuery::default()
            };
            let mut paged = Vec::new();
            loop {
                let page = s.results.query(&q).await.unwrap();
                assert!(page.len() <= limit as usize);
                let Some(last) = page.last() else { break };
                q.after = Some(q.cursor_after(last));
                paged.extend(page);
                assert!(paged.len() <= all.len(), "{order:?} by {limit}: a repeat");
            }
            let key = |r: &StoredResult| (r.item.platform.clone(), r.item.source_id.clone());
            assert_eq!(
                paged.iter().map(key).collect::<Vec<_>>(),
                all.iter().map(key).collect::<Vec<_>>(),
                "{order:?} in pages of {limit}"
            );
        }
    }
    let bad = ResultQuery {
        order: ResultOrder::Views,
        after: Some(prismq_domain::ports::ResultCursor {
            value: Some(prismq_domain::ports::OrderValue::Real(1.5)),
            platform: "youtube".into(),
            source_id: "v1".into(),
        }),
        ..ResultQuery::default()
    };
    assert_eq!(invalid_field(s.results.query(&bad).await), "after");
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

/// count counts one record per (platform, source_id), for all platforms or one, however
/// many sources found it.
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
                content_item("blog_feed", "a", 2),
            ],
        )
        .await
        .unwrap();
    assert_eq!(s.results.count(None).await.unwrap(), 3);
    assert_eq!(s.results.count(Some("youtube".into())).await.unwrap(), 2);
    assert_eq!(s.results.count(Some("blog".into())).await.unwrap(), 1);
    assert_eq!(
        s.results.count(Some("youtube_api".into())).await.unwrap(),
        0,
        "a source kind is not a platform"
    );
}
