//! The queue's Prometheus metrics, one definition for both places that serve them:
//! `prismq serve`'s `/metrics` and a worker's `prismq work --metrics-bind`. Claims and their
//! latency and finished attempts by outcome and their duration are counted by
//! [`Instrumented`], a task queue wrapped around the one the server's handlers or the
//! worker's runtime use; quota used per bucket and the queue's depth by type and status are
//! read from the store at each scrape ([`QueueMetrics::refresh`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use serde_json::Value;

use prismq_domain::ports::{
    ClaimRequest, ClaimedTask, Enqueued, FailOutcome, Failure, Handover, HandoverAnswer,
    QueueStats, QuotaLedger, TaskFilter, TaskQueue,
};
use prismq_domain::{
    Lease, NewTask, PortError, RetryDecision, Task, TaskId, TaskStatus, Timestamp,
};

/// The histogram buckets of claim latency and task duration, in seconds: from half a
/// millisecond (a claim on SQLite) to five minutes (a long handler).
pub const SECONDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 300.0,
];

/// Claims in flight older than this are forgotten (their worker died; the lease, at most a
/// day, has lapsed), so the table of claim instants stays bounded.
const FORGET_AFTER: Duration = Duration::from_secs(86_400);
/// The table is swept when it holds more claims in flight than this.
const SWEEP_ABOVE: usize = 10_000;

/// The queue's counters, histograms and gauges, registered in one registry.
#[derive(Clone)]
pub struct QueueMetrics {
    claims: IntCounterVec,
    claim_latency: HistogramVec,
    finished: IntCounterVec,
    duration: HistogramVec,
    quota: IntGaugeVec,
    depth: IntGaugeVec,
    started: Arc<Mutex<HashMap<TaskId, Instant>>>,
}

impl std::fmt::Debug for QueueMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueMetrics").finish_non_exhaustive()
    }
}

fn counter(name: String, help: &str, label: &str) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric")
}

fn histogram(name: String, help: &str, label: &str) -> HistogramVec {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(SECONDS.to_vec()),
        &[label],
    )
    .expect("valid metric")
}

impl QueueMetrics {
    /// The metrics, registered in `registry`: the counters and histograms named
    /// `{prefix}_claims_total`, `{prefix}_claim_duration_seconds`, `{prefix}_attempts_total`
    /// and `{prefix}_task_duration_seconds`; the gauges `prismq_quota_used` and
    /// `prismq_queue_tasks`.
    ///
    /// # Panics
    /// When `prefix` is not a valid metric name, or the registry already holds these names
    /// (a programming error: each registry gets them once).
    pub fn register(registry: &Registry, prefix: &str) -> QueueMetrics {
        let claims = counter(
            format!("{prefix}_claims_total"),
            "Claim calls to the store by result: task, empty or error",
            "result",
        );
        let claim_latency = histogram(
            format!("{prefix}_claim_duration_seconds"),
            "Claim call latency by result (task, empty, error)",
            "result",
        );
        let finished = counter(
            format!("{prefix}_attempts_total"),
            "Finished attempts by outcome: completed, retried, deferred, dead_lettered, released, lease_lost",
            "outcome",
        );
        let duration = histogram(
            format!("{prefix}_task_duration_seconds"),
            "From claim to the attempt's outcome, by outcome",
            "outcome",
        );
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
        QueueMetrics {
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
        match r {
            Ok(Some(c)) => self.claimed_task(c.task.id, took),
            Ok(None) => self.claim_counted("empty", took),
            Err(_) => self.claim_counted("error", took),
        }
    }

    /// A claim that took task `id`: counted, and its start noted for the task's duration.
    fn claimed_task(&self, id: TaskId, took: Duration) {
        let now = Instant::now();
        {
            let mut started = self.started.lock();
            if started.len() > SWEEP_ABOVE {
                started.retain(|_, at| now.saturating_duration_since(*at) < FORGET_AFTER);
            }
            started.insert(id, now);
        }
        self.claim_counted("task", took);
    }

    fn claim_counted(&self, result: &str, took: Duration) {
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

    /// Reads the quota buckets and, when `queue` is given, the queue's depth, into the
    /// gauges. Each gauge family is replaced only by a successful read.
    ///
    /// # Errors
    /// The first store error (the other read is still made).
    pub async fn refresh(
        &self,
        quota: &dyn QuotaLedger,
        queue: Option<&dyn TaskQueue>,
    ) -> Result<(), PortError> {
        let usage = quota.usage().await;
        if let Ok(usage) = &usage {
            self.quota.reset();
            for u in usage {
                self.quota
                    .with_label_values(&[u.bucket.as_str()])
                    .set(i64::try_from(u.used).unwrap_or(i64::MAX));
            }
        }
        let stats = match queue {
            Some(q) => Some(q.stats().await),
            None => None,
        };
        if let Some(Ok(stats)) = &stats {
            self.depth.reset();
            for c in &stats.counts {
                self.depth
                    .with_label_values(&[c.task_type.as_str(), c.status.as_str()])
                    .set(i64::try_from(c.count).unwrap_or(i64::MAX));
            }
        }
        usage?;
        stats.transpose()?;
        Ok(())
    }
}

/// The text exposition of everything in `registry`.
///
/// # Errors
/// The encoder's message (a metric the text format cannot hold; not expected).
pub fn encode(registry: &Registry) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// The content type of [`encode`]'s output.
pub fn content_type() -> String {
    TextEncoder::new().format_type().to_owned()
}

/// A task queue that counts what is done through it into [`QueueMetrics`]: every claim
/// call with its latency, and every attempt's outcome with the time since its claim.
#[derive(Clone)]
pub struct Instrumented {
    inner: Arc<dyn TaskQueue>,
    metrics: QueueMetrics,
}

impl std::fmt::Debug for Instrumented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instrumented").finish_non_exhaustive()
    }
}

