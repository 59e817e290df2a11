//! The typed stage of loading: every raw value parsed and range-checked into [`Config`],
//! with cross-field checks, each error naming its key, value, origin and accepted values.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use prismq_domain::task::MAX_ATTEMPTS_LIMIT;
use prismq_domain::{ClaimingStrategy, Compatibility, TaskType};

use prismq_domain::setting_values::{self as values, non_empty_text, Bad};
use prismq_domain::settings::SettingValue;

use super::plugin_sections::PluginSections;
use super::raw::{Raw, RawConfig};
use super::secret::redact_url_password;
use super::{
    Config, ConfigError, DatabaseConfig, IdeasConfig, LogFormat, LoggingConfig, Origin, Prefetch,
    RetryConfig, ServerConfig, Synchronous, WorkerConfig, MAX_PREFETCH,
};

struct Reader {
    origins: BTreeMap<String, Origin>,
}

impl Reader {
    fn origin(&self, key: &str) -> Origin {
        self.origins.get(key).cloned().unwrap_or(Origin::Default)
    }

    fn invalid(&self, key: &str, raw: &Raw, bad: Bad) -> ConfigError {
        ConfigError::InvalidValue {
            key: key.to_owned(),
            value: if key == "database.url" {
                redact_url_password(&raw.render()).into_owned()
            } else {
                raw.render()
            },
            problem: bad.problem,
            accepted: bad.accepted,
            origin: self.origin(key),
        }
    }

    fn get<T>(
        &self,
        key: &str,
        raw: Option<Raw>,
        default: T,
        parse: impl FnOnce(&Raw) -> Result<T, Bad>,
    ) -> Result<T, ConfigError> {
        match raw {
            None => Ok(default),
            Some(r) => parse(&r).map_err(|b| self.invalid(key, &r, b)),
        }
    }

    /// An error about a combination of values, reported on `key`.
    fn conflict(&self, key: &str, value: String, problem: &str, accepted: &str) -> ConfigError {
        ConfigError::InvalidValue {
            key: key.to_owned(),
            value,
            problem: problem.to_owned(),
            accepted: accepted.to_owned(),
            origin: self.origin(key),
        }
    }
}

fn dur(min_ms: u64, max_ms: u64) -> impl Fn(&Raw) -> Result<Duration, Bad> {
    move |r| {
        values::duration(
            r,
            Duration::from_millis(min_ms),
            Duration::from_millis(max_ms),
        )
    }
}

const SEC: u64 = 1_000;
const MIN: u64 = 60 * SEC;
const HOUR: u64 = 60 * MIN;
const DAY: u64 = 24 * HOUR;

