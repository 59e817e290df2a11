//! The result store: batch upserts deduplicated on (source, source_id), metric history
//! written only on change, and ranked queries. Text ties sort bytewise (`COLLATE "C"`), as
//! on SQLite, whatever the database's collation.
//!
//! A save ([`save`]), the rescore of the channels it touched ([`rescore`]) and the final
//! update of its rows ([`mod@write`]) send a few statements over arrays whatever the number of
//! items, several of them pipelined; each saved record is updated once.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use serde_json::{Map, Value};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use prismq_domain::growth::{Growth, GrowthWindow, WindowRate};
use prismq_domain::outlier::{AgeBasis, Baseline, OutlierScore, VideoFormat};
use prismq_domain::ports::{
    ChannelBaseline, MetricSnapshot, OrderValue, RescoreReport, ResultOrder, ResultQuery,
    ResultStore, StoredResult,
};
use prismq_domain::task::TaskId;
use prismq_domain::{ContentItem, Metrics, PortError, SaveReport, Sighting, Timestamp};

mod rescore;
pub use rescore::sample_sql as baseline_sample_statement;
mod save;
mod write;

use crate::codec::{get, ts, ts_opt};
use crate::error::{corrupt, map_err};
use crate::{in_tx, PostgresStore};

const RESULT_COLUMNS: &str = "id, platform, source_id, title, description, url, tags, channel, channel_id, published_at, duration, \
     views, likes, comments, extra, first_seen_at, last_seen_at, last_task_id, first_views, first_metrics_at, metrics_at, \
     video_format, outlier_score, outlier_basis, outlier_baseline, outlier_sample, outlier_views, \
     growth_1h, growth_1h_span, growth_24h, growth_24h_span, growth_7d, growth_7d_span, growth_30d, growth_30d_span, last_source, last_rank";

/// How many columns [`RESULT_COLUMNS`] names.
const RESULT_COLUMN_COUNT: usize = 37;

/// The growth columns of a window: its rate and its span (as on SQLite).
fn growth_columns(w: GrowthWindow) -> (&'static str, &'static str) {
    match w {
        GrowthWindow::Hour => ("growth_1h", "growth_1h_span"),
        GrowthWindow::Day => ("growth_24h", "growth_24h_span"),
        GrowthWindow::Week => ("growth_7d", "growth_7d_span"),
        GrowthWindow::Month => ("growth_30d", "growth_30d_span"),
    }
}

/// Recomputes and stores a row's growth over every window, from its snapshots within the
/// longest window (and the one before it) and its current metrics at `last_seen_at`.
async fn refresh_growth(
    c: &impl GenericClient,
    id: i64,
    seen: Option<(i64, Metrics)>,
    stored: Option<Growth>,
    min_span_secs: i64,
) -> Result<(), PortError> {
    let (last_seen, current) = match seen {
        Some(s) => s,
        None => {
            let stmt = c
                .prepare_cached(
                    "SELECT last_seen_at, views, likes, comments FROM results WHERE id = $1",
                )
                .await
                .map_err(map_err)?;
            let row = c.query_one(&stmt, &[&id]).await.map_err(map_err)?;
            let current = Metrics {
                views: get(&row, 1)?,
                likes: get(&row, 2)?,
                comments: get(&row, 3)?,
            };
            (get::<i64>(&row, 0)?, current)
        }
    };
    let from = last_seen - GrowthWindow::Month.seconds() * 1_000;
    let stmt = c
        .prepare_cached(
            "(SELECT captured_at, views, likes, comments FROM result_metrics
              WHERE result_id = $1 AND captured_at < $2 ORDER BY captured_at DESC LIMIT 1)
             UNION ALL
             SELECT captured_at, views, likes, comments FROM result_metrics
             WHERE result_id = $1 AND captured_at >= $2",
        )
        .await
        .map_err(map_err)?;
    let mut observations = Vec::new();
    for r in c.query(&stmt, &[&id, &from]).await.map_err(map_err)? {
        observations.push((
            ts(get(&r, 0)?)?,
            Metrics {
                views: get(&r, 1)?,
                likes: get(&r, 2)?,
                comments: get(&r, 3)?,
            },
        ));
    }
    observations.push((ts(last_seen)?, current));
    let g = Growth::of(&observations, min_span_secs);
    if stored == Some(g) {
        return Ok(());
    }
    let rate = |w: GrowthWindow| g.get(w).map(|r| r.views_per_hour);
    let span = |w: GrowthWindow| g.get(w).map(|r| r.span_secs);
    let stmt = c
        .prepare_cached(
            "UPDATE results SET growth_1h = $2, growth_1h_span = $3, growth_24h = $4, growth_24h_span = $5,
               growth_7d = $6, growth_7d_span = $7, growth_30d = $8, growth_30d_span = $9 WHERE id = $1",
        )
        .await
        .map_err(map_err)?;
    c.execute(
        &stmt,
        &[
            &id,
            &rate(GrowthWindow::Hour),
            &span(GrowthWindow::Hour),
            &rate(GrowthWindow::Day),
            &span(GrowthWindow::Day),
            &rate(GrowthWindow::Week),
            &span(GrowthWindow::Week),
            &rate(GrowthWindow::Month),
            &span(GrowthWindow::Month),
        ],
    )
    .await
    .map_err(map_err)?;
    Ok(())
}

