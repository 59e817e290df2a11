//! `prismq stats [--watch]`: tasks by type and status, and the oldest eligible task.

use std::time::Duration;

use serde_json::json;

use prismq_app::App;
use prismq_domain::ports::QueueStats;
use prismq_domain::TaskStatus;

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
        let stats = app.queue.stats().await?;
        let results = app.results.count(None).await?;
        print(ctx, &app, &stats, results)?;
        return Ok(Exit::Ok);
    }
    let shutdown = signals::listen("leaving the watch");
    loop {
        let stats = app.queue.stats().await?;
        let results = app.results.count(None).await?;
        if !ctx.json() {
            // Clear the screen and go home, like watch(1).
            render::print("\x1b[2J\x1b[H")?;
        }
        print(ctx, &app, &stats, results)?;
        tokio::select! {
            () = shutdown.token.cancelled() => return Ok(Exit::Ok),
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

fn print(ctx: &Ctx, app: &App, stats: &QueueStats, results: u64) -> CliResult {
    if ctx.json() {
        // One compact object per line, so --watch --json is a JSONL stream.
        let value = json!({
            "counts": stats.counts,
            "totals": TaskStatus::ALL.iter().map(|s| (s.as_str().to_owned(), json!(stats.total(*s)))).collect::<serde_json::Map<String, serde_json::Value>>(),
            "oldest_eligible": stats.oldest_eligible,
            "results": results,
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
    render::print(&format!(
        "{}\noldest eligible task: {oldest}\nstored results: {}\n",
        t.render(),
        render::count(i64::try_from(results).unwrap_or(i64::MAX))
    ))
}
