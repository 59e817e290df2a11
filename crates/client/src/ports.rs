//! The domain's ports on [`RemoteStore`]: each worker call is one request to `/v1/work/…`
//! (a follow-up's enqueue, to `/v1/tasks`); the leases this process holds are kept so items
//! and log entries can be fenced by them; the operator's calls answer `Invalid` naming what
//! to use instead.

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use prismq_domain::ports::ChannelBaseline;
use prismq_domain::ports::{
    ClaimFilter, ClaimRequest, ClaimedTask, Enqueued, FailOutcome, Failure, Handover,
    HandoverAnswer, Heartbeat, LogRecord, MetricSnapshot, NewLogEntry, QueueStats, QuotaDecision,
    QuotaLedger, QuotaUsage, RescoreReport, ResultQuery, ResultStore, ScheduleStore, StoredResult,
    TaskFilter, TaskLog, TaskQueue, WorkerInfo, WorkerRecord, WorkerRegistry,
};
use prismq_domain::schedule::{Fired, NewSchedule, Schedule};
use prismq_domain::{
    ContentItem, Lease, NewTask, PortError, SaveReport, Task, TaskId, TaskStatus, TaskType,
    Timestamp, ValidationError, WorkerId,
};

use crate::RemoteStore;

/// The refusal of an operator's call: a remote worker only works.
fn not_for_workers(operation: &str, instead: &str) -> PortError {
    PortError::Invalid(ValidationError::new(
        "operation",
        format!("{operation} is not available to a remote worker"),
        instead,
    ))
}

const TASKS_INSTEAD: &str =
    "the API's /v1/tasks and /v1/dlq endpoints, or `prismq` on the server's machine";
const RESULTS_INSTEAD: &str =
    "the API's /v1/results endpoints, or `prismq results` on the server's machine";

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// A line of `POST /v1/tasks` (a follow-up task).
#[derive(Serialize)]
struct TaskLine<'a> {
    #[serde(rename = "type")]
    task_type: &'a str,
    params: &'a Value,
    priority: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idempotency_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<&'a str>,
}

#[derive(Deserialize)]
struct EnqueuedAnswer {
    id: i64,
    duplicate: bool,
}

#[derive(Serialize)]
struct BaselinesBody<'a> {
    channel: &'a str,
}

#[derive(Deserialize)]
struct BaselinesAnswer {
    baselines: Vec<ChannelBaseline>,
}

#[derive(Serialize)]
struct TrackedBody<'a> {
    filter: &'a prismq_domain::ports::TrackedFilter,
    after: Option<String>,
    limit: u32,
}

#[derive(Deserialize)]
struct TrackedAnswer {
    ids: Vec<String>,
}

#[derive(Serialize)]
struct ClaimBody<'a> {
    worker: &'a str,
    filter: &'a ClaimFilter,
    strategy: String,
    lease_ms: u64,
    wait_ms: u64,
    start: bool,
}

#[derive(Deserialize)]
struct ClaimAnswer {
    claimed: Option<ClaimedBody>,
}

#[derive(Deserialize)]
struct ClaimedBody {
    task: Task,
    lease: Lease,
}

#[derive(Serialize)]
struct ClaimsBody<'a> {
    worker: &'a str,
    filter: &'a ClaimFilter,
    strategy: String,
    lease_ms: u64,
    wait_ms: u64,
    max: usize,
}

#[derive(Deserialize)]
struct ClaimsAnswer {
    claimed: Vec<ClaimedBody>,
}

#[derive(Serialize)]
struct CompletionsBody<'a> {
    completions: Vec<CompletionBody<'a>>,
}

#[derive(Serialize)]
struct CompletionBody<'a> {
    lease: &'a Lease,
    summary: &'a Option<Value>,
}

#[derive(Deserialize)]
struct CompletionsAnswer {
    results: Vec<CompletionOutcome>,
}

#[derive(Deserialize)]
struct CompletionOutcome {
    completed: bool,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    error: Option<crate::http::ErrorDetail>,
}

#[derive(Serialize)]
struct LeaseBody<'a> {
    lease: &'a Lease,
}

#[derive(Serialize)]
struct RenewBody<'a> {
    lease: &'a Lease,
    lease_ms: u64,
}

#[derive(Deserialize)]
struct LeaseAnswer {
    lease: Lease,
}

#[derive(Serialize)]
struct CompleteBody<'a> {
    lease: &'a Lease,
    summary: Option<Value>,
}

