//! `/v1/results`: the collected videos, as `prismq results list|show`.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use prismq_domain::growth::GrowthWindow;
use prismq_domain::outlier::VideoFormat;
use prismq_domain::ports::{
    ChannelBaseline, MetricSnapshot, ResultCursor, ResultOrder, ResultQuery, Scope, StoredResult,
};

use super::input;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::ServerState;

/// Filters of `GET /v1/results`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ResultsQuery {
    /// Only this source (youtube_channel, youtube_trending, youtube_keyword, youtube_api).
    pub source: Option<String>,
    /// Only items seen within this long (7d) or since this instant (RFC 3339).
    pub since: Option<String>,
    /// Only items first seen within this long (1d) or since this instant (RFC 3339).
    pub new_since: Option<String>,
    /// Only this channel's items.
    pub channel: Option<String>,
    /// Only items the task with this id saved last.
    pub task: Option<i64>,
    /// views (default), recent, growth or outlier.
    #[param(value_type = Option<String>)]
    pub order: Option<ResultOrder>,
    /// The growth window `order=growth` sorts by: 1h, 24h (default), 7d or 30d.
    pub window: Option<String>,
    /// Only items whose outlier score is at least this.
    pub min_score: Option<f64>,
    /// Only items whose outlier score is at most this.
    pub max_score: Option<f64>,
    /// long, short or stream.
    #[param(value_type = Option<String>)]
    pub format: Option<VideoFormat>,
    /// At most this many (1-10000; default 20).
    pub limit: Option<u32>,
    /// Start after this item: the previous page's `next_after` (an opaque cursor).
    pub after: Option<String>,
}

/// A page of results.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultPage {
    /// The items (the same objects as `prismq results list --json`).
    #[schema(value_type = Vec<Object>)]
    pub results: Vec<StoredResult>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<String>,
}

/// The longest cursor accepted (a cursor this server gives is well under it).
const MAX_CURSOR_CHARS: usize = 1_024;

/// A page cursor as the API and the dashboard pass it: URL-safe base64 of its JSON.
pub fn encode_cursor(c: &ResultCursor) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(c).unwrap_or_default())
}

/// A cursor [`encode_cursor`] made; `None` for anything else (too long, not base64, not a
/// cursor).
pub fn decode_cursor(text: &str) -> Option<ResultCursor> {
    use base64::Engine as _;
    if text.len() > MAX_CURSOR_CHARS {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// One stored item with its metrics history and its channel's baselines.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultDetail {
    /// The item.
    #[schema(value_type = Object)]
    pub result: StoredResult,
    /// Its metric snapshots, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<MetricSnapshot>,
    /// Its channel's baselines.
    #[schema(value_type = Vec<Object>)]
    pub baselines: Vec<ChannelBaseline>,
    /// Where it was seen, newest first (at most `sightings` of the query, default 50).
    #[schema(value_type = Vec<Object>)]
    pub sightings: Vec<prismq_domain::Sighting>,
}

/// Every platform's record with one id.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultShow {
    /// One entry per platform that has the id.
    pub results: Vec<ResultDetail>,
}

/// Filters of `GET /v1/results/{source_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ShowQuery {
    /// Only this platform (default: every platform that has the id).
    pub platform: Option<String>,
    /// How many sightings to list, newest first (1-10000, default 50).
    pub sightings: Option<u32>,
}

/// `GET /v1/results`: stored videos.
#[utoipa::path(get, path = "/v1/results", tag = "results", params(ResultsQuery),
    responses(
        (status = 200, body = ResultPage),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
    ),
    security(("api_key" = ["read"])))]
pub async fn list(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    q: Result<Query<ResultsQuery>, QueryRejection>,
) -> ApiResult<Json<ResultPage>> {
    caller.require(Scope::Read)?;
    let q = input::query(q)?;
    let query = result_query(&state, q)?;
    let results = state.app.results.query(&query).await?;
    let next_after = match results.last() {
        Some(last) if results.len() == query.limit as usize => {
            Some(encode_cursor(&query.cursor_after(last)))
        }
        _ => None,
    };
    Ok(Json(ResultPage {
        results,
        next_after,
    }))
}

