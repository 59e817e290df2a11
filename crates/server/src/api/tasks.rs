//! `/v1/tasks`: enqueue one or a batch (with `Idempotency-Key`), list with filters and
//! keyset paging, show with the log, cancel, retry. The same meanings as `prismq enqueue`
//! and `prismq tasks`.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use prismq_domain::ports::{Enqueued, LogRecord, Scope, TaskFilter};
use prismq_domain::{NewTask, Task, TaskStatus, TaskType, ValidationError};

use super::input::{self, TaskLine, TASK_ACCEPTED};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::ServerState;

/// The header that makes an enqueue safe to repeat.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// An enqueued task's id, and whether it already existed (same idempotency key).
#[derive(Debug, Serialize, ToSchema)]
pub struct EnqueuedBody {
    /// The task's id.
    pub id: i64,
    /// True when nothing was enqueued because the key named an existing task.
    pub duplicate: bool,
}

impl From<Enqueued> for EnqueuedBody {
    fn from(e: Enqueued) -> Self {
        EnqueuedBody {
            id: e.id.0,
            duplicate: e.duplicate,
        }
    }
}

/// A batch's answer: one entry per task, in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchBody {
    /// One entry per task given, in the same order.
    pub tasks: Vec<EnqueuedBody>,
}

/// A page of tasks, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskPage {
    /// The tasks (the same objects as `prismq tasks list --json`).
    #[schema(value_type = Vec<Object>)]
    pub tasks: Vec<Task>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<i64>,
}

/// One task and its log.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskWithLog {
    /// The task.
    #[schema(value_type = Object)]
    pub task: Task,
    /// Its log, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub log: Vec<LogRecord>,
}

/// A task after a change.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskBody {
    /// The task as it is now.
    #[schema(value_type = Object)]
    pub task: Task,
}

/// Filters of `GET /v1/tasks`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// queued, claimed, running, completed, failed or cancelled.
    pub status: Option<String>,
    /// Only this task type.
    #[serde(rename = "type")]
    pub task_type: Option<String>,
    /// At most this many (1-10000; default 50).
    pub limit: Option<u32>,
    /// Only tasks with a smaller id (the previous page's `next_before`).
    pub before: Option<i64>,
}

/// The idempotency key from the header, if any.
fn header_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    headers
        .get(IDEMPOTENCY_KEY)
        .map(|v| {
            v.to_str().map(str::to_owned).map_err(|_| {
                ApiError::invalid(
                    "Idempotency-Key",
                    "the header is not visible ASCII",
                    "up to 255 bytes of visible ASCII",
                )
            })
        })
        .transpose()
}

/// `POST /v1/tasks`: enqueue one task.
#[utoipa::path(post, path = "/v1/tasks", tag = "tasks",
    request_body = TaskLine,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to repeat: the same key answers the same task")),
    responses(
        (status = 201, description = "Enqueued", body = EnqueuedBody),
        (status = 200, description = "The key named an existing task; nothing was enqueued", body = EnqueuedBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ),
    security(("api_key" = ["enqueue"])))]
pub async fn enqueue(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<EnqueuedBody>)> {
    caller.require(Scope::Enqueue)?;
    let bytes = input::body(body, state.options.body_limit)?;
    let line: TaskLine = input::json(&bytes, TASK_ACCEPTED)?;
    let mut task = line.into_task()?;
    if let Some(k) = header_key(&headers)? {
        match &task.idempotency_key {
            Some(b) if *b != k => {
                return Err(ApiError::invalid(
                    "idempotency_key",
                    "the body's idempotency_key differs from the Idempotency-Key header",
                    "the same key in both, or only one of them",
                ))
            }
            _ => task.idempotency_key = Some(k),
        }
    }
    let e = state.app.enqueue(task).await?;
    let status = if e.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(e.into())))
}

/// The most tasks one batch may hold (as many as fit the body limit otherwise).
pub const MAX_BATCH: usize = 10_000;

/// `POST /v1/tasks/batch`: enqueue all or none: a JSON array of task objects, or the
/// JSONL file's lines with `Content-Type: application/x-ndjson`.
#[utoipa::path(post, path = "/v1/tasks/batch", tag = "tasks",
    request_body(content = Vec<TaskLine>, description = "A JSON array of tasks, or NDJSON (one task per line) with Content-Type application/x-ndjson"),
    params(("Idempotency-Key" = Option<String>, Header, description = "Task i without a key of its own gets KEY:i, so repeating the batch enqueues nothing new")),
    responses(
        (status = 201, description = "Every task enqueued (or found by its key)", body = BatchBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ),
    security(("api_key" = ["enqueue"])))]
