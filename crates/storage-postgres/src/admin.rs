//! The administration ports on a PostgreSQL server: [`SchemaAdmin`] (migration status, up and
//! down, the server's version and TLS, `validate`'s checks 2 and 3), [`Upkeep`] answered
//! "not supported" (the server has its own tools) except the pruning of result sightings,
//! and how this adapter's errors read as the
//! engine-neutral [`StorageError`].

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use prismq_domain::ports::upkeep::{
    BackupReport, CheckpointReport, OptimizeReport, PruneOptions, PruneReport, VacuumMode,
    VacuumReport,
};
use prismq_domain::ports::validation::{CheckResult, Outcome, ValidateOptions, ValidationReport};
use prismq_domain::ports::{SchemaAdmin, ServerInfo, StorageError, StorageProblem, Upkeep};
use prismq_domain::schema::MigrationStatus;

use crate::{PostgresStore, StoreError};

impl From<StoreError> for StorageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Port(p) => StorageError::Port(p),
            StoreError::Migration(m) => StorageError::Migration(m),
            other => StorageError::engine(StorageProblem::Unavailable, other),
        }
    }
}

/// What prune on PostgreSQL answers when asked for more than sightings.
const PRUNE_UNSUPPORTED: &str = "store unavailable: database.url names a PostgreSQL server, where `maintenance prune` prunes only result sightings (--sightings-older-than) and writes no archive; for the rest use PostgreSQL's own tools (VACUUM, pg_dump) and `dlq purge`, or pass --db PATH for a SQLite file";

/// What upkeep on PostgreSQL answers: the server keeps its own tools.
const UPKEEP_UNSUPPORTED: &str = "store unavailable: database.url names a PostgreSQL server, but maintenance, backup and import work on SQLite files; use PostgreSQL's own tools (VACUUM, pg_dump), or pass --db PATH for a SQLite file";

#[async_trait]
impl SchemaAdmin for PostgresStore {
    async fn migration_status(&self) -> Result<Vec<MigrationStatus>, StorageError> {
        Ok(PostgresStore::migration_status(self).await?)
    }

    async fn migrate_up(&self, target: Option<i64>) -> Result<Vec<i64>, StorageError> {
        Ok(PostgresStore::migrate_up(self, target).await?)
    }

    async fn migrate_down(&self, target: i64) -> Result<Vec<i64>, StorageError> {
        Ok(PostgresStore::migrate_down(self, target).await?)
    }

    async fn server_info(&self) -> Result<ServerInfo, StorageError> {
        let info = PostgresStore::server_info(self).await?;
        Ok(ServerInfo {
            engine: "PostgreSQL",
            version: info.version,
            schema: info.schema,
            tls: info.tls,
            local: crate::is_local_url(&self.options().url),
        })
    }

    /// Checks 2 and 3 on the server: it answers (its version, the schema, whether the
    /// connection is encrypted: a warning when it is not and the server is another machine),
    /// and the schema's migrations (a warning when some are pending, a failure when they
    /// cannot be read); 4 to 8 are for SQLite files and skipped.
    async fn validate(&self, options: &ValidateOptions) -> ValidationReport {
        let mut report = ValidationReport::not_run(
            PathBuf::new(),
            options.quick,
            "not run: database.url names a PostgreSQL server; checks 4–8 are for SQLite files",
        );
        for check in checks(self).await {
            report.checks.retain(|c| c.number != check.number);
            report.checks.push(check);
        }
        report.checks.sort_by_key(|c| c.number);
        report
    }
}

async fn checks(store: &PostgresStore) -> Vec<CheckResult> {
    let fail = |n, e: &dyn std::fmt::Display| {
        vec![CheckResult::new(
            n,
            Outcome::Fail,
            format!("{e}; check that the server runs and database.url's host, credentials and TLS settings (docs/postgres.md)"),
        )]
    };
    let info = match SchemaAdmin::server_info(store).await {
        Ok(i) => i,
        Err(e) => return fail(2, &e),
    };
    let schema = info.schema.as_deref().unwrap_or("(none)");
    let mut database = match (&info.tls, info.local) {
        (Some(tls), _) => CheckResult::new(
            2,
            Outcome::Pass,
            format!("PostgreSQL {} answers, encrypted ({tls}, certificate verified)", info.version),
        ),
        (None, true) => CheckResult::new(
            2,
            Outcome::Pass,
            format!("PostgreSQL {} answers on this machine, without TLS", info.version),
        ),
        (None, false) => CheckResult::new(
            2,
            Outcome::Warn,
            format!(
                "PostgreSQL {} answers, but the connection is not encrypted; add sslmode=verify-full and sslrootcert=FILE to database.url (docs/postgres.md#tls)",
                info.version
            ),
        ),
    };
    database.details.push(format!("schema: {schema}"));
    let rows = match PostgresStore::migration_status(store).await {
        Ok(r) => r,
        Err(e) => {
            let mut checks = vec![database];
            checks.extend(fail(3, &e));
            return checks;
        }
    };
    let pending: Vec<i64> = rows
        .iter()
        .filter(|m| m.applied_at.is_none())
        .map(|m| m.version)
        .collect();
    let known = rows.len();
    let migrations = if pending.is_empty() {
        CheckResult::new(
            3,
            Outcome::Pass,
            format!("all {known} migrations applied in schema {schema}"),
        )
    } else {
        CheckResult::new(
            3,
            Outcome::Warn,
            format!(
                "{} of {known} migrations pending in schema {schema} (versions {pending:?}); run `prismq migrate up`, or start a worker, which applies them",
                pending.len()
            ),
        )
    };
    vec![database, migrations]
}

#[async_trait]
impl Upkeep for PostgresStore {
    fn database_file(&self) -> Option<&Path> {
        None
    }

    async fn check(&self) -> Result<(), StorageError> {
        Err(StorageError::unsupported(UPKEEP_UNSUPPORTED))
    }

    /// Prunes result sightings only ([`PostgresStore::prune_sightings`]); finished tasks,
    /// log entries and an archive are left to the server's own tools.
    async fn prune(&self, options: &PruneOptions) -> Result<PruneReport, StorageError> {
        if options.completed_before.is_some()
            || options.failed_before.is_some()
            || options.cancelled_before.is_some()
            || options.logs_before.is_some()
            || options.archive.is_some()
        {
            return Err(StorageError::unsupported(PRUNE_UNSUPPORTED));
        }
        if !(1..=10_000).contains(&options.batch_size) {
            return Err(StorageError::engine(
                StorageProblem::Invalid,
                format!(
                    "batch size {} is out of range; accepted: 1 to 10000",
                    options.batch_size
                ),
            ));
        }
        let Some(before) = options.sightings_before else {
            return Ok(PruneReport::default());
        };
        Ok(self
            .prune_sightings(before, options.batch_size, options.pause)
            .await?)
    }

    async fn checkpoint(&self) -> Result<CheckpointReport, StorageError> {
        Err(StorageError::unsupported(UPKEEP_UNSUPPORTED))
    }

    async fn optimize(&self) -> Result<OptimizeReport, StorageError> {
        Err(StorageError::unsupported(UPKEEP_UNSUPPORTED))
    }

    async fn vacuum(&self, _mode: VacuumMode) -> Result<VacuumReport, StorageError> {
        Err(StorageError::unsupported(UPKEEP_UNSUPPORTED))
    }

    async fn backup(&self, _out: &Path) -> Result<BackupReport, StorageError> {
        Err(StorageError::unsupported(UPKEEP_UNSUPPORTED))
    }
}
