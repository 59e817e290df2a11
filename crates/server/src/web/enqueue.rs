//! The enqueue form, made from the task type's declared parameters (its JSON Schema's
//! source, `TaskHandler::params`): the type is chosen first (a plain GET form), then each
//! parameter gets a control of its kind (`params_form`). The task goes through
//! `App::enqueue`, which runs the handler's own check as the CLI and the API do, so a
//! refusal carries the same message, shown next to the field it names, with every value
//! kept. Nothing is written when it is refused. A type that declares no parameters takes a
//! JSON object instead.

use askama::Template;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use serde_json::{Map, Value};

use prismq_domain::param_spec::ParamSpec;
use prismq_domain::ports::Scope;
use prismq_domain::{NewTask, PortError, Priority, TaskType, ValidationError};

use super::page::{block, line, render, see_other, Chrome, Viewer, WebError, WebResult, LINE_MAX};
use super::params_form::{self, ParamField, VALUE_MAX};
use crate::ServerState;

/// The task part of a form (enqueue and schedules): the type, its parameters, a priority.
#[derive(Debug, Clone, Default)]
pub struct TaskForm {
    /// The registered types, sorted.
    pub types: Vec<String>,
    /// The chosen type (as given, cleaned).
    pub task_type: String,
    /// The chosen type has a handler here.
    pub known: bool,
    /// Its plugin declares its parameters (else a JSON object is typed).
    pub declared: bool,
    /// One control per declared parameter.
    pub fields: Vec<ParamField>,
    /// The JSON object typed for a type that declares nothing.
    pub json: String,
    /// The refusal of that object.
    pub json_error: Option<String>,
    /// The priority as typed.
    pub priority: String,
    /// The refusal of the priority.
    pub priority_error: Option<String>,
    /// The refusal of the type.
    pub type_error: Option<String>,
    /// A refusal that names no field of the form.
    pub form_error: Option<String>,
}

/// A pair list's value of `k` (empty when absent).
pub fn value<'a>(pairs: &'a [(String, String)], k: &str) -> &'a str {
    pairs
        .iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

impl TaskForm {
    /// The empty form of `task_type` (the first registered type when empty).
    pub fn empty(state: &ServerState, task_type: &str) -> TaskForm {
        let mut f = TaskForm::start(state, task_type);
        if let Some(specs) = f.specs(state) {
            f.fields = params_form::fields(&specs);
        }
        f
    }

    /// The form as submitted in `pairs` (`type`, `priority`, `p.NAME` or `params_json`).
    pub fn submitted(state: &ServerState, pairs: &[(String, String)]) -> TaskForm {
        let mut f = TaskForm::start(state, value(pairs, "type"));
        f.priority = line(value(pairs, "priority"), LINE_MAX);
        match f.specs(state) {
            Some(specs) => f.fields = params_form::filled(&specs, pairs),
            None => f.json = block(value(pairs, "params_json"), VALUE_MAX),
        }
        f
    }

    fn start(state: &ServerState, task_type: &str) -> TaskForm {
        let mut types: Vec<String> = state
            .app
            .registry
            .task_types()
            .into_iter()
            .map(|t| t.as_str().to_owned())
            .collect();
        types.sort();
        let chosen = match task_type.trim() {
            "" => types.first().cloned().unwrap_or_default(),
            t => line(t, 100),
        };
        let mut f = TaskForm {
            types,
            task_type: chosen,
            ..TaskForm::default()
        };
        let known = TaskType::new(f.task_type.as_str()).and_then(|t| {
            if state.app.registry.handler(&t).is_some() {
                return Ok(());
            }
            // The registry's own refusal, naming the accepted types.
            let empty = NewTask::new(t, Value::Object(Map::new()));
            state
                .app
                .registry
                .validate(&empty)
                .and(Err(ValidationError::new(
                    "type",
                    "no handler is registered for it",
                    "a registered task type",
                )))
        });
        match known {
            Ok(()) => f.known = true,
            Err(e) => f.type_error = Some(line(&e.to_string(), LINE_MAX)),
        }
        f
    }

