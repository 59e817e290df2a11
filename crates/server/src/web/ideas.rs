//! Ideas: the collected videos and a video's page. Every use of the result store port
//! (`query`, `get`, `find`, `history`) is in this file, so the coming one-record-per-video
//! rework changes one place. The list sorts by views, recent, growth (views per hour) or
//! outlier score and filters by source and "seen since"; a video's page shows its metadata
//! as text, its metric history as a server-drawn SVG chart and a table, and every source
//! that found it.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;

use prismq_domain::growth::GrowthWindow;
use prismq_domain::ports::{MetricSnapshot, ResultOrder, ResultQuery, StoredResult};

use super::chart;
use super::page::{
    block, count, line, opt_time, render, time, Chrome, Viewer, WebError, WebResult, LINE_MAX,
    TITLE_MAX,
};
use super::tasks::{encode, url_pairs};
use crate::api::input;
use crate::ServerState;

/// Videos per page.
pub const PAGE: u32 = 50;
/// The longest description shown.
pub const DESCRIPTION_MAX: usize = 5_000;
/// The sort orders offered, as the CLI's `--order` names them.
pub const ORDERS: [&str; 4] = ["views", "recent", "growth", "outlier"];

/// The list's filters.
#[derive(Debug, Default, Deserialize)]
pub struct IdeasQuery {
    /// views, recent, growth or outlier.
    #[serde(default)]
    pub order: String,
    /// Only this source (`youtube_channel`, …).
    #[serde(default)]
    pub source: String,
    /// Seen since: a duration (`7d`) or an RFC 3339 instant.
    #[serde(default)]
    pub since: String,
    /// Start after this video: the cursor the previous page's "Next" link carries.
    pub after: Option<String>,
}

/// One video in the list.
#[derive(Debug)]
pub struct IdeaRow {
    /// `/ideas/{platform}/{id}`.
    pub href: String,
    /// Title.
    pub title: String,
    /// Channel.
    pub channel: String,
    /// Source.
    pub source: String,
    /// Views.
    pub views: String,
    /// Views per hour.
    pub growth: String,
    /// Outlier score.
    pub outlier: String,
    /// Published.
    pub published: String,
    /// First seen.
    pub first_seen: String,
}

fn href(r: &StoredResult) -> String {
    format!(
        "/ideas/{}/{}",
        encode(&r.item.platform),
        encode(&r.item.source_id)
    )
}

/// Views per hour over `w`, with the span when the history covers less of the window;
/// `-` when it is too short to say.
fn growth_cell(r: &StoredResult, w: GrowthWindow) -> String {
    match r.growth.get(w) {
        None => "-".to_owned(),
        Some(g) if g.span_secs >= w.seconds() => format!("{:.1}", g.views_per_hour),
        Some(g) => format!(
            "{:.1} (over {:.1} h)",
            g.views_per_hour,
            g.span_secs as f64 / 3_600.0
        ),
    }
}

fn opt_count(v: Option<i64>) -> String {
    v.map_or_else(|| "-".to_owned(), count)
}

fn row(r: &StoredResult) -> IdeaRow {
    IdeaRow {
        href: href(r),
        title: line(&r.item.title, TITLE_MAX),
        channel: line(r.item.channel.as_deref().unwrap_or("-"), TITLE_MAX),
        source: line(&r.item.source, TITLE_MAX),
        views: opt_count(r.item.metrics.views),
        growth: growth_cell(r, GrowthWindow::Day),
        outlier: r
            .outlier
            .as_ref()
            .map_or_else(|| "-".to_owned(), |o| format!("{:.2}", o.score)),
        published: opt_time(r.item.published_at),
        first_seen: time(r.first_seen_at),
    }
}

#[derive(Debug, Template)]
#[template(path = "ideas.html")]
struct IdeasPage {
    chrome: Chrome,
    orders: Vec<&'static str>,
    order: String,
    source: String,
    since: String,
    rows: Vec<IdeaRow>,
    first: Option<String>,
    next: Option<String>,
}

fn invalid(e: prismq_domain::ValidationError) -> WebError {
    WebError::from(crate::error::ApiError::from(e))
}

/// `GET /ideas`.
pub async fn list(
    State(state): State<ServerState>,
    viewer: Viewer,
    q: Result<Query<IdeasQuery>, QueryRejection>,
) -> WebResult {
    let Query(q) = q.map_err(|e| WebError::new(StatusCode::UNPROCESSABLE_ENTITY, e.body_text()))?;
    let order = match q.order.as_str() {
        "" | "views" => ResultOrder::Views,
        "recent" => ResultOrder::Recent,
        "growth" => ResultOrder::Growth,
        "outlier" => ResultOrder::Outlier,
        other => {
            return Err(WebError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "order {:?} is not known; accepted: views, recent, growth, outlier",
                    line(other, 40)
                ),
            ))
        }
    };
    let since = match q.since.trim() {
        "" => None,
        s => Some(input::since("since", s, state.app.clock.now()).map_err(invalid)?),
    };
    let after = match q.after.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(crate::api::results::decode_cursor(text).ok_or_else(|| {
            WebError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "this page link is not one the dashboard made; start again from the first page"
                    .to_owned(),
            )
        })?),
    };
    let query = ResultQuery {
        source: Some(q.source.trim().to_owned()).filter(|s| !s.is_empty()),
        since,
        order,
        after,
        limit: PAGE,
        ..ResultQuery::default()
    };
    query.validate().map_err(invalid)?;
    let found = state.app.results.query(&query).await?;
    let link = |after: Option<String>| {
        let mut s = url_pairs(&[
            ("order", &q.order),
            ("source", &q.source),
            ("since", &q.since),
        ]);
        if let Some(a) = after {
            s.push_str(&format!("after={a}"));
        }
        s
    };
    Ok(render(&IdeasPage {
        chrome: viewer.chrome("Ideas", "ideas"),
        orders: ORDERS.to_vec(),
        order: if q.order.is_empty() {
            "views".into()
        } else {
            q.order.clone()
        },
        source: line(&q.source, TITLE_MAX),
        since: line(&q.since, TITLE_MAX),
        first: query.after.is_some().then(|| link(None)),
        next: match found.last() {
            Some(last) if found.len() == PAGE as usize => Some(link(Some(
                crate::api::results::encode_cursor(&query.cursor_after(last)),
            ))),
            _ => None,
        },
        rows: found.iter().map(row).collect(),
    }))
}

