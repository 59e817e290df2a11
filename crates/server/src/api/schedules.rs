//! `/v1/schedules`: schedules over HTTP with `prismq schedule`'s meanings: list and show
//! (`read`), add, pause, resume, run now and remove (`admin`). Adding checks the task as
//! enqueue does and the cadence, zone and jitter as the CLI does, with the same messages.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use prismq_app::schedules::ScheduleView;
use prismq_domain::ports::Scope;
use prismq_domain::schedule::{check_name, parse_jitter, Cadence, NewSchedule, Schedule};
use prismq_domain::{Priority, TaskType, ValidationError};

use super::input;
use super::tasks::EnqueuedBody;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::ServerState;

/// What a schedule body accepts, for error messages.
pub const SCHEDULE_ACCEPTED: &str = "an object with \"name\" and \"type\" (required), \"params\" (an object), \"priority\" (1-10), exactly one of \"every\" (a duration, 1m to 366d) and \"cron\" (5 fields), \"tz\" (an IANA zone, default UTC) and \"jitter\" (0s to 1h), and no other field";

/// A schedule to add: the fields of `prismq schedule add`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    /// A unique name (letters, digits, '-', '_', '.'; up to 64 characters).
    pub name: String,
    /// The task type it enqueues (see `GET /v1/types`).
    #[serde(rename = "type")]
    pub task_type: String,
    /// The task's parameters (default `{}`), checked as enqueue checks them.
    #[schema(value_type = Option<Object>)]
    pub params: Option<Value>,
    /// The tasks' priority, 1 (lowest) to 10 (highest); default 5.
    pub priority: Option<i64>,
    /// Fire every this long, counted from 1970-01-01T00:00Z (30m, 6h, 1d).
    pub every: Option<String>,
    /// Fire at the times this 5-field cron expression names, in `tz`.
    pub cron: Option<String>,
    /// The IANA zone the cron expression is read in (default UTC).
    pub tz: Option<String>,
    /// Each slot's task becomes runnable up to this much after the slot (0s to 1h).
    pub jitter: Option<String>,
}

impl ScheduleBody {
    /// The schedule, its own fields checked (the task is checked when it is added).
    fn into_new(self) -> Result<NewSchedule, ValidationError> {
        check_name(&self.name)?;
        let cadence = Cadence::one_of(self.every.as_deref(), self.cron.as_deref())?;
        let mut new = NewSchedule::new(
            self.name,
            TaskType::new(&self.task_type)?,
            self.params.unwrap_or_else(|| Value::Object(Map::new())),
            cadence,
        );
        if let Some(p) = self.priority {
            new.priority = Priority::new(p)?;
        }
        if let Some(tz) = self.tz {
            new.time_zone = tz.trim().to_owned();
        }
        if let Some(j) = &self.jitter {
            new.jitter = parse_jitter(j)?;
        }
        Ok(new)
    }
}

/// Every schedule.
#[derive(Debug, Serialize, ToSchema)]
pub struct SchedulesBody {
    /// By name; each with `error` when this build cannot fire it.
    #[schema(value_type = Vec<Object>)]
    pub schedules: Vec<ScheduleView>,
}

/// One schedule.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleAnswer {
    /// The schedule as stored (`name`, `task_type`, `params`, `priority`, `cadence`,
    /// `time_zone`, `jitter_secs`, `paused`, `next_slot`, …), with `error` when this build
    /// cannot fire it.
    #[schema(value_type = Object)]
    pub schedule: Value,
}

impl ScheduleAnswer {
    fn of(s: &Schedule) -> Self {
        ScheduleAnswer {
            schedule: serde_json::to_value(s).unwrap_or(Value::Null),
        }
    }

    fn of_view(v: &ScheduleView) -> Self {
        ScheduleAnswer {
            schedule: serde_json::to_value(v).unwrap_or(Value::Null),
        }
    }
}

/// A schedule's name from the path, checked as names are.
fn name(p: Result<Path<String>, PathRejection>) -> ApiResult<String> {
    let Path(name) =
        p.map_err(|r| ApiError::invalid("name", r.body_text(), "a schedule's name"))?;
    check_name(&name)?;
    Ok(name)
}

