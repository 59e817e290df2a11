//! `prismq enqueue …`: builds a task from flags (or every line of a JSONL file), and hands
//! it to `App::enqueue`, which validates it against the registered handler. The typed forms
//! (`forms.rs`) are built from the plugins' declarations, their flags one to one the
//! handler's parameters; their values are checked by the plugin, so a refusal names the
//! parameter and its accepted values.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use clap::Args;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use prismq_app::App;
use prismq_domain::ports::Enqueued;
use prismq_domain::{Compatibility, NewTask, PortError, Priority, Timestamp};

use super::forms::TaskKind;
use super::parse;
use crate::context::Ctx;
use crate::exit::{CliError, CliResult};
use crate::files::{self, Input};
use crate::progress;
use crate::render;

/// Flags every way of enqueueing takes.
#[derive(Debug, Clone, Default, Args)]
pub struct TaskOptions {
    /// 1 (lowest) to 10 (highest); default 5.
    #[arg(long, value_name = "1-10", allow_negative_numbers = true)]
    pub priority: Option<i64>,
    /// Not before this long from now (30s, 5m, 1h30m, 1d).
    #[arg(long, value_name = "DURATION", conflicts_with = "run_at")]
    pub delay: Option<String>,
    /// Not before this instant (RFC 3339, e.g. 2026-01-31T08:00:00Z).
    #[arg(long, value_name = "TIMESTAMP")]
    pub run_at: Option<String>,
    /// Enqueueing the same key again creates nothing and prints the existing task's id.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// Attempts before the task is dead-lettered (1-100; default from retry.max_attempts).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_attempts: Option<i64>,
    /// Only workers serving this region (ISO 3166-1 alpha-2) may claim the task.
    #[arg(long, value_name = "CC")]
    pub region: Option<String>,
}

/// `prismq enqueue …`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_required = false)]
pub struct EnqueueArgs {
    /// Enqueue every line of a JSONL file (- for stdin; at most 32 MiB), all or nothing
    /// ({"type", "params", "priority", "run_after", "idempotency_key", "max_attempts",
    /// "region"} per line).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// The task to enqueue.
    #[command(subcommand)]
    pub kind: Option<TaskKind>,
}

/// Any task type with JSON parameters.
#[derive(Debug, Clone, Args)]
pub struct RawArgs {
    /// The task type (e.g. channel_scrape).
    #[arg(long = "type", value_name = "TYPE")]
    pub task_type: String,
    /// The parameters as a JSON object (default {}).
    #[arg(long, value_name = "JSON")]
    pub params: Option<String>,
    /// Queue options.
    #[command(flatten)]
    pub task: TaskOptions,
}

/// Runs `enqueue`.
///
/// # Errors
/// Invalid input (exit 2, nothing written; also a reused idempotency key whose task has
/// another type or params), an unreadable file (exit 3 or 1), the store's errors.
pub async fn run(ctx: &Ctx, args: EnqueueArgs) -> CliResult {
    match (args.file, args.kind) {
        (Some(file), _) => from_file(ctx, &file).await,
        (None, Some(kind)) => {
            let app = ctx.app()?;
            let task = build(&kind, app.clock.now())?;
            let key = task.idempotency_key.clone();
            let e = app.enqueue(task).await?;
            print_enqueued(ctx, &e, key.as_deref())
        }
        (None, None) => {
            let forms: Vec<&str> = super::forms::all().map(|f| f.name).collect();
            Err(CliError::usage(format!(
                "say what to enqueue: {}, raw, or --file FILE (see prismq enqueue --help)",
                forms.join(", ")
            )))
        }
    }
}

