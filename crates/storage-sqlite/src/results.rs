//! The result store: one record per (platform, source_id) whichever source finds it,
//! sightings, metric history written only on change, and ranked queries.

use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, CachedStatement, Connection, OptionalExtension, Row};
use serde_json::{Map, Value};

use prismq_domain::growth::{Growth, GrowthWindow, WindowRate};
use prismq_domain::outlier::{
    self, AgeBasis, Baseline, ChannelVideo, OutlierScore, OutlierSettings, VideoFormat, VideoValues,
};
use prismq_domain::ports::{
    ChannelBaseline, MetricSnapshot, OrderValue, RescoreReport, ResultOrder, ResultQuery,
    ResultStore, StoredResult,
};
use prismq_domain::task::TaskId;
use prismq_domain::{ContentItem, Metrics, PortError, SaveReport, Sighting, Timestamp};

use crate::codec::{ts, ts_opt};
use crate::error::map_err;
use crate::SqliteStore;

const RESULT_COLUMNS: &str = "id, platform, source_id, title, description, url, tags, channel, channel_id, published_at, duration, \
     views, likes, comments, extra, first_seen_at, last_seen_at, last_task_id, first_views, first_metrics_at, metrics_at, \
     video_format, outlier_score, outlier_basis, outlier_baseline, outlier_sample, outlier_views, \
     growth_1h, growth_1h_span, growth_24h, growth_24h_span, growth_7d, growth_7d_span, growth_30d, growth_30d_span, last_source, last_rank";

/// The growth columns of a window: its rate and its span.
pub fn growth_columns(w: GrowthWindow) -> (&'static str, &'static str) {
    match w {
        GrowthWindow::Hour => ("growth_1h", "growth_1h_span"),
        GrowthWindow::Day => ("growth_24h", "growth_24h_span"),
        GrowthWindow::Week => ("growth_7d", "growth_7d_span"),
        GrowthWindow::Month => ("growth_30d", "growth_30d_span"),
    }
}

/// [`ResultStore::find`]'s query. The recursive part walks the distinct platforms in key
/// order (each step one `min` probe of the unique (platform, source_id) index, the
/// skip-scan SQLite does not do by itself without `ANALYZE` statistics); the outer query
/// probes each platform for the id.
pub fn find_sql() -> String {
    format!(
        "WITH RECURSIVE platforms(platform) AS (
            SELECT min(platform) FROM results
            UNION ALL
            SELECT (SELECT min(r.platform) FROM results r WHERE r.platform > platforms.platform)
            FROM platforms WHERE platforms.platform IS NOT NULL
        )
        SELECT {RESULT_COLUMNS} FROM results
        WHERE source_id = ?1 AND platform IN (SELECT platform FROM platforms WHERE platform IS NOT NULL)
        ORDER BY platform"
    )
}

/// The column a result order sorts on (descending, absent values last, ties by
/// (platform, source_id)); each has an index in exactly that order.
pub fn order_column(q: &ResultQuery) -> &'static str {
    match q.order {
        ResultOrder::Views => "views",
        ResultOrder::Recent => "published_at",
        ResultOrder::Growth => growth_columns(q.window).0,
        ResultOrder::Outlier => "outlier_score",
    }
}

fn order_value(q: &ResultQuery, v: OrderValue) -> SqlValue {
    match (q.order, v) {
        (ResultOrder::Growth | ResultOrder::Outlier, OrderValue::Int(n)) => {
            SqlValue::Real(n as f64)
        }
        (_, OrderValue::Int(n)) => SqlValue::Integer(n),
        (_, OrderValue::Real(x)) => SqlValue::Real(x),
    }
}

/// The most sightings a `--source` kind may have for its page to be read from them
/// ([`source_plan`]).
pub const RARE_SOURCE_SIGHTINGS: i64 = 10_000;

/// How to read a page of `limit` for a kind of source with `sightings` sightings (counted up
/// to [`RARE_SOURCE_SIGHTINGS`]) among about `records` records. Walking the order's index
/// reads about `limit × records ÷ sightings` rows before the page is full (more when the
/// kind's records sit low in the order); reading the kind's sightings reads each once and
/// sorts them. The two cost the same near `sightings = √(limit × records)`; the sightings
/// are read below twice that, and never above [`RARE_SOURCE_SIGHTINGS`] (a page then costs
/// at most that many rows either way: at a million records and a page of 50, walking reads
/// about 5,000).
pub fn source_plan(sightings: i64, records: i64, limit: u32) -> SourcePlan {
    let s = sightings as f64;
    let meet = 2.0 * (f64::from(limit) * records.max(1) as f64).sqrt();
    if sightings < RARE_SOURCE_SIGHTINGS && s < meet {
        SourcePlan::FromSightings
    } else {
        SourcePlan::WalkOrder
    }
}

/// Counts the sightings of a kind of source (`?1`), stopping at `?2`
/// ([`RARE_SOURCE_SIGHTINGS`]): a range of `ix_result_sightings_source`, at most `?2` steps.
pub const SOURCE_SIGHTINGS_SQL: &str =
    "SELECT count(*) FROM (SELECT 1 FROM result_sightings WHERE source = ?1 LIMIT ?2)";

/// How a results query with a `--source` filter finds its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourcePlan {
    /// Walk the order's index and test each record for a sighting of the kind (a kind many
    /// records have fills the page within a few index steps).
    WalkOrder,
    /// Read the kind's sightings from `ix_result_sightings_source`, each record once by its
    /// id, and sort those (a rare kind: only its records are read).
    FromSightings,
}

/// [`query_statements_with`] walking the order's index ([`SourcePlan::WalkOrder`]).
pub fn query_statements(q: &ResultQuery) -> Vec<(String, Vec<SqlValue>)> {
    query_statements_with(q, SourcePlan::WalkOrder)
}

