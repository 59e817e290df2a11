//! Prometheus metrics of one worker process, for `prismq work --metrics-bind ADDR`: claims
//! and their latency, finished attempts by outcome and their duration (counted by
//! [`Instrumented`], a task queue wrapped around the runtime's), quota used per bucket and,
//! where the worker can read it, the queue's depth (read at each scrape). Served at
//! `/metrics` on its own listener, without the API and without a key, so a loopback address
//! is required unless the operator says otherwise (the same rule as `prismq serve`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use parking_lot::Mutex;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use prismq_domain::ports::{
    ClaimRequest, ClaimedTask, Enqueued, FailOutcome, Failure, QueueStats, QuotaLedger, TaskFilter,
    TaskQueue,
};
use prismq_domain::{
    Lease, NewTask, PortError, RetryDecision, Task, TaskId, TaskStatus, Timestamp,
};

use crate::ServerError;

/// The counters and histograms of one worker process.
#[derive(Clone)]
pub struct WorkerMetrics {
    registry: Registry,
    claims: IntCounterVec,
    claim_latency: HistogramVec,
    finished: IntCounterVec,
    duration: HistogramVec,
    quota: IntGaugeVec,
    depth: IntGaugeVec,
    started: Arc<Mutex<HashMap<TaskId, Instant>>>,
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

const SECONDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 300.0,
];

impl WorkerMetrics {
    /// Fresh metrics in a registry of their own.
    ///
    /// # Panics
    /// Never: the names and labels are constants known to be valid.
    pub fn new() -> WorkerMetrics {
        let registry = Registry::new();
        let claims = IntCounterVec::new(
            Opts::new(
                "prismq_worker_claims_total",
                "Claim calls by result (task or empty)",
            ),
            &["result"],
        )
        .expect("valid metric");
        let claim_latency = HistogramVec::new(
            HistogramOpts::new(
                "prismq_worker_claim_duration_seconds",
                "Claim call latency by result (a remote worker's empty claims include the server's wait)",
            )
            .buckets(SECONDS.to_vec()),
            &["result"],
        )
        .expect("valid metric");
        let finished = IntCounterVec::new(
            Opts::new(
                "prismq_worker_attempts_total",
                "Finished attempts by outcome: completed, retried, deferred, dead_lettered, released, lease_lost",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "prismq_worker_task_duration_seconds",
                "From claim to the attempt's outcome, by outcome",
            )
            .buckets(SECONDS.to_vec()),
            &["outcome"],
        )
        .expect("valid metric");
        let quota = IntGaugeVec::new(
            Opts::new(
                "prismq_quota_used",
                "Quota units used in the current window, by bucket",
            ),
            &["bucket"],
        )
        .expect("valid metric");
        let depth = IntGaugeVec::new(
            Opts::new(
                "prismq_queue_tasks",
                "Tasks in the queue by type and status",
            ),
            &["type", "status"],
        )
        .expect("valid metric");
        for c in [
            Box::new(claims.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(claim_latency.clone()),
            Box::new(finished.clone()),
            Box::new(duration.clone()),
            Box::new(quota.clone()),
            Box::new(depth.clone()),
        ] {
            registry.register(c).expect("registered once");
        }
        WorkerMetrics {
            registry,
            claims,
            claim_latency,
            finished,
            duration,
            quota,
            depth,
            started: Arc::default(),
        }
    }

    fn claimed(&self, r: &Result<Option<ClaimedTask>, PortError>, took: Duration) {
        let result = match r {
            Ok(Some(c)) => {
                self.started.lock().insert(c.task.id, Instant::now());
                "task"
            }
            Ok(None) => "empty",
            Err(_) => "error",
        };
        self.claims.with_label_values(&[result]).inc();
        self.claim_latency
            .with_label_values(&[result])
            .observe(took.as_secs_f64());
    }

    fn ended(&self, task: TaskId, outcome: &str) {
        self.finished.with_label_values(&[outcome]).inc();
        if let Some(at) = self.started.lock().remove(&task) {
            self.duration
                .with_label_values(&[outcome])
                .observe(at.elapsed().as_secs_f64());
        }
    }

    fn settled<T>(&self, lease: &Lease, r: &Result<T, PortError>, outcome: &str) {
        match r {
            Ok(_) => self.ended(lease.task_id, outcome),
            Err(PortError::LeaseLost { .. }) => self.ended(lease.task_id, "lease_lost"),
            Err(_) => {}
        }
    }

    /// The text exposition, after reading the quota buckets and (when `queue` answers) the
    /// queue's depth.
    pub async fn render(&self, quota: &dyn QuotaLedger, queue: Option<&dyn TaskQueue>) -> Vec<u8> {
        if let Ok(usage) = quota.usage().await {
            self.quota.reset();
            for u in usage {
                self.quota
                    .with_label_values(&[u.bucket.as_str()])
                    .set(i64::try_from(u.used).unwrap_or(i64::MAX));
            }
        }
        if let Some(Ok(stats)) = match queue {
            Some(q) => Some(q.stats().await),
            None => None,
        } {
            self.depth.reset();
            for c in &stats.counts {
                self.depth
                    .with_label_values(&[c.task_type.as_str(), c.status.as_str()])
                    .set(i64::try_from(c.count).unwrap_or(i64::MAX));
            }
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "cannot encode the metrics");
        }
        out
    }
}

