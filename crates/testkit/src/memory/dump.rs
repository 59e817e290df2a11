//! `Dump` for `MemoryStore`: the fake's whole state as the engine-neutral rows of
//! [`DUMP_TABLES`], so `db copy` and the contract's `dump` obligations run on it too (the
//! load is `memory/load.rs`).
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

use async_trait::async_trait;
use prismq_domain::growth::GrowthWindow;
use prismq_domain::ports::dump::{ColumnKind, Row, Value as Cell, DUMP_TABLES};
use prismq_domain::ports::{
    ChannelBaseline, Dump, DumpSink, LogRecord, MetricSnapshot, StorageError, TaskEvent,
};
use prismq_domain::schedule::{Cadence, Schedule};
use prismq_domain::{Sighting, Task, TaskId, Timestamp};
use serde_json::{Map, Value};

use super::quota::Bucket;
use super::results::ResultEntry;
use super::workers::WorkerEntry;
use super::{MemoryStore, State};

fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

fn at(t: Timestamp) -> Cell {
    Cell::Int(Some(ms(t)))
}

fn at_opt(t: Option<Timestamp>) -> Cell {
    Cell::Int(t.map(ms))
}

pub(super) fn int(v: impl Into<i64>) -> Cell {
    Cell::Int(Some(v.into()))
}

pub(super) fn text(s: impl Into<String>) -> Cell {
    Cell::Text(Some(s.into()))
}

/// A count as the SQL columns hold it (they are signed 64-bit).
fn count(n: u64) -> Cell {
    Cell::Int(Some(i64::try_from(n).unwrap_or(i64::MAX)))
}

pub(super) fn kind_of(c: &Cell) -> ColumnKind {
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
pub(super) fn table(name: &str) -> usize {
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
pub(super) const GROWTH_COLUMNS: [(&str, &str); 4] = [
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
pub(super) fn counts(st: &State) -> Vec<u64> {
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
