//! The last writes of a save: each record's row written once, with what the save changed
//! in it (its fields, `last_seen_at`, growth), its video's values and its score together,
//! so a record saved and rescored costs one new row version rather than three (every
//! version is an entry in each of the table's sixteen indexes).
//!
//! The save leaves its records [`Pending`]; the rescore reads a channel through them
//! ([`Pending::row`], the row as it will be) and adds what it computed to [`RowWrites`];
//! [`flush`] then writes everything, one statement per kind of row.

use std::collections::HashMap;

use deadpool_postgres::GenericClient;
use serde_json::Value;
use tokio_postgres::types::ToSql;

use prismq_domain::growth::{Growth, GrowthWindow};
use prismq_domain::outlier::{OutlierScore, VideoFormat, VideoValues};
use prismq_domain::{ContentItem, PortError, Timestamp};

use crate::error::{corrupt, map_err};

/// A record's row as a save leaves it, in the columns the rescore reads.
#[derive(Debug, Clone)]
pub(super) struct OverlayRow {
    pub platform: String,
    pub source_id: String,
    pub channel_id: Option<String>,
    pub views: Option<i64>,
    pub published_at: Option<Timestamp>,
    pub last_seen_at: Timestamp,
    /// The format its own fields say (`extra`, duration), as a video's values take it.
    pub format_source: Option<VideoFormat>,
    /// `video_format` after the save's own update (before any rescore).
    pub video_format: Option<VideoFormat>,
    pub at_7d: Option<i64>,
    pub at_30d: Option<i64>,
    /// The stored score.
    pub score: Option<OutlierScore>,
}

/// What the save's update of a known record writes.
pub(super) enum PendingWrite {
    /// Every field of the merged item, and the snapshot columns when its metrics changed.
    Changed {
        merged: Box<ContentItem>,
        metrics_changed: bool,
        format: Option<&'static str>,
        growth: Option<Growth>,
    },
    /// Seen again unchanged: `last_seen_at`, the task, a format where it had none.
    Unchanged {
        format: Option<&'static str>,
        growth: Option<Growth>,
    },
}

/// A known record of a save, not written yet.
pub(super) struct Pending {
    pub id: i64,
    pub row: OverlayRow,
    pub write: PendingWrite,
}

/// What the rescore computed: the values of each refreshed row (by id) and the score of
/// each row whose score changed.
#[derive(Default)]
pub(super) struct RowWrites {
    pub values: HashMap<i64, VideoValues>,
    pub scores: HashMap<i64, Option<OutlierScore>>,
}

/// One `UPDATE results r … FROM unnest(…) AS u(…) WHERE r.id = u.id` being built. Its
/// `SET` clauses name the save's instant `$NOW` and its task `$TASK`, bound after the
/// arrays when used.
struct Update<'p> {
    sets: Vec<String>,
    columns: Vec<(&'static str, &'static str)>,
    args: Vec<&'p (dyn ToSql + Sync)>,
    now: &'p i64,
    task: &'p Option<i64>,
}

impl<'p> Update<'p> {
    fn new(now: &'p i64, task: &'p Option<i64>, ids: &'p Vec<i64>) -> Self {
        Update {
            sets: Vec::new(),
            columns: vec![("id", "bigint")],
            args: vec![ids],
            now,
            task,
        }
    }

    fn column(&mut self, name: &'static str, ty: &'static str, arg: &'p (dyn ToSql + Sync)) {
        self.columns.push((name, ty));
        self.args.push(arg);
    }

    fn set(&mut self, clause: impl Into<String>) {
        self.sets.push(clause.into());
    }

