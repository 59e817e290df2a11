//! `prismq workers`: every registered worker loop with its health and current task.

use std::time::Duration;

use super::parse;
use crate::args::WorkersArgs;
use crate::context::Ctx;
use crate::exit::CliResult;
use crate::render::{self, Table};

/// Runs `workers`.
///
/// # Errors
/// A malformed `--stale-after` (exit 2), store errors.
pub async fn run(ctx: &Ctx, args: WorkersArgs) -> CliResult {
    ctx.require_db()?;
    let app = ctx.store_app()?;
    let stale_after: Duration = match &args.stale_after {
        Some(s) => parse::duration("stale_after", s)?,
        None => app.config.worker.heartbeat_interval * 3,
    };
    let list = app.workers.list(stale_after).await?;
    if ctx.json() {
        return render::json(&list);
    }
    if list.is_empty() {
        return render::print("no workers have registered\n");
    }
    let mut t = Table::new(&[
        "WORKER",
        "HEALTH",
        "STRATEGY",
        "TASK",
        "DONE",
        "FAILED",
        "STARTED",
        "HEARTBEAT",
    ])
    .right_align(&[4, 5]);
    for w in &list {
        t.row(vec![
            w.info.id.to_string(),
            format!("{:?}", w.health).to_lowercase(),
            w.info.strategy.to_string(),
            render::opt(w.heartbeat.current_task),
            w.heartbeat.tasks_done.to_string(),
            w.heartbeat.tasks_failed.to_string(),
            render::time(w.started_at),
            render::time(w.heartbeat_at),
        ]);
    }
    render::print(&t.render())
}
