//! `prismq import legacy OLD.db [--dry-run]`: imports the tasks, logs and results of a
//! database made by the earlier Python implementation, in one transaction; a second run
//! imports nothing new; malformed rows are listed by table and id and skipped.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::ops_error::ops_error;
use crate::context::Ctx;
use crate::exit::{CliError, CliResult};
use crate::render;

/// `prismq import …`.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// A queue.db of the Python-era PrismQ (task_queue, task_logs, youtube_results).
    Legacy(LegacyArgs),
}

/// `prismq import legacy`.
#[derive(Debug, Args)]
pub struct LegacyArgs {
    /// The Python-era database file.
    #[arg(value_name = "OLD.db")]
    pub old: PathBuf,
    /// Do everything, print the counts, and roll it back.
    #[arg(long)]
    pub dry_run: bool,
}

/// The largest legacy database imported: 4 GiB, far above what the Python-era queue grew
/// to. SQLite reads it page by page (never whole), but the import runs in one transaction
/// and keeps an id map per task, so the input is bounded too.
pub const MAX_LEGACY_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// Refuses, before opening it, an OLD.db that is not a regular file (a FIFO or device would
/// block or never end) or is larger than [`MAX_LEGACY_BYTES`].
fn check_old(old: &Path) -> CliResult {
    let shown = crate::files::shown(old);
    let meta = std::fs::metadata(old)
        .map_err(|e| CliError::from(e).context(format!("cannot open {shown}")))?;
    if !meta.is_file() {
        return Err(CliError::usage(format!(
            "invalid OLD.db: {shown} is not a regular file; accepted: the Python-era queue.db file"
        )));
    }
    if meta.len() > MAX_LEGACY_BYTES {
        return Err(CliError::usage(format!(
            "invalid OLD.db: {shown} is {} bytes, larger than {} GiB; accepted: a Python-era queue.db of at most {} GiB (prune it first)",
            meta.len(),
            MAX_LEGACY_BYTES >> 30,
            MAX_LEGACY_BYTES >> 30
        )));
    }
    Ok(())
}

/// Runs `import legacy`.
///
/// # Errors
/// The old file is missing (exit 3), not a regular file, too large, or not a Python-era
/// database (exit 2); store errors.
pub fn run(ctx: &Ctx, command: ImportCommand) -> CliResult {
    let ImportCommand::Legacy(a) = command;
    check_old(&a.old)?;
    let store = prismq_app::ops::open_store(&ctx.config, true)?;
    let r =
        prismq_storage_sqlite::ops::import_legacy(&store, &a.old, a.dry_run).map_err(ops_error)?;
    if ctx.json() {
        return render::json(&r);
    }
    let verb = if r.dry_run {
        "would import"
    } else {
        "imported"
    };
    let mut out = format!(
        "{verb} {} of {} tasks ({} put back in the queue; {} imported before), {} of {} log entries, {} of {} results ({} already present)\n",
        r.tasks_imported,
        r.tasks_found,
        r.tasks_requeued,
        r.tasks_already_imported,
        r.logs_imported,
        r.logs_found,
        r.results_imported,
        r.results_found,
        r.results_duplicate
    );
    if r.worker_heartbeats_ignored > 0 {
        out.push_str(&format!(
            "{} worker heartbeats not imported (workers register when they start)\n",
            r.worker_heartbeats_ignored
        ));
    }
    if !r.skipped.is_empty() {
        out.push_str(&format!("skipped {} malformed rows:\n", r.skipped.len()));
        for s in &r.skipped {
            out.push_str(&format!("  {} {}: {}\n", s.table, s.id, s.reason));
        }
    }
    if r.dry_run {
        out.push_str("dry run: nothing was written\n");
    }
    render::print(&out)
}