#[derive(Deserialize)]
struct SavedAnswer {
    saved: SaveReport,
}

#[derive(Serialize)]
struct FailBody<'a> {
    lease: &'a Lease,
    failure: &'a Failure,
}

#[derive(Deserialize)]
struct FailAnswer {
    outcome: FailOutcome,
}

#[derive(Serialize)]
struct ItemsBody<'a> {
    lease: &'a Lease,
    items: &'a [ContentItem],
}

#[derive(Serialize)]
struct LogBody<'a> {
    lease: &'a Lease,
    entry: &'a NewLogEntry,
}

#[derive(Serialize)]
struct HeartbeatBody<'a> {
    worker: &'a str,
    beat: &'a Heartbeat,
}

#[derive(Serialize)]
struct WorkerBody<'a> {
    worker: &'a str,
}

#[derive(Serialize)]
struct ConsumeBody<'a> {
    bucket: &'a str,
    units: u64,
    limit: u64,
    window_end: Timestamp,
}

#[derive(Deserialize)]
struct ConsumeAnswer {
    decision: QuotaDecision,
}

#[derive(Serialize)]
struct ExhaustedBody<'a> {
    bucket: &'a str,
    until: Timestamp,
}

#[derive(Deserialize)]
struct QuotaAnswer {
    quota: Vec<QuotaUsage>,
}

#[derive(Serialize)]
struct FireBody<'a> {
    task_types: &'a [TaskType],
    limit: u32,
}

#[derive(Deserialize)]
struct FiredAnswer {
    fired: Vec<Fired>,
}

impl RemoteStore {
    /// The lease this process holds on `task`, for the writes fenced by it.
    fn held(&self, task: TaskId, what: &str) -> Result<Lease, PortError> {
        self.leases.lock().get(&task).cloned().ok_or_else(|| {
            PortError::Invalid(ValidationError::new(
                "task",
                format!("this worker holds no lease on task {task}, so it cannot {what}"),
                "a task this worker claimed and has not finished",
            ))
        })
    }

    /// Forgets `lease` once its attempt ended, or was found lost.
    fn settle<T>(&self, lease: &Lease, r: &Result<T, PortError>) {
        if matches!(r, Ok(_) | Err(PortError::LeaseLost { .. })) {
            let mut leases = self.leases.lock();
            if leases
                .get(&lease.task_id)
                .is_some_and(|l| l.token == lease.token)
            {
                leases.remove(&lease.task_id);
            }
        }
    }

    /// A claim that waits up to `wait` on the server for a task to become eligible.
    async fn claim_with(
        &self,
        request: &ClaimRequest,
        start: bool,
        wait: Duration,
    ) -> Result<Option<ClaimedTask>, PortError> {
        let body = ClaimBody {
            worker: request.worker.as_str(),
            filter: &request.filter,
            strategy: request.strategy.to_string(),
            lease_ms: ms(request.lease_for),
            wait_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            start,
        };
        let call = self
            .http
            .post_waiting::<_, ClaimAnswer>("v1/work/claim", &body, wait);
        let answer = tokio::select! {
            a = call => a?,
            // The run is stopping: nothing claimed. A claim the server made as the request
            // was dropped is left to its lease, which lapses and gives the attempt back.
            () = self.stop.cancelled() => return Ok(None),
        };
        Ok(answer.claimed.map(|c| self.holding(c)))
    }

    /// Remembers a claimed task's lease (what its items and log entries are fenced by).
    fn holding(&self, c: ClaimedBody) -> ClaimedTask {
        self.leases.lock().insert(c.task.id, c.lease.clone());
        ClaimedTask {
            task: c.task,
            lease: c.lease,
        }
    }

    /// Whether the batch endpoints are worth asking: more than one task, and a server that
    /// has them.
    fn batching(&self, n: usize) -> bool {
        n > 1 && self.batches.load(Ordering::Relaxed)
    }

    /// Remembers that the server has no batch endpoints when `r` is its 404 (`true`: make
    /// the calls one a task instead).
    fn unbatched<T>(&self, r: &Result<T, PortError>) -> bool {
        let missing = matches!(r, Err(PortError::NotFound(_)));
        if missing {
            tracing::info!(
                "the server has no batch endpoints; claims and completions go one a task"
            );
            self.batches.store(false, Ordering::Relaxed);
        }
        missing
    }

