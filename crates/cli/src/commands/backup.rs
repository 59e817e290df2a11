//! `prismq backup --out FILE|- [--force]`: the configured engine's online backup of the live
//! database through its upkeep port (on SQLite: consistent while workers run, checked with
//! `integrity_check`, owner-only; an engine with its own dump tool says so). Where it goes
//! follows the CLI's output rules (`crate::files`): a new file, a regular file replaced only
//! with `--force`, a FIFO or character device written through, or `-` for stdout (never a
//! terminal); anything else is refused.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::Args;

use prismq_domain::ports::upkeep::BackupReport;
use prismq_domain::ports::Upkeep;

use crate::context::Ctx;
use crate::exit::{CliError, CliResult};
use crate::files::{self, Target};
use crate::render;

/// `prismq backup`.
#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// Where to write the copy, or - for stdout; an existing regular file is replaced only
    /// with --force, a FIFO or character device is written through, anything else is refused.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Replace FILE if it is an existing regular file.
    #[arg(long)]
    pub force: bool,
}

/// Runs `backup`.
///
/// # Errors
/// No database (exit 3), an output that may not be written (exit 2, see
/// [`Target::classify`]), store or file errors.
pub async fn run(ctx: &Ctx, args: BackupArgs) -> CliResult {
    ctx.require_db()?;
    let protected = files::database_files(ctx.config.database.sqlite_path());
    let target = Target::classify("--out", &args.out, args.force, &protected)?;
    if target == Target::Stdout && std::io::stdout().is_terminal() {
        return Err(CliError::usage(
            "invalid --out: - would write a binary SQLite file to the terminal; redirect stdout (prismq backup --out - > FILE) or give a file",
        ));
    }
    let store = prismq_app::storage::upkeep(&ctx.config)?;
    store.check().await?;
    let shown = target.describe();
    let to_stdout = target == Target::Stdout;
    let report = if target.is_stream() {
        stream(&*store, target).await?
    } else {
        if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_dirs(dir)?;
        }
        let output = target.open()?;
        let tmp = output
            .temp_path()
            .map(Path::to_path_buf)
            .ok_or_else(|| CliError::failure("no temporary file for the backup"))?;
        let mut report = store.backup(&tmp).await?;
        output.finish()?;
        report.path.clone_from(&args.out);
        report
    };
    let text = format!(
        "backed up {} to {shown} ({} bytes, {} pages, integrity ok, {:.0} ms)\n",
        store
            .database_file()
            .unwrap_or(Path::new("the database"))
            .display(),
        report.bytes,
        report.pages,
        report.millis
    );
    if to_stdout {
        // stdout carries the copy; the summary goes to stderr.
        eprint!("{text}");
        return Ok(());
    }
    if ctx.json() {
        return render::json(&report);
    }
    render::print(&text)
}

/// Makes the copy in an owner-only scratch file beside the database (SQLite needs a file to
/// write to), then writes it through to stdout, a FIFO or a device; the scratch file is
/// removed whatever happens.
async fn stream(store: &dyn Upkeep, target: Target) -> CliResult<BackupReport> {
    let dir = store
        .database_file()
        .and_then(Path::parent)
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let scratch = tempfile::Builder::new()
        .prefix(".prismq-backup-")
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(|e| {
            CliError::from(e).context(format!(
                "cannot create a scratch file for the backup in {}",
                dir.display()
            ))
        })?;
    let mut report = store.backup(scratch.path()).await?;
    let path = target.describe();
    let mut output = target.open()?;
    let mut copy = std::fs::File::open(scratch.path()).map_err(CliError::from)?;
    let copied = std::io::copy(&mut copy, &mut output);
    if output.reader_gone() {
        return Err(CliError::failure(format!(
            "the reader of {path} went away before the backup was whole; it is incomplete"
        )));
    }
    copied.map_err(|e| CliError::failure(format!("writing the backup to {path}: {e}")))?;
    output.finish()?;
    report.path = PathBuf::from(if path == "stdout" { "-" } else { &path });
    Ok(report)
}

/// Creates the backup's directory (owner-only where it is new), as `backup` always has.
fn create_dirs(dir: &Path) -> CliResult {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
        .map_err(|e| CliError::from(e).context(format!("cannot create {}", dir.display())))
}
