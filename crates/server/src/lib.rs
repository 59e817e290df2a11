//! PrismQ's HTTP adapter: `prismq serve` puts the queue behind API v1 (JSON, the same
//! meanings as the CLI), authenticated by API keys with scopes and per-key rate limits,
//! with an OpenAPI 3.1 document and Prometheus metrics. Like the CLI, it is one more
//! adapter over the app's ports: no SQL and no business rule lives here. The web dashboard
//! ([`web`]) is served at `/` by the same router.
//!
//! Layers, outermost first: tracing, metrics, a request timeout, compression, the body
//! limit (413), then per route the key check (401, 429) and the handler's scope (403).

pub mod api;
pub mod auth;
pub mod error;
pub mod metrics;
pub mod queue_metrics;
pub mod secret;
pub mod tls;
pub mod web;
pub mod worker_metrics;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use prismq_app::App;

/// The address `prismq serve` binds without `--bind`.
pub const DEFAULT_BIND: &str = prismq_app::config::DEFAULT_SERVER_BIND;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Where to listen.
    pub bind: SocketAddr,
    /// The operator accepts serving plain HTTP on a non-loopback address.
    pub insecure_bind: bool,
    /// The largest request body, in bytes (413 above it).
    pub body_limit: usize,
    /// The longest a request may take, body included (408 after it).
    pub request_timeout: Duration,
    /// Serve HTTPS with these files; plain HTTP without.
    pub tls: Option<tls::TlsFiles>,
    /// A dashboard session ends after this long without a request.
    pub session_idle: Duration,
}

impl ServerOptions {
    /// Defaults for `bind`: 4 MiB bodies, 30 s per request.
    pub fn new(bind: SocketAddr) -> ServerOptions {
        ServerOptions {
            bind,
            insecure_bind: false,
            body_limit: 4 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            tls: None,
            session_idle: web::DEFAULT_SESSION_IDLE,
        }
    }

    /// The options the configuration's `[server]` section gives (`prismq serve`'s flags then
    /// override them).
    pub fn from_config(c: &prismq_app::config::ServerConfig) -> ServerOptions {
        ServerOptions {
            body_limit: usize::try_from(c.body_limit).unwrap_or(usize::MAX),
            request_timeout: c.request_timeout,
            tls: c
                .tls_cert
                .clone()
                .zip(c.tls_key.clone())
                .map(|(cert, key)| tls::TlsFiles { cert, key }),
            ..ServerOptions::new(c.bind)
        }
    }
}

/// What every handler gets.
#[derive(Clone)]
pub struct ServerState {
    /// The app: ports, registry, clock, configuration.
    pub app: App,
    /// The options the server runs with.
    pub options: Arc<ServerOptions>,
    /// Rate buckets and last-use bookkeeping per key.
    pub meter: Arc<auth::Meter>,
    /// The Prometheus metrics.
    pub metrics: metrics::Metrics,
    /// Cancelled when the server stops: long polls (`/v1/work/claim`) answer at once.
    pub stopping: CancellationToken,
}

impl fmt::Debug for ServerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerState")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A plain-HTTP bind to an address other machines can reach, without the operator's
    /// explicit consent.
    #[error("refusing to serve plain HTTP on {0}, which other machines can reach: API keys would cross the network in clear. Bind a loopback address (127.0.0.1:8787) behind a TLS-terminating proxy, or pass --insecure-bind to accept the risk")]
    InsecureBind(SocketAddr),
    /// `prismq work --metrics-bind` on an address other machines can reach, without the
    /// operator's explicit consent.
    #[error("refusing to serve worker metrics without a key on {0}, which other machines can reach. Bind a loopback address (127.0.0.1:9187) and scrape it locally or through a proxy, or pass --metrics-insecure-bind to accept that")]
    InsecureMetricsBind(SocketAddr),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The server failed while running.
    #[error("the server stopped: {0}")]
    Io(#[from] std::io::Error),
}