/// One history row.
#[derive(Debug)]
pub struct HistoryRow {
    /// Captured.
    pub at: String,
    /// Views.
    pub views: String,
    /// Likes.
    pub likes: String,
    /// Comments.
    pub comments: String,
}

/// One time a source found it.
#[derive(Debug)]
pub struct Sighting {
    /// The kind of source.
    pub source: String,
    /// When.
    pub at: String,
    /// Its rank there.
    pub rank: Option<u32>,
    /// The task that found it.
    pub task: Option<i64>,
}

/// How many sightings a video's page lists, newest first.
const SIGHTINGS_SHOWN: u32 = 50;

#[derive(Debug, Template)]
#[template(path = "video.html")]
struct VideoPage {
    chrome: Chrome,
    chart: String,
    facts: Vec<(&'static str, String)>,
    url: Option<String>,
    link: bool,
    description: String,
    tags: String,
    history: Vec<HistoryRow>,
    seen: Vec<Sighting>,
}

async fn load(
    state: &ServerState,
    source: &str,
    id: &str,
) -> Result<(StoredResult, Vec<MetricSnapshot>), WebError> {
    let r = state.app.results.get(source, id).await?;
    let h = state.app.results.history(source, id).await?;
    Ok((r, h))
}

/// `GET /ideas/{platform}/{id}`.
pub async fn show(
    State(state): State<ServerState>,
    viewer: Viewer,
    Path((source, id)): Path<(String, String)>,
) -> WebResult {
    let (r, history) = load(&state, &source, &id).await?;
    let seen = state
        .app
        .results
        .sightings(&source, &id, SIGHTINGS_SHOWN)
        .await?;
    let item = &r.item;
    let facts = vec![
        (
            "Channel",
            line(item.channel.as_deref().unwrap_or("-"), TITLE_MAX),
        ),
        ("Platform", line(&item.platform, TITLE_MAX)),
        ("Last found by", line(&item.source, TITLE_MAX)),
        ("Video id", line(&item.source_id, TITLE_MAX)),
        ("Published", opt_time(item.published_at)),
        (
            "Duration",
            item.duration_secs
                .map_or_else(|| "-".to_owned(), |d| format!("{d} s")),
        ),
        (
            "Format",
            r.format.map_or_else(|| "-".to_owned(), |f| f.to_string()),
        ),
        ("Views", opt_count(item.metrics.views)),
        ("Likes", opt_count(item.metrics.likes)),
        ("Comments", opt_count(item.metrics.comments)),
        (
            "Views per hour, last hour",
            growth_cell(&r, GrowthWindow::Hour),
        ),
        (
            "Views per hour, last 24 h",
            growth_cell(&r, GrowthWindow::Day),
        ),
        (
            "Views per hour, last 7 days",
            growth_cell(&r, GrowthWindow::Week),
        ),
        (
            "Views per hour, last 30 days",
            growth_cell(&r, GrowthWindow::Month),
        ),
        (
            "Outlier score",
            r.outlier.as_ref().map_or_else(
                || "-".to_owned(),
                |o| {
                    format!(
                        "{:.2} (channel median {:.0} over {} uploads)",
                        o.score, o.baseline, o.sample
                    )
                },
            ),
        ),
        ("First seen", time(r.first_seen_at)),
        ("Last seen", time(r.last_seen_at)),
    ];
    let url = item.url.as_deref().map(|u| line(u, LINE_MAX));
    let link = url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://") && !u.contains(char::is_whitespace));
    Ok(render(&VideoPage {
        chrome: viewer.chrome(line(&item.title, TITLE_MAX), "ideas"),
        chart: format!("{}/chart.svg", href(&r)),
        facts,
        url,
        link,
        description: item
            .description
            .as_deref()
            .map(|d| block(d, DESCRIPTION_MAX))
            .unwrap_or_default(),
        tags: line(&item.tags.join(", "), LINE_MAX),
        history: history
            .iter()
            .rev()
            .map(|s| HistoryRow {
                at: time(s.captured_at),
                views: opt_count(s.metrics.views),
                likes: opt_count(s.metrics.likes),
                comments: opt_count(s.metrics.comments),
            })
            .collect(),
        seen: seen
            .iter()
            .map(|s| Sighting {
                source: line(&s.source, TITLE_MAX),
                at: time(s.seen_at),
                rank: s.rank,
                task: s.task_id.map(|t| t.0),
            })
            .collect(),
    }))
}

/// `GET /ideas/{platform}/{id}/chart.svg`: the views chart (no script can run in it: it is
/// shown as an image, and served with a policy that allows nothing).
pub async fn chart(
    State(state): State<ServerState>,
    _viewer: Viewer,
    Path((source, id)): Path<(String, String)>,
) -> WebResult {
    let (r, history) = load(&state, &source, &id).await?;
    let svg = chart::views_svg(&r.item.title, &history).map_err(|e| {
        WebError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the chart could not be drawn: {e}"),
        )
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'"),
        ],
        svg,
    )
        .into_response())
}
