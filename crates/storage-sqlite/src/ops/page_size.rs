//! Changing the page size of an existing queue file in place: SQLite fixes a file's page
//! size with its first table, and only a `VACUUM` outside WAL mode rewrites it, so the file
//! is taken exclusively, switched to a rollback journal, vacuumed with the new size and put
//! back in WAL mode. Refused, with nothing changed, while another connection has it open.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OpenFlags};
use serde::Serialize;

use prismq_domain::PortError;

use super::OpsError;
use crate::PageSize;

/// What [`set_page_size`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PageSizeReport {
    /// The file.
    pub path: PathBuf,
    /// Its page size before, in bytes.
    pub before: u32,
    /// Its page size now.
    pub after: u32,
    /// Whether the file was rewritten (false when it already had the size asked for).
    pub changed: bool,
    /// The file's size before the rewrite, in bytes (its WAL folded in).
    pub bytes_before: u64,
    /// The file's size after.
    pub bytes_after: u64,
    /// How long the rewrite took, in seconds.
    pub seconds: f64,
}

/// The message for a file some other connection holds.
fn in_use(path: &Path) -> OpsError {
    OpsError::InUse {
        path: path.to_path_buf(),
    }
}

fn port(e: rusqlite::Error) -> OpsError {
    OpsError::Port(PortError::Unavailable(e.to_string()))
}

/// The error of a `VACUUM` that could not write its copy (a full disk, a file size limit:
/// SQLite says "full" for ENOSPC and an I/O error for EFBIG). SQLite rolled the file back
/// from its journal, or rolls it back at the next open.
fn rewrite_failed(e: rusqlite::Error) -> OpsError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull | ErrorCode::SystemIoFailure) => {
            OpsError::Port(PortError::Unavailable(format!(
                "rewriting the file failed ({e}): it needs free disk about twice the file's size, and no file size limit below that; the file is as it was"
            )))
        }
        _ => port(e),
    }
}

/// Whether `e` is SQLite saying another connection holds a lock.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// The text `pragma` answers.
fn pragma_text(c: &Connection, pragma: &str) -> rusqlite::Result<String> {
    c.query_row(pragma, [], |r| r.get::<_, String>(0))
}

/// A connection to the existing file at `path` that waits up to `wait` for a lock another
/// connection holds (SQLite's busy handler) before answering busy.
fn connect(path: &Path, wait: Duration) -> Result<Connection, OpsError> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(port)?;
    c.busy_timeout(wait).map_err(port)?;
    Ok(c)
}

fn page_size_of(c: &Connection) -> rusqlite::Result<u32> {
    c.query_row("PRAGMA page_size", [], |r| r.get(0))
}

fn file_len(path: &Path) -> Result<u64, OpsError> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| OpsError::io("read the size of", path, e))
}

/// Rewrites the SQLite queue at `path` with `size`-byte pages, keeping every row: takes the
/// file exclusively (waiting up to `wait` for a connection that is finishing), switches it
/// to a rollback journal, sets the page size, `VACUUM`s and switches back to WAL, then checks
/// the file (`quick_check`) on a connection of its own. A crash midway leaves the journal
/// SQLite rolls back at the next open: the file as it was, which the store puts back in WAL
/// mode. Needs free disk about twice the file's size (the new copy and the journal).
///
/// # Errors
/// `InUse` when another connection (a worker, `prismq serve`, `sqlite3`) has the file open,
/// and nothing is changed; `Io` when the file is missing; a port error from SQLite (a full
/// disk among them) or a failed check.
pub fn set_page_size(
    path: &Path,
    size: PageSize,
    wait: Duration,
) -> Result<PageSizeReport, OpsError> {
    // No create: a missing file is an error, not a new empty database.
    file_len(path)?;
    let c = connect(path, wait)?;
    let before = page_size_of(&c).map_err(port)?;
    if before == size.get() {
        return Ok(PageSizeReport {
            path: path.to_path_buf(),
            before,
            after: before,
            changed: false,
            bytes_before: file_len(path)?,
            bytes_after: file_len(path)?,
            seconds: 0.0,
        });
    }
    let started = Instant::now();
    // Exclusive from the first lock taken until the connection closes, so no other
    // connection opens the file between the steps below.
    c.execute_batch("PRAGMA locking_mode = EXCLUSIVE")
        .map_err(port)?;
    // Leaving WAL mode needs the only connection to the file: another one open keeps it.
    match pragma_text(&c, "PRAGMA journal_mode = DELETE") {
        Ok(mode) if mode.eq_ignore_ascii_case("delete") => {}
        Ok(_) => return Err(in_use(path)),
        Err(e) if is_busy(&e) => return Err(in_use(path)),
        Err(e) => return Err(port(e)),
    }
    // Out of WAL mode, the WAL's pages are in the file.
    let bytes_before = file_len(path)?;
    let rewrite = c.execute_batch(&format!("PRAGMA page_size = {}; VACUUM;", size.get()));
    // Back to WAL whether or not the rewrite worked: a failed VACUUM leaves the file as it was.
    let back = pragma_text(&c, "PRAGMA journal_mode = WAL");
    rewrite.map_err(rewrite_failed)?;
    match back {
        Ok(mode) if mode.eq_ignore_ascii_case("wal") => {}
        Ok(mode) => {
            return Err(OpsError::Port(PortError::Unavailable(format!(
                "the file was rewritten but stayed in journal mode {mode}; the next open of the queue switches it to WAL"
            ))))
        }
        Err(e) => return Err(port(e)),
    }
    drop(c);
    // Checked as any other connection will see it.
    let c = connect(path, wait)?;
    let after = page_size_of(&c).map_err(port)?;
    let check = pragma_text(&c, "PRAGMA quick_check").map_err(port)?;
    if check != "ok" || after != size.get() {
        return Err(OpsError::Port(PortError::Unavailable(format!(
            "after the rewrite the file has {after}-byte pages and quick_check says {check:?}; restore a backup"
        ))));
    }
    let seconds = started.elapsed().as_secs_f64();
    drop(c);
    Ok(PageSizeReport {
        path: path.to_path_buf(),
        before,
        after,
        changed: true,
        bytes_before,
        bytes_after: file_len(path)?,
        seconds,
    })
}
