//! The floor a queue on one SQLite file is measured against: a minimal bare rusqlite loop on
//! a minimal table (id, type, priority, payload, status and three times, one partial claim
//! index), claiming with one autocommit `UPDATE … WHERE id = (SELECT … LIMIT 1) RETURNING`
//! and completing with one `UPDATE`, in WAL with synchronous NORMAL. Shared by the storage
//! and runtime benches (included by path), so both compare against the same loop.

#![allow(dead_code)]

use rusqlite::{params, Connection};
use std::path::Path;
use std::time::{Duration, Instant};

const SCHEMA: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
    CREATE TABLE IF NOT EXISTS q (id INTEGER PRIMARY KEY, type TEXT NOT NULL,
        priority INTEGER NOT NULL, payload TEXT NOT NULL, status TEXT NOT NULL,
        run_after INTEGER NOT NULL, lease_expires_at INTEGER, finished_at INTEGER);
    CREATE INDEX IF NOT EXISTS ix_q_claim ON q (type, run_after) WHERE status = 'queued';";

/// The claim: the oldest eligible queued task of one type (FIFO), one autocommit statement.
pub const CLAIM: &str = "UPDATE q SET status = 'claimed', lease_expires_at = ?3
    WHERE id = (SELECT id FROM q WHERE status = 'queued' AND type = ?1 AND run_after <= ?2
                ORDER BY run_after, id LIMIT 1)
    RETURNING id";
/// The completion: one autocommit statement.
pub const COMPLETE: &str =
    "UPDATE q SET status = 'completed', finished_at = ?2, lease_expires_at = NULL WHERE id = ?1";

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// A connection to the minimal table at `path` (created if missing), as the bare loop opens it.
pub fn connect(path: &Path) -> Connection {
    connect_via(path, None)
}

/// [`connect`] through the VFS named `vfs` (SQLite's default for `None`).
pub fn connect_via(path: &Path, vfs: Option<&str>) -> Connection {
    let c = match vfs {
        None => Connection::open(path),
        Some(vfs) => Connection::open_with_flags_and_vfs(path, rusqlite::OpenFlags::default(), vfs),
    }
    .expect("open the minimal table");
    c.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    c.execute_batch(SCHEMA).expect("minimal schema");
    c
}

/// Inserts `n` queued tasks of type `task_type` with `payload(i)` in transactions of 1,000
/// rows; returns how long it took.
pub fn fill(path: &Path, n: usize, task_type: &str, payload: impl Fn(usize) -> String) -> Load {
    let mut c = connect(path);
    let start = Instant::now();
    let mut writes = Duration::ZERO;
    let now = now_ms();
    for first in (0..n).step_by(1000) {
        let batch: Vec<(i64, String)> = (first..(first + 1000).min(n))
            .map(|i| ((i % 10) as i64 + 1, payload(i)))
            .collect();
        let clock = Instant::now();
        let tx = c.transaction().expect("begin");
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO q (type, priority, payload, status, run_after) VALUES (?1, ?2, ?3, 'queued', ?4)",
                )
                .expect("prepare");
            for (priority, payload) in &batch {
                st.execute(params![task_type, priority, payload, now])
                    .expect("insert");
            }
        }
        tx.commit().expect("commit");
        writes += clock.elapsed();
    }
    Load {
        total: start.elapsed(),
        writes,
    }
}

/// How long a load in batches of 1,000 took: the whole loop, and the batches' writes alone
/// (the inserts and commits, without building each batch's input first: the bare loop's
/// strings, the store's `NewTask`s, whose params are parsed from the same JSON text).
#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub total: Duration,
    pub writes: Duration,
}

/// One claim on `c`: the claimed id, or `None` when nothing is eligible.
pub fn claim(c: &Connection, task_type: &str) -> Option<i64> {
    let now = now_ms();
    c.prepare_cached(CLAIM)
        .expect("prepare")
        .query_row(params![task_type, now, now + 300_000], |r| r.get(0))
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })
        .expect("claim")
}

/// One completion on `c`.
pub fn complete(c: &Connection, id: i64) {
    c.prepare_cached(COMPLETE)
        .expect("prepare")
        .execute(params![id, now_ms()])
        .expect("complete");
}

/// Drains every queued task of `task_type` with `threads` threads, each on its own
/// connection; returns tasks/s and checks that each task was taken once.
pub fn drain(path: &Path, threads: usize, task_type: &str, expected: usize) -> f64 {
    drain_via(path, threads, task_type, expected, None)
}

/// [`drain`] with each thread's connection through the VFS named `vfs`.
pub fn drain_via(
    path: &Path,
    threads: usize,
    task_type: &str,
    expected: usize,
    vfs: Option<&'static str>,
) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let path = path.to_path_buf();
            let task_type = task_type.to_owned();
            std::thread::spawn(move || {
                let c = connect_via(&path, vfs);
                let mut n = 0usize;
                while let Some(id) = claim(&c, &task_type) {
                    complete(&c, id);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let done: usize = handles.into_iter().map(|h| h.join().expect("join")).sum();
    let rate = done as f64 / start.elapsed().as_secs_f64();
    assert_eq!(done, expected, "the bare loop took every task once");
    let c = connect(path);
    let left: i64 = c
        .query_row(
            "SELECT count(*) FROM q WHERE status <> 'completed'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(left, 0);
    rate
}