/// [`ResultStore::query`]'s statements and arguments for `q` (already validated), run in
/// turn until the page is full. Each walks an index in its order from where the page
/// starts: without a cursor, the order's index from its start; after an item with a
/// value, the index from that value (`col <= v`, the ties up to the cursor skipped) and
/// then, if the page is not full, the items without a value; after an item without one,
/// the items without a value past its (platform, source_id). With a `--source` filter and
/// [`SourcePlan::FromSightings`], the same statements read only the kind's records instead,
/// driven from its sightings (`CROSS JOIN` keeps them the outer loop), and sort them.
/// Public so a test can check their plans.
pub fn query_statements_with(q: &ResultQuery, plan: SourcePlan) -> Vec<(String, Vec<SqlValue>)> {
    let mut args: Vec<SqlValue> = Vec::new();
    let mut base = match (&q.source, plan) {
        (Some(source), SourcePlan::FromSightings) => {
            args.push(SqlValue::Text(source.clone()));
            format!(
                "SELECT {RESULT_COLUMNS} FROM (SELECT DISTINCT result_id FROM result_sightings WHERE source = ?) k
                 CROSS JOIN results ON results.id = k.result_id WHERE 1 = 1"
            )
        }
        (Some(source), SourcePlan::WalkOrder) => {
            args.push(SqlValue::Text(source.clone()));
            format!(
                "SELECT {RESULT_COLUMNS} FROM results WHERE EXISTS
                 (SELECT 1 FROM result_sightings s WHERE s.source = ? AND s.result_id = results.id)"
            )
        }
        (None, _) => format!("SELECT {RESULT_COLUMNS} FROM results WHERE 1 = 1"),
    };
    if let Some(since) = q.since {
        base.push_str(" AND last_seen_at >= ?");
        args.push(SqlValue::Integer(since.as_millisecond()));
    }
    if let Some(since) = q.new_since {
        base.push_str(" AND first_seen_at >= ?");
        args.push(SqlValue::Integer(since.as_millisecond()));
    }
    if let Some(channel) = &q.channel_id {
        base.push_str(" AND channel_id = ?");
        args.push(SqlValue::Text(channel.clone()));
    }
    if let Some(task) = q.task {
        base.push_str(
            " AND id IN (SELECT s.result_id FROM result_sightings s WHERE s.task_id = ?)",
        );
        args.push(SqlValue::Integer(task.0));
    }
    if let Some(format) = q.format {
        base.push_str(" AND video_format = ?");
        args.push(SqlValue::Text(format.as_str().to_owned()));
    }
    if let Some(lo) = q.min_score {
        base.push_str(" AND outlier_score >= ?");
        args.push(SqlValue::Real(lo));
    }
    if let Some(hi) = q.max_score {
        base.push_str(" AND outlier_score <= ?");
        args.push(SqlValue::Real(hi));
    }
    let col = order_column(q);
    let limit = SqlValue::Integer(i64::from(q.limit));
    // An SQLite index sorts NULL below every value, so descending puts them last.
    let ordered = format!(" ORDER BY {col} DESC, platform, source_id LIMIT ?");
    let tail = " ORDER BY platform, source_id LIMIT ?";
    let with = |extra: &str, more: Vec<SqlValue>, order: &str| {
        let mut a = args.clone();
        a.extend(more);
        a.push(limit.clone());
        (format!("{base}{extra}{order}"), a)
    };
    match &q.after {
        None => vec![with("", Vec::new(), &ordered)],
        Some(c) => {
            let key = || {
                vec![
                    SqlValue::Text(c.platform.clone()),
                    SqlValue::Text(c.source_id.clone()),
                ]
            };
            match c.value {
                Some(v) => {
                    let v = order_value(q, v);
                    let mut more = vec![v.clone(), v];
                    more.extend(key());
                    vec![
                        with(
                            &format!(
                                " AND {col} <= ? AND NOT ({col} = ? AND (platform, source_id) <= (?, ?))"
                            ),
                            more,
                            &ordered,
                        ),
                        with(&format!(" AND {col} IS NULL"), Vec::new(), tail),
                    ]
                }
                None => vec![with(
                    &format!(" AND {col} IS NULL AND (platform, source_id) > (?, ?)"),
                    key(),
                    tail,
                )],
            }
        }
    }
}

/// The first of [`query_statements`]: the whole page when there is no cursor.
pub fn query_sql(q: &ResultQuery) -> (String, Vec<SqlValue>) {
    query_statements(q).swap_remove(0)
}

fn conv(idx: usize, e: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        idx,
        rusqlite::types::Type::Text,
        e.to_string().into(),
    )
}

fn format_col(r: &Row<'_>, idx: usize) -> rusqlite::Result<Option<VideoFormat>> {
    r.get::<_, Option<String>>(idx)?
        .map(|s| s.parse::<VideoFormat>().map_err(|e| conv(idx, e)))
        .transpose()
}

/// The score stored in columns `idx..idx + 5` (score, basis, baseline, sample, views).
fn score_cols(r: &Row<'_>, idx: usize) -> rusqlite::Result<Option<OutlierScore>> {
    let Some(score) = r.get::<_, Option<f64>>(idx)? else {
        return Ok(None);
    };
    let basis: String = r.get(idx + 1)?;
    Ok(Some(OutlierScore {
        score,
        basis: basis.parse::<AgeBasis>().map_err(|e| conv(idx + 1, e))?,
        baseline: r.get(idx + 2)?,
        sample: u32::try_from(r.get::<_, i64>(idx + 3)?).map_err(|e| conv(idx + 3, e))?,
        views: r.get(idx + 4)?,
    }))
}

/// The growth stored in columns `idx..idx + 8` (each window's rate and span, in
/// [`GrowthWindow::ALL`]'s order).
fn growth_cols(r: &Row<'_>, idx: usize) -> rusqlite::Result<Growth> {
    let mut growth = Growth::default();
    for w in GrowthWindow::ALL {
        let idx = idx + 2 * w.index();
        if let Some(views_per_hour) = r.get::<_, Option<f64>>(idx)? {
            let span_secs = r.get::<_, Option<i64>>(idx + 1)?.unwrap_or(0);
            growth.set(
                w,
                Some(WindowRate {
                    views_per_hour,
                    span_secs,
                }),
            );
        }
    }
    Ok(growth)
}

fn stored_from_row(r: &Row<'_>) -> rusqlite::Result<(i64, StoredResult)> {
    let tags: String = r.get(6)?;
    let extra: String = r.get(14)?;
    let item = ContentItem {
        platform: r.get(1)?,
        source: r.get(35)?,
        source_id: r.get(2)?,
        rank: r.get(36)?,
        title: r.get(3)?,
        description: r.get(4)?,
        url: r.get(5)?,
        tags: serde_json::from_str(&tags).map_err(|e| conv(6, e))?,
        channel: r.get(7)?,
        channel_id: r.get(8)?,
        published_at: ts_opt(r, 9)?,
        duration_secs: r.get(10)?,
        metrics: Metrics {
            views: r.get(11)?,
            likes: r.get(12)?,
            comments: r.get(13)?,
        },
        extra: serde_json::from_str::<Map<String, Value>>(&extra).map_err(|e| conv(14, e))?,
    };
    let growth = growth_cols(r, 27)?;
    Ok((
        r.get(0)?,
        StoredResult {
            item,
            first_seen_at: ts(15, r.get(15)?)?,
            last_seen_at: ts(16, r.get(16)?)?,
            last_task_id: r.get::<_, Option<i64>>(17)?.map(TaskId),
            growth,
            format: format_col(r, 21)?,
            outlier: score_cols(r, 22)?,
        },
    ))
}

/// Statements held for the length of one batch (a save, a rescore), each prepared at most
/// once. Taking a statement from rusqlite's cache for every video re-prepares it each time:
/// the cache clears a statement's bindings when it takes it back, and SQLite expires a
/// statement whose plan looked at a bound value (its planner does for a `column = ?` term)
/// when its bindings are cleared. Held here, a statement is only rebound and keeps its plan.
struct Held<'c> {
    conn: &'c Connection,
    stmts: Vec<(String, CachedStatement<'c>)>,
}

impl<'c> Held<'c> {
    fn new(conn: &'c Connection) -> Self {
        Held {
            conn,
            stmts: Vec::new(),
        }
    }

    /// The statement for `sql`, prepared on first use.
    fn get(&mut self, sql: &str) -> Result<&mut CachedStatement<'c>, PortError> {
        let i = match self.stmts.iter().position(|(s, _)| s == sql) {
            Some(i) => i,
            None => {
                let stmt = self.conn.prepare_cached(sql).map_err(map_err)?;
                self.stmts.push((sql.to_owned(), stmt));
                self.stmts.len() - 1
            }
        };
        Ok(&mut self.stmts[i].1)
    }
}