/// The task `kind` describes, with its queue options applied.
///
/// # Errors
/// A malformed option (priority, delay, run-at, region, JSON params).
pub fn build(kind: &TaskKind, now: Timestamp) -> CliResult<NewTask> {
    match kind {
        TaskKind::Form(f) => {
            let task = NewTask::new(
                parse::task_type(f.form.task_type)?,
                Value::Object(f.params.clone()),
            );
            apply(task, &f.task, now)
        }
        TaskKind::Raw(a) => {
            let params = match &a.params {
                None => Value::Object(Map::new()),
                Some(text) => serde_json::from_str(text).map_err(|e| {
                    CliError::usage(format!(
                        "invalid --params: not valid JSON ({e}); accepted: a JSON object such as '{{\"query\": \"rust\"}}'"
                    ))
                })?,
            };
            let task = NewTask::new(parse::task_type(&a.task_type)?, params);
            apply(task, &a.task, now)
        }
    }
}

fn apply(mut task: NewTask, o: &TaskOptions, now: Timestamp) -> CliResult<NewTask> {
    if let Some(p) = o.priority {
        task.priority = Priority::new(p)?;
    }
    if let Some(d) = &o.delay {
        task.run_after = Some(parse::delay("delay", d, now)?);
    }
    if let Some(t) = &o.run_at {
        task.run_after = Some(parse::instant("run_at", t)?);
    }
    if let Some(k) = &o.idempotency_key {
        task.idempotency_key = Some(k.clone());
    }
    if let Some(n) = o.max_attempts {
        task.max_attempts = Some(attempts(n)?);
    }
    if let Some(r) = &o.region {
        task.compatibility = Compatibility::with_region(r)?;
    }
    Ok(task)
}

fn attempts(n: i64) -> CliResult<u32> {
    u32::try_from(n).map_err(|_| {
        prismq_domain::ValidationError::new(
            "max_attempts",
            format!("{n} is out of range"),
            "an integer from 1 to 100",
        )
        .into()
    })
}

fn print_enqueued(ctx: &Ctx, e: &Enqueued, key: Option<&str>) -> CliResult {
    if ctx.json() {
        return render::json(e);
    }
    if e.duplicate {
        render::print(&format!(
            "task {} already exists for idempotency key {:?}; nothing was enqueued\n",
            e.id,
            key.unwrap_or_default()
        ))
    } else {
        render::print(&format!("enqueued task {}\n", e.id))
    }
}

/// One line of a tasks file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    #[serde(rename = "type")]
    task_type: String,
    #[serde(default)]
    params: Option<Value>,
    priority: Option<i64>,
    run_after: Option<String>,
    idempotency_key: Option<String>,
    max_attempts: Option<i64>,
    region: Option<String>,
}

impl Line {
    fn into_task(self) -> CliResult<NewTask> {
        let task = NewTask::new(
            parse::task_type(&self.task_type)?,
            self.params.unwrap_or_else(|| Value::Object(Map::new())),
        );
        let opts = TaskOptions {
            priority: self.priority,
            delay: None,
            run_at: None,
            idempotency_key: self.idempotency_key,
            max_attempts: self.max_attempts,
            region: self.region,
        };
        let mut task = apply(task, &opts, Timestamp::UNIX_EPOCH)?;
        if let Some(t) = &self.run_after {
            // Named as the line names it, so the error points at the right field.
            task.run_after = Some(parse::instant("run_after", t)?);
        }
        Ok(task)
    }
}

/// The longest JSONL line read: params are capped at 1 MiB, so a longer line is not a task,
/// and a file without newlines (`/dev/zero`) must not be read into memory whole.
const MAX_LINE_BYTES: u64 = 4 * 1024 * 1024;

/// The lines of `reader` (without their `\n` or `\r\n`), each at most [`MAX_LINE_BYTES`].
fn bounded_lines(mut reader: impl BufRead) -> impl Iterator<Item = std::io::Result<String>> {
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut buf = Vec::new();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut buf);
        match read {
            Ok(0) => None,
            Err(e) => {
                done = true;
                Some(Err(e))
            }
            Ok(_) if buf.len() as u64 > MAX_LINE_BYTES => {
                done = true;
                Some(Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("the line is longer than {MAX_LINE_BYTES} bytes; accepted: one task object per line"),
                )))
            }
            Ok(_) => {
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                    if buf.last() == Some(&b'\r') {
                        buf.pop();
                    }
                }
                Some(String::from_utf8(buf).map_err(|_| {
                    done = true;
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "stream did not contain valid UTF-8",
                    )
                }))
            }
        }
    })
}

