//! Counting the pages commits write, as WAL frames: shared by the `ports` bench (its
//! `pages` and `structures` parts) and `tests/task_write_pages.rs` (included by path).

#![allow(dead_code)]

use rusqlite::Connection;
use std::path::Path;

/// Pages written to the WAL (frames) since it was last emptied: its length past the 32-byte
/// header, in frames of one page and a 24-byte frame header. Read while a connection is
/// open (`c`, for the page size): the last connection to close checkpoints and deletes it.
pub fn wal_frames(db: &Path, c: &Connection) -> u64 {
    let page: i64 = c
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .expect("page size");
    let page = u64::try_from(page).expect("a page size");
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let len = std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0);
    len.saturating_sub(32) / (page + 24)
}

/// Copies every page into the file and truncates its WAL to nothing (no other connection
/// may be open), so the next writes start a WAL of their own.
pub fn empty_wal(db: &Path) {
    Connection::open(db)
        .and_then(|c| {
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .map(|busy| assert_eq!(busy, 0, "the checkpoint ran"))
        .expect("checkpoint");
}