pub(super) fn build(
    raw: RawConfig,
    plugins: PluginSections,
    keys: Vec<String>,
    origins: BTreeMap<String, Origin>,
) -> Result<Config, ConfigError> {
    let r = Reader { origins };
    let d = DatabaseConfig::default();
    let rd = raw.database;
    let database = DatabaseConfig {
        path: r.get(
            "database.path",
            rd.path,
            d.path,
            |v| non_empty_text("a file path")(v).map(|s| Some(PathBuf::from(s))),
        )?,
        url: r.get("database.url", rd.url, d.url, |v| {
            const ACC: &str = "a sqlite: URL such as sqlite:///var/lib/prismq/queue.db, or postgres://USER@HOST/DATABASE (postgresql:// too)";
            let s = values::text(v, ACC)?;
            let s = s.trim();
            if let Some(checked) = crate::storage::check_server_url(s) {
                checked?;
                return Ok(Some(s.to_owned()));
            }
            sqlite_url_path(s)
                .map(|_| Some(s.to_owned()))
                .ok_or_else(|| Bad::new("not a sqlite: URL with a path, nor a postgres:// URL", ACC))
        })?,
        synchronous: r.get("database.synchronous", rd.synchronous, d.synchronous, |v| {
            values::parsed::<Synchronous>(v, Synchronous::ACCEPTED)
        })?,
        busy_timeout: r.get("database.busy_timeout", rd.busy_timeout, d.busy_timeout, dur(0, 10 * MIN))?,
        page_size: r.get("database.page_size", rd.page_size, d.page_size, |v| {
            let accepted = prismq_storage_sqlite::PageSize::ACCEPTED;
            let n = values::integer(v, 512, 65_536)
                .map_err(|_| Bad::new("not an integer from 512 to 65536", accepted))?;
            u32::try_from(n)
                .ok()
                .and_then(prismq_storage_sqlite::PageSize::new)
                .map(prismq_storage_sqlite::PageSize::get)
                .ok_or_else(|| Bad::new("not a page size SQLite accepts", accepted))
        })?,
        schema: r.get("database.schema", rd.schema, d.schema, |v| {
            const ACC: &str = "a PostgreSQL schema name: 1 to 63 characters of a-z, 0-9 and _, starting with a letter or _";
            let s = values::text(v, ACC)?;
            if crate::storage::is_schema_name(&s) {
                Ok(Some(s))
            } else {
                Err(Bad::new("not a plain lower-case identifier", ACC))
            }
        })?,
        pool_size: r.get("database.pool_size", rd.pool_size, d.pool_size, |v| {
            values::integer(v, 1, 1024).map(|n| usize::try_from(n).unwrap_or(1))
        })?,
    };
    if let (Some(_), Some(url)) = (&database.path, &database.url) {
        return Err(r.conflict(
            "database.url",
            format!("{url:?}"),
            "database.path is set too",
            "only one of database.path and database.url",
        ));
    }
    // A schema for a SQLite queue would be silently ignored: a mistake worth naming. (The
    // pool size has a default, which `config show` prints and a file may carry over to a
    // SQLite queue, so it is merely unused there.)
    if let (false, Some(schema)) = (crate::storage::has_schemas(&database), &database.schema) {
        return Err(r.conflict(
            "database.schema",
            format!("{schema:?}"),
            "the queue is a SQLite file, which has no schemas",
            "database.schema only with a postgres:// database.url",
        ));
    }

    let w = WorkerConfig::default();
    let rw = raw.worker;
    let worker = WorkerConfig {
        concurrency: r.get("worker.concurrency", rw.concurrency, w.concurrency, |v| {
            values::integer(v, 1, 1024).map(|n| usize::try_from(n).unwrap_or(1))
        })?,
        strategy: r.get("worker.strategy", rw.strategy, w.strategy, |v| {
            values::parsed::<ClaimingStrategy>(v, "fifo, lifo, priority, weighted_random")
        })?,
        task_types: r.get("worker.task_types", rw.task_types, w.task_types, |v| {
            const ACC: &str = "a list of task types such as [\"channel_scrape\", \"keyword_search\"] (or comma-separated text); empty means every registered type";
            let mut out: Vec<TaskType> = Vec::new();
            for name in values::string_list(v, ACC)? {
                let t = TaskType::new(name).map_err(|e| Bad::new(e.problem, e.accepted))?;
                if !out.contains(&t) {
                    out.push(t);
                }
            }
            Ok(out)
        })?,
        region: r.get("worker.region", rw.region, w.region, |v| {
            const ACC: &str = "an ISO 3166-1 alpha-2 code such as US, GB or DE";
            let s = values::text(v, ACC)?;
            Compatibility::with_region(&s)
                .map(|c| c.region)
                .map_err(|e| Bad::new(e.problem, e.accepted))
        })?,
        lease: r.get("worker.lease", rw.lease, w.lease, dur(SEC, DAY))?,
        heartbeat_interval: r.get("worker.heartbeat_interval", rw.heartbeat_interval, w.heartbeat_interval, dur(100, HOUR))?,
        idle_backoff_min: r.get("worker.idle_backoff_min", rw.idle_backoff_min, w.idle_backoff_min, dur(1, HOUR))?,
        idle_backoff_max: r.get("worker.idle_backoff_max", rw.idle_backoff_max, w.idle_backoff_max, dur(1, HOUR))?,
        handler_timeout: r.get("worker.handler_timeout", rw.handler_timeout, w.handler_timeout, dur(SEC, 7 * DAY))?,
        shutdown_grace: r.get("worker.shutdown_grace", rw.shutdown_grace, w.shutdown_grace, dur(0, HOUR))?,
        prefetch: r.get("worker.prefetch", rw.prefetch, w.prefetch, |v| {
            const ACC: &str = "\"auto\", or an integer from 1 to 256 (1: one task at a time)";
            match v {
                SettingValue::Str(s) if s.trim().eq_ignore_ascii_case("auto") => Ok(Prefetch::Auto),
                _ => values::integer(v, 1, MAX_PREFETCH)
                    .map(|n| Prefetch::AtMost(usize::try_from(n).unwrap_or(1)))
                    .map_err(|b| Bad::new(b.problem, ACC)),
            }
        })?,
        server_ca_cert: r.get("worker.server_ca_cert", rw.server_ca_cert, w.server_ca_cert, |v| {
            non_empty_text("a path to a PEM file of CA certificates")(v).map(|s| Some(PathBuf::from(s)))
        })?,
    };
    if worker.idle_backoff_max < worker.idle_backoff_min {
        return Err(r.conflict(
            "worker.idle_backoff_max",
            values::format_duration(worker.idle_backoff_max),
            "shorter than worker.idle_backoff_min",
            &format!(
                "a duration of at least worker.idle_backoff_min ({})",
                values::format_duration(worker.idle_backoff_min)
            ),
        ));
    }

    let rr = raw.retry;
    let dr = RetryConfig::default();
    let retry = RetryConfig {
        base: r.get("retry.base", rr.base, dr.base, dur(0, DAY))?,
        cap: r.get("retry.cap", rr.cap, dr.cap, dur(0, 7 * DAY))?,
        max_attempts: r.get(
            "retry.max_attempts",
            rr.max_attempts,
            dr.max_attempts,
            |v| {
                values::integer(v, 1, u64::from(MAX_ATTEMPTS_LIMIT))
                    .map(|n| u32::try_from(n).unwrap_or(1))
            },
        )?,
    };
    if retry.cap < retry.base {
        return Err(r.conflict(
            "retry.cap",
            values::format_duration(retry.cap),
            "shorter than retry.base",
            &format!(
                "a duration of at least retry.base ({})",
                values::format_duration(retry.base)
            ),
        ));
    }

    let rl = raw.logging;
    let dl = LoggingConfig::default();
    let logging = LoggingConfig {
        level: r.get("logging.level", rl.level, dl.level, log_level)?,
        format: r.get("logging.format", rl.format, dl.format, |v| {
            values::parsed::<LogFormat>(v, LogFormat::ACCEPTED)
        })?,
    };

    let ri = raw.ideas;
    let di = IdeasConfig::default();
    let days = |v: &Raw| values::integer(v, 0, 3_650).map(|n| u32::try_from(n).unwrap_or(0));
    let ideas = IdeasConfig {
        window: r.get("ideas.window", ri.window, di.window, |v| {
            values::integer(v, 1, 1_000).map(|n| u32::try_from(n).unwrap_or(1))
        })?,
        baseline_min_age_days: r.get(
            "ideas.baseline_min_age_days",
            ri.baseline_min_age_days,
            di.baseline_min_age_days,
            days,
        )?,
        min_sample: r.get("ideas.min_sample", ri.min_sample, di.min_sample, |v| {
            values::integer(v, 1, 1_000).map(|n| u32::try_from(n).unwrap_or(1))
        })?,
        score_min_age_days: r.get(
            "ideas.score_min_age_days",
            ri.score_min_age_days,
            di.score_min_age_days,
            days,
        )?,
        growth_min_span_minutes: r.get(
            "ideas.growth_min_span_minutes",
            ri.growth_min_span_minutes,
            di.growth_min_span_minutes,
            |v| values::integer(v, 1, 1_440).map(|n| u32::try_from(n).unwrap_or(1)),
        )?,
    };
    if ideas.min_sample > ideas.window {
        return Err(r.conflict(
            "ideas.min_sample",
            ideas.min_sample.to_string(),
            "larger than ideas.window, so no baseline could ever be made",
            &format!("1 to ideas.window ({})", ideas.window),
        ));
    }

    let server = server(&r, raw.server)?;

    Ok(Config {
        database,
        worker,
        retry,
        plugins,
        logging,
        ideas,
        server,
        origins: r.origins,
        keys,
    })
}

