//! Typed, validated configuration, loaded in layers with the `config` crate.
//!
//! Layers, later wins: built-in defaults < `prismq.toml` in the platform's configuration
//! directory < `prismq.toml` in the working directory, or the file named by `--config` (or
//! `PRISMQ_CONFIG`) instead < environment variables `PRISMQ_SECTION__KEY` (and aliases:
//! `PRISMQ_QUEUE_DB_PATH`, and those the plugins declare) < command-line overrides. The
//! loader takes the environment as an input ([`LoadOptions::env`]) so tests never touch the
//! process's.
//!
//! The app types its own sections; each plugin declares, types and checks its own section
//! (`plugin_sections`, [`prismq_domain::Plugin`]). An unknown key is an error naming it and
//! where it came from; a bad value names the key, the value, the origin and what is accepted.
//! A plugin's secrets are redacted in every output, including [`Config::effective`].
//! `docs/configuration.md` lists every setting.

// Loading runs once at start-up and its errors carry the key, value, origin and accepted
// values by design; their size does not matter.
#![allow(clippy::result_large_err)]

mod effective;
mod loader;
mod plugin_sections;
mod raw;
mod secret;
mod typed;

pub use effective::{EffectiveConfig, EffectiveEntry};
pub use loader::{
    env_var_for, platform_config_dir, LoadOptions, ENV_ALIASES, ENV_CONFIG_FILE, ENV_PREFIX,
    FILE_NAME, MAX_FILE_BYTES,
};
pub use plugin_sections::PluginSections;
pub use prismq_domain::setting_values::{
    format_duration, parse_duration, DURATION_ACCEPTED, WHOLE_SECONDS_ACCEPTED,
};
pub use raw::{KEYS, SECTIONS};
pub use secret::{redact_url_password, Secret, REDACTED};

use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use prismq_domain::settings::{Section, SettingValue};
use prismq_domain::{ClaimingStrategy, Plugin, RetryPolicy, TaskType};

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "from", rename_all = "snake_case")]
pub enum Origin {
    /// The built-in default.
    Default,
    /// A configuration file.
    File(PathBuf),
    /// An environment variable (its name).
    Env(String),
    /// A command-line override (the key it set).
    Flag(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(p) => write!(f, "file {}", p.display()),
            Origin::Env(v) => write!(f, "environment variable {v}"),
            Origin::Flag(k) => write!(f, "command-line override of {k}"),
        }
    }
}

/// Why configuration could not be loaded. Every message says which key or file is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A key no setting has: probably a typo.
    #[error("unknown configuration key `{key}` (from {origin}); known keys: {}", known.join(", "))]
    UnknownKey {
        /// The key as given (`worker.concurency`), or the unknown section (`workr`).
        key: String,
        /// Where it was set.
        origin: Origin,
        /// The known keys of its section, or the sections when the section is unknown.
        known: Vec<String>,
    },
    /// A value that does not parse or is out of range.
    #[error("invalid value for `{key}` (from {origin}): {value}: {problem}; accepted: {accepted}")]
    InvalidValue {
        /// The setting.
        key: String,
        /// The value as given, quoted (`<redacted>` for a secret).
        value: String,
        /// What is wrong with it.
        problem: String,
        /// What would be accepted.
        accepted: String,
        /// Where it was set.
        origin: Origin,
    },
    /// A file that was named explicitly (`--config`, `PRISMQ_CONFIG`) does not exist.
    #[error("configuration file {} does not exist; check the path given with --config or PRISMQ_CONFIG", path.display())]
    MissingFile {
        /// The path.
        path: PathBuf,
    },
    /// A file that exists could not be read or is not valid TOML.
    #[error("cannot read configuration file {}: {reason}", path.display())]
    File {
        /// The path.
        path: PathBuf,
        /// The reader's or parser's explanation.
        reason: String,
    },
    /// A `PRISMQ_*` environment variable (or an alias of a key) whose value, or name, is not
    /// UTF-8. Its value is never shown.
    #[error("environment variable {var} is not valid UTF-8 (its value is not shown); accepted: UTF-8 text; set it again as UTF-8 or unset it")]
    NotUtf8 {
        /// The variable's name (invalid bytes replaced by U+FFFD).
        var: String,
    },
    /// Anything else the `config` crate refused (should not happen after the key checks).
    #[error("invalid configuration: {0}")]
    Malformed(String),
}

