//! `prismq tasks list|show|cancel|retry`.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use prismq_domain::lease::MAX_LAPSES;
use prismq_domain::ports::TaskFilter;
use prismq_domain::Task;

use super::parse;
use crate::context::Ctx;
use crate::exit::CliResult;
use crate::render::{self, Table};

/// `prismq tasks …`.
#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// Tasks, newest first.
    List(TaskListArgs),
    /// One task with its log.
    Show {
        /// The task id.
        id: i64,
    },
    /// Cancel a queued, claimed or running task.
    Cancel {
        /// The task id.
        id: i64,
    },
    /// Send a failed (dead-lettered) task back to the queue.
    Retry {
        /// The task id.
        id: i64,
    },
}

/// Filters of `tasks list`.
#[derive(Debug, Args)]
pub struct TaskListArgs {
    /// queued, claimed, running, completed, failed or cancelled.
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
    /// Only this task type.
    #[arg(long = "type", value_name = "TYPE")]
    pub task_type: Option<String>,
    /// At most this many (1-10000).
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub limit: u32,
    /// Only tasks with a smaller id (the next page: pass the last id shown).
    #[arg(long, value_name = "ID")]
    pub before: Option<i64>,
    /// Only tasks the schedule with this name enqueued (its slots and run-nows).
    #[arg(long, value_name = "NAME")]
    pub schedule: Option<String>,
}

/// Runs a `tasks` subcommand.
///
/// # Errors
/// Invalid filters (exit 2), an unknown task (exit 3), an action its state forbids (exit 2).
pub async fn run(ctx: &Ctx, cmd: TasksCommand) -> CliResult {
    ctx.require_db()?;
    let app = match cmd {
        TasksCommand::List(_) | TasksCommand::Show { .. } => ctx.store_app()?,
        TasksCommand::Cancel { .. } | TasksCommand::Retry { .. } => ctx.store_app_to_write()?,
    };
    match cmd {
        TasksCommand::List(a) => {
            let mut filter = filter(&a)?;
            if let Some(name) = &a.schedule {
                // An unknown name is NotFound (exit 3), saying which name.
                filter.key_prefix = Some(app.schedules.get_schedule(name).await?.key_prefix());
            }
            let tasks = app.queue.list(&filter).await?;
            print_list(ctx, &tasks)
        }
        TasksCommand::Show { id } => {
            let id = parse::task_id(id)?;
            let task = app.queue.get(id).await?;
            let log = app.logs.list(id).await?;
            if ctx.json() {
                return render::json(&json!({ "task": task, "log": log }));
            }
            let mut out = render::fields(&task_fields(&task));
            let mut t = Table::new(&["AT", "EVENT", "LEVEL", "MESSAGE"]);
            for r in &log {
                t.row(vec![
                    render::time(r.at),
                    r.event.to_string(),
                    r.level.as_str().to_owned(),
                    render::cut(&r.message, 100),
                ]);
            }
            out.push_str("\nlog:\n");
            out.push_str(&t.render());
            render::print(&out)
        }
        TasksCommand::Cancel { id } => {
            let task = app.queue.cancel(parse::task_id(id)?).await?;
            print_changed(ctx, &task, "cancelled")
        }
        TasksCommand::Retry { id } => {
            let task = app.queue.retry(parse::task_id(id)?).await?;
            print_changed(ctx, &task, "sent back to the queue")
        }
    }
}

fn filter(a: &TaskListArgs) -> CliResult<TaskFilter> {
    Ok(TaskFilter {
        status: a.status.as_deref().map(parse::status).transpose()?,
        task_type: a.task_type.as_deref().map(parse::task_type).transpose()?,
        before_id: a.before.map(parse::task_id).transpose()?,
        finished_before: None,
        key_prefix: None,
        limit: a.limit,
    })
}

/// Prints tasks as a table (or JSON).
///
/// # Errors
/// stdout is closed.
pub fn print_list(ctx: &Ctx, tasks: &[Task]) -> CliResult {
    if ctx.json() {
        return render::json(tasks);
    }
    if tasks.is_empty() {
        return render::print("no tasks\n");
    }
    let mut t = Table::new(&[
        "ID",
        "TYPE",
        "STATUS",
        "PRI",
        "ATTEMPTS",
        "RUN AFTER",
        "UPDATED",
        "ABOUT",
        "LAST ERROR",
    ])
    .right_align(&[0, 3])
    .flexible(&[(8, 10), (7, 16)])
    .optional(&[8, 6, 5, 3, 4]);
    for task in tasks {
        t.row(vec![
            task.id.to_string(),
            task.task_type.to_string(),
            task.status.to_string(),
            task.priority.to_string(),
            format!("{}/{}", task.attempts, task.max_attempts),
            render::time(task.run_after),
            render::time(task.updated_at),
            render::cut(&about(&task.params), 80),
            task.last_error
                .as_deref()
                .map_or_else(String::new, |e| render::cut(e, 60)),
        ]);
    }
    render::print(&t.render())
}

