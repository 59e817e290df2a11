//! The WAL under large writes: saves of about 2,000 pages each, back to back, keep the WAL
//! bounded (the checkpoint thread's passive checkpoints, the writer's truncation when the
//! thread finds them starved or past ~32 MB), and once they stop the space a long WAL took
//! is given back by the next write. Without the truncations the WAL reached 269 MB here.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prismq_domain::ports::SystemClock;
use prismq_domain::ContentItem;
use prismq_storage_sqlite::{SqliteOptions, SqliteStore};
use serde_json::json;

/// 500 videos of about 14 KB each (four pages), different in every round, so a save
/// rewrites about 2,000 pages.
fn heavy(round: u64) -> Vec<ContentItem> {
    (0..500)
        .map(|i| {
            let mut item = ContentItem::new("youtube_channel", format!("v{i:03}"), "heavy");
            let filler: String = format!("{round:08}{i:04}").repeat(1_200);
            item.extra.insert("filler".into(), json!(filler));
            item
        })
        .collect()
}

/// (WAL frames, frames copied into the database file) as another connection sees them.
fn wal(path: &Path) -> (i64, i64) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.query_row("PRAGMA wal_checkpoint(NOOP)", [], |r| {
        Ok((r.get(1)?, r.get(2)?))
    })
    .unwrap()
}

#[test]
fn writes_of_2000_pages_back_to_back_keep_the_wal_bounded_and_its_space_is_given_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let store = SqliteStore::open(SqliteOptions::new(&path), Arc::new(SystemClock)).unwrap();
    let wal_path = dir.path().join("q.db-wal");
    let wal_len = move || std::fs::metadata(&wal_path).map_or(0, |m| m.len());
    // Sampled throughout, not only between saves: a truncation hides how far it grew.
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (done, wal_len) = (done.clone(), wal_len.clone());
        std::thread::spawn(move || {
            let mut longest = 0;
            while !done.load(Ordering::Relaxed) {
                longest = longest.max(wal_len());
                std::thread::sleep(Duration::from_millis(1));
            }
            longest
        })
    };
    store.save_blocking(None, &heavy(0)).unwrap();
    let (frames, _) = wal(&path);
    let mut most_frames = 0;
    for round in 1..=30 {
        store.save_blocking(None, &heavy(round)).unwrap();
        most_frames = most_frames.max(wal(&path).0);
    }
    done.store(true, Ordering::Relaxed);
    let longest = sampler.join().unwrap().max(wal_len());
    assert!(
        frames >= 1_500,
        "a save wrote only {frames} frames; the test needs large writes"
    );
    assert!(
        longest <= 48 << 20,
        "the WAL file grew to {longest} bytes ({most_frames} frames at most after a save)"
    );

    // Once the checkpoint thread has copied everything, the next write starts the WAL over
    // and cuts the file down to the writer's journal size limit (8 MiB).
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let (frames, copied) = wal(&path);
        if copied == frames {
            break;
        }
        assert!(
            Instant::now() < until,
            "the WAL was never fully copied ({copied} of {frames})"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut one = ContentItem::new("youtube_channel", "small", "small");
    one.metrics.views = Some(1);
    store.save_blocking(None, &[one]).unwrap();
    assert!(
        wal_len() <= 8 << 20,
        "the WAL file kept {} bytes after it started over",
        wal_len()
    );
}
