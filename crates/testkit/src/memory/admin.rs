//! `SchemaAdmin` and `Upkeep` for the in-memory fake: what a store without a schema or files
//! truthfully answers.
//!
//! - Schema: there are no migrations, so the schema is always current. Status lists none,
//!   up and down to version 0 apply or revert nothing, any other target is
//!   `UnknownVersion(target, 0)`; the engine names itself [`MEMORY_ENGINE`]; `validate` skips
//!   checks 2 to 8 saying there is no database to check.
//! - Upkeep: every operation (check, prune, checkpoint, optimize, vacuum, backup) answers the
//!   typed "not supported" ([`StorageError::unsupported`]); nothing is deleted.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use prismq_domain::ports::upkeep::{
    BackupReport, CheckpointReport, OptimizeReport, PruneOptions, PruneReport, VacuumMode,
    VacuumReport,
};
use prismq_domain::ports::validation::{ValidateOptions, ValidationReport};
use prismq_domain::ports::{SchemaAdmin, ServerInfo, StorageError, Upkeep};
use prismq_domain::schema::{MigrationError, MigrationStatus};

use super::MemoryStore;

/// The engine name the fake gives in [`ServerInfo::engine`].
pub const MEMORY_ENGINE: &str = "in-memory";

const NO_UPKEEP: &str = "the in-memory store keeps no files and prunes nothing: upkeep (prune, checkpoint, optimize, vacuum, backup) is not supported on it; use a SQLite file";

const NO_DATABASE: &str = "not run: the in-memory store has no database to check";

/// `target` must be 0, the only version of a store without migrations.
fn only_version_zero(target: i64) -> Result<Vec<i64>, StorageError> {
    if target == 0 {
        Ok(Vec::new())
    } else {
        Err(MigrationError::UnknownVersion(target, 0).into())
    }
}

#[async_trait]
impl SchemaAdmin for MemoryStore {
    async fn migration_status(&self) -> Result<Vec<MigrationStatus>, StorageError> {
        Ok(Vec::new())
    }

    async fn migrate_up(&self, target: Option<i64>) -> Result<Vec<i64>, StorageError> {
        only_version_zero(target.unwrap_or(0))
    }

    async fn migrate_down(&self, target: i64) -> Result<Vec<i64>, StorageError> {
        only_version_zero(target)
    }

    async fn server_info(&self) -> Result<ServerInfo, StorageError> {
        Ok(ServerInfo {
            engine: MEMORY_ENGINE,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            schema: None,
            tls: None,
            local: true,
        })
    }

    async fn validate(&self, options: &ValidateOptions) -> ValidationReport {
        ValidationReport::not_run(PathBuf::from(MEMORY_ENGINE), options.quick, NO_DATABASE)
    }
}

#[async_trait]
impl Upkeep for MemoryStore {
    fn database_file(&self) -> Option<&Path> {
        None
    }

    async fn check(&self) -> Result<(), StorageError> {
        Err(StorageError::unsupported(NO_UPKEEP))
    }

    async fn prune(&self, _options: &PruneOptions) -> Result<PruneReport, StorageError> {
        Err(StorageError::unsupported(NO_UPKEEP))
    }

    async fn checkpoint(&self) -> Result<CheckpointReport, StorageError> {
        Err(StorageError::unsupported(NO_UPKEEP))
    }

    async fn optimize(&self) -> Result<OptimizeReport, StorageError> {
        Err(StorageError::unsupported(NO_UPKEEP))
    }

    async fn vacuum(&self, _mode: VacuumMode) -> Result<VacuumReport, StorageError> {
        Err(StorageError::unsupported(NO_UPKEEP))
    }

    async fn backup(&self, _out: &Path) -> Result<BackupReport, StorageError> {
        Err(StorageError::unsupported(NO_UPKEEP))
    }
}