fn format_col(r: &Row, idx: usize) -> Result<Option<VideoFormat>, PortError> {
    get::<Option<String>>(r, idx)?
        .map(|s| {
            s.parse::<VideoFormat>()
                .map_err(|e| corrupt("video_format", e))
        })
        .transpose()
}

/// The score stored in columns `idx..idx + 5` (score, basis, baseline, sample, views).
fn score_cols(r: &Row, idx: usize) -> Result<Option<OutlierScore>, PortError> {
    let Some(score) = get::<Option<f64>>(r, idx)? else {
        return Ok(None);
    };
    let basis: String = get(r, idx + 1)?;
    Ok(Some(OutlierScore {
        score,
        basis: basis
            .parse::<AgeBasis>()
            .map_err(|e| corrupt("outlier_basis", e))?,
        baseline: get(r, idx + 2)?,
        sample: u32::try_from(get::<i64>(r, idx + 3)?).map_err(|e| corrupt("outlier_sample", e))?,
        views: get(r, idx + 4)?,
    }))
}

fn stored_from_row(r: &Row) -> Result<(i64, StoredResult), PortError> {
    let tags: Value = get(r, 6)?;
    let extra: Value = get(r, 14)?;
    let item = ContentItem {
        platform: get(r, 1)?,
        source: get(r, 35)?,
        source_id: get(r, 2)?,
        rank: get::<Option<i64>>(r, 36)?
            .map(u32::try_from)
            .transpose()
            .map_err(|e| corrupt("last_rank", e))?,
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
    let mut growth = Growth::default();
    for w in GrowthWindow::ALL {
        let idx = 27 + 2 * w.index();
        if let Some(views_per_hour) = get::<Option<f64>>(r, idx)? {
            let span_secs = get::<Option<i64>>(r, idx + 1)?.unwrap_or(0);
            growth.set(
                w,
                Some(WindowRate {
                    views_per_hour,
                    span_secs,
                }),
            );
        }
    }
    Ok((
        get(r, 0)?,
        StoredResult {
            item,
            first_seen_at: ts(get(r, 15)?)?,
            last_seen_at: ts(get(r, 16)?)?,
            last_task_id: get::<Option<i64>>(r, 17)?.map(TaskId),
            growth,
            format: format_col(r, 21)?,
            outlier: score_cols(r, 22)?,
        },
    ))
}

impl PostgresStore {
    async fn result_row(
        &self,
        platform: &str,
        source_id: &str,
    ) -> Result<(i64, StoredResult), PortError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {RESULT_COLUMNS} FROM results WHERE platform = $1 AND source_id = $2"
            ))
            .await
            .map_err(map_err)?;
        let row = client
            .query_opt(&stmt, &[&platform, &source_id])
            .await
            .map_err(map_err)?
            .ok_or_else(|| PortError::NotFound(format!("result {platform}/{source_id}")))?;
        stored_from_row(&row)
    }

    /// [`ResultStore::query`]: the statements of [`query_statements`] in turn until the page
    /// is full.
    ///
    /// # Errors
    /// As the port.
    pub async fn query_results(&self, q: &ResultQuery) -> Result<Vec<StoredResult>, PortError> {
        q.validate()?;
        let client = self.client().await?;
        let plan = match &q.source {
            Some(source) => {
                let row = client
                    .query_one(
                        "SELECT (SELECT count(*) FROM (SELECT 1 FROM result_sightings WHERE source = $1 LIMIT $2) k),
                                (SELECT max(id) FROM results)",
                        &[source, &RARE_SOURCE_SIGHTINGS],
                    )
                    .await
                    .map_err(map_err)?;
                let records: Option<i64> = get(&row, 1)?;
                source_plan(get(&row, 0)?, records.unwrap_or(0), q.limit)
            }
            None => SourcePlan::WalkOrder,
        };
        let mut out = Vec::new();
        for (statement, mut args) in query_statements_with(q, plan) {
            let left = i64::from(q.limit) - out.len() as i64;
            if left <= 0 {
                break;
            }
            // The last argument is the statement's LIMIT: what the page still lacks.
            args.pop();
            args.push(Box::new(left));
            let refs: Vec<&(dyn ToSql + Sync)> = args
                .iter()
                .map(|a| a.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let stmt = client.prepare_cached(&statement).await.map_err(map_err)?;
            for r in client.query(&stmt, &refs).await.map_err(map_err)? {
                out.push(stored_from_row(&r)?.1);
            }
        }
        Ok(out)
    }
}