/// SQLite's `synchronous` pragma as the configuration names it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Synchronous {
    /// Safe with WAL against application crashes; a power loss may lose the last commits.
    #[default]
    Normal,
    /// Every commit is durable across power loss; slower.
    Full,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

macro_rules! named_enum {
    ($ty:ident, $accepted:literal, $( $name:literal => $variant:ident ),* ) => {
        impl $ty {
            /// The accepted names.
            pub const ACCEPTED: &'static str = $accepted;

            /// The canonical name.
            pub const fn as_str(self) -> &'static str {
                match self { $( $ty::$variant => $name, )* }
            }
        }
        impl FromStr for $ty {
            type Err = String;
            /// Case-insensitive; an unknown name is an error listing the accepted ones.
            fn from_str(s: &str) -> Result<Self, String> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $( $name => Ok($ty::$variant), )*
                    _ => Err(format!("{s:?} is not one of {}", $accepted)),
                }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(Synchronous, "normal, full", "normal" => Normal, "full" => Full);
named_enum!(LogFormat, "text, json", "text" => Text, "json" => Json);

fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

/// `[database]`: where the queue lives. A password in `url` is redacted by `Debug` and
/// `Serialize` (and so in the effective-configuration dump).
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct DatabaseConfig {
    /// The SQLite file; `None` means the storage adapter's default (which honours
    /// `PRISMQ_QUEUE_DB_PATH`, and otherwise lies in the platform's data directory).
    pub path: Option<PathBuf>,
    /// The same as a URL (`sqlite:///abs/path.db`, `sqlite://rel.db`, `sqlite:rel.db`), or a
    /// PostgreSQL server (`postgres://…`, `postgresql://…`). At most one of `path` and `url`
    /// may be set.
    #[serde(serialize_with = "secret::ser_redacted_url")]
    pub url: Option<String>,
    /// SQLite's `synchronous` mode.
    pub synchronous: Synchronous,
    /// How long a write waits for a lock held by another process before reporting busy.
    #[serde(serialize_with = "ser_duration")]
    pub busy_timeout: Duration,
    /// SQLite only: the page size, in bytes, of a database file PrismQ creates (a power of two
    /// from 512 to 65,536); an existing file keeps its own.
    pub page_size: u32,
    /// PostgreSQL only: the schema holding PrismQ's tables (created if missing), so several
    /// queues can share one database; `None` uses the connection's default (`public`).
    pub schema: Option<String>,
    /// PostgreSQL only: the most connections this process keeps open.
    pub pool_size: usize,
}

impl DatabaseConfig {
    /// The PostgreSQL URL when `url` is a `postgres://` or `postgresql://` URL.
    pub fn postgres_url(&self) -> Option<&str> {
        self.url
            .as_deref()
            .filter(|u| crate::storage::is_postgres_url(u))
    }

    /// `page_size` as the SQLite adapter takes it. Loading checks the value, so only a
    /// `DatabaseConfig` built by hand can hold one SQLite would not accept (and ignore): that
    /// gets SQLite's default.
    pub fn new_file_page_size(&self) -> prismq_storage_sqlite::PageSize {
        prismq_storage_sqlite::PageSize::new(self.page_size).unwrap_or_default()
    }

    /// The configured file: `path`, or the path inside `url`; `None` for the default.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.path
            .clone()
            .or_else(|| self.url.as_deref().and_then(typed::sqlite_url_path))
    }
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("path", &self.path)
            .field("url", &self.url.as_deref().map(secret::redact_url_password))
            .field("synchronous", &self.synchronous)
            .field("busy_timeout", &self.busy_timeout)
            .field("page_size", &self.page_size)
            .finish()
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            path: None,
            url: None,
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(5),
            page_size: prismq_storage_sqlite::PageSize::DEFAULT.get(),
            schema: None,
            pool_size: 16,
        }
    }
}

