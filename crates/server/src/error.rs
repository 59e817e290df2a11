//! The API's error body, `{"error": {"code", "message", "field", "accepted"}}`, and how
//! port errors, validation errors and rejected requests become one with its status.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use prismq_domain::{text, PortError, ValidationError};

/// The error body every failed request gets.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong, for programs (`code`, `field`) and people (`message`, `accepted`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable code: `unauthorized`, `forbidden`, `invalid`, `not_found`, `duplicate`,
    /// `invalid_state`, `lease_lost`, `too_large`, `rate_limited`, `busy`, `unavailable`,
    /// `timeout`, `internal`.
    pub code: &'static str,
    /// One sentence for people.
    pub message: String,
    /// The input field that was wrong, for `invalid`.
    pub field: Option<String>,
    /// What that field accepts, for `invalid`.
    pub accepted: Option<String>,
}

/// An error answer: its status, body and, for 429 and 503, the `Retry-After` seconds.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub detail: ErrorDetail,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error without a field.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            detail: ErrorDetail {
                code,
                message: message.into(),
                field: None,
                accepted: None,
            },
            retry_after: None,
        }
    }

    /// 401: no key, a malformed one, an unknown or a revoked one (not told apart, so a
    /// caller learns nothing about which keys exist).
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 422 for a field, with what it accepts.
    pub fn invalid(
        field: impl Into<String>,
        message: impl Into<String>,
        accepted: impl Into<String>,
    ) -> ApiError {
        let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message);
        e.detail.field = Some(field.into());
        e.detail.accepted = Some(accepted.into());
        e
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 413 with the limit.
    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the request body is larger than {limit} bytes; nothing was written. Split a batch into smaller ones"),
        )
    }

    /// 429 with `Retry-After`.
    pub fn rate_limited(limit: u32, wait: Duration) -> ApiError {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("this key may make {limit} requests a minute; retry after {secs} s"),
        );
        e.retry_after = Some(secs.max(1));
        e
    }

    /// The same error with `Retry-After`.
    pub fn retry_after(mut self, secs: u64) -> ApiError {
        self.retry_after = Some(secs);
        self
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> ApiError {
        let message = e.to_string();
        ApiError::invalid(e.field, message, e.accepted)
    }
}

impl From<PortError> for ApiError {
    fn from(e: PortError) -> ApiError {
        let message = e.to_string();
        match e {
            PortError::Invalid(v) => v.into(),
            PortError::NotFound(_) => ApiError::not_found(message),
            PortError::LeaseLost { .. } => {
                ApiError::new(StatusCode::CONFLICT, "lease_lost", message)
            }
            PortError::Duplicate(_) => ApiError::new(StatusCode::CONFLICT, "duplicate", message),
            PortError::InvalidState { .. } => {
                ApiError::new(StatusCode::CONFLICT, "invalid_state", message)
            }
            PortError::Busy(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message).retry_after(1)
            }
            PortError::Unavailable(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
                    .retry_after(5)
            }
            PortError::Corrupt(_) | PortError::Gone(_) => {
                tracing::error!(error = %message, "storage failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the store failed; the server's log says why",
                )
            }
        }
    }
}

impl ApiError {
    /// The body's `error`, as an answer sends it: messages may quote the request (a field
    /// name, a value), so each text is one bounded line with no control or bidi characters.
    pub fn into_detail(self) -> ErrorDetail {
        let mut d = self.detail;
        d.message = clean(&d.message);
        d.field = d.field.as_deref().map(clean);
        d.accepted = d.accepted.as_deref().map(clean);
        d
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, retry) = (self.status, self.retry_after);
        let mut r = (
            status,
            axum::Json(ErrorBody {
                error: self.into_detail(),
            }),
        )
            .into_response();
        if let Some(secs) = retry {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        r
    }
}

/// Text quoted back to a client: one line of at most [`text::MESSAGE_MAX_CHARS`].
fn clean(t: &str) -> String {
    text::one_line(t, text::MESSAGE_MAX_CHARS)
}

/// The result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
