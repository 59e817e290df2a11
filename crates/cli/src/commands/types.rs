//! `prismq types`: the task types this build's plugins handle and their declared
//! parameters, as a table for people or, with `--json`, each type with the JSON Schema of
//! its parameters (the same objects as `GET /v1/types`).

use serde_json::{json, Value};

use prismq_app::{Access, App};
use prismq_domain::param_spec::{json_schema, ParamKind, ParamSpec};

use crate::context::Ctx;
use crate::exit::CliResult;
use crate::render::{self, Table};

/// Runs `prismq types`. It reads the queue's configuration and registers the plugins as a
/// worker would, writing nothing.
///
/// # Errors
/// No queue at the path (exit 3), or a plugin refuses its settings (exit 5).
pub fn run(ctx: &Ctx) -> CliResult {
    let app = App::open_for(ctx.config.clone(), prismq_app::PLUGINS, Access::Read)?;
    let types = describe(&app);
    if ctx.json() {
        return render::json(
            &json!({ "types": types.iter().map(|(t, s, _)| json!({"type": t, "params_schema": s})).collect::<Vec<_>>() }),
        );
    }
    let mut table =
        Table::new(&["TYPE", "PARAMETER", "ACCEPTS", "DESCRIPTION"]).flexible(&[(3, 20)]);
    for (name, _, specs) in &types {
        match specs {
            None => table.row(vec![
                name.clone(),
                "-".into(),
                "(not declared)".into(),
                String::new(),
            ]),
            Some(specs) => {
                for (i, p) in specs.iter().enumerate() {
                    let first = if i == 0 { name.clone() } else { String::new() };
                    let label = if p.required {
                        format!("{} (required)", p.name)
                    } else {
                        p.name.to_owned()
                    };
                    table.row(vec![first, label, accepts(p), p.description.to_owned()]);
                }
            }
        }
    }
    render::print(&table.render())
}

/// Each registered type, sorted, with its parameters' schema and declaration.
pub fn describe(app: &App) -> Vec<(String, Option<Value>, Option<Vec<ParamSpec>>)> {
    let mut types = app.registry.task_types();
    types.sort();
    types
        .into_iter()
        .map(|t| {
            let specs = app.registry.handler(&t).and_then(|h| h.params());
            (
                t.as_str().to_owned(),
                specs.as_deref().map(json_schema),
                specs,
            )
        })
        .collect()
}

/// What a parameter accepts, in a few words: `1-500 (default 10)`, `videos|shorts`, …
fn accepts(p: &ParamSpec) -> String {
    let default = |d: Option<String>| d.map_or_else(String::new, |d| format!(" (default {d})"));
    match &p.kind {
        ParamKind::Text { max_chars, .. } => format!("text, up to {max_chars} characters"),
        ParamKind::Integer {
            min,
            max,
            default: d,
        } => {
            format!("{min}-{max}{}", default(d.map(|d| d.to_string())))
        }
        ParamKind::Boolean { default: d } => {
            format!("true|false{}", default(d.map(|d| d.to_string())))
        }
        ParamKind::Choice {
            options,
            default: d,
        } => {
            format!("{}{}", options.join("|"), default(d.map(str::to_owned)))
        }
        ParamKind::TextList { max_items, .. } => format!("a list of up to {max_items} texts"),
    }
}
