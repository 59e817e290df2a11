//! The administration ports on a SQLite file: [`SchemaAdmin`] (migration status, up and down,
//! what the engine says of itself, `validate`'s checks) and [`Upkeep`] (prune, checkpoint,
//! optimize, vacuum, backup), and how this adapter's errors read as the engine-neutral
//! [`StorageError`].
//!
//! [`SqliteAdmin`] holds only the options: each call opens the file as that call needs
//! (never creating or migrating it unless asked to), checks every page before a migration
//! writes to it, and runs on tokio's blocking pool.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

use prismq_domain::ports::upkeep::{
    BackupReport, CheckpointReport, OptimizeReport, PruneOptions, PruneReport, VacuumMode,
    VacuumReport,
};
use prismq_domain::ports::validation::{ValidateOptions, ValidationReport};
use prismq_domain::ports::{Clock, SchemaAdmin, ServerInfo, StorageError, StorageProblem, Upkeep};
use prismq_domain::schema::MigrationStatus;
use prismq_domain::PortError;

use crate::ops::{self, OpsError};
use crate::{SqliteOptions, SqliteStore, StoreError};

impl From<StoreError> for StorageError {
    fn from(e: StoreError) -> Self {
        let problem = match e {
            StoreError::Port(p) => return StorageError::Port(p),
            StoreError::Migration(m) => return StorageError::Migration(m),
            StoreError::NoDataDir => StorageProblem::Config,
            StoreError::InvalidPath { .. } | StoreError::NotAFile { .. } => StorageProblem::Invalid,
            StoreError::Missing { .. } | StoreError::Uninitialised { .. } => {
                StorageProblem::NotFound
            }
            StoreError::Io { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                StorageProblem::NotFound
            }
            _ => StorageProblem::Unavailable,
        };
        StorageError::engine(problem, e)
    }
}

impl From<OpsError> for StorageError {
    fn from(e: OpsError) -> Self {
        let problem = match e {
            OpsError::Store(s) => return s.into(),
            OpsError::Port(p) => return StorageError::Port(p),
            OpsError::Io { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                StorageProblem::NotFound
            }
            OpsError::Io { .. } => StorageProblem::Failed,
            OpsError::Exists { .. }
            | OpsError::NotLegacy { .. }
            | OpsError::SameFile { .. }
            | OpsError::Invalid { .. } => StorageProblem::Invalid,
            OpsError::BackupCorrupt { .. } | OpsError::InUse { .. } => StorageProblem::Unavailable,
        };
        StorageError::engine(problem, e)
    }
}

/// Schema administration and upkeep of the SQLite file its options name.
#[derive(Clone)]
pub struct SqliteAdmin {
    options: SqliteOptions,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SqliteAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteAdmin")
            .field("path", &self.options.path)
            .finish_non_exhaustive()
    }
}

impl SqliteAdmin {
    /// Administration of the file `options.path` (its `migrate` and `create` are set per call).
    pub fn new(options: SqliteOptions, clock: Arc<dyn Clock>) -> Self {
        SqliteAdmin { options, clock }
    }

    /// The file it administers.
    pub fn path(&self) -> &Path {
        &self.options.path
    }

    /// Refuses a path that cannot be a database (exit-2 kind) and a file that does not exist
    /// (`Missing`); creates nothing.
    ///
    /// # Errors
    /// As said.
    pub fn require_existing(&self) -> Result<(), StoreError> {
        crate::check_path(&self.options.path)?;
        if self.options.path.exists() {
            Ok(())
        } else {
            Err(StoreError::Missing {
                path: self.options.path.clone(),
            })
        }
    }

    /// The store, opened without applying migrations; with `create` a missing or empty file
    /// becomes a new (unmigrated) queue.
    ///
    /// # Errors
    /// The store's error.
    pub fn open(&self, create: bool) -> Result<SqliteStore, StoreError> {
        let mut o = self.options.clone();
        o.migrate = false;
        o.create = create;
        SqliteStore::open(o, self.clock.clone())
    }

    /// [`SqliteAdmin::open`], then every page checked with `quick_check`: a damaged file is
    /// refused (`Corrupt`) before a migration writes to it.
    fn checked(&self, create: bool) -> Result<SqliteStore, StoreError> {
        let store = self.open(create)?;
        store.quick_check()?;
        Ok(store)
    }

    /// An existing queue, as it is (upkeep).
    fn existing(&self) -> Result<SqliteStore, StorageError> {
        self.require_existing()?;
        Ok(self.open(false)?)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(SqliteAdmin) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(me))
            .await
            .map_err(|e| {
                StorageError::Port(PortError::Unavailable(format!("SQLite task stopped: {e}")))
            })?
    }
}

#[async_trait]
impl SchemaAdmin for SqliteAdmin {
    async fn migration_status(&self) -> Result<Vec<MigrationStatus>, StorageError> {
        self.blocking(|a| {
            a.require_existing()?;
            Ok(a.open(false)?.migration_status()?)
        })
        .await
    }

    async fn migrate_up(&self, target: Option<i64>) -> Result<Vec<i64>, StorageError> {
        self.blocking(move |a| Ok(a.checked(true)?.migrate_up(target)?))
            .await
    }

    async fn migrate_down(&self, target: i64) -> Result<Vec<i64>, StorageError> {
        self.blocking(move |a| {
            a.require_existing()?;
            Ok(a.checked(false)?.migrate_down(target)?)
        })
        .await
    }

    async fn server_info(&self) -> Result<ServerInfo, StorageError> {
        Ok(ServerInfo {
            engine: "SQLite",
            version: rusqlite::version().to_owned(),
            schema: None,
            tls: None,
            local: true,
        })
    }

    async fn validate(&self, options: &ValidateOptions) -> ValidationReport {
        let (sqlite, vopts) = (self.options.clone(), options.clone());
        let path = sqlite.path.clone();
        let quick = options.quick;
        tokio::task::spawn_blocking(move || ops::validate(&sqlite, &vopts))
            .await
            .unwrap_or_else(|e| {
                ValidationReport::not_run(path, quick, &format!("not run: the checks stopped: {e}"))
            })
    }
}

#[async_trait]
impl Upkeep for SqliteAdmin {
    fn database_file(&self) -> Option<&Path> {
        Some(&self.options.path)
    }

    async fn check(&self) -> Result<(), StorageError> {
        self.blocking(|a| a.existing().map(drop)).await
    }

    async fn prune(&self, options: &PruneOptions) -> Result<PruneReport, StorageError> {
        let options = options.clone();
        self.blocking(move |a| Ok(ops::prune(&a.existing()?, &options)?))
            .await
    }

    async fn checkpoint(&self) -> Result<CheckpointReport, StorageError> {
        self.blocking(|a| Ok(ops::checkpoint(&a.existing()?)?))
            .await
    }

    async fn optimize(&self) -> Result<OptimizeReport, StorageError> {
        self.blocking(|a| Ok(ops::optimize(&a.existing()?)?)).await
    }

    async fn vacuum(&self, mode: VacuumMode) -> Result<VacuumReport, StorageError> {
        self.blocking(move |a| Ok(ops::vacuum(&a.existing()?, mode)?))
            .await
    }

    async fn backup(&self, out: &Path) -> Result<BackupReport, StorageError> {
        let out = out.to_path_buf();
        self.blocking(move |a| Ok(ops::backup(&a.existing()?, &out)?))
            .await
    }
}