    /// `POST /v1/work/claims`: up to `max` tasks claimed and started in one request, the
    /// server waiting up to `wait` for the first.
    async fn claims(
        &self,
        request: &ClaimRequest,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ClaimedTask>, PortError> {
        let body = ClaimsBody {
            worker: request.worker.as_str(),
            filter: &request.filter,
            strategy: request.strategy.to_string(),
            lease_ms: ms(request.lease_for),
            wait_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            max,
        };
        let call = self
            .http
            .post_waiting::<_, ClaimsAnswer>("v1/work/claims", &body, wait);
        let answer = tokio::select! {
            a = call => a?,
            // As a single claim: what the server claimed as the request was dropped is left
            // to its leases.
            () = self.stop.cancelled() => return Ok(Vec::new()),
        };
        Ok(answer
            .claimed
            .into_iter()
            .map(|c| self.holding(c))
            .collect())
    }

    /// `POST /v1/work/completions`: every item's completion in one request, each answered
    /// as `complete` would be alone.
    async fn completions(
        &self,
        items: &[Handover],
    ) -> Result<Vec<Result<(), PortError>>, PortError> {
        let body = CompletionsBody {
            completions: items
                .iter()
                .map(|h| CompletionBody {
                    lease: &h.lease,
                    summary: &h.summary,
                })
                .collect(),
        };
        let answer = self
            .http
            .post::<_, CompletionsAnswer>("v1/work/completions", &body, None)
            .await?;
        if answer.results.len() != items.len() {
            return Err(PortError::Unavailable(format!(
                "the server answered {} completions for {}",
                answer.results.len(),
                items.len()
            )));
        }
        Ok(items
            .iter()
            .zip(answer.results)
            .map(|(item, o)| {
                let r = if o.completed {
                    Ok(())
                } else {
                    let status = o
                        .status
                        .and_then(|s| reqwest::StatusCode::from_u16(s).ok())
                        .unwrap_or(reqwest::StatusCode::INTERNAL_SERVER_ERROR);
                    Err(crate::http::port_error(
                        status,
                        o.error.unwrap_or_default(),
                        Some(item.lease.task_id),
                    ))
                };
                self.settle(&item.lease, &r);
                r
            })
            .collect())
    }
}

#[async_trait]
impl TaskQueue for RemoteStore {
    /// The runtime enqueues a handler's follow-up tasks through this: `POST /v1/tasks` with
    /// the worker's key, which needs the `enqueue` scope besides `work`.
    async fn enqueue(&self, task: NewTask) -> Result<Enqueued, PortError> {
        let line = TaskLine {
            task_type: task.task_type.as_str(),
            params: &task.params,
            priority: task.priority.get(),
            run_after: task.run_after.map(|t| t.to_string()),
            idempotency_key: task.idempotency_key.as_deref(),
            max_attempts: task.max_attempts,
            region: task.compatibility.region.as_deref(),
        };
        match self
            .http
            .post::<_, EnqueuedAnswer>("v1/tasks", &line, None)
            .await
        {
            Ok(a) => Ok(Enqueued {
                id: TaskId(a.id),
                duplicate: a.duplicate,
            }),
            Err(PortError::Invalid(v)) if v.field == "api key" => {
                Err(PortError::Invalid(ValidationError::new(
                    "api key",
                    format!("a remote worker enqueues follow-up tasks with its own key, and the server refused it: {}", v.problem),
                    "a key with the work and enqueue scopes (`prismq keys create --scope work,enqueue`) for workers whose tasks enqueue follow-ups",
                )))
            }
            Err(e) => Err(e),
        }
    }

