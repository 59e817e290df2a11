//! The SQLite store's bounded rescoring (samples read through indexes, other videos
//! rescored only when a baseline moves) against the in-memory store, which recomputes from
//! every video on each save: after every step of random histories over several channels,
//! sources, formats and clock jumps, both hold the same formats, scores and baselines.

use std::sync::Arc;
use std::time::Duration;

use prismq_domain::ports::{ResultOrder, ResultQuery, ResultStore, StoredResult};
use prismq_domain::retry::RetryPolicy;
use prismq_domain::{ContentItem, Timestamp};
use prismq_storage_sqlite::{SqliteOptions, SqliteStore};
use prismq_testkit::{FakeClock, MemoryStore};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

const DAY: i64 = 86_400;
const SOURCES: [&str; 2] = ["youtube_channel", "youtube_keyword"];

/// A random item: one of 3 channels, one of 40 videos per channel, published 0–80 days
/// before the clock's start (fixed per video, so every source agrees), views drawn anew.
fn item(rng: &mut StdRng, start: Timestamp) -> ContentItem {
    let channel = rng.gen_range(0..3);
    let video = rng.gen_range(0..40);
    let source = SOURCES[rng.gen_range(0..SOURCES.len())];
    let mut it = ContentItem::new(source, format!("c{channel}v{video:02}"), "t");
    it.channel_id = Some(format!("UC{channel}"));
    let age = (video as i64 * 7919) % 80;
    it.published_at = Timestamp::from_second(start.as_second() - age * DAY).ok();
    it.metrics.views = Some(rng.gen_range(0..5) * 1_000 + video as i64 * 10);
    match video % 5 {
        0 => {
            it.extra.insert("is_short".into(), json!(true));
        }
        1 => {
            it.extra.insert("live_status".into(), json!("was_live"));
        }
        _ => {
            it.extra.insert("is_short".into(), json!(false));
        }
    }
    it
}

async fn everything(store: &dyn ResultStore) -> Vec<StoredResult> {
    store
        .query(&ResultQuery {
            order: ResultOrder::Views,
            limit: 10_000,
            ..ResultQuery::default()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn bounded_rescoring_agrees_with_the_whole_channel_reference() {
    for seed in 0..6u64 {
        let start = Timestamp::from_second(1_800_000_000).unwrap();
        let clock = Arc::new(FakeClock::new(start));
        let dir = tempfile::tempdir().unwrap();
        let sqlite =
            SqliteStore::open(SqliteOptions::new(dir.path().join("q.db")), clock.clone()).unwrap();
        let memory = MemoryStore::new(clock.clone(), RetryPolicy::default());
        let mut rng = StdRng::seed_from_u64(seed);
        for step in 0..60 {
            let n = rng.gen_range(1..12);
            let batch: Vec<ContentItem> = (0..n).map(|_| item(&mut rng, start)).collect();
            sqlite.save(None, &batch).await.unwrap();
            memory.save(None, &batch).await.unwrap();
            if step % 20 == 19 {
                sqlite.rescore(None).await.unwrap();
                memory.rescore(None).await.unwrap();
            }
            let (a, b) = (everything(&sqlite).await, everything(&memory).await);
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(&b) {
                let key = (&x.item.source, &x.item.source_id);
                assert_eq!(
                    key,
                    (&y.item.source, &y.item.source_id),
                    "seed {seed} step {step}"
                );
                assert_eq!(x.format, y.format, "seed {seed} step {step} {key:?}");
                assert_eq!(x.outlier, y.outlier, "seed {seed} step {step} {key:?}");
            }
            for c in 0..3 {
                let channel = format!("UC{c}");
                let strip = |v: Vec<prismq_domain::ports::ChannelBaseline>| {
                    v.into_iter().map(|b| b.baseline).collect::<Vec<_>>()
                };
                assert_eq!(
                    strip(sqlite.baselines(&channel).await.unwrap()),
                    strip(memory.baselines(&channel).await.unwrap()),
                    "seed {seed} step {step} {channel}"
                );
            }
            clock.advance(Duration::from_secs(rng.gen_range(0..3 * DAY as u64)));
        }
    }
}

/// A save that changes nothing but moves a video's latest observation out of the 7-day
/// tolerance must recompute its views at 7 days (here they become unknown): views changed at
/// 5 days of age, seen unchanged at 7 days (the 7-day value), then unchanged at 20 days
/// (no observation within a day of 7 days any more).
#[tokio::test]
async fn an_unchanged_save_that_moves_the_latest_observation_recomputes_the_values() {
    let start = Timestamp::from_second(1_800_000_000).unwrap();
    let clock = Arc::new(FakeClock::new(start));
    let dir = tempfile::tempdir().unwrap();
    let sqlite =
        SqliteStore::open(SqliteOptions::new(dir.path().join("q.db")), clock.clone()).unwrap();
    let memory = MemoryStore::new(clock.clone(), RetryPolicy::default());
    let batch: Vec<ContentItem> = (0..12)
        .map(|i| {
            let mut it = ContentItem::new("youtube_channel", format!("v{i:02}"), "t");
            it.channel_id = Some("UCu".into());
            it.published_at = Timestamp::from_second(start.as_second() - 5 * DAY).ok();
            it.metrics.views = Some(1_000 + i);
            it.extra.insert("is_short".into(), json!(false));
            it
        })
        .collect();
    for days in [0, 2, 15] {
        clock.advance(Duration::from_secs(days * DAY as u64));
        sqlite.save(None, &batch).await.unwrap();
        memory.save(None, &batch).await.unwrap();
        let strip = |v: Vec<prismq_domain::ports::ChannelBaseline>| {
            v.into_iter().map(|b| b.baseline).collect::<Vec<_>>()
        };
        let (a, b) = (
            strip(sqlite.baselines("UCu").await.unwrap()),
            strip(memory.baselines("UCu").await.unwrap()),
        );
        assert_eq!(a, b, "after {days} more days");
        let seven = a
            .iter()
            .find(|b| b.basis == prismq_domain::outlier::AgeBasis::Age7d)
            .unwrap();
        let expected = if days == 2 { 12 } else { 0 };
        assert_eq!(seven.sample, expected, "after {days} more days");
    }
}