fn snapshot(st: &mut Held<'_>, result_id: i64, now: i64, m: &Metrics) -> Result<(), PortError> {
    st.get("INSERT INTO result_metrics (result_id, captured_at, views, likes, comments) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![result_id, now, m.views, m.likes, m.comments])
        .map_err(map_err)?;
    Ok(())
}

/// Records that `task` (or a save outside a task) found the record `result_id` now: a
/// task's earlier sighting of it is moved, any other is added.
fn sight(
    st: &mut Held<'_>,
    result_id: i64,
    item: &ContentItem,
    task: Option<i64>,
    now: i64,
) -> Result<(), PortError> {
    st.get(
        "INSERT INTO result_sightings (result_id, source, task_id, rank, seen_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (task_id, result_id) WHERE task_id IS NOT NULL
         DO UPDATE SET source = excluded.source, rank = excluded.rank, seen_at = excluded.seen_at",
    )?
    .execute(params![result_id, item.source, task, item.rank, now])
    .map_err(map_err)?;
    Ok(())
}

/// The assignments of [`save_one`]'s update of a changed row (`?1` its id) to columns no
/// index reads: always written.
const UPDATE_ROW_SQL: &str = "UPDATE results SET title = ?2, description = ?3, url = ?4, tags = ?5, channel = ?6,
       duration = ?9, likes = ?11, comments = ?12, extra = ?13,
       metrics_at = CASE WHEN ?16 THEN ?14 ELSE metrics_at END,
       first_metrics_at = CASE WHEN first_views IS NULL AND ?10 IS NOT NULL THEN ?14 ELSE first_metrics_at END,
       first_views = COALESCE(first_views, ?10), last_source = ?18, last_rank = ?19";

/// The indexed columns of [`save_one`]'s update of a changed row, each with its
/// assignment. SQLite deletes and re-inserts a row's entry in every index on a column its
/// UPDATE assigns, even to the value the column already holds; in a large file each such
/// entry lies on a page of its own, so each is one more page written at commit (a 500-video
/// save with views changed wrote 1,556 WAL frames in a file of 200,000 videos when every
/// column was assigned, 1,036 since; 231 and 180 in a file of 5,000). So each is assigned
/// only when its value changes.
const INDEXED_ASSIGNMENTS: [&str; 6] = [
    "channel_id = ?7",
    "published_at = ?8",
    "views = ?10",
    "last_seen_at = ?14",
    "last_task_id = ?15",
    "video_format = ?17",
];

/// The assignments of a row's growth, from parameter `?first` on (each window's rate then
/// its span, in [`GrowthWindow::ALL`]'s order, so the last window's span is
/// `?{first + 7}`): every span (no index reads them) and the rates flagged in `rates`
/// (each has an index; see [`INDEXED_ASSIGNMENTS`]).
fn growth_assignments(first: usize, rates: [bool; 4]) -> Vec<String> {
    let mut out = Vec::new();
    for (w, on) in GrowthWindow::ALL.into_iter().zip(rates) {
        let (rate, span) = growth_columns(w);
        let p = first + 2 * w.index();
        if on {
            out.push(format!("{rate} = ?{p}"));
        }
        out.push(format!("{span} = ?{}", p + 1));
    }
    out
}

/// Which rates of `new` differ from `old`'s (all of them when `old` is unknown).
fn changed_rates(old: Option<&Growth>, new: &Growth) -> [bool; 4] {
    let new = growth_rates(new);
    match old.map(growth_rates) {
        Some(old) => [0, 1, 2, 3].map(|i| old[i] != new[i]),
        None => [true; 4],
    }
}

/// [`save_one`]'s update of a changed row: [`UPDATE_ROW_SQL`], the indexed columns whose
/// value changes (`indexed`, in [`INDEXED_ASSIGNMENTS`]' order) and, when the growth
/// changes (`growth` is `Some`), its assignments from `?20` ([`growth_assignments`]). The
/// highest parameter is always used (`?19`, or `?27` with the growth), so the same
/// arguments bind every variant.
fn changed_row_sql(indexed: [bool; 6], growth: Option<[bool; 4]>) -> String {
    let mut sql = String::from(UPDATE_ROW_SQL);
    for (assign, on) in INDEXED_ASSIGNMENTS.iter().zip(indexed) {
        if on {
            sql.push_str(", ");
            sql.push_str(assign);
        }
    }
    if let Some(rates) = growth {
        for assign in growth_assignments(20, rates) {
            sql.push_str(", ");
            sql.push_str(&assign);
        }
    }
    sql.push_str(" WHERE id = ?1");
    sql
}

/// [`save_one`]'s update of a row saved unchanged: its `last_seen_at` (`?4`), and its
/// `last_task_id` (`?2`) and `video_format` (`?3`) only when they change (each is indexed;
/// see [`INDEXED_ASSIGNMENTS`]). `?4` is always used, so the same arguments bind every
/// variant.
fn unchanged_row_sql(task: bool, format: bool) -> &'static str {
    match (task, format) {
        (false, false) => "UPDATE results SET last_seen_at = ?4 WHERE id = ?1",
        (true, false) => "UPDATE results SET last_seen_at = ?4, last_task_id = ?2 WHERE id = ?1",
        (false, true) => "UPDATE results SET last_seen_at = ?4, video_format = ?3 WHERE id = ?1",
        (true, true) => {
            "UPDATE results SET last_seen_at = ?4, last_task_id = ?2, video_format = ?3 WHERE id = ?1"
        }
    }
}

/// Saves one item; returns whether its video's outlier values may have changed (false only
/// for an item saved unchanged whose previous and new `last_seen_at` both lie outside the
/// 7- and 30-day tolerances of [`outlier::observation_counts`], on a row that has a format).
fn save_one(
    st: &mut Held<'_>,
    existing_sql: &str,
    task: Option<i64>,
    item: &ContentItem,
    now: i64,
    min_span_secs: i64,
    report: &mut SaveReport,
) -> Result<bool, PortError> {
    let existing = st
        .get(existing_sql)?
        .query_row(params![item.platform, item.source_id], stored_from_row)
        .optional()
        .map_err(map_err)?;
    let merged;
    let item = match &existing {
        Some((_, stored)) => {
            merged = item.merged_over(&stored.item);
            &merged
        }
        None => item,
    };
    let tags =
        serde_json::to_string(&item.tags).map_err(|e| PortError::Unavailable(e.to_string()))?;
    let extra = Value::Object(item.extra.clone()).to_string();
    let published = item.published_at.map(|t| t.as_millisecond());
    let format = outlier::format_of(item).map(VideoFormat::as_str);
    let m = &item.metrics;
    match existing {
        None => {
            let id: i64 = st
                .get(
                    "INSERT INTO results (platform, source_id, title, description, url, tags, channel, channel_id, published_at, duration,
                       views, likes, comments, extra, first_seen_at, last_seen_at, last_task_id, first_views, first_metrics_at, metrics_at, video_format,
                       last_source, last_rank)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15, ?16, ?11, ?15, ?15, ?17, ?18, ?19) RETURNING id",
                )?
                .query_row(
                    params![
                        item.platform, item.source_id, item.title, item.description, item.url, tags, item.channel, item.channel_id,
                        published, item.duration_secs, m.views, m.likes, m.comments, extra, now, task, format, item.source, item.rank
                    ],
                    |r| r.get(0),
                )
                .map_err(map_err)?;
            snapshot(st, id, now, m)?;
            sight(st, id, item, task, now)?;
            report.inserted += 1;
        }
        Some((id, stored)) => {
            sight(st, id, item, task, now)?;
            let metrics_changed = stored.item.metrics != item.metrics;
            let stored_format = stored.format.map(VideoFormat::as_str);
            let new_task = task.is_some() && task != stored.last_task_id.map(|t| t.0);
            if stored.item == *item {
                // A row of a channel keeps its video's format (written by `refresh_video`).
                let new_format = (stored.item.channel_id.is_none() || stored_format.is_none())
                    && stored_format != format;
                st.get(unchanged_row_sql(new_task, new_format))?
                    .execute(params![id, task, format, now])
                    .map_err(map_err)?;
                report.unchanged += 1;
                if !stored.growth.is_settled() {
                    refresh_growth(
                        st,
                        id,
                        Some((now, item.metrics)),
                        Some(stored.growth),
                        min_span_secs,
                    )?;
                }
                let now = Timestamp::from_millisecond(now)
                    .map_err(|e| PortError::Unavailable(e.to_string()))?;
                let moved = item.published_at.is_some_and(|p| {
                    outlier::observation_counts(p, stored.last_seen_at)
                        || outlier::observation_counts(p, now)
                });
                return Ok(stored.format.is_none() || moved);
            }
            // The growth as it is once this save's snapshot is stored, written by the same
            // statement as the rest of the row when it changed.
            let pending = [(now, *m); 2];
            let pending = if metrics_changed {
                &pending[..]
            } else {
                &pending[..1]
            };
            let g = growth_with(st, id, now, pending, min_span_secs)?;
            let (rate, span) = (growth_rates(&g), growth_spans(&g));
            let row = params![
                id,
                item.title,
                item.description,
                item.url,
                tags,
                item.channel,
                item.channel_id,
                published,
                item.duration_secs,
                m.views,
                m.likes,
                m.comments,
                extra,
                now,
                task,
                metrics_changed,
                format,
                item.source,
                item.rank
            ];
            let indexed = [
                item.channel_id != stored.item.channel_id,
                item.published_at != stored.item.published_at,
                m.views != stored.item.metrics.views,
                now != stored.last_seen_at.as_millisecond(),
                new_task,
                format != stored_format,
            ];
            if stored.growth == g {
                st.get(&changed_row_sql(indexed, None))?
                    .execute(row)
                    .map_err(map_err)?;
            } else {
                let rates = changed_rates(Some(&stored.growth), &g);
                let growth =
                    params![rate[0], span[0], rate[1], span[1], rate[2], span[2], rate[3], span[3]];
                st.get(&changed_row_sql(indexed, Some(rates)))?
                    .execute(rusqlite::params_from_iter(row.iter().chain(growth.iter())))
                    .map_err(map_err)?;
            }
            if metrics_changed {
                snapshot(st, id, now, m)?;
            }
            report.updated += 1;
        }
    }
    Ok(true)
}

