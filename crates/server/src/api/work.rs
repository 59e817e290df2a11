//! `/v1/work/…`: what a remote worker (`prismq work --server URL`, the `prismq-client`
//! crate) runs the unchanged worker runtime through. Every endpoint needs the `work` scope
//! and is one port call on the server's store: claim (a long poll of up to 30 s), start,
//! renew, complete (with items), fail and release, a batch of claims or of completions (one
//! step on the store, for a worker keeping tasks ahead), each fenced by the lease token (a lost
//! lease is 409 `lease_lost`); saving items and appending to the task's log while holding a
//! lease (fenced the same way); worker registration and heartbeats; the quota ledger the
//! plugins charge; and firing due schedules.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;
use utoipa::ToSchema;

use prismq_domain::ports::{
    check_fire_limit, ClaimFilter, ClaimRequest, ClaimedTask, FailOutcome, Failure, Handover,
    Heartbeat, NewLogEntry, QuotaDecision, QuotaUsage, Scope, WorkerInfo,
};
use prismq_domain::schedule::Fired;
use prismq_domain::{
    ClaimingStrategy, ContentItem, Lease, PortError, SaveReport, Task, TaskStatus, TaskType,
    Timestamp, ValidationError, WorkerId,
};

use super::input;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorDetail};
use crate::ServerState;

/// The longest a claim waits for a task.
pub const MAX_CLAIM_WAIT: Duration = Duration::from_secs(30);

/// The longest lease a claim or renewal may ask for (a day).
pub const MAX_LEASE_MS: u64 = 86_400_000;

/// How often a waiting claim looks again when the store pushes no notices (SQLite); with
/// notices (PostgreSQL) it looks at once on each and at this interval as the fallback.
const POLL_MIN: Duration = Duration::from_millis(20);
const POLL_MAX: Duration = Duration::from_millis(250);

/// The longest quota bucket name accepted.
const MAX_BUCKET_CHARS: usize = 64;

/// `POST /v1/work/claim`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimBody {
    /// The claiming worker's id (as registered).
    pub worker: String,
    /// Which tasks it can take: `{"task_types": [...], "region": "US"|null, "only": id|null}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub filter: ClaimFilter,
    /// fifo, lifo, priority or weighted_random.
    pub strategy: String,
    /// The lease's length in milliseconds (1 to 86,400,000).
    pub lease_ms: u64,
    /// How long to wait for a task when none is eligible, in milliseconds (0: answer at
    /// once; at most 30,000, and less than the server's request timeout).
    #[serde(default)]
    pub wait_ms: u64,
    /// Mark the task running in the same step (default true), as the local runtime does.
    #[serde(default = "yes")]
    pub start: bool,
}

fn yes() -> bool {
    true
}

/// A claimed task and its lease.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimedBody {
    /// The task as the claim left it (`claimed`, or `running` with `start`).
    #[schema(value_type = Object)]
    pub task: Task,
    /// The lease: present it in every later call of this attempt.
    #[schema(value_type = Object)]
    pub lease: Lease,
}

/// The answer of a claim.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimAnswer {
    /// The task claimed, or null when none became eligible within `wait_ms`.
    pub claimed: Option<ClaimedBody>,
}

/// A body holding only a lease (`start`, `release`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaseBody {
    /// The lease the claim returned (or the last renewal).
    #[schema(value_type = Object)]
    pub lease: Lease,
}

/// `POST /v1/work/renew`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewBody {
    /// The current lease.
    #[schema(value_type = Object)]
    pub lease: Lease,
    /// The new length from now, in milliseconds (1 to 86,400,000).
    pub lease_ms: u64,
}

/// A renewed lease.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeaseAnswer {
    /// The lease with its new expiry.
    #[schema(value_type = Object)]
    pub lease: Lease,
}

/// `POST /v1/work/complete`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteBody {
    /// The current lease.
    #[schema(value_type = Object)]
    pub lease: Lease,
    /// The summary stored with the task (any JSON).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub summary: Option<Value>,
    /// Items to save first through the result store, with the task's id; the counts are
    /// added to an object summary as `saved`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<ContentItem>,
}

