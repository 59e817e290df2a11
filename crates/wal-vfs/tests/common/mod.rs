//! Helpers for the shim's tests: connections on real files with and without it, and a
//! copy of a database's files as a crash would leave them.

#![allow(dead_code)]

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// A database file in a directory of its own, and a second directory for copies of it as a
/// crash would leave it.
pub struct Scratch {
    _dir: TempDir,
    crash: TempDir,
    pub path: PathBuf,
}

impl Scratch {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a directory");
        let path = dir.path().join("q.db");
        Scratch {
            _dir: dir,
            crash: tempfile::tempdir().expect("a directory for crash copies"),
            path,
        }
    }

    /// A writer through the shim ([`shimmed`]) that has run `schema`.
    pub fn writer(&self, synchronous: &str, schema: &str) -> Connection {
        let conn = shimmed(&self.path, synchronous);
        conn.execute_batch(schema).expect("schema");
        conn
    }

    /// The file as it is, on the default VFS, and a copy as a crash now would leave it.
    pub fn now_and_after_a_crash(&self) -> [Connection; 2] {
        [
            plain(&self.path),
            plain(&crash_copy(&self.path, self.crash.path())),
        ]
    }
}

/// The two integers `sql` returns in its one row.
pub fn two(conn: &Connection, sql: &str) -> (i64, i64) {
    conn.query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect(sql)
}

/// A read-write connection to `path` through the shim, in WAL mode, no autocheckpoint (so
/// the WAL keeps every frame until the test says otherwise), `synchronous` as given.
pub fn shimmed(path: &Path, synchronous: &str) -> Connection {
    let name = prismq_wal_vfs::register().expect("register");
    let conn = Connection::open_with_flags_and_vfs(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        name,
    )
    .expect("open through the shim");
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; PRAGMA wal_autocheckpoint = 0;"
    ))
    .expect("pragmas");
    conn
}

/// A connection on SQLite's default VFS.
pub fn plain(path: &Path) -> Connection {
    Connection::open(path).expect("open on the default VFS")
}

/// The file's `-wal` beside it.
pub fn wal_of(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}

/// Copies the database and its WAL (not the shared-memory index) into `dir`, as a power cut
/// or a killed process would leave them on disk: opening the copy runs SQLite's WAL
/// recovery, which keeps only the frames up to the last commit whose checksums chain.
pub fn crash_copy(path: &Path, dir: &Path) -> PathBuf {
    let to = dir.join("copy.db");
    for suffix in ["", "-wal", "-shm"] {
        let mut p = to.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    std::fs::copy(path, &to).expect("copy the database");
    if wal_of(path).exists() {
        std::fs::copy(wal_of(path), wal_of(&to)).expect("copy the WAL");
    }
    to
}

/// `PRAGMA integrity_check` is `ok`.
pub fn assert_intact(conn: &Connection) {
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok");
}

/// `n` bytes that differ with `seed`, so a stale page cannot pass for a fresh one.
pub fn blob(seed: i64, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (seed as usize).wrapping_mul(31).wrapping_add(i) as u8)
        .collect()
}
