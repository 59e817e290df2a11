//! The result store: batch upserts deduplicated on (source, source_id), metric history
//! written only on change, and ranked queries. Text ties sort bytewise (`COLLATE "C"`), as
//! on SQLite, whatever the database's collation.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use serde_json::{Map, Value};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use prismq_domain::ports::{MetricSnapshot, ResultOrder, ResultQuery, ResultStore, StoredResult};
use prismq_domain::task::TaskId;
use prismq_domain::{ContentItem, Metrics, PortError, SaveReport};

use crate::codec::{get, ts, ts_opt};
use crate::error::{corrupt, map_err};
use crate::{in_tx, PostgresStore};

const RESULT_COLUMNS: &str = "id, source, source_id, title, description, url, tags, channel, channel_id, published_at, duration, \
     views, likes, comments, extra, first_seen_at, last_seen_at, last_task_id, first_views, first_metrics_at, metrics_at";

/// Views gained per hour between the first and latest snapshots, as SQL.
const GROWTH_SQL: &str =
    "(CASE WHEN metrics_at > first_metrics_at AND views IS NOT NULL AND first_views IS NOT NULL
    THEN (views - first_views) * 3600000.0 / (metrics_at - first_metrics_at) ELSE 0.0 END)";

fn stored_from_row(r: &Row) -> Result<(i64, StoredResult), PortError> {
    let tags: Value = get(r, 6)?;
    let extra: Value = get(r, 14)?;
    let item = ContentItem {
        source: get(r, 1)?,
        source_id: get(r, 2)?,
        title: get(r, 3)?,
        description: get(r, 4)?,
        url: get(r, 5)?,
        tags: serde_json::from_value(tags).map_err(|e| corrupt("tags", e))?,
        channel: get(r, 7)?,
        channel_id: get(r, 8)?,
        published_at: ts_opt(get(r, 9)?)?,
        duration_secs: get(r, 10)?,
        metrics: Metrics {
            views: get(r, 11)?,
            likes: get(r, 12)?,
            comments: get(r, 13)?,
        },
        extra: serde_json::from_value::<Map<String, Value>>(extra)
            .map_err(|e| corrupt("extra", e))?,
    };
    let first_views: Option<i64> = get(r, 18)?;
    let first_at: i64 = get(r, 19)?;
    let metrics_at: i64 = get(r, 20)?;
    let views_per_hour = match (item.metrics.views, first_views) {
        (Some(v), Some(f)) if metrics_at > first_at => {
            (v - f) as f64 * 3_600_000.0 / (metrics_at - first_at) as f64
        }
        _ => 0.0,
    };
    Ok((
        get(r, 0)?,
        StoredResult {
            item,
            first_seen_at: ts(get(r, 15)?)?,
            last_seen_at: ts(get(r, 16)?)?,
            last_task_id: get::<Option<i64>>(r, 17)?.map(TaskId),
            views_per_hour,
        },
    ))
}

async fn snapshot(
    c: &impl GenericClient,
    result_id: i64,
    now: i64,
    m: &Metrics,
) -> Result<(), PortError> {
    let stmt = c
        .prepare_cached("INSERT INTO result_metrics (result_id, captured_at, views, likes, comments) VALUES ($1, $2, $3, $4, $5)")
        .await
        .map_err(map_err)?;
    c.execute(&stmt, &[&result_id, &now, &m.views, &m.likes, &m.comments])
        .await
        .map_err(map_err)?;
    Ok(())
}