    async fn enqueue_batch(&self, _: Vec<NewTask>) -> Result<Vec<Enqueued>, PortError> {
        Err(not_for_workers("enqueue", TASKS_INSTEAD))
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Option<ClaimedTask>, PortError> {
        self.claim_with(request, false, self.claim_wait).await
    }

    async fn claim_and_start(
        &self,
        request: &ClaimRequest,
    ) -> Result<Option<ClaimedTask>, PortError> {
        self.claim_with(request, true, self.claim_wait).await
    }

    /// One `POST /v1/work/claims`, the server waiting for the first task as
    /// [`TaskQueue::claim_and_start`] does and taking the rest in the same step. Against a
    /// server without that endpoint, claims one after another: the first waits for work, the
    /// others take only what is eligible already, so a batch on a short queue never holds the
    /// tasks it has while the server waits for more.
    async fn claim_and_start_many(
        &self,
        request: &ClaimRequest,
        max: usize,
    ) -> Result<Vec<ClaimedTask>, PortError> {
        if self.batching(max) {
            let r = self.claims(request, max, self.claim_wait).await;
            if !self.unbatched(&r) {
                return r;
            }
        }
        let mut claimed = Vec::new();
        while claimed.len() < max {
            let wait = if claimed.is_empty() {
                self.claim_wait
            } else {
                Duration::ZERO
            };
            match self.claim_with(request, true, wait).await {
                Ok(Some(c)) => claimed.push(c),
                Ok(None) => break,
                Err(e) if claimed.is_empty() => return Err(e),
                // Those claimed are held; the error shows again at the next claim if it lasts.
                Err(_) => break,
            }
        }
        Ok(claimed)
    }

    fn claims_in_batches(&self) -> bool {
        true
    }

    /// Every completion first (one `POST /v1/work/completions`), then the claims: when every
    /// item asks the same claim (one loop's batch), one `POST /v1/work/claims` for as many
    /// tasks as attempts were completed; otherwise one claim after another, and once a claim
    /// finds nothing the items after it answer no task. These claims take only what is
    /// eligible already (no long poll): the call answers as soon as its completions are
    /// written and the next tasks claimed, so what counts it (the worker's metrics) sees the
    /// completions at once, and a loop that found nothing waits for work in its next claim.
    /// Against a server without the batch endpoints, one request a completion and a claim.
    async fn complete_and_claim_many(
        &self,
        items: &[Handover],
    ) -> Result<Vec<HandoverAnswer>, PortError> {
        let done = if self.batching(items.len()) {
            let r = self.completions(items).await;
            if self.unbatched(&r) {
                None
            } else {
                Some(r?)
            }
        } else {
            None
        };
        let done = match done {
            Some(d) => d,
            None => {
                let mut d = Vec::with_capacity(items.len());
                for item in items {
                    d.push(self.complete(&item.lease, item.summary.clone()).await);
                }
                d
            }
        };
        let mut answers: Vec<HandoverAnswer> =
            done.into_iter().map(|r| r.map(|()| Ok(None))).collect();
        let claiming: Vec<usize> = (0..items.len())
            .filter(|&i| answers[i].is_ok() && items[i].next.is_some())
            .collect();
        let first = claiming.first().and_then(|&i| items[i].next.as_ref());
        if let Some(next) = first.filter(|n| {
            self.batching(claiming.len())
                && claiming.iter().all(|&i| items[i].next.as_ref() == Some(*n))
        }) {
            let r = self.claims(next, claiming.len(), Duration::ZERO).await;
            if !self.unbatched(&r) {
                let mut taken = r.map(Vec::into_iter);
                for &i in &claiming {
                    answers[i] = Ok(match &mut taken {
                        Ok(tasks) => Ok(tasks.next()),
                        Err(e) => Err(e.clone()),
                    });
                }
                return Ok(answers);
            }
        }
        for &i in &claiming {
            let Some(next) = &items[i].next else { continue };
            let claim = self.claim_with(next, true, Duration::ZERO).await;
            let dry = matches!(claim, Ok(None));
            answers[i] = Ok(claim);
            if dry {
                break;
            }
        }
        Ok(answers)
    }

    async fn renew_lease(&self, lease: &Lease, lease_for: Duration) -> Result<Lease, PortError> {
        let body = RenewBody {
            lease,
            lease_ms: ms(lease_for),
        };
        let r = self
            .http
            .post::<_, LeaseAnswer>("v1/work/renew", &body, Some(lease.task_id))
            .await
            .map(|a| a.lease);
        match &r {
            Ok(renewed) => {
                self.leases.lock().insert(renewed.task_id, renewed.clone());
            }
            Err(_) => self.settle(lease, &r),
        }
        r
    }

    async fn start(&self, lease: &Lease) -> Result<(), PortError> {
        let r = self
            .http
            .post_empty("v1/work/start", &LeaseBody { lease }, Some(lease.task_id))
            .await;
        if r.is_err() {
            self.settle(lease, &r);
        }
        r
    }

    async fn complete(&self, lease: &Lease, summary: Option<Value>) -> Result<(), PortError> {
        let body = CompleteBody { lease, summary };
        let r = self
            .http
            .post::<_, SavedAnswer>("v1/work/complete", &body, Some(lease.task_id))
            .await
            .map(drop);
        self.settle(lease, &r);
        r
    }

    async fn fail(&self, lease: &Lease, failure: &Failure) -> Result<FailOutcome, PortError> {
        let r = self
            .http
            .post::<_, FailAnswer>(
                "v1/work/fail",
                &FailBody { lease, failure },
                Some(lease.task_id),
            )
            .await
            .map(|a| a.outcome);
        self.settle(lease, &r);
        r
    }

    async fn release(&self, lease: &Lease) -> Result<(), PortError> {
        let r = self
            .http
            .post_empty("v1/work/release", &LeaseBody { lease }, Some(lease.task_id))
            .await;
        self.settle(lease, &r);
        r
    }

    async fn cancel(&self, _: TaskId) -> Result<Task, PortError> {
        Err(not_for_workers("cancel", TASKS_INSTEAD))
    }

    async fn retry(&self, _: TaskId) -> Result<Task, PortError> {
        Err(not_for_workers("retry", TASKS_INSTEAD))
    }

    async fn get(&self, _: TaskId) -> Result<Task, PortError> {
        Err(not_for_workers("reading a task", TASKS_INSTEAD))
    }

    async fn list(&self, _: &TaskFilter) -> Result<Vec<Task>, PortError> {
        Err(not_for_workers("listing tasks", TASKS_INSTEAD))
    }

    async fn purge(&self, _: TaskStatus, _: Timestamp, _: u32) -> Result<u64, PortError> {
        Err(not_for_workers("purge", TASKS_INSTEAD))
    }

    async fn stats(&self) -> Result<QueueStats, PortError> {
        Err(not_for_workers(
            "stats",
            "the API's /v1/stats endpoint (scope read)",
        ))
    }
}

#[async_trait]
impl WorkerRegistry for RemoteStore {
    async fn register(&self, info: &WorkerInfo) -> Result<(), PortError> {
        self.http
            .post_empty("v1/work/workers/register", info, None)
            .await
    }

