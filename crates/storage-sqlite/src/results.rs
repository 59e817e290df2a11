//! The result store: batch upserts deduplicated on (source, source_id), metric history
//! written only on change, and ranked queries.

use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, OptionalExtension, Row, Transaction};
use serde_json::{Map, Value};

use prismq_domain::ports::{MetricSnapshot, ResultOrder, ResultQuery, ResultStore, StoredResult};
use prismq_domain::task::TaskId;
use prismq_domain::{ContentItem, Metrics, PortError, SaveReport};

use crate::codec::{ts, ts_opt};
use crate::error::map_err;
use crate::SqliteStore;

const RESULT_COLUMNS: &str = "id, source, source_id, title, description, url, tags, channel, channel_id, published_at, duration, \
     views, likes, comments, extra, first_seen_at, last_seen_at, last_task_id, first_views, first_metrics_at, metrics_at";

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
    let m = &item.metrics;
    match existing {
        None => {
            let id: i64 = tx
                .prepare_cached(
                    "INSERT INTO results (source, source_id, title, description, url, tags, channel, channel_id, published_at, duration,
                       views, likes, comments, extra, first_seen_at, last_seen_at, last_task_id, first_views, first_metrics_at, metrics_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15, ?16, ?11, ?15, ?15) RETURNING id",
                )
                .and_then(|mut s| {
                    s.query_row(
                        params![
                            item.source, item.source_id, item.title, item.description, item.url, tags, item.channel, item.channel_id,
                            published, item.duration_secs, m.views, m.likes, m.comments, extra, now, task
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
                tx.prepare_cached("UPDATE results SET last_seen_at = ?2, last_task_id = COALESCE(?3, last_task_id) WHERE id = ?1")
                    .and_then(|mut s| s.execute(params![id, now, task]))
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
                   first_views = COALESCE(first_views, ?10)
                 WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id, item.title, item.description, item.url, tags, item.channel, item.channel_id, published, item.duration_secs,
                    m.views, m.likes, m.comments, extra, now, task, metrics_changed
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

impl SqliteStore {
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
        self.write(|tx| {
            let mut report = SaveReport::default();
            for item in items {
                save_one(tx, task, item, now, &mut report)?;
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
        prismq_domain::ports::check_page_limit(q.limit)?;
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
        sql.push_str(match q.order {
            ResultOrder::Views => " ORDER BY views IS NULL, views DESC, source, source_id",
            ResultOrder::Recent => {
                " ORDER BY published_at IS NULL, published_at DESC, source, source_id"
            }
            ResultOrder::Growth => "",
        });
        if q.order == ResultOrder::Growth {
            sql.push_str(&format!(" ORDER BY {GROWTH_SQL} DESC, source, source_id"));
        }
        sql.push_str(" LIMIT ? OFFSET ?");
        args.push(SqlValue::Integer(i64::from(q.limit)));
        args.push(SqlValue::Integer(
            i64::try_from(q.offset).unwrap_or(i64::MAX),
        ));
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

    async fn count(&self, source: Option<String>) -> Result<u64, PortError> {
        self.blocking(move |s| s.count_blocking(source.as_deref()))
            .await
    }
}
