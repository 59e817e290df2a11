//! `prismq schedule add|list|show|pause|resume|remove|run-now`: tasks enqueued on a
//! timetable. `add` builds the task from the same forms as `enqueue` (its parsing, reused)
//! and `App::add_schedule` checks it exactly as enqueue does, so a schedule of a task that
//! enqueue would refuse is refused with the same message and nothing is written.

use clap::{Args, Subcommand};
use prismq_app::schedules::ScheduleView;
use prismq_app::{Access, App, PLUGINS};
use prismq_domain::schedule::{parse_jitter, Cadence, NewSchedule, Schedule};

use super::enqueue;
use super::enqueue::TaskOptions;
use super::forms::TaskKind;
use crate::context::Ctx;
use crate::exit::{CliError, CliResult};
use crate::render;

/// `prismq schedule …`.
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Add a schedule: `schedule add --name N --every 6h channel @handle` (or --cron).
    Add(Box<AddArgs>),
    /// Every schedule: its cadence, next slot, last task, and why it cannot fire, if so.
    List,
    /// One schedule in full.
    Show {
        /// The schedule's name.
        name: String,
    },
    /// Stop firing; the slots that pass while paused are skipped, not caught up.
    Pause {
        /// The schedule's name.
        name: String,
    },
    /// Fire again from the next slot after now.
    Resume {
        /// The schedule's name.
        name: String,
    },
    /// Delete the schedule; the tasks it enqueued stay.
    Remove {
        /// The schedule's name.
        name: String,
    },
    /// Enqueue the schedule's task now, leaving its timetable as it is.
    RunNow {
        /// The schedule's name.
        name: String,
    },
}

/// `prismq schedule add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// A unique name (letters, digits, '-', '_', '.'; up to 64 characters).
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// Fire every DURATION, counted from 1970-01-01T00:00Z (1m to 366d: 30m, 6h, 1d).
    /// Also accepted after the task (`refresh-stats --seen-within 7d --every 1d`), as are
    /// --cron, --tz and --jitter.
    #[arg(long, value_name = "DURATION", conflicts_with = "cron", global = true)]
    pub every: Option<String>,
    /// Fire at the times a 5-field cron expression names, in --tz ("0 */6 * * *").
    #[arg(long, value_name = "EXPR", global = true)]
    pub cron: Option<String>,
    /// The IANA time zone the cron expression is read in (default UTC).
    #[arg(long, value_name = "ZONE", default_value = "UTC", global = true)]
    pub tz: String,
    /// Each slot's task becomes runnable up to this much after the slot (0s to 1h).
    #[arg(long, value_name = "DURATION", global = true)]
    pub jitter: Option<String>,
    /// The task, in the forms `enqueue` takes (channel, trending, keyword, videos,
    /// refresh-stats, raw);
    /// its --priority is the schedule's.
    #[command(subcommand)]
    pub kind: TaskKind,
}

/// Runs a `schedule` subcommand.
///
/// # Errors
/// Invalid input (exit 2, nothing written), an unknown schedule (exit 3), store errors.
pub async fn run(ctx: &Ctx, cmd: ScheduleCommand) -> CliResult {
    match cmd {
        ScheduleCommand::Add(a) => add(ctx, *a).await,
        ScheduleCommand::List => {
            let app = with_plugins(ctx, Access::Read)?;
            let list = app.schedule_views().await?;
            if ctx.json() {
                return render::json(&list);
            }
            render::print(&table(&list))
        }
        ScheduleCommand::Show { name } => {
            let app = with_plugins(ctx, Access::Read)?;
            let v = app.schedule_view(&name).await?;
            if ctx.json() {
                return render::json(&v);
            }
            render::print(&details(&v))
        }
        ScheduleCommand::Pause { name } => set_paused(ctx, &name, true).await,
        ScheduleCommand::Resume { name } => set_paused(ctx, &name, false).await,
        ScheduleCommand::Remove { name } => {
            ctx.require_db()?;
            let s = ctx
                .store_app_to_write()?
                .schedules
                .remove_schedule(&name)
                .await?;
            if ctx.json() {
                return render::json(&s);
            }
            render::print(&format!(
                "removed schedule {:?}; the tasks it enqueued stay\n",
                s.name
            ))
        }
        ScheduleCommand::RunNow { name } => {
            let app = with_plugins(ctx, Access::Existing)?;
            let e = app.run_schedule_now(&name).await?;
            if ctx.json() {
                return render::json(&e);
            }
            render::print(&format!("enqueued task {} for schedule {name:?}\n", e.id))
        }
    }
}

