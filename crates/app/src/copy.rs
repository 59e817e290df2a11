//! Moving a queue between stores of any engines (`prismq db copy --from STORE --to STORE`):
//! the source's [`Dump`] streams engine-neutral rows in batches into the target's
//! [`prismq_domain::ports::Load`], in one transaction on the target, and every table's row
//! count is verified on both sides before it commits. Tasks keep their ids (and attempt and
//! lapse counts), logs their order, results their metric history, sightings, scores and
//! growth, schedules their ids, timetables and last slots.
//!
//! The target must be empty (no task, log, worker, result, quota or schedule row) unless
//! `force` is given, in which case its PrismQ rows are deleted first, in the same
//! transaction. Neither adapter knows the other: the copy lives here, on the ports.

use async_trait::async_trait;

use prismq_domain::ports::dump::{normalise_row, Row, DUMP_TABLES};
use prismq_domain::ports::{Dump, DumpSink, LoadSession, StorageError};

use prismq_storage_sqlite::PageSize;

use crate::config::redact_url_password;
use crate::storage::Endpoint;

/// Rows per batch: enough to keep binary COPY and prepared inserts efficient, small enough
/// that a few batches in flight stay a few megabytes.
pub const BATCH_ROWS: usize = 2_000;

/// What a copy moved, per table (equal on both sides when it returns).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CopyReport {
    /// Tasks.
    pub tasks: u64,
    /// Task log rows (the synthesized `enqueued` events excluded).
    pub logs: u64,
    /// Workers.
    pub workers: u64,
    /// Results.
    pub results: u64,
    /// Metric history rows.
    pub metrics: u64,
    /// Sightings of results.
    pub sightings: u64,
    /// Quota buckets.
    pub quota: u64,
    /// Schedules.
    pub schedules: u64,
    /// Channel baselines (per channel, format and basis).
    pub baselines: u64,
}

impl CopyReport {
    fn count(&mut self, table: &str) -> Option<&mut u64> {
        Some(match table {
            "task_queue" => &mut self.tasks,
            "task_logs" => &mut self.logs,
            "workers" => &mut self.workers,
            "results" => &mut self.results,
            "result_metrics" => &mut self.metrics,
            "result_sightings" => &mut self.sightings,
            "quota_usage" => &mut self.quota,
            "schedules" => &mut self.schedules,
            "channel_baselines" => &mut self.baselines,
            _ => return None,
        })
    }
}

/// Why a copy was refused or failed; the message says what to do. Nothing is written to the
/// target on error.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// An endpoint could not be parsed.
    #[error("{which} {given:?} is not a store: expected sqlite:PATH, or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")]
    Endpoint {
        /// `--from` or `--to`.
        which: &'static str,
        /// What was given (password redacted).
        given: String,
    },
    /// `--schema` is not a plain identifier.
    #[error("--schema {0:?} is not a usable schema name; use 1 to 63 characters of a-z, 0-9 and _, starting with a letter or _")]
    Schema(String),
    /// Both ends are the same store.
    #[error("--from and --to name the same store; copy into another one")]
    SameStore,
    /// The target already holds data and `force` was not given.
    #[error("the target {target} is not empty ({rows} rows in PrismQ's tables); copy into an empty database, or pass --force to replace its contents")]
    TargetNotEmpty {
        /// Which store.
        target: String,
        /// How many rows it holds.
        rows: u64,
    },
    /// A table's row count differs between source and target after the copy.
    #[error("verification failed: {table} has {source_rows} rows in the source but {target_rows} in the target; the copy was rolled back")]
    CountMismatch {
        /// The table.
        table: &'static str,
        /// Rows in the source.
        source_rows: u64,
        /// Rows in the target.
        target_rows: u64,
    },
    /// A store could not be opened, read or written.
    #[error(transparent)]
    Store(#[from] StorageError),
}

impl CopyError {
    /// True when the request itself was refused (bad endpoint, the same store twice,
    /// non-empty target without force) rather than a store failing.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            CopyError::Endpoint { .. }
                | CopyError::Schema(_)
                | CopyError::SameStore
                | CopyError::TargetNotEmpty { .. }
        )
    }
}

