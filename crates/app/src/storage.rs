//! The storage boundary: the only code of the app that knows which storage engines exist.
//! It picks one from the configuration (`database.url` naming a PostgreSQL server, else the
//! SQLite file of `database.path` or the default path) and hands out the domain's ports:
//! the store's ports for the app, [`SchemaAdmin`] for `init`, `migrate` and `validate`,
//! [`Upkeep`] for `maintenance` and `backup`, and [`Dump`] / [`Load`] for `db copy`.
//! Adding an engine means an adapter crate implementing those ports and one more arm in
//! `Engine` here (docs/architecture.md, "Adding a storage engine").

use std::path::PathBuf;
use std::sync::Arc;

use prismq_domain::ports::validation::{ValidateOptions, ValidationReport};
use prismq_domain::ports::{Clock, Dump, Load, SchemaAdmin, StorageError, SystemClock, Upkeep};
use prismq_domain::setting_values::Bad;
use prismq_domain::PortError;
use prismq_storage_postgres::{PostgresOptions, PostgresStore};
use prismq_storage_sqlite::admin::SqliteAdmin;
use prismq_storage_sqlite::{SqliteOptions, SqliteStore};

use crate::config::{redact_url_password, Config, DatabaseConfig, Synchronous};
use crate::wiring::{Access, Ports};

/// The engine a configuration names.
enum Engine<'a> {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL server at this URL.
    Postgres(&'a str),
}

impl<'a> Engine<'a> {
    fn of(database: &'a DatabaseConfig) -> Engine<'a> {
        match database.postgres_url() {
            Some(url) => Engine::Postgres(url),
            None => Engine::Sqlite,
        }
    }
}

/// A `database.url` naming a database server, checked as the configuration loads: `None`
/// when it names none (a `sqlite:` URL is the configuration's own check), else its syntax.
///
/// # Errors
/// (In the `Some`) what is wrong with the URL and what the engine accepts.
pub(crate) fn check_server_url(url: &str) -> Option<Result<(), Bad>> {
    if !is_postgres_url(url) {
        return None;
    }
    const PG: &str = "postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE, with optional ?sslmode= (disable, prefer, require, verify-ca, verify-full), sslrootcert=, sslcert= and sslkey=";
    Some(prismq_storage_postgres::check_url(url).map_err(|problem| Bad::new(problem, PG)))
}

/// Whether `url` names a PostgreSQL server (`postgres://` or `postgresql://`).
pub(crate) fn is_postgres_url(url: &str) -> bool {
    prismq_storage_postgres::is_postgres_url(url)
}

/// Whether `schema` is a name `database.schema` may give (a PostgreSQL schema).
pub(crate) fn is_schema_name(schema: &str) -> bool {
    prismq_storage_postgres::is_valid_schema_name(schema)
}

/// Whether the configured engine keeps its tables in named schemas (`database.schema` is
/// refused for an engine that has none).
pub fn has_schemas(database: &DatabaseConfig) -> bool {
    matches!(Engine::of(database), Engine::Postgres(_))
}

/// The store's ports, opened as `access` allows (see [`Access`]).
///
/// # Errors
/// The database cannot be opened (the message says why and what to do).
pub(crate) fn open_ports(
    config: &Config,
    access: Access,
    clock: Arc<dyn Clock>,
) -> Result<Ports, StorageError> {
    Ok(match Engine::of(&config.database) {
        Engine::Postgres(url) => {
            // Connects on first use, so its connection and schema errors surface as the
            // first operation's `PortError::Unavailable`; a malformed URL is refused here.
            let store = PostgresStore::connect_lazy(postgres_options(url, config), clock)
                .map_err(|e| StorageError::Port(PortError::from(e)))?;
            Ports::from_store(store.clone()).with_notifier(Arc::new(store))
        }
        Engine::Sqlite => {
            let mut o = sqlite_options(config)?;
            o.create = access == Access::Create;
            o.migrate = access != Access::Read;
            let store = SqliteStore::open(o, clock)?;
            if access == Access::Read {
                store.require_current()?;
            }
            Ports::from_store(store)
        }
    })
}

/// Schema administration of the configured database, which it never migrates on its own.
///
/// # Errors
/// No default database location, or a malformed URL.
pub fn schema_admin(config: &Config) -> Result<Arc<dyn SchemaAdmin>, StorageError> {
    Ok(match Engine::of(&config.database) {
        Engine::Postgres(url) => Arc::new(bare_postgres(url, config)?),
        Engine::Sqlite => Arc::new(sqlite_admin(config)?),
    })
}

/// Upkeep (prune, checkpoint, optimize, vacuum, backup) of the configured database.
///
/// # Errors
/// As [`schema_admin`].
pub fn upkeep(config: &Config) -> Result<Arc<dyn Upkeep>, StorageError> {
    Ok(match Engine::of(&config.database) {
        Engine::Postgres(url) => Arc::new(bare_postgres(url, config)?),
        Engine::Sqlite => Arc::new(sqlite_admin(config)?),
    })
}

/// Where the configured database is, for messages: the file, or the server's URL without
/// its password.
///
/// # Errors
/// No default database location exists on this platform.
pub fn location(config: &Config) -> Result<String, StorageError> {
    Ok(match Engine::of(&config.database) {
        Engine::Postgres(url) => redact_url_password(url).into_owned(),
        Engine::Sqlite => sqlite_path(config)?.display().to_string(),
    })
}

/// The file the configured database lives in; `None` for a server.
///
/// # Errors
/// No default database location exists on this platform.
pub fn database_file(config: &Config) -> Result<Option<PathBuf>, StorageError> {
    Ok(match Engine::of(&config.database) {
        Engine::Postgres(_) => None,
        Engine::Sqlite => Some(sqlite_path(config)?),
    })
}

/// The configured engine's name, for messages (`SQLite`, `PostgreSQL`).
pub fn engine_name(config: &Config) -> &'static str {
    match Engine::of(&config.database) {
        Engine::Postgres(_) => "PostgreSQL",
        Engine::Sqlite => "SQLite",
    }
}

