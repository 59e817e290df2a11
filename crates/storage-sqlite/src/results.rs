//! The result store: batch upserts deduplicated on (source, source_id), metric history
//! written only on change, and ranked queries.

use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, OptionalExtension, Row, Transaction};
use serde_json::{Map, Value};

use prismq_domain::outlier::{
    self, AgeBasis, Baseline, ChannelVideo, OutlierScore, OutlierSettings, VideoFormat,
};
use prismq_domain::ports::{
    ChannelBaseline, MetricSnapshot, ResultOrder, ResultQuery, ResultStore, StoredResult,
};
use prismq_domain::task::TaskId;
use prismq_domain::{ContentItem, Metrics, PortError, SaveReport, Timestamp};

use crate::codec::{ts, ts_opt};
use crate::error::map_err;
use crate::SqliteStore;

const RESULT_COLUMNS: &str = "id, source, source_id, title, description, url, tags, channel, channel_id, published_at, duration, \
     views, likes, comments, extra, first_seen_at, last_seen_at, last_task_id, first_views, first_metrics_at, metrics_at, \
     video_format, outlier_score, outlier_basis, outlier_baseline, outlier_sample, outlier_views";

/// [`ResultStore::find`]'s query. The recursive part walks the distinct sources in key
/// order (each step one `min` probe of the unique (source, source_id) index, the skip-scan
/// SQLite does not do by itself without `ANALYZE` statistics); the outer query probes each
/// source for the id.
pub fn find_sql() -> String {
    format!(
        "WITH RECURSIVE sources(source) AS (
            SELECT min(source) FROM results
            UNION ALL
            SELECT (SELECT min(r.source) FROM results r WHERE r.source > sources.source)
            FROM sources WHERE sources.source IS NOT NULL
        )
        SELECT {RESULT_COLUMNS} FROM results
        WHERE source_id = ?1 AND source IN (SELECT source FROM sources WHERE source IS NOT NULL)
        ORDER BY source"
    )
}

/// [`ResultStore::query`]'s statement and arguments for `q` (already validated). Public so
/// a test can check its plan: `--order outlier` walks `ix_results_outlier` and never sorts.
pub fn query_sql(q: &ResultQuery) -> (String, Vec<SqlValue>) {
    let mut sql = format!("SELECT {RESULT_COLUMNS} FROM results WHERE 1 = 1");
    let mut args: Vec<SqlValue> = Vec::new();
    if let Some(source) = &q.source {
        sql.push_str(" AND source = ?");
        args.push(SqlValue::Text(source.clone()));
    }
    if let Some(since) = q.since {
        sql.push_str(" AND last_seen_at >= ?");
        args.push(SqlValue::Integer(since.as_millisecond()));
    }
    if let Some(format) = q.format {
        sql.push_str(" AND video_format = ?");
        args.push(SqlValue::Text(format.as_str().to_owned()));
    }
    if let Some(lo) = q.min_score {
        sql.push_str(" AND outlier_score >= ?");
        args.push(SqlValue::Real(lo));
    }
    if let Some(hi) = q.max_score {
        sql.push_str(" AND outlier_score <= ?");
        args.push(SqlValue::Real(hi));
    }
    sql.push_str(match q.order {
        ResultOrder::Views => " ORDER BY views IS NULL, views DESC, source, source_id",
        ResultOrder::Recent => {
            " ORDER BY published_at IS NULL, published_at DESC, source, source_id"
        }
        ResultOrder::Growth => "",
        // ix_results_outlier is in exactly this order (NULLs last when descending).
        ResultOrder::Outlier => " ORDER BY outlier_score DESC, source, source_id",
    });
    if q.order == ResultOrder::Growth {
        sql.push_str(&format!(" ORDER BY {GROWTH_SQL} DESC, source, source_id"));
    }
    sql.push_str(" LIMIT ? OFFSET ?");
    args.push(SqlValue::Integer(i64::from(q.limit)));
    args.push(SqlValue::Integer(
        i64::try_from(q.offset).unwrap_or(i64::MAX),
    ));
    (sql, args)
}

/// Views gained per hour between the first and latest snapshots, as SQL.
const GROWTH_SQL: &str =
    "(CASE WHEN metrics_at > first_metrics_at AND views IS NOT NULL AND first_views IS NOT NULL
    THEN (views - first_views) * 3600000.0 / (metrics_at - first_metrics_at) ELSE 0.0 END)";

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