/// What saving items did.
#[derive(Debug, Serialize, ToSchema)]
pub struct SavedAnswer {
    /// `{"inserted", "updated", "unchanged"}`.
    #[schema(value_type = Object)]
    pub saved: SaveReport,
}

/// `POST /v1/work/fail`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailBody {
    /// The current lease.
    #[schema(value_type = Object)]
    pub lease: Lease,
    /// `{"class": {"class": "retryable"|"permanent"|"retryable_after", "until": RFC 3339
    /// (with retryable_after)}, "message"}`.
    #[schema(value_type = Object)]
    pub failure: Failure,
}

/// What `fail` did.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailAnswer {
    /// The retry policy's decision as applied, and the attempts after it.
    #[schema(value_type = Object)]
    pub outcome: FailOutcome,
}

/// `POST /v1/work/items`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemsBody {
    /// The lease of the task the items were found by.
    #[schema(value_type = Object)]
    pub lease: Lease,
    /// The items, saved atomically.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<ContentItem>,
}

/// `POST /v1/work/log`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogBody {
    /// The lease of the task the entry is about.
    #[schema(value_type = Object)]
    pub lease: Lease,
    /// `{"level", "event", "message", "details"}`.
    #[schema(value_type = Object)]
    pub entry: NewLogEntry,
}

/// `POST /v1/work/workers/heartbeat`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatBody {
    /// The worker's id.
    pub worker: String,
    /// Its state: current task, counters, held types.
    #[schema(value_type = Object)]
    pub beat: Heartbeat,
}

/// `POST /v1/work/workers/deregister`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkerBody {
    /// The worker's id.
    pub worker: String,
}

/// `POST /v1/work/quota/consume`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsumeBody {
    /// The bucket (1-64 printable characters).
    pub bucket: String,
    /// Units to charge.
    pub units: u64,
    /// The bucket's limit per window.
    pub limit: u64,
    /// When the current window ends (RFC 3339).
    #[schema(value_type = String)]
    pub window_end: Timestamp,
}

/// The ledger's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsumeAnswer {
    /// `{"granted": {"remaining"}}` or `{"exhausted": {"until"}}`.
    #[schema(value_type = Object)]
    pub decision: QuotaDecision,
}

/// `POST /v1/work/quota/exhausted`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExhaustedBody {
    /// The bucket.
    pub bucket: String,
    /// Until when (RFC 3339).
    #[schema(value_type = String)]
    pub until: Timestamp,
}

/// Every quota bucket.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuotaAnswer {
    /// By name.
    #[schema(value_type = Vec<Object>)]
    pub quota: Vec<QuotaUsage>,
}

/// `POST /v1/work/schedules/fire`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FireBody {
    /// The task types the worker runs: only their schedules fire.
    #[schema(value_type = Vec<String>)]
    pub task_types: Vec<TaskType>,
    /// At most this many (1-1000).
    pub limit: u32,
}

/// What fired.
#[derive(Debug, Serialize, ToSchema)]
pub struct FiredAnswer {
    /// One entry per slot fired.
    #[schema(value_type = Vec<Object>)]
    pub fired: Vec<Fired>,
}

/// The body as `T` (422 naming the field otherwise).
pub(super) fn read<T: DeserializeOwned>(
    state: &ServerState,
    body: Result<Bytes, BytesRejection>,
    accepted: &str,
) -> ApiResult<T> {
    let bytes = input::body(body, state.options.body_limit)?;
    input::json(&bytes, accepted)
}

fn worker_id(text: &str) -> ApiResult<WorkerId> {
    Ok(WorkerId::new(text)?)
}

fn lease_for(field: &str, ms: u64) -> ApiResult<Duration> {
    if (1..=MAX_LEASE_MS).contains(&ms) {
        Ok(Duration::from_millis(ms))
    } else {
        Err(ApiError::invalid(
            field,
            format!("{ms} ms is out of range"),
            format!("an integer from 1 to {MAX_LEASE_MS} (milliseconds)"),
        ))
    }
}

