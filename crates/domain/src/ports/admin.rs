//! Administering a store's engine: its schema (status, up, down), what the server says of
//! itself, the infrastructure checks of `validate`, and the engine-neutral error every
//! administration port answers with ([`StorageError`]), including the typed "not supported
//! on this engine" answer.

use std::error::Error;
use std::fmt;

use async_trait::async_trait;

use super::validation::{ValidateOptions, ValidationReport};
use crate::error::PortError;
use crate::schema::{MigrationError, MigrationStatus};

/// What kind of problem a [`StorageError`] is, so that callers pick an exit code or a status
/// without knowing the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageProblem {
    /// No location for the database can be worked out (a configuration problem).
    Config,
    /// The request cannot be used as given: a location that cannot be a database, an
    /// unknown migration version, an output that may not be written, a non-empty target.
    Invalid,
    /// No database there, or a file or table that is not there.
    NotFound,
    /// The database cannot be used now: unreachable, damaged, refused schema.
    Unavailable,
    /// The operation ran and failed (a file could not be written).
    Failed,
    /// The engine does not do this (see [`StorageError::unsupported`]).
    Unsupported,
}

/// Why an engine could not be opened or administered. Its message is the engine's own
/// (what was wrong and what to do); [`StorageError::problem`] classifies it.
#[derive(Debug)]
pub enum StorageError {
    /// A port's error (its own meaning: `Unavailable`, `Corrupt`, `Busy`, …).
    Port(PortError),
    /// The schema's migrations refuse the database or the target.
    Migration(MigrationError),
    /// Anything else the engine reports, classified.
    Engine {
        /// What kind of problem.
        problem: StorageProblem,
        /// The engine's error: its message is this error's, its cause chain this error's.
        error: Box<dyn Error + Send + Sync + 'static>,
    },
}

impl StorageError {
    /// An engine error of kind `problem`.
    pub fn engine(problem: StorageProblem, error: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        StorageError::Engine {
            problem,
            error: error.into(),
        }
    }

    /// The typed answer of an engine that does not do what was asked: `message` says what
    /// to use instead.
    pub fn unsupported(message: impl Into<String>) -> Self {
        StorageError::engine(StorageProblem::Unsupported, message.into())
    }

    /// What kind of problem it is.
    pub fn problem(&self) -> StorageProblem {
        match self {
            StorageError::Port(PortError::NotFound(_)) => StorageProblem::NotFound,
            StorageError::Port(PortError::Invalid(_) | PortError::InvalidState { .. }) => {
                StorageProblem::Invalid
            }
            StorageError::Port(_) => StorageProblem::Unavailable,
            StorageError::Migration(MigrationError::UnknownVersion(..)) => StorageProblem::Invalid,
            StorageError::Migration(_) => StorageProblem::Unavailable,
            StorageError::Engine { problem, .. } => *problem,
        }
    }

    /// The port error inside, if it is one.
    pub fn port(&self) -> Option<&PortError> {
        match self {
            StorageError::Port(p) => Some(p),
            _ => None,
        }
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Port(e) => e.fmt(f),
            StorageError::Migration(e) => e.fmt(f),
            StorageError::Engine { error, .. } => error.fmt(f),
        }
    }
}

impl Error for StorageError {
    /// Transparent: the causes of the error inside.
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            StorageError::Port(e) => e.source(),
            StorageError::Migration(e) => e.source(),
            StorageError::Engine { error, .. } => error.source(),
        }
    }
}

impl From<PortError> for StorageError {
    fn from(e: PortError) -> Self {
        StorageError::Port(e)
    }
}

impl From<MigrationError> for StorageError {
    fn from(e: MigrationError) -> Self {
        StorageError::Migration(e)
    }
}

impl From<StorageError> for PortError {
    /// A port error as it was; anything else as `Unavailable` with its message.
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Port(p) => p,
            other => PortError::Unavailable(other.to_string()),
        }
    }
}

/// What the engine says of itself and of this connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// The engine's name: `SQLite`, `PostgreSQL`.
    pub engine: &'static str,
    /// The engine's version (`3.54.1`, `15.18`).
    pub version: String,
    /// The schema the tables are in, for engines that have schemas (`None` if it does not
    /// exist yet).
    pub schema: Option<String>,
    /// The TLS protocol (`TLSv1.3`) when the connection is encrypted.
    pub tls: Option<String>,
    /// Whether the database is on this machine (a file, a unix socket, a loopback address):
    /// where a connection without TLS exposes nothing.
    pub local: bool,
}

/// Schema administration: migration status, up and down, the server's own description, and
/// the infrastructure checks. Nothing here applies a migration unless asked to.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait SchemaAdmin: Send + Sync {
    /// Every migration this binary knows for the engine and when it was applied, oldest
    /// first. MUST NOT apply or revert anything, nor create a database that is not there.
    ///
    /// # Errors
    /// `Migration(SchemaTooNew | ChecksumMismatch)` for a schema it must not touch; an
    /// `Engine` error of kind `NotFound` when there is no database.
    async fn migration_status(&self) -> Result<Vec<MigrationStatus>, StorageError>;

    /// Applies pending migrations up to `target` (default the latest), oldest first, each
    /// once even when several processes run it at once; returns the versions applied (none
    /// when already there). A new database is created if the engine can.
    ///
    /// # Errors
    /// `Migration(UnknownVersion)` for a target outside 0..=latest, nothing applied; as
    /// [`SchemaAdmin::migration_status`].
    async fn migrate_up(&self, target: Option<i64>) -> Result<Vec<i64>, StorageError>;

    /// Reverts applied migrations down to `target` (0: all), newest first; returns the
    /// versions reverted.
    ///
    /// # Errors
    /// `Migration(UnknownVersion)` for a target outside 0..=latest, nothing reverted; as
    /// [`SchemaAdmin::migration_status`].
    async fn migrate_down(&self, target: i64) -> Result<Vec<i64>, StorageError>;

    /// The engine, its version and where the database is. Needs no migration.
    ///
    /// # Errors
    /// The database cannot be reached.
    async fn server_info(&self) -> Result<ServerInfo, StorageError>;

    /// Checks 2 to 8 (see [`super::validation::CHECK_NAMES`]), each pass, warn, fail or skip
    /// with a reason; a check the engine has no meaning for is skipped saying why. Never
    /// fails and MUST leave nothing written in the database.
    async fn validate(&self, options: &ValidateOptions) -> ValidationReport;
}
