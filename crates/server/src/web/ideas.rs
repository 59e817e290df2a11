//! Ideas: the collected videos and a video's page. Every use of the result store port
//! (`query`, `get`, `find`, `history`) is in this file, so the coming one-record-per-video
//! rework changes one place. The list sorts by views, recent, growth (views per hour over a
//! chosen window) or outlier score and filters by source, channel, "seen since" and "new
//! since" (first seen), as `prismq results list` does; a refused filter is shown next to its
//! field. A video's page shows its metadata
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
use prismq_domain::ValidationError;

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
pub const ORDERS: [&str; 4] = ["growth", "views", "recent", "outlier"];

/// The list's filters, as `prismq results list` names them.
#[derive(Debug, Default, Deserialize)]
pub struct IdeasQuery {
    /// views, recent, growth or outlier.
    #[serde(default)]
    pub order: String,
    /// The growth window: 1h, 24h, 7d or 30d (what `growth` sorts by and the column shows).
    #[serde(default)]
    pub window: String,
    /// Only this source (`youtube_channel`, …).
    #[serde(default)]
    pub source: String,
    /// Only this channel id (`UC…`).
    #[serde(default)]
    pub channel: String,
    /// Seen since: a duration (`7d`) or an RFC 3339 instant.
    #[serde(default)]
    pub since: String,
    /// First seen since ("new since"): a duration or an RFC 3339 instant.
    #[serde(default)]
    pub new_since: String,
    /// Start after this video: the cursor the previous page's "Next" link carries.
    pub after: Option<String>,
}

/// The most characters of a source or channel filter.
pub const FILTER_MAX: usize = 100;

/// One video in the list.
#[derive(Debug)]
pub struct IdeaRow {
    /// `/ideas/{platform}/{id}`.
    pub href: String,
    /// Title.
    pub title: String,
    /// Channel.
    pub channel: String,
    /// `channel=…` of this video's channel, when it has an id.
    pub channel_filter: Option<String>,
    /// Source.
    pub source: String,
    /// Views.
    pub views: String,
    /// Views per hour over the chosen window.
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

fn row(r: &StoredResult, w: GrowthWindow) -> IdeaRow {
    IdeaRow {
        href: href(r),
        title: line(&r.item.title, TITLE_MAX),
        channel: line(r.item.channel.as_deref().unwrap_or("-"), TITLE_MAX),
        channel_filter: r
            .item
            .channel_id
            .as_deref()
            .filter(|c| !c.is_empty() && c.chars().count() <= FILTER_MAX)
            .map(|c| format!("channel={}", encode(c))),
        source: line(&r.item.source, TITLE_MAX),
        views: opt_count(r.item.metrics.views),
        growth: growth_cell(r, w),
        outlier: r
            .outlier
            .as_ref()
            .map_or_else(|| "-".to_owned(), |o| format!("{:.2}", o.score)),
        published: opt_time(r.item.published_at),
        first_seen: time(r.first_seen_at),
    }
}

/// A filter's value as typed (cleaned) and its refusal.
#[derive(Debug, Default)]
pub struct Filter {
    /// As typed.
    pub value: String,
    /// Why it was refused.
    pub error: Option<String>,
}

#[derive(Debug, Template)]
#[template(path = "ideas.html")]
struct IdeasPage {
    chrome: Chrome,
    orders: Vec<&'static str>,
    windows: Vec<&'static str>,
    order: Filter,
    window: Filter,
    source: Filter,
    channel: Filter,
    since: Filter,
    new_since: Filter,
    /// A filter was refused: nothing was looked up.
    refused: bool,
    window_label: &'static str,
    rows: Vec<IdeaRow>,
    first: Option<String>,
    next: Option<String>,
}

/// The growth windows offered, as the CLI's `--window` names them.
pub const WINDOWS: [&str; 4] = ["1h", "24h", "7d", "30d"];

fn filter<T>(
    value: &str,
    parse: impl FnOnce(&str) -> Result<T, ValidationError>,
) -> (Filter, Option<T>) {
    let mut f = Filter {
        value: line(value, TITLE_MAX),
        error: None,
    };
    match parse(value.trim()) {
        Ok(v) => (f, Some(v)),
        Err(e) => {
            f.error = Some(line(&e.to_string(), LINE_MAX));
            (f, None)
        }
    }
}

fn order_of(text: &str) -> Result<ResultOrder, ValidationError> {
    match text {
        "views" => Ok(ResultOrder::Views),
        "recent" => Ok(ResultOrder::Recent),
        // How fast they grow is what editors come for (and an index walk serves it).
        "" | "growth" => Ok(ResultOrder::Growth),
        "outlier" => Ok(ResultOrder::Outlier),
        other => Err(ValidationError::new(
            "order",
            format!("{:?} is not a sort order", line(other, 40)),
            "views, recent, growth, outlier",
        )),
    }
}

/// A source or channel filter: empty (any), or up to [`FILTER_MAX`] characters.
fn name_filter(field: &'static str, text: &str) -> Result<Option<String>, ValidationError> {
    let n = text.chars().count();
    if n > FILTER_MAX || text.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            format!("the text is {n} characters long or holds control characters"),
            format!("up to {FILTER_MAX} printable characters, or empty for any"),
        ));
    }
    Ok(Some(text.to_owned()).filter(|s| !s.is_empty()))
}