fn stored_from_row(r: &Row<'_>) -> rusqlite::Result<(i64, StoredResult)> {
    let tags: String = r.get(6)?;
    let extra: String = r.get(14)?;
    let item = ContentItem {
        source: r.get(1)?,
        source_id: r.get(2)?,
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
    let first_views: Option<i64> = r.get(18)?;
    let first_at: i64 = r.get(19)?;
    let metrics_at: i64 = r.get(20)?;
    let views_per_hour = match (item.metrics.views, first_views) {
        (Some(v), Some(f)) if metrics_at > first_at => {
            (v - f) as f64 * 3_600_000.0 / (metrics_at - first_at) as f64
        }
        _ => 0.0,
    };
    Ok((
        r.get(0)?,
        StoredResult {
            item,
            first_seen_at: ts(15, r.get(15)?)?,
            last_seen_at: ts(16, r.get(16)?)?,
            last_task_id: r.get::<_, Option<i64>>(17)?.map(TaskId),
            views_per_hour,
            format: format_col(r, 21)?,
            outlier: score_cols(r, 22)?,
        },
    ))
}

fn snapshot(tx: &Transaction<'_>, result_id: i64, now: i64, m: &Metrics) -> Result<(), PortError> {
    tx.prepare_cached("INSERT INTO result_metrics (result_id, captured_at, views, likes, comments) VALUES (?1, ?2, ?3, ?4, ?5)")
        .and_then(|mut s| s.execute(params![result_id, now, m.views, m.likes, m.comments]))
        .map_err(map_err)?;
    Ok(())
}

fn save_one(
    tx: &Transaction<'_>,
    task: Option<i64>,
    item: &ContentItem,
    now: i64,
    report: &mut SaveReport,
) -> Result<(), PortError> {
    let existing = tx
        .prepare_cached(&format!(
            "SELECT {RESULT_COLUMNS} FROM results WHERE source = ?1 AND source_id = ?2"
        ))
        .and_then(|mut s| {
            s.query_row(params![item.source, item.source_id], stored_from_row)
                .optional()
        })
        .map_err(map_err)?;
    let tags =
        serde_json::to_string(&item.tags).map_err(|e| PortError::Unavailable(e.to_string()))?;
    let extra = Value::Object(item.extra.clone()).to_string();
    let published = item.published_at.map(|t| t.as_millisecond());
    let format = outlier::format_of(item).map(VideoFormat::as_str);
    let m = &item.metrics;
    match existing {
        None => {
            let id: i64 = tx
                .prepare_cached(
                    "INSERT INTO results (source, source_id, title, description, url, tags, channel, channel_id, published_at, duration,
                       views, likes, comments, extra, first_seen_at, last_seen_at, last_task_id, first_views, first_metrics_at, metrics_at, video_format)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15, ?16, ?11, ?15, ?15, ?17) RETURNING id",
                )
                .and_then(|mut s| {
                    s.query_row(
                        params![
                            item.source, item.source_id, item.title, item.description, item.url, tags, item.channel, item.channel_id,
                            published, item.duration_secs, m.views, m.likes, m.comments, extra, now, task, format
                        ],
                        |r| r.get(0),
                    )
                })
                .map_err(map_err)?;
            snapshot(tx, id, now, m)?;
            report.inserted += 1;
        }
        Some((id, stored)) => {
            let metrics_changed = stored.item.metrics != item.metrics;
            if stored.item == *item {
                tx.prepare_cached("UPDATE results SET last_seen_at = ?2, last_task_id = COALESCE(?3, last_task_id), video_format = ?4 WHERE id = ?1")
                    .and_then(|mut s| s.execute(params![id, now, task, format]))
                    .map_err(map_err)?;
                report.unchanged += 1;
                return Ok(());
            }
            tx.prepare_cached(
                "UPDATE results SET title = ?2, description = ?3, url = ?4, tags = ?5, channel = ?6, channel_id = ?7, published_at = ?8,
                   duration = ?9, views = ?10, likes = ?11, comments = ?12, extra = ?13, last_seen_at = ?14,
                   last_task_id = COALESCE(?15, last_task_id),
                   metrics_at = CASE WHEN ?16 THEN ?14 ELSE metrics_at END,
                   first_metrics_at = CASE WHEN first_views IS NULL AND ?10 IS NOT NULL THEN ?14 ELSE first_metrics_at END,
                   first_views = COALESCE(first_views, ?10), video_format = ?17
                 WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id, item.title, item.description, item.url, tags, item.channel, item.channel_id, published, item.duration_secs,
                    m.views, m.likes, m.comments, extra, now, task, metrics_changed, format
                ])
            })
            .map_err(map_err)?;
            if metrics_changed {
                snapshot(tx, id, now, m)?;
            }
            report.updated += 1;
        }
    }
    Ok(())
}