/// `GET /v1/results/{source_id}`: one video (on every platform that has the id) with its
/// metrics history, its sightings and its channel's baselines.
#[utoipa::path(get, path = "/v1/results/{source_id}", tag = "results",
    params(("source_id" = String, Path, description = "The video's id on its platform (a YouTube video id)"), ShowQuery),
    responses(
        (status = 200, body = ResultShow),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ),
    security(("api_key" = ["read"])))]
pub async fn show(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<ShowQuery>, QueryRejection>,
) -> ApiResult<Json<ResultShow>> {
    caller.require(Scope::Read)?;
    let Path(source_id) =
        id.map_err(|r| ApiError::invalid("source_id", r.body_text(), "a source's item id"))?;
    let q = input::query(q)?;
    let sightings = q.sightings.unwrap_or(50);
    prismq_domain::ports::check_page_limit(sightings).map_err(|e| {
        ApiError::invalid(
            "sightings",
            e.problem,
            "a number of sightings from 1 to 10000",
        )
    })?;
    let found = match q.platform {
        Some(p) => vec![state.app.results.get(&p, &source_id).await?],
        None => state.app.results.find(&source_id).await?,
    };
    if found.is_empty() {
        return Err(ApiError::not_found(format!(
            "no stored result has the id {:?}",
            prismq_domain::task::truncate_for_message(&source_id)
        )));
    }
    let mut results = Vec::new();
    for r in found {
        let history = state
            .app
            .results
            .history(&r.item.platform, &r.item.source_id)
            .await?;
        let seen = state
            .app
            .results
            .sightings(&r.item.platform, &r.item.source_id, sightings)
            .await?;
        let baselines = match r.item.channel_id.as_deref() {
            Some(c) => state.app.results.baselines(c).await?,
            None => Vec::new(),
        };
        results.push(ResultDetail {
            result: r,
            history,
            baselines,
            sightings: seen,
        });
    }
    Ok(Json(ResultShow { results }))
}

/// The storage query a listing's filters ask for.
fn result_query(state: &ServerState, q: ResultsQuery) -> ApiResult<ResultQuery> {
    if let (Some(lo), Some(hi)) = (q.min_score, q.max_score) {
        if lo > hi {
            return Err(ApiError::invalid(
                "min_score",
                format!("min_score {lo} is above max_score {hi}"),
                "a minimum at most the maximum",
            ));
        }
    }
    for (name, v) in [("min_score", q.min_score), ("max_score", q.max_score)] {
        if v.is_some_and(|v| !v.is_finite()) {
            return Err(ApiError::invalid(
                name,
                "not a finite number",
                "a number such as 0.5, 2 or -0.25",
            ));
        }
    }
    Ok(ResultQuery {
        source: q.source,
        since: q
            .since
            .as_deref()
            .map(|s| input::since("since", s, state.app.clock.now()))
            .transpose()?,
        new_since: q
            .new_since
            .as_deref()
            .map(|s| input::since("new_since", s, state.app.clock.now()))
            .transpose()?,
        channel_id: q.channel,
        task: match q.task {
            Some(id) if id <= 0 => {
                return Err(ApiError::invalid(
                    "task",
                    format!("{id} is not a task id"),
                    "a positive task id",
                ))
            }
            t => t.map(prismq_domain::TaskId),
        },
        window: match q.window.as_deref() {
            None => GrowthWindow::Day,
            Some(w) => w.parse::<GrowthWindow>().map_err(ApiError::from)?,
        },
        min_score: q.min_score,
        max_score: q.max_score,
        format: q.format,
        order: q.order.unwrap_or_default(),
        after: match q.after.as_deref() {
            None => None,
            Some(text) => Some(decode_cursor(text).ok_or_else(|| {
                ApiError::invalid(
                    "after",
                    "not a cursor this server gave",
                    "the next_after of the previous page, as it was given",
                )
            })?),
        },
        limit: q.limit.unwrap_or(20),
    })
}

