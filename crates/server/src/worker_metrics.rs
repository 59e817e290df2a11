//! Prometheus metrics of one worker process, for `prismq work --metrics-bind ADDR`: the
//! [`QueueMetrics`] (claims and their latency, finished attempts by outcome and their
//! duration, counted by [`Instrumented`] around the runtime's task queue; quota used per
//! bucket and, where the worker can read it, the queue's depth, read at each scrape). Served at
//! `/metrics` on its own listener, without the API and without a key, so a loopback address
//! is required unless the operator says otherwise (the same rule as `prismq serve`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus::Registry;
use tokio_util::sync::CancellationToken;

use prismq_domain::ports::{QuotaLedger, TaskQueue};

pub use crate::queue_metrics::Instrumented;
use crate::queue_metrics::{self, QueueMetrics};
use crate::ServerError;

/// The counters and histograms of one worker process: [`QueueMetrics`] named
/// `prismq_worker_…`, in a registry of their own.
#[derive(Clone)]
pub struct WorkerMetrics {
    registry: Registry,
    queue: QueueMetrics,
}

impl std::fmt::Debug for WorkerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerMetrics").finish_non_exhaustive()
    }
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        WorkerMetrics::new()
    }
}

impl From<WorkerMetrics> for QueueMetrics {
    fn from(m: WorkerMetrics) -> QueueMetrics {
        m.queue
    }
}

impl WorkerMetrics {
    /// Fresh metrics in a registry of their own.
    pub fn new() -> WorkerMetrics {
        let registry = Registry::new();
        let queue = QueueMetrics::register(&registry, "prismq_worker");
        WorkerMetrics { registry, queue }
    }

    /// The text exposition, after reading the quota buckets and (when `queue` answers) the
    /// queue's depth; a store that does not answer leaves the last values read.
    pub async fn render(&self, quota: &dyn QuotaLedger, queue: Option<&dyn TaskQueue>) -> Vec<u8> {
        if let Err(e) = self.queue.refresh(quota, queue).await {
            tracing::debug!(error = %e, "metrics: could not read the quota or the queue's depth");
        }
        queue_metrics::encode(&self.registry).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot encode the metrics");
            Vec::new()
        })
    }
}

/// What the metrics listener reads at each scrape.
#[derive(Clone)]
struct Sources {
    metrics: WorkerMetrics,
    quota: Arc<dyn QuotaLedger>,
    queue: Option<Arc<dyn TaskQueue>>,
}

/// Checks the metrics address: loopback, or another with `insecure` (then a warning to
/// print at every start comes back).
///
/// # Errors
/// [`ServerError::InsecureMetricsBind`].
pub fn check_metrics_bind(bind: SocketAddr, insecure: bool) -> Result<Option<String>, ServerError> {
    if bind.ip().is_loopback() {
        return Ok(None);
    }
    if !insecure {
        return Err(ServerError::InsecureMetricsBind(bind));
    }
    Ok(Some(format!(
        "serving worker metrics on {bind}, which other machines can reach, without a key (--metrics-insecure-bind)"
    )))
}

/// Serves `GET /metrics` on `bind` until `shutdown`; calls `on_listen` with the bound
/// address. `queue`: where the queue's depth is read (none for a remote worker, whose key
/// reads nothing).
///
/// # Errors
/// A refused address ([`check_metrics_bind`]), one that cannot be bound, or I/O.
pub async fn serve_metrics(
    bind: SocketAddr,
    insecure: bool,
    metrics: WorkerMetrics,
    quota: Arc<dyn QuotaLedger>,
    queue: Option<Arc<dyn TaskQueue>>,
    shutdown: CancellationToken,
    on_listen: impl FnOnce(SocketAddr),
) -> Result<(), ServerError> {
    check_metrics_bind(bind, insecure)?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|source| ServerError::Bind { addr: bind, source })?;
    on_listen(listener.local_addr()?);
    let router = Router::new()
        .route("/metrics", get(scrape))
        .fallback(|| async {
            crate::error::ApiError::not_found("this listener serves /metrics only")
        })
        .with_state(Sources {
            metrics,
            quota,
            queue,
        });
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}

async fn scrape(State(s): State<Sources>) -> axum::response::Response {
    let body = s.metrics.render(&*s.quota, s.queue.as_deref()).await;
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, queue_metrics::content_type())],
        body,
    )
        .into_response()
}
