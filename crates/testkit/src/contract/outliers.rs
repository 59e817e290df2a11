//! Obligations of the outlier scores `ResultStore::save` keeps (channel baselines per
//! format, age-aware scores, brought up to date on every save of a channel, the other
//! videos only when a baseline moves) and `ResultStore::rescore` recomputes and of `query`'s
//! outlier order and filters, with answers known in advance.

use std::sync::Arc;
use std::time::Duration;

use prismq_domain::outlier::{AgeBasis, VideoFormat};
use prismq_domain::ports::{ResultOrder, ResultQuery, ResultStore, StoredResult};
use prismq_domain::ContentItem;
use serde_json::json;

use super::support::{invalid_field, setup};
use super::{ContractEnv, Subject};
use crate::fixtures::{content_item, plus_secs};
use crate::FakeClock;

const DAY: i64 = 86_400;

/// A video of `channel` published `age_days` before now with `views`.
fn video(
    clock: &Arc<FakeClock>,
    channel: &str,
    id: &str,
    age_days: i64,
    views: i64,
    short: bool,
) -> ContentItem {
    let mut item = content_item("youtube_channel", id, views);
    item.channel_id = Some(channel.to_owned());
    item.published_at = Some(plus_secs(clock.now(), -age_days * DAY));
    item.extra.insert("is_short".into(), json!(short));
    item
}

/// `n` long-form uploads of `channel`, 40 days old and older, each with `views`.
fn uploads(
    clock: &Arc<FakeClock>,
    channel: &str,
    prefix: &str,
    n: i64,
    views: i64,
) -> Vec<ContentItem> {
    (0..n)
        .map(|i| {
            video(
                clock,
                channel,
                &format!("{prefix}{i:02}"),
                40 + i,
                views,
                false,
            )
        })
        .collect()
}

async fn get(s: &Subject, id: &str) -> StoredResult {
    s.results.get("youtube", id).await.unwrap()
}