    /// The statement and its arguments.
    fn statement(&self) -> (String, Vec<&'p (dyn ToSql + Sync)>) {
        let arrays: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, ty))| format!("${}::{ty}[]", i + 1))
            .collect();
        let names: Vec<&str> = self.columns.iter().map(|(n, _)| *n).collect();
        let mut sets = self.sets.join(", ");
        let mut args = self.args.clone();
        if sets.contains("$NOW") || sets.contains("$TASK") {
            sets = sets
                .replace("$NOW", &format!("${}", args.len() + 1))
                .replace("$TASK", &format!("${}", args.len() + 2));
            args.push(self.now);
            args.push(self.task);
        }
        let sql = format!(
            "UPDATE results r SET {sets} FROM unnest({}) AS u({}) WHERE r.id = u.id",
            arrays.join(", "),
            names.join(", ")
        );
        (sql, args)
    }

    async fn run(&self, c: &impl GenericClient) -> Result<u64, PortError> {
        let (sql, args) = self.statement();
        let stmt = c.prepare_cached(&sql).await.map_err(map_err)?;
        c.execute(&stmt, &args).await.map_err(map_err)
    }
}

/// The growth arrays: whether it moved, then each window's rate and span.
#[derive(Default)]
struct GrowthArrays {
    grown: Vec<bool>,
    rate: [Vec<Option<f64>>; 4],
    span: [Vec<Option<i64>>; 4],
}

impl GrowthArrays {
    fn push(&mut self, g: Option<&Growth>) {
        self.grown.push(g.is_some());
        for w in GrowthWindow::ALL {
            let r = g.and_then(|g| g.get(w));
            self.rate[w.index()].push(r.map(|r| r.views_per_hour));
            self.span[w.index()].push(r.map(|r| r.span_secs));
        }
    }

    fn add<'p>(&'p self, u: &mut Update<'p>) {
        u.column("grown", "bool", &self.grown);
        const NAMES: [(&str, &str, &str, &str); 4] = [
            ("g1h", "s1h", "growth_1h", "growth_1h_span"),
            ("g24h", "s24h", "growth_24h", "growth_24h_span"),
            ("g7d", "s7d", "growth_7d", "growth_7d_span"),
            ("g30d", "s30d", "growth_30d", "growth_30d_span"),
        ];
        for (i, (g, s, gc, sc)) in NAMES.iter().enumerate() {
            u.column(g, "float8", &self.rate[i]);
            u.column(s, "bigint", &self.span[i]);
            u.set(format!(
                "{gc} = CASE WHEN u.grown THEN u.{g} ELSE r.{gc} END"
            ));
            u.set(format!(
                "{sc} = CASE WHEN u.grown THEN u.{s} ELSE r.{sc} END"
            ));
        }
    }
}

/// The fields of the merged items of changed records.
#[derive(Default)]
struct FieldArrays<'a> {
    title: Vec<&'a str>,
    description: Vec<Option<&'a str>>,
    url: Vec<Option<&'a str>>,
    tags: Vec<Value>,
    channel: Vec<Option<&'a str>>,
    channel_id: Vec<Option<&'a str>>,
    published_at: Vec<Option<i64>>,
    duration: Vec<Option<i64>>,
    views: Vec<Option<i64>>,
    likes: Vec<Option<i64>>,
    comments: Vec<Option<i64>>,
    extra: Vec<Value>,
    metrics_changed: Vec<bool>,
    last_source: Vec<&'a str>,
    last_rank: Vec<Option<i64>>,
}

impl<'a> FieldArrays<'a> {
    fn push(&mut self, item: &'a ContentItem, metrics_changed: bool) -> Result<(), PortError> {
        self.title.push(&item.title);
        self.description.push(item.description.as_deref());
        self.url.push(item.url.as_deref());
        self.tags
            .push(serde_json::to_value(&item.tags).map_err(|e| corrupt("tags", e))?);
        self.channel.push(item.channel.as_deref());
        self.channel_id.push(item.channel_id.as_deref());
        self.published_at
            .push(item.published_at.map(|t| t.as_millisecond()));
        self.duration.push(item.duration_secs);
        self.views.push(item.metrics.views);
        self.likes.push(item.metrics.likes);
        self.comments.push(item.metrics.comments);
        self.extra.push(Value::Object(item.extra.clone()));
        self.metrics_changed.push(metrics_changed);
        self.last_source.push(&item.source);
        self.last_rank.push(item.rank.map(i64::from));
        Ok(())
    }

