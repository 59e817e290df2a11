//! Raw row writers and readers the operations share: a task row with every column given
//! (the round-trip check and the legacy import set times the queue's own enqueue would
//! set to now), and a result record with its first metric snapshot and its sightings.

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use serde_json::{Map, Value};

use prismq_domain::{ContentItem, Metrics, TaskStatus};

use crate::codec::{status_code, ts_opt};
use crate::queue::NewCounts;

/// Every column of a task row, as stored.
#[derive(Debug, Clone)]
pub(crate) struct TaskRow {
    pub task_type: String,
    pub params: String,
    pub priority: u8,
    pub status: TaskStatus,
    pub attempts: u32,
    pub max_attempts: u32,
    pub run_after: i64,
    pub lease_expires_at: Option<i64>,
    pub claimed_by: Option<String>,
    pub lease_token: Option<i64>,
    pub idempotency_key: Option<String>,
    pub compatibility: String,
    pub last_error: Option<String>,
    pub summary: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub lapses: u32,
}

const INSERT_TASK_ROW: &str = "INSERT INTO task_queue
    (type_id, params, priority, status, attempts, max_attempts, run_after, lease_expires_at, claimed_by, lease_token,
     idempotency_key, compatibility, region, last_error, summary, created_at, updated_at, started_at, finished_at, lapses)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, nullif(?12, '{}'), json_extract(?12, '$.region'), ?13, ?14, ?15,
            nullif(?16, ?15), ?17, ?18, ?19)
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id";

/// Inserts a task row and counts it in `queue_counts` (schema v11 has no insert trigger);
/// `None`, and nothing written, when its idempotency key already exists.
pub(crate) fn insert_task(tx: &Transaction<'_>, t: &TaskRow) -> rusqlite::Result<Option<i64>> {
    let mut counts = NewCounts::default();
    let type_id = counts.type_id(tx, &t.task_type)?;
    let id: Option<i64> = tx
        .prepare_cached(INSERT_TASK_ROW)?
        .query_row(
            params![
                type_id,
                t.params,
                t.priority,
                status_code(t.status),
                t.attempts,
                t.max_attempts,
                t.run_after,
                t.lease_expires_at,
                t.claimed_by,
                t.lease_token,
                t.idempotency_key,
                t.compatibility,
                t.last_error,
                t.summary,
                t.created_at,
                t.updated_at,
                t.started_at,
                t.finished_at,
                t.lapses
            ],
            |r| r.get(0),
        )
        .optional()?;
    if id.is_some() {
        counts.add(type_id, t.status);
        counts.write_rows(tx)?;
    }
    Ok(id)
}

const INSERT_RESULT_ROW: &str = "INSERT INTO results
    (platform, source_id, title, description, url, tags, channel, channel_id, published_at, duration,
     views, likes, comments, extra, first_seen_at, last_seen_at, last_task_id, first_views, first_metrics_at, metrics_at,
     last_source, last_rank)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?11, ?15, ?16, ?18, ?19)
    ON CONFLICT (platform, source_id) DO NOTHING
    RETURNING id";

const INSERT_SIGHTING: &str = "INSERT INTO result_sightings (result_id, source, task_id, rank, seen_at)
    VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (task_id, result_id) WHERE task_id IS NOT NULL DO NOTHING";

/// Inserts a record first seen at `first_seen` and last at `last_seen`, with one metric
/// snapshot at `last_seen` and its sightings (one at `last_seen` by `task`, and one at
/// `first_seen` when earlier); `None` when (platform, source_id) exists, which then only
/// gains the sighting at `last_seen` (its fields and history are left as they are).
pub(crate) fn insert_result(
    tx: &Transaction<'_>,
    item: &ContentItem,
    first_seen: i64,
    last_seen: i64,
    task: Option<i64>,
) -> rusqlite::Result<Option<i64>> {
    let tags = Value::from(item.tags.clone()).to_string();
    let extra = Value::Object(item.extra.clone()).to_string();
    let m = &item.metrics;
    let id: Option<i64> = tx
        .prepare_cached(INSERT_RESULT_ROW)?
        .query_row(
            params![
                item.platform,
                item.source_id,
                item.title,
                item.description,
                item.url,
                tags,
                item.channel,
                item.channel_id,
                item.published_at.map(|t| t.as_millisecond()),
                item.duration_secs,
                m.views,
                m.likes,
                m.comments,
                extra,
                first_seen,
                last_seen,
                task,
                item.source,
                item.rank
            ],
            |r| r.get(0),
        )
        .optional()?;
    let record = match id {
        Some(id) => {
            tx.prepare_cached(
                "INSERT INTO result_metrics (result_id, captured_at, views, likes, comments) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![id, last_seen, m.views, m.likes, m.comments])?;
            if first_seen < last_seen {
                tx.prepare_cached(INSERT_SIGHTING)?.execute(params![
                    id,
                    item.source,
                    None::<i64>,
                    None::<i64>,
                    first_seen
                ])?;
            }
            id
        }
        None => tx
            .prepare_cached("SELECT id FROM results WHERE platform = ?1 AND source_id = ?2")?
            .query_row(params![item.platform, item.source_id], |r| r.get(0))?,
    };
    tx.prepare_cached(INSERT_SIGHTING)?.execute(params![
        record,
        item.source,
        task,
        item.rank,
        last_seen
    ])?;
    Ok(id)
}

fn bad(idx: usize, e: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        idx,
        rusqlite::types::Type::Text,
        e.to_string().into(),
    )
}

fn item_from_row(r: &Row<'_>) -> rusqlite::Result<ContentItem> {
    let tags: String = r.get(5)?;
    let extra: String = r.get(13)?;
    Ok(ContentItem {
        platform: r.get(0)?,
        source: r.get(14)?,
        source_id: r.get(1)?,
        rank: r.get(15)?,
        title: r.get(2)?,
        description: r.get(3)?,
        url: r.get(4)?,
        tags: serde_json::from_str(&tags).map_err(|e| bad(5, e))?,
        channel: r.get(6)?,
        channel_id: r.get(7)?,
        published_at: ts_opt(r, 8)?,
        duration_secs: r.get(9)?,
        metrics: Metrics {
            views: r.get(10)?,
            likes: r.get(11)?,
            comments: r.get(12)?,
        },
        extra: serde_json::from_str::<Map<String, Value>>(&extra).map_err(|e| bad(13, e))?,
    })
}

/// Reads a result back as a content item.
pub(crate) fn read_result(
    conn: &Connection,
    platform: &str,
    source_id: &str,
) -> rusqlite::Result<Option<ContentItem>> {
    conn.prepare_cached(
        "SELECT platform, source_id, title, description, url, tags, channel, channel_id, published_at, duration,
                views, likes, comments, extra, last_source, last_rank FROM results WHERE platform = ?1 AND source_id = ?2",
    )?
    .query_row([platform, source_id], item_from_row)
    .optional()
}
