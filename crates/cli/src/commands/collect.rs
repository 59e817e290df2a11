//! `prismq collect …`: the one-shot main job. Enqueues one task, runs a worker loop in this
//! process that claims that task and no other (`ClaimFilter::only`) until it is finished,
//! then prints what it found. Other queued tasks, of its type or any other, stay for
//! `prismq work`, even while the collected one waits out a retry backoff.
//!
//! It refuses a `--region` its own worker does not serve (the task would never be claimed
//! here), and says until when it waits (local time and UTC); with `--no-wait` it leaves a
//! task that is deferred (or scheduled for later) queued and exits 1 instead of waiting.

use std::time::Duration;

use clap::Args;
use jiff::tz::TimeZone;
use serde_json::json;

use prismq_app::{App, RunOptions, WorkerSettings};
use prismq_domain::growth::GrowthWindow;
use prismq_domain::ports::{ResultOrder, ResultQuery, StoredResult, TaskEvent};
use prismq_domain::{ClaimingStrategy, NewTask, Task, TaskId, TaskStatus, TaskType, Timestamp};

use super::forms::{CollectKind, TaskKind};
use super::{enqueue, results};
use crate::commands::results::OrderArg;
use crate::context::Ctx;
use crate::exit::{CliError, CliResult, Exit};
use crate::progress;
use crate::render;
use crate::signals;

/// `prismq collect …`.
#[derive(Debug, Args)]
pub struct CollectArgs {
    /// Show at most this many results (default: all the task found).
    #[arg(long, value_name = "N", global = true)]
    pub limit: Option<u32>,
    /// When the task is deferred (the quota is spent), exit 1 leaving it queued for
    /// `prismq work` instead of waiting until then.
    #[arg(long, global = true)]
    pub no_wait: bool,
    /// Order of the printed table (default: the source's own order, by its RANK column:
    /// chart rank, search rank, newest upload first, or the order the videos were given).
    #[arg(long, value_enum, global = true)]
    pub order: Option<OrderArg>,
    /// What to collect.
    #[command(subcommand)]
    pub kind: CollectKind,
}

/// Runs `collect`.
///
/// # Errors
/// A plugin not ready to run the task (exit 5: a key or tool missing), invalid input (exit 2, also a `--region` its worker
/// does not serve), the task failing, or left queued by `--no-wait` (exit 1).
pub async fn run(ctx: &Ctx, args: CollectArgs) -> CliResult<Exit> {
    let app = ctx.app()?;
    preflight(&app, &args.kind)?;
    let kind = TaskKind::Form(args.kind.0);
    let start = app.clock.now();
    let task = enqueue::build(&kind, start)?;
    check_region(&task, app.config.worker.region.as_deref(), &kind)?;
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
    let watch = Watch {
        app: app.clone(),
        id,
        stop: stop.clone(),
        bar: status.clone(),
        no_wait: args.no_wait,
        notes: !ctx.interactive() && !ctx.global.quiet,
    };
    let watcher = tokio::spawn(watch.run());
    let run = app
        .runtime_with(settings)
        .run(RunOptions::default(), stop.clone())
        .await;
    stop.cancel();
    let deferred = watcher.await.ok().flatten();
    status.finish_and_clear();
    run?;
    let task = app.queue.get(id).await?;
    if let (Some(until), TaskStatus::Queued) = (deferred, task.status) {
        return left_queued(ctx, &app, &task, until, start, args.order, args.limit).await;
    }
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
            let items = found(&app, id, start, args.order, args.limit).await?;
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

/// Why a queued task is not claimable yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Deferred without using an attempt: the quota is spent, or the API said when to retry.
    Deferred,
    /// A failed attempt's retry backoff.
    Retry,
    /// Enqueued for later (`--delay`, `--run-at`).
    Scheduled,
}

impl Wait {
    /// The wait the task's latest event (progress notes aside) explains.
    fn after(event: Option<TaskEvent>) -> Wait {
        match event {
            Some(TaskEvent::Deferred) => Wait::Deferred,
            Some(TaskEvent::Retried) => Wait::Retry,
            _ => Wait::Scheduled,
        }
    }

    /// `--no-wait` leaves the task queued rather than wait this out (a retry backoff lasts at
    /// most `retry.cap` and is part of running the task).
    fn is_left_by_no_wait(self) -> bool {
        self != Wait::Retry
    }
}