/// `[worker]`: how `prismq work` runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerConfig {
    /// Concurrent worker loops in one process (default: the number of CPUs).
    pub concurrency: usize,
    /// The order tasks are claimed in.
    pub strategy: ClaimingStrategy,
    /// The task types to work on; empty means every registered type.
    pub task_types: Vec<TaskType>,
    /// The region this worker serves (tasks requiring another region are left alone).
    pub region: Option<String>,
    /// A claim's lease; renewed every third of it while the handler runs.
    #[serde(serialize_with = "ser_duration")]
    pub lease: Duration,
    /// How often each loop writes a heartbeat.
    #[serde(serialize_with = "ser_duration")]
    pub heartbeat_interval: Duration,
    /// The first wait after finding nothing to claim.
    #[serde(serialize_with = "ser_duration")]
    pub idle_backoff_min: Duration,
    /// The longest wait between claims when idle.
    #[serde(serialize_with = "ser_duration")]
    pub idle_backoff_max: Duration,
    /// A handler running longer is cancelled and its attempt fails as retryable.
    #[serde(serialize_with = "ser_duration")]
    pub handler_timeout: Duration,
    /// On shutdown, how long in-flight handlers may take to finish before their leases are
    /// released.
    #[serde(serialize_with = "ser_duration")]
    pub shutdown_grace: Duration,
    /// How many tasks each loop may claim at once and keep ahead ([`Prefetch`]).
    pub prefetch: Prefetch,
    /// A remote worker (`prismq work --server https://…`) also trusts the certificates in
    /// this PEM file: a private CA, or the server's self-signed certificate.
    pub server_ca_cert: Option<PathBuf>,
}

/// The most tasks a loop keeps ahead (the range of `worker.prefetch` is 1 to this).
pub const MAX_PREFETCH: u64 = 256;

/// The most tasks a loop keeps ahead with `worker.prefetch = "auto"` on a queue that claims
/// and completes them in one transaction.
pub const AUTO_PREFETCH: usize = 16;

/// `worker.prefetch`: how many tasks each loop may claim at once and keep ahead. More than
/// one claims them in one step and writes their completions together, at the cost of tasks
/// held (running, under lease) before they start; a loop holds only as many as its recent
/// tasks ran in a few milliseconds, so slow tasks are still taken one at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefetch {
    /// Up to [`AUTO_PREFETCH`] where the queue claims and completes them in one transaction
    /// (a SQLite file), one at a time elsewhere (PostgreSQL, a remote server), where holding
    /// tasks saves nothing today. The default.
    Auto,
    /// At most this many, on any queue (1: one task at a time).
    AtMost(usize),
}

impl Prefetch {
    /// The most tasks a loop keeps ahead on a queue that does (`in_one_step`) or does not
    /// claim and complete them in one transaction.
    pub fn limit(self, in_one_step: bool) -> usize {
        match self {
            Prefetch::Auto if in_one_step => AUTO_PREFETCH,
            Prefetch::Auto => 1,
            Prefetch::AtMost(n) => n.max(1),
        }
    }

    /// `auto`, or a number from 1 to [`MAX_PREFETCH`]; what else is wrong, and what is
    /// accepted.
    ///
    /// # Errors
    /// The text is neither.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("auto") {
            return Ok(Prefetch::Auto);
        }
        t.parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PREFETCH as usize).contains(n))
            .map(Prefetch::AtMost)
            .ok_or_else(|| format!("invalid prefetch: {t}; accepted: auto, or 1 (one task at a time) to {MAX_PREFETCH}"))
    }
}

