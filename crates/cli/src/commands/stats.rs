//! `prismq stats [--watch]`: tasks by type and status, the oldest eligible task, throughput
//! and failure rate, the dead-letter count, workers by health, quota used per bucket, and
//! the task types running workers hold back (circuit breaker open, quota spent).

use std::time::Duration;

use serde_json::json;

use prismq_app::overview::health_name;
use prismq_app::App;
use prismq_domain::ports::{QueueStats, QuotaUsage, WorkerHealth, WorkerRecord};
use prismq_domain::TaskStatus;

use super::workers::{held_back, held_section};
use crate::args::StatsArgs;
use crate::context::Ctx;
use crate::exit::{CliResult, Exit};
use crate::render::{self, Table};
use crate::signals;

/// Runs `stats`.
///
/// # Errors
/// Store errors.
pub async fn run(ctx: &Ctx, args: StatsArgs) -> CliResult<Exit> {
    ctx.require_db()?;
    let app = ctx.store_app()?;
    if !args.watch {
        print(ctx, &app, &Snapshot::take(&app).await?)?;
        return Ok(Exit::Ok);
    }
    let shutdown = signals::listen("leaving the watch");
    loop {
        let snapshot = Snapshot::take(&app).await?;
        if !ctx.json() {
            // Clear the screen and go home, like watch(1).
            render::print("\x1b[2J\x1b[H")?;
        }
        print(ctx, &app, &snapshot)?;
        if render::stdout_closed() {
            // The reader went away (`| head -1`): the watch has nobody left to show.
            return Ok(Exit::Ok);
        }
        tokio::select! {
            () = shutdown.token.cancelled() => return Ok(Exit::Ok),
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

/// Everything one screen shows, read together.
struct Snapshot {
    stats: QueueStats,
    results: u64,
    workers: Vec<WorkerRecord>,
    quota: Vec<QuotaUsage>,
    by_health: [(WorkerHealth, usize); 3],
    /// Each schedule's next fire time and last result (JSON, text).
    schedules: (serde_json::Value, String),
}

impl Snapshot {
    async fn take(app: &App) -> CliResult<Snapshot> {
        // The shared computation (prismq_app::overview), as the dashboard reads it.
        let o = app.overview().await?;
        let by_health = o.workers_by_health();
        Ok(Snapshot {
            stats: o.stats,
            results: o.results,
            workers: o.workers,
            quota: o.quota,
            by_health,
            schedules: super::schedule::stats_section(app).await?,
        })
    }

    fn workers_by_health(&self) -> [(WorkerHealth, usize); 3] {
        self.by_health
    }
}

fn print(ctx: &Ctx, app: &App, snapshot: &Snapshot) -> CliResult {
    let stats = &snapshot.stats;
    let results = snapshot.results;
    let r = stats.recent;
    if ctx.json() {
        // One compact object per line, so --watch --json is a JSONL stream.
        let value = json!({
            "counts": stats.counts,
            "totals": TaskStatus::ALL.iter().map(|s| (s.as_str().to_owned(), json!(stats.total(*s)))).collect::<serde_json::Map<String, serde_json::Value>>(),
            "oldest_eligible": stats.oldest_eligible,
            "recent": r,
            "failure_rate_last_hour": r.failure_rate(),
            "dead_letters": stats.total(TaskStatus::Failed),
            "workers": snapshot.workers_by_health().iter().map(|(h, n)| (health_name(*h).to_owned(), json!(n))).collect::<serde_json::Map<String, serde_json::Value>>(),
            "quota": snapshot.quota,
            "held_back": held_back(&snapshot.workers),
            "results": results,
            "schedules": snapshot.schedules.0,
        });
        return render::print(&format!("{value}\n"));
    }
    let mut types: Vec<String> = stats
        .counts
        .iter()
        .map(|c| c.task_type.to_string())
        .collect();
    types.dedup();
    let mut headers = vec!["TYPE"];
    headers.extend(TaskStatus::ALL.iter().map(|s| s.as_str()));
    let mut t = Table::new(&headers).right_align(&[1, 2, 3, 4, 5, 6]);
    let cell = |ty: Option<&str>, s: TaskStatus| -> String {
        stats
            .counts
            .iter()
            .filter(|c| c.status == s && ty.is_none_or(|ty| c.task_type.as_str() == ty))
            .map(|c| c.count)
            .sum::<u64>()
            .to_string()
    };
    for ty in &types {
        let mut row = vec![ty.clone()];
        row.extend(TaskStatus::ALL.iter().map(|s| cell(Some(ty), *s)));
        t.row(row);
    }
    let mut total = vec!["(all)".to_owned()];
    total.extend(TaskStatus::ALL.iter().map(|s| cell(None, *s)));
    t.row(total);
    let oldest = stats.oldest_eligible.map_or_else(
        || "none".to_owned(),
        |at| {
            let wait = app.clock.now().duration_since(at);
            format!("{} (waiting {}s)", render::time(at), wait.as_secs().max(0))
        },
    );
    let workers = snapshot
        .workers_by_health()
        .iter()
        .map(|(h, n)| format!("{n} {}", health_name(*h)))
        .collect::<Vec<_>>()
        .join(", ");
    let quota = if snapshot.quota.is_empty() {
        "none used".to_owned()
    } else {
        snapshot
            .quota
            .iter()
            .map(|q| {
                let mark = q.exhausted_until.map_or(String::new(), |u| {
                    format!(", exhausted until {}", render::time(u))
                });
                format!(
                    "{} {} used (window ends {}{mark})",
                    q.bucket,
                    q.used,
                    render::time(q.window_end)
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    render::print(&format!(
        "{}\noldest eligible task: {oldest}\nthroughput: {} completed in the last minute, {} in the last hour\nfailure rate (last hour): {:.1}% ({} dead-lettered)\ndead letters: {}\nworkers: {workers}\nquota: {quota}\n{}{}stored results: {}\n",
        t.render(),
        r.completed_last_minute,
        r.completed_last_hour,
        r.failure_rate() * 100.0,
        r.failed_last_hour,
        stats.total(TaskStatus::Failed),
        held_section(&snapshot.workers),
        snapshot.schedules.1,
        render::count(i64::try_from(results).unwrap_or(i64::MAX))
    ))
}
