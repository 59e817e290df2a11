//! The overview (`/`): tasks by type and status, throughput in the last minute and hour,
//! the failure rate, the oldest eligible task, workers by health and each quota bucket's
//! use, limit, room left and reset — computed by `prismq_app::overview`, as `prismq stats`
//! computes it. `/events/overview` streams the same numbers as server-sent events while the
//! page is open; `live.js` swaps them in. Without JavaScript the page is complete as served.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};

use prismq_app::overview::{health_name, Overview};
use prismq_app::App;
use prismq_domain::TaskStatus;

use super::page::{count, line, render, time, Chrome, Viewer, WebResult, TITLE_MAX};
use crate::ServerState;

/// How often the live stream reads the overview.
pub const LIVE_EVERY: Duration = Duration::from_secs(2);

/// One number the page shows, with the key the live stream updates it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    /// `data-live` key.
    pub key: String,
    /// The text shown.
    pub value: String,
}

fn live(key: impl Into<String>, value: impl Into<String>) -> Live {
    Live {
        key: key.into(),
        value: value.into(),
    }
}

/// One row of the counts table.
#[derive(Debug)]
pub struct CountRow {
    /// The task type (or "(all)").
    pub task_type: String,
    /// One cell per status, in [`TaskStatus::ALL`] order.
    pub cells: Vec<Live>,
}

/// A quota bucket's row.
#[derive(Debug)]
pub struct QuotaRow {
    /// The bucket.
    pub bucket: String,
    /// Used, limit, left, reset, exhausted until.
    pub cells: Vec<Live>,
}

/// Everything the page and the stream show.
#[derive(Debug)]
pub struct Figures {
    /// The counts table.
    pub rows: Vec<CountRow>,
    /// Throughput, failure rate, dead letters, oldest eligible task, results.
    pub facts: Vec<(&'static str, Live)>,
    /// Workers by health.
    pub workers: Vec<(&'static str, Live)>,
    /// Quota buckets.
    pub quota: Vec<QuotaRow>,
}

fn oldest(o: &Overview) -> String {
    match (o.stats.oldest_eligible, o.oldest_wait_secs()) {
        (Some(at), Some(w)) => format!("{} (waiting {w} s)", time(at)),
        _ => "none".to_owned(),
    }
}

/// The figures of `o`.
pub fn figures(app: &App, o: &Overview) -> Figures {
    let mut rows: Vec<CountRow> = o
        .task_types()
        .into_iter()
        .map(|ty| CountRow {
            cells: TaskStatus::ALL
                .iter()
                .map(|s| {
                    live(
                        format!("count.{ty}.{s}"),
                        count(i64::try_from(o.count(Some(&ty), *s)).unwrap_or(i64::MAX)),
                    )
                })
                .collect(),
            task_type: line(&ty, TITLE_MAX),
        })
        .collect();
    rows.push(CountRow {
        task_type: "(all)".into(),
        cells: TaskStatus::ALL
            .iter()
            .map(|s| {
                live(
                    format!("count.all.{s}"),
                    count(i64::try_from(o.count(None, *s)).unwrap_or(i64::MAX)),
                )
            })
            .collect(),
    });
    let r = o.stats.recent;
    let n = |v: u64| count(i64::try_from(v).unwrap_or(i64::MAX));
    let facts = vec![
        (
            "Completed in the last minute",
            live("recent.minute", n(r.completed_last_minute)),
        ),
        (
            "Completed in the last hour",
            live("recent.hour", n(r.completed_last_hour)),
        ),
        (
            "Failure rate (last hour)",
            live(
                "recent.failure_rate",
                format!(
                    "{:.1}% ({} dead-lettered)",
                    r.failure_rate() * 100.0,
                    r.failed_last_hour
                ),
            ),
        ),
        (
            "Dead letters",
            live("dead_letters", n(o.count(None, TaskStatus::Failed))),
        ),
        ("Oldest eligible task", live("oldest", oldest(o))),
        ("Stored results", live("results", n(o.results))),
    ];
    let workers = o
        .workers_by_health()
        .into_iter()
        .map(|(h, k)| {
            (
                health_name(h),
                live(format!("workers.{}", health_name(h)), k.to_string()),
            )
        })
        .collect();
    let quota = app
        .quota_lines(o)
        .into_iter()
        .map(|q| {
            let b = line(&q.bucket, TITLE_MAX);
            let opt = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), n);
            QuotaRow {
                cells: vec![
                    live(format!("quota.{b}.used"), n(q.used)),
                    live(format!("quota.{b}.limit"), opt(q.limit)),
                    live(format!("quota.{b}.left"), opt(q.left)),
                    live(format!("quota.{b}.reset"), time(q.reset)),
                    live(
                        format!("quota.{b}.exhausted"),
                        q.exhausted_until.map_or_else(|| "-".to_owned(), time),
                    ),
                ],
                bucket: b,
            }
        })
        .collect();
    Figures {
        rows,
        facts,
        workers,
        quota,
    }
}

impl Figures {
    /// Every live number as one JSON object (key to text).
    pub fn to_json(&self) -> String {
        let mut m = serde_json::Map::new();
        let mut put = |l: &Live| {
            m.insert(l.key.clone(), l.value.clone().into());
        };
        self.rows.iter().flat_map(|r| &r.cells).for_each(&mut put);
        self.facts.iter().map(|(_, l)| l).for_each(&mut put);
        self.workers.iter().map(|(_, l)| l).for_each(&mut put);
        self.quota.iter().flat_map(|r| &r.cells).for_each(&mut put);
        serde_json::Value::Object(m).to_string()
    }
}

#[derive(Debug, Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Chrome,
    statuses: Vec<&'static str>,
    f: Figures,
    at: String,
}

/// `GET /`.
pub async fn page(State(state): State<ServerState>, viewer: Viewer) -> WebResult {
    let o = state.app.overview().await?;
    Ok(render(&OverviewPage {
        chrome: viewer.chrome("Overview", "overview"),
        statuses: TaskStatus::ALL.iter().map(|s| s.as_str()).collect(),
        f: figures(&state.app, &o),
        at: time(o.at),
    }))
}

/// `GET /events/overview`: the overview's numbers every [`LIVE_EVERY`] while they change,
/// for as long as the session lives.
pub async fn events(
    State(state): State<ServerState>,
    viewer: Viewer,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = stream::unfold(
        (state, viewer, String::new(), true),
        |(state, viewer, last, first)| async move {
            if !first {
                tokio::time::sleep(LIVE_EVERY).await;
            }
            // The stream ends with the session (it does not keep it alive).
            let session = viewer
                .web
                .sessions
                .get(&viewer.sid, Instant::now(), false)?;
            // And with its key: a key revoked while the page is open ends the stream (and
            // the session) within one beat, as the next request would.
            match super::page::active_key(&state, &session.key).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    viewer.web.sessions.close(&viewer.sid);
                    return None;
                }
                Err(e) => tracing::warn!(error = %e, "the live overview could not check its key"),
            }
            let json = match state.app.overview().await {
                Ok(o) => figures(&state.app, &o).to_json(),
                Err(e) => {
                    tracing::warn!(error = %e, "the live overview could not be read");
                    last.clone()
                }
            };
            let event = if json != last {
                Event::default().data(json.clone())
            } else {
                // Unchanged (or unreadable): nothing new to show.
                Event::default().comment("unchanged")
            };
            Some((Ok(event), (state, viewer, json, false)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}