/// What the watcher needs: the task, the run to stop, the status line, and the flags.
struct Watch {
    app: App,
    id: TaskId,
    stop: tokio_util::sync::CancellationToken,
    bar: indicatif::ProgressBar,
    /// Stop the run when the task waits for a deferral or its scheduled time.
    no_wait: bool,
    /// Say on stderr (once per wait) what the hidden status line says.
    notes: bool,
}

impl Watch {
    /// Polls the task, showing its state, until it is final (then stops the run and returns
    /// `None`) or, with `--no-wait`, deferred or scheduled for later (then stops the run and
    /// returns until when).
    async fn run(self) -> Option<Timestamp> {
        let tz = TimeZone::system();
        let mut noted = None;
        loop {
            if let Ok(t) = self.app.queue.get(self.id).await {
                if t.status.is_final() {
                    self.stop.cancel();
                    return None;
                }
                let now = self.app.clock.now();
                let wait = if is_waiting(&t, now) {
                    Some(Wait::after(self.last_event().await))
                } else {
                    None
                };
                let line = status_line(&t, now, wait, &tz);
                if let Some(w) = wait.filter(|w| w.is_left_by_no_wait()) {
                    if self.no_wait {
                        self.stop.cancel();
                        return Some(t.run_after);
                    }
                    if self.notes && noted != Some(t.run_after) {
                        let hint = if w == Wait::Deferred {
                            " (Ctrl-C leaves it queued; --no-wait exits instead)"
                        } else {
                            " (Ctrl-C leaves it queued)"
                        };
                        eprintln!("{line}{hint}");
                        noted = Some(t.run_after);
                    }
                }
                self.bar.set_message(line);
            }
            tokio::select! {
                () = self.stop.cancelled() => return None,
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    }

    /// The task's latest logged event, progress notes aside.
    async fn last_event(&self) -> Option<TaskEvent> {
        let log = self.app.logs.list(self.id).await.ok()?;
        log.iter()
            .rev()
            .find(|r| r.event != TaskEvent::Progress)
            .map(|r| r.event)
    }
}

/// Queued, not claimable before a later instant.
fn is_waiting(t: &Task, now: Timestamp) -> bool {
    t.status == TaskStatus::Queued && t.run_after > now
}

/// The status line: the task's state, and while it waits, until when (local time and UTC)
/// and why.
fn status_line(t: &Task, now: Timestamp, wait: Option<Wait>, tz: &TimeZone) -> String {
    let id = t.id;
    let until = || until_text(t.run_after, tz);
    let mut line = match wait.filter(|_| is_waiting(t, now)) {
        Some(Wait::Deferred) => format!("task {id}: deferred, waiting until {}", until()),
        Some(Wait::Retry) => format!(
            "task {id}: attempt {} of {} failed, retrying at {}",
            t.attempts,
            t.max_attempts,
            until()
        ),
        Some(Wait::Scheduled) => format!("task {id}: queued, not before {}", until()),
        None => format!(
            "task {id}: {} (attempt {} of {})",
            t.status, t.attempts, t.max_attempts
        ),
    };
    if let Some(e) = &t.last_error {
        line.push_str(&format!("; last error: {}", render::cut(e, 80)));
    }
    line
}

/// `2026-12-03 00:00:00 PST (2026-12-03 08:00:00 UTC)`: the instant in the local time zone
/// and in UTC (once when they read the same).
fn until_text(t: Timestamp, tz: &TimeZone) -> String {
    let utc = t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string();
    let local = t
        .to_zoned(tz.clone())
        .strftime("%Y-%m-%d %H:%M:%S %Z")
        .to_string();
    if local == utc {
        utc
    } else {
        format!("{local} ({utc})")
    }
}

/// `--no-wait` found the task deferred (or scheduled for later): prints what it saved so far
/// (`--json`: the task, its results and `waiting_until`) and exits 1 saying until when it
/// stays queued.
async fn left_queued(
    ctx: &Ctx,
    app: &App,
    task: &Task,
    until: Timestamp,
    start: Timestamp,
    order: Option<OrderArg>,
    limit: Option<u32>,
) -> CliResult<Exit> {
    let id = task.id;
    let items = found(app, id, start, order, limit).await?;
    if ctx.json() {
        render::json(&json!({ "task": task, "results": items, "waiting_until": until }))?;
    } else if !items.is_empty() {
        let mut text = format!("task {id} saved before it was deferred:\n\n");
        text.push_str(&results::table(&items, true, GrowthWindow::Day).render());
        render::print(&text)?;
    }
    let why = task
        .last_error
        .as_deref()
        .map(|e| format!(" ({})", render::cut(e, 200)))
        .unwrap_or_default();
    Err(CliError::failure(format!(
        "task {id} {} until {}{why}; it stays queued (--no-wait) and `prismq work` runs it then; see `prismq tasks show {id}`",
        if task.attempts == 0 && task.last_error.is_none() {
            "is not due"
        } else {
            "is deferred"
        },
        until_text(until, &TimeZone::system())
    )))
}

/// Refuses a `--region` that collect's own worker does not serve: the task would wait
/// forever for a worker of that region. `--country` is the chart's or search's region.
fn check_region(task: &NewTask, served: Option<&str>, kind: &TaskKind) -> CliResult {
    let Some(wanted) = task.compatibility.region.as_deref() else {
        return Ok(());
    };
    if served == Some(wanted) {
        return Ok(());
    }
    let served = served.map_or_else(|| "no region".to_owned(), |r| format!("region {r}"));
    let has_country = match kind {
        TaskKind::Form(f) => f.form.params.iter().any(|p| p.cli.flag == Some("country")),
        TaskKind::Raw(_) => false,
    };
    let country = if has_country {
        format!("for YouTube's chart or search region use --country {wanted}; ")
    } else {
        String::new()
    };
    Err(CliError::usage(format!(
        "invalid region: --region {wanted} routes the task to workers serving {wanted} only, and collect's own worker serves {served} (worker.region), so it would wait forever; {country}accepted: no --region, or the region worker.region names (PRISMQ_WORKER__REGION={wanted} runs it here), or `prismq enqueue … --region {wanted}` for the workers of that region"
    )))
}

/// The items the task saved (results seen since it started whose last task is it), in
/// `order`, or without one in the source's own order (the items' rank: chart rank, search
/// rank, newest upload first, request order; unranked ones last), at most `limit`.
async fn found(
    app: &App,
    id: TaskId,
    since: Timestamp,
    order: Option<OrderArg>,
    limit: Option<u32>,
) -> CliResult<Vec<StoredResult>> {
    let mut q = ResultQuery {
        since: Some(
            since
                .checked_sub(jiff::SignedDuration::from_secs(1))
                .unwrap_or(since),
        ),
        order: order.map_or(ResultOrder::Views, results::order),
        limit: 1000,
        ..ResultQuery::default()
    };
    let mut out = Vec::new();
    loop {
        let page = app.results.query(&q).await?;
        out.extend(page.iter().filter(|r| r.last_task_id == Some(id)).cloned());
        match page.last() {
            Some(last) if page.len() == q.limit as usize => q.after = Some(q.cursor_after(last)),
            _ => break,
        }
    }
    if order.is_none() {
        // Stable: items without a rank keep the store's order, after the ranked ones.
        out.sort_by_key(|r| results::rank(r).unwrap_or(u64::MAX));
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
        text.push_str(&results::table(items, true, GrowthWindow::Day).render());
    }
    render::print(&text)
}

/// Refuses to start when the plugins say the task cannot run here as configured
/// ([`prismq_app::wiring::check_ready`]), with their one line on what to set or install.
fn preflight(app: &App, kind: &CollectKind) -> CliResult {
    let name = kind.0.form.task_type;
    let task_type = TaskType::new(name).map_err(|e| CliError::usage(e.to_string()))?;
    prismq_app::wiring::check_ready(&app.config, &task_type)
        .map_err(|reason| CliError::new(Exit::Config, reason))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use prismq_domain::{Compatibility, TaskType};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn task(status: TaskStatus, run_after: &str, last_error: Option<&str>) -> Task {
        let at = ts("2026-12-02T20:00:00Z");
        Task {
            id: TaskId(7),
            task_type: TaskType::new("api_scrape").unwrap(),
            params: json!({}),
            priority: prismq_domain::Priority::DEFAULT,
            status,
            attempts: 1,
            max_attempts: 3,
            run_after: ts(run_after),
            lease_expires_at: None,
            claimed_by: None,
            lease_token: None,
            idempotency_key: None,
            compatibility: Compatibility::default(),
            last_error: last_error.map(str::to_owned),
            summary: None,
            created_at: at,
            updated_at: at,
            finished_at: None,
            lapses: 0,
        }
    }

    #[test]
    fn the_status_line_says_until_when_it_waits_in_local_time_and_utc() {
        let la = TimeZone::get("America/Los_Angeles").unwrap();
        let now = ts("2026-12-02T20:00:00Z");
        let quota = "daily unit quota exhausted";
        let t = task(TaskStatus::Queued, "2026-12-03T08:00:00Z", Some(quota));
        assert_eq!(
            status_line(&t, now, Some(Wait::Deferred), &la),
            "task 7: deferred, waiting until 2026-12-03 00:00:00 PST (2026-12-03 08:00:00 UTC); last error: daily unit quota exhausted"
        );
        assert_eq!(
            status_line(&t, now, Some(Wait::Retry), &la),
            "task 7: attempt 1 of 3 failed, retrying at 2026-12-03 00:00:00 PST (2026-12-03 08:00:00 UTC); last error: daily unit quota exhausted"
        );
        let later = task(TaskStatus::Queued, "2026-12-03T08:00:00Z", None);
        assert_eq!(
            status_line(&later, now, Some(Wait::Scheduled), &la),
            "task 7: queued, not before 2026-12-03 00:00:00 PST (2026-12-03 08:00:00 UTC)"
        );
        assert_eq!(Wait::after(Some(TaskEvent::Deferred)), Wait::Deferred);
        assert_eq!(Wait::after(Some(TaskEvent::Retried)), Wait::Retry);
        assert_eq!(Wait::after(Some(TaskEvent::Enqueued)), Wait::Scheduled);
        assert!(Wait::Deferred.is_left_by_no_wait() && Wait::Scheduled.is_left_by_no_wait());
        assert!(!Wait::Retry.is_left_by_no_wait());
        // In UTC the instant is said once; a due or running task has no "until".
        assert_eq!(
            until_text(ts("2026-12-03T08:00:00Z"), &TimeZone::UTC),
            "2026-12-03 08:00:00 UTC"
        );
        let due = task(TaskStatus::Queued, "2026-12-02T19:00:00Z", None);
        assert_eq!(
            status_line(&due, now, Some(Wait::Scheduled), &la),
            "task 7: queued (attempt 1 of 3)"
        );
        let running = task(TaskStatus::Running, "2026-12-03T08:00:00Z", None);
        assert!(!is_waiting(&running, now));
        assert_eq!(
            status_line(&running, now, None, &la),
            "task 7: running (attempt 1 of 3)"
        );
    }

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(subcommand)]
        kind: TaskKind,
    }

