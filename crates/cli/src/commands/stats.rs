//! `prismq stats [--watch]`: tasks by type and status, the oldest eligible task, throughput
//! and failure rate, the dead-letter count, workers by health, quota per bucket (used, the
//! configured daily limit, what is left, the next reset), the task types running workers
//! hold back (circuit breaker open, quota spent), and the schedules waiting for quota.

use std::time::Duration;

use clap::Args;
use serde_json::json;

use prismq_app::overview::health_name;
use prismq_app::App;
use prismq_domain::ports::{QueueStats, QuotaUsage, WorkerHealth, WorkerRecord};
use prismq_domain::{TaskStatus, Timestamp};

use super::workers::{held_back, held_section};
use crate::context::Ctx;
use crate::exit::{CliResult, Exit};
use crate::render::{self, Table};
use crate::signals;

/// `prismq stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Refresh every 2 seconds until interrupted.
    #[arg(long)]
    pub watch: bool,
}

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
    /// Every bucket: used, limit, left, reset.
    buckets: Vec<BucketRow>,
    /// The schedules whose task waits for a spent bucket.
    waiting: Vec<Waiting>,
}

/// One quota bucket as `stats` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
struct BucketRow {
    bucket: String,
    used: u64,
    /// The configured daily limit; `None` for a bucket no configured plugin names.
    limit: Option<u64>,
    /// Units left today (0 while the bucket is marked exhausted).
    left: Option<u64>,
    /// When the bucket's day resets.
    resets_at: Timestamp,
    /// While marked exhausted: until when.
    exhausted_until: Option<Timestamp>,
    /// Spent: marked exhausted, or nothing left.
    spent: bool,
}

/// A schedule held back by a spent bucket.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
struct Waiting {
    name: String,
    task_type: String,
    bucket: String,
    until: Timestamp,
    last_task: Option<i64>,
    last_status: Option<String>,
}

/// Each bucket the plugins charge or the ledger holds, with its limit, what is left and its
/// reset, in name order.
fn bucket_rows(app: &App, usage: &[QuotaUsage]) -> Vec<BucketRow> {
    let now = app.clock.now();
    let limits = prismq_app::wiring::quota_limits(&app.config, now);
    let mut names: Vec<&str> = limits.iter().map(|l| l.bucket.as_str()).collect();
    names.extend(usage.iter().map(|u| u.bucket.as_str()));
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let u = usage.iter().find(|u| u.bucket == name);
            let l = limits.iter().find(|l| l.bucket == name);
            let used = u.map_or(0, |u| u.used);
            let exhausted_until = u.and_then(|u| u.exhausted_until);
            let limit = l.map(|l| l.limit);
            let left = limit.map(|l| {
                if exhausted_until.is_some() {
                    0
                } else {
                    l.saturating_sub(used)
                }
            });
            let window_open = u.map(|u| u.window_end).filter(|end| *end > now);
            let resets_at = window_open.or(l.map(|l| l.resets_at)).unwrap_or(now);
            BucketRow {
                bucket: name.to_owned(),
                used,
                limit,
                left,
                resets_at,
                exhausted_until,
                spent: exhausted_until.is_some() || left == Some(0),
            }
        })
        .collect()
}

/// The unpaused schedules whose type charges a spent bucket and whose task waits: the last
/// one is still queued, or the next slot has come.
async fn waiting_for_quota(app: &App, buckets: &[BucketRow]) -> CliResult<Vec<Waiting>> {
    let spent: Vec<&BucketRow> = buckets.iter().filter(|b| b.spent).collect();
    if spent.is_empty() {
        return Ok(Vec::new());
    }
    let Some(by_type) = app.quota_buckets_by_type() else {
        return Ok(Vec::new());
    };
    let now = app.clock.now();
    let mut out = Vec::new();
    for s in app.schedules.list_schedules().await? {
        if s.paused {
            continue;
        }
        let Some(b) = by_type
            .get(s.task_type.as_str())
            .and_then(|names| spent.iter().find(|b| names.contains(&b.bucket)))
        else {
            continue;
        };
        let last_status = match s.last_task {
            Some(id) => match app.queue.get(id).await {
                Ok(t) => Some(t.status),
                Err(prismq_domain::PortError::NotFound(_)) => None,
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        if last_status != Some(TaskStatus::Queued) && s.next_slot > now {
            continue;
        }
        out.push(Waiting {
            name: s.name.clone(),
            task_type: s.task_type.to_string(),
            bucket: b.bucket.clone(),
            until: b.exhausted_until.unwrap_or(b.resets_at),
            last_task: s.last_task.map(|t| t.0),
            last_status: last_status.map(|st| st.to_string()),
        });
    }
    Ok(out)
}

fn quota_text(snapshot: &Snapshot) -> String {
    let mut text = String::from("quota (per day):\n");
    for b in &snapshot.buckets {
        let limit = b
            .limit
            .map_or_else(|| "no configured limit".to_owned(), |l| format!("of {l}"));
        let left = b.left.map_or(String::new(), |l| format!(", {l} left"));
        let mark = b.exhausted_until.map_or(String::new(), |u| {
            format!(", exhausted until {}", render::time(u))
        });
        text.push_str(&format!(
            "  {}: {} used {limit}{left}{mark}, resets {}\n",
            b.bucket,
            b.used,
            render::time(b.resets_at)
        ));
    }
    if snapshot.waiting.is_empty() {
        text.push_str("waiting for quota: none\n");
    } else {
        text.push_str("waiting for quota:\n");
        for w in &snapshot.waiting {
            let last = match (w.last_task, &w.last_status) {
                (Some(id), Some(st)) => format!("; last task {id} {st}"),
                _ => String::new(),
            };
            text.push_str(&format!(
                "  {} ({}): {} spent until {}{last}\n",
                render::cut(&w.name, 64),
                w.task_type,
                w.bucket,
                render::time(w.until)
            ));
        }
    }
    text
}

impl Snapshot {
    async fn take(app: &App) -> CliResult<Snapshot> {
        // The shared computation (prismq_app::overview), as the dashboard reads it.
        let o = app.overview().await?;
        let by_health = o.workers_by_health();
        let buckets = bucket_rows(app, &o.quota);
        let waiting = waiting_for_quota(app, &buckets).await?;
        Ok(Snapshot {
            stats: o.stats,
            results: o.results,
            workers: o.workers,
            quota: o.quota,
            by_health,
            schedules: super::schedule::stats_section(app).await?,
            buckets,
            waiting,
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
            "quota_buckets": snapshot.buckets,
            "waiting_for_quota": snapshot.waiting,
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
    let quota = quota_text(snapshot);
    render::print(&format!(
        "{}\noldest eligible task: {oldest}\nthroughput: {} completed in the last minute, {} in the last hour\nfailure rate (last hour): {:.1}% ({} dead-lettered)\ndead letters: {}\nworkers: {workers}\n{quota}{}{}stored results: {}\n",
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