/// The metric snapshots of one channel's rows (`?1`), read when the channel is rescored.
/// `CROSS JOIN` fixes the loop order SQLite would otherwise pick by guess without `ANALYZE`
/// statistics: the channel's rows through `ix_results_channel`, then each row's snapshots
/// through `ix_result_metrics_result` — never a scan of every snapshot.
pub const CHANNEL_SNAPSHOTS_SQL: &str = "SELECT m.result_id, m.captured_at, m.views FROM results r
     CROSS JOIN result_metrics m ON m.result_id = r.id
     WHERE r.channel_id = ?1 AND m.views IS NOT NULL";

/// One stored row of a channel, as its rescoring reads it.
struct ChannelRow {
    id: i64,
    source_id: String,
    views: Option<i64>,
    published_at: Option<Timestamp>,
    last_seen_at: Timestamp,
    /// The format its stored fields say ([`outlier::format_from`]).
    format: Option<VideoFormat>,
    /// The format column as stored (empty for rows saved before schema v4).
    stored_format: Option<VideoFormat>,
    stored: Option<OutlierScore>,
}

/// Recomputes `channel_id`'s baselines and its rows' scores ([`ResultStore::save`]'s rule)
/// inside the save's transaction: one read of the channel's rows and one of their
/// snapshots (both through indexes), the arithmetic in [`outlier::score_channel`], and a
/// write only for rows whose score changed.
fn rescore_channel(
    tx: &Transaction<'_>,
    channel_id: &str,
    now: i64,
    settings: &OutlierSettings,
) -> Result<(), PortError> {
    let rows: Vec<ChannelRow> = {
        let mut stmt = tx
            .prepare_cached(
                "SELECT id, source_id, views, published_at, last_seen_at, video_format,
                        outlier_score, outlier_basis, outlier_baseline, outlier_sample, outlier_views,
                        extra, duration
                 FROM results WHERE channel_id = ?1 ORDER BY source_id, source",
            )
            .map_err(map_err)?;
        let rows = stmt
            .query_map([channel_id], |r| {
                let extra: String = r.get(11)?;
                let extra =
                    serde_json::from_str::<Map<String, Value>>(&extra).map_err(|e| conv(11, e))?;
                Ok(ChannelRow {
                    id: r.get(0)?,
                    source_id: r.get(1)?,
                    views: r.get(2)?,
                    published_at: ts_opt(r, 3)?,
                    last_seen_at: ts(4, r.get(4)?)?,
                    format: outlier::format_from(&extra, r.get(12)?),
                    stored_format: format_col(r, 5)?,
                    stored: score_cols(r, 6)?,
                })
            })
            .map_err(map_err)?;
        rows.collect::<Result<_, _>>().map_err(map_err)?
    };
    let mut snapshots: std::collections::HashMap<i64, Vec<(Timestamp, i64)>> =
        std::collections::HashMap::new();
    {
        let mut stmt = tx.prepare_cached(CHANNEL_SNAPSHOTS_SQL).map_err(map_err)?;
        let found = stmt
            .query_map([channel_id], |r| {
                Ok((r.get::<_, i64>(0)?, ts(1, r.get(1)?)?, r.get::<_, i64>(2)?))
            })
            .map_err(map_err)?;
        for row in found {
            let (id, at, views) = row.map_err(map_err)?;
            snapshots.entry(id).or_default().push((at, views));
        }
    }
    // Rows come ordered by (source_id, source): each video's rows are adjacent.
    let mut groups: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        match groups.last_mut() {
            Some(g) if rows[g.start].source_id == row.source_id => g.end = i + 1,
            _ => groups.push(i..i + 1),
        }
    }
    let videos: Vec<ChannelVideo> = groups
        .iter()
        .map(|g| {
            let group = &rows[g.clone()];
            let mut best = &group[0];
            for r in &group[1..] {
                if r.views > best.views {
                    best = r;
                }
            }
            let mut history = Vec::new();
            for r in group {
                if let Some(s) = snapshots.get(&r.id) {
                    history.extend_from_slice(s);
                }
                if let Some(v) = r.views {
                    history.push((r.last_seen_at, v));
                }
            }
            ChannelVideo {
                published_at: best.published_at,
                views: best.views,
                format: best.format.or_else(|| group.iter().find_map(|r| r.format)),
                history,
            }
        })
        .collect();
    let out = outlier::score_channel(
        &videos,
        Timestamp::from_millisecond(now).map_err(|e| PortError::Unavailable(e.to_string()))?,
        settings,
    );
    let mut update = tx
        .prepare_cached(
            "UPDATE results SET video_format = ?2, outlier_score = ?3, outlier_basis = ?4,
                    outlier_baseline = ?5, outlier_sample = ?6, outlier_views = ?7 WHERE id = ?1",
        )
        .map_err(map_err)?;
    for (g, score) in groups.iter().zip(&out.scores) {
        for r in &rows[g.clone()] {
            if r.stored == *score && r.stored_format == r.format {
                continue;
            }
            update
                .execute(params![
                    r.id,
                    r.format.map(VideoFormat::as_str),
                    score.map(|s| s.score),
                    score.map(|s| s.basis.as_str()),
                    score.map(|s| s.baseline),
                    score.map(|s| i64::from(s.sample)),
                    score.map(|s| s.views),
                ])
                .map_err(map_err)?;
        }
    }
    tx.prepare_cached("DELETE FROM channel_baselines WHERE channel_id = ?1")
        .and_then(|mut s| s.execute([channel_id]))
        .map_err(map_err)?;
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO channel_baselines (channel_id, format, basis, median_views, sample, computed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(map_err)?;
    for b in &out.baselines {
        insert
            .execute(params![
                channel_id,
                b.format.as_str(),
                b.basis.as_str(),
                b.median,
                i64::from(b.sample),
                now
            ])
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
        let channels: std::collections::BTreeSet<&str> = items
            .iter()
            .filter_map(|i| i.channel_id.as_deref())
            .collect();
        self.write(|tx| {
            let mut report = SaveReport::default();
            for item in items {
                save_one(tx, task, item, now, &mut report)?;
            }
            for channel in &channels {
                rescore_channel(tx, channel, now, &settings)?;
            }
            Ok(report)
        })
    }

    fn get_result_blocking(
        &self,
        source: &str,
        source_id: &str,
    ) -> Result<(i64, StoredResult), PortError> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {RESULT_COLUMNS} FROM results WHERE source = ?1 AND source_id = ?2"
            ))
            .and_then(|mut s| {
                s.query_row(params![source, source_id], stored_from_row)
                    .optional()
            })
            .map_err(map_err)?
            .ok_or_else(|| PortError::NotFound(format!("result {source}/{source_id}")))
        })
    }

    /// [`ResultStore::find`]: a loose index scan, walking the distinct sources through the
    /// (source, source_id) key one `min` at a time and probing each for the id, so the cost
    /// is a few probes per source, never a scan of the results.
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
        source: &str,
        source_id: &str,
    ) -> Result<Vec<MetricSnapshot>, PortError> {
        let (id, _) = self.get_result_blocking(source, source_id)?;
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
        let (sql, args) = query_sql(q);
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql).map_err(map_err)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args.iter()), stored_from_row)
                .map_err(map_err)?;
            rows.map(|r| r.map(|(_, s)| s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(map_err)
        })
    }

    fn count_blocking(&self, source: Option<&str>) -> Result<u64, PortError> {
        self.read(|conn| {
            let n: i64 = match source {
                Some(s) => conn
                    .prepare_cached("SELECT count(*) FROM results WHERE source = ?1")
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

    async fn get(&self, source: &str, source_id: &str) -> Result<StoredResult, PortError> {
        let (source, source_id) = (source.to_owned(), source_id.to_owned());
        self.blocking(move |s| s.get_result_blocking(&source, &source_id).map(|(_, r)| r))
            .await
    }

    async fn find(&self, source_id: &str) -> Result<Vec<StoredResult>, PortError> {
        let source_id = source_id.to_owned();
        self.blocking(move |s| s.find_blocking(&source_id)).await
    }

    async fn history(
        &self,
        source: &str,
        source_id: &str,
    ) -> Result<Vec<MetricSnapshot>, PortError> {
        let (source, source_id) = (source.to_owned(), source_id.to_owned());
        self.blocking(move |s| s.history_blocking(&source, &source_id))
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

    async fn count(&self, source: Option<String>) -> Result<u64, PortError> {
        self.blocking(move |s| s.count_blocking(source.as_deref()))
            .await
    }
}