impl std::fmt::Display for Prefetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Prefetch::Auto => f.write_str("auto"),
            Prefetch::AtMost(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for Prefetch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Prefetch::Auto => s.serialize_str("auto"),
            Prefetch::AtMost(n) => s.serialize_u64(*n as u64),
        }
    }
}

/// The number of CPUs, or 1 when it cannot be known.
pub fn default_concurrency() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            concurrency: default_concurrency(),
            strategy: ClaimingStrategy::Lifo,
            task_types: Vec::new(),
            region: None,
            lease: Duration::from_secs(60),
            heartbeat_interval: Duration::from_secs(10),
            idle_backoff_min: Duration::from_millis(50),
            idle_backoff_max: Duration::from_secs(5),
            handler_timeout: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(30),
            prefetch: Prefetch::Auto,
            server_ca_cert: None,
        }
    }
}

/// `[retry]`: the retry policy for retryable failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetryConfig {
    /// The first retry's maximum delay (equal jitter: uniform in `[base / 2, base]`).
    #[serde(serialize_with = "ser_duration")]
    pub base: Duration,
    /// No retry delay exceeds this.
    #[serde(serialize_with = "ser_duration")]
    pub cap: Duration,
    /// Attempts given to a task that names none.
    pub max_attempts: u32,
}

impl RetryConfig {
    /// The domain's policy.
    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            base: self.base,
            cap: self.cap,
            max_attempts: self.max_attempts,
        }
    }
}

impl Default for RetryConfig {
    fn default() -> Self {
        let p = RetryPolicy::default();
        RetryConfig {
            base: p.base,
            cap: p.cap,
            max_attempts: p.max_attempts,
        }
    }
}

/// `[logging]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoggingConfig {
    /// A level (`error`, `warn`, `info`, `debug`, `trace`, `off`) or `tracing` filter
    /// directives (`info,prismq_app=debug`). `RUST_LOG`, when set, wins (the CLI applies it).
    pub level: String,
    /// Text or JSON lines.
    pub format: LogFormat,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

/// `[ideas]`: how channel baselines, outlier scores and growth rates are computed when
/// results are saved (see `docs/ideas.md` and `docs/tracking.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IdeasConfig {
    /// A baseline is the median of at most this many of the channel's most recent uploads
    /// (per format and basis).
    pub window: u32,
    /// Uploads younger than this many days stay out of the total-views baseline.
    pub baseline_min_age_days: u32,
    /// Fewer uploads in a sample than this: no baseline, so no score.
    pub min_sample: u32,
    /// A video scored on its total views must be at least this many days old.
    pub score_min_age_days: u32,
    /// The shortest span of history a growth rate is reported over, in minutes.
    pub growth_min_span_minutes: u32,
}

impl IdeasConfig {
    /// The domain's settings.
    pub fn settings(&self) -> prismq_domain::outlier::OutlierSettings {
        prismq_domain::outlier::OutlierSettings {
            window: self.window,
            baseline_min_age_days: self.baseline_min_age_days,
            min_sample: self.min_sample,
            score_min_age_days: self.score_min_age_days,
            growth_min_span_minutes: self.growth_min_span_minutes,
        }
    }
}

impl Default for IdeasConfig {
    fn default() -> Self {
        let d = prismq_domain::outlier::OutlierSettings::default();
        IdeasConfig {
            window: d.window,
            baseline_min_age_days: d.baseline_min_age_days,
            min_sample: d.min_sample,
            score_min_age_days: d.score_min_age_days,
            growth_min_span_minutes: d.growth_min_span_minutes,
        }
    }
}

/// The address `prismq serve` binds when neither `server.bind` nor `--bind` says otherwise.
pub const DEFAULT_SERVER_BIND: &str = "127.0.0.1:8787";

/// The largest `server.body_limit` (and `prismq serve --body-limit`): 1 GiB.
pub const MAX_BODY_LIMIT: u64 = 1024 * 1024 * 1024;

