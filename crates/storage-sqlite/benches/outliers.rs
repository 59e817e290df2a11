//! Outlier-score benchmarks (issue 21's figures, never timed tests): saving a channel scrape
//! of 500 videos, which brings the channel's baselines and scores up to date in the same
//! transaction; small saves to a channel far larger than the window, against the same saves
//! without scoring; and `results list --order outlier --limit 50` over many stored videos.
//!
//! Run: `cargo bench -p prismq-storage-sqlite --bench outliers`.
//! `PRISMQ_BENCH_PAGE_SIZE` sets the page size of the store's files (`common/page.rs`;
//! the store's default, 2048, otherwise). `PRISMQ_BENCH_RESULTS` sets
//! how many videos are stored for the listing figures (default 1,000,000, in channels of
//! 500). Figures are medians and 95th percentiles over repeated rounds on a real file, and
//! the WAL frames (pages written) of a save on the large file. `PRISMQ_BENCH_SEEDED` names a
//! file to keep the seeded large file in: when it exists it is copied instead of seeding
//! again (minutes at a million), so runs of two builds can share one seeding.

#[path = "common/page.rs"]
mod page;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prismq_domain::outlier::VideoFormat;
use prismq_domain::ports::{ResultOrder, ResultQuery, SystemClock};
use prismq_domain::{ContentItem, Timestamp};
use prismq_storage_sqlite::SqliteStore;
use prismq_testkit::fixtures::{channel_scrape, spread_views};
use serde_json::json;

const CHANNEL_VIDEOS: usize = 500;
const SAVE_ROUNDS: usize = 30;
const QUERIES: usize = 200;
/// The pause before each save of the paced case: a scrape task fetches its channel first.
const PAUSE: Duration = Duration::from_millis(250);

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(page::options(path), Arc::new(SystemClock)).expect("open")
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
    println!("{}", page::describe());
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
    let list = dir.path().join("list.db");
    let seeded = std::env::var_os("PRISMQ_BENCH_SEEDED").map(std::path::PathBuf::from);
    // The seeded videos' publication times count back from the seeding's `now`: a copy is
    // saved against the same `now` (kept beside it), so its saves write what fresh ones do.
    let now_file = seeded.as_ref().map(|p| {
        let mut f = p.clone().into_os_string();
        f.push(".now");
        std::path::PathBuf::from(f)
    });
    let kept_now = now_file
        .as_deref()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|s| s.trim().parse::<i64>().ok());
    let now = kept_now.unwrap_or(now);
    let t = Instant::now();
    let store = match seeded
        .as_deref()
        .filter(|p| p.exists() && kept_now.is_some())
    {
        Some(kept) => {
            std::fs::copy(kept, &list).expect("copy the seeded file");
            // On disk before the saves are timed: the kernel writing back a freshly
            // copied gigabyte under them costs their p95 tens of milliseconds.
            std::fs::File::open(&list)
                .and_then(|f| f.sync_all())
                .expect("sync the copied file");
            println!(
                "copied {total} seeded videos from {} in {:.1} s",
                kept.display(),
                t.elapsed().as_secs_f64()
            );
            open(&list)
        }
        None => {
            let store = open(&list);
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
            if let Some(kept) = &seeded {
                drop(store);
                // Everything in the database file itself, so the copy needs no WAL.
                rusqlite::Connection::open(&list)
                    .and_then(|c| c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())))
                    .expect("checkpoint the seeded file");
                std::fs::copy(&list, kept).expect("keep the seeded file");
                if let Some(f) = &now_file {
                    std::fs::write(f, now.to_string()).expect("keep the seeding's time");
                }
                open(&list)
            } else {
                store
            }
        }
    };
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
    // Every few pairs one of the two saves pays a periodic cost; which one depends on the
    // page size, so the pairs' total is the figure to compare across page sizes.
    let all: Duration = times.iter().chain(&unchanged).sum();
    println!(
        "save 500-video channel scrape + rescore over {total}: changed views median {} p95 {}; unchanged median {} p95 {}; the {} pairs {} in all",
        ms(pct(times.clone(), 0.5)),
        ms(pct(times.clone(), 0.95)),
        ms(pct(unchanged.clone(), 0.5)),
        ms(pct(unchanged, 0.95)),
        times.len(),
        ms(all)
    );
    // Changed saves back to back, nothing between them: the background checkpoint of one
    // save's pages runs beside the next save, which then cannot start the WAL over. The
    // longest the WAL file got is sampled after each save.
    let wal = dir.path().join("list.db-wal");
    let wal_len = || std::fs::metadata(&wal).map_or(0, |m| m.len());
    let (mut back, mut longest) = (Vec::new(), 0);
    for k in 0..20 {
        let c = (k * 61 + 7) % channels;
        let batch = channel(c, 3, now);
        let t = Instant::now();
        store.save_blocking(None, &batch).expect("save");
        back.push(t.elapsed());
        longest = longest.max(wal_len());
    }
    println!(
        "save 500-video channel scrapes back to back over {total}: changed views median {} p95 {}; WAL file at most {:.1} MB",
        ms(pct(back.clone(), 0.5)),
        ms(pct(back, 0.95)),
        longest as f64 / (1024.0 * 1024.0)
    );
    // The same with a pause between saves, as scrape tasks have (each fetches its channel
    // from the network first): the background checkpoint of one save ends before the next.
    let (mut paced, mut longest) = (Vec::new(), 0);
    for k in 0..20 {
        let c = (k * 43 + 11) % channels;
        let batch = channel(c, 4, now);
        std::thread::sleep(PAUSE);
        let t = Instant::now();
        store.save_blocking(None, &batch).expect("save");
        paced.push(t.elapsed());
        longest = longest.max(wal_len());
    }
    println!(
        "save 500-video channel scrapes {} ms apart over {total}: changed views median {} p95 {}; WAL file at most {:.1} MB",
        PAUSE.as_millis(),
        ms(pct(paced.clone(), 0.5)),
        ms(pct(paced, 0.95)),
        longest as f64 / (1024.0 * 1024.0)
    );
    // What those saves write: WAL frames (pages) per save, counted on a side connection
    // that empties the WAL before each save and reads its length after (SQLite starts the
    // WAL over at the first write after a complete checkpoint).
    let side = rusqlite::Connection::open(dir.path().join("list.db")).expect("side connection");
    // The store's checkpoint thread may hold SQLite's checkpoint lock (the answer is then -1
    // frames): try again until this checkpoint runs.
    let frames = |mode: &str| -> i64 {
        loop {
            let n: i64 = side
                .query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| r.get(1))
                .expect("checkpoint");
            if n >= 0 {
                return n;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
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
