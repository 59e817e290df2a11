//! Reading requests: JSON bodies (malformed JSON, wrong types and unknown fields are 422
//! naming the field; a body over the limit is 413), query strings and path ids, and the
//! task shape shared with the CLI's JSONL file (`{"type", "params", "priority",
//! "run_after", "idempotency_key", "max_attempts", "region"}`), checked with the same
//! domain constructors and messages as `prismq enqueue --file`.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use prismq_domain::task::MAX_ATTEMPTS_LIMIT;
use prismq_domain::{
    time_range, Compatibility, NewTask, Priority, TaskId, TaskType, Timestamp, ValidationError,
};

use crate::error::{ApiError, ApiResult};

/// The body as bytes, or 413 / 400 for a body that could not be read.
///
/// # Errors
/// 413 over `limit`; 400 for a body that broke off.
pub fn body(bytes: Result<Bytes, BytesRejection>, limit: usize) -> ApiResult<Bytes> {
    bytes.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(limit)
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                format!("the request body could not be read: {}", r.body_text()),
            )
        }
    })
}

/// `bytes` as a `T`, refusing malformed JSON and unknown fields with the path of the field
/// (`tasks[2].priority`) and what is accepted.
///
/// # Errors
/// 422.
pub fn json<T: DeserializeOwned>(bytes: &[u8], accepted: &str) -> ApiResult<T> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = if path == "." || path.is_empty() || !inner.is_data() {
            "body".to_owned()
        } else {
            path
        };
        ApiError::invalid(
            field,
            format!("the body is not accepted JSON: {inner}"),
            accepted,
        )
    })?;
    de.end().map_err(|e| {
        ApiError::invalid(
            "body",
            format!("trailing characters after the JSON value: {e}"),
            accepted,
        )
    })?;
    Ok(value)
}

/// A query string as `T`, or 422 saying what was wrong.
///
/// # Errors
/// 422.
pub fn query<T>(q: Result<axum::extract::Query<T>, QueryRejection>) -> ApiResult<T> {
    q.map(|axum::extract::Query(v)| v).map_err(|r| {
        ApiError::invalid(
            "query",
            format!("the query string is not accepted: {}", r.body_text()),
            "the parameters this endpoint documents (see /v1/openapi.json)",
        )
    })
}

/// A task id from the path.
///
/// # Errors
/// 422 for anything but a positive integer.
pub fn task_id(p: Result<axum::extract::Path<i64>, PathRejection>) -> ApiResult<TaskId> {
    match p {
        Ok(axum::extract::Path(id)) if id > 0 => Ok(TaskId(id)),
        Ok(axum::extract::Path(id)) => {
            Err(
                ValidationError::new("id", format!("{id} is not a task id"), "a positive integer")
                    .into(),
            )
        }
        Err(r) => Err(ApiError::invalid(
            "id",
            format!("not a task id: {}", r.body_text()),
            "a positive integer",
        )),
    }
}

/// What a task body accepts, for error messages.
pub const TASK_ACCEPTED: &str = "an object with \"type\" (required), \"params\" (an object), \"priority\" (1-10), \"run_after\" (RFC 3339), \"idempotency_key\", \"max_attempts\" (1-100) and \"region\" (ISO 3166-1 alpha-2), and no other field";

/// One task, as a line of the JSONL file `prismq enqueue --file` reads.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskLine {
    /// The task type (see `GET /v1/types`).
    #[serde(rename = "type")]
    pub task_type: String,
    /// The handler's parameters (default `{}`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub params: Option<Value>,
    /// 1 (lowest) to 10 (highest); default 5.
    pub priority: Option<i64>,
    /// Not before this RFC 3339 instant.
    pub run_after: Option<String>,
    /// Enqueueing the same key again creates nothing and answers the existing task.
    pub idempotency_key: Option<String>,
    /// Attempts before the task is dead-lettered (1-100).
    pub max_attempts: Option<i64>,
    /// Only workers serving this region may claim it (ISO 3166-1 alpha-2).
    pub region: Option<String>,
}

impl TaskLine {
    /// The task, checked as the CLI checks a line of its file.
    ///
    /// # Errors
    /// The first malformed field.
    pub fn into_task(self) -> Result<NewTask, ValidationError> {
        let mut task = NewTask::new(
            TaskType::new(&self.task_type)?,
            self.params.unwrap_or_else(|| Value::Object(Map::new())),
        );
        if let Some(p) = self.priority {
            task.priority = Priority::new(p)?;
        }
        if let Some(t) = &self.run_after {
            task.run_after = Some(instant("run_after", t)?);
        }
        task.idempotency_key = self.idempotency_key;
        if let Some(n) = self.max_attempts {
            task.max_attempts = Some(u32::try_from(n).map_err(|_| {
                ValidationError::new(
                    "max_attempts",
                    format!("{n} is out of range"),
                    format!("an integer from 1 to {MAX_ATTEMPTS_LIMIT}"),
                )
            })?);
        }
        if let Some(r) = &self.region {
            task.compatibility = Compatibility::with_region(r)?;
        }
        Ok(task)
    }
}

