//! `prismq workers`: every registered worker loop with its health, current task, counters
//! and the task types its process holds back (circuit breaker open, quota spent).

use std::time::Duration;

use serde::Serialize;

use prismq_domain::ports::{HoldReason, WorkerHealth, WorkerRecord};
use prismq_domain::{TaskType, Timestamp};

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
        "HELD",
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
            held_types(w),
        ]);
    }
    render::print(&format!("{}{}", t.render(), held_section(&list)))
}

/// The types a worker's process holds back, comma-separated, or `-`.
fn held_types(w: &WorkerRecord) -> String {
    if w.heartbeat.held.is_empty() {
        return "-".to_owned();
    }
    w.heartbeat
        .held
        .iter()
        .map(|h| h.task_type.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// One task type held back by one or more worker processes, for `stats` and `workers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldBack {
    /// The type.
    pub task_type: TaskType,
    /// The latest end of the hold among the processes (`None`: a breaker waiting for its
    /// probe).
    pub until: Option<Timestamp>,
    /// Why.
    #[serde(flatten)]
    pub reason: HoldReason,
    /// The processes (`hostname-pid`) holding it.
    pub processes: Vec<String>,
}

/// The holds of the workers still running (active or stale: a stopped worker holds
/// nothing), one per type and reason, ordered by type.
pub fn held_back(workers: &[WorkerRecord]) -> Vec<HeldBack> {
    let mut out: Vec<HeldBack> = Vec::new();
    for w in workers.iter().filter(|w| w.health != WorkerHealth::Stopped) {
        let process = format!("{}-{}", w.info.hostname, w.info.pid);
        for h in &w.heartbeat.held {
            match out
                .iter_mut()
                .find(|o| o.task_type == h.task_type && o.reason == h.reason)
            {
                Some(o) => {
                    o.until = match (o.until, h.until) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        _ => None,
                    };
                    if !o.processes.contains(&process) {
                        o.processes.push(process.clone());
                    }
                }
                None => out.push(HeldBack {
                    task_type: h.task_type.clone(),
                    until: h.until,
                    reason: h.reason.clone(),
                    processes: vec![process.clone()],
                }),
            }
        }
    }
    out.sort_by(|a, b| a.task_type.cmp(&b.task_type));
    out
}

/// "held back: none", or one indented line per held type: the type, until when, why and by
/// which processes.
pub fn held_section(workers: &[WorkerRecord]) -> String {
    let held = held_back(workers);
    if held.is_empty() {
        return "held back: none\n".to_owned();
    }
    let mut text = "held back (not claimed for now):\n".to_owned();
    for h in held {
        let until = h.until.map_or_else(
            || "until a probe succeeds".to_owned(),
            |u| format!("until {}", render::time(u)),
        );
        text.push_str(&format!(
            "  {} {until}: {} (by {})\n",
            h.task_type,
            h.reason,
            h.processes.join(", ")
        ));
    }
    text
}
