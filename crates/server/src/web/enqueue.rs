//! The enqueue form: a task type from the registered handlers, a priority, and parameter
//! fields (name and value). The task goes through `App::enqueue`, which runs the handler's
//! own check as the CLI and the API do, so a refusal carries the same message, shown next
//! to the field it names. Nothing is written when it is refused.

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde_json::{Map, Value};

use prismq_domain::ports::Scope;
use prismq_domain::{NewTask, PortError, Priority, TaskType, ValidationError};

use super::page::{line, render, see_other, Chrome, Viewer, WebError, WebResult, LINE_MAX};
use crate::ServerState;

/// How many parameter rows the form has.
pub const PARAM_ROWS: usize = 6;
/// The longest parameter value taken.
pub const VALUE_MAX: usize = 10_000;

/// One parameter row as filled in, with its error.
#[derive(Debug, Clone, Default)]
pub struct ParamRow {
    /// Index.
    pub i: usize,
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
    /// The refusal naming this parameter.
    pub error: Option<String>,
}

#[derive(Debug, Template)]
#[template(path = "enqueue.html")]
struct EnqueuePage {
    chrome: Chrome,
    types: Vec<String>,
    task_type: String,
    priority: String,
    rows: Vec<ParamRow>,
    type_error: Option<String>,
    priority_error: Option<String>,
    form_error: Option<String>,
}

fn types(state: &ServerState) -> Vec<String> {
    let mut t: Vec<String> = state
        .app
        .registry
        .task_types()
        .into_iter()
        .map(|t| t.as_str().to_owned())
        .collect();
    t.sort();
    t
}

fn empty_rows() -> Vec<ParamRow> {
    (0..PARAM_ROWS)
        .map(|i| ParamRow {
            i,
            ..ParamRow::default()
        })
        .collect()
}

/// `GET /enqueue`.
pub async fn form(State(state): State<ServerState>, viewer: Viewer) -> WebResult {
    viewer.require(Scope::Enqueue)?;
    Ok(render(&EnqueuePage {
        chrome: viewer.chrome("Enqueue a task", "enqueue"),
        types: types(&state),
        task_type: String::new(),
        priority: String::new(),
        rows: empty_rows(),
        type_error: None,
        priority_error: None,
        form_error: None,
    }))
}

/// A parameter value as typed: a whole or decimal number, `true`/`false`, a JSON array,
/// object or quoted string as that JSON; anything else as text.
pub fn value_of(text: &str) -> Value {
    let t = text.trim();
    if let Ok(n) = t.parse::<i64>() {
        return Value::from(n);
    }
    if t.starts_with(['[', '{', '"'])
        || t == "true"
        || t == "false"
        || t.parse::<f64>().is_ok_and(f64::is_finite)
    {
        if let Ok(v) = serde_json::from_str::<Value>(t) {
            return v;
        }
    }
    Value::String(t.to_owned())
}

/// `POST /enqueue`: enqueues, then shows the task; or the form again with the refusal.
pub async fn submit(
    State(state): State<ServerState>,
    viewer: Viewer,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> WebResult {
    let pairs = form.map(|Form(p)| p).unwrap_or_default();
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    viewer.check_csrf(get("csrf"))?;
    viewer.require(Scope::Enqueue)?;
    let mut page = EnqueuePage {
        chrome: viewer.chrome("Enqueue a task", "enqueue"),
        types: types(&state),
        task_type: line(get("type"), LINE_MAX),
        priority: line(get("priority"), LINE_MAX),
        rows: (0..PARAM_ROWS)
            .map(|i| ParamRow {
                i,
                name: line(get(&format!("name{i}")).trim(), LINE_MAX),
                value: line(get(&format!("value{i}")), VALUE_MAX),
                error: None,
            })
            .collect(),
        type_error: None,
        priority_error: None,
        form_error: None,
    };
    match build(&page).map(|task| (task, state.app.clone())) {
        Ok((task, app)) => match app.enqueue(task).await {
            Ok(e) => return Ok(see_other(&format!("/tasks/{}", e.id.0))),
            Err(PortError::Invalid(v)) => place(&mut page, &v),
            Err(e) => return Err(WebError::from(e)),
        },
        Err(v) => place(&mut page, &v),
    }
    Ok(refused(&page))
}

fn refused(page: &EnqueuePage) -> Response {
    let mut r = render(page);
    *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    r
}

/// The task the form describes.
fn build(page: &EnqueuePage) -> Result<NewTask, ValidationError> {
    let task_type = TaskType::new(page.task_type.trim())?;
    let mut params = Map::new();
    for r in &page.rows {
        if r.name.is_empty() {
            if !r.value.trim().is_empty() {
                return Err(ValidationError::new(
                    format!("row{}", r.i),
                    "a value without a parameter name",
                    "a name such as top_n next to each value",
                ));
            }
            continue;
        }
        if params.insert(r.name.clone(), value_of(&r.value)).is_some() {
            return Err(ValidationError::new(
                format!("params.{}", r.name),
                "the parameter is given twice",
                "each parameter once",
            ));
        }
    }
    let mut task = NewTask::new(task_type, Value::Object(params));
    if !page.priority.trim().is_empty() {
        let p = page.priority.trim().parse::<i64>().map_err(|_| {
            ValidationError::new(
                "priority",
                format!("{:?} is not a whole number", page.priority.trim()),
                "a whole number (higher runs first)",
            )
        })?;
        task = task.priority(Priority::new(p)?);
    }
    Ok(task)
}

/// Puts the refusal next to the field it names, or above the form.
fn place(page: &mut EnqueuePage, v: &ValidationError) {
    let message = line(&v.to_string(), LINE_MAX);
    if v.field == "type" || v.field == "task_type" {
        page.type_error = Some(message);
        return;
    }
    if v.field == "priority" {
        page.priority_error = Some(message);
        return;
    }
    let param = v
        .field
        .strip_prefix("params.")
        .map(|p| p.split(['.', '[']).next().unwrap_or(p).to_owned());
    let row_field = v
        .field
        .strip_prefix("row")
        .and_then(|i| i.parse::<usize>().ok());
    let row = page.rows.iter_mut().find(|r| {
        row_field == Some(r.i) || (!r.name.is_empty() && param.as_deref() == Some(r.name.as_str()))
    });
    match row {
        Some(r) => r.error = Some(message),
        None => page.form_error = Some(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_read_as_json_where_they_look_like_it() {
        assert_eq!(value_of("50"), Value::from(50));
        assert_eq!(value_of(" 1.5 "), serde_json::json!(1.5));
        assert_eq!(value_of("true"), Value::Bool(true));
        assert_eq!(value_of("[\"a\", \"b\"]"), serde_json::json!(["a", "b"]));
        assert_eq!(value_of("\"123\""), Value::from("123"));
        assert_eq!(value_of("@veritasium"), Value::from("@veritasium"));
        assert_eq!(value_of("[not json"), Value::from("[not json"));
        assert_eq!(value_of("NaN"), Value::from("NaN"));
    }
}