impl Instrumented {
    /// `inner`, counted into `metrics` (a [`QueueMetrics`], or a worker's
    /// [`WorkerMetrics`](crate::worker_metrics::WorkerMetrics)).
    pub fn new(inner: Arc<dyn TaskQueue>, metrics: impl Into<QueueMetrics>) -> Instrumented {
        Instrumented {
            inner,
            metrics: metrics.into(),
        }
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
    async fn claim_and_start_many(
        &self,
        request: &ClaimRequest,
        max: usize,
    ) -> Result<Vec<ClaimedTask>, PortError> {
        let t = Instant::now();
        let r = self.inner.claim_and_start_many(request, max).await;
        // Each claim is counted with the batch's time, which they shared.
        let took = t.elapsed();
        match &r {
            Ok(claimed) if claimed.is_empty() => self.metrics.claim_counted("empty", took),
            Ok(claimed) => {
                for c in claimed {
                    self.metrics.claimed_task(c.task.id, took);
                }
            }
            Err(_) => self.metrics.claim_counted("error", took),
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
    fn completes_and_claims_at_once(&self) -> bool {
        self.inner.completes_and_claims_at_once()
    }
    async fn complete_and_claim(
        &self,
        lease: &Lease,
        summary: Option<Value>,
        next: &ClaimRequest,
    ) -> Result<Result<Option<ClaimedTask>, PortError>, PortError> {
        let t = Instant::now();
        let r = self.inner.complete_and_claim(lease, summary, next).await;
        self.metrics.settled(lease, &r, "completed");
        if let Ok(claim) = &r {
            // The claim's time includes the completion it shared a transaction with.
            self.metrics.claimed(claim, t.elapsed());
        }
        r
    }
    fn completes_in_batches(&self) -> bool {
        self.inner.completes_in_batches()
    }
    fn claims_in_batches(&self) -> bool {
        self.inner.claims_in_batches()
    }
    async fn complete_and_claim_many(
        &self,
        items: &[Handover],
    ) -> Result<Vec<HandoverAnswer>, PortError> {
        let t = Instant::now();
        let answers = self.inner.complete_and_claim_many(items).await?;
        for (item, r) in items.iter().zip(&answers) {
            self.metrics.settled(&item.lease, r, "completed");
            if let (Some(_), Ok(claim)) = (&item.next, r) {
                // As above: the batch's time, which the claim shared.
                self.metrics.claimed(claim, t.elapsed());
            }
        }
        Ok(answers)
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use prismq_domain::ports::TaskQueue;
    use prismq_domain::{ClaimingStrategy, RetryPolicy};
    use prismq_testkit::fixtures::{claim_request, new_task};
    use prismq_testkit::{FakeClock, MemoryStore};
    use prometheus::{Encoder, Registry, TextEncoder};

    use super::{Instrumented, QueueMetrics};

    fn text(registry: &Registry) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    /// A batch of claims counts each task it took once, and an empty batch one empty claim.
    #[tokio::test]
    async fn a_batch_of_claims_counts_each_task() {
        let store = MemoryStore::new(Arc::new(FakeClock::default()), RetryPolicy::default());
        for _ in 0..3 {
            store.enqueue(new_task("a")).await.unwrap();
        }
        let registry = Registry::new();
        let queue = Instrumented::new(Arc::new(store), QueueMetrics::register(&registry, "prismq"));
        let request = claim_request("w0", ClaimingStrategy::Fifo);
        assert_eq!(
            queue.claim_and_start_many(&request, 5).await.unwrap().len(),
            3
        );
        assert!(queue
            .claim_and_start_many(&request, 5)
            .await
            .unwrap()
            .is_empty());
        let t = text(&registry);
        assert!(t.contains("prismq_claims_total{result=\"task\"} 3"), "{t}");
        assert!(t.contains("prismq_claims_total{result=\"empty\"} 1"), "{t}");
    }
}