/// Refuses, before anything is opened or created, a database that cannot be there: a SQLite
/// path that cannot be a database (`Invalid`) or a file that does not exist (`NotFound`).
/// A server is checked when it is first used.
///
/// # Errors
/// As said.
pub fn require_existing(config: &Config) -> Result<(), StorageError> {
    match Engine::of(&config.database) {
        Engine::Postgres(_) => Ok(()),
        Engine::Sqlite => Ok(sqlite_admin(config)?.require_existing()?),
    }
}

/// Checks 2 to 8 of `validate` on the configured database, its location shown as
/// [`location`] gives it. Never fails: every problem is a check result.
pub async fn validate(config: &Config, options: &ValidateOptions) -> ValidationReport {
    let admin = match schema_admin(config) {
        Ok(a) => a,
        Err(e) => {
            let mut report = ValidationReport::not_run(
                PathBuf::new(),
                options.quick,
                "not run: the database did not open (check 2)",
            );
            report.checks.retain(|c| c.number != 2);
            report.checks.insert(
                0,
                prismq_domain::ports::validation::CheckResult::new(
                    2,
                    prismq_domain::ports::validation::Outcome::Fail,
                    e.to_string(),
                ),
            );
            return report;
        }
    };
    let mut report = admin.validate(options).await;
    if let Ok(at) = location(config) {
        report.database = PathBuf::from(at);
    }
    report
}

/// The SQLite store the configuration names, without plugins, for tools that work on SQLite
/// files only (`import legacy`). With `migrate` a missing or empty file becomes a new queue
/// and pending migrations are applied; without it only an existing PrismQ database opens,
/// as it is.
///
/// # Errors
/// A PostgreSQL `database.url` (not supported), or the store's error.
pub fn open_sqlite_store(config: &Config, migrate: bool) -> Result<SqliteStore, StorageError> {
    if let Engine::Postgres(_) = Engine::of(&config.database) {
        return Err(StorageError::unsupported(
            "store unavailable: database.url names a PostgreSQL server, but maintenance, backup and import work on SQLite files; use PostgreSQL's own tools (VACUUM, pg_dump), or pass --db PATH for a SQLite file",
        ));
    }
    let mut options = sqlite_options(config)?;
    options.migrate = migrate;
    options.create = migrate;
    Ok(SqliteStore::open(options, Arc::new(SystemClock))?)
}

/// One end of `db copy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL server URL.
    Postgres(String),
}