fn bucket(name: &str) -> ApiResult<&str> {
    let n = name.chars().count();
    if n == 0 || n > MAX_BUCKET_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "bucket",
            "not a quota bucket name",
            format!("1 to {MAX_BUCKET_CHARS} printable characters"),
        ));
    }
    Ok(name)
}

/// Refuses with 409 `lease_lost` unless `lease` is the current one of a claimed or running
/// task: what `complete` and `fail` check in their own transaction, checked here before
/// items or a log entry of the attempt are written (a lease lost between the check and the
/// write leaves items the next attempt updates, as a local worker's save before `complete`).
async fn fenced(state: &ServerState, lease: &Lease) -> ApiResult<()> {
    let lost = || {
        ApiError::from(PortError::LeaseLost {
            task_id: lease.task_id.0,
        })
    };
    let task = match state.app.queue.get(lease.task_id).await {
        Ok(t) => t,
        Err(PortError::NotFound(_)) => return Err(lost()),
        Err(e) => return Err(e.into()),
    };
    let current = task.lease_token == Some(lease.token)
        && matches!(task.status, TaskStatus::Claimed | TaskStatus::Running);
    if current {
        Ok(())
    } else {
        Err(lost())
    }
}

/// `POST /v1/work/claim`: claims the next eligible task (and marks it running with
/// `start`), waiting up to `wait_ms` for one: woken by the store's work notices where it
/// pushes them (PostgreSQL), looking again every 20-250 ms otherwise.
#[utoipa::path(post, path = "/v1/work/claim", tag = "work", request_body = ClaimBody,
    responses(
        (status = 200, description = "A task, or null when none became eligible in time", body = ClaimAnswer),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = ["work"])))]
pub async fn claim(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<ClaimAnswer>> {
    caller.require(Scope::Work)?;
    let b: ClaimBody = read(&state, body, "an object with \"worker\", \"filter\", \"strategy\", \"lease_ms\", \"wait_ms\" and \"start\"")?;
    let request = claim_request(&b.worker, b.filter, &b.strategy, b.lease_ms)?;
    let claimed = wait_for(&state, &caller, b.wait_ms, Option::is_some, || async {
        Ok(if b.start {
            state.app.queue.claim_and_start(&request).await?
        } else {
            state.app.queue.claim(&request).await?
        })
    })
    .await?;
    Ok(Json(ClaimAnswer {
        claimed: claimed.map(|c| ClaimedBody {
            task: c.task,
            lease: c.lease,
        }),
    }))
}

/// The claim a body asks for, each part checked: the worker's id, the strategy's name and
/// the lease's length.
fn claim_request(
    worker: &str,
    filter: ClaimFilter,
    strategy: &str,
    lease_ms: u64,
) -> ApiResult<ClaimRequest> {
    Ok(ClaimRequest {
        worker: worker_id(worker)?,
        filter,
        strategy: strategy.parse::<ClaimingStrategy>()?,
        lease_for: lease_for("lease_ms", lease_ms)?,
    })
}

/// A batch's size (`n` of `what`, given as `field`), refused outside 1 to [`MAX_BATCH`].
fn batch_size(field: &str, n: u64, what: &str) -> ApiResult<usize> {
    match usize::try_from(n) {
        Ok(k) if (1..=MAX_BATCH).contains(&n) => Ok(k),
        _ => Err(ValidationError::new(
            field,
            format!("{n} {what} cannot be taken in one batch"),
            format!("1 to {MAX_BATCH}"),
        )
        .into()),
    }
}

/// Looks with `look` until what it answers is `found`, `wait_ms` have passed (at most
/// [`MAX_CLAIM_WAIT`], and less than the server's request timeout) or the server stops,
/// and answers the last look: woken by the store's work notices where it pushes them
/// (PostgreSQL), looking again every 20-250 ms otherwise.
async fn wait_for<T, Fut>(
    state: &ServerState,
    caller: &Caller,
    wait_ms: u64,
    found: impl Fn(&T) -> bool,
    mut look: impl FnMut() -> Fut,
) -> ApiResult<T>
where
    Fut: std::future::Future<Output = ApiResult<T>>,
{
    let ceiling = MAX_CLAIM_WAIT.min(
        state
            .options
            .request_timeout
            .saturating_sub(Duration::from_secs(2)),
    );
    let deadline = Instant::now() + Duration::from_millis(wait_ms).min(ceiling);
    // Subscribed before the first look, so a notice between the look and the wait counts.
    let mut notices = state.app.notifier.as_ref().map(|n| n.subscribe());
    let mut pause = POLL_MIN;
    let mut first = true;
    loop {
        // The key is looked up again before every look but the first (which the
        // authentication just did): a key revoked while the claim waits gets 401 within one
        // pause (at most POLL_MAX), never a task.
        if !first {
            caller.still_active(state).await?;
        }
        first = false;
        let got = look().await?;
        let now = Instant::now();
        if found(&got) || now >= deadline || state.stopping.is_cancelled() {
            return Ok(got);
        }
        let nap = pause.min(deadline - now);
        let wait = async {
            match notices.as_mut() {
                Some(n) => {
                    n.wait(nap).await;
                }
                None => tokio::time::sleep(nap).await,
            }
        };
        tokio::select! {
            () = wait => {}
            () = state.stopping.cancelled() => {}
        }
        pause = (pause * 2).min(POLL_MAX);
    }
}

/// `POST /v1/work/start`: marks the claimed attempt running.
#[utoipa::path(post, path = "/v1/work/start", tag = "work", request_body = LeaseBody,
    responses(
        (status = 204, description = "Running"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "The lease was lost", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = ["work"])))]