/// The snapshots of a row (`?1`) captured at or after `?2`, oldest first, and the one just
/// before `?2`: all a save needs of a history to recompute its growth, read from
/// `ix_result_metrics_result`.
pub const GROWTH_HISTORY_SQL: &str = "SELECT captured_at, views, likes, comments FROM (
        SELECT captured_at, views, likes, comments FROM result_metrics
        WHERE result_id = ?1 AND captured_at < ?2 ORDER BY captured_at DESC LIMIT 1)
     UNION ALL
     SELECT captured_at, views, likes, comments FROM result_metrics
     WHERE result_id = ?1 AND captured_at >= ?2";

/// Recomputes and stores a row's growth over every window, from its snapshots within the
/// longest window (and the one before it) and its current metrics at `last_seen_at`:
/// `seen` when the caller has just written them (with `stored`, the growth the row had),
/// else read from the row with its growth. Writes nothing when the result equals the
/// growth the row had, and of the rates only those that changed.
fn refresh_growth(
    st: &mut Held<'_>,
    id: i64,
    seen: Option<(i64, Metrics)>,
    stored: Option<Growth>,
    min_span_secs: i64,
) -> Result<(), PortError> {
    let (last_seen, current, stored): (i64, Metrics, Option<Growth>) = match seen {
        Some((at, m)) => (at, m, stored),
        None => st
            .get(
                "SELECT last_seen_at, views, likes, comments, growth_1h, growth_1h_span,
                   growth_24h, growth_24h_span, growth_7d, growth_7d_span, growth_30d, growth_30d_span
                 FROM results WHERE id = ?1",
            )?
            .query_row([id], |r| {
                Ok((
                    r.get(0)?,
                    Metrics {
                        views: r.get(1)?,
                        likes: r.get(2)?,
                        comments: r.get(3)?,
                    },
                    Some(growth_cols(r, 4)?),
                ))
            })
            .map_err(map_err)?,
    };
    let g = growth_with(st, id, last_seen, &[(last_seen, current)], min_span_secs)?;
    if stored == Some(g) {
        return Ok(());
    }
    let (rate, span) = (growth_rates(&g), growth_spans(&g));
    // `?9`, the last span, is always assigned, so the same arguments bind every variant.
    let sql = format!(
        "UPDATE results SET {} WHERE id = ?1",
        growth_assignments(2, changed_rates(stored.as_ref(), &g)).join(", ")
    );
    st.get(&sql)?
        .execute(params![
            id, rate[0], span[0], rate[1], span[1], rate[2], span[2], rate[3], span[3]
        ])
        .map_err(map_err)?;
    Ok(())
}

/// Each window's rate of `g`, in [`GrowthWindow::ALL`]'s order.
fn growth_rates(g: &Growth) -> [Option<f64>; 4] {
    GrowthWindow::ALL.map(|w| g.get(w).map(|r| r.views_per_hour))
}

/// Each window's span of `g`, in [`GrowthWindow::ALL`]'s order.
fn growth_spans(g: &Growth) -> [Option<i64>; 4] {
    GrowthWindow::ALL.map(|w| g.get(w).map(|r| r.span_secs))
}

/// A row's growth over every window as of `last_seen`: from its stored snapshots within
/// the longest window before it (and the one before that) followed by `pending`,
/// observations not stored (yet), oldest first.
fn growth_with(
    st: &mut Held<'_>,
    id: i64,
    last_seen: i64,
    pending: &[(i64, Metrics)],
    min_span_secs: i64,
) -> Result<Growth, PortError> {
    let from = last_seen - GrowthWindow::Month.seconds() * 1_000;
    let mut observations = Vec::new();
    {
        let stmt = st.get(GROWTH_HISTORY_SQL)?;
        let rows = stmt
            .query_map(params![id, from], |r| {
                Ok((
                    ts(0, r.get(0)?)?,
                    Metrics {
                        views: r.get(1)?,
                        likes: r.get(2)?,
                        comments: r.get(3)?,
                    },
                ))
            })
            .map_err(map_err)?;
        for r in rows {
            observations.push(r.map_err(map_err)?);
        }
    }
    for (at, m) in pending {
        observations.push((ts(0, *at).map_err(map_err)?, *m));
    }
    Ok(Growth::of(&observations, min_span_secs))
}

/// One video's rows in its channel (`?1`, `?2`), as the save reads them to recompute the
/// video's outlier values (and the values they hold, to write only what changed).
pub const VIDEO_ROWS_SQL: &str = "SELECT id, views, published_at, last_seen_at, extra, duration,
       video_format, views_7d, views_30d
     FROM results WHERE channel_id = ?1 AND source_id = ?2 ORDER BY platform";

/// A row's snapshots with views captured within either of two ranges of instants (`?2` to
/// `?3`, `?4` to `?5`, both ends included): the only ones [`outlier::views_at_age`] can pick
/// for 7 and 30 days of age. Two range probes of `ix_result_metrics_result`.
pub const AGE_SNAPSHOTS_SQL: &str = "SELECT captured_at, views FROM result_metrics
     WHERE result_id = ?1 AND captured_at BETWEEN ?2 AND ?3 AND views IS NOT NULL
     UNION ALL
     SELECT captured_at, views FROM result_metrics
     WHERE result_id = ?1 AND captured_at BETWEEN ?4 AND ?5 AND views IS NOT NULL";