/// What a task is about, from its parameters: the channel (and its tab), the search query,
/// the chart's region and category, the videos; for other task types their text and
/// number parameters. `-` when it has none.
pub fn about(params: &Value) -> String {
    let Some(p) = params.as_object() else {
        return "-".to_owned();
    };
    let text = |k: &str| match p.get(k) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let mut parts: Vec<String> = Vec::new();
    if let Some(c) = text("channel_url") {
        parts.push(c);
        parts.extend(text("tab"));
    } else if let Some(q) = text("query") {
        parts.push(format!("{q:?}"));
        parts.extend(text("region"));
    } else if let Some(v) = p.get("videos") {
        let ids: Vec<String> = match v {
            Value::Array(a) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Value::String(s) => vec![s.clone()],
            _ => Vec::new(),
        };
        let first: Vec<&str> = ids.iter().take(3).map(String::as_str).collect();
        let more = ids.len().saturating_sub(first.len());
        parts.push(first.join(", "));
        if more > 0 {
            parts.push(format!("+{more} more"));
        }
    } else if p.contains_key("category") || p.contains_key("region") || p.contains_key("country") {
        parts.push(
            text("region")
                .or_else(|| text("country"))
                .unwrap_or_else(|| "US".to_owned())
                .to_ascii_uppercase(),
        );
        parts.push(text("category").unwrap_or_else(|| "all".to_owned()));
    } else {
        parts.extend(p.iter().filter_map(|(k, v)| match v {
            Value::String(s) => Some(format!("{k}={s}")),
            Value::Number(n) => Some(format!("{k}={n}")),
            _ => None,
        }));
    }
    parts.retain(|s| !s.is_empty());
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(" ")
    }
}

fn task_fields(t: &Task) -> Vec<(&'static str, String)> {
    vec![
        ("id", t.id.to_string()),
        ("type", t.task_type.to_string()),
        ("status", t.status.to_string()),
        ("priority", t.priority.to_string()),
        ("attempts", format!("{} of {}", t.attempts, t.max_attempts)),
        ("lapses", format!("{} of at most {MAX_LAPSES}", t.lapses)),
        ("params", t.params.to_string()),
        ("run after", render::time(t.run_after)),
        ("region", render::opt(t.compatibility.region.as_deref())),
        ("idempotency key", render::opt(t.idempotency_key.as_deref())),
        ("claimed by", render::opt(t.claimed_by.as_ref())),
        ("lease expires", render::opt_time(t.lease_expires_at)),
        ("created", render::time(t.created_at)),
        ("updated", render::time(t.updated_at)),
        ("finished", render::opt_time(t.finished_at)),
        ("last error", render::opt(t.last_error.as_deref())),
        (
            "summary",
            t.summary
                .as_ref()
                .map_or_else(|| "-".to_owned(), ToString::to_string),
        ),
    ]
}

fn print_changed(ctx: &Ctx, task: &Task, what: &str) -> CliResult {
    if ctx.json() {
        return render::json(task);
    }
    render::print(&format!(
        "task {} {what} (status {})\n",
        task.id, task.status
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_says_what_each_task_is_about() {
        assert_eq!(
            about(&json!({"channel_url": "@GoogleDevelopers"})),
            "@GoogleDevelopers"
        );
        assert_eq!(
            about(&json!({"channel_url": "@GoogleDevelopers", "tab": "shorts", "top_n": 5})),
            "@GoogleDevelopers shorts"
        );
        assert_eq!(
            about(&json!({"query": "surf trip", "region": "GB"})),
            "\"surf trip\" GB"
        );
        assert_eq!(
            about(&json!({"region": "in", "category": "music"})),
            "IN music"
        );
        assert_eq!(about(&json!({"top_n": 5, "country": "DE"})), "DE all");
        assert_eq!(about(&json!({"category": "10"})), "US 10");
        assert_eq!(
            about(&json!({"videos": ["a", "b", "c", "d", "e"]})),
            "a, b, c +2 more"
        );
        assert_eq!(about(&json!({"videos": "dQw4w9WgXcQ"})), "dQw4w9WgXcQ");
        assert_eq!(
            about(&json!({"feed": "x", "n": 2, "deep": {"a": 1}})),
            "feed=x n=2"
        );
        assert_eq!(about(&json!({})), "-");
        assert_eq!(about(&Value::Null), "-");
    }
}
