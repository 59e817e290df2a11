//! `Dump` and `Load` for `MemoryStore`: the fake's whole state as the engine-neutral rows of
//! [`DUMP_TABLES`], so `db copy` and the contract's `dump` obligations run on it too.
//!
//! A dump clones the state under the lock (one consistent snapshot: the store is in memory
//! anyway, so the copy is the whole state, not a few batches) and streams the clone's rows
//! table by table, in key order, without holding the lock across the sink's awaits.
//!
//! What each column holds, where the fake keeps nothing of its own, is what the SQLite
//! adapter dumps for the same history:
//! - `task_logs` leaves out each task's first entry, `enqueued`: both SQL adapters read it
//!   from the task's `created_at` and never store it, and a load here puts it back from
//!   `created_at` the same way.
//! - `task_queue.started_at` is when the current attempt started, kept beside the tasks (a
//!   new claim, a retry, a deferral and a release clear it).
//! - `results.id`, `result_metrics.id` and `result_sightings.id` are handed out in save
//!   order (a sighting a task moves keeps its id); `first_views`, `first_metrics_at` and
//!   `metrics_at` are kept as the SQL save keeps them; the growth columns hold the growth
//!   the last save computed.
//! - `quota_usage.window_end` of a bucket only ever marked exhausted (never charged) is its
//!   `exhausted_until`, as SQLite writes it.
//!
//! Nothing is a bare default: every column comes from the fake's state. A worker's held
//! task types are not part of the format (no engine dumps them); a loaded worker holds none.
//!
//! A load works on a staging copy of the state: every batch is checked and applied to it at
//! once (a duplicate key is `Duplicate`, a log, snapshot or sighting naming a task or record
//! the store does not hold, or a value the store cannot hold, is `Invalid` naming the table,
//! column and row), and the first refused batch ends the session (later writes and the
//! commit are refused: drop it and start again). The commit applies the session's rows
//! again, under the lock, to the state as it is then (replacing it after `clear`), and
//! swaps the result in: another writer's changes made meanwhile are kept, or the commit is
//! refused when they clash. Dropping the session changes nothing. After the commit every id
//! generator continues after the largest id loaded (ids are never reused), the idempotency
//! keys index the loaded tasks, and loaded histories, sightings and baselines are in the
//! order the ports read them.

use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use prismq_domain::growth::{Growth, GrowthWindow, WindowRate};
use prismq_domain::outlier::{AgeBasis, Baseline, OutlierScore, VideoFormat};
use prismq_domain::ports::dump::{ColumnKind, DumpTable, Row, Value as Cell, DUMP_TABLES};
use prismq_domain::ports::{
    ChannelBaseline, Dump, DumpSink, Heartbeat, Load, LoadSession, LogLevel, LogRecord,
    MetricSnapshot, StorageError, TaskEvent, WorkerInfo,
};
use prismq_domain::schedule::{Cadence, Schedule, ScheduleId};
use prismq_domain::{
    ClaimingStrategy, Compatibility, ContentItem, LeaseToken, Metrics, PortError, Priority,
    Sighting, Task, TaskId, TaskStatus, TaskType, Timestamp, ValidationError, WorkerId,
};
use serde_json::{Map, Value};

use super::quota::Bucket;
use super::results::ResultEntry;
use super::workers::WorkerEntry;
use super::{MemoryStore, State, MEMORY_ENGINE};

// ---------------------------------------------------------------------------------------
// Dump
// ---------------------------------------------------------------------------------------

fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

fn at(t: Timestamp) -> Cell {
    Cell::Int(Some(ms(t)))
}

fn at_opt(t: Option<Timestamp>) -> Cell {
    Cell::Int(t.map(ms))
}

fn int(v: impl Into<i64>) -> Cell {
    Cell::Int(Some(v.into()))
}

fn text(s: impl Into<String>) -> Cell {
    Cell::Text(Some(s.into()))
}

/// A count as the SQL columns hold it (they are signed 64-bit).
fn count(n: u64) -> Cell {
    Cell::Int(Some(i64::try_from(n).unwrap_or(i64::MAX)))
}

fn kind_of(c: &Cell) -> ColumnKind {
    match c {
        Cell::Int(_) => ColumnKind::Int,
        Cell::Text(_) => ColumnKind::Text,
        Cell::Json(_) => ColumnKind::Json,
        Cell::Bool(_) => ColumnKind::Bool,
        Cell::Real(_) => ColumnKind::Real,
    }
}