/// A task queue that counts what the runtime does through it into [`WorkerMetrics`].
#[derive(Clone)]
pub struct Instrumented {
    inner: Arc<dyn TaskQueue>,
    metrics: WorkerMetrics,
}

impl std::fmt::Debug for Instrumented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instrumented").finish_non_exhaustive()
    }
}

impl Instrumented {
    /// `inner`, counted into `metrics`.
    pub fn new(inner: Arc<dyn TaskQueue>, metrics: WorkerMetrics) -> Instrumented {
        Instrumented { inner, metrics }
    }
}

#[async_trait]
impl TaskQueue for Instrumented {
    async fn enqueue(&self, task: NewTask) -> Result<Enqueued, PortError> {
        self.inner.enqueue(task).await
    }
    async fn enqueue_batch(&self, tasks: Vec<NewTask>) -> Result<Vec<Enqueued>, PortError> {
        self.inner.enqueue_batch(tasks).await
    }
    async fn claim(&self, request: &ClaimRequest) -> Result<Option<ClaimedTask>, PortError> {
        let t = Instant::now();
        let r = self.inner.claim(request).await;
        self.metrics.claimed(&r, t.elapsed());
        r
    }
    async fn claim_and_start(
        &self,
        request: &ClaimRequest,
    ) -> Result<Option<ClaimedTask>, PortError> {
        let t = Instant::now();
        let r = self.inner.claim_and_start(request).await;
        self.metrics.claimed(&r, t.elapsed());
        r
    }
    async fn renew_lease(&self, lease: &Lease, lease_for: Duration) -> Result<Lease, PortError> {
        let r = self.inner.renew_lease(lease, lease_for).await;
        if matches!(r, Err(PortError::LeaseLost { .. })) {
            self.metrics.ended(lease.task_id, "lease_lost");
        }
        r
    }
    async fn start(&self, lease: &Lease) -> Result<(), PortError> {
        self.inner.start(lease).await
    }
    async fn complete(&self, lease: &Lease, summary: Option<Value>) -> Result<(), PortError> {
        let r = self.inner.complete(lease, summary).await;
        self.metrics.settled(lease, &r, "completed");
        r
    }
    async fn fail(&self, lease: &Lease, failure: &Failure) -> Result<FailOutcome, PortError> {
        let r = self.inner.fail(lease, failure).await;
        let outcome = match &r {
            Ok(o) => match o.decision {
                RetryDecision::RetryAt(_) => "retried",
                RetryDecision::Defer(_) => "deferred",
                RetryDecision::DeadLetter => "dead_lettered",
            },
            Err(_) => "",
        };
        self.metrics.settled(lease, &r, outcome);
        r
    }
    async fn release(&self, lease: &Lease) -> Result<(), PortError> {
        let r = self.inner.release(lease).await;
        self.metrics.settled(lease, &r, "released");
        r
    }
    async fn cancel(&self, id: TaskId) -> Result<Task, PortError> {
        self.inner.cancel(id).await
    }
    async fn retry(&self, id: TaskId) -> Result<Task, PortError> {
        self.inner.retry(id).await
    }
    async fn get(&self, id: TaskId) -> Result<Task, PortError> {
        self.inner.get(id).await
    }
    async fn list(&self, filter: &TaskFilter) -> Result<Vec<Task>, PortError> {
        self.inner.list(filter).await
    }
    async fn purge(
        &self,
        status: TaskStatus,
        before: Timestamp,
        limit: u32,
    ) -> Result<u64, PortError> {
        self.inner.purge(status, before, limit).await
    }
    async fn stats(&self) -> Result<QueueStats, PortError> {
        self.inner.stats().await
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
        [(
            header::CONTENT_TYPE,
            TextEncoder::new().format_type().to_owned(),
        )],
        body,
    )
        .into_response()
}
