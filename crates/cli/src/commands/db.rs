//! `prismq db copy --from STORE --to STORE [--force] [--schema NAME]`: moves a queue between
//! stores of any engines (SQLite files, PostgreSQL servers), verifying every table's count
//! before committing.

use clap::{Args, Subcommand};

use crate::context::Ctx;
use crate::exit::{CliError, CliResult, Exit};
use crate::render;
use prismq_app::copy::{copy_database, parse_endpoint, CopyError};

/// `prismq db …`.
#[derive(Debug, Clone, Subcommand)]
pub enum DbCommand {
    /// Copy tasks, logs, workers, results, metric history and quota from one store to
    /// another (SQLite or PostgreSQL, either way); refuses a non-empty target without --force.
    Copy(CopyArgs),
}

/// `prismq db copy`.
#[derive(Debug, Clone, Args)]
pub struct CopyArgs {
    /// The source: `sqlite:PATH` or `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`.
    #[arg(long, value_name = "STORE")]
    pub from: String,
    /// The target: `sqlite:PATH` or a `postgres://` URL, another store than the source.
    #[arg(long, value_name = "STORE")]
    pub to: String,
    /// Replace the target's contents if it is not empty.
    #[arg(long)]
    pub force: bool,
    /// The PostgreSQL end's schema (created if missing). Default: `database.schema` from
    /// the configuration, else the connection's default (`public`).
    #[arg(long, value_name = "NAME")]
    pub schema: Option<String>,
}

fn cli_error(e: CopyError) -> CliError {
    let exit = if e.is_refusal() {
        Exit::Usage
    } else {
        Exit::Unavailable
    };
    CliError::new(exit, e.to_string())
}

/// Runs `db`.
///
/// # Errors
/// A bad endpoint or a non-empty target without --force (exit 2), an unreachable or
/// unusable store (exit 4).
pub async fn run(ctx: &Ctx, command: DbCommand) -> CliResult {
    let DbCommand::Copy(args) = command;
    let from = parse_endpoint("--from", &args.from).map_err(cli_error)?;
    let to = parse_endpoint("--to", &args.to).map_err(cli_error)?;
    let schema = args.schema.or_else(|| ctx.config.database.schema.clone());
    // A SQLite file the copy creates takes the configured page size.
    let page_size = ctx.config.database.new_file_page_size();
    let report = copy_database(&from, &to, args.force, schema.as_deref(), page_size)
        .await
        .map_err(cli_error)?;
    if ctx.json() {
        return render::json(&report);
    }
    render::print(&format!(
        "copied {} tasks, {} log entries, {} workers, {} results, {} metric snapshots, {} quota buckets, {} schedules, {} channel baselines (counts verified)\n",
        report.tasks, report.logs, report.workers, report.results, report.metrics, report.quota, report.schedules, report.baselines
    ))
}