/// A row of `DUMP_TABLES[table]` from its cells named in column order (checked in debug
/// builds: every column, in order, of its kind).
fn row(table: usize, cells: Vec<(&'static str, Cell)>) -> Row {
    let t = &DUMP_TABLES[table];
    debug_assert_eq!(
        cells
            .iter()
            .map(|(n, c)| (*n, kind_of(c)))
            .collect::<Vec<_>>(),
        t.columns.to_vec(),
        "the cells of {}",
        t.name
    );
    cells.into_iter().map(|(_, c)| c).collect()
}

/// The index of the table named `name`.
fn table(name: &str) -> usize {
    DUMP_TABLES
        .iter()
        .position(|t| t.name == name)
        .unwrap_or_else(|| panic!("{name} is a table of DUMP_TABLES"))
}

/// A task's log entries as a dump holds them: all but its first, the `enqueued` entry the
/// SQL adapters read from the task row.
fn dumped_log(st: &State, task: TaskId) -> &[LogRecord] {
    match st.logs.get(&task).map(Vec::as_slice) {
        Some([first, rest @ ..]) if first.event == TaskEvent::Enqueued => rest,
        Some(all) => all,
        None => &[],
    }
}

fn task_row(st: &State, t: &Task) -> Row {
    let compatibility =
        serde_json::to_value(&t.compatibility).unwrap_or_else(|_| Value::Object(Map::new()));
    row(
        table("task_queue"),
        vec![
            ("id", int(t.id.0)),
            ("type", text(t.task_type.as_str())),
            ("params", Cell::Json(Some(t.params.clone()))),
            ("priority", int(t.priority.get())),
            ("status", text(t.status.as_str())),
            ("attempts", int(t.attempts)),
            ("max_attempts", int(t.max_attempts)),
            ("run_after", at(t.run_after)),
            ("lease_expires_at", at_opt(t.lease_expires_at)),
            (
                "claimed_by",
                Cell::Text(t.claimed_by.as_ref().map(|w| w.as_str().to_owned())),
            ),
            ("lease_token", Cell::Int(t.lease_token.map(|l| l.0))),
            ("idempotency_key", Cell::Text(t.idempotency_key.clone())),
            ("compatibility", Cell::Json(Some(compatibility))),
            ("last_error", Cell::Text(t.last_error.clone())),
            ("summary", Cell::Json(t.summary.clone())),
            ("created_at", at(t.created_at)),
            ("updated_at", at(t.updated_at)),
            ("started_at", at_opt(st.started.get(&t.id).copied())),
            ("finished_at", at_opt(t.finished_at)),
            ("lapses", int(t.lapses)),
        ],
    )
}

fn log_row(r: &LogRecord) -> Row {
    row(
        table("task_logs"),
        vec![
            ("task_id", int(r.task_id.0)),
            ("at", at(r.at)),
            ("level", text(r.level.as_str())),
            ("event", text(r.event.as_str())),
            ("message", text(r.message.clone())),
            (
                "details",
                Cell::Json(Some(r.details.clone()).filter(|d| !d.is_null())),
            ),
        ],
    )
}

fn worker_row(w: &WorkerEntry) -> Row {
    let capabilities =
        serde_json::to_value(&w.info.capabilities).unwrap_or_else(|_| Value::Array(Vec::new()));
    row(
        table("workers"),
        vec![
            ("id", text(w.info.id.as_str())),
            ("hostname", text(w.info.hostname.clone())),
            ("pid", int(w.info.pid)),
            ("capabilities", Cell::Json(Some(capabilities))),
            ("strategy", text(w.info.strategy.as_str())),
            ("started_at", at(w.started_at)),
            ("heartbeat_at", at(w.heartbeat_at)),
            (
                "current_task_id",
                Cell::Int(w.heartbeat.current_task.map(|t| t.0)),
            ),
            ("tasks_done", count(w.heartbeat.tasks_done)),
            ("tasks_failed", count(w.heartbeat.tasks_failed)),
            ("status", text(if w.stopped { "stopped" } else { "active" })),
        ],
    )
}

/// The growth columns' names, in [`GrowthWindow::ALL`]'s order: (rate, span).
const GROWTH_COLUMNS: [(&str, &str); 4] = [
    ("growth_1h", "growth_1h_span"),
    ("growth_24h", "growth_24h_span"),
    ("growth_7d", "growth_7d_span"),
    ("growth_30d", "growth_30d_span"),
];

fn result_row(e: &ResultEntry) -> Row {
    let i = &e.item;
    let score = e.outlier;
    let mut cells = vec![
        ("id", int(e.id)),
        ("platform", text(i.platform.clone())),
        ("source_id", text(i.source_id.clone())),
        ("title", text(i.title.clone())),
        ("description", Cell::Text(i.description.clone())),
        ("url", Cell::Text(i.url.clone())),
        (
            "tags",
            Cell::Json(Some(Value::Array(
                i.tags.iter().cloned().map(Value::String).collect(),
            ))),
        ),
        ("channel", Cell::Text(i.channel.clone())),
        ("channel_id", Cell::Text(i.channel_id.clone())),
        ("published_at", at_opt(i.published_at)),
        ("duration", Cell::Int(i.duration_secs)),
        ("views", Cell::Int(i.metrics.views)),
        ("likes", Cell::Int(i.metrics.likes)),
        ("comments", Cell::Int(i.metrics.comments)),
        ("extra", Cell::Json(Some(Value::Object(i.extra.clone())))),
        ("first_seen_at", at(e.first_seen_at)),
        ("last_seen_at", at(e.last_seen_at)),
        ("last_task_id", Cell::Int(e.last_task_id.map(|t| t.0))),
        ("first_views", Cell::Int(e.first_views)),
        ("first_metrics_at", at(e.first_metrics_at)),
        ("metrics_at", at(e.metrics_at)),
        (
            "video_format",
            Cell::Text(e.format.map(|f| f.as_str().to_owned())),
        ),
        ("outlier_score", Cell::Real(score.map(|s| s.score))),
        (
            "outlier_basis",
            Cell::Text(score.map(|s| s.basis.as_str().to_owned())),
        ),
        ("outlier_baseline", Cell::Real(score.map(|s| s.baseline))),
        (
            "outlier_sample",
            Cell::Int(score.map(|s| i64::from(s.sample))),
        ),
        ("outlier_views", Cell::Int(score.map(|s| s.views))),
        ("views_7d", Cell::Int(e.at_7d)),
        ("views_30d", Cell::Int(e.at_30d)),
    ];
    for (w, (rate, span)) in GrowthWindow::ALL.into_iter().zip(GROWTH_COLUMNS) {
        let g = e.growth.get(w);
        cells.push((rate, Cell::Real(g.map(|r| r.views_per_hour))));
        cells.push((span, Cell::Int(g.map(|r| r.span_secs))));
    }
    cells.push(("last_source", text(i.source.clone())));
    cells.push(("last_rank", Cell::Int(i.rank.map(i64::from))));
    row(table("results"), cells)
}

fn sighting_row(id: i64, result: i64, s: &Sighting) -> Row {
    row(
        table("result_sightings"),
        vec![
            ("id", int(id)),
            ("result_id", int(result)),
            ("source", text(s.source.clone())),
            ("task_id", Cell::Int(s.task_id.map(|t| t.0))),
            ("rank", Cell::Int(s.rank.map(i64::from))),
            ("seen_at", at(s.seen_at)),
        ],
    )
}

fn metric_row(id: i64, result: i64, s: &MetricSnapshot) -> Row {
    row(
        table("result_metrics"),
        vec![
            ("id", int(id)),
            ("result_id", int(result)),
            ("captured_at", at(s.captured_at)),
            ("views", Cell::Int(s.metrics.views)),
            ("likes", Cell::Int(s.metrics.likes)),
            ("comments", Cell::Int(s.metrics.comments)),
        ],
    )
}

fn quota_row(name: &str, b: &Bucket) -> Row {
    // A bucket only marked exhausted has no window of its own: SQLite writes its
    // `exhausted_until` as the window's end.
    let window_end = b
        .window_end
        .or(b.exhausted_until)
        .unwrap_or(Timestamp::UNIX_EPOCH);
    row(
        table("quota_usage"),
        vec![
            ("bucket", text(name)),
            ("window_end", at(window_end)),
            ("used", count(b.used)),
            ("exhausted_until", at_opt(b.exhausted_until)),
        ],
    )
}

fn schedule_row(s: &Schedule) -> Row {
    let (every, cron) = match &s.cadence {
        Cadence::EverySecs(n) => (Some(i64::try_from(*n).unwrap_or(i64::MAX)), None),
        Cadence::Cron(e) => (None, Some(e.clone())),
    };
    row(
        table("schedules"),
        vec![
            ("id", int(s.id.0)),
            ("name", text(s.name.clone())),
            ("type", text(s.task_type.as_str())),
            ("params", Cell::Json(Some(s.params.clone()))),
            ("priority", int(s.priority.get())),
            ("every_secs", Cell::Int(every)),
            ("cron", Cell::Text(cron)),
            ("time_zone", text(s.time_zone.clone())),
            (
                "jitter_secs",
                Cell::Int(Some(i64::try_from(s.jitter.as_secs()).unwrap_or(i64::MAX))),
            ),
            ("paused", Cell::Bool(Some(s.paused))),
            ("next_slot", at(s.next_slot)),
            ("last_slot", at_opt(s.last_slot)),
            ("last_task", Cell::Int(s.last_task.map(|t| t.0))),
            ("created_at", at(s.created_at)),
        ],
    )
}

fn baseline_row(b: &ChannelBaseline) -> Row {
    row(
        table("channel_baselines"),
        vec![
            ("channel_id", text(b.channel_id.clone())),
            ("format", text(b.baseline.format.as_str())),
            ("basis", text(b.baseline.basis.as_str())),
            ("median_views", Cell::Real(b.baseline.median)),
            ("sample", int(b.baseline.sample)),
            ("computed_at", at(b.computed_at)),
        ],
    )
}

type Rows<'a> = Box<dyn Iterator<Item = Row> + Send + 'a>;

/// The rows of `DUMP_TABLES[ti]` in `st`, in the table's key order.
fn rows_of(st: &State, ti: usize) -> Rows<'_> {
    match DUMP_TABLES[ti].name {
        "task_queue" => Box::new(st.tasks.values().map(move |t| task_row(st, t))),
        "task_logs" => Box::new(
            st.tasks
                .keys()
                .flat_map(move |id| dumped_log(st, *id))
                .map(log_row),
        ),
        "workers" => Box::new(st.workers.values().map(worker_row)),
        "results" => {
            let mut all: Vec<&ResultEntry> = st.results.values().collect();
            all.sort_by_key(|e| e.id);
            Box::new(all.into_iter().map(result_row))
        }
        "result_sightings" => {
            let mut all: Vec<(i64, i64, &Sighting)> = st
                .results
                .values()
                .flat_map(|e| e.sightings.iter().map(move |(id, s)| (*id, e.id, s)))
                .collect();
            all.sort_by_key(|(id, _, _)| *id);
            Box::new(all.into_iter().map(|(id, r, s)| sighting_row(id, r, s)))
        }
        "result_metrics" => {
            let mut all: Vec<(i64, i64, &MetricSnapshot)> = st
                .results
                .values()
                .flat_map(|e| e.history.iter().map(move |(id, s)| (*id, e.id, s)))
                .collect();
            all.sort_by_key(|(id, _, _)| *id);
            Box::new(all.into_iter().map(|(id, r, s)| metric_row(id, r, s)))
        }
        "quota_usage" => {
            let mut all: Vec<(&String, &Bucket)> = st.quota.iter().collect();
            all.sort_by(|a, b| a.0.cmp(b.0));
            Box::new(all.into_iter().map(|(n, b)| quota_row(n, b)))
        }
        "schedules" => {
            let mut all: Vec<&Schedule> = st.schedules.values().collect();
            all.sort_by_key(|s| s.id);
            Box::new(all.into_iter().map(schedule_row))
        }
        "channel_baselines" => {
            // Key order is the text's: (channel, format name, basis name).
            let mut all: Vec<&ChannelBaseline> = st.baselines.values().flatten().collect();
            all.sort_by(|a, b| {
                (
                    &a.channel_id,
                    a.baseline.format.as_str(),
                    a.baseline.basis.as_str(),
                )
                    .cmp(&(
                        &b.channel_id,
                        b.baseline.format.as_str(),
                        b.baseline.basis.as_str(),
                    ))
            });
            Box::new(all.into_iter().map(baseline_row))
        }
        other => unreachable!("DUMP_TABLES has no table {other} the fake does not know"),
    }
}