impl Endpoint {
    /// Parses `sqlite:PATH` (also `sqlite://PATH`) or a `postgres://`/`postgresql://` URL;
    /// `None` for anything else.
    pub fn parse(given: &str) -> Option<Endpoint> {
        let given = given.trim();
        if prismq_storage_postgres::is_postgres_url(given) {
            return Some(Endpoint::Postgres(given.to_owned()));
        }
        given
            .strip_prefix("sqlite://")
            .or_else(|| given.strip_prefix("sqlite:"))
            .filter(|p| !p.is_empty())
            .map(|p| Endpoint::Sqlite(PathBuf::from(p)))
    }

    /// Whether `schema` is a schema name this end could use (any name where it has none).
    pub fn accepts_schema(schema: &str) -> bool {
        prismq_storage_postgres::is_valid_schema_name(schema)
    }

    /// The store at this end, migrated to the current schema (a SQLite file is created if
    /// missing, with `page_size` pages), to load into; its tables in `schema` where the
    /// engine has schemas.
    ///
    /// # Errors
    /// The store cannot be opened.
    pub async fn open_target(
        &self,
        schema: Option<&str>,
        page_size: prismq_storage_sqlite::PageSize,
    ) -> Result<Arc<dyn Load>, StorageError> {
        Ok(match self {
            Endpoint::Sqlite(path) => {
                let mut o = SqliteOptions::new(path);
                o.page_size = page_size;
                Arc::new(SqliteStore::open(o, Arc::new(SystemClock))?)
            }
            Endpoint::Postgres(url) => Arc::new(copy_postgres(url, schema).await?),
        })
    }

    /// The store at this end, as it is, to dump from.
    ///
    /// # Errors
    /// The store cannot be opened.
    pub async fn open_source(&self, schema: Option<&str>) -> Result<Arc<dyn Dump>, StorageError> {
        Ok(match self {
            Endpoint::Sqlite(path) => {
                let mut o = SqliteOptions::new(path);
                o.migrate = false;
                Arc::new(SqliteStore::open(o, Arc::new(SystemClock))?)
            }
            Endpoint::Postgres(url) => Arc::new(copy_postgres(url, schema).await?),
        })
    }
}

/// A PostgreSQL end of a copy, connected now (migrating its schema, created if missing).
async fn copy_postgres(url: &str, schema: Option<&str>) -> Result<PostgresStore, StorageError> {
    let mut options = PostgresOptions::new(url);
    options.schema = schema.map(str::to_owned);
    Ok(PostgresStore::open(options, Arc::new(SystemClock)).await?)
}

/// The PostgreSQL store at `url` without migrating on first use (`migrate`, `validate`).
fn bare_postgres(url: &str, config: &Config) -> Result<PostgresStore, StorageError> {
    let mut o = postgres_options(url, config);
    o.migrate = false;
    Ok(PostgresStore::connect_lazy(o, Arc::new(SystemClock))?)
}

fn sqlite_admin(config: &Config) -> Result<SqliteAdmin, StorageError> {
    Ok(SqliteAdmin::new(
        sqlite_options(config)?,
        Arc::new(SystemClock),
    ))
}

fn sqlite_path(config: &Config) -> Result<PathBuf, StorageError> {
    match config.database.sqlite_path() {
        Some(p) => Ok(p),
        None => Ok(prismq_storage_sqlite::default_db_path()?),
    }
}

/// The PostgreSQL options `config` asks for with `url` (retry policy, schema, pool size),
/// migrating on first use. `prismq migrate` turns `migrate` off.
pub fn postgres_options(url: &str, config: &Config) -> PostgresOptions {
    let mut o = PostgresOptions::new(url);
    o.retry = config.retry.policy();
    o.schema.clone_from(&config.database.schema);
    o.pool_size = config.database.pool_size;
    o.outlier = config.ideas.settings();
    o
}

/// The SQLite options `config` asks for (path, synchronous mode, busy timeout, page size of a
/// new file, retry policy),
/// migrating on open. Commands that manage migrations themselves turn `migrate` off.
///
/// # Errors
/// No default database location exists on this platform.
pub fn sqlite_options(config: &Config) -> Result<SqliteOptions, StorageError> {
    let mut o = SqliteOptions::new(sqlite_path(config)?);
    o.synchronous = match config.database.synchronous {
        Synchronous::Normal => prismq_storage_sqlite::Synchronous::Normal,
        Synchronous::Full => prismq_storage_sqlite::Synchronous::Full,
    };
    o.busy_timeout = config.database.busy_timeout;
    o.page_size = config.database.new_file_page_size();
    o.retry = config.retry.policy();
    o.outlier = config.ideas.settings();
    Ok(o)
}
