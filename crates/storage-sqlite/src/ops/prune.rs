//! Pruning: finished tasks, old log entries and old result sightings deleted in small
//! batches (each its own short transaction, so workers are never blocked for long), with an
//! optional JSONL archive written and synced before anything is deleted.

pub use prismq_domain::ports::upkeep::{PruneOptions, PruneReport};
use rusqlite::{params, Connection, Transaction};
use serde::Serialize;
use serde_json::{json, Value};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use prismq_domain::{PortError, TaskStatus, Timestamp};

use super::OpsError;
use crate::codec::{task_from_row, TASK_COLUMNS};
use crate::error::map_err;
use crate::SqliteStore;

/// Finished tasks of one status older than a cutoff, oldest first (one index range).
const PRUNE_TASKS: &str = "SELECT id FROM task_queue INDEXED BY ix_queue_finished
    WHERE status = ?1 AND finished_at < ?2 ORDER BY finished_at LIMIT ?3";
/// The next slice of the log in key order (a keyset walk on the (task_id, seq) primary
/// key: each row is read once over a whole prune).
const LOG_SLICE: &str = "SELECT task_id, seq, at FROM task_logs
    WHERE (task_id, seq) > (?1, ?2) ORDER BY task_id, seq LIMIT ?3";
/// Log entries named by a JSON array of [task_id, seq] pairs.
const LOG_KEYS: &str =
    "(task_id, seq) IN (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?1))";

/// The next records in id order (a keyset walk on the primary key): the span of records a
/// batch of the sightings prune covers.
const RECORD_SLICE: &str = "SELECT id FROM results WHERE id > ?1 ORDER BY id LIMIT ?2";
/// The sightings of the records `?1 < result_id <= ?2` made before `?3`, except each
/// record's first and latest by each kind of source (ties by id), with the record's key:
/// what one batch of the sightings prune deletes. Reads those records' sightings through
/// `ix_result_sightings_result`.
pub const PRUNABLE_SIGHTINGS: &str = "SELECT s.id, r.platform, r.source_id, s.source, s.task_id, s.rank, s.seen_at
    FROM (SELECT id, result_id, source, task_id, rank, seen_at,
                 row_number() OVER (PARTITION BY result_id, source ORDER BY seen_at, id) AS from_first,
                 row_number() OVER (PARTITION BY result_id, source ORDER BY seen_at DESC, id DESC) AS from_last
          FROM result_sightings WHERE result_id > ?1 AND result_id <= ?2) s
    JOIN results r ON r.id = s.result_id
    WHERE s.seen_at < ?3 AND s.from_first > 1 AND s.from_last > 1
    ORDER BY s.id";

/// The queries prune runs, for the index-usage check.
pub const PRUNE_QUERIES: &[(&str, &str)] = &[
    ("prune finished tasks", PRUNE_TASKS),
    ("prune log slice", LOG_SLICE),
    ("prune record slice", RECORD_SLICE),
];

#[derive(Serialize)]
struct LogLine {
    task_id: i64,
    seq: i64,
    at: String,
    level: String,
    event: String,
    message: String,
    details: Value,
}

fn iso(ms: i64) -> String {
    Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

/// Log entries of `source` (`task_logs`, or `task_log_entries` to include the entries a
/// task row holds) matching `filter`.
fn logs_where(
    tx: &Transaction<'_>,
    source: &str,
    filter: &str,
    arg: &str,
) -> rusqlite::Result<Vec<LogLine>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT task_id, seq, at, level, event, message, details FROM {source} WHERE {filter} ORDER BY task_id, seq"
    ))?;
    let rows = stmt.query_map([arg], |r| {
        let details: Option<String> = r.get(6)?;
        Ok(LogLine {
            task_id: r.get(0)?,
            seq: r.get(1)?,
            at: iso(r.get(2)?),
            level: r.get(3)?,
            event: r.get(4)?,
            message: r.get(5)?,
            details: details
                .and_then(|d| serde_json::from_str(&d).ok())
                .unwrap_or(Value::Null),
        })
    })?;
    rows.collect()
}

struct Archive {
    file: File,
    path: PathBuf,
}