    async fn heartbeat(&self, id: &WorkerId, beat: Heartbeat) -> Result<(), PortError> {
        let body = HeartbeatBody {
            worker: id.as_str(),
            beat: &beat,
        };
        self.http
            .post_empty("v1/work/workers/heartbeat", &body, None)
            .await
    }

    async fn deregister(&self, id: &WorkerId) -> Result<(), PortError> {
        let body = WorkerBody {
            worker: id.as_str(),
        };
        self.http
            .post_empty("v1/work/workers/deregister", &body, None)
            .await
    }

    async fn list(&self, _: Duration) -> Result<Vec<WorkerRecord>, PortError> {
        Err(not_for_workers(
            "listing workers",
            "the API's /v1/workers endpoint (scope read)",
        ))
    }

    async fn prune(&self, _: Duration) -> Result<u64, PortError> {
        Err(not_for_workers(
            "pruning workers",
            "`prismq workers prune` on the server's machine",
        ))
    }
}

#[async_trait]
impl TaskLog for RemoteStore {
    async fn append(&self, task: TaskId, entry: NewLogEntry) -> Result<(), PortError> {
        let lease = self.held(task, "write to its log")?;
        let body = LogBody {
            lease: &lease,
            entry: &entry,
        };
        self.http.post_empty("v1/work/log", &body, Some(task)).await
    }

    async fn list(&self, _: TaskId) -> Result<Vec<LogRecord>, PortError> {
        Err(not_for_workers("reading a task's log", TASKS_INSTEAD))
    }
}

#[async_trait]
impl ResultStore for RemoteStore {
    async fn save(
        &self,
        task: Option<TaskId>,
        items: &[ContentItem],
    ) -> Result<SaveReport, PortError> {
        let Some(task) = task else {
            return Err(not_for_workers(
                "saving items without a task",
                "items saved by the task that found them",
            ));
        };
        let lease = self.held(task, "save its items")?;
        let body = ItemsBody {
            lease: &lease,
            items,
        };
        self.http
            .post::<_, SavedAnswer>("v1/work/items", &body, Some(task))
            .await
            .map(|a| a.saved)
    }

    async fn get(&self, _: &str, _: &str) -> Result<StoredResult, PortError> {
        Err(not_for_workers("reading results", RESULTS_INSTEAD))
    }

    async fn find(&self, _: &str) -> Result<Vec<StoredResult>, PortError> {
        Err(not_for_workers("reading results", RESULTS_INSTEAD))
    }

    async fn history(&self, _: &str, _: &str) -> Result<Vec<MetricSnapshot>, PortError> {
        Err(not_for_workers("reading results", RESULTS_INSTEAD))
    }