/// The filters and output of `GET /v1/export/results`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// ndjson (default: one JSON object per line, the objects of `GET /v1/results`) or csv
    /// (a header row, then the columns of `prismq results export --format csv`).
    pub output: Option<String>,
    /// Only this source (youtube_channel, youtube_trending, youtube_keyword, youtube_api).
    pub source: Option<String>,
    /// Only items seen within this long (7d) or since this instant (RFC 3339).
    pub since: Option<String>,
    /// Only items first seen within this long (1d) or since this instant (RFC 3339).
    pub new_since: Option<String>,
    /// Only this channel's items.
    pub channel: Option<String>,
    /// Only items the task with this id found.
    pub task: Option<i64>,
    /// views (default), recent, growth or outlier.
    #[param(value_type = Option<String>)]
    pub order: Option<ResultOrder>,
    /// The growth window `order=growth` sorts by: 1h, 24h (default), 7d or 30d.
    pub window: Option<String>,
    /// Only items whose outlier score is at least this.
    pub min_score: Option<f64>,
    /// Only items whose outlier score is at most this.
    pub max_score: Option<f64>,
    /// long, short or stream.
    #[param(value_type = Option<String>)]
    pub format: Option<VideoFormat>,
}

/// `GET /v1/export/results`: every stored video the filters select, streamed as NDJSON or
/// CSV in the listing's order.
///
/// The body is read from storage a page at a time while it is sent, so an export of a
/// million videos holds one page in memory. An error before the first byte is an ordinary
/// error answer; a storage error after it ends the response without its final chunk, so a
/// client never mistakes a cut export for a whole one.
#[utoipa::path(get, path = "/v1/export/results", tag = "results", params(ExportQuery),
    responses(
        (status = 200, description = "The export, streamed",
            content((String = "application/x-ndjson"), (String = "text/csv"))),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("api_key" = ["read"])))]
pub async fn export(
    State(state): State<ServerState>,
    Extension(caller): Extension<Caller>,
    q: Result<Query<ExportQuery>, QueryRejection>,
) -> ApiResult<axum::response::Response> {
    use axum::http::header;
    use prismq_app::export::{Encoder, ExportFormat, Pages, EXPORT_PAGE};

    caller.require(Scope::Read)?;
    let q = input::query(q)?;
    let (format, content_type, file) = match q.output.as_deref() {
        None | Some("ndjson") => (
            ExportFormat::Jsonl,
            "application/x-ndjson",
            "prismq-results.ndjson",
        ),
        Some("csv") => (
            ExportFormat::Csv,
            "text/csv; charset=utf-8",
            "prismq-results.csv",
        ),
        Some(other) => {
            return Err(ApiError::invalid(
                "output",
                format!(
                    "{:?} is not an export format",
                    prismq_domain::task::truncate_for_message(other)
                ),
                "ndjson or csv",
            ))
        }
    };
    let query = result_query(
        &state,
        ResultsQuery {
            source: q.source,
            since: q.since,
            new_since: q.new_since,
            channel: q.channel,
            task: q.task,
            order: q.order,
            window: q.window,
            min_score: q.min_score,
            max_score: q.max_score,
            format: q.format,
            limit: Some(EXPORT_PAGE),
            after: None,
        },
    )?;
    let encoder = Encoder::new(format);
    let mut pages = Pages::new(state.app.results.clone(), query);
    // The first page before the answer: a storage error is then a proper error answer.
    let mut head = encoder.start();
    if let Some(first) = pages.next().await? {
        head.extend(encoder.page(&first));
    }
    let rest = futures_util::stream::unfold(Some(pages), move |pages| async move {
        let mut pages = pages?;
        match pages.next().await {
            Ok(Some(page)) => Some((Ok(encoder.page(&page)), Some(pages))),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "results export cut short by a storage error");
                Some((Err(std::io::Error::other(e.to_string())), None))
            }
        }
    });
    let body = futures_util::stream::once(async move { Ok::<_, std::io::Error>(head) }).chain(rest);
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}
