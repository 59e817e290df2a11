//! Online backup with SQLite's backup API: one step under a read transaction, so the copy is
//! a consistent snapshot while workers keep writing (WAL readers block no writer). The copy
//! is written into a new (or empty) file, checked with `integrity_check`, switched to a
//! self-contained rollback-journal file and synced. Where that file goes afterwards (renamed
//! over a target, streamed to stdout or a FIFO) is the caller's decision: the CLI's output
//! rules live in one place there, not here.

pub use prismq_domain::ports::upkeep::BackupReport;
use rusqlite::backup::{Backup, StepResult};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{create_owner_only, sql, OpsError};
use crate::error::map_err;
use crate::SqliteStore;

/// Removes a partial copy (and any journal beside it) unless disarmed.
struct Partial(Option<PathBuf>);

impl Drop for Partial {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            for suffix in ["", "-journal", "-wal", "-shm"] {
                let mut q = p.clone().into_os_string();
                q.push(suffix);
                let _ = std::fs::remove_file(PathBuf::from(q));
            }
        }
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Copies the live database into `out`, which must be a new path (created readable by its
/// owner only) or an empty regular file the caller created (a temporary file). On failure
/// the partial copy and its journal are removed.
///
/// # Errors
/// `Exists` when `out` is anything but a new path or an empty regular file; `Invalid` when
/// `out` is the database itself; `Io` for file errors; `BackupCorrupt` when the copy fails
/// its integrity check (it is deleted); a port error (`Busy` after the busy timeout) from
/// the source.
pub fn backup(store: &SqliteStore, out: &Path) -> Result<BackupReport, OpsError> {
    let started = Instant::now();
    if same_file(out, &store.options().path) {
        return Err(OpsError::Invalid {
            option: "--out",
            problem: format!(
                "{} is the database itself; choose another file",
                out.display()
            ),
        });
    }
    match std::fs::symlink_metadata(out) {
        Ok(m) if m.is_file() && m.len() == 0 => {}
        Ok(_) => {
            return Err(OpsError::Exists {
                path: out.to_path_buf(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
                crate::connection::create_private_dirs(dir)
                    .map_err(|e| OpsError::io("creating directory", dir, e))?;
            }
            create_owner_only(out).map_err(|e| OpsError::io("creating", out, e))?;
        }
        Err(e) => return Err(OpsError::io("reading", out, e)),
    }
    let mut partial = Partial(Some(out.to_path_buf()));
    let mut dest = Connection::open(out).map_err(sql)?;
    copy_into(store, &mut dest)?;
    let pages = verify(&dest, out)?;
    dest.close().map_err(|(_, e)| sql(e))?;
    std::fs::File::open(out)
        .and_then(|f| f.sync_all())
        .map_err(|e| OpsError::io("syncing", out, e))?;
    partial.0 = None;
    let bytes = std::fs::metadata(out)
        .map_err(|e| OpsError::io("reading", out, e))?
        .len();
    Ok(BackupReport {
        path: out.to_path_buf(),
        bytes,
        pages,
        integrity: "ok".into(),
        millis: started.elapsed().as_secs_f64() * 1000.0,
    })
}

/// Copies every page in one step (a consistent snapshot), retrying while the source is
/// locked, up to the store's busy timeout.
fn copy_into(store: &SqliteStore, dest: &mut Connection) -> Result<(), OpsError> {
    let deadline = Instant::now() + store.options().busy_timeout;
    store
        .with_connection(|src| {
            let backup = Backup::new(src, dest).map_err(map_err)?;
            loop {
                match backup.step(-1).map_err(map_err)? {
                    StepResult::Done => return Ok(()),
                    StepResult::More => {}
                    StepResult::Busy | StepResult::Locked => {
                        if Instant::now() >= deadline {
                            return Err(prismq_domain::PortError::Busy(
                                "the database stayed locked during the backup; try again".into(),
                            ));
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    _ => {}
                }
            }
        })
        .map_err(OpsError::from)
}

/// Runs `integrity_check` on the copy and makes it a single self-contained file.
fn verify(dest: &Connection, tmp: &Path) -> Result<i64, OpsError> {
    let rows: Vec<String> = dest
        .prepare("PRAGMA integrity_check")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(sql)?;
    if rows.len() != 1 || rows[0] != "ok" {
        return Err(OpsError::BackupCorrupt {
            path: tmp.to_path_buf(),
            detail: rows.first().cloned().unwrap_or_else(|| "no answer".into()),
        });
    }
    let _mode: String = dest
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .map_err(sql)?;
    dest.query_row("PRAGMA page_count", [], |r| r.get(0))
        .map_err(sql)
}