fn server(r: &Reader, rs: super::raw::RawServer) -> Result<ServerConfig, ConfigError> {
    let ds = ServerConfig::default();
    let file = |v: &Raw| non_empty_text("a path to a PEM file")(v).map(|s| Some(PathBuf::from(s)));
    let server = ServerConfig {
        bind: r.get("server.bind", rs.bind, ds.bind, |v| {
            const ACC: &str = "IP:PORT such as 127.0.0.1:8787 or [::1]:8787";
            let s = values::text(v, ACC)?;
            s.trim()
                .parse()
                .map_err(|_| Bad::new("not an IP address and port", ACC))
        })?,
        tls_cert: r.get("server.tls_cert", rs.tls_cert, ds.tls_cert, file)?,
        tls_key: r.get("server.tls_key", rs.tls_key, ds.tls_key, file)?,
        body_limit: r.get("server.body_limit", rs.body_limit, ds.body_limit, |v| {
            values::integer(v, 1024, super::MAX_BODY_LIMIT)
        })?,
        request_timeout: r.get(
            "server.request_timeout",
            rs.request_timeout,
            ds.request_timeout,
            dur(3 * SEC, HOUR),
        )?,
    };
    match (&server.tls_cert, &server.tls_key) {
        (Some(cert), None) => Err(r.conflict(
            "server.tls_cert",
            format!("{:?}", cert.display().to_string()),
            "server.tls_key is not set",
            "server.tls_cert and server.tls_key together (HTTPS), or neither (plain HTTP)",
        )),
        (None, Some(key)) => Err(r.conflict(
            "server.tls_key",
            format!("{:?}", key.display().to_string()),
            "server.tls_cert is not set",
            "server.tls_cert and server.tls_key together (HTTPS), or neither (plain HTTP)",
        )),
        _ => Ok(server),
    }
}

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

fn log_level(v: &Raw) -> Result<String, Bad> {
    const ACC: &str = "a level (off, error, warn, info, debug, trace) or tracing filter directives such as info,prismq_app=debug";
    let s = values::text(v, ACC)?;
    let t = s.trim();
    if t.contains('=') || t.contains(',') {
        tracing_subscriber::EnvFilter::try_new(t)
            .map_err(|_| Bad::new("not valid filter directives", ACC))?;
        Ok(t.to_owned())
    } else if LEVELS.contains(&t.to_ascii_lowercase().as_str()) {
        Ok(t.to_ascii_lowercase())
    } else {
        Err(Bad::new("not a level", ACC))
    }
}

/// The path in a `sqlite:` URL: `sqlite:///abs/x.db` → `/abs/x.db`, `sqlite://x.db` and
/// `sqlite:x.db` → `x.db`, `sqlite:///C:/x.db` → `C:/x.db`.
pub(super) fn sqlite_url_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let b = rest.as_bytes();
    let rest = if b.len() >= 3 && b[0] == b'/' && b[1].is_ascii_alphabetic() && b[2] == b':' {
        &rest[1..]
    } else {
        rest
    };
    (!rest.is_empty()).then(|| PathBuf::from(rest))
}
