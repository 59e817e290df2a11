//! Tasks: the list (filters by status, type and text; keyset paging by id, newest first)
//! and a task's page (parameters, attempts, lease, error, its whole log) with cancel and
//! retry, as `prismq tasks` does.

use askama::Template;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Form;
use serde::Deserialize;

use prismq_domain::ports::{Scope, TaskFilter};
use prismq_domain::{Task, TaskId, TaskStatus, TaskType};

use super::page::{
    block, line, opt_time, render, see_other, time, Chrome, Viewer, WebError, WebResult, BLOCK_MAX,
    LINE_MAX, TITLE_MAX,
};
use super::signin::TokenForm;
use crate::ServerState;

/// Tasks per page.
pub const PAGE: u32 = 50;
/// With a text filter, the most tasks one page looks through (the store has no text index).
pub const TEXT_SCAN: usize = 1_000;

/// The list's filters.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// A status name, or empty for all.
    #[serde(default)]
    pub status: String,
    /// A task type, or empty for all.
    #[serde(default, rename = "type")]
    pub task_type: String,
    /// Text to find in the parameters, error or idempotency key.
    #[serde(default)]
    pub q: String,
    /// Only tasks with a smaller id.
    pub before: Option<i64>,
}

/// One task in a list.
#[derive(Debug)]
pub struct Row {
    /// Id.
    pub id: i64,
    /// Type.
    pub task_type: String,
    /// Status.
    pub status: &'static str,
    /// `attempts/max_attempts`.
    pub attempts: String,
    /// Priority.
    pub priority: String,
    /// Created.
    pub created: String,
    /// Parameters, one bounded line.
    pub params: String,
    /// The last error, one bounded line.
    pub error: String,
}

impl Row {
    /// The row of `t`.
    pub fn of(t: &Task) -> Row {
        Row {
            id: t.id.0,
            task_type: line(t.task_type.as_str(), TITLE_MAX),
            status: t.status.as_str(),
            attempts: format!("{}/{}", t.attempts, t.max_attempts),
            priority: t.priority.to_string(),
            created: time(t.created_at),
            params: line(&t.params.to_string(), TITLE_MAX),
            error: t
                .last_error
                .as_deref()
                .map(|e| line(e, TITLE_MAX))
                .unwrap_or_default(),
        }
    }
}

#[derive(Debug, Template)]
#[template(path = "tasks.html")]
struct ListPage {
    chrome: Chrome,
    statuses: Vec<&'static str>,
    types: Vec<String>,
    status: String,
    task_type: String,
    q: String,
    rows: Vec<Row>,
    next: Option<String>,
    note: Option<String>,
}

fn matches(t: &Task, needle: &str) -> bool {
    let hay = |s: &str| s.to_lowercase().contains(needle);
    hay(&t.params.to_string())
        || t.last_error.as_deref().is_some_and(hay)
        || t.idempotency_key.as_deref().is_some_and(hay)
        || hay(t.task_type.as_str())
}

/// A finished status with at most this many tasks is read through the store's
/// finished-time index (those few sorted by id) instead of walking ids down from the newest.
pub const INDEXED_FINISHED_MAX: u64 = 5_000;

/// Picks how a status-filtered page is read, from the per-(type, status) counts the store
/// keeps (`stats`, one small read): not at all when no task matches (a walk of ids would
/// read the whole table to find nothing); for a finished status with few tasks, through the
/// finished-time index, by a `finished_before` bound every finished task meets, so the store
/// sorts those few instead of walking every id from the newest to reach them. False when no
/// task can match.
pub async fn narrow(state: &ServerState, filter: &mut TaskFilter) -> Result<bool, WebError> {
    let Some(status) = filter.status else {
        return Ok(true);
    };
    let stats = state.app.queue.stats().await?;
    let n: u64 = stats
        .counts
        .iter()
        .filter(|c| c.status == status)
        .filter(|c| filter.task_type.as_ref().is_none_or(|t| *t == c.task_type))
        .map(|c| c.count)
        .sum();
    if n == 0 {
        return Ok(false);
    }
    if status.is_final() && n <= INDEXED_FINISHED_MAX && filter.finished_before.is_none() {
        filter.finished_before = Some(jiff::Timestamp::MAX);
    }
    Ok(true)
}

