//! Operations that need the configuration: `validate` runs check 1 (the configuration
//! loads and is usable) and then the storage adapter's checks 2 to 8 on the database the
//! configuration names; [`open_store`] opens that database for maintenance, backup and
//! import without the plugins.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use prismq_domain::ports::SystemClock;
use prismq_storage_sqlite::ops::{CheckResult, Outcome, ValidateOptions, ValidationReport};
use prismq_storage_sqlite::{SqliteStore, StoreError};

use crate::config::{Config, LoadOptions};

/// Loads the configuration (check 1) and, if it loads, validates the database it names
/// (checks 2–8, see [`prismq_storage_sqlite::ops::validate()`]); with a PostgreSQL
/// `database.url`, checks 2 and 3 connect to the server (its version and TLS, the schema's
/// migrations) and 4–8 are skipped. Never fails: every problem is a check result.
pub fn validate(load: &LoadOptions, options: &ValidateOptions) -> ValidationReport {
    let config = match Config::load(load) {
        Ok(c) => c,
        Err(e) => {
            let mut report = ValidationReport::not_run(
                PathBuf::new(),
                options.quick,
                "not run: the configuration did not load (check 1)",
            );
            report.insert_config_check(CheckResult::new(
                1,
                Outcome::Fail,
                format!("{e}; fix it (see `prismq config show` and docs/configuration.md)"),
            ));
            return report;
        }
    };
    if let Some(url) = config.database.postgres_url() {
        let mut report = ValidationReport::not_run(
            PathBuf::from(crate::config::redact_url_password(url).into_owned()),
            options.quick,
            "not run: database.url names a PostgreSQL server; checks 4–8 are for SQLite files",
        );
        report.insert_config_check(CheckResult::new(
            1,
            Outcome::Pass,
            "the configuration loads and is valid (PostgreSQL)",
        ));
        for check in postgres_checks(url, &config) {
            report.checks.retain(|c| c.number != check.number);
            report.checks.push(check);
        }
        report.checks.sort_by_key(|c| c.number);
        return report;
    }
    let sqlite = match crate::wiring::sqlite_options(&config) {
        Ok(o) => o,
        Err(e) => {
            let mut report = ValidationReport::not_run(
                PathBuf::new(),
                options.quick,
                "not run: no database location (check 1)",
            );
            report.insert_config_check(CheckResult::new(1, Outcome::Fail, e.to_string()));
            return report;
        }
    };
    let check1 = config_check(&config, &sqlite.path);
    let mut report = prismq_storage_sqlite::ops::validate(&sqlite, options);
    report.insert_config_check(check1);
    report
}

/// Check 1 on a configuration that loaded: where the database is and where that came
/// from, and the plugins' details and warnings ([`crate::wiring::diagnose`]), such as a
/// source that cannot work as configured.
pub fn config_check(config: &Config, db: &Path) -> CheckResult {
    let mut details = vec![
        format!(
            "database: {} ({})",
            db.display(),
            config.origin("database.path")
        ),
        format!(
            "synchronous = {}, busy_timeout = {:?}",
            config.database.synchronous, config.database.busy_timeout
        ),
        format!(
            "worker: concurrency {}, strategy {}, lease {:?}",
            config.worker.concurrency, config.worker.strategy, config.worker.lease
        ),
    ];
    let plugins = crate::wiring::diagnose(config);
    details.extend(plugins.details);
    let warnings = plugins.warnings;
    match warnings.first() {
        None => CheckResult::new(1, Outcome::Pass, "the configuration loads and is valid"),
        Some(w) => CheckResult::new(1, Outcome::Warn, w.clone()),
    }
    .with_details(details)
}

/// Opens the database the configuration names, without plugins. With `migrate` (import) a
/// missing or empty file becomes a new queue and pending migrations are applied; without it
/// (maintenance, backup) only an existing PrismQ database opens, as it is: nothing is
/// created or migrated.
///
/// # Errors
/// The store's error (no data directory, network path, not a database, another
/// application's database, no queue there, schema too new, …).
pub fn open_store(config: &Config, migrate: bool) -> Result<SqliteStore, StoreError> {
    if config.database.postgres_url().is_some() {
        return Err(StoreError::Port(prismq_domain::PortError::Unavailable(
            "database.url names a PostgreSQL server, but maintenance, backup and import work on SQLite files; use PostgreSQL's own tools (VACUUM, pg_dump), or pass --db PATH for a SQLite file".into(),
        )));
    }
    let mut options = crate::wiring::sqlite_options(config)?;
    options.migrate = migrate;
    options.create = migrate;
    SqliteStore::open(options, Arc::new(SystemClock))
}

