//! `prismq workers prune`: removes stopped workers and those whose heartbeat is older than
//! the stale limit (three heartbeat intervals by default). Their claimed tasks are not
//! touched here: they return to the queue when their leases lapse.

use std::time::Duration;

use clap::{Args, Subcommand};

use super::parse;
use crate::context::Ctx;
use crate::exit::CliResult;
use crate::render;

/// `prismq workers …`.
#[derive(Debug, Subcommand)]
pub enum WorkersCommand {
    /// Remove stopped and stale workers from the registry.
    Prune(WorkersPruneArgs),
}

/// `prismq workers prune`.
#[derive(Debug, Args)]
pub struct WorkersPruneArgs {
    /// A worker silent for longer than this is stale (default: 3 heartbeat intervals).
    #[arg(long, value_name = "DURATION")]
    pub stale_after: Option<String>,
}

/// Runs `workers prune`.
///
/// # Errors
/// A malformed `--stale-after` (exit 2), store errors.
pub async fn run(ctx: &Ctx, command: WorkersCommand) -> CliResult {
    let WorkersCommand::Prune(a) = command;
    ctx.require_db()?;
    let app = ctx.store_app_to_write()?;
    let stale_after: Duration = match &a.stale_after {
        Some(s) => parse::duration("stale_after", s)?,
        None => app.config.worker.heartbeat_interval * 3,
    };
    let removed = app.workers.prune(stale_after).await?;
    if ctx.json() {
        return render::json(&serde_json::json!({ "removed": removed }));
    }
    render::print(&format!(
        "removed {removed} workers (stopped, or silent for more than {}); their claimed tasks return to the queue when their leases lapse\n",
        prismq_app::config::format_duration(stale_after)
    ))
}
