//! `prismq collect …`: the one-shot main job. Enqueues one task, runs a worker loop in this
//! process that claims that task and no other (`ClaimFilter::only`) until it is finished,
//! then prints what it found. Other queued tasks, of its type or any other, stay for
//! `prismq work`, even while the collected one waits out a retry backoff.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use prismq_app::config::YoutubeBackend;
use prismq_app::{App, RunOptions, WorkerSettings};
use prismq_domain::ports::{ResultQuery, StoredResult};
use prismq_domain::{ClaimingStrategy, Task, TaskId, TaskStatus, Timestamp};

use super::{enqueue, results};
use crate::args::{CollectArgs, CollectKind, TaskKind};
use crate::context::Ctx;
use crate::exit::{CliError, CliResult, Exit};
use crate::progress;
use crate::render;
use crate::signals;

/// Runs `collect`.
///
/// # Errors
/// No usable YouTube source (exit 5), invalid input (exit 2), the task failing (exit 1).
pub async fn run(ctx: &Ctx, args: CollectArgs) -> CliResult<Exit> {
    let app = ctx.app()?;
    preflight(&app, &args.kind)?;
    let kind = TaskKind::from(args.kind);
    let start = app.clock.now();
    let task = enqueue::build(&kind, start)?;
    let task_type = task.task_type.clone();
    let enqueued = app.enqueue(task).await?;
    let id = enqueued.id;
    if enqueued.duplicate && !ctx.json() {
        eprintln!("task {id} already exists for this idempotency key; waiting for it");
    }
    let shutdown = signals::listen("the collected task is released and stays queued");
    let mut settings = WorkerSettings::from_config(&app.config.worker);
    settings.concurrency = 1;
    settings.strategy = ClaimingStrategy::Lifo;
    settings.task_types = vec![task_type];
    settings.only_task = Some(id);
    let status = progress::status(ctx, &format!("task {id}: queued"));
    let stop = shutdown.token.child_token();
    let watcher = tokio::spawn(watch(app.clone(), id, stop.clone(), status.clone()));
    let run = app
        .runtime_with(settings)
        .run(RunOptions::default(), stop.clone())
        .await;
    stop.cancel();
    let _ = watcher.await;
    status.finish_and_clear();
    run?;
    let task = app.queue.get(id).await?;
    if shutdown.signalled() && task.status != TaskStatus::Completed {
        return Err(CliError::new(
            Exit::Interrupted,
            format!(
                "interrupted; task {id} is {} and will be finished by the next `prismq work`",
                task.status
            ),
        ));
    }
    match task.status {
        TaskStatus::Completed => {
            let items = found(&app, id, start, args.limit).await?;
            print(ctx, &task, &items)?;
            Ok(Exit::Ok)
        }
        status => Err(CliError::failure(format!(
            "task {id} {status}: {}",
            task.last_error
                .as_deref()
                .unwrap_or("no error was recorded")
        ))),
    }
}

/// Polls the task until it is final, showing its state, then stops the run.
async fn watch(
    app: App,
    id: TaskId,
    stop: tokio_util::sync::CancellationToken,
    bar: indicatif::ProgressBar,
) {
    loop {
        if let Ok(t) = app.queue.get(id).await {
            if t.status.is_final() {
                stop.cancel();
                return;
            }
            let mut line = format!(
                "task {id}: {} (attempt {} of {})",
                t.status, t.attempts, t.max_attempts
            );
            if let Some(e) = &t.last_error {
                line.push_str(&format!("; last error: {}", render::cut(e, 80)));
            }
            bar.set_message(line);
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

/// The items the task saved: results seen since it started whose last task is it.
async fn found(
    app: &App,
    id: TaskId,
    since: Timestamp,
    limit: Option<u32>,
) -> CliResult<Vec<StoredResult>> {
    let mut q = ResultQuery {
        since: Some(
            since
                .checked_sub(jiff::SignedDuration::from_secs(1))
                .unwrap_or(since),
        ),
        limit: 1000,
        ..ResultQuery::default()
    };
    let mut out = Vec::new();
    loop {
        let page = app.results.query(&q).await?;
        out.extend(page.iter().filter(|r| r.last_task_id == Some(id)).cloned());
        if page.len() < q.limit as usize {
            break;
        }
        q.offset += u64::from(q.limit);
    }
    if let Some(n) = limit {
        out.truncate(n as usize);
    }
    Ok(out)
}

fn print(ctx: &Ctx, task: &Task, items: &[StoredResult]) -> CliResult {
    if ctx.json() {
        return render::json(&json!({ "task": task, "results": items }));
    }
    let summary = task
        .summary
        .as_ref()
        .and_then(|s| s.get("summary"))
        .and_then(|s| s.as_str())
        .unwrap_or("done");
    let mut text = format!("task {} completed: {summary}\n", task.id);
    if items.is_empty() {
        text.push_str("no videos found\n");
    } else {
        text.push('\n');
        text.push_str(&results::table(items).render());
    }
    render::print(&text)
}

/// Refuses to start when no YouTube source can run the task, saying what to set or install.
fn preflight(app: &App, kind: &CollectKind) -> CliResult {
    let y = &app.config.youtube;
    if y.api_key.is_some() {
        return Ok(());
    }
    const KEY: &str = "set YOUTUBE_API_KEY to a YouTube Data API v3 key (Google Cloud console → APIs & Services → Credentials)";
    if matches!(kind, CollectKind::Trending(_)) {
        return Err(CliError::new(
            Exit::Config,
            format!("trending needs the YouTube Data API and no API key is configured: {KEY}"),
        ));
    }
    if y.backend != YoutubeBackend::Api && find_program(&y.ytdlp_path).is_none() {
        return Err(CliError::new(
            Exit::Config,
            format!(
                "no YouTube source is available: {KEY}, or install yt-dlp (`pipx install yt-dlp`, or see https://github.com/yt-dlp/yt-dlp#installation) so that `{}` is on PATH, or set youtube.ytdlp_path to its location",
                y.ytdlp_path.display()
            ),
        ));
    }
    Ok(())
}

/// `program` as a path, or looked up on PATH (with Windows' executable extensions).
fn find_program(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_path_buf());
    }
    let exts: Vec<String> = if cfg!(windows) {
        std::env::var("PATHEXT")
            .unwrap_or_else(|_| ".EXE;.CMD;.BAT".into())
            .split(';')
            .map(str::to_owned)
            .chain(std::iter::once(String::new()))
            .collect()
    } else {
        vec![String::new()]
    };
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find_map(|dir| {
        exts.iter().find_map(|ext| {
            let mut name = program.as_os_str().to_owned();
            name.push(ext);
            let candidate = dir.join(name);
            candidate.is_file().then_some(candidate)
        })
    })
}