async fn save_one(
    c: &impl GenericClient,
    task: Option<i64>,
    item: &ContentItem,
    now: i64,
    report: &mut SaveReport,
) -> Result<(), PortError> {
    let tags = serde_json::to_value(&item.tags).map_err(|e| corrupt("tags", e))?;
    let extra = Value::Object(item.extra.clone());
    let published = item.published_at.map(|t| t.as_millisecond());
    let m = &item.metrics;
    let insert = c
        .prepare_cached(
            "INSERT INTO results (source, source_id, title, description, url, tags, channel, channel_id, published_at, duration,
               views, likes, comments, extra, first_seen_at, last_seen_at, last_task_id, first_views, first_metrics_at, metrics_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, $16, $11, $15, $15)
             ON CONFLICT (source, source_id) DO NOTHING RETURNING id",
        )
        .await
        .map_err(map_err)?;
    let inserted = c
        .query_opt(
            &insert,
            &[
                &item.source,
                &item.source_id,
                &item.title,
                &item.description,
                &item.url,
                &tags,
                &item.channel,
                &item.channel_id,
                &published,
                &item.duration_secs,
                &m.views,
                &m.likes,
                &m.comments,
                &extra,
                &now,
                &task,
            ],
        )
        .await
        .map_err(map_err)?;
    if let Some(row) = inserted {
        snapshot(c, get(&row, 0)?, now, m).await?;
        report.inserted += 1;
        return Ok(());
    }
    let select = c
        .prepare_cached(&format!(
            "SELECT {RESULT_COLUMNS} FROM results WHERE source = $1 AND source_id = $2 FOR UPDATE"
        ))
        .await
        .map_err(map_err)?;
    let row = c
        .query_one(&select, &[&item.source, &item.source_id])
        .await
        .map_err(map_err)?;
    let (id, stored) = stored_from_row(&row)?;
    let metrics_changed = stored.item.metrics != item.metrics;
    if stored.item == *item {
        c.execute(
            "UPDATE results SET last_seen_at = $2, last_task_id = COALESCE($3, last_task_id) WHERE id = $1",
            &[&id, &now, &task],
        )
        .await
        .map_err(map_err)?;
        report.unchanged += 1;
        return Ok(());
    }
    let update = c
        .prepare_cached(
            "UPDATE results SET title = $2, description = $3, url = $4, tags = $5, channel = $6, channel_id = $7, published_at = $8,
               duration = $9, views = $10, likes = $11, comments = $12, extra = $13, last_seen_at = $14,
               last_task_id = COALESCE($15, last_task_id),
               metrics_at = CASE WHEN $16 THEN $14 ELSE metrics_at END,
               first_metrics_at = CASE WHEN first_views IS NULL AND $10::bigint IS NOT NULL THEN $14 ELSE first_metrics_at END,
               first_views = COALESCE(first_views, $10)
             WHERE id = $1",
        )
        .await
        .map_err(map_err)?;
    c.execute(
        &update,
        &[
            &id,
            &item.title,
            &item.description,
            &item.url,
            &tags,
            &item.channel,
            &item.channel_id,
            &published,
            &item.duration_secs,
            &m.views,
            &m.likes,
            &m.comments,
            &extra,
            &now,
            &task,
            &metrics_changed,
        ],
    )
    .await
    .map_err(map_err)?;
    if metrics_changed {
        snapshot(c, id, now, m).await?;
    }
    report.updated += 1;
    Ok(())
}