pub async fn start(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<StatusCode> {
    caller.require(Scope::Work)?;
    let b: LeaseBody = read(&state, body, "an object with \"lease\"")?;
    state.app.queue.start(&b.lease).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/work/renew`: extends the lease to now + `lease_ms`.
#[utoipa::path(post, path = "/v1/work/renew", tag = "work", request_body = RenewBody,
    responses(
        (status = 200, body = LeaseAnswer),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "The lease was lost", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = ["work"])))]
pub async fn renew(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<LeaseAnswer>> {
    caller.require(Scope::Work)?;
    let b: RenewBody = read(&state, body, "an object with \"lease\" and \"lease_ms\"")?;
    let lease = state
        .app
        .queue
        .renew_lease(&b.lease, lease_for("lease_ms", b.lease_ms)?)
        .await?;
    Ok(Json(LeaseAnswer { lease }))
}

/// `POST /v1/work/complete`: saves `items` (if any) through the result store with the
/// task's id, then completes the attempt with the summary.
#[utoipa::path(post, path = "/v1/work/complete", tag = "work", request_body = CompleteBody,
    responses(
        (status = 200, body = SavedAnswer),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "The lease was lost: nothing was saved or changed", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = ["work"])))]
pub async fn complete(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<SavedAnswer>> {
    caller.require(Scope::Work)?;
    let b: CompleteBody = read(
        &state,
        body,
        "an object with \"lease\", \"summary\" and \"items\"",
    )?;
    let mut summary = b.summary;
    let mut saved = SaveReport::default();
    if !b.items.is_empty() {
        fenced(&state, &b.lease).await?;
        saved = state
            .app
            .results
            .save(Some(b.lease.task_id), &b.items)
            .await?;
        if let Some(Value::Object(m)) = summary.as_mut() {
            m.entry("saved")
                .or_insert_with(|| serde_json::to_value(saved).unwrap_or(Value::Null));
        }
    }
    state.app.queue.complete(&b.lease, summary).await?;
    Ok(Json(SavedAnswer { saved }))
}

/// `POST /v1/work/fail`: fails the attempt; the queue's retry policy decides what next.
#[utoipa::path(post, path = "/v1/work/fail", tag = "work", request_body = FailBody,
    responses(
        (status = 200, body = FailAnswer),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "The lease was lost", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = ["work"])))]
pub async fn fail(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<FailAnswer>> {
    caller.require(Scope::Work)?;
    let b: FailBody = read(&state, body, "an object with \"lease\" and \"failure\"")?;
    let outcome = state.app.queue.fail(&b.lease, &b.failure).await?;
    Ok(Json(FailAnswer { outcome }))
}

/// `POST /v1/work/release`: hands the task back without using the attempt.
#[utoipa::path(post, path = "/v1/work/release", tag = "work", request_body = LeaseBody,
    responses(
        (status = 204, description = "Back in the queue"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "The lease was lost", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = ["work"])))]
pub async fn release(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<StatusCode> {
    caller.require(Scope::Work)?;
    let b: LeaseBody = read(&state, body, "an object with \"lease\"")?;
    state.app.queue.release(&b.lease).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/work/items`: saves items found by the leased task (what the runtime does
/// before `complete`, and with a failed attempt's partial items before `fail`).
#[utoipa::path(post, path = "/v1/work/items", tag = "work", request_body = ItemsBody,
    responses(
        (status = 200, body = SavedAnswer),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "The lease was lost: nothing was saved", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = ["work"])))]