    /// The chosen type's declared parameters (None: it declares none, or is unknown).
    fn specs(&mut self, state: &ServerState) -> Option<Vec<ParamSpec>> {
        if !self.known {
            return None;
        }
        let t = TaskType::new(self.task_type.as_str()).ok()?;
        let specs = state.app.registry.handler(&t)?.params();
        self.declared = specs.is_some();
        specs
    }

    /// The task the form describes (the handler's check comes after, in `App::enqueue` or
    /// `App::add_schedule`).
    ///
    /// # Errors
    /// The priority is not a whole number in range, or the JSON is not an object.
    pub fn task(&self) -> Result<NewTask, ValidationError> {
        let task_type = TaskType::new(self.task_type.trim())?;
        let params = if self.declared {
            params_form::params_of(&self.fields)
        } else {
            params_form::json_params(&self.json)?
        };
        let mut task = NewTask::new(task_type, Value::Object(params));
        let p = self.priority.trim();
        if !p.is_empty() {
            let n = p.parse::<i64>().map_err(|_| {
                ValidationError::new(
                    "priority",
                    format!("{:?} is not a whole number", line(p, 40)),
                    "a whole number (higher runs first)",
                )
            })?;
            task = task.priority(Priority::new(n)?);
        }
        Ok(task)
    }

    /// Puts a refusal next to the field it names; true when a field of the task part took
    /// it, false when the caller should place it (or show it above the form).
    pub fn place(&mut self, v: &ValidationError) -> bool {
        let message = line(&v.to_string(), LINE_MAX);
        match v.field.as_str() {
            "type" | "task_type" => self.type_error = Some(message),
            "priority" => self.priority_error = Some(message),
            "params" if !self.declared => self.json_error = Some(message),
            _ if params_form::place(&mut self.fields, v) => {}
            f if f.starts_with("params") => self.form_error = Some(message),
            _ => return false,
        }
        true
    }
}

#[derive(Debug, Template)]
#[template(path = "enqueue.html")]
struct EnqueuePage {
    chrome: Chrome,
    task: TaskForm,
}

/// `?type=` of `GET /enqueue`.
#[derive(Debug, Default, Deserialize)]
pub struct TypeQuery {
    /// The task type whose parameters to show.
    #[serde(default, rename = "type")]
    pub task_type: String,
}

/// `GET /enqueue[?type=T]`: the type's form (the first type's without one).
pub async fn form(
    State(state): State<ServerState>,
    viewer: Viewer,
    q: Result<Query<TypeQuery>, QueryRejection>,
) -> WebResult {
    viewer.require(Scope::Enqueue)?;
    let Query(q) = q.map_err(|e| WebError::new(StatusCode::UNPROCESSABLE_ENTITY, e.body_text()))?;
    let task = TaskForm::empty(&state, &q.task_type);
    let status = if task.known {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let mut r = render(&EnqueuePage {
        chrome: viewer.chrome("Enqueue a task", "enqueue"),
        task,
    });
    *r.status_mut() = status;
    Ok(r)
}

/// `POST /enqueue`: enqueues, then shows the task; or the form again with the refusal next
/// to its field and every value kept (422, nothing written).
pub async fn submit(
    State(state): State<ServerState>,
    viewer: Viewer,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> WebResult {
    let pairs = form.map(|Form(p)| p).unwrap_or_default();
    viewer.check_csrf(value(&pairs, "csrf"))?;
    viewer.require(Scope::Enqueue)?;
    let mut page = EnqueuePage {
        chrome: viewer.chrome("Enqueue a task", "enqueue"),
        task: TaskForm::submitted(&state, &pairs),
    };
    if page.task.known {
        let refusal = match page.task.task() {
            Ok(task) => match state.app.enqueue(task).await {
                Ok(e) => return Ok(see_other(&format!("/tasks/{}", e.id.0))),
                Err(PortError::Invalid(v)) => v,
                Err(e) => return Err(WebError::from(e)),
            },
            Err(v) => v,
        };
        if !page.task.place(&refusal) {
            page.task.form_error = Some(line(&refusal.to_string(), LINE_MAX));
        }
    }
    Ok(refused(&page))
}

fn refused(page: &impl Template) -> Response {
    let mut r = render(page);
    *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    r
}