    fn parsed(argv: &[&str]) -> (TaskKind, NewTask) {
        let kind = Wrap::try_parse_from(std::iter::once("collect").chain(argv.iter().copied()))
            .unwrap()
            .kind;
        let task = enqueue::build(&kind, ts("2026-12-02T20:00:00Z")).unwrap();
        (kind, task)
    }

    fn trending(region: Option<&str>) -> (TaskKind, NewTask) {
        match region {
            Some(r) => parsed(&["trending", "--region", r]),
            None => parsed(&["trending"]),
        }
    }

    #[test]
    fn a_region_its_own_worker_does_not_serve_is_refused_naming_country() {
        let (kind, task) = trending(Some("gb"));
        for served in [None, Some("US")] {
            let e = check_region(&task, served, &kind).unwrap_err();
            assert_eq!(e.exit, Exit::Usage);
            assert!(
                e.message.contains("--region GB routes the task"),
                "{}",
                e.message
            );
            assert!(e.message.contains("use --country GB"), "{}", e.message);
            assert!(e.message.contains("would wait forever"), "{}", e.message);
        }
        assert!(check_region(&task, Some("GB"), &kind).is_ok());
        let (kind, task) = trending(None);
        assert!(check_region(&task, None, &kind).is_ok());
        assert!(check_region(&task, Some("GB"), &kind).is_ok());
        // Videos have no country: the hint is left out.
        let (kind, task) = parsed(&["videos", "dQw4w9WgXcQ", "--region", "DE"]);
        let e = check_region(&task, None, &kind).unwrap_err();
        assert!(!e.message.contains("--country"), "{}", e.message);
    }
}