/// The largest tasks file read (`--file`): 32 MiB, about 300,000 ordinary task lines (at
/// most about 580,000 of the shortest), which the all-or-nothing batch holds in memory at
/// once (measured: 64 MiB of the shortest lines peaked at 1.6 GB). A larger file, or an
/// endless stream, is refused after reading at most this much, before anything is written.
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// A byte-order mark, as Windows editors write at the start of a UTF-8 file.
const BOM: char = '\u{feff}';

/// `enqueue --file`: every line parsed and validated first; all errors listed with their
/// line numbers; then one all-or-nothing batch.
async fn from_file(ctx: &Ctx, path: &Path) -> CliResult {
    let input = Input::open("--file", path, MAX_FILE_BYTES)?;
    let name = input.name.clone();
    let app = ctx.app()?;
    let bar = match input.len {
        Some(len) => progress::bytes(ctx, len, "validating"),
        None => progress::counter(ctx, "validating", "lines"),
    };
    let mut tasks = Vec::new();
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in bounded_lines(input.reader).enumerate() {
        let n = i + 1;
        let line = line.map_err(|e| {
            bar.finish_and_clear();
            if e.kind() == files::TOO_LARGE {
                files::too_large("--file", &name, MAX_FILE_BYTES)
            } else {
                CliError::usage(format!("{name}:{n}: cannot read the line: {e}"))
            }
        })?;
        if input.len.is_some() {
            bar.inc(line.len() as u64 + 1);
        } else {
            bar.inc(1);
        }
        let line = if n == 1 {
            line.strip_prefix(BOM).unwrap_or(&line)
        } else {
            &line
        };
        if line.trim().is_empty() {
            continue;
        }
        match check_line(&app, line) {
            Ok(t) => {
                tasks.push(t);
                lines.push(n);
            }
            Err(e) => errors.push(format!("line {n}: {}", e.message)),
        }
    }
    bar.finish_and_clear();
    if !errors.is_empty() {
        let shown: Vec<&String> = errors.iter().take(20).collect();
        let more = errors.len().saturating_sub(shown.len());
        let mut msg = format!(
            "{name} has {} invalid line{}; nothing was enqueued",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        );
        for e in shown {
            msg.push_str(&format!("\n  {e}"));
        }
        if more > 0 {
            msg.push_str(&format!("\n  … and {more} more"));
        }
        return Err(CliError::usage(msg));
    }
    if tasks.is_empty() {
        return Err(CliError::usage(format!(
            "{name} has no tasks; accepted: one JSON object per line such as {{\"type\": \"keyword_search\", \"params\": {{\"query\": \"rust\"}}}}"
        )));
    }
    let spinner = progress::status(
        ctx,
        &format!(
            "writing {} validated tasks in one transaction",
            render::count(i64::try_from(tasks.len()).unwrap_or(i64::MAX))
        ),
    );
    let done = app.enqueue_batch(tasks).await;
    spinner.finish_and_clear();
    let done = done.map_err(|e| at_line(e, &lines, &name))?;
    if ctx.json() {
        let rows: Vec<Value> = done
            .iter()
            .zip(&lines)
            .map(|(e, n)| json!({"line": n, "id": e.id, "duplicate": e.duplicate}))
            .collect();
        return render::json(&rows);
    }
    render::print(&summary(&done))
}