/// An RFC 3339 instant within [`time_range::RANGE`], refused as the CLI refuses it.
///
/// # Errors
/// Malformed text or an instant outside the range, naming `field`.
pub fn instant(field: &str, text: &str) -> Result<Timestamp, ValidationError> {
    let t = text.trim();
    let shown = prismq_domain::task::truncate_for_message(t);
    match t.parse::<Timestamp>() {
        Ok(at) if time_range::contains(at) => Ok(at),
        Ok(_) => Err(time_range::out_of_range(field, &shown)),
        Err(_) => Err(ValidationError::new(
            field,
            format!("{shown:?} is not an RFC 3339 timestamp"),
            time_range::INSTANT_ACCEPTED,
        )),
    }
}

/// A duration such as `7d` (as the CLI's flags take it).
///
/// # Errors
/// Malformed text, naming `field`.
pub fn duration(field: &str, text: &str) -> Result<std::time::Duration, ValidationError> {
    prismq_app::config::parse_duration(text).ok_or_else(|| {
        ValidationError::new(
            field,
            format!(
                "{:?} is not a duration",
                prismq_domain::task::truncate_for_message(text)
            ),
            prismq_app::config::DURATION_ACCEPTED,
        )
    })
}

/// `now - d` for a duration (never before [`time_range::EARLIEST`]), or an RFC 3339
/// instant within the range: as `prismq results list --since`.
///
/// # Errors
/// Neither parses, or the instant is outside the range.
pub fn since(field: &str, text: &str, now: Timestamp) -> Result<Timestamp, ValidationError> {
    if let Some(d) = prismq_app::config::parse_duration(text) {
        let span = jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX);
        return Ok(time_range::clamp(
            now.checked_sub(span).unwrap_or(Timestamp::MIN),
        ));
    }
    instant(field, text).map_err(|e| {
        if e.problem.contains("not an RFC 3339") {
            ValidationError::new(
                field,
                format!(
                    "{:?} is neither a duration nor a timestamp",
                    prismq_domain::task::truncate_for_message(text)
                ),
                format!(
                    "a duration such as 7d or 12h, or {}",
                    time_range::INSTANT_ACCEPTED
                ),
            )
        } else {
            e
        }
    })
}

/// Puts `field`'s error under `tasks[i]`.
pub fn within(e: ValidationError, i: usize) -> ValidationError {
    e.within(&format!("tasks[{i}]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_lines_are_checked_like_the_cli_file() {
        let ok: TaskLine = json(
            br#"{"type":"keyword_search","params":{"query":"rust"},"priority":7,"run_after":"2026-01-31T08:00:00Z","max_attempts":3,"region":"DE"}"#,
            TASK_ACCEPTED,
        )
        .unwrap();
        let t = ok.into_task().unwrap();
        assert_eq!(t.priority.get(), 7);
        assert_eq!(t.max_attempts, Some(3));
        let e = json::<TaskLine>(br#"{"type":"x","colour":1}"#, TASK_ACCEPTED).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.detail.message.contains("unknown field `colour`"), "{e:?}");
        let e = json::<TaskLine>(br#"{"type":"x","priority":"high"}"#, TASK_ACCEPTED).unwrap_err();
        assert_eq!(e.detail.field.as_deref(), Some("priority"));
        let bad: TaskLine = json(br#"{"type":"x","priority":11}"#, TASK_ACCEPTED).unwrap();
        assert_eq!(bad.into_task().unwrap_err().field, "priority");
        let bad: TaskLine = json(br#"{"type":"x","run_after":"soon"}"#, TASK_ACCEPTED).unwrap();
        assert!(bad
            .into_task()
            .unwrap_err()
            .problem
            .contains("not an RFC 3339"));
        let bad: TaskLine = json(br#"{"type":"x","max_attempts":-1}"#, TASK_ACCEPTED).unwrap();
        assert_eq!(bad.into_task().unwrap_err().field, "max_attempts");
        assert!(json::<TaskLine>(b"{\"type\":\"x\"} {}", TASK_ACCEPTED).is_err());
    }
}
