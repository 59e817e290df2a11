//! The composition root: builds the storage adapter, the clock, the retry policy and the
//! plugin registry from configuration, and hands them out as an [`App`] of `Arc<dyn Port>`
//! values. Plain constructors, no global state; tests build an [`App`] from fakes with
//! [`App::from_parts`].

use std::fmt;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use prismq_domain::ports::StorageError;
use prismq_domain::ports::{Clock, Enqueued, SystemClock};
use prismq_domain::{NewTask, PortError, ValidationError};

use crate::config::Config;
use crate::registry::PluginRegistry;
use crate::runtime::{RunOptions, RunReport, Runtime, RuntimeError, WorkerSettings};

mod plugins;

pub use crate::storage::{postgres_options, sqlite_options};
pub use plugins::{
    check_ready, diagnose, quota_buckets_by_type, quota_limits, BucketLimit, PluginContext,
    PluginEntry, PLUGINS,
};
/// The storage ports an [`App`] holds (defined in the domain, shared with the contract suite).
pub use prismq_domain::ports::Ports;

/// Why the application could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The database could not be opened (the message says why and what to do), whatever
    /// its engine.
    #[error(transparent)]
    Store(#[from] StorageError),
    /// A plugin refused its configuration, or registered a task type twice.
    #[error("plugin {plugin}: {source}")]
    Plugin {
        /// The plugin's name in [`PLUGINS`].
        plugin: &'static str,
        /// What it refused.
        #[source]
        source: ValidationError,
    },
}

/// The assembled application: every port, the clock, the handlers and the configuration.
///
/// The ports are read through it as fields (`app.queue`, `app.results`: it dereferences to
/// its [`Ports`]).
#[derive(Clone)]
pub struct App {
    /// The storage ports.
    pub ports: Ports,
    /// The clock every "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// The registered handlers.
    pub registry: Arc<PluginRegistry>,
    /// The configuration it was built from.
    pub config: Config,
}

impl std::ops::Deref for App {
    type Target = Ports;

    fn deref(&self) -> &Ports {
        &self.ports
    }
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("registry", &self.registry)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl App {
    /// An app from ready-made parts (fakes in tests, or another storage adapter).
    pub fn from_parts(
        ports: Ports,
        clock: Arc<dyn Clock>,
        registry: Arc<PluginRegistry>,
        config: Config,
    ) -> App {
        App {
            ports,
            clock,
            registry,
            config,
        }
    }

    /// Opens the store named by `config.database` with the system clock — PostgreSQL when
    /// `database.url` is a `postgres://` URL (connecting on first use), else the SQLite file
    /// (or the default path) — and registers every plugin in [`PLUGINS`].
    ///
    /// # Errors
    /// [`AppError::Store`] when the database cannot be opened, [`AppError::Plugin`] when a
    /// plugin refuses its configuration.
    pub fn open(config: Config) -> Result<App, AppError> {
        App::open_with(config, PLUGINS)
    }

    /// [`App::open`] with another plugin list (`&[]` for commands that run no handler and
    /// need no plugin configuration, such as stats).
    ///
    /// # Errors
    /// As [`App::open`].
    pub fn open_with(config: Config, plugins: &[PluginEntry]) -> Result<App, AppError> {
        App::open_for(config, plugins, Access::Create)
    }

    /// [`App::open_with`] with what opening may do to a SQLite database ([`Access`]). A
    /// PostgreSQL store connects on first use and migrates its schema then, whatever `access`.
    ///
    /// # Errors
    /// As [`App::open`]; with [`Access::Existing`] or [`Access::Read`], no queue at the path
    /// (a `NotFound` [`StorageError`]); with [`Access::Read`], a schema behind this binary.
    pub fn open_for(
        config: Config,
        plugins: &[PluginEntry],
        access: Access,
    ) -> Result<App, AppError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let ports = crate::storage::open_ports(&config, access, clock.clone())?;
        let ctx = PluginContext {
            quota: ports.quota.clone(),
            clock: clock.clone(),
            tracked: ports.tracked.clone(),
        };
        let registry = plugins::build_registry(plugins, &config, &ctx)?;
        Ok(App::from_parts(ports, clock, Arc::new(registry), config))
    }

    /// Validates `task` against the registered handlers (see [`PluginRegistry::validate`]),
    /// then enqueues it.
    ///
    /// # Errors
    /// `PortError::Invalid` naming the field (`type`, `params.top_n`, …), or the queue's error.
    pub async fn enqueue(&self, task: NewTask) -> Result<Enqueued, PortError> {
        self.registry.validate(&task)?;
        self.queue.enqueue(task).await
    }

    /// Validates every task first (errors name `tasks[i].field`), then enqueues all or none.
    ///
    /// # Errors
    /// As [`App::enqueue`].
    pub async fn enqueue_batch(&self, tasks: Vec<NewTask>) -> Result<Vec<Enqueued>, PortError> {
        for (i, t) in tasks.iter().enumerate() {
            self.registry
                .validate(t)
                .map_err(|e| e.within(&format!("tasks[{i}]")))?;
        }
        self.queue.enqueue_batch(tasks).await
    }

    /// The quota buckets each task type of the configured plugins charges, whatever plugins
    /// this app registered (`stats` opens none); `None` when a plugin refuses its settings.
    pub fn quota_buckets_by_type(&self) -> Option<std::collections::BTreeMap<String, Vec<String>>> {
        let ctx = PluginContext {
            quota: self.quota.clone(),
            clock: self.clock.clone(),
            tracked: self.tracked.clone(),
        };
        plugins::quota_buckets_by_type(&self.config, &ctx)
    }

    /// The worker runtime with the `[worker]` settings.
    pub fn runtime(&self) -> Runtime {
        self.runtime_with(WorkerSettings::from_config(&self.config.worker))
    }

    /// The worker runtime with explicit settings (the CLI's `--concurrency`, tests).
    pub fn runtime_with(&self, settings: WorkerSettings) -> Runtime {
        Runtime::from_ports(&self.ports, self.registry.clone(), settings)
    }

    /// Runs workers with the `[worker]` settings until `shutdown` or the mode ends them.
    ///
    /// # Errors
    /// See [`Runtime::run`].
    pub async fn work(
        &self,
        options: RunOptions,
        shutdown: CancellationToken,
    ) -> Result<RunReport, RuntimeError> {
        self.runtime().run(options, shutdown).await
    }
}

/// What opening a SQLite queue may do to the file. Whatever the access, a path that cannot
/// be a database and a SQLite database made by another application are refused before
/// anything is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Commands that put work on the queue or run it (`enqueue`, `work`, `collect`, `import`):
    /// a missing or empty file becomes a new queue, pending migrations are applied.
    Create,
    /// Commands that change an existing queue (`tasks cancel|retry`, `dlq retry|purge`,
    /// `workers prune`): no file or schema is created; pending migrations are applied.
    Existing,
    /// Commands that only read: nothing is created or migrated, and a schema behind this
    /// binary is refused with what to run.
    Read,
}

#[cfg(test)]
mod tests;
