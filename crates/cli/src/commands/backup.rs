//! `prismq backup --out FILE [--force]`: SQLite's online backup of the live database,
//! consistent while workers run, checked with `integrity_check`, owner-only, never
//! replacing an existing file without `--force`.

use std::path::PathBuf;

use clap::Args;

use super::ops_error::ops_error;
use crate::context::Ctx;
use crate::exit::CliResult;
use crate::render;

/// `prismq backup`.
#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// Where to write the copy.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Runs `backup`.
///
/// # Errors
/// No database (exit 3), FILE exists without --force (exit 2), store or file errors.
pub fn run(ctx: &Ctx, args: BackupArgs) -> CliResult {
    ctx.require_db()?;
    let store = prismq_app::ops::open_store(&ctx.config, false)?;
    let report =
        prismq_storage_sqlite::ops::backup(&store, &args.out, args.force).map_err(ops_error)?;
    if ctx.json() {
        return render::json(&report);
    }
    render::print(&format!(
        "backed up {} to {} ({} bytes, {} pages, integrity ok, {:.0} ms)\n",
        store.options().path.display(),
        report.path.display(),
        report.bytes,
        report.pages,
        report.millis
    ))
}
