//! Outlier-score benchmarks (issue 21's figures, never timed tests): saving a channel scrape
//! of 500 videos, which brings the channel's baselines and scores up to date in the same
//! transaction; small saves to a channel far larger than the window, against the same saves
//! without scoring; and `results list --order outlier --limit 50` over many stored videos.
//!
//! Run: `cargo bench -p prismq-storage-sqlite --bench outliers`. `PRISMQ_BENCH_RESULTS` sets
//! how many videos are stored for the listing figures (default 1,000,000, in channels of
//! 500). Figures are medians and 95th percentiles over repeated rounds on a real file, and
//! the WAL frames (pages written) of a save on the large file.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prismq_domain::outlier::VideoFormat;
use prismq_domain::ports::{ResultOrder, ResultQuery, SystemClock};
use prismq_domain::{ContentItem, Timestamp};
use prismq_storage_sqlite::{SqliteOptions, SqliteStore};
use prismq_testkit::fixtures::{channel_scrape, spread_views};
use serde_json::json;

const CHANNEL_VIDEOS: usize = 500;
const SAVE_ROUNDS: usize = 30;
const QUERIES: usize = 200;

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(SqliteOptions::new(path), Arc::new(SystemClock)).expect("open")
}

/// Channel `c`'s 500 uploads (see [`channel_scrape`]).
fn channel(c: usize, round: u64, now: i64) -> Vec<ContentItem> {
    channel_scrape(c, CHANNEL_VIDEOS, round, now)
}