pub async fn items(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<SavedAnswer>> {
    caller.require(Scope::Work)?;
    let b: ItemsBody = read(&state, body, "an object with \"lease\" and \"items\"")?;
    fenced(&state, &b.lease).await?;
    let saved = state
        .app
        .results
        .save(Some(b.lease.task_id), &b.items)
        .await?;
    Ok(Json(SavedAnswer { saved }))
}

/// `POST /v1/work/log`: appends a handler's note to the leased task's log.
#[utoipa::path(post, path = "/v1/work/log", tag = "work", request_body = LogBody,
    responses(
        (status = 204, description = "Appended"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "The lease was lost: nothing was written", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = ["work"])))]
pub async fn log(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<StatusCode> {
    caller.require(Scope::Work)?;
    let b: LogBody = read(&state, body, "an object with \"lease\" and \"entry\"")?;
    fenced(&state, &b.lease).await?;
    let mut entry = b.entry;
    entry.message =
        prismq_domain::text::one_line(&entry.message, prismq_domain::text::MESSAGE_MAX_CHARS);
    state.app.logs.append(b.lease.task_id, entry).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/work/workers/register`: registers a worker loop (or resets one).
#[utoipa::path(post, path = "/v1/work/workers/register", tag = "work",
    request_body(content = Object, description = "{\"id\", \"hostname\", \"pid\", \"capabilities\", \"strategy\"}"),
    responses(
        (status = 204, description = "Registered"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = ["work"])))]
pub async fn register(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<StatusCode> {
    caller.require(Scope::Work)?;
    let info: WorkerInfo = read(
        &state,
        body,
        "an object with \"id\", \"hostname\", \"pid\", \"capabilities\" and \"strategy\"",
    )?;
    worker_id(info.id.as_str())?;
    if info.hostname.chars().count() > 255 || info.hostname.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "hostname",
            "not a host name",
            "up to 255 printable characters",
        )
        .into());
    }
    state.app.workers.register(&info).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/work/workers/heartbeat`: records a worker's sign of life.
#[utoipa::path(post, path = "/v1/work/workers/heartbeat", tag = "work", request_body = HeartbeatBody,
    responses(
        (status = 204, description = "Recorded"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such worker: register again", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = ["work"])))]
pub async fn heartbeat(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<StatusCode> {
    caller.require(Scope::Work)?;
    let b: HeartbeatBody = read(&state, body, "an object with \"worker\" and \"beat\"")?;
    state
        .app
        .workers
        .heartbeat(&worker_id(&b.worker)?, b.beat)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/work/workers/deregister`: marks a worker stopped.
#[utoipa::path(post, path = "/v1/work/workers/deregister", tag = "work", request_body = WorkerBody,
    responses(
        (status = 204, description = "Stopped"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such worker", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = ["work"])))]
pub async fn deregister(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<StatusCode> {
    caller.require(Scope::Work)?;
    let b: WorkerBody = read(&state, body, "an object with \"worker\"")?;
    state.app.workers.deregister(&worker_id(&b.worker)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/work/quota/consume`: charges units to a bucket if they fit.
#[utoipa::path(post, path = "/v1/work/quota/consume", tag = "work", request_body = ConsumeBody,
    responses(
        (status = 200, body = ConsumeAnswer),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = ["work"])))]
pub async fn consume(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<ConsumeAnswer>> {
    caller.require(Scope::Work)?;
    let b: ConsumeBody = read(
        &state,
        body,
        "an object with \"bucket\", \"units\", \"limit\" and \"window_end\"",
    )?;
    let decision = state
        .app
        .quota
        .try_consume(bucket(&b.bucket)?, b.units, b.limit, b.window_end)
        .await?;
    Ok(Json(ConsumeAnswer { decision }))
}

/// `POST /v1/work/quota/exhausted`: marks a bucket exhausted until an instant.
#[utoipa::path(post, path = "/v1/work/quota/exhausted", tag = "work", request_body = ExhaustedBody,
    responses(
        (status = 204, description = "Marked"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = ["work"])))]
pub async fn exhausted(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<StatusCode> {
    caller.require(Scope::Work)?;
    let b: ExhaustedBody = read(&state, body, "an object with \"bucket\" and \"until\"")?;
    state
        .app
        .quota
        .mark_exhausted(bucket(&b.bucket)?, b.until)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/work/quota`: every bucket's use (what a worker's gate reads).
#[utoipa::path(get, path = "/v1/work/quota", tag = "work",
    responses(
        (status = 200, body = QuotaAnswer),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = ["work"])))]
pub async fn quota(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<QuotaAnswer>> {
    caller.require(Scope::Work)?;
    Ok(Json(QuotaAnswer {
        quota: state.app.quota.usage().await?,
    }))
}

/// `POST /v1/work/schedules/fire`: fires the due schedules of the worker's task types,
/// each slot exactly once however many workers ask.
#[utoipa::path(post, path = "/v1/work/schedules/fire", tag = "work", request_body = FireBody,
    responses(
        (status = 200, body = FiredAnswer),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = ["work"])))]
pub async fn fire(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<FiredAnswer>> {
    caller.require(Scope::Work)?;
    let b: FireBody = read(&state, body, "an object with \"task_types\" and \"limit\"")?;
    check_fire_limit(b.limit)?;
    let fired = state.app.schedules.fire_due(&b.task_types, b.limit).await?;
    Ok(Json(FiredAnswer { fired }))
}

/// The most tasks one `POST /v1/work/claims` takes, and the most completions one
/// `POST /v1/work/completions` writes (`worker.prefetch`'s own limit).
pub const MAX_BATCH: u64 = 256;

/// `POST /v1/work/claims`'s body: a claim of up to `max` tasks, each started, for a worker
/// keeping tasks ahead.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimsBody {
    /// The claiming worker's id (as registered).
    pub worker: String,
    /// Which tasks it can take: `{"task_types": [...], "region": "US"|null, "only": id|null}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub filter: ClaimFilter,
    /// fifo, lifo, priority or weighted_random.
    pub strategy: String,
    /// Each lease's length in milliseconds (1 to 86,400,000).
    pub lease_ms: u64,
    /// How long to wait for a first task when none is eligible, in milliseconds (0: answer
    /// at once; at most 30,000, and less than the server's request timeout).
    #[serde(default)]
    pub wait_ms: u64,
    /// The most tasks to take (1 to 256).
    pub max: u64,
}

/// The answer of a batch claim.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimsAnswer {
    /// The tasks claimed and started, in claim order, each with its own lease; empty when
    /// none became eligible within `wait_ms`.
    pub claimed: Vec<ClaimedBody>,
}

/// One completion of `POST /v1/work/completions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompletionBody {
    /// The attempt's current lease.
    #[schema(value_type = Object)]
    pub lease: Lease,
    /// The summary stored with the task (any JSON).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub summary: Option<Value>,
}

/// `POST /v1/work/completions`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompletionsBody {
    /// The attempts to complete (1 to 256), written in one step.
    pub completions: Vec<CompletionBody>,
}