/// Recomputes the clock-free [`VideoValues`] of one video of a channel (its format and its
/// views at 7 and 30 days of age) from all its rows and the snapshots of theirs that can
/// count for those ages, and stores them on the rows whose stored values differ. Reads one
/// video's rows, never the channel's.
fn refresh_video(st: &mut Held<'_>, channel_id: &str, source_id: &str) -> Result<(), PortError> {
    struct VideoRow {
        id: i64,
        views: Option<i64>,
        published_at: Option<Timestamp>,
        last_seen_at: Timestamp,
        format: Option<VideoFormat>,
        stored: (Option<String>, Option<i64>, Option<i64>),
    }
    let rows: Vec<VideoRow> = {
        let stmt = st.get(VIDEO_ROWS_SQL)?;
        let rows = stmt
            .query_map([channel_id, source_id], |r| {
                let extra: String = r.get(4)?;
                let extra =
                    serde_json::from_str::<Map<String, Value>>(&extra).map_err(|e| conv(4, e))?;
                Ok(VideoRow {
                    id: r.get(0)?,
                    views: r.get(1)?,
                    published_at: ts_opt(r, 2)?,
                    last_seen_at: ts(3, r.get(3)?)?,
                    format: outlier::format_from(&extra, r.get(5)?),
                    stored: (r.get(6)?, r.get(7)?, r.get(8)?),
                })
            })
            .map_err(map_err)?;
        rows.collect::<Result<_, _>>().map_err(map_err)?
    };
    let Some(first) = rows.first() else {
        return Ok(());
    };
    // The row with the most views stands for the video (the first on a tie).
    let mut best = first;
    for r in &rows[1..] {
        if r.views > best.views {
            best = r;
        }
    }
    // Without a publication date no age counts, so no snapshot is needed.
    let mut history = Vec::new();
    if let Some(published) = best.published_at {
        let (a7, b7) = outlier::age_window_ms(published, 7);
        let (a30, b30) = outlier::age_window_ms(published, 30);
        let snapshots = st.get(AGE_SNAPSHOTS_SQL)?;
        for r in &rows {
            let found = snapshots
                .query_map(params![r.id, a7, b7, a30, b30], |s| {
                    Ok((ts(0, s.get(0)?)?, s.get::<_, i64>(1)?))
                })
                .map_err(map_err)?;
            for s in found {
                history.push(s.map_err(map_err)?);
            }
            if let Some(v) = r.views {
                history.push((r.last_seen_at, v));
            }
        }
    }
    let values = VideoValues::of(&ChannelVideo {
        published_at: best.published_at,
        views: best.views,
        format: best.format.or_else(|| rows.iter().find_map(|r| r.format)),
        history,
    });
    let format = values.format.map(VideoFormat::as_str);
    // Each of the three is in the `ix_results_recent*` indexes, so only those that change
    // are assigned (see [`INDEXED_ASSIGNMENTS`]).
    for r in &rows {
        let mut sets = Vec::new();
        let mut args: Vec<SqlValue> = vec![SqlValue::Integer(r.id)];
        let mut set = |column: &str, value: SqlValue| {
            args.push(value);
            sets.push(format!("{column} = ?{}", args.len()));
        };
        if r.stored.0.as_deref() != format {
            set(
                "video_format",
                format.map_or(SqlValue::Null, |f| SqlValue::Text(f.to_owned())),
            );
        }
        if r.stored.1 != values.at_7d {
            set(
                "views_7d",
                values.at_7d.map_or(SqlValue::Null, SqlValue::Integer),
            );
        }
        if r.stored.2 != values.at_30d {
            set(
                "views_30d",
                values.at_30d.map_or(SqlValue::Null, SqlValue::Integer),
            );
        }
        if sets.is_empty() {
            continue;
        }
        st.get(&format!(
            "UPDATE results SET {} WHERE id = ?1",
            sets.join(", ")
        ))?
        .execute(rusqlite::params_from_iter(args.iter()))
        .map_err(map_err)?;
    }
    Ok(())
}

/// Whether the channel (`?1`) has any video of a format (`?2`): one probe of
/// `ix_results_recent`.
pub const FORMAT_PRESENT_SQL: &str = "SELECT 1 FROM results INDEXED BY ix_results_recent
     WHERE channel_id = ?1 AND video_format = ?2 LIMIT 1";

/// The sample query of one basis: the channel's (`?1`) uploads of one format (`?2`)
/// published at or before `?3` with a value for the basis, newest first, ties by id then
/// most views first (so a video's first row is the one that stands for it). Each walks one
/// of the `ix_results_recent*` indexes and stops at the window.
pub fn sample_sql(basis: AgeBasis) -> &'static str {
    match basis {
        AgeBasis::Age7d => {
            "SELECT source_id, views_7d FROM results INDEXED BY ix_results_recent_7d
             WHERE channel_id = ?1 AND video_format = ?2 AND published_at <= ?3
               AND views_7d IS NOT NULL
             ORDER BY published_at DESC, source_id"
        }
        AgeBasis::Age30d => {
            "SELECT source_id, views_30d FROM results INDEXED BY ix_results_recent_30d
             WHERE channel_id = ?1 AND video_format = ?2 AND published_at <= ?3
               AND views_30d IS NOT NULL
             ORDER BY published_at DESC, source_id"
        }
        AgeBasis::Total => {
            "SELECT source_id, views FROM results INDEXED BY ix_results_recent
             WHERE channel_id = ?1 AND video_format = ?2 AND published_at <= ?3
               AND views IS NOT NULL
             ORDER BY published_at DESC, source_id, views DESC"
        }
    }
}

/// The channel's baselines as of `now` (for each format the channel has, one probe of
/// `ix_results_recent`), each from a sample read through an index that stops at the window: the same baselines [`outlier::baselines_of`] gives over all the
/// channel's videos.
fn compute_baselines(
    st: &mut Held<'_>,
    channel_id: &str,
    now: Timestamp,
    settings: &OutlierSettings,
) -> Result<Vec<Baseline>, PortError> {
    let mut out = Vec::new();
    for format in VideoFormat::ALL {
        let present = st
            .get(FORMAT_PRESENT_SQL)?
            .exists(params![channel_id, format.as_str()])
            .map_err(map_err)?;
        if !present {
            continue;
        }
        for basis in AgeBasis::ALL {
            let cutoff = match basis {
                AgeBasis::Total => outlier::total_cutoff(now, settings.baseline_min_age_days),
                _ => now,
            };
            let stmt = st.get(sample_sql(basis))?;
            let mut rows = stmt
                .query(params![
                    channel_id,
                    format.as_str(),
                    cutoff.as_millisecond()
                ])
                .map_err(map_err)?;
            let mut seen = std::collections::HashSet::new();
            let mut values = Vec::new();
            while values.len() < settings.window as usize {
                let Some(r) = rows.next().map_err(map_err)? else {
                    break;
                };
                let source_id: String = r.get(0).map_err(map_err)?;
                if seen.insert(source_id) {
                    values.push(r.get::<_, i64>(1).map_err(map_err)?);
                }
            }
            out.push(Baseline::from_sample(format, basis, values, settings));
        }
    }
    Ok(out)
}