/// Rows per table of [`DUMP_TABLES`] that a dump of `st` holds.
fn counts(st: &State) -> Vec<u64> {
    DUMP_TABLES
        .iter()
        .map(|t| match t.name {
            "task_queue" => st.tasks.len() as u64,
            "task_logs" => st
                .tasks
                .keys()
                .map(|id| dumped_log(st, *id).len() as u64)
                .sum(),
            "workers" => st.workers.len() as u64,
            "results" => st.results.len() as u64,
            "result_sightings" => st.results.values().map(|e| e.sightings.len() as u64).sum(),
            "result_metrics" => st.results.values().map(|e| e.history.len() as u64).sum(),
            "quota_usage" => st.quota.len() as u64,
            "schedules" => st.schedules.len() as u64,
            "channel_baselines" => st.baselines.values().map(|b| b.len() as u64).sum(),
            other => unreachable!("DUMP_TABLES has no table {other} the fake does not know"),
        })
        .collect()
}

#[async_trait]
impl Dump for MemoryStore {
    async fn dump(
        &self,
        batch_rows: usize,
        sink: &mut dyn DumpSink,
    ) -> Result<Vec<u64>, StorageError> {
        let batch = batch_rows.max(1);
        // One consistent snapshot; the lock is released before the first await.
        let snapshot = self.state().clone();
        let mut sent = Vec::with_capacity(DUMP_TABLES.len());
        for ti in 0..DUMP_TABLES.len() {
            let mut rows = rows_of(&snapshot, ti);
            let mut n = 0u64;
            loop {
                let chunk: Vec<Row> = rows.by_ref().take(batch).collect();
                if chunk.is_empty() {
                    break;
                }
                n += chunk.len() as u64;
                sink.write(ti, chunk).await?;
            }
            sent.push(n);
        }
        Ok(sent)
    }
}