/// Computes the growth of the records listed in `growth_pending` (schema v8: records merged
/// by v7 or saved before v6, with history but no growth yet) as a save would, a thousand
/// per transaction, removing each batch from the table in the same transaction; so an
/// interrupted run resumes where it stopped and a finished one costs one empty read. The
/// batch is locked `SKIP LOCKED`, so processes starting at once share the work. Run on
/// `client` right after migrating (the store is not ready yet). Returns how many records
/// it computed.
///
/// # Errors
/// Database errors.
pub(crate) async fn catch_up_growth(
    client: &mut deadpool_postgres::Object,
    min_span_secs: i64,
) -> Result<u64, PortError> {
    let mut done = 0_u64;
    loop {
        let tx = client.transaction().await.map_err(map_err)?;
        let ids: Vec<i64> = tx
            .query(
                "SELECT result_id FROM growth_pending ORDER BY result_id LIMIT 1000
                 FOR UPDATE SKIP LOCKED",
                &[],
            )
            .await
            .map_err(map_err)?
            .iter()
            .map(|r| get(r, 0))
            .collect::<Result<_, _>>()?;
        if ids.is_empty() {
            break;
        }
        for id in &ids {
            refresh_growth(&tx, *id, None, None, min_span_secs).await?;
        }
        tx.execute(
            "DELETE FROM growth_pending WHERE result_id = ANY($1)",
            &[&ids],
        )
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
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

impl PostgresStore {
    /// Deletes the result sightings made before `before` except each record's first and
    /// latest by each kind of source (ties by id), `batch` records per transaction (their
    /// ids read first, a keyset walk of the primary key), pausing `pause` between batches.
    /// Returns the sightings deleted and the transactions that deleted some.
    ///
    /// # Errors
    /// Database errors (batches already committed stay deleted).
    pub async fn prune_sightings(
        &self,
        before: Timestamp,
        batch: u32,
        pause: std::time::Duration,
    ) -> Result<prismq_domain::ports::upkeep::PruneReport, PortError> {
        let before = before.as_millisecond();
        let mut report = prismq_domain::ports::upkeep::PruneReport::default();
        let mut after = i64::MIN;
        loop {
            let last: Option<i64> = {
                let client = self.client().await?;
                let row = client
                    .query_one(
                        "SELECT max(id) FROM (SELECT id FROM results WHERE id > $1 ORDER BY id LIMIT $2) k",
                        &[&after, &i64::from(batch)],
                    )
                    .await
                    .map_err(map_err)?;
                get(&row, 0)?
            };
            let Some(last) = last else {
                return Ok(report);
            };
            let n = in_tx!(self, |tx| async {
                tx.execute(PRUNE_SIGHTINGS_SQL, &[&after, &last, &before])
                    .await
                    .map_err(map_err)
            }
            .await)?;
            after = last;
            if n > 0 {
                report.sightings += n;
                report.batches += 1;
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// Deletes the sightings of the records `$1 < result_id <= $2` made before `$3`, except each
/// record's first and latest by each kind of source (ties by id), as SQLite's prune does.
pub const PRUNE_SIGHTINGS_SQL: &str = "DELETE FROM result_sightings WHERE id IN (
    SELECT id FROM (
        SELECT id, seen_at,
               row_number() OVER (PARTITION BY result_id, source ORDER BY seen_at, id) AS from_first,
               row_number() OVER (PARTITION BY result_id, source ORDER BY seen_at DESC, id DESC) AS from_last
        FROM result_sightings WHERE result_id > $1 AND result_id <= $2) s
    WHERE seen_at < $3 AND from_first > 1 AND from_last > 1)";

/// One statement of a results query and its arguments (the last one is its `LIMIT`).
pub type QueryStatement = (String, Vec<Box<dyn ToSql + Sync + Send>>);

/// The statements `query` runs for `q`, in turn, each ending `LIMIT $n` with `q.limit` as
/// its last argument (the store lowers it to what the page still lacks).
///
/// Each order has an index in exactly its order (`ix_results_views`,
/// `ix_results_published`, `ix_results_growth_*`, `ix_results_outlier`): the first statement
/// walks it from the cursor's value and id (or from the top), the second reads the items
/// without a value by id. This mirrors SQLite's `query_statements`, and
/// `tests/results_plans.rs` checks each plan reads the index and never sorts.
pub fn query_statements(q: &ResultQuery) -> Vec<QueryStatement> {
    query_statements_with(q, SourcePlan::WalkOrder)
}

/// How a results query with a `--source` filter finds its rows (as on SQLite).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourcePlan {
    /// Walk the order's index and test each record for a sighting of the kind.
    WalkOrder,
    /// Read the kind's sightings from `ix_result_sightings_source`, then each record once
    /// by its key (a `LATERAL` subquery kept whole by `OFFSET 0`, so the planner can neither
    /// reorder the join nor push the order's conditions into it and read an order index
    /// instead), and sort those.
    FromSightings,
}

/// The most sightings a `--source` kind may have for its page to be read from them.
pub const RARE_SOURCE_SIGHTINGS: i64 = 10_000;

/// SQLite's `source_plan`: the kind's sightings are read when fewer than both
/// [`RARE_SOURCE_SIGHTINGS`] and `2 × √(limit × records)`, where a walk of the order's index
/// would read about `limit × records ÷ sightings` rows.
pub fn source_plan(sightings: i64, records: i64, limit: u32) -> SourcePlan {
    let meet = 2.0 * (f64::from(limit) * records.max(1) as f64).sqrt();
    if sightings < RARE_SOURCE_SIGHTINGS && (sightings as f64) < meet {
        SourcePlan::FromSightings
    } else {
        SourcePlan::WalkOrder
    }
}

/// [`query_statements`] with the `--source` filter read as `plan` says (no difference
/// without one).
pub fn query_statements_with(q: &ResultQuery, plan: SourcePlan) -> Vec<QueryStatement> {
    let col = match q.order {
        ResultOrder::Views => "views",
        ResultOrder::Recent => "published_at",
        ResultOrder::Growth => growth_columns(q.window).0,
        ResultOrder::Outlier => "outlier_score",
    };
    let real = matches!(q.order, ResultOrder::Growth | ResultOrder::Outlier);
    let ordered =
        format!(" ORDER BY {col} DESC NULLS LAST, platform COLLATE \"C\", source_id COLLATE \"C\"");
    // The items without a value, by id: the same ORDER BY (the value is NULL in all of
    // them), because PostgreSQL does not treat `IS NULL` as fixing the column and would
    // otherwise sort them all rather than read the index in order.
    let tail = &ordered;
    let limit = |(mut sql, mut a): QueryStatement| -> QueryStatement {
        a.push(Box::new(i64::from(q.limit)));
        sql.push_str(&format!(" LIMIT ${}", a.len()));
        (sql, a)
    };
    let (sql, mut a) = filtered(q, plan);
    let Some(c) = &q.after else {
        return vec![limit((format!("{sql}{ordered}"), a))];
    };
    match c.value {
        Some(v) => {
            a.push(match v {
                OrderValue::Int(n) if real => Box::new(n as f64),
                OrderValue::Int(n) => Box::new(n),
                OrderValue::Real(x) => Box::new(x),
            });
            let n = a.len();
            a.push(Box::new(c.platform.clone()));
            a.push(Box::new(c.source_id.clone()));
            let (again, b) = filtered(q, plan);
            vec![
                limit((
                    format!(
                        "{sql} AND {col} <= ${n} AND NOT ({col} = ${n} AND (platform COLLATE \"C\" < ${p}
                           OR (platform = ${p} AND source_id COLLATE \"C\" <= ${i}))){ordered}",
                        p = n + 1,
                        i = n + 2
                    ),
                    a,
                )),
                limit((format!("{again} AND {col} IS NULL{tail}"), b)),
            ]
        }
        None => {
            a.push(Box::new(c.platform.clone()));
            let n = a.len();
            a.push(Box::new(c.source_id.clone()));
            vec![limit((
                format!(
                    "{sql} AND {col} IS NULL AND (platform COLLATE \"C\" > ${n}
                       OR (platform = ${n} AND source_id COLLATE \"C\" > ${i})){tail}",
                    i = n + 1
                ),
                a,
            ))]
        }
    }
}

/// `SELECT … FROM results WHERE` the query's filters, with their arguments; with a source
/// and [`SourcePlan::FromSightings`], the results joined to the kind's sightings instead.
fn filtered(q: &ResultQuery, plan: SourcePlan) -> QueryStatement {
    let from_sightings = q.source.is_some() && plan == SourcePlan::FromSightings;
    let mut sql = if from_sightings {
        format!(
            "SELECT {RESULT_COLUMNS} FROM (SELECT DISTINCT result_id FROM result_sightings WHERE source = $1 OFFSET 0) k
             CROSS JOIN LATERAL (SELECT * FROM results r WHERE r.id = k.result_id OFFSET 0) results WHERE true"
        )
    } else {
        format!("SELECT {RESULT_COLUMNS} FROM results WHERE true")
    };
    let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut and = |condition: &str, arg: Box<dyn ToSql + Sync + Send>| {
        args.push(arg);
        sql.push_str(&condition.replace("$?", &format!("${}", args.len())));
    };
    if let Some(source) = &q.source {
        if from_sightings {
            and("", Box::new(source.clone()));
        } else {
            and(
                " AND EXISTS (SELECT 1 FROM result_sightings s WHERE s.source = $? AND s.result_id = results.id)",
                Box::new(source.clone()),
            );
        }
    }
    if let Some(t) = q.since {
        and(" AND last_seen_at >= $?", Box::new(t.as_millisecond()));
    }
    if let Some(t) = q.new_since {
        and(" AND first_seen_at >= $?", Box::new(t.as_millisecond()));
    }
    if let Some(channel) = &q.channel_id {
        and(" AND channel_id = $?", Box::new(channel.clone()));
    }
    if let Some(t) = q.task {
        and(
            " AND id IN (SELECT s.result_id FROM result_sightings s WHERE s.task_id = $?)",
            Box::new(t.0),
        );
    }
    if let Some(f) = q.format {
        and(" AND video_format = $?", Box::new(f.as_str().to_owned()));
    }
    if let Some(lo) = q.min_score {
        and(" AND outlier_score >= $?", Box::new(lo));
    }
    if let Some(hi) = q.max_score {
        and(" AND outlier_score <= $?", Box::new(hi));
    }
    (sql, args)
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
        let settings = self.options().outlier;
        let min_span = settings.growth_min_span_secs();
        // Sorted, so two saves lock shared channels in the same order.
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
        in_tx!(self, |tx| async {
            let mut report = SaveReport::default();
            let mut refresh: std::collections::BTreeSet<(&str, &str)> =
                std::collections::BTreeSet::new();
            let pending =
                save::save_items(&tx, task, items, now, min_span, &mut report, &mut refresh)
                    .await?;
            let mut writes = write::RowWrites::default();
            for (channel, saved) in &channels {
                let refresh: std::collections::BTreeSet<&str> = saved
                    .iter()
                    .copied()
                    .filter(|id| refresh.contains(&(*channel, *id)))
                    .collect();
                rescore::rescore_channel(
                    &tx,
                    channel,
                    saved,
                    &refresh,
                    false,
                    now,
                    &settings,
                    &pending,
                    &mut writes,
                )
                .await?;
            }
            write::flush(&tx, &pending, &writes, now, task).await?;
            Ok::<_, PortError>(report)
        }
        .await)
    }

    async fn get(&self, platform: &str, source_id: &str) -> Result<StoredResult, PortError> {
        self.result_row(platform, source_id).await.map(|(_, r)| r)
    }

    async fn sightings(
        &self,
        platform: &str,
        source_id: &str,
        limit: u32,
    ) -> Result<Vec<Sighting>, PortError> {
        prismq_domain::ports::check_page_limit(limit)?;
        let (id, _) = self.result_row(platform, source_id).await?;
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT source, task_id, rank, seen_at FROM result_sightings
                 WHERE result_id = $1 ORDER BY seen_at DESC, id DESC LIMIT $2",
                &[&id, &i64::from(limit)],
            )
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(Sighting {
                    source: get(r, 0)?,
                    task_id: get::<Option<i64>>(r, 1)?.map(prismq_domain::TaskId),
                    rank: get::<Option<i64>>(r, 2)?
                        .map(u32::try_from)
                        .transpose()
                        .map_err(|e| corrupt("rank", e))?,
                    seen_at: ts(get(r, 3)?)?,
                })
            })
            .collect()
    }

    async fn find(&self, source_id: &str) -> Result<Vec<StoredResult>, PortError> {
        // A loose index scan: the distinct platforms one `min` probe of the unique
        // (platform, source_id) index at a time, then one probe per platform for the id.
        let sql = format!(
            "WITH RECURSIVE platforms(platform) AS (
                SELECT min(platform) FROM results
                UNION ALL
                SELECT (SELECT min(r.platform) FROM results r WHERE r.platform > p.platform)
                FROM platforms p WHERE p.platform IS NOT NULL
            )
            SELECT {RESULT_COLUMNS} FROM results
            WHERE source_id = $1 AND platform IN (SELECT platform FROM platforms WHERE platform IS NOT NULL)
            ORDER BY platform COLLATE \"C\""
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
        platform: &str,
        source_id: &str,
    ) -> Result<Vec<MetricSnapshot>, PortError> {
        let (id, _) = self.result_row(platform, source_id).await?;
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

    async fn baselines(&self, channel_id: &str) -> Result<Vec<ChannelBaseline>, PortError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT format, basis, median_views, sample, computed_at FROM channel_baselines
                 WHERE channel_id = $1",
                &[&channel_id],
            )
            .await
            .map_err(map_err)?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(ChannelBaseline {
                    channel_id: channel_id.to_owned(),
                    baseline: Baseline {
                        format: format_col(r, 0)?
                            .ok_or_else(|| corrupt("baseline format", "none"))?,
                        basis: get::<String>(r, 1)?
                            .parse::<AgeBasis>()
                            .map_err(|e| corrupt("baseline basis", e))?,
                        median: get(r, 2)?,
                        sample: u32::try_from(get::<i64>(r, 3)?)
                            .map_err(|e| corrupt("baseline sample", e))?,
                    },
                    computed_at: ts(get(r, 4)?)?,
                })
            })
            .collect::<Result<Vec<_>, PortError>>()?;
        out.sort_by_key(|b| (b.baseline.format, b.baseline.basis));
        Ok(out)
    }

    async fn rescore(&self, channel_id: Option<String>) -> Result<RescoreReport, PortError> {
        let settings = self.options().outlier;
        let mut report = RescoreReport::default();
        let rescoring_all = channel_id.is_none();
        let channels: Vec<String> = match channel_id {
            Some(c) => vec![c],
            None => {
                let client = self.client().await?;
                client
                    .query(
                        "SELECT DISTINCT channel_id COLLATE \"C\" FROM results
                         WHERE channel_id IS NOT NULL ORDER BY 1",
                        &[],
                    )
                    .await
                    .map_err(map_err)?
                    .iter()
                    .map(|r| get(r, 0))
                    .collect::<Result<_, _>>()?
            }
        };
        for channel in channels {
            let now = self.now_ms();
            let videos: Vec<String> = {
                let client = self.client().await?;
                client
                    .query(
                        "SELECT DISTINCT source_id FROM results WHERE channel_id = $1",
                        &[&channel],
                    )
                    .await
                    .map_err(map_err)?
                    .iter()
                    .map(|r| get(r, 0))
                    .collect::<Result<_, _>>()?
            };
            if videos.is_empty() {
                continue;
            }
            let saved: std::collections::BTreeSet<&str> =
                videos.iter().map(String::as_str).collect();
            in_tx!(self, |tx| async {
                let mut writes = write::RowWrites::default();
                rescore::rescore_channel(
                    &tx,
                    &channel,
                    &saved,
                    &saved,
                    true,
                    now,
                    &settings,
                    &[],
                    &mut writes,
                )
                .await?;
                write::flush(&tx, &[], &writes, now, None).await
            }
            .await)?;
            report.channels += 1;
            report.videos += videos.len() as u64;
        }
        if rescoring_all {
            let min_span = settings.growth_min_span_secs();
            let mut after = 0_i64;
            loop {
                let ids: Vec<i64> = {
                    let client = self.client().await?;
                    client
                        .query(
                            "SELECT id FROM results WHERE id > $1 ORDER BY id LIMIT 1000",
                            &[&after],
                        )
                        .await
                        .map_err(map_err)?
                        .iter()
                        .map(|r| get(r, 0))
                        .collect::<Result<_, _>>()?
                };
                let Some(&last) = ids.last() else { break };
                in_tx!(self, |tx| async {
                    for id in &ids {
                        refresh_growth(&tx, *id, None, None, min_span).await?;
                    }
                    Ok::<_, PortError>(())
                }
                .await)?;
                report.growth += ids.len() as u64;
                after = last;
            }
        }
        Ok(report)
    }

    async fn count(&self, platform: Option<String>) -> Result<u64, PortError> {
        let client = self.client().await?;
        let row = match &platform {
            Some(s) => {
                client
                    .query_one("SELECT count(*) FROM results WHERE platform = $1", &[s])
                    .await
            }
            None => client.query_one("SELECT count(*) FROM results", &[]).await,
        }
        .map_err(map_err)?;
        Ok(u64::try_from(get::<i64>(&row, 0)?).unwrap_or(0))
    }
}