/// The baselines stored for a channel, in [`compute_baselines`]'s order.
fn stored_baselines(st: &mut Held<'_>, channel_id: &str) -> Result<Vec<Baseline>, PortError> {
    let stmt = st.get(
        "SELECT format, basis, median_views, sample FROM channel_baselines WHERE channel_id = ?1",
    )?;
    let rows = stmt
        .query_map([channel_id], |r| {
            Ok(Baseline {
                format: format_col(r, 0)?.ok_or_else(|| conv(0, "no format"))?,
                basis: r
                    .get::<_, String>(1)?
                    .parse::<AgeBasis>()
                    .map_err(|e| conv(1, e))?,
                median: r.get(2)?,
                sample: u32::try_from(r.get::<_, i64>(3)?).map_err(|e| conv(3, e))?,
            })
        })
        .map_err(map_err)?;
    let mut out = rows.collect::<Result<Vec<_>, _>>().map_err(map_err)?;
    out.sort_by_key(|b| (b.format, b.basis));
    Ok(out)
}

/// Scores rows of a channel against `baselines` and writes the scores that changed: all
/// the channel's rows when `only` is `None`, else the rows of the videos it names. Reads
/// the stored values only (no snapshots, no JSON).
fn score_rows(
    st: &mut Held<'_>,
    channel_id: &str,
    only: Option<&std::collections::BTreeSet<&str>>,
    baselines: &[Baseline],
    now: Timestamp,
    settings: &OutlierSettings,
) -> Result<(), PortError> {
    const COLUMNS: &str = "id, source_id, video_format, published_at, views, views_7d, views_30d,
        outlier_score, outlier_basis, outlier_baseline, outlier_sample, outlier_views";
    struct ScoredRow {
        id: i64,
        source_id: String,
        values: VideoValues,
        stored: Option<OutlierScore>,
    }
    let read = |r: &Row<'_>| {
        Ok(ScoredRow {
            id: r.get(0)?,
            source_id: r.get(1)?,
            values: VideoValues {
                format: format_col(r, 2)?,
                published_at: ts_opt(r, 3)?,
                views: r.get(4)?,
                at_7d: r.get(5)?,
                at_30d: r.get(6)?,
            },
            stored: score_cols(r, 7)?,
        })
    };
    let mut rows: Vec<ScoredRow> = Vec::new();
    match only {
        None => {
            let stmt = st.get(&format!(
                "SELECT {COLUMNS} FROM results WHERE channel_id = ?1 ORDER BY source_id, platform"
            ))?;
            for r in stmt.query_map([channel_id], read).map_err(map_err)? {
                rows.push(r.map_err(map_err)?);
            }
        }
        Some(videos) => {
            let stmt = st.get(&format!(
                "SELECT {COLUMNS} FROM results WHERE channel_id = ?1 AND source_id = ?2 ORDER BY platform"
            ))?;
            for v in videos {
                for r in stmt.query_map([channel_id, v], read).map_err(map_err)? {
                    rows.push(r.map_err(map_err)?);
                }
            }
        }
    }
    // `outlier_score` is indexed (`ix_results_outlier`), so it is assigned only when it
    // changes (see [`INDEXED_ASSIGNMENTS`]); `?6` is always used, so the same arguments bind
    // both statements.
    const SCORE_SQL: &str = "UPDATE results SET outlier_score = ?2, outlier_basis = ?3,
        outlier_baseline = ?4, outlier_sample = ?5, outlier_views = ?6 WHERE id = ?1";
    const DETAILS_SQL: &str = "UPDATE results SET outlier_basis = ?3,
        outlier_baseline = ?4, outlier_sample = ?5, outlier_views = ?6 WHERE id = ?1";
    // A video's rows are adjacent; the row with the most views stands for it.
    let mut start = 0;
    while start < rows.len() {
        let mut end = start + 1;
        while end < rows.len() && rows[end].source_id == rows[start].source_id {
            end += 1;
        }
        let group = &rows[start..end];
        let mut best = &group[0];
        for r in &group[1..] {
            if r.values.views > best.values.views {
                best = r;
            }
        }
        let score = outlier::score_of(&best.values, baselines, now, settings);
        for r in group {
            if r.stored == score {
                continue;
            }
            let same_score = r.stored.map(|s| s.score) == score.map(|s| s.score);
            st.get(if same_score { DETAILS_SQL } else { SCORE_SQL })?
                .execute(params![
                    r.id,
                    score.map(|s| s.score),
                    score.map(|s| s.basis.as_str()),
                    score.map(|s| s.baseline),
                    score.map(|s| i64::from(s.sample)),
                    score.map(|s| s.views),
                ])
                .map_err(map_err)?;
        }
        start = end;
    }
    Ok(())
}

/// Brings a channel's baselines and scores up to date after `saved` videos of it were
/// written ([`ResultStore::save`]'s rule), at a cost bounded by the window and the saved
/// videos, not by the channel's size: the saved videos' values are recomputed, the
/// baselines are read through indexes that stop at the window, and only when a baseline
/// moved are the channel's other rows rescored (from stored values, without snapshots).
///
/// Only the saved videos in `refresh` have their values recomputed (the others were saved
/// unchanged in a way that cannot move them, see [`save_one`]). With `everything`, every
/// video of the channel is refreshed and rescored ([`ResultStore::rescore`]).
fn rescore_channel(
    st: &mut Held<'_>,
    channel_id: &str,
    saved: &std::collections::BTreeSet<&str>,
    refresh: &std::collections::BTreeSet<&str>,
    everything: bool,
    now: i64,
    settings: &OutlierSettings,
) -> Result<(), PortError> {
    let now =
        Timestamp::from_millisecond(now).map_err(|e| PortError::Unavailable(e.to_string()))?;
    for source_id in refresh {
        refresh_video(st, channel_id, source_id)?;
    }
    let baselines = compute_baselines(st, channel_id, now, settings)?;
    let moved = everything || stored_baselines(st, channel_id)? != baselines;
    score_rows(
        st,
        channel_id,
        (!moved).then_some(saved),
        &baselines,
        now,
        settings,
    )?;
    if moved {
        st.get("DELETE FROM channel_baselines WHERE channel_id = ?1")?
            .execute([channel_id])
            .map_err(map_err)?;
        let insert = st.get(
            "INSERT INTO channel_baselines (channel_id, format, basis, median_views, sample, computed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for b in &baselines {
            insert
                .execute(params![
                    channel_id,
                    b.format.as_str(),
                    b.basis.as_str(),
                    b.median,
                    i64::from(b.sample),
                    now.as_millisecond()
                ])
                .map_err(map_err)?;
        }
    } else {
        st.get("UPDATE channel_baselines SET computed_at = ?2 WHERE channel_id = ?1")?
            .execute(params![channel_id, now.as_millisecond()])
            .map_err(map_err)?;
    }
    Ok(())
}