impl PostgresStore {
    async fn result_row(
        &self,
        source: &str,
        source_id: &str,
    ) -> Result<(i64, StoredResult), PortError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {RESULT_COLUMNS} FROM results WHERE source = $1 AND source_id = $2"
            ))
            .await
            .map_err(map_err)?;
        let row = client
            .query_opt(&stmt, &[&source, &source_id])
            .await
            .map_err(map_err)?
            .ok_or_else(|| PortError::NotFound(format!("result {source}/{source_id}")))?;
        stored_from_row(&row)
    }

    /// [`ResultStore::query`].
    ///
    /// # Errors
    /// As the port.
    pub async fn query_results(&self, q: &ResultQuery) -> Result<Vec<StoredResult>, PortError> {
        prismq_domain::ports::check_page_limit(q.limit)?;
        let since = q.since.map(|t| t.as_millisecond());
        let limit = i64::from(q.limit);
        let offset = i64::try_from(q.offset).unwrap_or(i64::MAX);
        let mut sql = format!("SELECT {RESULT_COLUMNS} FROM results WHERE true");
        let mut args: Vec<&(dyn ToSql + Sync)> = Vec::new();
        if let Some(source) = &q.source {
            args.push(source);
            sql.push_str(&format!(" AND source = ${}", args.len()));
        }
        if let Some(s) = &since {
            args.push(s);
            sql.push_str(&format!(" AND last_seen_at >= ${}", args.len()));
        }
        let order = match q.order {
            ResultOrder::Views => "views DESC NULLS LAST".to_owned(),
            ResultOrder::Recent => "published_at DESC NULLS LAST".to_owned(),
            ResultOrder::Growth => format!("{GROWTH_SQL} DESC"),
        };
        sql.push_str(&format!(
            " ORDER BY {order}, source COLLATE \"C\", source_id COLLATE \"C\""
        ));
        args.push(&limit);
        sql.push_str(&format!(" LIMIT ${}", args.len()));
        args.push(&offset);
        sql.push_str(&format!(" OFFSET ${}", args.len()));
        let client = self.client().await?;
        let stmt = client.prepare_cached(&sql).await.map_err(map_err)?;
        let rows = client.query(&stmt, &args).await.map_err(map_err)?;
        rows.iter()
            .map(|r| stored_from_row(r).map(|(_, s)| s))
            .collect()
    }
}

#[async_trait]
impl ResultStore for PostgresStore {
    async fn save(
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
        in_tx!(self, |tx| async {
            let mut report = SaveReport::default();
            for item in items {
                save_one(&tx, task, item, now, &mut report).await?;
            }
            Ok::<_, PortError>(report)
        }
        .await)
    }

    async fn get(&self, source: &str, source_id: &str) -> Result<StoredResult, PortError> {
        self.result_row(source, source_id).await.map(|(_, r)| r)
    }

    async fn find(&self, source_id: &str) -> Result<Vec<StoredResult>, PortError> {
        // A loose index scan: the distinct sources one `min` probe of the unique
        // (source, source_id) index at a time, then one probe per source for the id.
        let sql = format!(
            "WITH RECURSIVE sources(source) AS (
                SELECT min(source) FROM results
                UNION ALL
                SELECT (SELECT min(r.source) FROM results r WHERE r.source > s.source)
                FROM sources s WHERE s.source IS NOT NULL
            )
            SELECT {RESULT_COLUMNS} FROM results
            WHERE source_id = $1 AND source IN (SELECT source FROM sources WHERE source IS NOT NULL)
            ORDER BY source COLLATE \"C\""
        );
        let client = self.client().await?;
        let stmt = client.prepare_cached(&sql).await.map_err(map_err)?;
        let rows = client.query(&stmt, &[&source_id]).await.map_err(map_err)?;
        rows.iter()
            .map(|r| stored_from_row(r).map(|(_, s)| s))
            .collect()
    }

    async fn history(
        &self,
        source: &str,
        source_id: &str,
    ) -> Result<Vec<MetricSnapshot>, PortError> {
        let (id, _) = self.result_row(source, source_id).await?;
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT captured_at, views, likes, comments FROM result_metrics WHERE result_id = $1 ORDER BY captured_at, id",
                &[&id],
            )
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(MetricSnapshot {
                    captured_at: ts(get(r, 0)?)?,
                    metrics: Metrics {
                        views: get(r, 1)?,
                        likes: get(r, 2)?,
                        comments: get(r, 3)?,
                    },
                })
            })
            .collect()
    }

    async fn query(&self, query: &ResultQuery) -> Result<Vec<StoredResult>, PortError> {
        self.query_results(query).await
    }

    async fn count(&self, source: Option<String>) -> Result<u64, PortError> {
        let client = self.client().await?;
        let row = match &source {
            Some(s) => {
                client
                    .query_one("SELECT count(*) FROM results WHERE source = $1", &[s])
                    .await
            }
            None => client.query_one("SELECT count(*) FROM results", &[]).await,
        }
        .map_err(map_err)?;
        Ok(u64::try_from(get::<i64>(&row, 0)?).unwrap_or(0))
    }
}
