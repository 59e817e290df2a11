//! PrismQ's PostgreSQL adapter: every domain port on one PostgreSQL database, for a queue
//! that many machines share.
//!
//! - Claims select with `FOR UPDATE SKIP LOCKED` in a `MATERIALIZED` CTE (limit 1) that feeds
//!   an `UPDATE … RETURNING` and the log insert in one statement; each strategy reads one
//!   partial index (`WHERE status = 'queued'`), see [`CLAIM_QUERIES`].
//! - Every write after a claim is fenced by the lease token, as on SQLite.
//! - [`PostgresStore::subscribe`] / [`PostgresStore::wait_for_work`] wake idle workers on
//!   `NOTIFY prismq_work` (sent by a trigger when a task becomes queued).
//! - Migrations are embedded, checksummed and applied under `pg_advisory_xact_lock`.
//! - Connection loss is `PortError::Unavailable` (transient): the runtime backs off, pooled
//!   connections that died are replaced, and a claim whose commit was lost is resolved by
//!   its lease.
//!
//! Timestamps are BIGINT milliseconds from the injected [`Clock`], exactly as on SQLite.

pub mod admin;
mod claims;
mod codec;
mod dump;
mod error;
mod keys;
mod lease;
mod logs;
mod many;
pub mod migrations;
mod next;
mod notify;
mod queue;
mod quota;
mod results;
mod schedules;
mod tls;
mod tracked;
mod workers;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_util::sync::CancellationToken;

use prismq_domain::ports::Clock;
use prismq_domain::task::DEFAULT_MAX_PARAMS_BYTES;
use prismq_domain::{PortError, RetryPolicy, Timestamp};

pub use claims::CLAIM_QUERIES;
pub use queue::{list_statement, ListArg};
pub use results::{
    baseline_sample_statement, query_statements, query_statements_with, source_plan,
    QueryStatement, SourcePlan, PRUNE_SIGHTINGS_SQL, RARE_SOURCE_SIGHTINGS,
};

pub use error::StoreError;
pub use migrations::{MigrationStatus, MIGRATIONS};
pub use notify::WorkSignal;

/// True when `url` names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    let u = url.trim_start();
    u.starts_with("postgres://") || u.starts_with("postgresql://")
}

/// Whether every host a `postgres://` URL names is this machine (a unix socket, `localhost`,
/// a loopback address): where a connection without TLS exposes nothing.
pub fn is_local_url(url: &str) -> bool {
    tls::all_hosts_local(url)
}

/// Checks a `postgres://` URL without connecting or reading any file: the driver's syntax,
/// and the TLS parameters (`sslmode`'s value, `sslcert` together with `sslkey`).
///
/// # Errors
/// What is wrong, in words that never repeat the password.
pub fn check_url(url: &str) -> Result<(), String> {
    let (rest, _) = tls::split_url(url).map_err(|e| match e {
        StoreError::InvalidUrl(m) => m,
        other => other.to_string(),
    })?;
    tokio_postgres::Config::from_str(&rest)
        .map(|_| ())
        .map_err(|e| error::with_causes(&e))
}

/// The server and connection [`PostgresStore::server_info`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// `server_version`, e.g. `15.18`.
    pub version: String,
    /// The schema the tables are in (`current_schema()`), `None` if it does not exist.
    pub schema: Option<String>,
    /// The TLS protocol (`TLSv1.3`) when the connection is encrypted.
    pub tls: Option<String>,
}