// ---------------------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------------------

/// `ms` milliseconds after the epoch, if a timestamp can hold it.
fn from_ms(ms: i64) -> Option<Timestamp> {
    let nanos = i32::try_from(ms.rem_euclid(1000) * 1_000_000).ok()?;
    Timestamp::new(ms.div_euclid(1000), nanos).ok()
}

const KIND_NAMES: [(ColumnKind, &str); 5] = [
    (ColumnKind::Int, "an integer"),
    (ColumnKind::Text, "text"),
    (ColumnKind::Json, "a JSON document"),
    (ColumnKind::Bool, "a truth value"),
    (ColumnKind::Real, "a number"),
];

fn kind_name(k: ColumnKind) -> &'static str {
    KIND_NAMES
        .iter()
        .find(|(kind, _)| *kind == k)
        .map_or("a value", |(_, n)| n)
}

/// One row being loaded, read column by column with errors naming the table, the column
/// and the row's number among the rows of its table this load wrote.
struct Cells<'r> {
    table: &'static DumpTable,
    row: &'r [Cell],
    n: u64,
}

impl<'r> Cells<'r> {
    fn new(table: &'static DumpTable, row: &'r [Cell], n: u64) -> Result<Self, PortError> {
        if row.len() != table.columns.len() {
            let names: Vec<&str> = table.columns.iter().map(|(c, _)| *c).collect();
            return Err(PortError::Invalid(ValidationError::new(
                table.name,
                format!("row {n} of the load has {} values", row.len()),
                format!(
                    "{} values, one per column: {}",
                    names.len(),
                    names.join(", ")
                ),
            )));
        }
        Ok(Cells { table, row, n })
    }

    fn bad(&self, col: &str, problem: impl Display, accepted: impl Into<String>) -> PortError {
        PortError::Invalid(ValidationError::new(
            format!("{}.{col}", self.table.name),
            format!("row {} of the load {problem}", self.n),
            accepted,
        ))
    }

    fn cell(&self, col: &str) -> Result<&'r Cell, PortError> {
        let i = self
            .table
            .columns
            .iter()
            .position(|(c, _)| *c == col)
            .ok_or_else(|| self.bad(col, "names a column the table lacks", "its columns"))?;
        let cell = &self.row[i];
        let want = self.table.columns[i].1;
        if kind_of(cell) != want {
            return Err(self.bad(
                col,
                format!("holds {}", kind_name(kind_of(cell))),
                kind_name(want),
            ));
        }
        Ok(cell)
    }

    fn need<T>(&self, col: &str, v: Option<T>) -> Result<T, PortError> {
        v.ok_or_else(|| self.bad(col, "holds NULL", "a value: the column is not nullable"))
    }

    fn int(&self, col: &str) -> Result<Option<i64>, PortError> {
        match self.cell(col)? {
            Cell::Int(v) => Ok(*v),
            _ => Err(self.bad(col, "is not an integer", "an integer")),
        }
    }

    fn req_int(&self, col: &str) -> Result<i64, PortError> {
        let v = self.int(col)?;
        self.need(col, v)
    }

    /// An integer that must fit `T` (counts, pids, ranks).
    fn fit<T: TryFrom<i64>>(&self, col: &str, v: i64, accepted: &str) -> Result<T, PortError> {
        T::try_from(v).map_err(|_| self.bad(col, format!("holds {v}"), accepted))
    }

    fn text(&self, col: &str) -> Result<Option<String>, PortError> {
        match self.cell(col)? {
            Cell::Text(v) => Ok(v.clone()),
            _ => Err(self.bad(col, "is not text", "text")),
        }
    }

    fn req_text(&self, col: &str) -> Result<String, PortError> {
        let v = self.text(col)?;
        self.need(col, v)
    }

    fn json(&self, col: &str) -> Result<Option<Value>, PortError> {
        match self.cell(col)? {
            Cell::Json(v) => Ok(v.clone()),
            _ => Err(self.bad(col, "is not JSON", "a JSON document")),
        }
    }

    fn req_json(&self, col: &str) -> Result<Value, PortError> {
        let v = self.json(col)?;
        self.need(col, v)
    }

    fn req_bool(&self, col: &str) -> Result<bool, PortError> {
        let v = match self.cell(col)? {
            Cell::Bool(v) => *v,
            _ => return Err(self.bad(col, "is not a truth value", "a truth value")),
        };
        self.need(col, v)
    }

    fn real(&self, col: &str) -> Result<Option<f64>, PortError> {
        match self.cell(col)? {
            Cell::Real(v) => Ok(*v),
            _ => Err(self.bad(col, "is not a number", "a number")),
        }
    }

    fn time(&self, col: &str) -> Result<Option<Timestamp>, PortError> {
        self.int(col)?
            .map(|v| {
                from_ms(v).ok_or_else(|| {
                    self.bad(
                        col,
                        format!("holds {v}, which is no instant"),
                        "milliseconds since 1970-01-01T00:00:00Z of an instant in years -9999 to 9999",
                    )
                })
            })
            .transpose()
    }

    fn req_time(&self, col: &str) -> Result<Timestamp, PortError> {
        let v = self.time(col)?;
        self.need(col, v)
    }

    /// A value the domain parses, its refusal moved to this column and row.
    fn parsed<T>(&self, col: &str, r: Result<T, ValidationError>) -> Result<T, PortError> {
        r.map_err(|e| self.bad(col, format!("holds a bad value: {}", e.problem), e.accepted))
    }

    /// A JSON document's conversion, its refusal moved to this column and row.
    fn json_as<T>(
        &self,
        col: &str,
        r: Result<T, serde_json::Error>,
        accepted: &str,
    ) -> Result<T, PortError> {
        r.map_err(|e| {
            self.bad(
                col,
                format!("holds a document that does not fit: {e}"),
                accepted,
            )
        })
    }
}