/// A channel of eleven 1,000-view uploads and one of 3,000: the planted video scores 2.0 on
/// total views against a median of 1,000 over 12 uploads; the others score 0; the stored
/// baselines say so, and say there is no age baseline without histories.
pub async fn outlier_planted_video_scores_against_known_median(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (clock, s) = setup(factory);
    let mut batch = uploads(&clock, "UCa", "a", 11, 1_000);
    batch.push(video(&clock, "UCa", "planted", 35, 3_000, false));
    s.results.save(None, &batch).await.unwrap();
    let p = get(&s, "planted").await;
    assert_eq!(p.format, Some(VideoFormat::Long));
    let o = p.outlier.expect("the planted video is scored");
    assert_eq!(
        (o.score, o.basis, o.baseline, o.sample, o.views),
        (2.0, AgeBasis::Total, 1_000.0, 12, 3_000)
    );
    assert_eq!(get(&s, "a00").await.outlier.unwrap().score, 0.0);
    let b = s.results.baselines("UCa").await.unwrap();
    let got: Vec<_> = b
        .iter()
        .map(|b| {
            (
                b.baseline.format,
                b.baseline.basis,
                b.baseline.median,
                b.baseline.sample,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (VideoFormat::Long, AgeBasis::Age7d, None, 0),
            (VideoFormat::Long, AgeBasis::Age30d, None, 0),
            (VideoFormat::Long, AgeBasis::Total, Some(1_000.0), 12),
        ]
    );
    assert!(b
        .iter()
        .all(|b| b.channel_id == "UCa" && b.computed_at == clock.now()));
    assert!(s.results.baselines("UCnone").await.unwrap().is_empty());
}

/// A channel with nine uploads (the minimum is ten) has no baseline, so nothing of it is
/// scored; the baseline row records the sample it had.
pub async fn outlier_channel_below_minimum_has_no_score(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let mut batch = uploads(&clock, "UCsmall", "s", 8, 1_000);
    batch.push(video(&clock, "UCsmall", "big", 35, 50_000, false));
    s.results.save(None, &batch).await.unwrap();
    assert_eq!(get(&s, "big").await.outlier, None);
    assert_eq!(get(&s, "s00").await.outlier, None);
    let total = s
        .results
        .baselines("UCsmall")
        .await
        .unwrap()
        .into_iter()
        .find(|b| b.baseline.basis == AgeBasis::Total)
        .unwrap();
    assert_eq!((total.baseline.median, total.baseline.sample), (None, 9));
}

/// Shorts that get ten times the channel's long-form views are measured against the Shorts
/// median, long-form against the long-form median.
pub async fn outlier_formats_have_their_own_medians(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let mut batch = uploads(&clock, "UCf", "l", 10, 1_000);
    batch.extend((0..10).map(|i| video(&clock, "UCf", &format!("s{i:02}"), 40 + i, 10_000, true)));
    batch.push(video(&clock, "UCf", "long2x", 31, 2_000, false));
    batch.push(video(&clock, "UCf", "short1x", 31, 10_000, true));
    s.results.save(None, &batch).await.unwrap();
    let long = get(&s, "long2x").await;
    assert_eq!(long.format, Some(VideoFormat::Long));
    let o = long.outlier.unwrap();
    assert_eq!((o.score, o.baseline, o.sample), (1.0, 1_000.0, 11));
    let short = get(&s, "short1x").await;
    assert_eq!(short.format, Some(VideoFormat::Short));
    let o = short.outlier.unwrap();
    assert_eq!((o.score, o.baseline, o.sample), (0.0, 10_000.0, 11));
}

/// An upload three days old, seen once, is not scored (no history at 7 days, too young for
/// total views), however many views it has; neither is one 20 days old.
pub async fn outlier_new_upload_without_history_has_no_score(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (clock, s) = setup(factory);
    let mut batch = uploads(&clock, "UCn", "n", 10, 1_000);
    batch.push(video(&clock, "UCn", "fresh", 3, 90_000, false));
    batch.push(video(&clock, "UCn", "young", 20, 90_000, false));
    s.results.save(None, &batch).await.unwrap();
    assert_eq!(get(&s, "fresh").await.outlier, None);
    assert_eq!(get(&s, "young").await.outlier, None);
    assert_eq!(get(&s, "n00").await.outlier.unwrap().score, 0.0);
}

/// New uploads saved later move the channel's median, and the score of a video that was
/// not in that batch changes with it.
pub async fn outlier_score_moves_with_the_median(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let mut batch = uploads(&clock, "UCm", "m", 11, 1_000);
    batch.push(video(&clock, "UCm", "planted", 35, 3_000, false));
    s.results.save(None, &batch).await.unwrap();
    assert_eq!(get(&s, "planted").await.outlier.unwrap().score, 2.0);
    // Eleven more uploads of 3,000 views: 11 × 1,000 and 12 × 3,000 in the newest 30 of
    // 23; the median is 3,000 now.
    let newer: Vec<ContentItem> = (0..11)
        .map(|i| video(&clock, "UCm", &format!("new{i:02}"), 8 + i, 3_000, false))
        .collect();
    s.results.save(None, &newer).await.unwrap();
    let o = get(&s, "planted").await.outlier.unwrap();
    assert_eq!((o.score, o.baseline, o.sample), (0.0, 3_000.0, 23));
    assert_eq!(
        get(&s, "m00").await.outlier.unwrap().score,
        1_000.0 / 3_000.0 - 1.0
    );
}

/// A save rescores the videos it saves; a video not in the batch keeps its score while the
/// channel's baselines stay where they were, even when time alone would now score it (old
/// enough for its total views), until `rescore` recomputes the channel; `rescore` of every
/// channel and of one counts channels and videos.
pub async fn outlier_unsaved_videos_wait_for_a_moved_baseline_or_rescore(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (clock, s) = setup(factory);
    let mut batch = uploads(&clock, "UCr", "r", 12, 1_000);
    batch.push(video(&clock, "UCr", "young", 25, 2_000, false));
    s.results.save(None, &batch).await.unwrap();
    s.results
        .save(None, &uploads(&clock, "UCo", "o", 12, 500))
        .await
        .unwrap();
    assert_eq!(
        get(&s, "young").await.outlier,
        None,
        "25 days old: too young"
    );
    clock.advance(Duration::from_secs(10 * DAY as u64));
    // Saving one old video again: the window and its median do not move.
    s.results.save(None, &batch[..1]).await.unwrap();
    assert_eq!(get(&s, "r00").await.outlier.unwrap().score, 0.0);
    assert_eq!(
        get(&s, "young").await.outlier,
        None,
        "not saved and no baseline moved: the score stays as it was"
    );
    let report = s.results.rescore(Some("UCr".into())).await.unwrap();
    assert_eq!((report.channels, report.videos), (1, 13));
    let o = get(&s, "young").await.outlier.unwrap();
    assert_eq!((o.score, o.basis, o.views), (1.0, AgeBasis::Total, 2_000));
    let all = s.results.rescore(None).await.unwrap();
    assert_eq!((all.channels, all.videos), (2, 25));
    assert_eq!(get(&s, "young").await.outlier.unwrap().score, 1.0);
    assert_eq!(get(&s, "o03").await.outlier.unwrap().score, 0.0);
    let none = s.results.rescore(Some("UCnone".into())).await.unwrap();
    assert_eq!((none.channels, none.videos), (0, 0));
}

/// Where the metric history holds a video's views at 7 days of age, the score compares
/// like with like: views at 7 days against the channel's median at 7 days, even after
/// total views would say otherwise.
pub async fn outlier_age_basis_comes_from_history(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    // Saved at exactly 7 days of age: ten with 100 views, one with 400.
    let mut batch: Vec<ContentItem> = (0..10)
        .map(|i| video(&clock, "UCh", &format!("h{i:02}"), 7, 100, false))
        .collect();
    batch.push(video(&clock, "UCh", "early", 7, 400, false));
    s.results.save(None, &batch).await.unwrap();
    let o = get(&s, "early").await.outlier.unwrap();
    assert_eq!(
        (o.score, o.basis, o.baseline, o.sample),
        (3.0, AgeBasis::Age7d, 100.0, 11)
    );
    // Forty days later the totals are 10,000 and 4,000: by total views the early one is
    // below the median, but its 7-day views still beat the channel's 7-day median.
    clock.advance(Duration::from_secs(40 * 86_400));
    let later: Vec<ContentItem> = batch
        .iter()
        .map(|i| {
            let mut i = i.clone();
            i.metrics.views = Some(if i.source_id == "early" {
                4_000
            } else {
                10_000
            });
            i
        })
        .collect();
    s.results.save(None, &later).await.unwrap();
    let o = get(&s, "early").await.outlier.unwrap();
    assert_eq!((o.score, o.basis, o.views), (3.0, AgeBasis::Age7d, 400));
    let total = s
        .results
        .baselines("UCh")
        .await
        .unwrap()
        .into_iter()
        .find(|b| b.baseline.basis == AgeBasis::Total)
        .unwrap();
    assert_eq!(
        (total.baseline.median, total.baseline.sample),
        (Some(10_000.0), 11)
    );
}

/// `query` with the outlier order: highest score first, ties by (source, source_id),
/// unscored items last; score bounds leave unscored items out; a format keeps only that
/// format; bounds the wrong way round are `Invalid`.
pub async fn query_orders_and_filters_by_outlier_score(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let mut batch = uploads(&clock, "UCq", "q", 10, 1_000);
    batch.push(video(&clock, "UCq", "x3", 35, 3_000, false));
    batch.push(video(&clock, "UCq", "x2", 35, 2_000, false));
    batch.push(video(&clock, "UCq", "fresh", 2, 5_000, false));
    batch.extend((0..10).map(|i| video(&clock, "UCq", &format!("s{i:02}"), 40 + i, 500, true)));
    batch.push(video(&clock, "UCq", "s_hit", 35, 2_500, true));
    s.results.save(None, &batch).await.unwrap();
    let ids = |rows: Vec<StoredResult>| -> Vec<String> {
        rows.into_iter().map(|r| r.item.source_id).collect()
    };
    let q = ResultQuery {
        order: ResultOrder::Outlier,
        limit: 4,
        ..ResultQuery::default()
    };
    // s_hit: 2500/500 − 1 = 4; x3: 3000/1000 − 1 = 2 (median of 12 long is 1000); x2: 1.
    assert_eq!(
        ids(s.results.query(&q).await.unwrap()),
        ["s_hit", "x3", "x2", "q00"]
    );
    let all = s
        .results
        .query(&ResultQuery {
            limit: 100,
            ..q.clone()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 24);
    assert_eq!(all.last().unwrap().item.source_id, "fresh");
    let bounded = ResultQuery {
        min_score: Some(1.0),
        max_score: Some(2.0),
        limit: 100,
        ..q.clone()
    };
    assert_eq!(ids(s.results.query(&bounded).await.unwrap()), ["x3", "x2"]);
    let shorts = ResultQuery {
        format: Some(VideoFormat::Short),
        min_score: Some(0.5),
        limit: 100,
        ..q.clone()
    };
    assert_eq!(ids(s.results.query(&shorts).await.unwrap()), ["s_hit"]);
    let below_zero = ResultQuery {
        max_score: Some(-0.01),
        limit: 100,
        ..q.clone()
    };
    assert!(s.results.query(&below_zero).await.unwrap().is_empty());
    let wrong = ResultQuery {
        min_score: Some(2.0),
        max_score: Some(1.0),
        ..q.clone()
    };
    assert_eq!(invalid_field(s.results.query(&wrong).await), "max_score");
    let nan = ResultQuery {
        min_score: Some(f64::NAN),
        ..q
    };
    assert_eq!(invalid_field(s.results.query(&nan).await), "min_score");
}

/// Random histories over three channels, two sources per video, three formats and clock
/// jumps of up to three days: after every save (and a `rescore` every 20 saves) the store
/// holds the same formats, scores and baselines as the in-memory reference store fed the
/// same saves, whose rescoring recomputes from every video. Proves the store's bounded
/// rescoring (samples through indexes, the rest only when a baseline moves, unchanged
/// videos skipped) picks the same windows, ties and duplicates.
pub async fn outlier_bounded_rescoring_agrees_with_the_reference(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    let (clock, s) = setup(factory);
    let reference = crate::MemoryStore::new(clock.clone(), prismq_domain::RetryPolicy::default());
    let start = clock.now();
    let mut rng = StdRng::seed_from_u64(7);
    for step in 0..80 {
        let n = rng.gen_range(1..12);
        let batch: Vec<ContentItem> = (0..n)
            .map(|_| {
                let channel = rng.gen_range(0..3);
                let v = rng.gen_range(0..40i64);
                let source = ["youtube_channel", "youtube_keyword"][rng.gen_range(0..2)];
                let mut it = ContentItem::new(source, format!("c{channel}v{v:02}"), "t");
                it.channel_id = Some(format!("UCq{channel}"));
                it.published_at = Some(plus_secs(start, -((v * 7919) % 80) * DAY));
                it.metrics.views = Some(rng.gen_range(0..5) * 1_000 + v * 10);
                match v % 5 {
                    0 => it.extra.insert("is_short".into(), json!(true)),
                    1 => it.extra.insert("live_status".into(), json!("was_live")),
                    _ => it.extra.insert("is_short".into(), json!(false)),
                };
                it
            })
            .collect();
        s.results.save(None, &batch).await.unwrap();
        reference.save(None, &batch).await.unwrap();
        if step % 20 == 19 {
            s.results.rescore(None).await.unwrap();
            reference.rescore(None).await.unwrap();
        }
        assert_same_outliers(&s, &reference, &format!("step {step}")).await;
        clock.advance(Duration::from_secs(rng.gen_range(0..3 * DAY as u64)));
    }
}

/// A save that changes nothing but moves a video's latest observation out of the 7-day
/// tolerance recomputes its views at 7 days: views set at 5 days of age, seen unchanged at
/// 7 days (its 7-day value), then unchanged at 22 days (no observation within a day of 7
/// days any more, so no 7-day baseline).
pub async fn outlier_unchanged_save_moving_the_last_observation_recomputes(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (clock, s) = setup(factory);
    let reference = crate::MemoryStore::new(clock.clone(), prismq_domain::RetryPolicy::default());
    let batch: Vec<ContentItem> = (0..12)
        .map(|i| video(&clock, "UCu", &format!("u{i:02}"), 5, 1_000 + i, false))
        .collect();
    for (days, seven) in [(0, 0), (2, 12), (15, 0)] {
        clock.advance(Duration::from_secs(days * DAY as u64));
        s.results.save(None, &batch).await.unwrap();
        reference.save(None, &batch).await.unwrap();
        assert_same_outliers(&s, &reference, &format!("after {days} more days")).await;
        let b = s.results.baselines("UCu").await.unwrap();
        let b7 = b
            .iter()
            .find(|b| b.baseline.basis == AgeBasis::Age7d)
            .unwrap();
        assert_eq!(b7.baseline.sample, seven, "after {days} more days");
    }
}

/// Every stored item's format and score, and every channel's baselines, equal between the
/// subject and the reference.
async fn assert_same_outliers(s: &Subject, reference: &crate::MemoryStore, at: &str) {
    let all = ResultQuery {
        order: ResultOrder::Views,
        limit: 10_000,
        ..ResultQuery::default()
    };
    let (a, b) = (
        s.results.query(&all).await.unwrap(),
        reference.query(&all).await.unwrap(),
    );
    assert_eq!(a.len(), b.len(), "{at}");
    let mut channels = std::collections::BTreeSet::new();
    for (x, y) in a.iter().zip(&b) {
        let key = (&x.item.source, &x.item.source_id);
        assert_eq!(key, (&y.item.source, &y.item.source_id), "{at}");
        assert_eq!(x.format, y.format, "{at} {key:?}");
        assert_eq!(x.outlier, y.outlier, "{at} {key:?}");
        channels.extend(x.item.channel_id.clone());
    }
    for c in channels {
        let strip = |v: Vec<prismq_domain::ports::ChannelBaseline>| {
            v.into_iter().map(|b| b.baseline).collect::<Vec<_>>()
        };
        assert_eq!(
            strip(s.results.baselines(&c).await.unwrap()),
            strip(reference.baselines(&c).await.unwrap()),
            "{at} {c}"
        );
    }
}