impl Archive {
    fn open(path: &Path) -> Result<Archive, OpsError> {
        let mut opts = std::fs::OpenOptions::new();
        opts.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts
            .open(path)
            .map_err(|e| OpsError::io("opening the archive", path, e))?;
        Ok(Archive {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Appends and syncs; an error means nothing of this batch is deleted.
    fn append(&mut self, lines: &str) -> Result<(), PortError> {
        self.file
            .write_all(lines.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| {
                PortError::Unavailable(format!(
                    "writing the archive {} failed ({e}); nothing of this batch was deleted: free space or choose another --archive",
                    self.path.display()
                ))
            })
    }
}

fn to_line(v: &Value) -> Result<String, PortError> {
    serde_json::to_string(v)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| PortError::Unavailable(format!("encoding an archive line: {e}")))
}

/// One batch of finished tasks: (tasks deleted, their log entries, archive lines).
fn prune_task_batch(
    tx: &Transaction<'_>,
    status: TaskStatus,
    before: i64,
    limit: u32,
    archive: Option<&mut Archive>,
) -> Result<(u64, u64, u64), PortError> {
    let ids: Vec<i64> = tx
        .prepare_cached(PRUNE_TASKS)
        .and_then(|mut s| {
            s.query_map(
                params![crate::codec::status_code(status), before, limit],
                |r| r.get(0),
            )?
            .collect()
        })
        .map_err(map_err)?;
    if ids.is_empty() {
        return Ok((0, 0, 0));
    }
    let id_list = Value::from(ids.clone()).to_string();
    let in_ids = "task_id IN (SELECT value FROM json_each(?1))";
    let mut lines = 0;
    if let Some(archive) = archive {
        let tasks = tx
            .prepare_cached(&format!(
                "SELECT {TASK_COLUMNS} FROM task_queue WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY id"
            ))
            .and_then(|mut s| s.query_map([&id_list], task_from_row)?.collect::<Result<Vec<_>, _>>())
            .map_err(map_err)?;
        let mut logs = logs_where(tx, "task_log_entries", in_ids, &id_list).map_err(map_err)?;
        let mut text = String::new();
        for task in tasks {
            let (mine, rest): (Vec<_>, Vec<_>) =
                logs.into_iter().partition(|l| l.task_id == task.id.0);
            logs = rest;
            text.push_str(&to_line(
                &json!({"kind": "task", "task": task, "logs": mine}),
            )?);
            lines += 1;
        }
        archive.append(&text)?;
    }
    let cascaded: i64 = tx
        .prepare_cached(&format!(
            "SELECT count(*) FROM task_log_entries WHERE {in_ids}"
        ))
        .and_then(|mut s| s.query_row([&id_list], |r| r.get(0)))
        .map_err(map_err)?;
    let deleted = tx
        .prepare_cached("DELETE FROM task_queue WHERE id IN (SELECT value FROM json_each(?1))")
        .and_then(|mut s| s.execute([&id_list]))
        .map_err(map_err)?;
    Ok((deleted as u64, cascaded.max(0) as u64, lines))
}

/// One batch of old log entries by key: (deleted, archive lines).
fn prune_log_batch(
    tx: &Transaction<'_>,
    keys: &[(i64, i64)],
    before: i64,
    archive: Option<&mut Archive>,
) -> Result<(u64, u64), PortError> {
    let id_list =
        Value::from(keys.iter().map(|(t, s)| json!([t, s])).collect::<Vec<_>>()).to_string();
    let filter = format!("{LOG_KEYS} AND at < {before}");
    let mut lines = 0;
    if let Some(archive) = archive {
        let logs = logs_where(tx, "task_logs", &filter, &id_list).map_err(map_err)?;
        let mut text = String::new();
        for log in logs {
            text.push_str(&to_line(&json!({"kind": "log", "log": log}))?);
            lines += 1;
        }
        archive.append(&text)?;
    }
    let deleted = tx
        .prepare_cached(&format!("DELETE FROM task_logs WHERE {filter}"))
        .and_then(|mut s| s.execute([&id_list]))
        .map_err(map_err)?;
    Ok((deleted as u64, lines))
}

/// Deletes finished tasks (with their logs), old log entries and old result sightings
/// (keeping each record's first and latest by each kind of source) in batches of
/// `batch_size` (tasks, log entries, or records whose sightings are pruned), each batch
/// its own IMMEDIATE transaction. With an archive, each batch's rows
/// are appended to it as JSON lines and synced before the batch's delete commits, so a
/// crash never loses a row; a batch interrupted between the two may appear twice in the
/// archive (each line carries its id).
///
/// # Errors
/// `Invalid` for a batch size outside 1–10,000; `Io` when the archive cannot be opened; a
/// port error when the database fails (batches already committed stay deleted).
pub fn prune(store: &SqliteStore, opts: &PruneOptions) -> Result<PruneReport, OpsError> {
    if !(1..=10_000).contains(&opts.batch_size) {
        return Err(OpsError::Invalid {
            option: "batch size",
            problem: format!("{} is out of range; accepted: 1 to 10000", opts.batch_size),
        });
    }
    let mut archive = opts.archive.as_deref().map(Archive::open).transpose()?;
    let mut report = PruneReport {
        archive: opts.archive.clone(),
        ..PruneReport::default()
    };
    let targets = [
        (TaskStatus::Completed, opts.completed_before),
        (TaskStatus::Failed, opts.failed_before),
        (TaskStatus::Cancelled, opts.cancelled_before),
    ];
    for (status, before) in targets {
        let Some(before) = before.map(|t| t.as_millisecond()) else {
            continue;
        };
        loop {
            let (n, logs, lines) = store.write(|tx| {
                prune_task_batch(tx, status, before, opts.batch_size, archive.as_mut())
            })?;
            if n == 0 {
                break;
            }
            report.batches += 1;
            report.task_logs += logs;
            report.archived_lines += lines;
            match status {
                TaskStatus::Completed => report.completed += n,
                TaskStatus::Failed => report.failed += n,
                _ => report.cancelled += n,
            }
            std::thread::sleep(opts.pause);
        }
    }
    if let Some(before) = opts.logs_before.map(|t| t.as_millisecond()) {
        prune_logs(store, before, opts, archive.as_mut(), &mut report)?;
    }
    if let Some(before) = opts.sightings_before.map(|t| t.as_millisecond()) {
        prune_sightings(store, before, opts, archive.as_mut(), &mut report)?;
    }
    Ok(report)
}

/// One sighting as the archive keeps it.
#[derive(Serialize)]
struct SightingLine {
    platform: String,
    source_id: String,
    source: String,
    task_id: Option<i64>,
    rank: Option<i64>,
    seen_at: String,
}

/// Deletes the sightings made before `before` except each record's first and latest by each
/// kind of source, `batch_size` records per transaction (their ids read first, outside it).
fn prune_sightings(
    store: &SqliteStore,
    before: i64,
    opts: &PruneOptions,
    mut archive: Option<&mut Archive>,
    report: &mut PruneReport,
) -> Result<(), OpsError> {
    let mut after = i64::MIN;
    loop {
        let ids: Vec<i64> = store.read(|c: &Connection| {
            c.prepare_cached(RECORD_SLICE)
                .and_then(|mut s| {
                    s.query_map(params![after, opts.batch_size], |r| r.get(0))?
                        .collect()
                })
                .map_err(map_err)
        })?;
        let Some(&last) = ids.last() else {
            return Ok(());
        };
        let (n, lines) = store.write(|tx| {
            let rows: Vec<(i64, SightingLine)> = tx
                .prepare_cached(PRUNABLE_SIGHTINGS)
                .and_then(|mut s| {
                    s.query_map(params![after, last, before], |r| {
                        Ok((
                            r.get(0)?,
                            SightingLine {
                                platform: r.get(1)?,
                                source_id: r.get(2)?,
                                source: r.get(3)?,
                                task_id: r.get(4)?,
                                rank: r.get(5)?,
                                seen_at: iso(r.get(6)?),
                            },
                        ))
                    })?
                    .collect()
                })
                .map_err(map_err)?;
            if rows.is_empty() {
                return Ok((0, 0));
            }
            let mut lines = 0;
            if let Some(archive) = archive.as_deref_mut() {
                let mut text = String::new();
                for (_, line) in &rows {
                    text.push_str(&to_line(&json!({"kind": "sighting", "sighting": line}))?);
                    lines += 1;
                }
                archive.append(&text)?;
            }
            let id_list =
                Value::from(rows.iter().map(|(id, _)| *id).collect::<Vec<_>>()).to_string();
            let deleted = tx
                .prepare_cached(
                    "DELETE FROM result_sightings WHERE id IN (SELECT value FROM json_each(?1))",
                )
                .and_then(|mut s| s.execute([&id_list]))
                .map_err(map_err)?;
            Ok((deleted as u64, lines))
        })?;
        after = last;
        if n > 0 {
            report.sightings += n;
            report.archived_lines += lines;
            report.batches += 1;
            std::thread::sleep(opts.pause);
        }
    }
}

fn prune_logs(
    store: &SqliteStore,
    before: i64,
    opts: &PruneOptions,
    mut archive: Option<&mut Archive>,
    report: &mut PruneReport,
) -> Result<(), OpsError> {
    let slice = i64::from(opts.batch_size) * 10;
    let mut last = (i64::MIN, i64::MIN);
    let mut pending: Vec<(i64, i64)> = Vec::new();
    loop {
        // Read a bounded slice outside any write transaction (WAL readers block no one).
        let rows: Vec<(i64, i64, i64)> = store.read(|c: &Connection| {
            c.prepare_cached(LOG_SLICE)
                .and_then(|mut s| {
                    s.query_map(params![last.0, last.1, slice], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?
                    .collect()
                })
                .map_err(map_err)
        })?;
        let exhausted = (rows.len() as i64) < slice;
        if let Some((task, seq, _)) = rows.last() {
            last = (*task, *seq);
        }
        pending.extend(
            rows.into_iter()
                .filter(|(_, _, at)| *at < before)
                .map(|(task, seq, _)| (task, seq)),
        );
        while pending.len() >= opts.batch_size as usize || (exhausted && !pending.is_empty()) {
            let take = pending.len().min(opts.batch_size as usize);
            let batch: Vec<(i64, i64)> = pending.drain(..take).collect();
            let (n, lines) =
                store.write(|tx| prune_log_batch(tx, &batch, before, archive.as_deref_mut()))?;
            report.logs += n;
            report.archived_lines += lines;
            report.batches += 1;
            std::thread::sleep(opts.pause);
        }
        if exhausted {
            return Ok(());
        }
    }
}