fn duplicate(table: &str, n: u64, what: impl Display) -> PortError {
    PortError::Duplicate(format!(
        "{table}: row {n} of the load repeats a key the store already holds: {what}"
    ))
}

fn dangling(c: &Cells<'_>, col: &str, what: impl Display, parent: &str) -> PortError {
    c.bad(
        col,
        format!("names {what}, which the store does not hold"),
        format!("the id of a {parent} the store holds (loaded before the rows naming it)"),
    )
}

fn level_of(c: &Cells<'_>, s: &str) -> Result<LogLevel, PortError> {
    [
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warn,
        LogLevel::Error,
    ]
    .into_iter()
    .find(|l| l.as_str() == s)
    .ok_or_else(|| {
        c.bad(
            "level",
            format!("holds {s:?}"),
            "debug, info, warn or error",
        )
    })
}

/// The state a load writes into, with the indexes its checks need.
struct Loader {
    st: State,
    /// Each record's key by its id.
    result_keys: HashMap<i64, (String, String)>,
    metric_ids: HashSet<i64>,
    sighting_ids: HashSet<i64>,
    /// (task, record) of every sighting by a task: one each.
    task_sightings: HashSet<(i64, i64)>,
    schedule_ids: HashSet<i64>,
    /// Records and channels whose history, sightings or baselines the load added to.
    touched_results: HashSet<(String, String)>,
    touched_channels: HashSet<String>,
    /// Rows written per table.
    written: Vec<u64>,
}

impl Loader {
    fn new(st: State) -> Loader {
        let mut l = Loader {
            st,
            result_keys: HashMap::new(),
            metric_ids: HashSet::new(),
            sighting_ids: HashSet::new(),
            task_sightings: HashSet::new(),
            schedule_ids: HashSet::new(),
            touched_results: HashSet::new(),
            touched_channels: HashSet::new(),
            written: vec![0; DUMP_TABLES.len()],
        };
        for (key, e) in &l.st.results {
            l.result_keys.insert(e.id, key.clone());
            l.metric_ids.extend(e.history.iter().map(|(id, _)| *id));
            for (id, s) in &e.sightings {
                l.sighting_ids.insert(*id);
                if let Some(t) = s.task_id {
                    l.task_sightings.insert((t.0, e.id));
                }
            }
        }
        l.schedule_ids = l.st.schedules.values().map(|s| s.id.0).collect();
        l
    }

    /// Empties every table of the format; id generators, API keys and counts of rows
    /// written stay.
    fn clear(&mut self) {
        let st = &mut self.st;
        st.tasks.clear();
        st.keys.clear();
        st.started.clear();
        st.logs.clear();
        st.workers.clear();
        st.results.clear();
        st.baselines.clear();
        st.quota.clear();
        st.schedules.clear();
        self.result_keys.clear();
        self.metric_ids.clear();
        self.sighting_ids.clear();
        self.task_sightings.clear();
        self.schedule_ids.clear();
        self.touched_results.clear();
        self.touched_channels.clear();
    }

    fn write(&mut self, ti: usize, rows: &[Row]) -> Result<(), PortError> {
        let t = DUMP_TABLES.get(ti).ok_or_else(|| {
            PortError::Invalid(ValidationError::new(
                "table",
                format!("{ti} is no table of the dump format"),
                format!("0 to {}", DUMP_TABLES.len() - 1),
            ))
        })?;
        for r in rows {
            self.written[ti] += 1;
            let c = Cells::new(t, r, self.written[ti])?;
            match t.name {
                "task_queue" => self.task(&c)?,
                "task_logs" => self.log(&c)?,
                "workers" => self.worker(&c)?,
                "results" => self.result(&c)?,
                "result_sightings" => self.sighting(&c)?,
                "result_metrics" => self.metric(&c)?,
                "quota_usage" => self.quota(&c)?,
                "schedules" => self.schedule(&c)?,
                "channel_baselines" => self.baseline(&c)?,
                other => unreachable!("DUMP_TABLES has no table {other} the fake does not know"),
            }
        }
        Ok(())
    }