/// The app with every plugin (to check tasks as enqueue does and to tell which schedules
/// this build cannot fire), on an existing queue: `Read` for the commands that only read
/// (nothing created or migrated), `Existing` for run-now.
fn with_plugins(ctx: &Ctx, access: Access) -> CliResult<App> {
    ctx.require_db()?;
    Ok(App::open_for(ctx.config.clone(), PLUGINS, access)?)
}

async fn set_paused(ctx: &Ctx, name: &str, paused: bool) -> CliResult {
    ctx.require_db()?;
    let s = ctx
        .store_app_to_write()?
        .schedules
        .set_schedule_paused(name, paused)
        .await?;
    if ctx.json() {
        return render::json(&s);
    }
    render::print(&if paused {
        format!("paused schedule {:?}\n", s.name)
    } else {
        format!(
            "resumed schedule {:?}; next slot {}\n",
            s.name,
            render::time(s.next_slot)
        )
    })
}

async fn add(ctx: &Ctx, a: AddArgs) -> CliResult {
    let cadence = match (&a.every, &a.cron) {
        (Some(e), None) => Cadence::every(e)?,
        (None, Some(c)) => Cadence::cron(c)?,
        _ => {
            return Err(CliError::usage(
                "give exactly one of --every DURATION or --cron EXPR",
            ))
        }
    };
    refuse_enqueue_only_options(TaskKind::task(&a.kind))?;
    let app = ctx.app()?;
    let task = enqueue::build(&a.kind, app.clock.now())?;
    let mut new = NewSchedule::new(a.name, task.task_type, task.params, cadence);
    new.priority = task.priority;
    new.time_zone = a.tz.trim().to_owned();
    if let Some(j) = &a.jitter {
        new.jitter = parse_jitter(j)?;
    }
    let s = app.add_schedule(new).await?;
    if ctx.json() {
        return render::json(&s);
    }
    render::print(&format!(
        "added schedule {:?} ({}, {}); first slot {}\n",
        s.name,
        s.task_type,
        s.cadence,
        render::time(s.next_slot)
    ))
}

/// Refuses the enqueue options a schedule cannot keep: each slot's task runs at its slot,
/// under its own key, with the default attempts and no region.
fn refuse_enqueue_only_options(o: &TaskOptions) -> CliResult {
    let given = [
        ("--delay", o.delay.is_some()),
        ("--run-at", o.run_at.is_some()),
        ("--idempotency-key", o.idempotency_key.is_some()),
        ("--max-attempts", o.max_attempts.is_some()),
        ("--region", o.region.is_some()),
    ];
    match given.iter().find(|(_, set)| *set) {
        Some((flag, _)) => Err(CliError::usage(format!(
            "{flag} is not a schedule option (each slot's task runs at its slot, keyed by the schedule and slot); accepted with schedule add: --priority, plus --every or --cron, --tz, --jitter; nothing was written"
        ))),
        None => Ok(()),
    }
}

fn state(v: &ScheduleView) -> String {
    match (&v.error, v.schedule.paused) {
        (Some(e), _) => format!("error: {e}"),
        (None, true) => "paused".to_owned(),
        (None, false) => "active".to_owned(),
    }
}

