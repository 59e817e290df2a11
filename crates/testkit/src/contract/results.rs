//! Obligations of `ResultStore::save`, `get`, `find`, `history` and `sightings`: one record
//! per (platform, source_id) whichever source finds it, sightings, exact save counts,
//! metric snapshots only on metric change, and growth over windows.

use std::time::Duration;

use prismq_domain::growth::{Growth, GrowthWindow};
use prismq_domain::ports::StoredResult;
use prismq_domain::{SaveReport, TaskId};

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
    let got = s.results.get("youtube", "b").await.unwrap();
    assert_eq!(got.item, b);
    assert_eq!(
        (got.first_seen_at, got.last_seen_at),
        (clock.now(), clock.now())
    );
    assert_eq!(got.last_task_id, Some(TaskId(7)));
    assert_eq!(got.growth, Growth::default(), "one observation: no growth");
    let h = s.results.history("youtube", "a").await.unwrap();
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
    let got = s.results.get("youtube", "a").await.unwrap();
    assert_eq!((got.first_seen_at, got.last_seen_at), (first, clock.now()));
    assert_eq!(got.last_task_id, Some(TaskId(2)));
    assert_eq!(s.results.history("youtube", "a").await.unwrap().len(), 1);
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
    let got = s.results.get("youtube", "a").await.unwrap();
    assert_eq!(got.item, renamed);
    assert_eq!(got.last_task_id, None);
    assert_eq!(s.results.history("youtube", "a").await.unwrap().len(), 1);
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
    let h = s.results.history("youtube", "a").await.unwrap();
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
    assert_eq!(s.results.get("youtube", "a").await.unwrap().item, more);
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
    assert_not_found(s.results.get("youtube", "a").await);
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
    assert_eq!(s.results.get("youtube", "b").await.unwrap().item, b2);
    let h = s.results.history("youtube", "b").await.unwrap();
    let views: Vec<_> = h.iter().map(|m| m.metrics.views).collect();
    assert_eq!(views, vec![Some(10), Some(20)]);
}

/// get, history and sightings of an unknown record are `NotFound`; a sightings limit
/// outside 1–10,000 is `Invalid`.
pub async fn get_and_history_of_unknown_item_are_not_found(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (_, s) = setup(factory);
    s.results
        .save(None, &[content_item("youtube_api", "a", 1)])
        .await
        .unwrap();
    assert_not_found(s.results.get("youtube", "zz").await);
    assert_not_found(s.results.get("blog", "a").await);
    assert_not_found(s.results.get("youtube_api", "a").await);
    assert_not_found(s.results.history("youtube", "zz").await);
    assert_not_found(s.results.sightings("youtube", "zz", 10).await);
    assert_eq!(
        invalid_field(s.results.sightings("youtube", "a", 0).await),
        "limit"
    );
    assert_eq!(
        invalid_field(s.results.sightings("youtube", "a", 10_001).await),
        "limit"
    );
}