    fn add<'p>(&'p self, u: &mut Update<'p>) {
        u.column("title", "text", &self.title);
        u.column("description", "text", &self.description);
        u.column("url", "text", &self.url);
        u.column("tags", "jsonb", &self.tags);
        u.column("channel", "text", &self.channel);
        u.column("channel_id", "text", &self.channel_id);
        u.column("published_at", "bigint", &self.published_at);
        u.column("duration", "bigint", &self.duration);
        u.column("views", "bigint", &self.views);
        u.column("likes", "bigint", &self.likes);
        u.column("comments", "bigint", &self.comments);
        u.column("extra", "jsonb", &self.extra);
        u.column("metrics_changed", "bool", &self.metrics_changed);
        u.column("last_source", "text", &self.last_source);
        u.column("last_rank", "bigint", &self.last_rank);
        for col in [
            "title",
            "description",
            "url",
            "tags",
            "channel",
            "channel_id",
            "published_at",
            "duration",
            "views",
            "likes",
            "comments",
            "extra",
            "last_source",
            "last_rank",
        ] {
            u.set(format!("{col} = u.{col}"));
        }
        u.set("last_seen_at = $NOW::bigint");
        u.set("last_task_id = COALESCE($TASK::bigint, r.last_task_id)");
        u.set("metrics_at = CASE WHEN u.metrics_changed THEN $NOW::bigint ELSE r.metrics_at END");
        u.set(
            "first_metrics_at = CASE WHEN r.first_views IS NULL AND u.views IS NOT NULL THEN $NOW::bigint
                                     ELSE r.first_metrics_at END",
        );
        u.set("first_views = COALESCE(r.first_views, u.views)");
    }
}

/// A video's values and scores, for the rows that have them.
#[derive(Default)]
struct RescoreArrays {
    value_format: Vec<Option<&'static str>>,
    at_7d: Vec<Option<i64>>,
    at_30d: Vec<Option<i64>>,
    scored: Vec<bool>,
    score: Vec<Option<f64>>,
    basis: Vec<Option<&'static str>>,
    baseline: Vec<Option<f64>>,
    sample: Vec<Option<i64>>,
    views: Vec<Option<i64>>,
}

impl RescoreArrays {
    fn push(&mut self, values: Option<&VideoValues>, score: Option<&Option<OutlierScore>>) {
        if let Some(v) = values {
            self.value_format.push(v.format.map(VideoFormat::as_str));
            self.at_7d.push(v.at_7d);
            self.at_30d.push(v.at_30d);
        }
        self.scored.push(score.is_some());
        let s = score.copied().flatten();
        self.score.push(s.map(|s| s.score));
        self.basis.push(s.map(|s| s.basis.as_str()));
        self.baseline.push(s.map(|s| s.baseline));
        self.sample.push(s.map(|s| i64::from(s.sample)));
        self.views.push(s.map(|s| s.views));
    }

    /// Adds the values (when `with_values`; then `video_format` too) and the scores.
    fn add<'p>(&'p self, u: &mut Update<'p>, with_values: bool) {
        if with_values {
            u.column("value_format", "text", &self.value_format);
            u.column("at_7d", "bigint", &self.at_7d);
            u.column("at_30d", "bigint", &self.at_30d);
            u.set("video_format = u.value_format");
            u.set("views_7d = u.at_7d");
            u.set("views_30d = u.at_30d");
        }
        if self.scored.iter().any(|s| *s) {
            u.column("scored", "bool", &self.scored);
            u.column("score", "float8", &self.score);
            u.column("basis", "text", &self.basis);
            u.column("baseline", "float8", &self.baseline);
            u.column("sample", "bigint", &self.sample);
            u.column("score_views", "bigint", &self.views);
            for (col, arg) in [
                ("outlier_score", "score"),
                ("outlier_basis", "basis"),
                ("outlier_baseline", "baseline"),
                ("outlier_sample", "sample"),
                ("outlier_views", "score_views"),
            ] {
                u.set(format!(
                    "{col} = CASE WHEN u.scored THEN u.{arg} ELSE r.{col} END"
                ));
            }
        }
    }
}