fn pct(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1_000.0)
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let now = Timestamp::now().as_second();

    // 1. A channel scrape of 500 videos saved again and again: each save updates 500 rows,
    //    writes 500 snapshots, and rescores the channel over its growing history.
    let store = open(&dir.path().join("save.db"));
    let mut times = Vec::new();
    for round in 0..SAVE_ROUNDS as u64 {
        let batch = channel(0, round, now);
        let t = Instant::now();
        store.save_blocking(None, &batch).expect("save");
        times.push(t.elapsed());
    }
    let first = times[0];
    let rest = times[1..].to_vec();
    println!(
        "save 500-video channel scrape + rescore: first (inserts) {}, then median {} p95 {} (rounds 2-{SAVE_ROUNDS}, up to {SAVE_ROUNDS} snapshots a video)",
        ms(first),
        ms(pct(rest.clone(), 0.5)),
        ms(pct(rest, 0.95))
    );

    // 2. A channel far larger than the window (20,000 stored videos, all eligible for the
    //    baseline) receiving small batches of new uploads older than the window, so no
    //    baseline moves: the bounded rescoring reads the saved videos and the window only.
    //    The reference is the same batches without a channel id (no scoring at all),
    //    interleaved in the same run.
    let store = open(&dir.path().join("big.db"));
    let big = |from: usize, n: usize, scored: bool| -> Vec<ContentItem> {
        (from..from + n)
            .map(|i| {
                let mut item = ContentItem::new("youtube_channel", format!("big{i:06}"), "v");
                if scored {
                    item.channel_id = Some("UCbig".into());
                }
                item.published_at = Timestamp::from_second(now - 86_400 * 400 - i as i64).ok();
                item.metrics.views = Some(spread_views(i as u64));
                item.extra.insert("is_short".into(), json!(false));
                item
            })
            .collect()
    };
    for k in 0..40 {
        store
            .save_blocking(None, &big(k * 500, 500, true))
            .expect("seed");
    }
    let (mut scored, mut plain) = (Vec::new(), Vec::new());
    for k in 0..100 {
        let from = 100_000 + k * 20;
        let t = Instant::now();
        store
            .save_blocking(None, &big(from, 10, true))
            .expect("save");
        scored.push(t.elapsed());
        let t = Instant::now();
        store
            .save_blocking(None, &big(from + 10, 10, false))
            .expect("save");
        plain.push(t.elapsed());
    }
    let (s50, p50) = (pct(scored.clone(), 0.5), pct(plain.clone(), 0.5));
    println!(
        "save 10 new videos of a 20,000-video channel: median {} p95 {}; without a channel id (no scoring) median {} p95 {}; ratio {:.2}",
        ms(s50),
        ms(pct(scored, 0.95)),
        ms(p50),
        ms(pct(plain, 0.95)),
        s50.as_secs_f64() / p50.as_secs_f64()
    );

    // 3. The listing over many stored videos.
    let total: usize = std::env::var("PRISMQ_BENCH_RESULTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let store = open(&dir.path().join("list.db"));
    let t = Instant::now();
    for c in 0..total.div_ceil(CHANNEL_VIDEOS) {
        store
            .save_blocking(None, &channel(c, 0, now))
            .expect("seed");
    }
    println!(
        "seeded {total} videos in {} channels in {:.1} s",
        total.div_ceil(CHANNEL_VIDEOS),
        t.elapsed().as_secs_f64()
    );
    // A channel scrape saved again on the large file: 500 updated rows, 500 snapshots, the
    // channel rescored (channels spread over the file).
    let channels = total.div_ceil(CHANNEL_VIDEOS);
    let mut times = Vec::new();
    let mut unchanged = Vec::new();
    for k in 0..20 {
        let c = (k * 97) % channels;
        let batch = channel(c, 1, now);
        let t = Instant::now();
        store.save_blocking(None, &batch).expect("save");
        times.push(t.elapsed());
        let t = Instant::now();
        store.save_blocking(None, &batch).expect("save");
        unchanged.push(t.elapsed());
    }
    println!(
        "save 500-video channel scrape + rescore over {total}: changed views median {} p95 {}; unchanged median {} p95 {}",
        ms(pct(times.clone(), 0.5)),
        ms(pct(times, 0.95)),
        ms(pct(unchanged.clone(), 0.5)),
        ms(pct(unchanged, 0.95))
    );
    // What those saves write: WAL frames (pages) per save, counted on a side connection
    // that empties the WAL before each save and reads its length after (SQLite starts the
    // WAL over at the first write after a complete checkpoint).
    let side = rusqlite::Connection::open(dir.path().join("list.db")).expect("side connection");
    let frames = |mode: &str| -> i64 {
        side.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| r.get(1))
            .expect("checkpoint")
    };
    let (mut changed_frames, mut unchanged_frames) = (Vec::new(), Vec::new());
    for k in 0..5 {
        let c = (k * 89 + 13) % channels;
        let batch = channel(c, 2, now);
        frames("TRUNCATE");
        store.save_blocking(None, &batch).expect("save");
        changed_frames.push(frames("PASSIVE"));
        frames("TRUNCATE");
        store.save_blocking(None, &batch).expect("save");
        unchanged_frames.push(frames("PASSIVE"));
    }
    changed_frames.sort_unstable();
    unchanged_frames.sort_unstable();
    println!(
        "WAL frames per 500-video save over {total}: changed views median {} (of {changed_frames:?}); unchanged median {}",
        changed_frames[2], unchanged_frames[2]
    );
    let cases = [
        (
            "--order outlier --limit 50",
            ResultQuery {
                order: ResultOrder::Outlier,
                limit: 50,
                ..ResultQuery::default()
            },
        ),
        (
            "--order outlier --limit 50 --format short",
            ResultQuery {
                order: ResultOrder::Outlier,
                format: Some(VideoFormat::Short),
                limit: 50,
                ..ResultQuery::default()
            },
        ),
        (
            "--order outlier --limit 50 --min-score 0.3 --max-score 2",
            ResultQuery {
                order: ResultOrder::Outlier,
                min_score: Some(0.3),
                max_score: Some(2.0),
                limit: 50,
                ..ResultQuery::default()
            },
        ),
    ];
    for (name, q) in cases {
        let mut times = Vec::new();
        for _ in 0..QUERIES {
            let t = Instant::now();
            let rows = store.query_blocking(&q).expect("query");
            times.push(t.elapsed());
            assert_eq!(rows.len(), 50);
        }
        println!(
            "results list {name} over {total}: median {} p95 {}",
            ms(pct(times.clone(), 0.5)),
            ms(pct(times, 0.95))
        );
    }
}
