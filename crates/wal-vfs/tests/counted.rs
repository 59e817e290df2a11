//! The shim's counters: a commit's frames reach the file in one write. One test in its own
//! binary, as the counters are the process's and other tests would move them.

mod common;

use common::{blob, plain, two, Scratch};
use prismq_wal_vfs::{counters, Counters, MAX_BUFFER};
use rusqlite::params;

fn since(before: Counters) -> Counters {
    let now = counters();
    Counters {
        kept: now.kept - before.kept,
        written: now.written - before.written,
        passed: now.passed - before.passed,
    }
}

/// Inserts rows `ids` of `bytes`-byte bodies into `t`, a statement each.
fn insert(writer: &rusqlite::Connection, ids: std::ops::RangeInclusive<i64>, bytes: usize) {
    for i in ids {
        writer
            .execute(
                "INSERT INTO t VALUES (?1, ?2, ?3)",
                params![i, (i * 7919) % 1000, blob(i, bytes)],
            )
            .unwrap();
    }
}

#[test]
fn commits_are_written_whole_and_large_transactions_in_bounded_pieces() {
    let db = Scratch::new();
    let writer = db.writer(
        "NORMAL",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, body BLOB NOT NULL);
         CREATE INDEX ix_n ON t (n);
         CREATE INDEX ix_len ON t (length(body));",
    );
    writer
        .execute("INSERT INTO t VALUES (0, 0, x'00')", [])
        .unwrap();

    // 200 commits of one row each: the row's page and a page of each index, at least three
    // frames, six writes asked for; one write made of them.
    let before = counters();
    insert(&writer, 1..=200, 300);
    let small = since(before);
    assert_eq!(small.written, 200, "one write a commit: {small:?}");
    assert_eq!(
        small.passed, 0,
        "every frame appended where the last ended: {small:?}"
    );
    assert!(
        small.kept >= 200 * 6,
        "three frames or more a commit: {small:?}"
    );

    // One transaction far past the buffer and the cache: pieces of at most MAX_BUFFER
    // (plus a frame) each, and pages written again in place passed through.
    writer
        .execute_batch("PRAGMA cache_size = 10; BEGIN")
        .unwrap();
    let before = counters();
    insert(&writer, 201..=3000, 2000);
    writer
        .execute("UPDATE t SET n = n + 1 WHERE id % 5 = 0", [])
        .unwrap();
    writer.execute_batch("COMMIT").unwrap();
    let large = since(before);
    let frame = 4096 + 24;
    let frames = large.kept / 2;
    let most_a_write = (MAX_BUFFER / frame + 1) as u64;
    assert!(
        large.written >= frames / most_a_write,
        "no write holds more than MAX_BUFFER and a frame: {large:?}"
    );
    assert!(large.written > 1, "{large:?}");
    assert!(
        large.passed > 0,
        "pages changed again after they were spilled are written in place: {large:?}"
    );

    let conn = plain(&db.path);
    assert_eq!(two(&conn, "SELECT count(*), max(id) FROM t"), (3001, 3000));
    common::assert_intact(&conn);
}