    async fn sightings(
        &self,
        _: &str,
        _: &str,
        _: u32,
    ) -> Result<Vec<prismq_domain::Sighting>, PortError> {
        Err(not_for_workers("reading results", RESULTS_INSTEAD))
    }

    async fn query(&self, _: &ResultQuery) -> Result<Vec<StoredResult>, PortError> {
        Err(not_for_workers("reading results", RESULTS_INSTEAD))
    }

    /// A channel's baselines (`POST /v1/work/baselines`): what the runtime reads before a
    /// follow-up scrape "unless the channel has a baseline".
    async fn baselines(&self, channel: &str) -> Result<Vec<ChannelBaseline>, PortError> {
        self.http
            .post::<_, BaselinesAnswer>("v1/work/baselines", &BaselinesBody { channel }, None)
            .await
            .map(|a| a.baselines)
    }

    async fn count(&self, _: Option<String>) -> Result<u64, PortError> {
        Err(not_for_workers("reading results", RESULTS_INSTEAD))
    }

    async fn rescore(&self, _: Option<String>) -> Result<RescoreReport, PortError> {
        Err(not_for_workers(
            "rescoring",
            "`prismq results rescore` on the server's machine",
        ))
    }
}

/// `refresh_stats` on a remote worker reads the tracked videos over the API
/// (`POST /v1/work/tracked`), a page at a time.
#[async_trait]
impl prismq_domain::ports::TrackedVideos for RemoteStore {
    async fn tracked_ids(
        &self,
        filter: &prismq_domain::ports::TrackedFilter,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<String>, PortError> {
        let body = TrackedBody {
            filter,
            after,
            limit,
        };
        self.http
            .post::<_, TrackedAnswer>("v1/work/tracked", &body, None)
            .await
            .map(|a| a.ids)
    }
}

#[async_trait]
impl QuotaLedger for RemoteStore {
    async fn try_consume(
        &self,
        bucket: &str,
        units: u64,
        limit: u64,
        window_end: Timestamp,
    ) -> Result<QuotaDecision, PortError> {
        let body = ConsumeBody {
            bucket,
            units,
            limit,
            window_end,
        };
        self.http
            .post::<_, ConsumeAnswer>("v1/work/quota/consume", &body, None)
            .await
            .map(|a| a.decision)
    }

    async fn mark_exhausted(&self, bucket: &str, until: Timestamp) -> Result<(), PortError> {
        self.http
            .post_empty(
                "v1/work/quota/exhausted",
                &ExhaustedBody { bucket, until },
                None,
            )
            .await
    }

    async fn used(&self, bucket: &str) -> Result<u64, PortError> {
        Ok(self
            .usage()
            .await?
            .into_iter()
            .find(|u| u.bucket == bucket)
            .map_or(0, |u| u.used))
    }

    async fn usage(&self) -> Result<Vec<QuotaUsage>, PortError> {
        self.http
            .get::<QuotaAnswer>("v1/work/quota")
            .await
            .map(|a| a.quota)
    }
}

const SCHEDULES_INSTEAD: &str = "`prismq schedule` on the server's machine";

#[async_trait]
impl ScheduleStore for RemoteStore {
    async fn add_schedule(&self, _: NewSchedule) -> Result<Schedule, PortError> {
        Err(not_for_workers("adding a schedule", SCHEDULES_INSTEAD))
    }

    async fn list_schedules(&self) -> Result<Vec<Schedule>, PortError> {
        Err(not_for_workers("listing schedules", SCHEDULES_INSTEAD))
    }

    async fn get_schedule(&self, _: &str) -> Result<Schedule, PortError> {
        Err(not_for_workers("reading a schedule", SCHEDULES_INSTEAD))
    }

    async fn set_schedule_paused(&self, _: &str, _: bool) -> Result<Schedule, PortError> {
        Err(not_for_workers("pausing a schedule", SCHEDULES_INSTEAD))
    }

    async fn remove_schedule(&self, _: &str) -> Result<Schedule, PortError> {
        Err(not_for_workers("removing a schedule", SCHEDULES_INSTEAD))
    }

    async fn run_schedule_now(&self, _: &str) -> Result<Enqueued, PortError> {
        Err(not_for_workers("running a schedule now", SCHEDULES_INSTEAD))
    }

    async fn fire_due(&self, task_types: &[TaskType], limit: u32) -> Result<Vec<Fired>, PortError> {
        self.http
            .post::<_, FiredAnswer>(
                "v1/work/schedules/fire",
                &FireBody { task_types, limit },
                None,
            )
            .await
            .map(|a| a.fired)
    }
}