/// The rows of one update statement.
#[derive(Default)]
struct Group<'a> {
    ids: Vec<i64>,
    fields: FieldArrays<'a>,
    formats: Vec<Option<&'static str>>,
    growth: GrowthArrays,
    rescore: RescoreArrays,
}

/// Which rows a statement updates: a save's changed records, its unchanged ones, or other
/// rows the rescore wrote; with their video's values or without (the statements without
/// leave `views_7d` out of their `SET`, so it is written only where it was recomputed).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Changed,
    Unchanged,
    Other,
}

/// Writes the pending records and the rescore's values and scores: up to six statements
/// (three kinds of rows, with values or without), pipelined.
pub(super) async fn flush(
    c: &impl GenericClient,
    pending: &[Pending],
    writes: &RowWrites,
    now: i64,
    task: Option<i64>,
) -> Result<(), PortError> {
    let mut groups: [[Group<'_>; 2]; 3] = Default::default();
    let slot = |k: Kind| match k {
        Kind::Changed => 0,
        Kind::Unchanged => 1,
        Kind::Other => 2,
    };
    let mut seen = std::collections::HashSet::new();
    for p in pending {
        seen.insert(p.id);
        let values = writes.values.get(&p.id);
        let score = writes.scores.get(&p.id);
        let (kind, growth) = match &p.write {
            PendingWrite::Changed { growth, .. } => (Kind::Changed, growth.as_ref()),
            PendingWrite::Unchanged { growth, .. } => (Kind::Unchanged, growth.as_ref()),
        };
        let g = &mut groups[slot(kind)][usize::from(values.is_some())];
        g.ids.push(p.id);
        match &p.write {
            PendingWrite::Changed {
                merged,
                metrics_changed,
                format,
                ..
            } => {
                g.fields.push(merged, *metrics_changed)?;
                g.formats.push(*format);
            }
            PendingWrite::Unchanged { format, .. } => g.formats.push(*format),
        }
        g.growth.push(growth);
        g.rescore.push(values, score);
    }
    let mut others: Vec<i64> = writes
        .values
        .keys()
        .chain(writes.scores.keys())
        .copied()
        .filter(|id| !seen.contains(id))
        .collect();
    others.sort_unstable();
    others.dedup();
    for id in others {
        let values = writes.values.get(&id);
        let g = &mut groups[slot(Kind::Other)][usize::from(values.is_some())];
        g.ids.push(id);
        g.rescore.push(values, writes.scores.get(&id));
    }

    let mut updates = Vec::new();
    for (k, kind) in [Kind::Changed, Kind::Unchanged, Kind::Other]
        .into_iter()
        .enumerate()
    {
        for (with_values, g) in groups[k].iter().enumerate() {
            if g.ids.is_empty() {
                continue;
            }
            let with_values = with_values == 1;
            let mut u = Update::new(&now, &task, &g.ids);
            match kind {
                Kind::Changed => {
                    g.fields.add(&mut u);
                    g.growth.add(&mut u);
                    if !with_values {
                        u.column("format", "text", &g.formats);
                        u.set("video_format = u.format");
                    }
                }
                Kind::Unchanged => {
                    u.set("last_seen_at = $NOW::bigint");
                    u.set("last_task_id = COALESCE($TASK::bigint, r.last_task_id)");
                    g.growth.add(&mut u);
                    if !with_values {
                        // A record of a channel keeps its video's format (the rescore's).
                        u.column("format", "text", &g.formats);
                        u.set(
                            "video_format = CASE WHEN r.channel_id IS NULL OR r.video_format IS NULL
                                                 THEN u.format ELSE r.video_format END",
                        );
                    }
                }
                Kind::Other => {}
            }
            g.rescore.add(&mut u, with_values);
            if u.sets.is_empty() {
                continue;
            }
            updates.push(u);
        }
    }
    // Pipelined: sent together, run in this order.
    futures_util::future::try_join_all(updates.iter().map(|u| u.run(c))).await?;
    Ok(())
}
