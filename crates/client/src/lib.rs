//! PrismQ's HTTP client adapter: the domain ports a worker runtime uses, implemented over
//! `prismq serve`'s `/v1/work` endpoints, so `prismq work --server URL` runs the unchanged
//! runtime and plugins on a machine with no database file and no database password.
//!
//! [`RemoteStore`] implements [`TaskQueue`](prismq_domain::ports::TaskQueue) (claim — a long
//! poll —, start, renew, complete, fail, release, and a loop's batch of claims or of
//! completions as one request each), [`WorkerRegistry`](prismq_domain::ports::WorkerRegistry)
//! (register, heartbeat, deregister), [`TaskLog::append`](prismq_domain::ports::TaskLog::append)
//! and [`ResultStore::save`](prismq_domain::ports::ResultStore::save) for a task it holds
//! the lease of, the whole [`QuotaLedger`](prismq_domain::ports::QuotaLedger),
//! [`ScheduleStore::fire_due`](prismq_domain::ports::ScheduleStore::fire_due), and what
//! handlers read or ask for besides: [`TrackedVideos`](prismq_domain::ports::TrackedVideos)
//! (`refresh_stats`), [`ResultStore::baselines`](prismq_domain::ports::ResultStore::baselines)
//! and [`TaskQueue::enqueue`](prismq_domain::ports::TaskQueue::enqueue) for follow-up tasks
//! (`POST /v1/tasks`, so the key needs the `enqueue` scope too). The operator's other
//! methods (enqueue batches, list, cancel, results queries, …) are not a worker's: they answer
//! `Invalid` naming the API endpoint or command to use instead.
//!
//! Transport errors, 429 and 503 are retried with backoff inside each call for
//! [`RemoteOptions::retry_for`], then surface as `Unavailable` or `Busy` (transient), which
//! the runtime retries in its turn: a server restart costs a worker nothing but the wait.
//! A refused key (401, 403) is `Invalid` on field `api key`, which ends a run at once.

mod http;
mod ports;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use prismq_domain::{Lease, TaskId, ValidationError};

pub use http::ClientError;

/// The environment variable `prismq work --server` reads the key from.
pub const ENV_API_KEY: &str = "PRISMQ_API_KEY";

/// The longest claim long poll the server grants.
pub const MAX_CLAIM_WAIT: Duration = Duration::from_secs(30);

/// An API key: kept out of `Debug`, logs and messages; sent only as a sensitive header.
#[derive(Clone)]
pub struct ApiKeySecret(String);

impl ApiKeySecret {
    /// Checks the key's shape (`pqk_` and 64 lowercase hex digits) without ever quoting it.
    ///
    /// # Errors
    /// A [`ValidationError`] on `api key` saying what is accepted.
    pub fn new(text: &str) -> Result<ApiKeySecret, ValidationError> {
        let t = text.trim();
        prismq_domain::ports::PresentedKey::parse(t).map_err(|_| {
            ValidationError::new(
                "api key",
                "the key given is not a PrismQ API key (its text is not shown)",
                "pqk_ followed by 64 lowercase hex digits, as `prismq keys create` printed it",
            )
        })?;
        Ok(ApiKeySecret(t.to_owned()))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeySecret(redacted)")
    }
}

/// The most bytes of a CA certificate file read.
pub const CA_FILE_MAX: u64 = 1024 * 1024;

/// What a CA certificate file must hold.
pub const CA_ACCEPTED: &str =
    "a PEM file (at most 1 MiB) with one or more CERTIFICATE blocks: the CA that signed the server's certificate, or the server's self-signed certificate itself";

/// Certificates an `https://` server's certificate may chain to besides the bundled web PKI
/// roots: a private CA, or a server's self-signed certificate.
#[derive(Clone)]
pub struct TrustedCa {
    path: std::path::PathBuf,
    certs: Vec<reqwest::Certificate>,
}

impl fmt::Debug for TrustedCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedCa")
            .field("path", &self.path)
            .field("certificates", &self.certs.len())
            .finish()
    }
}

