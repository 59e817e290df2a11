//! Prometheus metrics at `/metrics`: HTTP requests by route, method and status with their
//! latency (recorded by a middleware), and the [`QueueMetrics`]: claims and attempts'
//! outcomes made through this server (its handlers' task queue is
//! [`Instrumented`](crate::queue_metrics::Instrumented)) with
//! their latency and duration, and the quota used and the queue's depth (read from the
//! store at each scrape).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::queue_metrics::{self, QueueMetrics};
use crate::ServerState;
use prismq_domain::ports::Scope;

/// The server's metrics.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    /// The queue's metrics, named `prismq_…`.
    pub queue: QueueMetrics,
}

impl Metrics {
    /// Fresh metrics in a registry of their own.
    ///
    /// # Panics
    /// Never: the metric names and labels are constants known to be valid.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "prismq_http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "prismq_http_request_duration_seconds",
                "HTTP request latency by route and method",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["route", "method"],
        )
        .expect("valid metric");
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
        ] {
            registry.register(c).expect("registered once");
        }
        let queue = QueueMetrics::register(&registry, "prismq");
        Metrics {
            registry,
            requests,
            latency,
            queue,
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// The middleware counting every request by its route template (`/v1/tasks/{id}`, never
/// the raw path, so ids do not become labels) and timing it.
pub async fn record(State(state): State<ServerState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    let m = &state.metrics;
    m.latency
        .with_label_values(&[route.as_str(), method.as_str()])
        .observe(started.elapsed().as_secs_f64());
    m.requests
        .with_label_values(&[route.as_str(), method.as_str(), response.status().as_str()])
        .inc();
    response
}

/// `GET /metrics`: the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "metrics",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody),
    ),
    security(("api_key" = ["read"])))]
pub async fn scrape(
    State(state): State<ServerState>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> ApiResult<Response> {
    caller.require(Scope::Read)?;
    let m = &state.metrics;
    m.queue
        .refresh(&*state.app.quota, Some(&*state.app.queue))
        .await?;
    let out = queue_metrics::encode(&m.registry).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("cannot encode the metrics: {e}"),
        )
    })?;
    Ok(([(header::CONTENT_TYPE, queue_metrics::content_type())], out).into_response())
}