    fn task(&mut self, c: &Cells<'_>) -> Result<(), PortError> {
        let id = TaskId(c.req_int("id")?);
        let task_type = c.parsed("type", TaskType::new(c.req_text("type")?))?;
        let params = c.req_json("params")?;
        if !params.is_object() {
            return Err(c.bad("params", format!("holds {params}"), "a JSON object"));
        }
        let priority = c.parsed("priority", Priority::new(c.req_int("priority")?))?;
        let status = c.parsed("status", TaskStatus::from_str(&c.req_text("status")?))?;
        let attempts = c.fit("attempts", c.req_int("attempts")?, "0 or more")?;
        let max_attempts: u32 = c.fit("max_attempts", c.req_int("max_attempts")?, "1 to 100")?;
        if !(1..=100).contains(&max_attempts) {
            return Err(c.bad("max_attempts", format!("holds {max_attempts}"), "1 to 100"));
        }
        let claimed_by = c
            .text("claimed_by")?
            .map(|w| c.parsed("claimed_by", WorkerId::new(w)))
            .transpose()?;
        let compatibility: Compatibility = c.json_as(
            "compatibility",
            serde_json::from_value(c.req_json("compatibility")?),
            "a JSON object with at most a \"region\"",
        )?;
        let task = Task {
            id,
            task_type,
            params,
            priority,
            status,
            attempts,
            max_attempts,
            run_after: c.req_time("run_after")?,
            lease_expires_at: c.time("lease_expires_at")?,
            claimed_by,
            lease_token: c.int("lease_token")?.map(LeaseToken),
            idempotency_key: c.text("idempotency_key")?,
            compatibility,
            last_error: c.text("last_error")?,
            summary: c.json("summary")?,
            created_at: c.req_time("created_at")?,
            updated_at: c.req_time("updated_at")?,
            finished_at: c.time("finished_at")?,
            lapses: c.fit("lapses", c.req_int("lapses")?, "0 or more")?,
        };
        let started = c.time("started_at")?;
        let st = &mut self.st;
        if st.tasks.contains_key(&id) {
            return Err(duplicate("task_queue", c.n, format!("task {id}")));
        }
        if let Some(key) = &task.idempotency_key {
            if let Some(other) = st.keys.get(key) {
                return Err(duplicate(
                    "task_queue",
                    c.n,
                    format!("idempotency key {key:?}, held by task {other}"),
                ));
            }
            st.keys.insert(key.clone(), id);
        }
        if let Some(s) = started {
            st.started.insert(id, s);
        }
        // The `enqueued` entry the format leaves out, read from the row as the SQL
        // adapters read it.
        st.logs.insert(
            id,
            vec![LogRecord {
                task_id: id,
                at: task.created_at,
                level: LogLevel::Info,
                event: TaskEvent::Enqueued,
                message: "enqueued".into(),
                details: Value::Null,
            }],
        );
        st.last_id = st.last_id.max(id.0);
        st.tasks.insert(id, task);
        Ok(())
    }

    fn log(&mut self, c: &Cells<'_>) -> Result<(), PortError> {
        let task = TaskId(c.req_int("task_id")?);
        if !self.st.tasks.contains_key(&task) {
            return Err(dangling(c, "task_id", format!("task {task}"), "task"));
        }
        let level = level_of(c, &c.req_text("level")?)?;
        let event_text = c.req_text("event")?;
        let event = TaskEvent::parse(&event_text).ok_or_else(|| {
            let names: Vec<&str> = TaskEvent::ALL.iter().map(|e| e.as_str()).collect();
            c.bad("event", format!("holds {event_text:?}"), names.join(", "))
        })?;
        let record = LogRecord {
            task_id: task,
            at: c.req_time("at")?,
            level,
            event,
            message: c.req_text("message")?,
            details: c.json("details")?.unwrap_or(Value::Null),
        };
        self.st.logs.entry(task).or_default().push(record);
        Ok(())
    }

    fn worker(&mut self, c: &Cells<'_>) -> Result<(), PortError> {
        let id = c.parsed("id", WorkerId::new(c.req_text("id")?))?;
        let capabilities: Vec<TaskType> = c.json_as(
            "capabilities",
            serde_json::from_value(c.req_json("capabilities")?),
            "a JSON array of task type names",
        )?;
        let strategy = c.parsed(
            "strategy",
            ClaimingStrategy::from_str(&c.req_text("strategy")?),
        )?;
        let stopped = match c.req_text("status")?.as_str() {
            "active" => false,
            "stopped" => true,
            other => return Err(c.bad("status", format!("holds {other:?}"), "active or stopped")),
        };
        let entry = WorkerEntry {
            info: WorkerInfo {
                id: id.clone(),
                hostname: c.req_text("hostname")?,
                pid: c.fit("pid", c.req_int("pid")?, "a process id, 0 to 4294967295")?,
                capabilities,
                strategy,
            },
            started_at: c.req_time("started_at")?,
            heartbeat_at: c.req_time("heartbeat_at")?,
            heartbeat: Heartbeat {
                current_task: c.int("current_task_id")?.map(TaskId),
                tasks_done: c.fit("tasks_done", c.req_int("tasks_done")?, "0 or more")?,
                tasks_failed: c.fit("tasks_failed", c.req_int("tasks_failed")?, "0 or more")?,
                held: Vec::new(),
            },
            stopped,
        };
        if self.st.workers.contains_key(&id) {
            return Err(duplicate("workers", c.n, format!("worker {id}")));
        }
        self.st.workers.insert(id, entry);
        Ok(())
    }