/// Checks the bind address: a loopback address or TLS is always fine; plain HTTP on any
/// other address needs `insecure_bind`, and then comes back as a warning to print at every
/// start.
///
/// # Errors
/// [`ServerError::InsecureBind`].
pub fn check_bind(options: &ServerOptions) -> Result<Option<String>, ServerError> {
    if options.bind.ip().is_loopback() || options.tls.is_some() {
        return Ok(None);
    }
    if !options.insecure_bind {
        return Err(ServerError::InsecureBind(options.bind));
    }
    Ok(Some(format!(
        "serving plain HTTP on {}, which other machines can reach (--insecure-bind): API keys and data cross the network unencrypted; put a TLS-terminating proxy in front",
        options.bind
    )))
}

/// The whole router with its layers.
pub fn router(app: App, options: ServerOptions) -> Router {
    router_until(app, options, CancellationToken::new())
}

/// [`router`] whose long polls end when `stopping` is cancelled.
pub fn router_until(mut app: App, options: ServerOptions, stopping: CancellationToken) -> Router {
    let metrics = metrics::Metrics::new();
    // Claims and outcomes through this server's handlers are counted for `/metrics`.
    app.ports.queue = Arc::new(queue_metrics::Instrumented::new(
        app.ports.queue,
        metrics.queue.clone(),
    ));
    let state = ServerState {
        app,
        options: Arc::new(options),
        meter: Arc::new(auth::Meter::default()),
        metrics,
        stopping,
    };
    let limit = state.options.body_limit;
    let timeout = state.options.request_timeout;
    let keyed = api::routes().route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::authenticate,
    ));
    Router::new()
        .route("/v1/openapi.json", get(api::openapi_json))
        .merge(keyed)
        .merge(web::routes(&state))
        .fallback(|| async { error::ApiError::not_found("no such endpoint; see /v1/openapi.json") })
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(axum::middleware::map_response(move |r| json_413(r, limit)))
        .layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::record,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The body limit layer answers a declared oversized body itself, in plain text: give it
/// the API's error body.
async fn json_413(r: axum::response::Response, limit: usize) -> axum::response::Response {
    use axum::response::IntoResponse;
    let is_json = r
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json {
        return error::ApiError::too_large(limit).into_response();
    }
    r
}

/// Binds and serves until `shutdown`, then stops accepting and finishes the requests in
/// flight. Calls `on_listen` with the bound address (the real port for `:0`).
///
/// # Errors
/// [`ServerError`].
/// How often `prismq serve` checks for due schedules.
pub const SCHEDULE_CHECK: Duration = Duration::from_secs(1);

/// Fires the due schedules of the task types this server's plugins register, once a
/// [`SCHEDULE_CHECK`], until `stop`: `prismq serve` keeps timetables going with no worker
/// running, as every `prismq work` does. Each slot still yields one task however many
/// servers and workers check (the store's `fire_due` claims the slot). Store errors are
/// logged and tried again at the next check; a slot that did not fire stays due.
fn fire_schedules(app: App, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let types = app.registry.task_types();
        if types.is_empty() {
            return;
        }
        let mut every = tokio::time::interval(SCHEDULE_CHECK);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = every.tick() => {}
            }
            match app
                .schedules
                .fire_due(&types, prismq_app::runtime::FIRE_BATCH)
                .await
            {
                Ok(fired) => {
                    for f in &fired {
                        tracing::info!(
                            schedule = %f.name,
                            slot = %f.slot,
                            task_id = f.task.0,
                            caught_up = f.caught_up,
                            "schedule fired"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not fire due schedules; trying again"),
            }
        }
    })
}

pub async fn serve(
    app: App,
    options: ServerOptions,
    shutdown: CancellationToken,
    on_listen: impl FnOnce(SocketAddr),
) -> Result<(), ServerError> {
    check_bind(&options)?;
    let acceptor = options.tls.as_ref().map(tls::acceptor).transpose()?;
    let addr = options.bind;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })?;
    on_listen(listener.local_addr()?);
    let firing = fire_schedules(app.clone(), shutdown.clone());
    let router = router_until(app, options, shutdown.clone());
    let stop = shutdown.clone();
    let served = match acceptor {
        None => {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        }
        Some(acceptor) => {
            let listener = tls::TlsListener::new(listener, acceptor, shutdown.clone())?;
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        }
    };
    shutdown.cancel();
    let _ = firing.await;
    served?;
    Ok(())
}
