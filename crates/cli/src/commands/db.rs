//! `prismq db copy --from STORE --to STORE [--force] [--schema NAME]`: moves a queue between
//! stores of any engines (SQLite files, PostgreSQL servers), verifying every table's count
//! before committing; `prismq db page-size [BYTES]`: a SQLite queue's page size, shown or
//! changed in place.

use std::time::Duration;

use clap::{Args, Subcommand};

use crate::commands::ops_error::ops_error;
use crate::context::Ctx;
use crate::exit::{CliError, CliResult, Exit};
use crate::render;
use prismq_app::copy::{copy_database, parse_endpoint, CopyError};
use prismq_storage_sqlite::PageSize;

/// `prismq db …`.
#[derive(Debug, Clone, Subcommand)]
pub enum DbCommand {
    /// Copy tasks, logs, workers, results, metric history and quota from one store to
    /// another (SQLite or PostgreSQL, either way); refuses a non-empty target without --force.
    Copy(CopyArgs),
    /// Show the SQLite queue's page size, or rewrite the file with BYTES-byte pages in place
    /// (every other process must have closed it; needs free disk about twice its size).
    PageSize(PageSizeArgs),
}

/// `prismq db page-size`.
#[derive(Debug, Clone, Args)]
pub struct PageSizeArgs {
    /// The new page size: a power of two from 512 to 65536. Without it, the file's page
    /// size is shown and nothing is changed.
    #[arg(value_name = "BYTES", value_parser = page_size)]
    pub bytes: Option<PageSize>,
}

fn page_size(given: &str) -> Result<PageSize, String> {
    given
        .trim()
        .parse::<u32>()
        .ok()
        .and_then(PageSize::new)
        .ok_or_else(|| {
            format!(
                "{given:?} is not a page size SQLite accepts; accepted: {}",
                PageSize::ACCEPTED
            )
        })
}

/// How long a page-size change waits for a connection that is closing before it refuses.
const IN_USE_WAIT: Duration = Duration::from_secs(2);

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
/// unusable store (exit 4); for `page-size`, a PostgreSQL database (exit 2), a missing file
/// (exit 3), a file another process has open (exit 4).
pub async fn run(ctx: &Ctx, command: DbCommand) -> CliResult {
    let args = match command {
        DbCommand::Copy(args) => args,
        DbCommand::PageSize(args) => return page_size_of(ctx, args),
    };
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

/// `db page-size`: opens the queue as every command does (a PrismQ queue at the current
/// schema, migrated if behind), closes it, and shows or changes its page size.
fn page_size_of(ctx: &Ctx, args: PageSizeArgs) -> CliResult {
    if ctx.config.database.postgres_url().is_some() {
        return Err(CliError::usage(
            "db page-size changes a SQLite file's pages, and database.url names a PostgreSQL server (its page size is fixed when the server is built); pass --db PATH for a SQLite file",
        ));
    }
    ctx.require_db()?;
    let store = prismq_app::ops::open_store(&ctx.config, true)?;
    let path = store.options().path.clone();
    let current: u32 = store.with_connection(|c| {
        c.query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(|e| prismq_domain::PortError::Unavailable(e.to_string()))
    })?;
    drop(store);
    let configured = ctx.config.database.page_size;
    let Some(size) = args.bytes else {
        if ctx.json() {
            return render::json(&serde_json::json!({
                "path": path, "page_size": current, "database_page_size": configured
            }));
        }
        return render::print(&format!(
            "{}: {current}-byte pages (database.page_size, what a new file gets: {configured})\n",
            path.display()
        ));
    };
    let r =
        prismq_storage_sqlite::ops::set_page_size(&path, size, IN_USE_WAIT).map_err(ops_error)?;
    if ctx.json() {
        return render::json(&r);
    }
    if !r.changed {
        return render::print(&format!(
            "{}: already {}-byte pages; nothing changed\n",
            path.display(),
            r.after
        ));
    }
    render::print(&format!(
        "{}: rewritten with {}-byte pages (were {}) in {:.1} s; {} bytes, were {}; quick_check ok\n",
        path.display(),
        r.after,
        r.before,
        r.seconds,
        r.bytes_after,
        r.bytes_before
    ))
}
