//! `prismq dlq list|retry|purge`: the failed (dead-lettered) tasks.

use clap::Subcommand;
use serde_json::json;

use prismq_domain::ports::TaskFilter;
use prismq_domain::{TaskId, TaskStatus};

use super::{parse, tasks};
use crate::context::Ctx;
use crate::exit::{CliError, CliResult};
use crate::render;

/// `prismq dlq …`.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Failed tasks, newest first.
    List {
        /// Only this task type.
        #[arg(long = "type", value_name = "TYPE")]
        task_type: Option<String>,
        /// At most this many (1-10000).
        #[arg(long, default_value_t = 50, value_name = "N")]
        limit: u32,
    },
    /// Send failed tasks back to the queue (attempts reset).
    Retry {
        /// The task ids.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        ids: Vec<i64>,
        /// Every failed task (of --type, if given).
        #[arg(long)]
        all: bool,
        /// With --all: only this task type.
        #[arg(long = "type", value_name = "TYPE", requires = "all")]
        task_type: Option<String>,
    },
    /// Delete failed tasks (and their logs) that failed longer ago than --older-than.
    Purge {
        /// An age such as 7d or 12h.
        #[arg(long, value_name = "DURATION")]
        older_than: String,
    },
}

/// Runs a `dlq` subcommand.
///
/// # Errors
/// Invalid flags (exit 2), an unknown task (exit 3), store errors.
pub async fn run(ctx: &Ctx, cmd: DlqCommand) -> CliResult {
    ctx.require_db()?;
    let app = match cmd {
        DlqCommand::List { .. } => ctx.store_app()?,
        DlqCommand::Retry { .. } | DlqCommand::Purge { .. } => ctx.store_app_to_write()?,
    };
    match cmd {
        DlqCommand::List { task_type, limit } => {
            let filter = TaskFilter {
                status: Some(TaskStatus::Failed),
                task_type: task_type.as_deref().map(parse::task_type).transpose()?,
                limit,
                ..TaskFilter::default()
            };
            let list = app.queue.list(&filter).await?;
            tasks::print_list(ctx, &list)
        }
        DlqCommand::Retry {
            ids,
            all,
            task_type,
        } => {
            let ids: Vec<TaskId> = if all {
                all_failed(&app, task_type.as_deref()).await?
            } else {
                ids.into_iter()
                    .map(parse::task_id)
                    .collect::<CliResult<_>>()?
            };
            // Every id is checked before any is retried, so a typo changes nothing.
            for id in &ids {
                let t = app.queue.get(*id).await?;
                if t.status != TaskStatus::Failed {
                    return Err(CliError::usage(format!(
                        "task {id} is {}, not failed; only dead-lettered tasks can be retried. Nothing was retried",
                        t.status
                    )));
                }
            }
            for id in &ids {
                app.queue.retry(*id).await?;
            }
            if ctx.json() {
                return render::json(&json!({ "retried": ids }));
            }
            render::print(&format!(
                "sent {} failed task{} back to the queue\n",
                ids.len(),
                if ids.len() == 1 { "" } else { "s" }
            ))
        }
        DlqCommand::Purge { older_than } => {
            let age = parse::duration("older_than", &older_than)?;
            let span = jiff::SignedDuration::try_from(age).unwrap_or(jiff::SignedDuration::MAX);
            let now = app.clock.now();
            let before = now
                .checked_sub(span)
                .unwrap_or(prismq_domain::Timestamp::MIN);
            let mut total = 0;
            loop {
                let n = app.queue.purge(TaskStatus::Failed, before, 1000).await?;
                total += n;
                if n == 0 {
                    break;
                }
            }
            if ctx.json() {
                return render::json(&json!({ "purged": total, "finished_before": before }));
            }
            render::print(&format!(
                "purged {total} failed task{} that failed before {}\n",
                if total == 1 { "" } else { "s" },
                render::time(before)
            ))
        }
    }
}

async fn all_failed(app: &prismq_app::App, task_type: Option<&str>) -> CliResult<Vec<TaskId>> {
    let mut filter = TaskFilter {
        status: Some(TaskStatus::Failed),
        task_type: task_type.map(parse::task_type).transpose()?,
        limit: 1000,
        ..TaskFilter::default()
    };
    let mut ids = Vec::new();
    loop {
        let page = app.queue.list(&filter).await?;
        let Some(last) = page.last() else { break };
        filter.before_id = Some(last.id);
        ids.extend(page.iter().map(|t| t.id));
    }
    Ok(ids)
}