    fn result(&mut self, c: &Cells<'_>) -> Result<(), PortError> {
        let id = c.req_int("id")?;
        let tags: Vec<String> = c.json_as(
            "tags",
            serde_json::from_value(c.req_json("tags")?),
            "a JSON array of strings",
        )?;
        let extra: Map<String, Value> = c.json_as(
            "extra",
            serde_json::from_value(c.req_json("extra")?),
            "a JSON object",
        )?;
        let rank = c
            .int("last_rank")?
            .map(|r| c.fit::<u32>("last_rank", r, "1 or more"))
            .transpose()?;
        if rank == Some(0) {
            return Err(c.bad("last_rank", "holds 0", "1 or more"));
        }
        let item = ContentItem {
            platform: c.req_text("platform")?,
            source: c.req_text("last_source")?,
            source_id: c.req_text("source_id")?,
            rank,
            title: c.req_text("title")?,
            description: c.text("description")?,
            url: c.text("url")?,
            tags,
            channel: c.text("channel")?,
            channel_id: c.text("channel_id")?,
            published_at: c.time("published_at")?,
            duration_secs: c.int("duration")?,
            metrics: Metrics {
                views: c.int("views")?,
                likes: c.int("likes")?,
                comments: c.int("comments")?,
            },
            extra,
        };
        let format = c
            .text("video_format")?
            .map(|f| c.parsed("video_format", VideoFormat::from_str(&f)))
            .transpose()?;
        let outlier = match c.real("outlier_score")? {
            None => None,
            Some(score) => Some(OutlierScore {
                score,
                basis: c.parsed(
                    "outlier_basis",
                    AgeBasis::from_str(&c.req_text("outlier_basis")?),
                )?,
                baseline: {
                    let v = c.real("outlier_baseline")?;
                    c.need("outlier_baseline", v)?
                },
                sample: c.fit("outlier_sample", c.req_int("outlier_sample")?, "0 or more")?,
                views: c.req_int("outlier_views")?,
            }),
        };
        let mut growth = Growth::default();
        for (w, (rate, span)) in GrowthWindow::ALL.into_iter().zip(GROWTH_COLUMNS) {
            // A rate without its span reads as a span of 0, as the SQL adapters read it.
            if let Some(views_per_hour) = c.real(rate)? {
                growth.set(
                    w,
                    Some(WindowRate {
                        views_per_hour,
                        span_secs: c.int(span)?.unwrap_or(0),
                    }),
                );
            }
        }
        let entry = ResultEntry {
            id,
            first_seen_at: c.req_time("first_seen_at")?,
            last_seen_at: c.req_time("last_seen_at")?,
            last_task_id: c.int("last_task_id")?.map(TaskId),
            history: Vec::new(),
            first_views: c.int("first_views")?,
            first_metrics_at: c.req_time("first_metrics_at")?,
            metrics_at: c.req_time("metrics_at")?,
            sightings: Vec::new(),
            format,
            at_7d: c.int("views_7d")?,
            at_30d: c.int("views_30d")?,
            outlier,
            growth,
            item,
        };
        let key = (entry.item.platform.clone(), entry.item.source_id.clone());
        if self.result_keys.contains_key(&id) {
            return Err(duplicate("results", c.n, format!("result id {id}")));
        }
        if self.st.results.contains_key(&key) {
            return Err(duplicate(
                "results",
                c.n,
                format!("result {}/{}", key.0, key.1),
            ));
        }
        self.st.last_result_id = self.st.last_result_id.max(id);
        self.result_keys.insert(id, key.clone());
        self.st.results.insert(key, entry);
        Ok(())
    }

    /// The record `col` names, for a row of its history or sightings.
    fn record(&mut self, c: &Cells<'_>, col: &str) -> Result<&mut ResultEntry, PortError> {
        let id = c.req_int(col)?;
        let key = self
            .result_keys
            .get(&id)
            .ok_or_else(|| dangling(c, col, format!("result {id}"), "result"))?;
        self.touched_results.insert(key.clone());
        self.st
            .results
            .get_mut(key)
            .ok_or_else(|| dangling(c, col, format!("result {id}"), "result"))
    }

    fn sighting(&mut self, c: &Cells<'_>) -> Result<(), PortError> {
        let id = c.req_int("id")?;
        let result = c.req_int("result_id")?;
        let rank = c
            .int("rank")?
            .map(|r| c.fit::<u32>("rank", r, "1 or more"))
            .transpose()?;
        if rank == Some(0) {
            return Err(c.bad("rank", "holds 0", "1 or more"));
        }
        let s = Sighting {
            source: c.req_text("source")?,
            task_id: c.int("task_id")?.map(TaskId),
            rank,
            seen_at: c.req_time("seen_at")?,
        };
        if self.sighting_ids.contains(&id) {
            return Err(duplicate("result_sightings", c.n, format!("sighting {id}")));
        }
        if let Some(t) = s.task_id {
            if self.task_sightings.contains(&(t.0, result)) {
                return Err(duplicate(
                    "result_sightings",
                    c.n,
                    format!("a second sighting of result {result} by task {t}"),
                ));
            }
        }
        let task = s.task_id;
        self.record(c, "result_id")?.sightings.push((id, s));
        self.sighting_ids.insert(id);
        if let Some(t) = task {
            self.task_sightings.insert((t.0, result));
        }
        self.st.last_sighting_id = self.st.last_sighting_id.max(id);
        Ok(())
    }

    fn metric(&mut self, c: &Cells<'_>) -> Result<(), PortError> {
        let id = c.req_int("id")?;
        let snapshot = MetricSnapshot {
            captured_at: c.req_time("captured_at")?,
            metrics: Metrics {
                views: c.int("views")?,
                likes: c.int("likes")?,
                comments: c.int("comments")?,
            },
        };
        if self.metric_ids.contains(&id) {
            return Err(duplicate("result_metrics", c.n, format!("snapshot {id}")));
        }
        self.record(c, "result_id")?.history.push((id, snapshot));
        self.metric_ids.insert(id);
        self.st.last_metric_id = self.st.last_metric_id.max(id);
        Ok(())
    }

    fn quota(&mut self, c: &Cells<'_>) -> Result<(), PortError> {
        let name = c.req_text("bucket")?;
        let bucket = Bucket {
            window_end: Some(c.req_time("window_end")?),
            used: c.fit("used", c.req_int("used")?, "0 or more")?,
            exhausted_until: c.time("exhausted_until")?,
        };
        if self.st.quota.contains_key(&name) {
            return Err(duplicate("quota_usage", c.n, format!("bucket {name:?}")));
        }
        self.st.quota.insert(name, bucket);
        Ok(())
    }

