//! What every command gets: the global flags, the loaded configuration, how to print, and
//! ways to open the app (the commands that manage the schema or the files reach the engine
//! through `prismq_app::storage`).

use std::io::IsTerminal;

use prismq_app::{Access, App, Config, LoadOptions, PLUGINS};

use crate::exit::CliResult;
use crate::global_args::GlobalArgs;

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

    /// The app with every plugin registered (commands that enqueue or run tasks): a missing
    /// or empty database file becomes a new queue, pending migrations are applied.
    ///
    /// # Errors
    /// The store cannot be opened (exit 4; exit 2 for a path that cannot be a database) or
    /// a plugin refuses its settings (exit 5).
    pub fn app(&self) -> CliResult<App> {
        Ok(App::open_for(self.config.clone(), PLUGINS, Access::Create)?)
    }

    /// The app without plugins, for commands that only read the queue (so a bad plugin
    /// setting does not stop `tasks list` or `stats`): nothing is created or migrated.
    ///
    /// # Errors
    /// No queue at the path (exit 3), a schema behind this binary or a database that cannot
    /// be used (exit 4).
    pub fn store_app(&self) -> CliResult<App> {
        Ok(App::open_for(self.config.clone(), &[], Access::Read)?)
    }

    /// The app without plugins, for commands that change an existing queue (`tasks cancel`,
    /// `dlq retry`, `workers prune`): nothing is created; pending migrations are applied, as
    /// `enqueue` and `work` do.
    ///
    /// # Errors
    /// As [`Ctx::store_app`], without the schema refusal.
    pub fn store_app_to_write(&self) -> CliResult<App> {
        Ok(App::open_for(self.config.clone(), &[], Access::Existing)?)
    }

    /// Fails with exit 2 for a path that cannot be a database (a URI, `:memory:`) and with
    /// exit 3 when the SQLite database file does not exist yet (a PostgreSQL database is
    /// checked when it is opened). Nothing is created either way.
    ///
    /// # Errors
    /// As said.
    pub fn require_db(&self) -> CliResult {
        Ok(prismq_app::storage::require_existing(&self.config)?)
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
