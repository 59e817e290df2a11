//! `/v1/types`, `/v1/stats` and `/v1/workers`: what the queue runs and how it is doing.

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use prismq_domain::ports::{QueueStats, QuotaUsage, Scope, WorkerRecord};

use super::input;
use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::ServerState;

/// One registered task type.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskTypeBody {
    /// Its name, as `type` takes it.
    #[serde(rename = "type")]
    pub task_type: String,
    /// The JSON Schema of its params, made from the plugin's declaration
    /// (`prismq_domain::param_spec`); null when the plugin declares none. The handler's own
    /// check at enqueue time stays the judge (it may accept more, such as a number as text).
    #[schema(value_type = Option<Object>)]
    pub params_schema: Option<serde_json::Value>,
}

/// The registered task types.
#[derive(Debug, Serialize, ToSchema)]
pub struct TypesBody {
    /// Sorted by name.
    pub types: Vec<TaskTypeBody>,
}

/// `GET /v1/types`: the task types this server's plugins register.
#[utoipa::path(get, path = "/v1/types", tag = "queue",
    responses(
        (status = 200, body = TypesBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ),
    security(("api_key" = ["read"])))]
pub async fn types(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<TypesBody>> {
    caller.require(Scope::Read)?;
    let mut types = state.app.registry.task_types();
    types.sort();
    Ok(Json(TypesBody {
        types: types
            .into_iter()
            .map(|t| TaskTypeBody {
                params_schema: state
                    .app
                    .registry
                    .handler(&t)
                    .and_then(|h| h.params())
                    .map(|specs| prismq_domain::param_spec::json_schema(&specs)),
                task_type: t.as_str().to_owned(),
            })
            .collect(),
    }))
}

/// Queue depth and recent activity, with the quota buckets.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsBody {
    /// Counts by type and status, the oldest eligible task, recent completions and failures
    /// (the same object as `prismq stats --json` reads).
    #[schema(value_type = Object)]
    pub stats: QueueStats,
    /// Every quota bucket's use in its window.
    #[schema(value_type = Vec<Object>)]
    pub quota: Vec<QuotaUsage>,
}

/// `GET /v1/stats`.
#[utoipa::path(get, path = "/v1/stats", tag = "queue",
    responses(
        (status = 200, body = StatsBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ),
    security(("api_key" = ["read"])))]
pub async fn stats(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<StatsBody>> {
    caller.require(Scope::Read)?;
    Ok(Json(StatsBody {
        stats: state.app.queue.stats().await?,
        quota: state.app.quota.usage().await?,
    }))
}

/// Filters of `GET /v1/workers`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WorkersQuery {
    /// A worker silent for longer than this is stale (default: 3 heartbeats).
    pub stale_after: Option<String>,
}

/// The registered worker loops.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkersBody {
    /// The same objects as `prismq workers --json`.
    #[schema(value_type = Vec<Object>)]
    pub workers: Vec<WorkerRecord>,
}

/// `GET /v1/workers`: registered worker loops and their health.
#[utoipa::path(get, path = "/v1/workers", tag = "queue", params(WorkersQuery),
    responses(
        (status = 200, body = WorkersBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
    ),
    security(("api_key" = ["read"])))]
pub async fn workers(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    q: Result<Query<WorkersQuery>, QueryRejection>,
) -> ApiResult<Json<WorkersBody>> {
    caller.require(Scope::Read)?;
    let q = input::query(q)?;
    let stale_after: Duration = match &q.stale_after {
        Some(s) => input::duration("stale_after", s)?,
        None => state.app.config.worker.heartbeat_interval * 3,
    };
    Ok(Json(WorkersBody {
        workers: state.app.workers.list(stale_after).await?,
    }))
}