    fn schedule(&mut self, c: &Cells<'_>) -> Result<(), PortError> {
        let id = c.req_int("id")?;
        let cadence = match (c.int("every_secs")?, c.text("cron")?) {
            (Some(secs), None) => Cadence::EverySecs(c.fit("every_secs", secs, "60 or more")?),
            (None, Some(expr)) => Cadence::Cron(expr),
            (every, cron) => {
                return Err(c.bad(
                    "every_secs",
                    format!("holds {every:?} with cron {cron:?}",),
                    "exactly one of every_secs and cron",
                ))
            }
        };
        let schedule = Schedule {
            id: ScheduleId(id),
            name: c.req_text("name")?,
            task_type: c.parsed("type", TaskType::new(c.req_text("type")?))?,
            params: c.req_json("params")?,
            priority: c.parsed("priority", Priority::new(c.req_int("priority")?))?,
            cadence,
            time_zone: c.req_text("time_zone")?,
            jitter: Duration::from_secs(c.fit(
                "jitter_secs",
                c.req_int("jitter_secs")?,
                "0 or more",
            )?),
            paused: c.req_bool("paused")?,
            next_slot: c.req_time("next_slot")?,
            last_slot: c.time("last_slot")?,
            last_task: c.int("last_task")?.map(TaskId),
            created_at: c.req_time("created_at")?,
        };
        if self.schedule_ids.contains(&id) {
            return Err(duplicate("schedules", c.n, format!("schedule id {id}")));
        }
        if self.st.schedules.contains_key(&schedule.name) {
            return Err(duplicate(
                "schedules",
                c.n,
                format!("schedule {:?}", schedule.name),
            ));
        }
        self.schedule_ids.insert(id);
        self.st.last_schedule_id = self.st.last_schedule_id.max(id);
        self.st.schedules.insert(schedule.name.clone(), schedule);
        Ok(())
    }

    fn baseline(&mut self, c: &Cells<'_>) -> Result<(), PortError> {
        let b = ChannelBaseline {
            channel_id: c.req_text("channel_id")?,
            baseline: Baseline {
                format: c.parsed("format", VideoFormat::from_str(&c.req_text("format")?))?,
                basis: c.parsed("basis", AgeBasis::from_str(&c.req_text("basis")?))?,
                median: c.real("median_views")?,
                sample: c.fit("sample", c.req_int("sample")?, "0 or more")?,
            },
            computed_at: c.req_time("computed_at")?,
        };
        let list = self.st.baselines.entry(b.channel_id.clone()).or_default();
        if list
            .iter()
            .any(|x| (x.baseline.format, x.baseline.basis) == (b.baseline.format, b.baseline.basis))
        {
            return Err(duplicate(
                "channel_baselines",
                c.n,
                format!(
                    "the {} {} baseline of channel {:?}",
                    b.baseline.format.as_str(),
                    b.baseline.basis.as_str(),
                    b.channel_id
                ),
            ));
        }
        self.touched_channels.insert(b.channel_id.clone());
        list.push(b);
        Ok(())
    }

    /// The state with what was loaded in the order the ports read it: a record's history
    /// by capture time and its sightings by sighting time (then by id), a channel's
    /// baselines by format and basis.
    fn finish(mut self) -> State {
        for key in &self.touched_results {
            if let Some(e) = self.st.results.get_mut(key) {
                e.history.sort_by_key(|(id, s)| (s.captured_at, *id));
                e.sightings.sort_by_key(|(id, s)| (s.seen_at, *id));
            }
        }
        for channel in &self.touched_channels {
            if let Some(list) = self.st.baselines.get_mut(channel) {
                list.sort_by_key(|b| (b.baseline.format, b.baseline.basis));
            }
        }
        self.st
    }
}

/// A load into the fake in progress.
struct MemoryLoad {
    store: MemoryStore,
    /// The state as the session sees it (for its checks and counts).
    staging: Loader,
    /// Whether the session cleared the tables (the commit starts from empty ones).
    cleared: bool,
    /// Every batch written since the session began (or last cleared), applied again at
    /// commit.
    batches: Vec<(usize, Vec<Row>)>,
    /// Why an earlier write failed.
    failed: Option<String>,
}

impl MemoryLoad {
    fn refuse_after_failure(&self) -> Result<(), StorageError> {
        match &self.failed {
            None => Ok(()),
            Some(why) => Err(StorageError::Port(PortError::Invalid(
                ValidationError::new(
                    "load",
                    format!(
                        "an earlier write of this load was refused ({why}); nothing was loaded"
                    ),
                    "a new load, begun after fixing the rows",
                ),
            ))),
        }
    }
}

#[async_trait]
impl Load for MemoryStore {
    async fn begin_load(&self) -> Result<Box<dyn LoadSession>, StorageError> {
        let staging = Loader::new(self.state().clone());
        Ok(Box::new(MemoryLoad {
            store: self.clone(),
            staging,
            cleared: false,
            batches: Vec::new(),
            failed: None,
        }))
    }
}

#[async_trait]
impl LoadSession for MemoryLoad {
    fn engine(&self) -> &'static str {
        MEMORY_ENGINE
    }

    async fn existing_rows(&mut self) -> Result<u64, StorageError> {
        Ok(counts(&self.staging.st).iter().sum())
    }

    async fn clear(&mut self) -> Result<(), StorageError> {
        self.refuse_after_failure()?;
        self.staging.clear();
        self.cleared = true;
        self.batches.clear();
        Ok(())
    }

    async fn write(&mut self, table: usize, rows: Vec<Row>) -> Result<(), StorageError> {
        self.refuse_after_failure()?;
        if let Err(e) = self.staging.write(table, &rows) {
            self.failed = Some(e.to_string());
            return Err(e.into());
        }
        self.batches.push((table, rows));
        Ok(())
    }

    async fn counts(&mut self) -> Result<Vec<u64>, StorageError> {
        Ok(counts(&self.staging.st))
    }

    async fn commit(self: Box<Self>) -> Result<(), StorageError> {
        self.refuse_after_failure()?;
        let mut live = self.store.state();
        let mut next = Loader::new(live.clone());
        if self.cleared {
            next.clear();
        }
        for (table, rows) in &self.batches {
            next.write(*table, rows)?;
        }
        *live = next.finish();
        Ok(())
    }
}