impl TrustedCa {
    /// Reads the PEM certificates in `path`.
    ///
    /// # Errors
    /// A [`ValidationError`] on `ca cert` naming the file: it cannot be read, is larger than
    /// [`CA_FILE_MAX`], or holds no certificate.
    pub fn read(path: &std::path::Path) -> Result<TrustedCa, ValidationError> {
        use std::io::Read;
        let bad = |problem: String| {
            ValidationError::new(
                "ca cert",
                format!(
                    "cannot use the CA certificate file {}: {problem}",
                    path.display()
                ),
                CA_ACCEPTED,
            )
        };
        let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
        let mut pem = Vec::new();
        file.take(CA_FILE_MAX + 1)
            .read_to_end(&mut pem)
            .map_err(|e| bad(e.to_string()))?;
        if u64::try_from(pem.len()).unwrap_or(u64::MAX) > CA_FILE_MAX {
            return Err(bad("it is larger than 1 MiB".into()));
        }
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|_| bad("it is not PEM text".into()))?;
        if certs.is_empty() || !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            return Err(bad("it holds no CERTIFICATE block".into()));
        }
        Ok(TrustedCa {
            path: path.to_path_buf(),
            certs,
        })
    }

    /// The file it was read from.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// How to reach the server and how patient to be.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// The server's base URL (`http://127.0.0.1:8787`, `https://queue.example`).
    pub server: url::Url,
    /// Trusted besides the bundled web PKI roots for an `https://` server.
    pub ca: Option<TrustedCa>,
    /// The key (scope `work`).
    pub api_key: ApiKeySecret,
    /// How long a claim waits on the server for a task (0: answer at once, as a draining
    /// run wants; at most 30 s).
    pub claim_wait: Duration,
    /// How long one call retries transport errors, 429 and 503 before it gives up with a
    /// transient error (the runtime then retries in its turn).
    pub retry_for: Duration,
    /// Ends waiting claims (they answer "nothing") and retries at once: the run's shutdown.
    pub stop: CancellationToken,
}

impl RemoteOptions {
    /// Options for `server` and `api_key`: claims wait 25 s, calls retry for 10 s.
    ///
    /// # Errors
    /// A URL that is not `http://` or `https://` with a host, or one with a query or
    /// credentials.
    pub fn new(server: &str, api_key: ApiKeySecret) -> Result<RemoteOptions, ValidationError> {
        Ok(RemoteOptions {
            server: parse_server(server)?,
            ca: None,
            api_key,
            claim_wait: Duration::from_secs(25),
            retry_for: Duration::from_secs(10),
            stop: CancellationToken::new(),
        })
    }

    /// True when the key would cross a network unencrypted (plain HTTP to a host that is
    /// not loopback).
    pub fn is_plain_over_network(&self) -> bool {
        if self.server.scheme() != "http" {
            return false;
        }
        match self.server.host() {
            Some(url::Host::Ipv4(ip)) => !ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => !ip.is_loopback(),
            Some(url::Host::Domain(d)) => d != "localhost",
            None => true,
        }
    }
}

fn parse_server(text: &str) -> Result<url::Url, ValidationError> {
    let accepted = "an http:// or https:// URL of a `prismq serve`, such as http://127.0.0.1:8787, without credentials or a query";
    let shown = prismq_domain::task::truncate_for_message(text.trim());
    let bad = |problem: String| ValidationError::new("server", problem, accepted);
    let mut url =
        url::Url::parse(text.trim()).map_err(|e| bad(format!("{shown:?} is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad(format!("{shown:?} is not an http(s) URL with a host")));
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
        return Err(bad(
            "the URL carries credentials or a query; the key goes in --api-key-file or PRISMQ_API_KEY".into(),
        ));
    }
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok(url)
}

/// The ports over HTTP. Cheap to clone (one connection pool, one lease table).
#[derive(Clone)]
pub struct RemoteStore {
    pub(crate) http: Arc<http::Http>,
    /// The leases this process holds, by task: what items and log entries are fenced by.
    pub(crate) leases: Arc<Mutex<HashMap<TaskId, Lease>>>,
    pub(crate) claim_wait: Duration,
    pub(crate) stop: CancellationToken,
    /// Whether the server answers the batch endpoints (`/v1/work/claims` and
    /// `/v1/work/completions`); cleared when one answers 404 (a server older than them), and
    /// the calls are then made one a task.
    pub(crate) batches: Arc<std::sync::atomic::AtomicBool>,
}

impl fmt::Debug for RemoteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteStore")
            .field("server", &self.http.base.as_str())
            .finish_non_exhaustive()
    }
}

impl RemoteStore {
    /// A store talking to `options.server`. Nothing is sent until the first call.
    ///
    /// # Errors
    /// The HTTP client cannot be built (no TLS roots).
    pub fn new(options: RemoteOptions) -> Result<RemoteStore, ClientError> {
        let claim_wait = options.claim_wait.min(MAX_CLAIM_WAIT);
        let stop = options.stop.clone();
        Ok(RemoteStore {
            http: Arc::new(http::Http::new(&options)?),
            leases: Arc::default(),
            claim_wait,
            stop,
            batches: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        })
    }

    /// The server's URL.
    pub fn server(&self) -> &url::Url {
        &self.http.base
    }

    /// Checks that the server answers and takes the key for work (one `GET /v1/work/quota`),
    /// without retrying: what `prismq work --server` asks before it starts.
    ///
    /// # Errors
    /// [`ClientError::Refused`] for a refused key (401, 403), [`ClientError::Untrusted`] when
    /// TLS refuses the server's certificate, [`ClientError::Unreachable`]
    /// when the server does not answer, [`ClientError::Server`] for any other failure.
    pub async fn check(&self) -> Result<(), ClientError> {
        self.http.probe("v1/work/quota").await
    }
}
