//! Errors of opening and migrating a store, and the mapping of driver errors to the
//! domain's port errors at the boundary.

use prismq_domain::PortError;
use rusqlite::ErrorCode;
use std::path::PathBuf;

/// Why a store could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No default location could be found for the database.
    #[error(
        "no data directory found for the database; set PRISMQ_QUEUE_DB_PATH or pass --db PATH"
    )]
    NoDataDir,
    /// The path is on a network filesystem, where SQLite's locking is not reliable.
    #[error("{path} is on a network filesystem ({fs}); SQLite's file locking is not reliable there, so two workers could claim one task. Put the database on a local disk, or use PostgreSQL to share a queue between machines")]
    NetworkPath {
        /// The path refused.
        path: PathBuf,
        /// The filesystem it is on.
        fs: String,
    },
    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The path cannot name a database file: a `file:` URI, `:memory:` or nothing.
    #[error("invalid database path {path:?}: {problem}; accepted: a path to a file, such as queue.db or /var/lib/prismq/queue.db (created if missing)")]
    InvalidPath {
        /// The path as given.
        path: PathBuf,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The path exists but is not a regular file (a directory, a device, a FIFO, a socket).
    #[error("invalid database path {path}: it is {kind}, not a regular file; accepted: a path to a database file, such as queue.db (created if missing)")]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is ("a directory", "a character device", …).
        kind: &'static str,
    },
    /// A command that only uses an existing queue found no file at the path.
    #[error("no database at {path}; run `prismq init` to create one, or pass --db PATH")]
    Missing {
        /// The path.
        path: PathBuf,
    },
    /// A command that only uses an existing queue found an empty file (or a SQLite file with
    /// no tables): no queue has been made there yet.
    #[error("{path} holds no PrismQ queue yet (the file is empty); run `prismq init` to create one there, or pass --db PATH")]
    Uninitialised {
        /// The path.
        path: PathBuf,
    },
    /// The file is a SQLite database made by something else: PrismQ neither reads nor changes it.
    #[error("{path} is not a PrismQ database: it is a SQLite database holding other tables ({tables}); nothing was changed in it. Pass --db with the queue's file, or a new path for a new queue")]
    Foreign {
        /// The file.
        path: PathBuf,
        /// A few of its tables, for recognising it.
        tables: String,
    },
    /// The file is a PrismQ database whose schema is older than this binary and the command
    /// only reads, so it does not migrate it.
    #[error("the database's schema is version {found} and this prismq needs version {needed}; run `prismq migrate up` (back it up first with `prismq backup`), then repeat the command")]
    SchemaTooOld {
        /// The version applied in the database.
        found: i64,
        /// The version this binary needs.
        needed: i64,
    },
    /// The database file is damaged: SQLite found corrupt pages or no database where one was.
    #[error("{path} is corrupt ({detail}); stop the workers, run `prismq validate` for details, and restore the latest copy made by `prismq backup`")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What SQLite reported.
        detail: String,
    },
    /// The file exists but is not a SQLite database.
    #[error("{path} is not a SQLite database (is the path right?); nothing was written to it")]
    NotADatabase {
        /// The file.
        path: PathBuf,
    },
    /// The file or its directory is read-only.
    #[error("{path} is read-only; a queue needs write access to the file and its directory (for the -wal and -shm files)")]
    ReadOnly {
        /// The file.
        path: PathBuf,
    },
    /// The schema is newer than this binary, was altered, or a migration target is unknown.
    #[error(transparent)]
    Migration(#[from] prismq_domain::schema::MigrationError),
    /// A PRAGMA did not take the value asked for.
    #[error("PRAGMA {pragma} is {actual}, expected {expected}")]
    Pragma {
        /// Which.
        pragma: &'static str,
        /// Asked for.
        expected: String,
        /// Found.
        actual: String,
    },
    /// Any other database error, already mapped to the domain.
    #[error(transparent)]
    Port(#[from] PortError),
}

/// What to do about a corrupt database, said wherever corruption is reported.
pub(crate) const CORRUPT_ADVICE: &str = "stop the workers, run `prismq validate` for details, and restore the latest copy made by `prismq backup`";

/// Maps a driver error to the domain's port error.
pub(crate) fn map_err(e: rusqlite::Error) -> PortError {
    match &e {
        rusqlite::Error::SqliteFailure(f, msg) => {
            let detail = msg.clone().unwrap_or_else(|| f.to_string());
            match f.code {
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => PortError::Busy(detail),
                ErrorCode::ConstraintViolation => {
                    if detail.contains("UNIQUE") {
                        PortError::Duplicate(detail)
                    } else {
                        PortError::Unavailable(format!("constraint violated: {detail}"))
                    }
                }
                ErrorCode::ReadOnly => PortError::Unavailable(format!(
                    "the database is read-only ({detail}); check the permissions of the file and its directory"
                )),
                ErrorCode::DiskFull => PortError::Unavailable(
                    "the disk is full; free space and the work resumes (nothing was lost)".into(),
                ),
                ErrorCode::NotADatabase => PortError::Corrupt(format!(
                    "the file is no longer a SQLite database ({detail}); {CORRUPT_ADVICE}"
                )),
                ErrorCode::DatabaseCorrupt => PortError::Corrupt(format!(
                    "{detail}; {CORRUPT_ADVICE}"
                )),
                ErrorCode::CannotOpen => PortError::Unavailable(format!("cannot open the database: {detail}")),
                ErrorCode::SystemIoFailure => PortError::Unavailable(format!("I/O error: {detail}")),
                _ => PortError::Unavailable(detail),
            }
        }
        _ => PortError::Unavailable(e.to_string()),
    }
}