/// `GET /ideas`: a refused filter is shown next to its field (422) and nothing is looked up.
pub async fn list(
    State(state): State<ServerState>,
    viewer: Viewer,
    q: Result<Query<IdeasQuery>, QueryRejection>,
) -> WebResult {
    let Query(q) = q.map_err(|e| WebError::new(StatusCode::UNPROCESSABLE_ENTITY, e.body_text()))?;
    let now = state.app.clock.now();
    let (order, order_v) = filter(&q.order, order_of);
    let (window, window_v) = filter(&q.window, |w| {
        if w.is_empty() {
            Ok(GrowthWindow::Day)
        } else {
            w.parse::<GrowthWindow>()
        }
    });
    let (source, source_v) = filter(&q.source, |s| name_filter("source", s));
    let (channel, channel_v) = filter(&q.channel, |s| name_filter("channel", s));
    let when = |field: &'static str| {
        move |s: &str| match s {
            "" => Ok(None),
            s => input::since(field, s, now).map(Some),
        }
    };
    let (since, since_v) = filter(&q.since, when("since"));
    let (new_since, new_since_v) = filter(&q.new_since, when("new_since"));
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
    let w = window_v.unwrap_or(GrowthWindow::Day);
    let mut out = IdeasPage {
        chrome: viewer.chrome("Ideas", "ideas"),
        orders: ORDERS.to_vec(),
        windows: WINDOWS.to_vec(),
        refused: false,
        window_label: w.as_str(),
        rows: Vec::new(),
        first: None,
        next: None,
        order,
        window,
        source,
        channel,
        since,
        new_since,
    };
    let (Some(order), Some(window), Some(source), Some(channel_id), Some(since), Some(new_since)) =
        (order_v, window_v, source_v, channel_v, since_v, new_since_v)
    else {
        out.refused = true;
        let mut r = render(&out);
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(r);
    };
    let query = ResultQuery {
        source,
        channel_id,
        since,
        new_since,
        window,
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
            ("window", &q.window),
            ("source", &q.source),
            ("channel", &q.channel),
            ("since", &q.since),
            ("new_since", &q.new_since),
        ]);
        if let Some(a) = after {
            s.push_str(&format!("after={a}"));
        }
        s
    };
    if out.order.value.is_empty() {
        out.order.value = "growth".into();
    }
    if out.window.value.is_empty() {
        out.window.value = "24h".into();
    }
    out.first = query.after.is_some().then(|| link(None));
    out.next = match found.last() {
        Some(last) if found.len() == PAGE as usize => Some(link(Some(
            crate::api::results::encode_cursor(&query.cursor_after(last)),
        ))),
        _ => None,
    };
    out.rows = found.iter().map(|r| row(r, window)).collect();
    Ok(render(&out))
}

fn invalid(e: ValidationError) -> WebError {
    WebError::from(crate::error::ApiError::from(e))
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