/// Reads one page: `PAGE` tasks after `before`, or with a text filter the matches among the
/// next [`TEXT_SCAN`] tasks. The id to continue before, if there may be more.
pub async fn page_of(
    state: &ServerState,
    mut filter: TaskFilter,
    text: &str,
) -> Result<(Vec<Task>, Option<i64>), WebError> {
    if !narrow(state, &mut filter).await? {
        return Ok((Vec::new(), None));
    }
    let needle = text.trim().to_lowercase();
    if needle.is_empty() {
        filter.limit = PAGE;
        let tasks = state.app.queue.list(&filter).await?;
        let next = (tasks.len() == PAGE as usize)
            .then(|| tasks.last().map(|t| t.id.0))
            .flatten();
        return Ok((tasks, next));
    }
    filter.limit = 200;
    let mut found = Vec::new();
    let mut scanned = 0;
    loop {
        let batch = state.app.queue.list(&filter).await?;
        let Some(last) = batch.last().map(|t| t.id) else {
            return Ok((found, None));
        };
        for t in batch {
            scanned += 1;
            let id = t.id.0;
            if matches(&t, &needle) {
                found.push(t);
                if found.len() == PAGE as usize {
                    return Ok((found, Some(id)));
                }
            }
        }
        if scanned >= TEXT_SCAN {
            return Ok((found, Some(last.0)));
        }
        filter.before_id = Some(last);
    }
}

fn parse_filter(q: &ListQuery) -> Result<TaskFilter, WebError> {
    let status = match q.status.trim() {
        "" => None,
        s => Some(
            s.parse::<TaskStatus>()
                .map_err(|e| WebError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?,
        ),
    };
    let task_type = match q.task_type.trim() {
        "" => None,
        t => Some(
            TaskType::new(t)
                .map_err(|e| WebError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?,
        ),
    };
    let before_id = match q.before {
        Some(b) if b > 0 => Some(TaskId(b)),
        Some(_) => {
            return Err(WebError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "before must be a task id (a positive whole number)",
            ))
        }
        None => None,
    };
    Ok(TaskFilter {
        status,
        task_type,
        before_id,
        ..TaskFilter::default()
    })
}

/// The query string of the next page.
fn next_link(q: &ListQuery, before: i64) -> String {
    let mut s = url_pairs(&[("status", &q.status), ("type", &q.task_type), ("q", &q.q)]);
    s.push_str(&format!("before={before}"));
    s
}

/// `k=v&` pairs, percent-encoded, empty values left out.
pub fn url_pairs(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        if !v.is_empty() {
            out.push_str(k);
            out.push('=');
            out.push_str(&encode(v));
            out.push('&');
        }
    }
    out
}

