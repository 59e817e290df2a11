//! Operations that need the configuration: `validate` runs check 1 (the configuration
//! loads and is usable) and then the configured engine's checks 2 to 8 through its
//! [`prismq_domain::ports::SchemaAdmin`]; [`open_store`] opens a SQLite queue for the tools
//! that work on SQLite files only.

use std::path::{Path, PathBuf};

use prismq_domain::ports::validation::{CheckResult, Outcome, ValidateOptions, ValidationReport};
use prismq_domain::ports::StorageError;
use prismq_storage_sqlite::SqliteStore;

use crate::config::{Config, LoadOptions};
use crate::storage;

/// Loads the configuration (check 1) and, if it loads, validates the database it names
/// (checks 2–8 as its engine answers them: all of them on a SQLite file; on a PostgreSQL
/// server 2 and 3 connect to it, its version and TLS, the schema's migrations, and 4–8 are
/// skipped). Never fails: every problem is a check result.
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
    let check1 = match storage::database_file(&config) {
        Ok(Some(file)) => config_check(&config, &file),
        Ok(None) => CheckResult::new(
            1,
            Outcome::Pass,
            format!(
                "the configuration loads and is valid ({})",
                storage::engine_name(&config)
            ),
        ),
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
    // `validate` runs before the CLI starts a runtime: it runs on one of its own.
    let mut report = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(storage::validate(&config, options)),
        Err(e) => {
            let mut report = ValidationReport::not_run(
                PathBuf::new(),
                options.quick,
                "not run: no async runtime",
            );
            report.checks.retain(|c| c.number != 2);
            report.checks.insert(
                0,
                CheckResult::new(
                    2,
                    Outcome::Fail,
                    format!("cannot start an async runtime: {e}"),
                ),
            );
            report
        }
    };
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

/// Opens the SQLite queue the configuration names, without plugins (see
/// [`storage::open_sqlite_store`]).
///
/// # Errors
/// A PostgreSQL `database.url` (not supported), or the store's error (no data directory,
/// network path, not a database, another application's database, no queue there, schema too
/// new, …).
pub fn open_store(config: &Config, migrate: bool) -> Result<SqliteStore, StorageError> {
    storage::open_sqlite_store(config, migrate)
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
