//! What every command gets: the global flags, the loaded configuration, how to print, and
//! ways to open the app or the bare store (for the commands that manage the schema).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use prismq_app::{App, Config, LoadOptions};
use prismq_domain::ports::SystemClock;
use prismq_storage_sqlite::SqliteStore;

use crate::args::GlobalArgs;
use crate::exit::{CliError, CliResult, Exit};

/// The command's environment.
#[derive(Debug)]
pub struct Ctx {
    /// The global flags.
    pub global: GlobalArgs,
    /// The effective configuration.
    pub config: Config,
}

impl Ctx {
    /// Loads the configuration layers with the global flags as command-line overrides.
    ///
    /// # Errors
    /// The configuration's error (exit 5).
    pub fn load(global: GlobalArgs) -> CliResult<Ctx> {
        let config = Config::load(&load_options(&global))?;
        Ok(Ctx { global, config })
    }

    /// True for `--json`.
    pub fn json(&self) -> bool {
        self.global.json
    }

    /// True when a live status line or progress bar may be drawn on stderr.
    pub fn interactive(&self) -> bool {
        !self.global.quiet
            && !self.global.json
            && self.global.verbose == 0
            && std::io::stderr().is_terminal()
    }

    /// The app with every plugin registered (commands that enqueue or run tasks).
    ///
    /// # Errors
    /// The store cannot be opened (exit 4) or a plugin refuses its settings (exit 5).
    pub fn app(&self) -> CliResult<App> {
        Ok(App::open(self.config.clone())?)
    }

    /// The app without plugins (commands that only read or manage the queue), so a bad
    /// plugin setting does not stop `tasks list` or `stats`.
    ///
    /// # Errors
    /// The store cannot be opened (exit 4).
    pub fn store_app(&self) -> CliResult<App> {
        Ok(App::open_with(self.config.clone(), &[])?)
    }

    /// The database file the configuration names.
    ///
    /// # Errors
    /// No default location exists (exit 5).
    pub fn db_path(&self) -> CliResult<PathBuf> {
        if self.config.database.postgres_url().is_some() {
            return Err(CliError::new(
                Exit::Config,
                "database.url names a PostgreSQL server, but this command works on a SQLite file only; unset database.url (or pass --db PATH) to use it",
            ));
        }
        match self.config.database.sqlite_path() {
            Some(p) => Ok(p),
            None => Ok(prismq_storage_sqlite::default_db_path()?),
        }
    }

    /// The bare SQLite store, for `init` and `migrate`. With `migrate` false no migration is
    /// applied on open.
    ///
    /// This mirrors the app's private `sqlite_options`: the app has no way to open a store
    /// without applying migrations, which `migrate status/down` need.
    ///
    /// # Errors
    /// The store's error.
    pub fn sqlite(&self, migrate: bool) -> CliResult<SqliteStore> {
        let mut o = prismq_app::wiring::sqlite_options(&self.config)?;
        o.path = self.db_path()?;
        o.migrate = migrate;
        Ok(SqliteStore::open(o, Arc::new(SystemClock))?)
    }

    /// Fails with exit 3 when the SQLite database file does not exist yet (a PostgreSQL
    /// database is checked when it is opened).
    ///
    /// # Errors
    /// As said.
    pub fn require_db(&self) -> CliResult {
        if self.config.database.postgres_url().is_some() {
            return Ok(());
        }
        let p = self.db_path()?;
        if p.exists() {
            Ok(())
        } else {
            Err(CliError::not_found(format!(
                "no database at {}; run `prismq init` first, or pass --db PATH",
                p.display()
            )))
        }
    }
}

/// The loader's options: the process's environment and directories, `--config`, and
/// `--db` and `-v`/`-q` as overrides of `database.path` and `logging.level`.
pub fn load_options(global: &GlobalArgs) -> LoadOptions {
    let mut overrides = Vec::new();
    if let Some(db) = &global.db {
        overrides.push(("database.path".to_owned(), db.display().to_string()));
    }
    if let Some(level) = level_override(global) {
        overrides.push(("logging.level".to_owned(), level.to_owned()));
    }
    LoadOptions::from_process(global.config.clone(), overrides)
}

/// The log level `-v`/`-q` ask for, if any.
pub fn level_override(global: &GlobalArgs) -> Option<&'static str> {
    if global.quiet {
        Some("error")
    } else {
        match global.verbose {
            0 => None,
            1 => Some("debug"),
            _ => Some("trace"),
        }
    }
}
