//! Schedules: each with its task, cadence, zone, next and last slot; pause, resume, run now
//! and add, as `prismq schedule`. Adding takes what `prismq schedule add` takes (a name,
//! `every` or `cron`, a zone, a jitter, the task with its priority) and goes through
//! `App::add_schedule`, so the checks and their messages are the CLI's; a refusal shows next
//! to its field with every value kept, and nothing is written.

use askama::Template;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Form;

use prismq_domain::ports::Scope;
use prismq_domain::schedule::{parse_jitter, Cadence, NewSchedule};
use prismq_domain::{PortError, ValidationError};

use super::enqueue::{value, TaskForm, TypeQuery};
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

/// One of the schedule's own fields (name, every, cron, tz, jitter).
#[derive(Debug, Clone)]
pub struct SchedField {
    /// Its id and form name, as the CLI's option is called (`every`).
    pub id: &'static str,
    /// Its label.
    pub label: &'static str,
    /// Help text.
    pub help: &'static str,
    /// An example.
    pub placeholder: &'static str,
    /// Must be given.
    pub required: bool,
    /// As typed.
    pub value: String,
    /// Its refusal.
    pub error: Option<String>,
}

fn sched_fields() -> Vec<SchedField> {
    let f = |id, label, help, placeholder, required| SchedField {
        id,
        label,
        help,
        placeholder,
        required,
        value: String::new(),
        error: None,
    };
    vec![
        f("name", "Name", "unique; letters, digits, '-', '_', '.'; up to 64 characters", "veritasium-6h", true),
        f("every", "Every", "fire every this long, counted from 1970-01-01T00:00Z (1m to 366d: 30m, 6h, 1d); or give Cron instead", "6h", false),
        f("cron", "Cron", "or fire at the times a 5-field cron expression names, read in the time zone", "0 */6 * * *", false),
        f("tz", "Time zone", "the IANA zone a cron expression is read in", "UTC", false),
        f("jitter", "Jitter", "each slot's task becomes runnable up to this much after the slot (0s to 1h)", "5m", false),
    ]
}

#[derive(Debug, Template)]
#[template(path = "schedule_add.html")]
struct AddPage {
    chrome: Chrome,
    sched: Vec<SchedField>,
    task: TaskForm,
}

impl AddPage {
    fn get(&self, id: &str) -> &str {
        self.sched
            .iter()
            .find(|f| f.id == id)
            .map_or("", |f| f.value.trim())
    }

    /// Puts a refusal next to its field, or above the form.
    fn place(&mut self, v: &ValidationError) {
        let message = line(&v.to_string(), LINE_MAX);
        if let Some(f) = self.sched.iter_mut().find(|f| f.id == v.field) {
            f.error = Some(message);
        } else if !self.task.place(v) {
            self.task.form_error = Some(message);
        }
    }

    /// The schedule the form describes, checked as far as the form can be (the task and the
    /// rest are checked by `App::add_schedule`).
    fn schedule(&self) -> Result<NewSchedule, ValidationError> {
        let cadence = Cadence::one_of(Some(self.get("every")), Some(self.get("cron")))?;
        let task = self.task.task()?;
        let mut new = NewSchedule::new(self.get("name"), task.task_type, task.params, cadence);
        new.priority = task.priority;
        if !self.get("tz").is_empty() {
            new.time_zone = self.get("tz").to_owned();
        }
        if !self.get("jitter").is_empty() {
            new.jitter = parse_jitter(self.get("jitter"))?;
        }
        Ok(new)
    }
}

/// `GET /schedules/add[?type=T]`.
pub async fn add_form(
    State(state): State<ServerState>,
    viewer: Viewer,
    q: Result<Query<TypeQuery>, QueryRejection>,
) -> WebResult {
    viewer.require(Scope::Admin)?;
    let Query(q) = q.map_err(|e| WebError::new(StatusCode::UNPROCESSABLE_ENTITY, e.body_text()))?;
    let task = TaskForm::empty(&state, &q.task_type);
    let status = if task.known {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let mut r = render(&AddPage {
        chrome: viewer.chrome("Add a schedule", "schedules"),
        sched: sched_fields(),
        task,
    });
    *r.status_mut() = status;
    Ok(r)
}

/// `POST /schedules/add`: adds it and shows the schedules, or the form again with the
/// refusal next to its field (422, nothing written).
pub async fn add(
    State(state): State<ServerState>,
    viewer: Viewer,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> WebResult {
    let pairs = form.map(|Form(p)| p).unwrap_or_default();
    viewer.check_csrf(value(&pairs, "csrf"))?;
    viewer.require(Scope::Admin)?;
    let mut page = AddPage {
        chrome: viewer.chrome("Add a schedule", "schedules"),
        sched: sched_fields()
            .into_iter()
            .map(|mut f| {
                f.value = line(value(&pairs, f.id), LINE_MAX);
                f
            })
            .collect(),
        task: TaskForm::submitted(&state, &pairs),
    };
    if page.task.known {
        match page.schedule() {
            Ok(new) => match state.app.add_schedule(new).await {
                Ok(_) => return Ok(see_other("/schedules")),
                Err(PortError::Invalid(v)) => page.place(&v),
                Err(e @ PortError::Duplicate(_)) => {
                    // The store's own message (as the CLI prints it), next to the name.
                    if let Some(f) = page.sched.iter_mut().find(|f| f.id == "name") {
                        f.error = Some(line(&e.to_string(), LINE_MAX));
                    }
                }
                Err(e) => return Err(WebError::from(e)),
            },
            Err(v) => page.place(&v),
        }
    }
    let mut r = render(&page);
    *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    Ok(r)
}