impl SqliteStore {
    /// Blocking [`ResultStore::baselines`].
    ///
    /// # Errors
    /// As the port.
    pub fn baselines_blocking(&self, channel_id: &str) -> Result<Vec<ChannelBaseline>, PortError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT format, basis, median_views, sample, computed_at FROM channel_baselines
                     WHERE channel_id = ?1",
                )
                .map_err(map_err)?;
            let rows = stmt
                .query_map([channel_id], |r| {
                    Ok(ChannelBaseline {
                        channel_id: channel_id.to_owned(),
                        baseline: Baseline {
                            format: format_col(r, 0)?.ok_or_else(|| conv(0, "no format"))?,
                            basis: r
                                .get::<_, String>(1)?
                                .parse::<AgeBasis>()
                                .map_err(|e| conv(1, e))?,
                            median: r.get(2)?,
                            sample: u32::try_from(r.get::<_, i64>(3)?).map_err(|e| conv(3, e))?,
                        },
                        computed_at: ts(4, r.get(4)?)?,
                    })
                })
                .map_err(map_err)?;
            let mut out = rows.collect::<Result<Vec<_>, _>>().map_err(map_err)?;
            out.sort_by_key(|b| (b.baseline.format, b.baseline.basis));
            Ok(out)
        })
    }

    /// Blocking [`ResultStore::save`].
    ///
    /// # Errors
    /// As the port.
    pub fn save_blocking(
        &self,
        task: Option<TaskId>,
        items: &[ContentItem],
    ) -> Result<SaveReport, PortError> {
        for (i, item) in items.iter().enumerate() {
            item.validate()
                .map_err(|e| e.within(&format!("items[{i}]")))?;
        }
        let now = self.now_ms();
        let task = task.map(|t| t.0);
        let settings = self.options().outlier;
        let min_span = settings.growth_min_span_secs();
        let mut channels: std::collections::BTreeMap<&str, std::collections::BTreeSet<&str>> =
            std::collections::BTreeMap::new();
        for item in items {
            if let Some(c) = item.channel_id.as_deref() {
                channels
                    .entry(c)
                    .or_default()
                    .insert(item.source_id.as_str());
            }
        }
        let existing_sql =
            format!("SELECT {RESULT_COLUMNS} FROM results WHERE platform = ?1 AND source_id = ?2");
        self.write(|tx| {
            let mut st = Held::new(tx);
            let mut report = SaveReport::default();
            let mut refresh: std::collections::BTreeSet<(&str, &str)> =
                std::collections::BTreeSet::new();
            for item in items {
                if save_one(
                    &mut st,
                    &existing_sql,
                    task,
                    item,
                    now,
                    min_span,
                    &mut report,
                )? {
                    if let Some(c) = item.channel_id.as_deref() {
                        refresh.insert((c, item.source_id.as_str()));
                    }
                }
            }
            for (channel, saved) in &channels {
                let refresh: std::collections::BTreeSet<&str> = saved
                    .iter()
                    .copied()
                    .filter(|id| refresh.contains(&(*channel, *id)))
                    .collect();
                rescore_channel(&mut st, channel, saved, &refresh, false, now, &settings)?;
            }
            Ok(report)
        })
    }

    fn get_result_blocking(
        &self,
        platform: &str,
        source_id: &str,
    ) -> Result<(i64, StoredResult), PortError> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {RESULT_COLUMNS} FROM results WHERE platform = ?1 AND source_id = ?2"
            ))
            .and_then(|mut s| {
                s.query_row(params![platform, source_id], stored_from_row)
                    .optional()
            })
            .map_err(map_err)?
            .ok_or_else(|| PortError::NotFound(format!("result {platform}/{source_id}")))
        })
    }

    /// Blocking [`ResultStore::sightings`]: newest first through
    /// `ix_result_sightings_result`.
    ///
    /// # Errors
    /// As the port.
    pub fn sightings_blocking(
        &self,
        platform: &str,
        source_id: &str,
        limit: u32,
    ) -> Result<Vec<Sighting>, PortError> {
        prismq_domain::ports::check_page_limit(limit)?;
        let (id, _) = self.get_result_blocking(platform, source_id)?;
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT source, task_id, rank, seen_at FROM result_sightings
                     WHERE result_id = ?1 ORDER BY seen_at DESC, id DESC LIMIT ?2",
                )
                .map_err(map_err)?;
            let rows = stmt
                .query_map(params![id, i64::from(limit)], |r| {
                    Ok(Sighting {
                        source: r.get(0)?,
                        task_id: r.get::<_, Option<i64>>(1)?.map(TaskId),
                        rank: r.get(2)?,
                        seen_at: ts(3, r.get(3)?)?,
                    })
                })
                .map_err(map_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
        })
    }

    /// [`ResultStore::find`]: a loose index scan, walking the distinct platforms through the
    /// (platform, source_id) key one `min` at a time and probing each for the id, so the
    /// cost is a few probes per platform, never a scan of the results.
    ///
    /// # Errors
    /// As the port.
    pub fn find_blocking(&self, source_id: &str) -> Result<Vec<StoredResult>, PortError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&find_sql()).map_err(map_err)?;
            let rows = stmt
                .query_map([source_id], |r| stored_from_row(r).map(|(_, s)| s))
                .map_err(map_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
        })
    }

    fn history_blocking(
        &self,
        platform: &str,
        source_id: &str,
    ) -> Result<Vec<MetricSnapshot>, PortError> {
        let (id, _) = self.get_result_blocking(platform, source_id)?;
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT captured_at, views, likes, comments FROM result_metrics WHERE result_id = ?1 ORDER BY captured_at, id")
                .map_err(map_err)?;
            let rows = stmt
                .query_map([id], |r| {
                    Ok(MetricSnapshot { captured_at: ts(0, r.get(0)?)?, metrics: Metrics { views: r.get(1)?, likes: r.get(2)?, comments: r.get(3)? } })
                })
                .map_err(map_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
        })
    }

    /// Blocking [`ResultStore::query`].
    ///
    /// # Errors
    /// As the port.
    pub fn query_blocking(&self, q: &ResultQuery) -> Result<Vec<StoredResult>, PortError> {
        q.validate()?;
        self.read(|conn| {
            let plan = match &q.source {
                Some(source) => {
                    let n: i64 = conn
                        .prepare_cached(SOURCE_SIGHTINGS_SQL)
                        .and_then(|mut s| {
                            s.query_row(params![source, RARE_SOURCE_SIGHTINGS], |r| r.get(0))
                        })
                        .map_err(map_err)?;
                    // The largest id (one probe of the key): the records, give or take
                    // those deleted.
                    let records: Option<i64> = conn
                        .prepare_cached("SELECT max(id) FROM results")
                        .and_then(|mut s| s.query_row([], |r| r.get(0)))
                        .map_err(map_err)?;
                    source_plan(n, records.unwrap_or(0), q.limit)
                }
                None => SourcePlan::WalkOrder,
            };
            let statements = query_statements_with(q, plan);
            let mut out = Vec::new();
            for (sql, args) in &statements {
                let mut args = args.clone();
                let left = q.limit as usize - out.len();
                if left == 0 {
                    break;
                }
                if let Some(limit) = args.last_mut() {
                    *limit = SqlValue::Integer(left as i64);
                }
                let mut stmt = conn.prepare_cached(sql).map_err(map_err)?;
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(args.iter()), stored_from_row)
                    .map_err(map_err)?;
                for r in rows {
                    out.push(r.map_err(map_err)?.1);
                }
            }
            Ok(out)
        })
    }

    /// Blocking [`ResultStore::rescore`]: the channels are listed through
    /// `ix_results_channel` one `min` probe at a time, and each is rescored in its own
    /// write transaction, so writers wait for one channel at most.
    ///
    /// # Errors
    /// As the port.
    pub fn rescore_blocking(&self, channel_id: Option<&str>) -> Result<RescoreReport, PortError> {
        let settings = self.options().outlier;
        let mut report = RescoreReport::default();
        let next = |after: &str| -> Result<Option<String>, PortError> {
            self.read(|conn| {
                conn.prepare_cached(
                    "SELECT min(channel_id) FROM results WHERE channel_id IS NOT NULL AND channel_id > ?1",
                )
                .and_then(|mut s| s.query_row([after], |r| r.get(0)))
                .map_err(map_err)
            })
        };
        let mut channel = match channel_id {
            Some(c) => Some(c.to_owned()),
            None => next("")?,
        };
        while let Some(c) = channel {
            let now = self.now_ms();
            let videos: Vec<String> = self.read(|conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT DISTINCT source_id FROM results WHERE channel_id = ?1 ORDER BY source_id",
                    )
                    .map_err(map_err)?;
                let rows = stmt.query_map([&c], |r| r.get(0)).map_err(map_err)?;
                rows.collect::<Result<_, _>>().map_err(map_err)
            })?;
            if !videos.is_empty() {
                let saved: std::collections::BTreeSet<&str> =
                    videos.iter().map(String::as_str).collect();
                self.write(|tx| {
                    rescore_channel(&mut Held::new(tx), &c, &saved, &saved, true, now, &settings)
                })?;
                report.channels += 1;
                report.videos += videos.len() as u64;
            }
            channel = match channel_id {
                Some(_) => None,
                None => next(&c)?,
            };
        }
        if channel_id.is_none() {
            let min_span = settings.growth_min_span_secs();
            let mut after = 0_i64;
            loop {
                let ids: Vec<i64> = self.read(|conn| {
                    let mut stmt = conn
                        .prepare_cached(
                            "SELECT id FROM results WHERE id > ?1 ORDER BY id LIMIT 1000",
                        )
                        .map_err(map_err)?;
                    let rows = stmt.query_map([after], |r| r.get(0)).map_err(map_err)?;
                    rows.collect::<Result<_, _>>().map_err(map_err)
                })?;
                let Some(&last) = ids.last() else { break };
                self.write(|tx| {
                    let mut st = Held::new(tx);
                    for id in &ids {
                        refresh_growth(&mut st, *id, None, None, min_span)?;
                    }
                    Ok(())
                })?;
                report.growth += ids.len() as u64;
                after = last;
            }
        }
        Ok(report)
    }

    fn count_blocking(&self, platform: Option<&str>) -> Result<u64, PortError> {
        self.read(|conn| {
            let n: i64 = match platform {
                Some(s) => conn
                    .prepare_cached("SELECT count(*) FROM results WHERE platform = ?1")
                    .and_then(|mut st| st.query_row([s], |r| r.get(0))),
                None => conn
                    .prepare_cached("SELECT count(*) FROM results")
                    .and_then(|mut st| st.query_row([], |r| r.get(0))),
            }
            .map_err(map_err)?;
            Ok(n.max(0) as u64)
        })
    }
}