/// A batch error naming `tasks[i]` names the file's line instead.
fn at_line(e: PortError, lines: &[usize], name: &str) -> CliError {
    if let PortError::Invalid(v) = &e {
        let index = v
            .field
            .strip_prefix("tasks[")
            .and_then(|rest| rest.split_once("]."))
            .and_then(|(i, field)| Some((lines.get(i.parse::<usize>().ok()?)?, field)));
        if let Some((n, field)) = index {
            let mut msg = format!(
                "{name} line {n}: invalid {field}: {}; accepted: {}",
                lines_named(&v.problem, lines),
                lines_named(&v.accepted, lines)
            );
            if !msg.contains("nothing was enqueued") {
                msg.push_str("; nothing was enqueued");
            }
            return CliError::usage(msg);
        }
    }
    CliError::from(e)
}

/// `text` with every `tasks[i]` of the batch named as the file's line.
fn lines_named(text: &str, lines: &[usize]) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("tasks[") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "tasks[".len()..];
        let line = after
            .split_once(']')
            .and_then(|(i, tail)| Some((lines.get(i.parse::<usize>().ok()?)?, tail)));
        match line {
            Some((n, tail)) => {
                out.push_str(&format!("line {n}"));
                rest = tail;
            }
            None => {
                out.push_str("tasks[");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `enqueued N tasks (ids A–B); M already existed for their idempotency key`: the range is
/// that of the tasks this batch created, and only when they are consecutive.
fn summary(done: &[Enqueued]) -> String {
    let mut created: Vec<i64> = done
        .iter()
        .filter(|e| !e.duplicate)
        .map(|e| e.id.0)
        .collect();
    created.sort_unstable();
    created.dedup();
    let duplicates = done.len() - created.len();
    let ids = match (created.first(), created.last()) {
        (Some(a), Some(b)) if a == b => format!(" (id {a})"),
        (Some(a), Some(b)) if usize::try_from(b - a).ok() == Some(created.len() - 1) => {
            format!(" (ids {a}–{b})")
        }
        (Some(a), Some(b)) => format!(" (ids from {a} to {b}, not consecutive; --json lists each)"),
        _ => String::new(),
    };
    format!(
        "enqueued {} task{}{ids}; {duplicates} already existed for their idempotency key\n",
        created.len(),
        if created.len() == 1 { "" } else { "s" },
    )
}

fn check_line(app: &App, line: &str) -> CliResult<NewTask> {
    let parsed: Line = serde_json::from_str(line).map_err(|e| {
        CliError::usage(format!(
            "not a task object ({e}); accepted: {{\"type\", \"params\", \"priority\", \"run_after\", \"idempotency_key\", \"max_attempts\", \"region\"}}"
        ))
    })?;
    let task = parsed.into_task()?;
    app.registry.validate(&task)?;
    Ok(task)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prismq_domain::TaskId;

    fn e(id: i64, duplicate: bool) -> Enqueued {
        Enqueued {
            id: TaskId(id),
            duplicate,
        }
    }

    #[test]
    fn the_summary_names_only_created_consecutive_ids() {
        let tail = "already existed for their idempotency key\n";
        assert_eq!(
            summary(&[e(501, true), e(200_499, true)]),
            format!("enqueued 0 tasks; 2 {tail}")
        );
        assert_eq!(
            summary(&[e(3, true), e(10, false), e(11, false)]),
            format!("enqueued 2 tasks (ids 10–11); 1 {tail}")
        );
        assert_eq!(
            summary(&[e(7, false)]),
            format!("enqueued 1 task (id 7); 0 {tail}")
        );
        assert_eq!(
            summary(&[e(7, false), e(9, false)]),
            format!(
                "enqueued 2 tasks (ids from 7 to 9, not consecutive; --json lists each); 0 {tail}"
            )
        );
    }

    #[test]
    fn batch_indexes_become_line_numbers() {
        assert_eq!(
            lines_named("also the key of tasks[0] of this batch", &[3, 5]),
            "also the key of line 3 of this batch"
        );
        assert_eq!(lines_named("tasks[9] stays", &[1]), "tasks[9] stays");
    }
}
