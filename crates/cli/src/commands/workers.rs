//! `prismq workers`: every registered worker loop with its health, current task, counters
//! and the task types its process holds back (circuit breaker open, quota spent).

use std::time::Duration;

use clap::Args;
use serde::Serialize;

use prismq_domain::ports::{HoldReason, WorkerHealth, WorkerRecord};
use prismq_domain::{TaskType, Timestamp};

use super::parse;
use crate::context::Ctx;
use crate::exit::CliResult;
use crate::render::{self, Table};

/// `prismq workers`.
#[derive(Debug, Args)]
pub struct WorkersArgs {
    /// `prune`: remove stopped and stale workers.
    #[command(subcommand)]
    pub action: Option<crate::commands::workers_prune::WorkersCommand>,
    /// A worker silent for longer than this is shown as stale (default: 3 heartbeats).
    #[arg(long, value_name = "DURATION")]
    pub stale_after: Option<String>,
}

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
/// nothing), one per type and cause (breakers of several processes are one entry with the
/// largest failure count), ordered by type.
pub fn held_back(workers: &[WorkerRecord]) -> Vec<HeldBack> {
    let mut out: Vec<HeldBack> = Vec::new();
    for w in workers.iter().filter(|w| w.health != WorkerHealth::Stopped) {
        let process = format!("{}-{}", w.info.hostname, w.info.pid);
        for h in &w.heartbeat.held {
            match out
                .iter_mut()
                .find(|o| o.task_type == h.task_type && same_kind(&o.reason, &h.reason))
            {
                Some(o) => {
                    if let (
                        HoldReason::Breaker { failures: a },
                        HoldReason::Breaker { failures: b },
                    ) = (&mut o.reason, &h.reason)
                    {
                        *a = (*a).max(*b);
                    }
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

/// Two holds of one type for the same cause: breakers (whatever their failure counts; the
/// largest is shown), or the same quota bucket.
fn same_kind(a: &HoldReason, b: &HoldReason) -> bool {
    match (a, b) {
        (HoldReason::Breaker { .. }, HoldReason::Breaker { .. }) => true,
        (HoldReason::Quota { bucket: x }, HoldReason::Quota { bucket: y }) => x == y,
        _ => false,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use prismq_domain::ports::{Heartbeat, HeldType, WorkerInfo};
    use prismq_domain::{ClaimingStrategy, WorkerId};

    fn record(host: &str, pid: u32, health: WorkerHealth, held: Vec<HeldType>) -> WorkerRecord {
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        WorkerRecord {
            info: WorkerInfo {
                id: WorkerId::new(format!("{host}-{pid}-0")).unwrap(),
                hostname: host.into(),
                pid,
                capabilities: Vec::new(),
                strategy: ClaimingStrategy::Fifo,
            },
            started_at: t0,
            heartbeat_at: t0,
            heartbeat: Heartbeat {
                held,
                ..Heartbeat::default()
            },
            health,
        }
    }

    fn breaker(t: &str, failures: u32, until: Option<i64>) -> HeldType {
        HeldType {
            task_type: TaskType::new(t).unwrap(),
            until: until.map(|s| Timestamp::from_second(s).unwrap()),
            reason: HoldReason::Breaker { failures },
        }
    }

    #[test]
    fn holds_merge_by_type_and_cause_across_processes() {
        let quota = HeldType {
            task_type: TaskType::new("keyword_search").unwrap(),
            until: Some(Timestamp::from_second(1_800_003_600).unwrap()),
            reason: HoldReason::Quota {
                bucket: "b.search".into(),
            },
        };
        let workers = vec![
            record(
                "a",
                1,
                WorkerHealth::Active,
                vec![breaker("feed", 5, Some(1_800_000_030))],
            ),
            // Another loop of the same process: the process is named once.
            record(
                "a",
                1,
                WorkerHealth::Active,
                vec![breaker("feed", 5, Some(1_800_000_030))],
            ),
            record(
                "b",
                2,
                WorkerHealth::Stale,
                vec![breaker("feed", 7, Some(1_800_000_090)), quota.clone()],
            ),
            // A stopped worker holds nothing, whatever it last said.
            record(
                "c",
                3,
                WorkerHealth::Stopped,
                vec![breaker("other", 9, None)],
            ),
        ];
        let held = held_back(&workers);
        assert_eq!(held.len(), 2, "{held:?}");
        assert_eq!(held[0].task_type.as_str(), "feed");
        assert_eq!(held[0].reason, HoldReason::Breaker { failures: 7 });
        assert_eq!(
            held[0].until,
            Some(Timestamp::from_second(1_800_000_090).unwrap())
        );
        assert_eq!(held[0].processes, vec!["a-1", "b-2"]);
        assert_eq!(held[1].reason, quota.reason);
        // One process waiting for its probe: no known end for the type.
        let probing = vec![
            record(
                "a",
                1,
                WorkerHealth::Active,
                vec![breaker("feed", 5, Some(1_800_000_030))],
            ),
            record("b", 2, WorkerHealth::Active, vec![breaker("feed", 6, None)]),
        ];
        assert_eq!(held_back(&probing)[0].until, None);
        let text = held_section(&probing);
        assert!(
            text.contains("feed until a probe succeeds: circuit breaker open after 6 consecutive transient failures (by a-1, b-2)"),
            "{text}"
        );
        assert_eq!(held_section(&workers[3..]), "held back: none\n");
    }
}
