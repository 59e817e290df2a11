//! The two reads a remote worker's handlers make besides its own tasks (scope `work`): the
//! tracked videos a `refresh_stats` task refreshes (`POST /v1/work/tracked`, the
//! `TrackedVideos` port) and a channel's baselines, which decide whether a follow-up scrape
//! of the channel is still needed (`POST /v1/work/baselines`). Video and channel ids only;
//! the results themselves stay behind `/v1/results` (scope `read`).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use prismq_domain::ports::{ChannelBaseline, Scope, TrackedFilter};
use prismq_domain::ValidationError;

use super::work::read;
use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::ServerState;

/// The longest id, channel or schedule name accepted in these bodies.
const MAX_ID_CHARS: usize = 256;

fn bounded(field: &str, text: Option<&str>) -> Result<(), ValidationError> {
    match text {
        Some(t) if t.chars().count() > MAX_ID_CHARS || t.chars().any(char::is_control) => {
            Err(ValidationError::new(
                field,
                "too long or holds control characters",
                format!("text of at most {MAX_ID_CHARS} characters without control characters"),
            ))
        }
        _ => Ok(()),
    }
}

/// Which tracked videos: the domain's [`TrackedFilter`], read strictly (a misspelt
/// condition is refused, never dropped into a wider listing).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackedFilterBody {
    #[serde(default)]
    seen_since: Option<prismq_domain::Timestamp>,
    #[serde(default)]
    channel_id: Option<String>,
    #[serde(default)]
    schedule: Option<String>,
}

impl From<TrackedFilterBody> for TrackedFilter {
    fn from(b: TrackedFilterBody) -> TrackedFilter {
        TrackedFilter {
            seen_since: b.seen_since,
            channel_id: b.channel_id,
            schedule: b.schedule,
        }
    }
}

/// `POST /v1/work/tracked`'s body: the `TrackedVideos` port's arguments.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackedBody {
    /// `{"seen_since": RFC 3339|null, "channel_id": str|null, "schedule": str|null}`; every
    /// condition given must hold; another key is refused.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub filter: TrackedFilterBody,
    /// Only ids strictly after this one (keyset paging: the last id of the previous page).
    #[serde(default)]
    pub after: Option<String>,
    /// At most this many ids (1-1000).
    pub limit: u32,
}

/// A page of tracked video ids.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrackedAnswer {
    /// Ascending.
    pub ids: Vec<String>,
}

/// `POST /v1/work/tracked`: the ids of the tracked videos matching the filter, a page at a
/// time, for a remote worker's `refresh_stats` task.
#[utoipa::path(post, path = "/v1/work/tracked", tag = "work", request_body = TrackedBody,
    responses(
        (status = 200, body = TrackedAnswer),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "The filter names no such schedule", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = ["work"])))]
pub async fn tracked(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<TrackedAnswer>> {
    caller.require(Scope::Work)?;
    let b: TrackedBody = read(
        &state,
        body,
        "an object with \"filter\", \"after\" and \"limit\"",
    )?;
    bounded("after", b.after.as_deref())?;
    bounded("filter.channel_id", b.filter.channel_id.as_deref())?;
    bounded("filter.schedule", b.filter.schedule.as_deref())?;
    let filter = TrackedFilter::from(b.filter);
    let ids = state
        .app
        .tracked
        .tracked_ids(&filter, b.after, b.limit)
        .await?;
    Ok(Json(TrackedAnswer { ids }))
}

/// `POST /v1/work/baselines`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BaselinesBody {
    /// The channel id (`UC…`).
    pub channel: String,
}

/// A channel's stored baselines.
#[derive(Debug, Serialize, ToSchema)]
pub struct BaselinesAnswer {
    /// One per format and basis; empty when the channel has none.
    #[schema(value_type = Vec<Object>)]
    pub baselines: Vec<ChannelBaseline>,
}

/// `POST /v1/work/baselines`: a channel's stored baselines, which a remote worker reads
/// before enqueueing a follow-up scrape of the channel "unless it has a baseline".
#[utoipa::path(post, path = "/v1/work/baselines", tag = "work", request_body = BaselinesBody,
    responses(
        (status = 200, body = BaselinesAnswer),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("api_key" = ["work"])))]
pub async fn baselines(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<BaselinesAnswer>> {
    caller.require(Scope::Work)?;
    let b: BaselinesBody = read(&state, body, "an object with \"channel\"")?;
    bounded("channel", Some(&b.channel))?;
    let baselines = state.app.results.baselines(&b.channel).await?;
    Ok(Json(BaselinesAnswer { baselines }))
}