/// `GET /v1/schedules`: every schedule.
#[utoipa::path(get, path = "/v1/schedules", tag = "schedules",
    responses(
        (status = 200, body = SchedulesBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ),
    security(("api_key" = ["read"])))]
pub async fn list(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<SchedulesBody>> {
    caller.require(Scope::Read)?;
    Ok(Json(SchedulesBody {
        schedules: state.app.schedule_views().await?,
    }))
}

/// `GET /v1/schedules/{name}`: one schedule.
#[utoipa::path(get, path = "/v1/schedules/{name}", tag = "schedules",
    params(("name" = String, Path, description = "The schedule's name")),
    responses(
        (status = 200, body = ScheduleAnswer),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ),
    security(("api_key" = ["read"])))]
pub async fn show(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<ScheduleAnswer>> {
    caller.require(Scope::Read)?;
    let v = state.app.schedule_view(&name(p)?).await?;
    Ok(Json(ScheduleAnswer::of_view(&v)))
}

/// `POST /v1/schedules`: add a schedule (its task checked as enqueue checks it; nothing is
/// written when anything is refused).
#[utoipa::path(post, path = "/v1/schedules", tag = "schedules",
    request_body = ScheduleBody,
    responses(
        (status = 201, body = ScheduleAnswer),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "A schedule has this name", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ),
    security(("api_key" = ["admin"])))]
pub async fn add(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<ScheduleAnswer>)> {
    caller.require(Scope::Admin)?;
    let bytes = input::body(body, state.options.body_limit)?;
    let b: ScheduleBody = input::json(&bytes, SCHEDULE_ACCEPTED)?;
    let s = state.app.add_schedule(b.into_new()?).await?;
    Ok((StatusCode::CREATED, Json(ScheduleAnswer::of(&s))))
}

/// `POST /v1/schedules/{name}/pause`: fire nothing until resumed (slots are skipped).
#[utoipa::path(post, path = "/v1/schedules/{name}/pause", tag = "schedules",
    params(("name" = String, Path, description = "The schedule's name")),
    responses(
        (status = 200, body = ScheduleAnswer),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ),
    security(("api_key" = ["admin"])))]
pub async fn pause(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<ScheduleAnswer>> {
    caller.require(Scope::Admin)?;
    let s = state
        .app
        .schedules
        .set_schedule_paused(&name(p)?, true)
        .await?;
    Ok(Json(ScheduleAnswer::of(&s)))
}

/// `POST /v1/schedules/{name}/resume`: fire again from the next slot.
#[utoipa::path(post, path = "/v1/schedules/{name}/resume", tag = "schedules",
    params(("name" = String, Path, description = "The schedule's name")),
    responses(
        (status = 200, body = ScheduleAnswer),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ),
    security(("api_key" = ["admin"])))]
pub async fn resume(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<ScheduleAnswer>> {
    caller.require(Scope::Admin)?;
    let s = state
        .app
        .schedules
        .set_schedule_paused(&name(p)?, false)
        .await?;
    Ok(Json(ScheduleAnswer::of(&s)))
}

/// `POST /v1/schedules/{name}/run`: enqueue the schedule's task now (checked as enqueue
/// checks it), as `prismq schedule run-now`.
#[utoipa::path(post, path = "/v1/schedules/{name}/run", tag = "schedules",
    params(("name" = String, Path, description = "The schedule's name")),
    responses(
        (status = 201, body = EnqueuedBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ),
    security(("api_key" = ["admin"])))]
pub async fn run_now(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult<(StatusCode, Json<EnqueuedBody>)> {
    caller.require(Scope::Admin)?;
    let e = state.app.run_schedule_now(&name(p)?).await?;
    Ok((StatusCode::CREATED, Json(e.into())))
}

/// `DELETE /v1/schedules/{name}`: remove the schedule (the tasks it enqueued stay).
#[utoipa::path(delete, path = "/v1/schedules/{name}", tag = "schedules",
    params(("name" = String, Path, description = "The schedule's name")),
    responses(
        (status = 200, body = ScheduleAnswer),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ),
    security(("api_key" = ["admin"])))]
pub async fn remove(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<ScheduleAnswer>> {
    caller.require(Scope::Admin)?;
    let s = state.app.schedules.remove_schedule(&name(p)?).await?;
    Ok(Json(ScheduleAnswer::of(&s)))
}