pub async fn enqueue_batch(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<BatchBody>)> {
    caller.require(Scope::Enqueue)?;
    let bytes = input::body(body, state.options.body_limit)?;
    let ndjson = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-ndjson"));
    let lines: Vec<TaskLine> = if ndjson {
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| ApiError::invalid("body", "the body is not UTF-8", "UTF-8 NDJSON"))?;
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                input::json::<TaskLine>(l.as_bytes(), TASK_ACCEPTED).map_err(|mut e| {
                    e.detail.field = Some(format!(
                        "line {}{}",
                        i + 1,
                        e.detail
                            .field
                            .as_deref()
                            .filter(|f| *f != "body")
                            .map_or_else(String::new, |f| format!(": {f}"))
                    ));
                    e
                })
            })
            .collect::<ApiResult<_>>()?
    } else {
        input::json(
            &bytes,
            &format!("a JSON array of tasks, each {TASK_ACCEPTED}"),
        )?
    };
    if lines.is_empty() || lines.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "tasks",
            format!("a batch of {} tasks", lines.len()),
            format!("1 to {MAX_BATCH} tasks"),
        ));
    }
    let key = header_key(&headers)?;
    let tasks: Vec<NewTask> = lines
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let mut t = l.into_task().map_err(|e| input::within(e, i))?;
            if let (Some(k), None) = (&key, &t.idempotency_key) {
                t.idempotency_key = Some(format!("{k}:{i}"));
            }
            Ok(t)
        })
        .collect::<Result<_, ValidationError>>()?;
    let out = state.app.enqueue_batch(tasks).await?;
    Ok((
        StatusCode::CREATED,
        Json(BatchBody {
            tasks: out.into_iter().map(Into::into).collect(),
        }),
    ))
}

/// `GET /v1/tasks`: tasks newest first.
#[utoipa::path(get, path = "/v1/tasks", tag = "tasks", params(ListQuery),
    responses(
        (status = 200, body = TaskPage),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
    ),
    security(("api_key" = ["read"])))]
pub async fn list(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<TaskPage>> {
    caller.require(Scope::Read)?;
    let q = input::query(q)?;
    let filter = TaskFilter {
        status: q
            .status
            .as_deref()
            .map(str::parse::<TaskStatus>)
            .transpose()?,
        task_type: q.task_type.as_deref().map(TaskType::new).transpose()?,
        before_id: q
            .before
            .map(|b| input::task_id(Ok(Path(b))))
            .transpose()
            .map_err(|mut e| {
                e.detail.field = Some("before".into());
                e
            })?,
        finished_before: None,
        key_prefix: None,
        limit: q.limit.unwrap_or(50),
    };
    let tasks = state.app.queue.list(&filter).await?;
    let full = u32::try_from(tasks.len()).unwrap_or(u32::MAX) == filter.limit;
    let next_before = if full {
        tasks.last().map(|t| t.id.0)
    } else {
        None
    };
    Ok(Json(TaskPage { tasks, next_before }))
}

/// `GET /v1/tasks/{id}`: one task with its log.
#[utoipa::path(get, path = "/v1/tasks/{id}", tag = "tasks",
    params(("id" = i64, Path, description = "The task id")),
    responses(
        (status = 200, body = TaskWithLog),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ),
    security(("api_key" = ["read"])))]
pub async fn show(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<TaskWithLog>> {
    caller.require(Scope::Read)?;
    let id = input::task_id(id)?;
    let task = state.app.queue.get(id).await?;
    let log = state.app.logs.list(id).await?;
    Ok(Json(TaskWithLog { task, log }))
}

/// `POST /v1/tasks/{id}/cancel`: cancel a queued, claimed or running task.
#[utoipa::path(post, path = "/v1/tasks/{id}/cancel", tag = "tasks",
    params(("id" = i64, Path, description = "The task id")),
    responses(
        (status = 200, body = TaskBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "The task is already final", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
    ),
    security(("api_key" = ["admin"])))]
pub async fn cancel(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<TaskBody>> {
    caller.require(Scope::Admin)?;
    let task = state.app.queue.cancel(input::task_id(id)?).await?;
    Ok(Json(TaskBody { task }))
}

/// `POST /v1/tasks/{id}/retry`: send a failed (dead-lettered) task back to the queue.
#[utoipa::path(post, path = "/v1/tasks/{id}/retry", tag = "tasks",
    params(("id" = i64, Path, description = "The task id")),
    responses(
        (status = 200, body = TaskBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "The task is not failed", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
    ),
    security(("api_key" = ["admin"])))]
pub async fn retry(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Json<TaskBody>> {
    caller.require(Scope::Admin)?;
    let task = state.app.queue.retry(input::task_id(id)?).await?;
    Ok(Json(TaskBody { task }))
}
