//! `prismq maintenance prune|checkpoint|optimize|vacuum`: batched pruning of finished tasks,
//! old log entries and old result sightings (with an optional JSONL archive written first), WAL checkpoint,
//! ANALYZE / PRAGMA optimize, and vacuum (incremental, or `--full`), through the configured
//! engine's upkeep port (an engine that leaves these to its own tools says so).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use prismq_domain::ports::upkeep::{PruneOptions, VacuumMode};
use prismq_domain::ports::{StorageProblem, Upkeep};
use prismq_domain::Timestamp;

use super::parse;
use crate::context::Ctx;
use crate::exit::{CliError, CliResult};
use crate::render;

/// `prismq maintenance …`.
#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    /// Delete finished tasks, old log entries and old result sightings in small batches.
    Prune(PruneArgs),
    /// Copy the WAL into the database file and truncate it.
    Checkpoint,
    /// Refresh the query planner's statistics (ANALYZE, PRAGMA optimize).
    Optimize,
    /// Return free pages to the filesystem.
    Vacuum(VacuumArgs),
}

/// `prismq maintenance prune`. Ages are durations (`30d`, `12h`) or RFC 3339 instants.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Delete completed tasks (and their logs) that finished longer ago than this.
    #[arg(long, value_name = "AGE")]
    pub completed_older_than: Option<String>,
    /// Delete failed (dead-letter) tasks that finished longer ago than this.
    #[arg(long, value_name = "AGE")]
    pub failed_older_than: Option<String>,
    /// Delete cancelled tasks that finished longer ago than this.
    #[arg(long, value_name = "AGE")]
    pub cancelled_older_than: Option<String>,
    /// Delete log entries written longer ago than this, whatever their task's state.
    #[arg(long, value_name = "AGE")]
    pub logs_older_than: Option<String>,
    /// Delete result sightings made longer ago than this, except each video's first and
    /// latest by each kind of source.
    #[arg(long, value_name = "AGE")]
    pub sightings_older_than: Option<String>,
    /// Append every deleted row to this JSON Lines file first.
    #[arg(long, value_name = "FILE.jsonl")]
    pub archive: Option<PathBuf>,
    /// Rows per transaction (1–10000).
    #[arg(long, default_value_t = 500)]
    pub batch_size: u32,
}

/// `prismq maintenance vacuum`.
#[derive(Debug, Args)]
pub struct VacuumArgs {
    /// Rewrite the whole file (workers wait; needs free disk as large as the database) and
    /// switch it to incremental vacuum for next time.
    #[arg(long)]
    pub full: bool,
    /// Free at most this many pages (incremental only; default all).
    #[arg(long, conflicts_with = "full")]
    pub pages: Option<u32>,
}

/// Runs a maintenance command.
///
/// # Errors
/// No database (exit 3), bad ages (exit 2), store errors.
pub async fn run(ctx: &Ctx, command: MaintenanceCommand) -> CliResult {
    ctx.require_db()?;
    let store = prismq_app::storage::upkeep(&ctx.config)?;
    match store.check().await {
        // PostgreSQL leaves upkeep to its own tools but prunes result sightings; its prune
        // says what else it refuses.
        Err(e)
            if e.problem() == StorageProblem::Unsupported
                && matches!(command, MaintenanceCommand::Prune(_)) => {}
        other => other?,
    }
    match command {
        MaintenanceCommand::Prune(a) => prune(ctx, &*store, a).await,
        MaintenanceCommand::Checkpoint => {
            let r = store.checkpoint().await?;
            if ctx.json() {
                return render::json(&r);
            }
            let busy = if r.busy {
                "; readers kept part of it: run it again when the workers are idle"
            } else {
                ""
            };
            render::print(&format!(
                "checkpointed {} of {} WAL frames; the WAL is now {} bytes{busy}\n",
                r.checkpointed_frames, r.wal_frames, r.wal_bytes_after
            ))
        }
        MaintenanceCommand::Optimize => {
            let r = store.optimize().await?;
            if ctx.json() {
                return render::json(&r);
            }
            render::print(&format!(
                "ANALYZE {:.0} ms, PRAGMA optimize {:.0} ms; {} indexes have statistics\n",
                r.analyze_millis, r.optimize_millis, r.indexes_with_stats
            ))
        }
        MaintenanceCommand::Vacuum(a) => {
            let mode = if a.full {
                VacuumMode::Full
            } else {
                VacuumMode::Incremental { pages: a.pages }
            };
            let r = store.vacuum(mode).await?;
            if ctx.json() {
                return render::json(&r);
            }
            if !r.ran {
                return render::print(&format!("{}\n", r.note));
            }
            render::print(&format!(
                "{} vacuum: {} bytes returned; free pages {} → {}; auto_vacuum {}\n",
                r.mode,
                r.bytes_reclaimed,
                r.free_pages_before,
                r.free_pages_after,
                r.auto_vacuum_after
            ))
        }
    }
}

async fn prune(ctx: &Ctx, store: &dyn Upkeep, a: PruneArgs) -> CliResult {
    let now = Timestamp::now();
    let age = |flag: &str, v: &Option<String>| -> CliResult<Option<Timestamp>> {
        v.as_deref().map(|t| parse::since(flag, t, now)).transpose()
    };
    let opts = PruneOptions {
        completed_before: age("completed_older_than", &a.completed_older_than)?,
        failed_before: age("failed_older_than", &a.failed_older_than)?,
        cancelled_before: age("cancelled_older_than", &a.cancelled_older_than)?,
        logs_before: age("logs_older_than", &a.logs_older_than)?,
        sightings_before: age("sightings_older_than", &a.sightings_older_than)?,
        archive: a.archive,
        batch_size: a.batch_size,
        ..PruneOptions::default()
    };
    if opts.completed_before.is_none()
        && opts.failed_before.is_none()
        && opts.cancelled_before.is_none()
        && opts.logs_before.is_none()
        && opts.sightings_before.is_none()
    {
        return Err(CliError::usage(
            "nothing to prune: give --completed-older-than, --failed-older-than, --cancelled-older-than, --logs-older-than or --sightings-older-than (e.g. 30d)",
        ));
    }
    let r = store.prune(&opts).await?;
    if ctx.json() {
        return render::json(&r);
    }
    let mut out = format!(
        "deleted {} completed, {} failed and {} cancelled tasks (with {} log entries), {} older log entries and {} older sightings in {} batches\n",
        r.completed, r.failed, r.cancelled, r.task_logs, r.logs, r.sightings, r.batches
    );
    if let Some(p) = &r.archive {
        out.push_str(&format!(
            "archived {} lines to {}\n",
            r.archived_lines,
            p.display()
        ));
    }
    render::print(&out)
}
