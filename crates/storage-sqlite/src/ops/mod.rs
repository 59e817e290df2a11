//! Operations on a SQLite queue for the people who keep a deployment healthy: the
//! eight-check [`validate()`] with a short benchmark, batched [`prune()`] with a JSONL
//! archive, WAL [`checkpoint()`], [`optimize()`] and [`vacuum()`], the online [`backup()`], a
//! file's page size changed in place ([`set_page_size()`]), and the [`import_legacy()`] of a
//! database made by the earlier Python implementation.
//!
//! Everything here is synchronous (tools and the CLI call it without a runtime) and reports
//! with serializable structs, so the CLI can print them as text or JSON.

pub mod backup;
mod checks_db;
mod checks_roundtrip;
mod checks_runtime;
pub mod legacy;
mod legacy_map;
pub mod maintenance;
pub mod page_size;
pub mod prune;
mod rows;
pub mod validate;

use std::path::PathBuf;

use prismq_domain::PortError;

use crate::error::StoreError;

pub use backup::{backup, BackupReport};
pub use checks_runtime::STATS_QUERIES;
pub use legacy::{import_legacy, ImportReport, Skipped};
pub use maintenance::{
    checkpoint, optimize, vacuum, CheckpointReport, OptimizeReport, VacuumMode, VacuumReport,
};
pub use page_size::{set_page_size, PageSizeReport};
pub use prune::{prune, PruneOptions, PruneReport, PRUNE_QUERIES};
pub use validate::{
    validate, Benchmark, CheckResult, Outcome, ValidateOptions, ValidationReport, CHECK_NAMES,
};

/// Why an operation could not run. Every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// Opening or checking the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A database operation failed.
    #[error(transparent)]
    Port(#[from] PortError),
    /// A file operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The output file exists and `force` was not given.
    #[error("{path} already exists; choose another file or pass --force to overwrite it")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The copy made by a backup failed its integrity check; it was deleted.
    #[error("the backup written to {path} failed its integrity check ({detail}); it was deleted. Run `prismq validate` on the source database")]
    BackupCorrupt {
        /// Where the copy was.
        path: PathBuf,
        /// The first problem integrity_check reported.
        detail: String,
    },
    /// The file given to `import legacy` is not a Python-era PrismQ database.
    #[error("{path} is not a Python-era PrismQ database ({reason}); give the queue.db the Python workers used")]
    NotLegacy {
        /// The file.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// The legacy database and the target are the same file.
    #[error("{path} is the target database itself; give the old Python-era file instead")]
    SameFile {
        /// The file.
        path: PathBuf,
    },
    /// Another connection has the file open, so it cannot be taken exclusively; nothing
    /// was changed.
    #[error("{path} is open elsewhere (a worker, `prismq serve`, `sqlite3`): stop them and run this again; nothing was changed")]
    InUse {
        /// The file.
        path: PathBuf,
    },
    /// An option was out of range.
    #[error("invalid {option}: {problem}")]
    Invalid {
        /// Which option.
        option: &'static str,
        /// What is wrong and what is accepted.
        problem: String,
    },
}

impl OpsError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        OpsError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Maps a driver error at the boundary, as the rest of the adapter does.
pub(crate) fn sql(e: rusqlite::Error) -> OpsError {
    OpsError::Port(crate::error::map_err(e))
}

/// Creates a new file readable by its owner only, refusing an existing one.
pub(crate) fn create_owner_only(path: &std::path::Path) -> Result<std::fs::File, std::io::Error> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}
