//! Maintenance: WAL checkpoint; ANALYZE and `PRAGMA optimize`; and vacuum, incremental
//! when the file allows it, full on request.

pub use prismq_domain::ports::upkeep::{
    CheckpointReport, OptimizeReport, VacuumMode, VacuumReport,
};
use rusqlite::Connection;
use std::path::PathBuf;
use std::time::Instant;

use prismq_domain::PortError;

use super::OpsError;
use crate::error::map_err;
use crate::SqliteStore;

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
