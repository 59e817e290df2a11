//! Schedules: each with its task, cadence, zone, next and last slot; pause, resume and
//! run now, as `prismq schedule`.

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Form;

use prismq_domain::ports::Scope;

use super::page::{
    line, opt_time, render, see_other, time, Chrome, Viewer, WebError, WebResult, LINE_MAX,
    TITLE_MAX,
};
use super::signin::TokenForm;
use super::tasks::encode;
use crate::ServerState;

/// One schedule's row.
#[derive(Debug)]
pub struct ScheduleRow {
    /// Name (as shown).
    pub name: String,
    /// Name, percent-encoded for the action URLs.
    pub path: String,
    /// Task type.
    pub task_type: String,
    /// Parameters.
    pub params: String,
    /// Cadence.
    pub cadence: String,
    /// Time zone.
    pub zone: String,
    /// Paused.
    pub paused: bool,
    /// Next slot.
    pub next: String,
    /// Last slot.
    pub last: String,
    /// The last task it enqueued.
    pub last_task: Option<i64>,
    /// Why this build cannot fire it.
    pub error: Option<String>,
}

#[derive(Debug, Template)]
#[template(path = "schedules.html")]
struct SchedulesPage {
    chrome: Chrome,
    rows: Vec<ScheduleRow>,
}

/// `GET /schedules`.
pub async fn list(State(state): State<ServerState>, viewer: Viewer) -> WebResult {
    let rows = state
        .app
        .schedule_views()
        .await?
        .into_iter()
        .map(|v| {
            let s = v.schedule;
            ScheduleRow {
                path: encode(&s.name),
                name: line(&s.name, TITLE_MAX),
                task_type: line(s.task_type.as_str(), TITLE_MAX),
                params: line(&s.params.to_string(), TITLE_MAX),
                cadence: line(&s.cadence.to_string(), TITLE_MAX),
                zone: line(&s.time_zone, TITLE_MAX),
                paused: s.paused,
                next: time(s.next_slot),
                last: opt_time(s.last_slot),
                last_task: s.last_task.map(|t| t.0),
                error: v.error.as_deref().map(|e| line(e, LINE_MAX)),
            }
        })
        .collect();
    Ok(render(&SchedulesPage {
        chrome: viewer.chrome("Schedules", "schedules"),
        rows,
    }))
}

/// `POST /schedules/{name}/{pause|resume|run}`.
pub async fn act(
    State(state): State<ServerState>,
    viewer: Viewer,
    Path((name, action)): Path<(String, String)>,
    form: Result<Form<TokenForm>, FormRejection>,
) -> WebResult {
    viewer.check_csrf(&form.map(|Form(f)| f.csrf).unwrap_or_default())?;
    viewer.require(Scope::Admin)?;
    match action.as_str() {
        "pause" => {
            state.app.schedules.set_schedule_paused(&name, true).await?;
        }
        "resume" => {
            state
                .app
                .schedules
                .set_schedule_paused(&name, false)
                .await?;
        }
        "run" => {
            let e = state.app.run_schedule_now(&name).await?;
            return Ok(see_other(&format!("/tasks/{}", e.id.0)));
        }
        _ => {
            return Err(WebError::new(
                StatusCode::NOT_FOUND,
                "no such schedule action; accepted: pause, resume, run",
            ))
        }
    }
    Ok(see_other("/schedules"))
}
