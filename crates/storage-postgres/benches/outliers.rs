//! Outlier-score benchmarks on PostgreSQL (issue 21's figures, never timed tests), the same
//! cases as the SQLite adapter's `outliers` bench: a channel scrape of 500 videos saved
//! again and again alone in the schema (views changed each round, so the baselines and
//! scores move), the same save in a table of `PRISMQ_BENCH_RESULTS` videos (default
//! 1,000,000, in channels of 500), and `results list --order outlier --limit 50` over them.
//!
//! Run: `source scripts/services/postgres.sh && cargo bench -p prismq-storage-postgres
//! --bench outliers`. The large table is written with plain SQL (`generate_series`: rows
//! as a save of the channel writes them, one snapshot and one sighting each, a score
//! spread like the SQLite bench's), since a million saves through the store would take
//! most of an hour; each measured channel is first saved once through the store, so its
//! values, scores and baselines are the store's own. Figures are medians and 95th
//! percentiles on a fresh schema.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prismq_domain::outlier::VideoFormat;
use prismq_domain::ports::{Clock, ResultOrder, ResultQuery, ResultStore, SystemClock};
use prismq_domain::{ContentItem, Timestamp};
use prismq_storage_postgres::{PostgresOptions, PostgresStore};
use prismq_testkit::fixtures::channel_scrape;

const CHANNEL_VIDEOS: usize = 500;
const SAVE_ROUNDS: usize = 30;
const QUERIES: usize = 200;
/// Channels of the large table saved (changed, then unchanged) for its figures.
const SAMPLES: usize = 40;

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

async fn open(url: &str, tag: &str) -> PostgresStore {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let schema = format!("bench_{tag}_{}_{nanos}", std::process::id());
    PostgresStore::open(
        PostgresOptions::new(url).with_schema(schema),
        Arc::new(SystemClock) as Arc<dyn Clock>,
    )
    .await
    .expect("open PostgreSQL")
}

/// Writes `channels` channels of 500 videos with plain SQL, as a save of each would: the
/// row (one row in 50 with ten times the views, one in ten a Short, published a day apart
/// from 8 days ago), one snapshot and one sighting; the score is spread as the SQLite
/// bench's saves leave it (views over the channel's usual views, minus one).
async fn seed(store: &PostgresStore, channels: usize, now: i64) {
    let c = store.connection().await.expect("connection");
    let now_ms = now * 1_000;
    let step = 10_000;
    let rows = (channels * CHANNEL_VIDEOS) as i64;
    let mut from = 0_i64;
    while from < rows {
        let to = (from + step).min(rows);
        c.execute(
            "INSERT INTO results (platform, source_id, title, tags, channel, channel_id, published_at,
               views, extra, first_seen_at, last_seen_at, first_views, first_metrics_at, metrics_at,
               video_format, outlier_score, outlier_basis, outlier_baseline, outlier_sample,
               outlier_views, last_source)
             SELECT 'youtube', 'c' || lpad((n / 500)::text, 5, '0') || 'v' || lpad((n % 500)::text, 3, '0'),
               'bench video', '[]'::jsonb, 'Bench channel ' || (n / 500), 'UCbench' || lpad((n / 500)::text, 5, '0'),
               $3 - 86400000 * (8 + n % 500), v, jsonb_build_object('is_short', n % 10 = 0), $3, $3, v, $3, $3,
               CASE WHEN n % 10 = 0 THEN 'short' ELSE 'long' END, v / 10000.0 - 1, 'total', 10000, 50, v,
               'youtube_channel'
             FROM (SELECT n, CASE WHEN (n * 2654435761) % 50 = 0 THEN 10 ELSE 1 END
                               * (5000 + (n * 40503) % 10000) AS v
                   FROM generate_series($1::bigint, $2::bigint - 1) AS n) s",
            &[&from, &to, &now_ms],
        )
        .await
        .expect("seed results");
        from = to;
    }
    c.batch_execute(
        "INSERT INTO result_metrics (result_id, captured_at, views) SELECT id, first_seen_at, views FROM results;
         INSERT INTO result_sightings (result_id, source, seen_at) SELECT id, last_source, first_seen_at FROM results;",
    )
    .await
    .expect("seed snapshots and sightings");
    // Vacuumed, as a table long in use is: otherwise autovacuum's first pass over the
    // million new rows (its insert threshold) can run during the measured saves.
    for table in ["results", "result_metrics", "result_sightings"] {
        c.batch_execute(&format!("VACUUM (ANALYZE) {table}"))
            .await
            .expect("vacuum the seeded tables");
    }
}

fn main() {
    let Ok(url) = std::env::var("PRISMQ_TEST_POSTGRES_URL") else {
        eprintln!(
            "PRISMQ_TEST_POSTGRES_URL is not set: run `source scripts/services/postgres.sh` first"
        );
        std::process::exit(2);
    };
    let total: usize = std::env::var("PRISMQ_BENCH_RESULTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let now = Timestamp::now().as_second();

        // 1. A channel scrape of 500 videos saved again and again, alone in the schema.
        let store = open(&url, "save").await;
        let mut times = Vec::new();
        for round in 0..SAVE_ROUNDS as u64 {
            let batch = channel(0, round, now);
            let t = Instant::now();
            store.save(None, &batch).await.expect("save");
            times.push(t.elapsed());
        }
        let first = times[0];
        let rest = times[1..].to_vec();
        println!(
            "PostgreSQL: save 500-video channel scrape + rescore: first (inserts) {}, then median {} p95 {} (rounds 2-{SAVE_ROUNDS})",
            ms(first),
            ms(pct(rest.clone(), 0.5)),
            ms(pct(rest, 0.95))
        );

        // 2. The same save in a table of `total` videos, channels spread over it.
        let store = open(&url, "list").await;
        let channels = total.div_ceil(CHANNEL_VIDEOS);
        let t = Instant::now();
        seed(&store, channels, now).await;
        println!(
            "PostgreSQL: seeded {total} videos in {channels} channels with SQL in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let (mut times, mut unchanged) = (Vec::new(), Vec::new());
        for k in 0..SAMPLES {
            let c = (k * 97) % channels;
            store
                .save(None, &channel(c, 0, now))
                .await
                .expect("first save");
            let batch = channel(c, 1, now);
            let t = Instant::now();
            store.save(None, &batch).await.expect("save");
            times.push(t.elapsed());
            let t = Instant::now();
            store.save(None, &batch).await.expect("save");
            unchanged.push(t.elapsed());
        }
        println!(
            "PostgreSQL: save 500-video channel scrape + rescore over {total}: changed views median {} p95 {}; unchanged median {} p95 {}",
            ms(pct(times.clone(), 0.5)),
            ms(pct(times, 0.95)),
            ms(pct(unchanged.clone(), 0.5)),
            ms(pct(unchanged, 0.95))
        );

        // 3. The listing over them.
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
        ];
        for (name, q) in cases {
            let mut times = Vec::new();
            for _ in 0..QUERIES {
                let t = Instant::now();
                let rows = store.query(&q).await.expect("query");
                times.push(t.elapsed());
                assert_eq!(rows.len(), 50);
            }
            println!(
                "PostgreSQL: results list {name} over {total}: median {} p95 {}",
                ms(pct(times.clone(), 0.5)),
                ms(pct(times, 0.95))
            );
        }
    });
}