fn table(list: &[ScheduleView]) -> String {
    if list.is_empty() {
        return "no schedules (add one with `prismq schedule add`)\n".to_owned();
    }
    let mut t = render::Table::new(&[
        "NAME",
        "TYPE",
        "CADENCE",
        "TZ",
        "NEXT",
        "LAST TASK",
        "STATE",
    ]);
    for v in list {
        let s = &v.schedule;
        t.row(vec![
            render::cut(&s.name, 64),
            s.task_type.to_string(),
            render::cut(&s.cadence.to_string(), 40),
            s.time_zone.clone(),
            render::time(s.next_slot),
            render::opt(s.last_task),
            render::cut(&state(v), 200),
        ]);
    }
    t.render()
}

fn details(v: &ScheduleView) -> String {
    let s: &Schedule = &v.schedule;
    let local = s
        .zone()
        .map(|z| {
            s.next_slot
                .to_zoned(z)
                .strftime("%Y-%m-%d %H:%M:%S %Z")
                .to_string()
        })
        .unwrap_or_else(|_| "-".to_owned());
    render::fields(&[
        ("name", s.name.clone()),
        ("id", s.id.to_string()),
        ("type", s.task_type.to_string()),
        ("params", render::cut(&s.params.to_string(), 200)),
        ("priority", s.priority.get().to_string()),
        ("cadence", s.cadence.to_string()),
        ("time zone", s.time_zone.clone()),
        ("jitter", prismq_domain::schedule::format_duration(s.jitter)),
        ("state", state(v)),
        (
            "next slot",
            format!("{} ({local})", render::time(s.next_slot)),
        ),
        ("last slot", render::opt_time(s.last_slot)),
        ("last task", render::opt(s.last_task)),
        ("created", render::time(s.created_at)),
        ("task keys", format!("schedule:{}:<slot>", s.id)),
    ])
}

/// The most schedules `stats` lists one by one (the rest are counted).
const STATS_LISTED: usize = 20;

/// What `stats` shows of the schedules: each one's next fire time and what its last task
/// did (its status), as JSON and as text lines (at most [`STATS_LISTED`], earliest next
/// slot first).
///
/// # Errors
/// Store errors.
pub async fn stats_section(app: &App) -> CliResult<(serde_json::Value, String)> {
    let mut list = app.schedules.list_schedules().await?;
    list.sort_by_key(|s| (s.paused, s.next_slot));
    let mut rows = Vec::new();
    for s in &list {
        let last = match s.last_task {
            Some(id) => match app.queue.get(id).await {
                Ok(t) => Some(t.status.to_string()),
                Err(prismq_domain::PortError::NotFound(_)) => Some("purged".to_owned()),
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        rows.push((s, last));
    }
    let value = serde_json::Value::Array(
        rows.iter()
            .map(|(s, last)| {
                serde_json::json!({
                    "name": s.name,
                    "paused": s.paused,
                    "next_slot": s.next_slot,
                    "last_slot": s.last_slot,
                    "last_task": s.last_task,
                    "last_status": last,
                })
            })
            .collect(),
    );
    if rows.is_empty() {
        return Ok((value, "schedules: none\n".to_owned()));
    }
    let mut text = format!("schedules: {}\n", list.len());
    for (s, last) in rows.iter().take(STATS_LISTED) {
        let next = if s.paused {
            "paused".to_owned()
        } else {
            format!("next {}", render::time(s.next_slot))
        };
        let last = match (s.last_task, last) {
            (Some(id), Some(st)) => format!("last task {id} {st}"),
            _ => "nothing fired yet".to_owned(),
        };
        text.push_str(&format!("  {}: {next}, {last}\n", render::cut(&s.name, 64)));
    }
    if rows.len() > STATS_LISTED {
        text.push_str(&format!(
            "  … and {} more (prismq schedule list)\n",
            rows.len() - STATS_LISTED
        ));
    }
    Ok((value, text))
}
