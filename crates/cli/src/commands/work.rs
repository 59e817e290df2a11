//! `prismq work`: runs the app's worker runtime with the flags' settings until a signal (or
//! the drain / max-tasks mode) ends it, with a live status line on a terminal and plain log
//! lines otherwise, then prints the run report.

use std::time::{Duration, Instant};

use serde_json::json;

use prismq_app::{App, RunOptions, RunReport, WorkerSettings};
use prismq_domain::ports::QueueStats;
use prismq_domain::{ClaimingStrategy, TaskStatus};

use super::parse;
use crate::args::WorkArgs;
use crate::context::Ctx;
use crate::exit::{CliError, CliResult, Exit};
use crate::progress;
use crate::render::{self, Table};
use crate::signals;

/// Runs `work`.
///
/// # Errors
/// Invalid flags (exit 2), the runtime's set-up or store errors.
pub async fn run(ctx: &Ctx, args: WorkArgs) -> CliResult<Exit> {
    let app = ctx.app()?;
    let settings = settings(&app, &args)?;
    let options = RunOptions {
        drain: args.drain,
        max_tasks: args.max_tasks,
    };
    let shutdown = signals::listen("no new claims; in-flight tasks get the shutdown grace");
    let runtime = app.runtime_with(settings.clone());
    let started = Instant::now();
    let status = ctx.interactive().then(|| live_status(ctx, &app, started));
    let result = runtime.run(options, shutdown.token.clone()).await;
    if let Some((bar, handle)) = status {
        handle.abort();
        bar.finish_and_clear();
    }
    let report = result?;
    print_report(ctx, &report, started.elapsed(), shutdown.signalled())?;
    Ok(Exit::Ok)
}

/// The most worker loops one process runs (the range of `worker.concurrency`).
const MAX_CONCURRENCY: usize = 1024;

/// The worker settings from configuration with the flags applied.
///
/// # Errors
/// An unknown strategy, a malformed task type, concurrency 0.
pub fn settings(app: &App, args: &WorkArgs) -> CliResult<WorkerSettings> {
    let mut s = WorkerSettings::from_config(&app.config.worker);
    if let Some(c) = args.concurrency {
        if c == 0 {
            return Err(CliError::usage(
                "invalid concurrency: 0 worker loops would never run a task; accepted: 1 or more",
            ));
        }
        if c > MAX_CONCURRENCY {
            return Err(CliError::usage(format!(
                "invalid concurrency: {c} is out of range; accepted: 1 to {MAX_CONCURRENCY} (as worker.concurrency)"
            )));
        }
        s.concurrency = c;
    }
    if let Some(st) = &args.strategy {
        s.strategy = st.parse::<ClaimingStrategy>()?;
    }
    if !args.types.is_empty() {
        s.task_types = args
            .types
            .iter()
            .map(|t| parse::task_type(t.trim()))
            .collect::<CliResult<_>>()?;
    }
    Ok(s)
}

type Status = (indicatif::ProgressBar, tokio::task::JoinHandle<()>);

/// A status line refreshed from the queue's stats every half second.
fn live_status(ctx: &Ctx, app: &App, started: Instant) -> Status {
    let bar = progress::status(ctx, "starting");
    let queue = app.queue.clone();
    let line = bar.clone();
    let handle = tokio::spawn(async move {
        let mut base: Option<(u64, u64)> = None;
        loop {
            if let Ok(stats) = queue.stats().await {
                let done = (
                    stats.total(TaskStatus::Completed),
                    stats.total(TaskStatus::Failed),
                );
                let (c0, f0) = *base.get_or_insert(done);
                line.set_message(status_text(
                    &stats,
                    done.0 - c0.min(done.0),
                    done.1 - f0.min(done.1),
                    started.elapsed(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    (bar, handle)
}

fn status_text(stats: &QueueStats, completed: u64, failed: u64, elapsed: Duration) -> String {
    let rate = completed as f64 / elapsed.as_secs_f64().max(0.001);
    format!(
        "queued {} · running {} · completed {completed} · failed {failed} · {rate:.1}/s",
        stats.total(TaskStatus::Queued),
        stats.total(TaskStatus::Claimed) + stats.total(TaskStatus::Running),
    )
}

/// Prints the run's counts.
///
/// # Errors
/// stdout is closed.
pub fn print_report(ctx: &Ctx, r: &RunReport, elapsed: Duration, signalled: bool) -> CliResult {
    if ctx.json() {
        return render::json(&json!({
            "report": r,
            "elapsed_ms": u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            "stopped_by_signal": signalled,
        }));
    }
    let mut t = Table::new(&[
        "CLAIMED",
        "COMPLETED",
        "FAILED",
        "RETRIED",
        "DEFERRED",
        "RELEASED",
        "LOST",
    ]);
    t.row(
        [
            r.claimed,
            r.completed,
            r.failed,
            r.retried,
            r.deferred,
            r.released,
            r.lost,
        ]
        .iter()
        .map(ToString::to_string)
        .collect(),
    );
    let how = if signalled {
        "stopped by signal"
    } else {
        "finished"
    };
    render::print(&format!(
        "{how} after {:.1}s\n{}",
        elapsed.as_secs_f64(),
        t.render()
    ))
}
