//! Keeping a store healthy: pruning finished tasks and old log entries, checkpointing a
//! write-ahead log, refreshing planner statistics, returning free pages, and an online backup.
//! An engine that keeps these to its own tools answers [`StorageError::unsupported`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::admin::StorageError;
use crate::Timestamp;

/// Maintenance of a store's files and tables.
#[async_trait]
pub trait Upkeep: Send + Sync {
    /// The file the database lives in, for engines that keep it in one (a backup made for a
    /// stream is staged beside it); `None` for a server.
    fn database_file(&self) -> Option<&Path>;

    /// Whether upkeep can run on this database: it opens as upkeep needs it, as it is (nothing
    /// created or migrated). Callers ask before they write anything of their own (an output
    /// file, a directory).
    ///
    /// # Errors
    /// The database's own error (not there, not a queue, schema too new); `unsupported`
    /// where the engine leaves upkeep to its own tools.
    async fn check(&self) -> Result<(), StorageError>;

    /// Deletes finished tasks, log entries and result sightings older than the cutoffs, in
    /// batches of `options.batch_size` (each its own short transaction), appending every
    /// deleted row to the archive first when one is named; returns exact counts.
    ///
    /// # Errors
    /// `Invalid` for a batch size outside 1–10,000, nothing deleted; the archive cannot be
    /// written (`Failed`), nothing deleted; `unsupported` where the engine leaves it (or a
    /// part of it: PostgreSQL prunes only sightings, without an archive) to its own tools.
    async fn prune(&self, options: &PruneOptions) -> Result<PruneReport, StorageError>;

    /// Copies the write-ahead log into the database and truncates it.
    ///
    /// # Errors
    /// A database error; `unsupported` where the engine has no such log to manage.
    async fn checkpoint(&self) -> Result<CheckpointReport, StorageError>;

    /// Refreshes the query planner's statistics.
    ///
    /// # Errors
    /// A database error; `unsupported`.
    async fn optimize(&self) -> Result<OptimizeReport, StorageError>;

    /// Returns free pages to the filesystem.
    ///
    /// # Errors
    /// A database error; `unsupported`.
    async fn vacuum(&self, mode: VacuumMode) -> Result<VacuumReport, StorageError>;

    /// Writes a consistent copy of the live database to `out`, a new path (created
    /// owner-only) or an empty regular file the caller made, checked before it is reported;
    /// a copy that fails its check is deleted.
    ///
    /// # Errors
    /// `out` is anything else, or the database itself (`Invalid`); the copy failed its
    /// check (`Unavailable`); file errors;
    /// `unsupported` where the engine has its own dump tool.
    async fn backup(&self, out: &Path) -> Result<BackupReport, StorageError>;
}

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackupReport {
    /// The backup file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Database pages copied.
    pub pages: i64,
    /// `integrity_check` of the copy (always `ok`; anything else is an error).
    pub integrity: String,
    /// Time taken, in milliseconds.
    pub millis: f64,
}

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

/// What an optimize did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OptimizeReport {
    /// Time spent in ANALYZE, in milliseconds.
    pub analyze_millis: f64,
    /// Time spent in `PRAGMA optimize`, in milliseconds.
    pub optimize_millis: f64,
    /// Indexes with statistics afterwards.
    pub indexes_with_stats: i64,
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

/// What a prune deletes. Cutoffs are exclusive: rows strictly older go.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Completed tasks that finished before this instant (with their logs).
    pub completed_before: Option<Timestamp>,
    /// Failed (dead-lettered) tasks that finished before this instant (with their logs).
    pub failed_before: Option<Timestamp>,
    /// Cancelled tasks that finished before this instant (with their logs).
    pub cancelled_before: Option<Timestamp>,
    /// Log entries written before this instant, whatever their task's state.
    pub logs_before: Option<Timestamp>,
    /// Result sightings made before this instant, except each record's first and latest
    /// sighting by each kind of source (so where and when it was first and last seen there
    /// stay known).
    pub sightings_before: Option<Timestamp>,
    /// Append every deleted row to this JSONL file first (created owner-only if missing).
    pub archive: Option<PathBuf>,
    /// Rows per transaction (1–10,000; default 500).
    pub batch_size: u32,
    /// Pause between batches so waiting workers get the lock (default 2 ms).
    pub pause: Duration,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            completed_before: None,
            failed_before: None,
            cancelled_before: None,
            logs_before: None,
            sightings_before: None,
            archive: None,
            batch_size: 500,
            pause: Duration::from_millis(2),
        }
    }
}

/// What a prune deleted, counted exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// Completed tasks deleted.
    pub completed: u64,
    /// Failed tasks deleted.
    pub failed: u64,
    /// Cancelled tasks deleted.
    pub cancelled: u64,
    /// Log entries deleted with those tasks.
    pub task_logs: u64,
    /// Log entries deleted for their age alone.
    pub logs: u64,
    /// Result sightings deleted.
    pub sightings: u64,
    /// Lines appended to the archive.
    pub archived_lines: u64,
    /// Transactions used.
    pub batches: u64,
    /// The archive, if one was written.
    pub archive: Option<PathBuf>,
}