/// find returns the record on every platform that has the id, ordered by platform, and
/// nothing for an id none has.
pub async fn find_returns_the_id_under_every_source(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    assert!(s.results.find("a").await.unwrap().is_empty());
    s.results
        .save(
            None,
            &[
                content_item("youtube_ytdlp", "a", 3),
                content_item("youtube_api", "b", 2),
                content_item("youtube_api", "a", 1),
                content_item("blog_feed", "a", 4),
                content_item("zz_source", "ab", 5),
            ],
        )
        .await
        .unwrap();
    let found = s.results.find("a").await.unwrap();
    let keys: Vec<(&str, &str, &str)> = found
        .iter()
        .map(|r| {
            (
                r.item.platform.as_str(),
                r.item.source.as_str(),
                r.item.source_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [("blog", "blog_feed", "a"), ("youtube", "youtube_api", "a")]
    );
    assert_eq!(
        found[1].item.metrics.views,
        Some(1),
        "the latest sighting's"
    );
    assert_eq!(found[1], s.results.get("youtube", "a").await.unwrap());
    assert_eq!(s.results.count(None).await.unwrap(), 4);
    assert_eq!(s.results.count(Some("youtube".into())).await.unwrap(), 2);
    assert!(s.results.find("zz").await.unwrap().is_empty());
    assert!(s.results.find("A").await.unwrap().is_empty());
}

/// One video found by a channel scrape, a search and a chart is one record: one metric
/// history across all of them, the fields the latest sighting lacks kept from earlier
/// ones, and a sighting per task with its source and rank, newest first. A task that finds
/// the video again moves its one sighting.
pub async fn one_record_per_video_across_sources(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let t0 = clock.now();
    let mut channel = content_item("youtube_channel", "v", 100);
    channel.channel_id = Some("UC1".into());
    channel.metrics.likes = Some(7);
    channel.rank = Some(3);
    channel
        .extra
        .insert("is_short".into(), serde_json::json!(false));
    s.results
        .save(Some(TaskId(1)), std::slice::from_ref(&channel))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(3600));
    // The search knows no likes and no channel id, and nothing about Shorts.
    let mut search = content_item("youtube_keyword", "v", 160);
    search.rank = Some(1);
    let r = s
        .results
        .save(Some(TaskId(2)), std::slice::from_ref(&search))
        .await
        .unwrap();
    assert_eq!(r, report(0, 1, 0), "the same video, not a new one");
    assert_eq!(s.results.count(None).await.unwrap(), 1);
    let got = s.results.get("youtube", "v").await.unwrap();
    assert_eq!(got.item.source, "youtube_keyword");
    assert_eq!(got.item.rank, Some(1));
    assert_eq!(got.item.metrics.views, Some(160));
    assert_eq!(
        got.item.metrics.likes,
        Some(7),
        "kept from the channel scrape"
    );
    assert_eq!(got.item.channel_id.as_deref(), Some("UC1"));
    assert_eq!(got.item.extra["is_short"], serde_json::json!(false));
    assert_eq!((got.first_seen_at, got.last_seen_at), (t0, clock.now()));
    assert_eq!(got.last_task_id, Some(TaskId(2)));
    let views: Vec<_> = s
        .results
        .history("youtube", "v")
        .await
        .unwrap()
        .iter()
        .map(|h| h.metrics.views)
        .collect();
    assert_eq!(views, vec![Some(100), Some(160)], "one history");
    let day = got
        .growth
        .get(GrowthWindow::Day)
        .expect("an hour of history");
    assert_eq!(day.views_per_hour.round(), 60.0);

    // Task 1 finds it again, lower in the list: its sighting moves, no new one.
    clock.advance(Duration::from_secs(60));
    channel.rank = Some(5);
    s.results
        .save(Some(TaskId(1)), std::slice::from_ref(&channel))
        .await
        .unwrap();
    let seen = s.results.sightings("youtube", "v", 10).await.unwrap();
    let rows: Vec<_> = seen
        .iter()
        .map(|x| (x.source.as_str(), x.task_id, x.rank, x.seen_at))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("youtube_channel", Some(TaskId(1)), Some(5), clock.now()),
            (
                "youtube_keyword",
                Some(TaskId(2)),
                Some(1),
                plus_secs(t0, 3600)
            ),
        ]
    );
    // Saves outside a task each add one; the limit keeps the newest.
    s.results.save(None, &[search.clone()]).await.unwrap();
    let seen = s.results.sightings("youtube", "v", 1).await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].task_id, seen[0].source.as_str()),
        (None, "youtube_keyword")
    );
    assert_eq!(
        s.results.sightings("youtube", "v", 10).await.unwrap().len(),
        3
    );
}