/// `[server]`: how `prismq serve` listens (each has a `prismq serve` flag that wins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerConfig {
    /// Where to listen.
    pub bind: std::net::SocketAddr,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); set with `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM); set with `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// The largest request body, in bytes (413 above it).
    pub body_limit: u64,
    /// The longest a request may take, its body included (408 after it).
    #[serde(serialize_with = "ser_duration")]
    pub request_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: std::net::SocketAddr::from(([127, 0, 0, 1], 8787)),
            tls_cert: None,
            tls_key: None,
            body_limit: 4 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The whole configuration, typed and validated. `Default` is the built-in defaults.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// `[database]`.
    pub database: DatabaseConfig,
    /// `[worker]`.
    pub worker: WorkerConfig,
    /// `[retry]`.
    pub retry: RetryConfig,
    /// Every plugin's section (`[youtube]`, …), typed and checked by its plugin.
    #[serde(flatten)]
    pub plugins: PluginSections,
    /// `[logging]`.
    pub logging: LoggingConfig,
    /// `[ideas]`.
    pub ideas: IdeasConfig,
    /// `[server]`.
    pub server: ServerConfig,
    #[serde(skip)]
    origins: BTreeMap<String, Origin>,
    #[serde(skip)]
    keys: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config::defaults_with(crate::plugins::PLUGINS)
    }
}

impl Config {
    /// Loads and validates every layer described by `options`.
    ///
    /// # Errors
    /// The first problem found, as a [`ConfigError`] naming the key or file.
    pub fn load(options: &LoadOptions) -> Result<Config, ConfigError> {
        Config::load_with(options, crate::plugins::PLUGINS)
    }

    /// [`Config::load`] with another plugin list: their sections and only theirs are known.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn load_with(
        options: &LoadOptions,
        plugins: &[&dyn Plugin],
    ) -> Result<Config, ConfigError> {
        loader::load(options, plugins)
    }

    /// The built-in defaults, with `plugins`' sections.
    pub fn defaults_with(plugins: &[&dyn Plugin]) -> Config {
        Config {
            database: DatabaseConfig::default(),
            worker: WorkerConfig::default(),
            retry: RetryConfig::default(),
            plugins: PluginSections::defaults(plugins),
            logging: LoggingConfig::default(),
            ideas: IdeasConfig::default(),
            server: ServerConfig::default(),
            origins: BTreeMap::new(),
            keys: loader::Known::new(plugins).keys,
        }
    }

    /// The section a plugin named `name` reads (empty when the configuration has none).
    pub fn plugin_section(&self, name: &str) -> Section {
        self.plugins.section(name)
    }

    /// Sets the plugin setting `key` (`youtube.api_key`) as if a layer had, for set-ups built
    /// in code (tests); the plugin checks the value again.
    ///
    /// # Errors
    /// An unknown key, or a value the plugin refuses.
    pub fn set_plugin_setting(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let unknown = || ConfigError::UnknownKey {
            key: key.to_owned(),
            origin: Origin::Default,
            known: self.keys.clone(),
        };
        let (section, field) = key.split_once('.').ok_or_else(unknown)?;
        let plugin = crate::plugins::PLUGINS
            .iter()
            .find(|p| p.name() == section && p.settings().iter().any(|s| s.key == field))
            .ok_or_else(unknown)?;
        self.plugins
            .set(*plugin, field, SettingValue::Str(value.to_owned()))
    }

    /// Every key, `section.field`, in the order [`Config::effective`] lists them.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// Where `key` (`worker.lease`) got its value; [`Origin::Default`] when no layer set it.
    pub fn origin(&self, key: &str) -> Origin {
        self.origins.get(key).cloned().unwrap_or(Origin::Default)
    }

    /// Every setting with its value (secrets redacted) and origin, in key order.
    pub fn effective(&self) -> EffectiveConfig {
        effective::effective(self)
    }
}

#[cfg(test)]
mod tests;