/// What became of one completion.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompletionOutcome {
    /// Whether the attempt was completed.
    pub completed: bool,
    /// When it was not: the HTTP status `POST /v1/work/complete` would have answered alone
    /// (409 for a lost lease).
    pub status: Option<u16>,
    /// When it was not: the error that call would have answered.
    pub error: Option<ErrorDetail>,
}

/// The answer of `POST /v1/work/completions`: one outcome per completion, in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompletionsAnswer {
    /// The outcomes.
    pub results: Vec<CompletionOutcome>,
}

/// `POST /v1/work/claims`: claims and starts up to `max` tasks as that many claims one after
/// another would (one step on the store), waiting up to `wait_ms` for the first as
/// `/v1/work/claim` does: what a remote worker keeping tasks ahead asks.
#[utoipa::path(post, path = "/v1/work/claims", tag = "work", request_body = ClaimsBody,
    responses(
        (status = 200, description = "The tasks claimed, or none when none became eligible in time", body = ClaimsAnswer),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = ["work"])))]
pub async fn claims(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<ClaimsAnswer>> {
    caller.require(Scope::Work)?;
    let b: ClaimsBody = read(
        &state,
        body,
        "an object with \"worker\", \"filter\", \"strategy\", \"lease_ms\", \"wait_ms\" and \"max\"",
    )?;
    let max = batch_size("max", b.max, "tasks")?;
    let request = claim_request(&b.worker, b.filter, &b.strategy, b.lease_ms)?;
    let claimed = wait_for(
        &state,
        &caller,
        b.wait_ms,
        |c: &Vec<ClaimedTask>| !c.is_empty(),
        || async { Ok(state.app.queue.claim_and_start_many(&request, max).await?) },
    )
    .await?;
    Ok(Json(ClaimsAnswer {
        claimed: claimed
            .into_iter()
            .map(|c| ClaimedBody {
                task: c.task,
                lease: c.lease,
            })
            .collect(),
    }))
}

/// `POST /v1/work/completions`: completes several attempts in one step on the store (no
/// items: a handler's items go through `/v1/work/items` first). Each completion answers as
/// `/v1/work/complete` would alone: a lost lease fails only its own, and the others stand.
#[utoipa::path(post, path = "/v1/work/completions", tag = "work", request_body = CompletionsBody,
    responses(
        (status = 200, description = "One outcome per completion, in order", body = CompletionsAnswer),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = ["work"])))]
pub async fn completions(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<CompletionsAnswer>> {
    caller.require(Scope::Work)?;
    let b: CompletionsBody = read(
        &state,
        body,
        "an object with \"completions\": a list of objects with \"lease\" and \"summary\"",
    )?;
    batch_size("completions", b.completions.len() as u64, "completions")?;
    let items: Vec<Handover> = b
        .completions
        .into_iter()
        .map(|c| Handover {
            lease: c.lease,
            summary: c.summary,
            next: None,
        })
        .collect();
    let answers = state.app.queue.complete_and_claim_many(&items).await?;
    let results = answers
        .into_iter()
        .map(|a| match a {
            Ok(_) => CompletionOutcome {
                completed: true,
                status: None,
                error: None,
            },
            Err(e) => {
                let e = ApiError::from(e);
                CompletionOutcome {
                    completed: false,
                    status: Some(e.status.as_u16()),
                    error: Some(e.into_detail()),
                }
            }
        })
        .collect();
    Ok(Json(CompletionsAnswer { results }))
}