/// Percent-encodes everything but unreserved characters.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET /tasks`.
pub async fn list(
    State(state): State<ServerState>,
    viewer: Viewer,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> WebResult {
    let Query(q) = q.map_err(|e| WebError::new(StatusCode::UNPROCESSABLE_ENTITY, e.body_text()))?;
    let filter = parse_filter(&q)?;
    let (tasks, next) = page_of(&state, filter, &q.q).await?;
    let mut types: Vec<String> = state
        .app
        .registry
        .task_types()
        .into_iter()
        .map(|t| t.as_str().to_owned())
        .collect();
    types.sort();
    let note = (!q.q.trim().is_empty()).then(|| {
        format!("Text filters look through up to {TEXT_SCAN} tasks per page; \"Older\" goes on from where this page stopped.")
    });
    Ok(render(&ListPage {
        chrome: viewer.chrome("Tasks", "tasks"),
        statuses: TaskStatus::ALL.iter().map(|s| s.as_str()).collect(),
        types,
        status: line(&q.status, TITLE_MAX),
        task_type: line(&q.task_type, TITLE_MAX),
        q: line(&q.q, TITLE_MAX),
        rows: tasks.iter().map(Row::of).collect(),
        next: next.map(|b| next_link(&q, b)),
        note,
    }))
}

/// One log line.
#[derive(Debug)]
pub struct LogLine {
    /// When.
    pub at: String,
    /// Level.
    pub level: &'static str,
    /// Event.
    pub event: String,
    /// Message.
    pub message: String,
    /// Details (JSON), empty when none.
    pub details: String,
}

#[derive(Debug, Template)]
#[template(path = "task.html")]
struct TaskPage {
    chrome: Chrome,
    id: i64,
    status: &'static str,
    facts: Vec<(&'static str, String)>,
    params: String,
    error: Option<String>,
    log: Vec<LogLine>,
    can_cancel: bool,
    can_retry: bool,
}

/// `GET /tasks/{id}`.
pub async fn show(
    State(state): State<ServerState>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> WebResult {
    let t = state.app.queue.get(TaskId(id)).await?;
    let log = state.app.logs.list(t.id).await?;
    let facts = vec![
        ("Type", line(t.task_type.as_str(), TITLE_MAX)),
        ("Status", t.status.as_str().to_owned()),
        ("Attempts", format!("{} of {}", t.attempts, t.max_attempts)),
        ("Lease lapses", t.lapses.to_string()),
        ("Priority", t.priority.to_string()),
        ("Runs after", time(t.run_after)),
        (
            "Claimed by",
            t.claimed_by
                .as_ref()
                .map_or_else(|| "-".to_owned(), |w| line(&w.to_string(), TITLE_MAX)),
        ),
        ("Lease expires", opt_time(t.lease_expires_at)),
        (
            "Idempotency key",
            t.idempotency_key
                .as_deref()
                .map_or_else(|| "-".to_owned(), |k| line(k, TITLE_MAX)),
        ),
        ("Created", time(t.created_at)),
        ("Updated", time(t.updated_at)),
        ("Finished", opt_time(t.finished_at)),
        (
            "Summary",
            t.summary
                .as_ref()
                .map_or_else(|| "-".to_owned(), |s| line(&s.to_string(), LINE_MAX)),
        ),
    ];
    let params = serde_json::to_string_pretty(&t.params).unwrap_or_default();
    let active = matches!(
        t.status,
        TaskStatus::Queued | TaskStatus::Claimed | TaskStatus::Running
    );
    let can_admin = viewer.session.allows(Scope::Admin);
    Ok(render(&TaskPage {
        chrome: viewer.chrome(format!("Task {id}"), "tasks"),
        id,
        status: t.status.as_str(),
        facts,
        params: block(&params, BLOCK_MAX),
        error: t.last_error.as_deref().map(|e| block(e, LINE_MAX)),
        log: log
            .iter()
            .map(|r| LogLine {
                at: time(r.at),
                level: r.level.as_str(),
                event: r.event.to_string(),
                message: line(&r.message, LINE_MAX),
                details: if r.details.is_null()
                    || r.details.as_object().is_some_and(|o| o.is_empty())
                {
                    String::new()
                } else {
                    line(&r.details.to_string(), LINE_MAX)
                },
            })
            .collect(),
        can_cancel: can_admin && active,
        can_retry: can_admin && t.status == TaskStatus::Failed,
    }))
}

fn token(form: Result<Form<TokenForm>, FormRejection>) -> String {
    form.map(|Form(f)| f.csrf).unwrap_or_default()
}

/// `POST /tasks/{id}/cancel`.
pub async fn cancel(
    State(state): State<ServerState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    form: Result<Form<TokenForm>, FormRejection>,
) -> WebResult {
    viewer.check_csrf(&token(form))?;
    viewer.require(Scope::Admin)?;
    state.app.queue.cancel(TaskId(id)).await?;
    Ok(see_other(&format!("/tasks/{id}")))
}

/// `POST /tasks/{id}/retry`.
pub async fn retry(
    State(state): State<ServerState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    form: Result<Form<TokenForm>, FormRejection>,
) -> WebResult {
    viewer.check_csrf(&token(form))?;
    viewer.require(Scope::Admin)?;
    state.app.queue.retry(TaskId(id)).await?;
    Ok(see_other(&format!("/tasks/{id}")))
}