impl SqliteStore {
    /// Computes the growth of the records listed in `growth_pending` (schema v9: records
    /// merged by v8 or saved before v7, with history but no growth yet) as a save would, a
    /// thousand per write transaction, removing each batch from the table in the same
    /// transaction; so an interrupted run resumes where it stopped and a finished one costs
    /// one empty read. Run after migrating. Returns how many records it computed.
    ///
    /// # Errors
    /// As the port.
    pub fn catch_up_growth_blocking(&self) -> Result<u64, PortError> {
        let min_span = self.options().outlier.growth_min_span_secs();
        let mut done = 0_u64;
        loop {
            let ids: Vec<i64> = self.read(|conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT result_id FROM growth_pending ORDER BY result_id LIMIT 1000",
                    )
                    .map_err(map_err)?;
                let rows = stmt.query_map([], |r| r.get(0)).map_err(map_err)?;
                rows.collect::<Result<_, _>>().map_err(map_err)
            })?;
            let (Some(&first), Some(&last)) = (ids.first(), ids.last()) else {
                break;
            };
            self.write(|tx| {
                let mut st = Held::new(tx);
                for id in &ids {
                    refresh_growth(&mut st, *id, None, None, min_span)?;
                }
                drop(st);
                tx.prepare_cached("DELETE FROM growth_pending WHERE result_id BETWEEN ?1 AND ?2")
                    .and_then(|mut s| s.execute([first, last]))
                    .map_err(map_err)?;
                Ok(())
            })?;
            done += ids.len() as u64;
        }
        if done > 0 {
            tracing::info!(
                records = done,
                "growth computed for records migrated without it"
            );
        }
        Ok(done)
    }
}

#[async_trait]
impl ResultStore for SqliteStore {
    async fn save(
        &self,
        task: Option<TaskId>,
        items: &[ContentItem],
    ) -> Result<SaveReport, PortError> {
        let items = items.to_vec();
        self.blocking(move |s| s.save_blocking(task, &items)).await
    }

    async fn get(&self, platform: &str, source_id: &str) -> Result<StoredResult, PortError> {
        let (platform, source_id) = (platform.to_owned(), source_id.to_owned());
        self.blocking(move |s| s.get_result_blocking(&platform, &source_id).map(|(_, r)| r))
            .await
    }

    async fn sightings(
        &self,
        platform: &str,
        source_id: &str,
        limit: u32,
    ) -> Result<Vec<Sighting>, PortError> {
        let (platform, source_id) = (platform.to_owned(), source_id.to_owned());
        self.blocking(move |s| s.sightings_blocking(&platform, &source_id, limit))
            .await
    }

    async fn find(&self, source_id: &str) -> Result<Vec<StoredResult>, PortError> {
        let source_id = source_id.to_owned();
        self.blocking(move |s| s.find_blocking(&source_id)).await
    }

    async fn history(
        &self,
        platform: &str,
        source_id: &str,
    ) -> Result<Vec<MetricSnapshot>, PortError> {
        let (platform, source_id) = (platform.to_owned(), source_id.to_owned());
        self.blocking(move |s| s.history_blocking(&platform, &source_id))
            .await
    }

    async fn query(&self, query: &ResultQuery) -> Result<Vec<StoredResult>, PortError> {
        let query = query.clone();
        self.blocking(move |s| s.query_blocking(&query)).await
    }

    async fn baselines(&self, channel_id: &str) -> Result<Vec<ChannelBaseline>, PortError> {
        let channel_id = channel_id.to_owned();
        self.blocking(move |s| s.baselines_blocking(&channel_id))
            .await
    }

    async fn rescore(&self, channel_id: Option<String>) -> Result<RescoreReport, PortError> {
        self.blocking(move |s| s.rescore_blocking(channel_id.as_deref()))
            .await
    }

    async fn count(&self, platform: Option<String>) -> Result<u64, PortError> {
        self.blocking(move |s| s.count_blocking(platform.as_deref()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::StatementStatus;

    const SQL: &str = "SELECT c FROM t WHERE a = ?1 AND b = ?2 ORDER BY id";

    fn table() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT, c INTEGER);
             CREATE INDEX ix_t ON t (a, b);
             INSERT INTO t (a, b, c) VALUES ('x', 'y', 1), ('x', 'z', 2);",
        )
        .unwrap();
        conn
    }

    #[test]
    fn a_held_statement_is_rebound_without_being_prepared_again() {
        // Taken from the cache for each use, the statement is compiled again each time
        // (its bindings are cleared on the way back): the reason `Held` exists.
        let conn = table();
        for (b, c) in [("y", 1), ("z", 2), ("y", 1)] {
            let mut s = conn.prepare_cached(SQL).unwrap();
            assert_eq!(s.query_row(["x", b], |r| r.get::<_, i64>(0)).unwrap(), c);
        }
        let again = conn
            .prepare_cached(SQL)
            .unwrap()
            .get_status(StatementStatus::RePrepare);
        assert!(again >= 2, "re-prepared {again} times through the cache");

        // Held for the batch: prepared once, rebound, never compiled again.
        let conn = table();
        let mut held = Held::new(&conn);
        for (b, c) in [("y", 1), ("z", 2), ("y", 1)] {
            let s = held.get(SQL).unwrap();
            assert_eq!(s.query_row(["x", b], |r| r.get::<_, i64>(0)).unwrap(), c);
        }
        assert_eq!(held.stmts.len(), 1);
        assert_eq!(
            held.get(SQL)
                .unwrap()
                .get_status(StatementStatus::RePrepare),
            0
        );
    }
}