/// Checks 2 and 3 on the PostgreSQL server `url` names: the server answers (its version, the
/// schema, whether the connection is encrypted: a warning when it is not and the server is
/// another machine), and the schema's migrations (a warning when some are pending, a failure
/// when they cannot be read). Runs on a runtime of its own: `validate` runs before the CLI
/// starts one.
fn postgres_checks(url: &str, config: &Config) -> Vec<CheckResult> {
    let fail = |n, e: &dyn std::fmt::Display| {
        vec![CheckResult::new(
            n,
            Outcome::Fail,
            format!("{e}; check that the server runs and database.url's host, credentials and TLS settings (docs/postgres.md)"),
        )]
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(2, &format!("cannot start an async runtime: {e}")),
    };
    runtime.block_on(async {
        let mut o = crate::wiring::postgres_options(url, config);
        o.migrate = false;
        let store = match prismq_storage_postgres::PostgresStore::connect_lazy(
            o,
            Arc::new(SystemClock),
        ) {
            Ok(s) => s,
            Err(e) => return fail(2, &e),
        };
        let info = match store.server_info().await {
            Ok(i) => i,
            Err(e) => return fail(2, &e),
        };
        let schema = info.schema.as_deref().unwrap_or("(none)");
        let mut database = match (&info.tls, prismq_storage_postgres::is_local_url(url)) {
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
        let rows = match store.migration_status().await {
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn load(dir: &Path, db: Option<&Path>, extra: &[(&str, &str)]) -> LoadOptions {
        let mut overrides: Vec<(String, String)> = extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if let Some(db) = db {
            overrides.push(("database.path".into(), db.display().to_string()));
        }
        LoadOptions {
            platform_config_dir: None,
            working_dir: Some(dir.to_path_buf()),
            config_file: None,
            env: BTreeMap::new(),
            non_utf8_env: Vec::new(),
            overrides,
        }
    }

    fn quick() -> ValidateOptions {
        let mut v = ValidateOptions::new(true);
        v.benchmark = false;
        v
    }

    #[test]
    fn all_eight_checks_on_a_fresh_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.db");
        let config = Config::load(&load(dir.path(), Some(&db), &[])).unwrap();
        drop(open_store(&config, true).unwrap());
        let report = validate(&load(dir.path(), Some(&db), &[]), &quick());
        let numbers: Vec<u8> = report.checks.iter().map(|c| c.number).collect();
        assert_eq!(numbers, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(report.passed(), "{report:#?}");
        assert_eq!(report.database, db);
    }

    #[test]
    fn a_bad_configuration_fails_check_one_and_skips_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let report = validate(
            &load(dir.path(), None, &[("worker.concurrency", "many")]),
            &quick(),
        );
        assert_eq!(report.checks[0].number, 1);
        assert_eq!(report.checks[0].outcome, Outcome::Fail);
        assert!(report.checks[0].reason.contains("worker.concurrency"));
        assert!(report.checks[1..]
            .iter()
            .all(|c| c.outcome == Outcome::Skip));
        assert!(!report.passed());
    }

    /// The real server is in the CLI's `--test db_copy validate`; here nothing listens.
    #[test]
    fn postgres_checks_the_server_and_skips_the_file_checks() {
        let dir = tempfile::tempdir().unwrap();
        let url = [("database.url", "postgres://u:pw@127.0.0.1:1/prismq")];
        let report = validate(&load(dir.path(), None, &url), &quick());
        let numbers: Vec<u8> = report.checks.iter().map(|c| c.number).collect();
        assert_eq!(numbers, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(report.checks[0].outcome, Outcome::Pass);
        assert_eq!(report.checks[1].outcome, Outcome::Fail);
        assert!(
            report.checks[1]
                .reason
                .contains("cannot connect to PostgreSQL"),
            "{:?}",
            report.checks[1]
        );
        assert!(report.checks[2..]
            .iter()
            .all(|c| c.outcome == Outcome::Skip));
        assert!(!report.database.display().to_string().contains("pw"));
        let config = Config::load(&load(dir.path(), None, &url)).unwrap();
        assert!(open_store(&config, false).is_err());
    }

    #[test]
    fn the_api_backend_without_a_key_is_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.db");
        let config =
            Config::load(&load(dir.path(), Some(&db), &[("youtube.backend", "api")])).unwrap();
        let c = config_check(&config, &db);
        assert_eq!(c.outcome, Outcome::Warn);
        assert!(c.reason.contains("YOUTUBE_API_KEY"));
    }
}
