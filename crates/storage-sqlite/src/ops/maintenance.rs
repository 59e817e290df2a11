//! Maintenance: WAL checkpoint; ANALYZE and `PRAGMA optimize`; and vacuum, incremental
//! when the file allows it, full on request.

use rusqlite::Connection;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

use prismq_domain::PortError;

use super::OpsError;
use crate::error::map_err;
use crate::SqliteStore;

/// What a WAL checkpoint did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointReport {
    /// True when readers kept part of the WAL from being copied back (run it again later).
    pub busy: bool,
    /// Frames in the WAL before the checkpoint.
    pub wal_frames: i64,
    /// Frames copied into the database.
    pub checkpointed_frames: i64,
    /// Size of the -wal file afterwards, in bytes (0 when truncated).
    pub wal_bytes_after: u64,
}

fn wal_path(store: &SqliteStore) -> PathBuf {
    let mut p = store.options().path.clone().into_os_string();
    p.push("-wal");
    PathBuf::from(p)
}

/// `PRAGMA wal_checkpoint(TRUNCATE)`: copies the WAL into the database and truncates it.
///
/// # Errors
/// A port error from the database.
pub fn checkpoint(store: &SqliteStore) -> Result<CheckpointReport, OpsError> {
    // The store's background checkpointer may hold the checkpoint lock for a moment (SQLite
    // answers busy at once then, without waiting): try again until the busy timeout.
    let deadline = Instant::now() + store.options().busy_timeout;
    let (busy, frames, done) = loop {
        let got = store.with_connection(|c| {
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(map_err)
        });
        match got {
            Ok((0, ..)) => break got?,
            Ok(_) | Err(prismq_domain::PortError::Busy(_)) if Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => break other?,
        }
    };
    Ok(CheckpointReport {
        busy: busy != 0,
        wal_frames: frames,
        checkpointed_frames: done,
        wal_bytes_after: std::fs::metadata(wal_path(store)).map_or(0, |m| m.len()),
    })
}

/// What [`optimize`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OptimizeReport {
    /// Time spent in ANALYZE, in milliseconds.
    pub analyze_millis: f64,
    /// Time spent in `PRAGMA optimize`, in milliseconds.
    pub optimize_millis: f64,
    /// Indexes with statistics afterwards.
    pub indexes_with_stats: i64,
}

/// `ANALYZE` then `PRAGMA optimize`: fresh planner statistics.
///
/// # Errors
/// A port error from the database.
pub fn optimize(store: &SqliteStore) -> Result<OptimizeReport, OpsError> {
    store
        .with_connection(|c| {
            let t = Instant::now();
            c.execute_batch("ANALYZE").map_err(map_err)?;
            let analyze = t.elapsed();
            let t = Instant::now();
            c.execute_batch("PRAGMA optimize").map_err(map_err)?;
            let optimize = t.elapsed();
            let n: i64 = c
                .query_row(
                    "SELECT count(DISTINCT idx) FROM sqlite_stat1 WHERE idx IS NOT NULL",
                    [],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            Ok(OptimizeReport {
                analyze_millis: analyze.as_secs_f64() * 1000.0,
                optimize_millis: optimize.as_secs_f64() * 1000.0,
                indexes_with_stats: n,
            })
        })
        .map_err(OpsError::from)
}

/// Which vacuum to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VacuumMode {
    /// `PRAGMA incremental_vacuum`: frees up to `pages` free pages (all when `None`) in
    /// short steps. Does nothing unless the file's auto_vacuum is INCREMENTAL.
    Incremental {
        /// Pages to free at most.
        pages: Option<u32>,
    },
    /// `VACUUM`, after switching auto_vacuum to INCREMENTAL so later incremental vacuums
    /// work: rewrites the whole file, needs free disk as large as the database, and holds
    /// the write lock throughout (workers wait).
    Full,
}

/// What a vacuum did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VacuumReport {
    /// `incremental` or `full`.
    pub mode: &'static str,
    /// False when nothing could be done (incremental on a file without auto_vacuum).
    pub ran: bool,
    /// auto_vacuum before: none, full or incremental.
    pub auto_vacuum_before: &'static str,
    /// auto_vacuum after.
    pub auto_vacuum_after: &'static str,
    /// Free pages before.
    pub free_pages_before: i64,
    /// Free pages after.
    pub free_pages_after: i64,
    /// Bytes returned to the filesystem.
    pub bytes_reclaimed: i64,
    /// What the operator should know (why nothing ran, what to run instead).
    pub note: String,
}

fn auto_vacuum_name(v: i64) -> &'static str {
    match v {
        0 => "none",
        1 => "full",
        2 => "incremental",
        _ => "unknown",
    }
}

fn pragma_i64(c: &Connection, name: &str) -> Result<i64, PortError> {
    c.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
        .map_err(map_err)
}

/// Reclaims free pages. Incremental mode on a file whose auto_vacuum is not INCREMENTAL
/// (PrismQ's schema does not set it) runs nothing and says so, with the space a full
/// vacuum would return.
///
/// # Errors
/// A port error from the database (a full vacuum needs the write lock and free disk space).
pub fn vacuum(store: &SqliteStore, mode: VacuumMode) -> Result<VacuumReport, OpsError> {
    store
        .with_connection(|c| {
            let page_size = pragma_i64(c, "page_size")?;
            let before_av = pragma_i64(c, "auto_vacuum")?;
            let free_before = pragma_i64(c, "freelist_count")?;
            let pages_before = pragma_i64(c, "page_count")?;
            let (mode_name, ran, note) = match mode {
                VacuumMode::Incremental { .. } if before_av != 2 => (
                    "incremental",
                    false,
                    format!(
                        "auto_vacuum is {} in this database, so an incremental vacuum cannot free anything; {free_before} free pages ({} KiB) are reusable by new rows. Run `prismq maintenance vacuum --full` once (workers wait while it rewrites the file) to reclaim them and switch the file to incremental vacuum",
                        auto_vacuum_name(before_av),
                        free_before * page_size / 1024
                    ),
                ),
                VacuumMode::Incremental { pages } => {
                    let n = pages.map_or(0, i64::from);
                    // Each step of the statement frees one page: step it to the end.
                    let mut stmt = c
                        .prepare(&format!("PRAGMA incremental_vacuum({n})"))
                        .map_err(map_err)?;
                    let mut rows = stmt.query([]).map_err(map_err)?;
                    while rows.next().map_err(map_err)?.is_some() {}
                    drop(rows);
                    drop(stmt);
                    // The file shrinks when the WAL is copied back.
                    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                        .map_err(map_err)?;
                    ("incremental", true, String::new())
                }
                VacuumMode::Full => {
                    c.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;").map_err(map_err)?;
                    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(map_err)?;
                    ("full", true, String::new())
                }
            };
            let pages_after = pragma_i64(c, "page_count")?;
            Ok(VacuumReport {
                mode: mode_name,
                ran,
                auto_vacuum_before: auto_vacuum_name(before_av),
                auto_vacuum_after: auto_vacuum_name(pragma_i64(c, "auto_vacuum")?),
                free_pages_before: free_before,
                free_pages_after: pragma_i64(c, "freelist_count")?,
                bytes_reclaimed: (pages_before - pages_after).max(0) * page_size,
                note,
            })
        })
        .map_err(OpsError::from)
}
