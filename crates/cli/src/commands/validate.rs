//! `prismq validate [--quick]`: the eight infrastructure checks (configuration, database,
//! schema integrity, PRAGMAs, round trip, transaction isolation, index usage, error
//! handling), each pass / warn / fail / skip with a reason, and a short benchmark. Exits 1
//! when any check fails. It runs before the configuration is loaded, so that a broken
//! configuration is reported as check 1 rather than stopping the command.

use clap::Args;

use prismq_domain::ports::validation::{Outcome, ValidateOptions, ValidationReport};

use crate::context::load_options;
use crate::exit::{CliResult, Exit};
use crate::global_args::GlobalArgs;
use crate::render;

/// `prismq validate`.
#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// `quick_check` instead of the full `integrity_check`, and a smaller benchmark.
    #[arg(long)]
    pub quick: bool,
    /// Skip the benchmark.
    #[arg(long)]
    pub no_benchmark: bool,
}

/// Runs `validate`; the exit code is 1 when any check failed.
///
/// # Errors
/// stdout cannot be written.
pub fn run(global: &GlobalArgs, args: &ValidateArgs) -> CliResult<Exit> {
    let mut options = ValidateOptions::new(args.quick);
    options.benchmark = !args.no_benchmark;
    let report = prismq_app::ops::validate(&load_options(global), &options);
    if global.json {
        render::json(&report)?;
    } else {
        render::print(&text(&report, global.verbose > 0))?;
    }
    Ok(if report.passed() {
        Exit::Ok
    } else {
        Exit::Failure
    })
}

/// The report for people: one line per check, details of the ones that did not pass (of
/// all with `verbose`), the benchmark and a summary.
pub fn text(report: &ValidationReport, verbose: bool) -> String {
    let mut out = String::new();
    if !report.database.as_os_str().is_empty() {
        out.push_str(&format!("database: {}\n", report.database.display()));
    }
    for c in &report.checks {
        out.push_str(&format!(
            "{} {:<22} {:<4}  {}\n",
            c.number,
            c.name,
            c.outcome.as_str(),
            c.reason
        ));
        if verbose || !matches!(c.outcome, Outcome::Pass | Outcome::Skip) {
            for d in &c.details {
                out.push_str(&format!("      {d}\n"));
            }
        }
    }
    if let Some(b) = &report.benchmark {
        out.push_str(&format!(
            "benchmark ({} tasks, one transaction each): {:.0} enqueues/s, {:.0} claims/s, {:.0} completes/s\n",
            b.tasks, b.inserts_per_sec, b.claims_per_sec, b.completes_per_sec
        ));
    }
    if let Some(e) = &report.benchmark_error {
        out.push_str(&format!("benchmark not run: {e}\n"));
    }
    let n = |o: Outcome| report.checks.iter().filter(|c| c.outcome == o).count();
    out.push_str(&format!(
        "{} passed, {} warnings, {} failed, {} skipped\n",
        n(Outcome::Pass),
        n(Outcome::Warn),
        n(Outcome::Fail),
        n(Outcome::Skip)
    ));
    out
}
