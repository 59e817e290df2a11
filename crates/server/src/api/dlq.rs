//! `/v1/dlq`: the failed (dead-lettered) tasks: list, retry, purge; as `prismq dlq`.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use prismq_domain::ports::{Scope, TaskFilter};
use prismq_domain::{Task, TaskId, TaskStatus, TaskType, Timestamp};

use super::input;
use super::tasks::TaskPage;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::ServerState;

/// Filters of `GET /v1/dlq`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DlqQuery {
    /// Only this task type.
    #[serde(rename = "type")]
    pub task_type: Option<String>,
    /// At most this many (1-10000; default 50).
    pub limit: Option<u32>,
    /// Only tasks with a smaller id (the previous page's `next_before`).
    pub before: Option<i64>,
}

/// What `POST /v1/dlq/retry` retries: some ids, or every failed task (of a type).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    /// The task ids (each must be failed; otherwise nothing is retried).
    #[serde(default)]
    pub ids: Vec<i64>,
    /// Every failed task instead of `ids`.
    #[serde(default)]
    pub all: bool,
    /// With `all`: only this task type.
    #[serde(rename = "type")]
    pub task_type: Option<String>,
}

/// The tasks sent back to the queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetriedBody {
    /// Their ids.
    pub retried: Vec<i64>,
}

/// What `POST /v1/dlq/purge` deletes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    /// Failed tasks that failed longer ago than this (7d, 12h) are deleted with their logs.
    pub older_than: String,
}

/// How many were deleted.
#[derive(Debug, Serialize, ToSchema)]
pub struct PurgedBody {
    /// Tasks deleted.
    pub purged: u64,
    /// The cut-off instant.
    #[schema(value_type = String)]
    pub finished_before: Timestamp,
}

/// `GET /v1/dlq`: failed tasks, newest first.
#[utoipa::path(get, path = "/v1/dlq", tag = "dlq", params(DlqQuery),
    responses(
        (status = 200, body = TaskPage),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
    ),
    security(("api_key" = ["read"])))]
pub async fn list(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    q: Result<Query<DlqQuery>, QueryRejection>,
) -> ApiResult<Json<TaskPage>> {
    caller.require(Scope::Read)?;
    let q = input::query(q)?;
    let filter = TaskFilter {
        status: Some(TaskStatus::Failed),
        task_type: q.task_type.as_deref().map(TaskType::new).transpose()?,
        before_id: q
            .before
            .map(|b| input::task_id(Ok(axum::extract::Path(b))))
            .transpose()?,
        finished_before: None,
        key_prefix: None,
        limit: q.limit.unwrap_or(50),
    };
    let tasks: Vec<Task> = state.app.queue.list(&filter).await?;
    let full = u32::try_from(tasks.len()).unwrap_or(u32::MAX) == filter.limit;
    let next_before = if full {
        tasks.last().map(|t| t.id.0)
    } else {
        None
    };
    Ok(Json(TaskPage { tasks, next_before }))
}

/// `POST /v1/dlq/retry`: every id is checked before any is retried, so one wrong id
/// changes nothing.
#[utoipa::path(post, path = "/v1/dlq/retry", tag = "dlq", request_body = RetryRequest,
    responses(
        (status = 200, body = RetriedBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "A task is not failed; nothing was retried", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ),
    security(("api_key" = ["admin"])))]
pub async fn retry(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<RetriedBody>> {
    caller.require(Scope::Admin)?;
    let bytes = input::body(body, state.options.body_limit)?;
    let r: RetryRequest = input::json(
        &bytes,
        "{\"ids\": [task ids]} or {\"all\": true, \"type\": optional task type}",
    )?;
    let ids: Vec<TaskId> = match (r.all, r.ids.is_empty()) {
        (true, true) => all_failed(&state, r.task_type.as_deref()).await?,
        (false, false) if r.task_type.is_none() => r
            .ids
            .iter()
            .map(|&id| input::task_id(Ok(axum::extract::Path(id))))
            .collect::<ApiResult<_>>()?,
        _ => return Err(ApiError::invalid(
            "ids",
            "give either ids or all (with an optional type)",
            "{\"ids\": [1, 2]} or {\"all\": true} or {\"all\": true, \"type\": \"channel_scrape\"}",
        )),
    };
    for id in &ids {
        let t = state.app.queue.get(*id).await?;
        if t.status != TaskStatus::Failed {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "invalid_state",
                format!(
                    "task {id} is {}, not failed; only dead-lettered tasks can be retried. Nothing was retried",
                    t.status
                ),
            ));
        }
    }
    for id in &ids {
        state.app.queue.retry(*id).await?;
    }
    Ok(Json(RetriedBody {
        retried: ids.iter().map(|i| i.0).collect(),
    }))
}

async fn all_failed(state: &ServerState, task_type: Option<&str>) -> ApiResult<Vec<TaskId>> {
    let mut filter = TaskFilter {
        status: Some(TaskStatus::Failed),
        task_type: task_type.map(TaskType::new).transpose()?,
        limit: 1000,
        ..TaskFilter::default()
    };
    let mut ids = Vec::new();
    loop {
        let page = state.app.queue.list(&filter).await?;
        let Some(last) = page.last() else { break };
        filter.before_id = Some(last.id);
        ids.extend(page.iter().map(|t| t.id));
    }
    Ok(ids)
}

/// `POST /v1/dlq/purge`: delete failed tasks (and their logs) older than `older_than`.
#[utoipa::path(post, path = "/v1/dlq/purge", tag = "dlq", request_body = PurgeRequest,
    responses(
        (status = 200, body = PurgedBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ),
    security(("api_key" = ["admin"])))]
pub async fn purge(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<PurgedBody>> {
    caller.require(Scope::Admin)?;
    let bytes = input::body(body, state.options.body_limit)?;
    let r: PurgeRequest = input::json(&bytes, "{\"older_than\": \"7d\"}")?;
    let age = input::duration("older_than", &r.older_than)?;
    let span = jiff::SignedDuration::try_from(age).unwrap_or(jiff::SignedDuration::MAX);
    let before = state
        .app
        .clock
        .now()
        .checked_sub(span)
        .unwrap_or(Timestamp::MIN);
    let mut total = 0;
    loop {
        let n = state
            .app
            .queue
            .purge(TaskStatus::Failed, before, 1000)
            .await?;
        total += n;
        if n == 0 {
            break;
        }
    }
    Ok(Json(PurgedBody {
        purged: total,
        finished_before: before,
    }))
}