/// How to open a store.
#[derive(Clone)]
pub struct PostgresOptions {
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?…]` (a unix socket: `host=/dir`).
    pub url: String,
    /// The schema holding PrismQ's tables (created if missing); `None` uses the connection's
    /// default (`public`). Several queues can share a database in different schemas.
    pub schema: Option<String>,
    /// Applied by `fail`.
    pub retry: RetryPolicy,
    /// Largest params accepted at enqueue.
    pub max_params_bytes: usize,
    /// Apply pending migrations on first use (the default). Off for `migrate` commands.
    pub migrate: bool,
    /// Most connections kept open by this process.
    pub pool_size: usize,
    /// How long to wait for a connection (pooled or new) before answering `Unavailable`.
    pub connect_timeout: Duration,
    /// How often a transaction that lost a lock conflict (deadlock, serialization) is retried
    /// before `Busy` is returned.
    pub busy_retries: u32,
    /// How channel baselines and outlier scores are computed when results are saved.
    pub outlier: prismq_domain::outlier::OutlierSettings,
}

impl std::fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("url", &"<redacted>")
            .field("schema", &self.schema)
            .field("retry", &self.retry)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl PostgresOptions {
    /// Defaults for `url`: default schema, the default retry policy, 1 MiB params, migrate
    /// on first use, 16 connections, a 5 s connect timeout.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresOptions {
            url: url.into(),
            schema: None,
            retry: RetryPolicy::default(),
            max_params_bytes: DEFAULT_MAX_PARAMS_BYTES,
            migrate: true,
            pool_size: 16,
            connect_timeout: Duration::from_secs(5),
            busy_retries: 20,
            outlier: prismq_domain::outlier::OutlierSettings::default(),
        }
    }

    /// The same options with `schema`.
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// The driver configuration: the URL, a connect timeout, an application name and the
    /// schema as `search_path`.
    pub(crate) fn pg_config(&self) -> Result<(tokio_postgres::Config, tls::Connector), StoreError> {
        let (url, tls) = tls::split_url(&self.url)?;
        let mut cfg = tokio_postgres::Config::from_str(&url)
            .map_err(|e| StoreError::InvalidUrl(error::with_causes(&e)))?;
        let connector = tls.apply(&mut cfg)?;
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(self.connect_timeout);
        }
        if cfg.get_application_name().is_none() {
            cfg.application_name("prismq");
        }
        if let Some(schema) = &self.schema {
            check_schema(schema)?;
            let opts = match cfg.get_options() {
                Some(o) if !o.trim().is_empty() => format!("{o} -c search_path={schema}"),
                _ => format!("-c search_path={schema}"),
            };
            cfg.options(&opts);
        }
        Ok((cfg, connector))
    }
}

/// Whether `s` is a schema name this adapter uses: 1 to 63 characters of a-z, 0-9 and _,
/// starting with a letter or _ (a plain identifier, never quoted).
pub fn is_valid_schema_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn check_schema(s: &str) -> Result<(), StoreError> {
    if is_valid_schema_name(s) {
        Ok(())
    } else {
        Err(StoreError::InvalidSchema(s.to_owned()))
    }
}

struct Inner {
    options: PostgresOptions,
    clock: Arc<dyn Clock>,
    pool: Pool,
    ready: tokio::sync::OnceCell<()>,
    signal: notify::Signal,
    stop: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The PostgreSQL store. Cheap to clone; clones share one connection pool. Implements
/// `TaskQueue`, `WorkerRegistry`, `TaskLog`, `ResultStore` and `QuotaLedger`.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Builds the store without connecting: the URL and schema are checked now; the first
    /// operation connects, refuses a schema newer than this binary or with altered
    /// migrations, and applies pending migrations (when `options.migrate`). Needs no async
    /// runtime to call, but the store must be used inside a tokio runtime.
    ///
    /// # Errors
    /// `InvalidUrl`, `InvalidSchema`.
    pub fn connect_lazy(
        options: PostgresOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let (cfg, tls) = options.pg_config()?;
        let manager = Manager::from_config(
            cfg.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
        let stop = CancellationToken::new();
        let signal = notify::Signal::new(cfg, tls, options.schema.clone(), stop.clone());
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                options,
                clock,
                pool,
                ready: tokio::sync::OnceCell::new(),
                signal,
                stop,
            }),
        })
    }

    /// Connects now: checks the schema's migrations and applies pending ones (when
    /// `options.migrate`), so errors surface here rather than at the first operation.
    ///
    /// # Errors
    /// As [`PostgresStore::connect_lazy`], plus a `Migration` error (schema too new, checksum
    /// mismatch) and `Port(Unavailable)` when the server cannot be reached.
    pub async fn open(options: PostgresOptions, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let store = PostgresStore::connect_lazy(options, clock)?;
        store.init().await?;
        let _ = store.inner.ready.set(());
        Ok(store)
    }

    /// The options it was built with.
    pub fn options(&self) -> &PostgresOptions {
        &self.inner.options
    }

    async fn init(&self) -> Result<(), StoreError> {
        let mut client = self.raw_client().await?;
        migrations::check(&client).await?;
        if self.inner.options.migrate {
            migrations::up(&mut client, None, self.now_ms()).await?;
            let min_span = self.inner.options.outlier.growth_min_span_secs();
            results::catch_up_growth(&mut client, min_span).await?;
        }
        Ok(())
    }

    /// Creates the configured schema if it is missing (several processes may race to).
    async fn ensure_schema(
        &self,
        client: &mut deadpool_postgres::Object,
    ) -> Result<(), StoreError> {
        if let Some(schema) = &self.inner.options.schema {
            let created: Result<(), tokio_postgres::Error> = async {
                let tx = client.transaction().await?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&migrations::LOCK_KEY])
                    .await?;
                tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                    .await?;
                tx.commit().await
            }
            .await;
            match created.map_err(error::map_err) {
                // Another process created it meanwhile (its name was cached as missing).
                Ok(()) | Err(PortError::Duplicate(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn ready(&self) -> Result<(), PortError> {
        self.inner
            .ready
            .get_or_try_init(|| async { self.init().await.map_err(PortError::from) })
            .await
            .map(|_| ())
    }

    /// A pooled connection, after the one-time schema check.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, PortError> {
        self.ready().await?;
        self.inner.pool.get().await.map_err(error::map_pool_err)
    }

    /// A pooled connection in the configured schema (created if missing), without the
    /// migrations check (migration commands).
    async fn raw_client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        let mut client = self.inner.pool.get().await.map_err(error::map_pool_err)?;
        self.ensure_schema(&mut client).await?;
        Ok(client)
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.now().as_millisecond()
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.options.retry
    }

    /// Runs one statement that is its own transaction, again after a lock conflict (`Busy`),
    /// up to [`PostgresOptions::busy_retries`] times. A batch's statements change several
    /// task types' rows of `queue_counts`; they go through their tasks type by type so that
    /// two sharing a count slot lock those rows in one order, but SQL does not promise the
    /// order a plan updates rows in. Should two deadlock, the server rolls one back whole,
    /// and it is safe to run again.
    pub(crate) async fn query_retrying(
        &self,
        client: &deadpool_postgres::Object,
        stmt: &tokio_postgres::Statement,
        args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, PortError> {
        let mut attempt = 0;
        loop {
            match client.query(stmt, args).await.map_err(error::map_err) {
                Err(PortError::Busy(_)) if attempt < self.busy_retries() => {
                    attempt += 1;
                    busy_pause(attempt).await;
                }
                other => return other,
            }
        }
    }

    pub(crate) fn busy_retries(&self) -> u32 {
        self.inner.options.busy_retries
    }

    /// Runs SQL directly (tests, tools): a pooled connection after the schema check.
    ///
    /// # Errors
    /// `Unavailable` when no connection can be had.
    pub async fn connection(&self) -> Result<deadpool_postgres::Object, PortError> {
        self.client().await
    }

    /// What the server says of this connection: its version, the schema in use, and the
    /// TLS protocol when the connection is encrypted. Needs no migration.
    ///
    /// # Errors
    /// `Port(Unavailable)` when the server cannot be reached.
    pub async fn server_info(&self) -> Result<ServerInfo, StoreError> {
        let client = self.raw_client().await?;
        let row = client
            .query_one(
                "SELECT current_setting('server_version'), current_schema(),
                        (SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl)",
                &[],
            )
            .await?;
        Ok(ServerInfo {
            version: row.get(0),
            schema: row.get(1),
            tls: row.get(2),
        })
    }

    /// Migration status of this database.
    ///
    /// # Errors
    /// As [`migrations::status`].
    pub async fn migration_status(&self) -> Result<Vec<MigrationStatus>, StoreError> {
        let client = self.raw_client().await?;
        migrations::status(&client).await
    }

    /// Applies migrations up to `target` (default latest), then, from schema v8 on,
    /// computes the growth of the records still waiting for it (`growth_pending`).
    ///
    /// # Errors
    /// As [`migrations::up`].
    pub async fn migrate_up(&self, target: Option<i64>) -> Result<Vec<i64>, StoreError> {
        let mut client = self.raw_client().await?;
        let done = migrations::up(&mut client, target, self.now_ms()).await?;
        if migrations::check(&client).await? >= migrations::GROWTH_CATCH_UP_VERSION {
            let min_span = self.inner.options.outlier.growth_min_span_secs();
            results::catch_up_growth(&mut client, min_span).await?;
        }
        Ok(done)
    }

    /// Reverts migrations down to `target`.
    ///
    /// # Errors
    /// As [`migrations::down`].
    pub async fn migrate_down(&self, target: i64) -> Result<Vec<i64>, StoreError> {
        let mut client = self.raw_client().await?;
        migrations::down(&mut client, target).await
    }

    /// A subscription to enqueue notifications: [`WorkSignal::wait`] returns early when a
    /// task becomes queued in this store's schema (see the crate docs). Starts the shared
    /// listening connection on first use.
    pub fn subscribe(&self) -> WorkSignal {
        self.inner.signal.subscribe()
    }

    /// Waits until a task is enqueued (true) or `timeout` passes (false). A notification
    /// sent before this call is not seen: a worker loop should hold one [`WorkSignal`]
    /// from [`PostgresStore::subscribe`] across claims instead.
    pub async fn wait_for_work(&self, timeout: Duration) -> bool {
        self.subscribe().wait(timeout).await
    }
}

impl prismq_domain::ports::WorkNotifier for PostgresStore {
    fn subscribe(&self) -> Box<dyn prismq_domain::ports::WorkSubscription> {
        Box::new(PostgresStore::subscribe(self))
    }
}

/// The pause before the `attempt`-th retry after a lock conflict: a few milliseconds, longer
/// as attempts add up, with jitter so the transactions that collided do not meet again.
pub(crate) async fn busy_pause(attempt: u32) {
    let ms = u64::from(attempt.min(10)) * 2 + rand::random::<u64>() % 5;
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

/// Runs `$body` in a transaction on a pooled connection, committing at the end and retrying
/// the whole transaction (a few ms apart) while it loses lock conflicts (`Busy`). `$body`
/// sees the transaction as `$tx` and evaluates to `Result<T, PortError>`.
macro_rules! in_tx {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let store = $store;
        let mut attempt: u32 = 0;
        loop {
            let mut client = store.client().await?;
            let result: Result<_, prismq_domain::PortError> = async {
                let $tx = client.transaction().await.map_err(crate::error::map_err)?;
                let out: Result<_, prismq_domain::PortError> = $body;
                let out = out?;
                $tx.commit().await.map_err(crate::error::map_err)?;
                Ok(out)
            }
            .await;
            match result {
                Err(prismq_domain::PortError::Busy(_)) if attempt < store.busy_retries() => {
                    attempt += 1;
                    crate::busy_pause(attempt).await;
                }
                other => break other,
            }
        }
    }};
}
pub(crate) use in_tx;
