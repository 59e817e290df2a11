//! Dead letters: the failed tasks, newest first with keyset paging; retry one (the task's
//! own retry) or all; purge those older than an age, after a confirmation page. As
//! `prismq dlq` does.

use askama::Template;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Form;
use serde::Deserialize;

use prismq_domain::ports::{Scope, TaskFilter};
use prismq_domain::{TaskId, TaskStatus, Timestamp};

use super::page::{render, see_other, time, Chrome, Viewer, WebError, WebResult};
use super::tasks::{page_of, Row};
use crate::api::input;
use crate::ServerState;

/// The ages the purge form offers.
pub const PURGE_AGES: [&str; 4] = ["1h", "1d", "7d", "30d"];

/// The list's paging.
#[derive(Debug, Default, Deserialize)]
pub struct DlqQuery {
    /// Only tasks with a smaller id.
    pub before: Option<i64>,
    /// How many were retried or purged just now (shown once).
    pub done: Option<String>,
}

#[derive(Debug, Template)]
#[template(path = "dlq.html")]
struct DlqPage {
    chrome: Chrome,
    rows: Vec<Row>,
    next: Option<i64>,
    ages: Vec<&'static str>,
    done: Option<String>,
}

/// `GET /dead-letters`.
pub async fn list(
    State(state): State<ServerState>,
    viewer: Viewer,
    q: Result<Query<DlqQuery>, QueryRejection>,
) -> WebResult {
    let Query(q) = q.map_err(|e| WebError::new(StatusCode::UNPROCESSABLE_ENTITY, e.body_text()))?;
    let filter = TaskFilter {
        status: Some(TaskStatus::Failed),
        before_id: q.before.filter(|b| *b > 0).map(TaskId),
        ..TaskFilter::default()
    };
    let (tasks, next) = page_of(&state, filter, "").await?;
    let done = q.done.as_deref().and_then(|d| match d {
        "retried" => Some("Sent back to the queue.".to_owned()),
        "purged" => Some("Purged.".to_owned()),
        _ => None,
    });
    Ok(render(&DlqPage {
        chrome: viewer.chrome("Dead letters", "dlq"),
        rows: tasks.iter().map(Row::of).collect(),
        next,
        ages: PURGE_AGES.to_vec(),
        done,
    }))
}

/// A form with only its token.
#[derive(Debug, Deserialize)]
pub struct RetryAllForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /dead-letters/retry`: every failed task back to the queue.
pub async fn retry_all(
    State(state): State<ServerState>,
    viewer: Viewer,
    form: Result<Form<RetryAllForm>, FormRejection>,
) -> WebResult {
    let f = form.map(|Form(f)| f.csrf).unwrap_or_default();
    viewer.check_csrf(&f)?;
    viewer.require(Scope::Admin)?;
    let mut filter = TaskFilter {
        status: Some(TaskStatus::Failed),
        limit: 1000,
        ..TaskFilter::default()
    };
    loop {
        let page = state.app.queue.list(&filter).await?;
        let Some(last) = page.last().map(|t| t.id) else {
            break;
        };
        for t in &page {
            state.app.queue.retry(t.id).await?;
        }
        filter.before_id = Some(last);
    }
    Ok(see_other("/dead-letters?done=retried"))
}

/// The purge form.
#[derive(Debug, Deserialize)]
pub struct PurgeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    older_than: String,
    /// `yes` on the confirmation page's form.
    #[serde(default)]
    confirm: String,
}

#[derive(Debug, Template)]
#[template(path = "dlq_confirm.html")]
struct ConfirmPage {
    chrome: Chrome,
    older_than: String,
    before: String,
}

/// `POST /dead-letters/purge`: without `confirm=yes`, a page that asks; with it, deletes
/// the failed tasks that failed before the cut-off, with their logs.
pub async fn purge(
    State(state): State<ServerState>,
    viewer: Viewer,
    form: Result<Form<PurgeForm>, FormRejection>,
) -> WebResult {
    let Ok(Form(f)) = form else {
        return Err(WebError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the purge form was incomplete",
        ));
    };
    viewer.check_csrf(&f.csrf)?;
    viewer.require(Scope::Admin)?;
    let age = input::duration("older_than", &f.older_than)
        .map_err(|e| WebError::from(crate::error::ApiError::from(e)))?;
    let span = jiff::SignedDuration::try_from(age).unwrap_or(jiff::SignedDuration::MAX);
    let before = state
        .app
        .clock
        .now()
        .checked_sub(span)
        .unwrap_or(Timestamp::MIN);
    if f.confirm != "yes" {
        return Ok(render(&ConfirmPage {
            chrome: viewer.chrome("Purge dead letters?", "dlq"),
            older_than: f.older_than.trim().to_owned(),
            before: time(before),
        }));
    }
    loop {
        let n = state
            .app
            .queue
            .purge(TaskStatus::Failed, before, 1000)
            .await?;
        if n == 0 {
            break;
        }
    }
    Ok(see_other("/dead-letters?done=purged"))
}