/// Parses `sqlite:PATH` (also `sqlite://PATH`) or a `postgres://`/`postgresql://` URL.
///
/// # Errors
/// Anything else, naming `which` end it was.
pub fn parse_endpoint(which: &'static str, given: &str) -> Result<Endpoint, CopyError> {
    Endpoint::parse(given).ok_or_else(|| CopyError::Endpoint {
        which,
        given: redact_url_password(given.trim()).into_owned(),
    })
}

/// Feeds a dump's batches into a load.
struct LoadSink<'a>(&'a mut dyn LoadSession);

#[async_trait]
impl DumpSink for LoadSink<'_> {
    async fn write(&mut self, table: usize, mut rows: Vec<Row>) -> Result<(), StorageError> {
        for row in &mut rows {
            normalise_row(table, row)?;
        }
        self.0.write(table, rows).await
    }
}

/// Copies every table of `source` into the loading `target`, refusing a non-empty target
/// unless `force`, and verifies every table's count before committing.
///
/// # Errors
/// See [`CopyError`]; the target is unchanged on any error.
pub async fn copy_between(
    source: &dyn Dump,
    mut target: Box<dyn LoadSession>,
    force: bool,
) -> Result<CopyReport, CopyError> {
    let rows = target.existing_rows().await?;
    if rows > 0 {
        if !force {
            return Err(CopyError::TargetNotEmpty {
                target: format!("{} database", target.engine()),
                rows,
            });
        }
        target.clear().await?;
    }
    let dumped = source.dump(BATCH_ROWS, &mut LoadSink(&mut *target)).await?;
    let loaded = target.counts().await?;
    let mut report = CopyReport::default();
    for ((t, &source_rows), &target_rows) in DUMP_TABLES.iter().zip(&dumped).zip(&loaded) {
        if source_rows != target_rows {
            return Err(CopyError::CountMismatch {
                table: t.name,
                source_rows,
                target_rows,
            });
        }
        if let Some(n) = report.count(t.name) {
            *n = target_rows;
        }
    }
    target.commit().await?;
    Ok(report)
}

/// Copies tasks, logs, workers, results, metric history, sightings, quota, schedules and
/// channel baselines from `from` to `to`, whatever their engines, in one transaction on the
/// target, verifying every table's count; refuses a non-empty target unless `force` (which
/// replaces its contents). A PostgreSQL end's tables are in `schema` (created if missing)
/// when given, else in the connection's default schema. A SQLite target the copy creates is
/// made with `page_size` pages (an existing file keeps its own), so a copy into a new file is
/// how a queue moves to another page size.
///
/// # Errors
/// See [`CopyError`].
pub async fn copy_database(
    from: &Endpoint,
    to: &Endpoint,
    force: bool,
    schema: Option<&str>,
    page_size: PageSize,
) -> Result<CopyReport, CopyError> {
    if let Some(s) = schema.filter(|s| !Endpoint::accepts_schema(s)) {
        return Err(CopyError::Schema(s.to_owned()));
    }
    if from == to {
        return Err(CopyError::SameStore);
    }
    let source = from.open_source(schema).await?;
    let target = to.open_target(schema, page_size).await?;
    let session = target.begin_load().await?;
    copy_between(&*source, session, force).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_and_bad_ones_are_named_without_passwords() {
        assert_eq!(
            parse_endpoint("--from", "sqlite:q.db").unwrap(),
            Endpoint::Sqlite("q.db".into())
        );
        assert_eq!(
            parse_endpoint("--from", "sqlite:///tmp/q.db").unwrap(),
            Endpoint::Sqlite("/tmp/q.db".into())
        );
        assert!(matches!(
            parse_endpoint("--to", "postgres://u@h/d").unwrap(),
            Endpoint::Postgres(_)
        ));
        let e = parse_endpoint("--to", "mysql://u:hunter2@h/d")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--to") && e.contains("expected sqlite:PATH"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
        assert!(parse_endpoint("--from", "sqlite:").is_err());
    }

    #[tokio::test]
    async fn the_same_store_twice_is_refused() {
        let a = Endpoint::Sqlite("a.db".into());
        let e = copy_database(&a, &a, false, None, PageSize::DEFAULT)
            .await
            .unwrap_err();
        assert!(e.is_refusal());
        assert!(e.to_string().contains("the same store"), "{e}");
    }
}