/// Growth over a window ends at the latest observation (the current metrics at
/// `last_seen_at`, so an unchanged save counts as one), interpolates at the window's start
/// when the history reaches past it, reports the span it covers otherwise, and is absent
/// below the default 30-minute minimum span.
pub async fn growth_covers_real_windows(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let rate = |r: &StoredResult, w: GrowthWindow| {
        r.growth
            .get(w)
            .map(|g| (g.views_per_hour.round(), g.span_secs))
    };
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
    let got = s.results.get("youtube", "a").await.unwrap();
    // 1 h window: views at its start interpolated halfway, 2,000 → 3,000.
    assert_eq!(rate(&got, GrowthWindow::Hour), Some((1000.0, 3600)));
    // 24 h window: the history covers 2 h of it.
    assert_eq!(rate(&got, GrowthWindow::Day), Some((1000.0, 7200)));
    clock.advance(Duration::from_secs(3600));
    s.results
        .save(None, std::slice::from_ref(&a))
        .await
        .unwrap();
    let got = s.results.get("youtube", "a").await.unwrap();
    assert_eq!(
        rate(&got, GrowthWindow::Hour),
        Some((0.0, 3600)),
        "seen unchanged for the whole last hour"
    );
    assert_eq!(rate(&got, GrowthWindow::Day), Some((667.0, 3 * 3600)));
    clock.advance(Duration::from_secs(22 * 3600));
    a.metrics.views = Some(10_000);
    s.results
        .save(None, std::slice::from_ref(&a))
        .await
        .unwrap();
    let got = s.results.get("youtube", "a").await.unwrap();
    // 25 h of history: the 24 h window starts 1 h in (2,000 views) and is whole.
    assert_eq!(rate(&got, GrowthWindow::Day), Some((333.0, 86_400)));
    assert_eq!(rate(&got, GrowthWindow::Week), Some((360.0, 25 * 3600)));
    // Two collects 47 s apart say nothing about a rate.
    let mut b = content_item("youtube_api", "b", 0);
    s.results
        .save(None, std::slice::from_ref(&b))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(47));
    b.metrics.views = Some(3_000_000);
    s.results
        .save(None, std::slice::from_ref(&b))
        .await
        .unwrap();
    let got = s.results.get("youtube", "b").await.unwrap();
    assert_eq!(got.growth, Growth::default());
}

/// A video whose views have not moved for a month has every window whole and flat, and
/// keeps exactly that when seen again unchanged (a store may skip recomputing it); the next
/// change is measured from the stored history.
pub async fn growth_of_a_flat_video_stays_flat_until_it_moves(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (clock, s) = setup(factory);
    let mut a = content_item("youtube_api", "flat", 500);
    s.results
        .save(None, std::slice::from_ref(&a))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(31 * 86_400));
    s.results
        .save(None, std::slice::from_ref(&a))
        .await
        .unwrap();
    let flat = s.results.get("youtube", "flat").await.unwrap().growth;
    for w in GrowthWindow::ALL {
        let r = flat.get(w).unwrap();
        assert_eq!((r.views_per_hour, r.span_secs), (0.0, w.seconds()), "{w}");
    }
    clock.advance(Duration::from_secs(9 * 86_400));
    s.results
        .save(None, std::slice::from_ref(&a))
        .await
        .unwrap();
    let again = s.results.get("youtube", "flat").await.unwrap();
    assert_eq!(again.growth, flat, "seen again unchanged");
    assert_eq!(again.last_seen_at, clock.now());
    clock.advance(Duration::from_secs(86_400));
    a.metrics.views = Some(500 + 41 * 24);
    s.results
        .save(None, std::slice::from_ref(&a))
        .await
        .unwrap();
    let moved = s.results.get("youtube", "flat").await.unwrap().growth;
    // From the one snapshot 41 days back: 24 views a day there, one an hour.
    let month = moved.get(GrowthWindow::Month).unwrap();
    assert_eq!(
        (month.views_per_hour.round(), month.span_secs),
        (1.0, 30 * 86_400)
    );
}

/// Callers saving the same items at once keep one row per (source, source_id): across all
/// their reports each item is inserted exactly once.
pub async fn concurrent_saves_keep_one_row_per_item(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let items: Vec<_> = (0..20)
        .map(|i| content_item("youtube_api", &format!("v{i}"), 10))
        .collect();
    let mut handles = Vec::new();
    for _ in 0..6 {
        let store = s.results.clone();
        let items = items.clone();
        handles.push(tokio::spawn(async move {
            let mut total = SaveReport::default();
            for chunk in items.chunks(5) {
                total.merge(store.save(None, chunk).await.unwrap());
                tokio::task::yield_now().await;
            }
            total
        }));
    }
    let mut all = SaveReport::default();
    for h in handles {
        all.merge(h.await.unwrap());
    }
    assert_eq!(all, report(20, 0, 100));
    assert_eq!(s.results.count(None).await.unwrap(), 20);
    assert_eq!(s.results.history("youtube", "v3").await.unwrap().len(), 1);
}
