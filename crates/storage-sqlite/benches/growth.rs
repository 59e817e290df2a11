//! Growth-listing benchmark (issue 15's figure, never a timed test):
//! `results list --order growth --window W --limit 50` over many stored videos with ten
//! snapshots each, for every window, and with a first-seen filter.
//!
//! Run: `cargo bench -p prismq-storage-sqlite --bench growth`.
//! `PRISMQ_BENCH_PAGE_SIZE` sets the page size of the store's files (`common/page.rs`;
//! the store's default, 2048, otherwise). `PRISMQ_BENCH_RESULTS` sets
//! how many videos are stored (default 1,000,000). The rows, their ten daily snapshots and
//! their sightings (a channel scrape for all, a keyword search for one in 100, the trending
//! chart for one in 10,000) are written with plain SQL (saving ten rounds of a million
//! videos through the store would take an hour); every record is then listed in
//! `growth_pending`, as an upgrade leaves them, and the store's growth catch-up computes
//! each video's growth from that history, as a save would. Figures are medians and 95th
//! percentiles of 200 queries; `--source` is timed for a rare and a common kind, and the
//! rare one also walking the order's index as it did before.

#[path = "common/page.rs"]
mod page;

use std::sync::Arc;
use std::time::{Duration, Instant};

use prismq_domain::growth::GrowthWindow;
use prismq_domain::ports::{ResultOrder, ResultQuery, SystemClock};
use prismq_domain::Timestamp;
use prismq_storage_sqlite::{query_statements_with, SourcePlan, SqliteStore};

const QUERIES: usize = 200;
const SNAPSHOTS: i64 = 10;

fn pct(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1_000.0)
}

fn main() {
    println!("{}", page::describe());
    let total: i64 = std::env::var("PRISMQ_BENCH_RESULTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(
        page::options(&dir.path().join("growth.db")),
        Arc::new(SystemClock),
    )
    .expect("open");
    let now = Timestamp::now().as_millisecond();
    let day = 86_400_000_i64;
    let t = Instant::now();
    store
        .with_connection(|c| {
            let tx = c.unchecked_transaction().expect("tx");
            // Video i gains (i * 7919 % 5000) + 1 views a day; seen first ten days ago, one
            // snapshot a day since, the last one now.
            tx.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                 INSERT INTO results (id, platform, source_id, title, channel_id, views, likes, comments,
                    first_seen_at, last_seen_at, first_metrics_at, metrics_at, last_source)
                 SELECT i, 'youtube', printf('v%07d', i), 'bench video', printf('UC%05d', i % 2000),
                    1000 + ((i * 7919) % 5000 + 1) * (?2 - 1), NULL, NULL, ?3, ?4, ?3, ?4, 'youtube_channel' FROM n",
                rusqlite::params![total, SNAPSHOTS, now - (SNAPSHOTS - 1) * day, now],
            )
            .expect("results");
            tx.execute(
                "WITH RECURSIVE d(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM d WHERE k < ?1 - 1)
                 INSERT INTO result_metrics (result_id, captured_at, views)
                 SELECT r.id, ?2 + d.k * ?3, 1000 + ((r.id * 7919) % 5000 + 1) * d.k
                 FROM results r, d ORDER BY r.id, d.k",
                rusqlite::params![SNAPSHOTS, now - (SNAPSHOTS - 1) * day, day],
            )
            .expect("snapshots");
            // Every video found by a channel scrape; one in 100 also by a keyword search
            // (10,000 at a million: a common kind, walked), one in 10,000 by the trending
            // chart (100: a rare kind, read from its sightings).
            tx.execute(
                "INSERT INTO result_sightings (result_id, source, task_id, rank, seen_at)
                 SELECT id, 'youtube_channel', NULL, NULL, ?1 FROM results
                 UNION ALL SELECT id, 'youtube_keyword', NULL, NULL, ?1 FROM results WHERE id % 100 = 0
                 UNION ALL SELECT id, 'youtube_trending', NULL, NULL, ?1 FROM results WHERE id % 10000 = 0",
                [now],
            )
            .expect("sightings");
            // As an upgrade leaves them: every record waiting for its growth.
            tx.execute("INSERT INTO growth_pending (result_id) SELECT id FROM results", [])
                .expect("pending");
            tx.commit().expect("commit");
            Ok(())
        })
        .expect("seed");
    let seeded = t.elapsed();
    let t = Instant::now();
    let computed = store.catch_up_growth_blocking().expect("catch up");
    println!(
        "seeded {total} videos x {SNAPSHOTS} snapshots in {:.1} s; the growth catch-up (as after an upgrade) computed the growth of {computed} in {:.1} s",
        seeded.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
    let mut cases: Vec<(String, ResultQuery)> = GrowthWindow::ALL
        .iter()
        .map(|w| {
            (
                format!("--order growth --window {w} --limit 50"),
                ResultQuery {
                    order: ResultOrder::Growth,
                    window: *w,
                    limit: 50,
                    ..ResultQuery::default()
                },
            )
        })
        .collect();
    cases.push((
        "--order growth --window 24h --limit 50 --new-since 30d".into(),
        ResultQuery {
            order: ResultOrder::Growth,
            new_since: Timestamp::from_millisecond(now - 30 * day).ok(),
            limit: 50,
            ..ResultQuery::default()
        },
    ));
    for (name, source) in [
        ("youtube_trending", "a rare kind, 1 video in 10,000"),
        ("youtube_keyword", "a common kind, 1 video in 100"),
    ] {
        cases.push((
            format!("--order growth --window 24h --limit 50 --source {name} ({source})"),
            ResultQuery {
                order: ResultOrder::Growth,
                source: Some(name.into()),
                limit: 50,
                ..ResultQuery::default()
            },
        ));
    }
    for (name, q) in cases {
        let mut times = Vec::new();
        for _ in 0..QUERIES {
            let t = Instant::now();
            let rows = store.query_blocking(&q).expect("query");
            times.push(t.elapsed());
            // The rare kind has fewer than 50 videos below 500,000.
            let want = if q.source.as_deref() == Some("youtube_trending") {
                (total / 10_000).min(50) as usize
            } else {
                50
            };
            assert_eq!(rows.len(), want);
            assert!(rows[0].growth.get(q.window).is_some());
        }
        println!(
            "results list {name} over {total}: median {} p95 {}",
            ms(pct(times.clone(), 0.5)),
            ms(pct(times, 0.95))
        );
    }
    // The rare kind walked through the order's index as before (for comparison).
    let q = ResultQuery {
        order: ResultOrder::Growth,
        source: Some("youtube_trending".into()),
        limit: 50,
        ..ResultQuery::default()
    };
    let (sql, args) = query_statements_with(&q, SourcePlan::WalkOrder).swap_remove(0);
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let n = store
            .with_connection(|c| {
                let mut stmt = c.prepare_cached(&sql).expect("prepare");
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(args.iter()), |_| Ok(()))
                    .expect("query");
                Ok(rows.count())
            })
            .expect("walk");
        times.push(t.elapsed());
        assert_eq!(n, (total / 10_000).min(50) as usize);
    }
    println!(
        "the same rare --source page walking the growth index instead (5 runs): median {} max {}",
        ms(pct(times.clone(), 0.5)),
        ms(pct(times, 1.0))
    );
}
