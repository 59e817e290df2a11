//! A batch save in a few statements whatever its size: the batch's known records are
//! locked, its new ones inserted, and their snapshots and sightings written, each by one
//! statement over arrays (`unnest`), with the growth of every record computed from one read
//! of their snapshots. The records that existed are left [`Pending`]:
//! [`super::write::flush`] updates them once the channels they belong to are rescored, with
//! their values and scores in the same statement.
//!
//! An item repeated in a batch is saved over its previous occurrence, as one save after the
//! other would: the batch is cut into rounds, round k holding each record's (k+1)-th
//! occurrence (a scrape names each video once, so there is one round).

use std::collections::{BTreeSet, HashMap};

use deadpool_postgres::GenericClient;
use serde_json::Value;

use prismq_domain::growth::{Growth, GrowthWindow};
use prismq_domain::outlier::{self, VideoFormat};
use prismq_domain::ports::StoredResult;
use prismq_domain::{ContentItem, Metrics, PortError, SaveReport};

use super::write::{flush, OverlayRow, Pending, PendingWrite, RowWrites};
use super::{stored_from_row, RESULT_COLUMNS, RESULT_COLUMN_COUNT};
use crate::codec::{get, ts};
use crate::error::{corrupt, map_err};

/// Inserts a round's unknown records in batch order (`$18` now, `$19` the task); returns the
/// id, platform and source id of each one inserted (the others exist already).
const INSERT_SQL: &str = "INSERT INTO results (platform, source_id, title, description, url, tags, channel, channel_id,
       published_at, duration, views, likes, comments, extra, first_seen_at, last_seen_at, last_task_id,
       first_views, first_metrics_at, metrics_at, video_format, last_source, last_rank)
     SELECT i.platform, i.source_id, i.title, i.description, i.url, i.tags, i.channel, i.channel_id,
       i.published_at, i.duration, i.views, i.likes, i.comments, i.extra, $18::bigint, $18::bigint, $19::bigint,
       i.views, $18::bigint, $18::bigint, i.video_format, i.last_source, i.last_rank
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::text[], $8::text[],
                 $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::jsonb[], $15::text[],
                 $16::text[], $17::bigint[])
       WITH ORDINALITY AS i(platform, source_id, title, description, url, tags, channel, channel_id,
                            published_at, duration, views, likes, comments, extra, video_format, last_source,
                            last_rank, n)
     ORDER BY i.n
     ON CONFLICT (platform, source_id) DO NOTHING
     RETURNING id, platform, source_id";

/// One snapshot of each record in `$1` (batch order) at `$5`.
const SNAPSHOT_SQL: &str =
    "INSERT INTO result_metrics (result_id, captured_at, views, likes, comments)
     SELECT m.result_id, $5::bigint, m.views, m.likes, m.comments
     FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[]) WITH ORDINALITY
       AS m(result_id, views, likes, comments, n)
     ORDER BY m.n";

/// A sighting of each record in `$1` (batch order) by task `$4` at `$5`: a task's earlier
/// sighting of a record is moved, any other is added.
const SIGHT_SQL: &str = "INSERT INTO result_sightings (result_id, source, task_id, rank, seen_at)
     SELECT s.result_id, s.source, $4::bigint, s.rank, $5::bigint
     FROM unnest($1::bigint[], $2::text[], $3::bigint[]) WITH ORDINALITY AS s(result_id, source, rank, n)
     ORDER BY s.n
     ON CONFLICT (task_id, result_id) WHERE task_id IS NOT NULL
     DO UPDATE SET source = excluded.source, rank = excluded.rank, seen_at = excluded.seen_at";

/// The snapshots a growth is computed from, for each record in `$1`: those within the
/// longest window (from `$2`) and the last one before it.
const GROWTH_HISTORY_SQL: &str = "SELECT k.id, m.captured_at, m.views, m.likes, m.comments
     FROM unnest($1::bigint[]) AS k(id)
     CROSS JOIN LATERAL (
       (SELECT captured_at, views, likes, comments FROM result_metrics
        WHERE result_id = k.id AND captured_at < $2 ORDER BY captured_at DESC LIMIT 1)
       UNION ALL
       SELECT captured_at, views, likes, comments FROM result_metrics
       WHERE result_id = k.id AND captured_at >= $2) m";

/// The batch in rounds: round k holds the (k+1)-th occurrence of each (platform, source_id),
/// in batch order, so no round names a record twice.
fn rounds(items: &[ContentItem]) -> Vec<Vec<&ContentItem>> {
    let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
    let mut out: Vec<Vec<&ContentItem>> = Vec::new();
    for item in items {
        let n = seen
            .entry((item.platform.as_str(), item.source_id.as_str()))
            .or_insert(0);
        if out.len() <= *n {
            out.push(Vec::new());
        }
        out[*n].push(item);
        *n += 1;
    }
    out
}

/// Saves validated `items` at `now` as [`ResultStore::save`] does, one item after the
/// other in effect: adds to `report`, and to `refresh` the (channel, video) of each item
/// whose video's outlier values may have changed — every item but one saved unchanged
/// whose previous and new `last_seen_at` both lie outside the 7- and 30-day tolerances of
/// [`outlier::observation_counts`], on a record that has a format (as on SQLite).
///
/// New records are inserted, and snapshots and sightings written; the records that existed
/// are returned [`Pending`], for [`super::write::flush`] to write once rescored (those of
/// every round but the last are written here, so each round reads the one before).
///
/// [`ResultStore::save`]: prismq_domain::ports::ResultStore::save
pub(super) async fn save_items<'a>(
    c: &impl GenericClient,
    task: Option<i64>,
    items: &'a [ContentItem],
    now: i64,
    min_span_secs: i64,
    report: &mut SaveReport,
    refresh: &mut BTreeSet<(&'a str, &'a str)>,
) -> Result<Vec<Pending>, PortError> {
    let rounds = rounds(items);
    let last = rounds.len().saturating_sub(1);
    for (i, round) in rounds.iter().enumerate() {
        let pending = save_round(c, task, round, now, min_span_secs, report, refresh).await?;
        if i == last {
            return Ok(pending);
        }
        flush(c, &pending, &RowWrites::default(), now, task).await?;
    }
    Ok(Vec::new())
}

/// A record of the round that existed already, locked, with the item merged over it and
/// its stored values at 7 and 30 days of age.
struct Known {
    id: i64,
    stored: StoredResult,
    merged: ContentItem,
    at_7d: Option<i64>,
    at_30d: Option<i64>,
}

/// What a round does to one item's record.
enum Outcome {
    Inserted(i64),
    Known(Box<Known>),
}

async fn save_round<'a>(
    c: &impl GenericClient,
    task: Option<i64>,
    round: &[&'a ContentItem],
    now: i64,
    min_span_secs: i64,
    report: &mut SaveReport,
    refresh: &mut BTreeSet<(&'a str, &'a str)>,
) -> Result<Vec<Pending>, PortError> {
    // The records that exist are locked first, so a re-scrape (most of its records known)
    // sends only its new items through the insert; an item inserted by another save
    // between the two statements is locked after it.
    let mut outcomes: Vec<Option<Outcome>> = round.iter().map(|_| None).collect();
    lock_known(c, round, &mut outcomes, Missing::Leave).await?;
    insert_unknown(c, task, round, now, &mut outcomes).await?;
    lock_known(c, round, &mut outcomes, Missing::Fail).await?;

    // The growth of every changed record, and of every unchanged one whose growth may
    // still move, from one read of their snapshots.
    let needs_growth = |k: &Known| k.stored.item != k.merged || !k.stored.growth.is_settled();
    let growth_ids: Vec<i64> = outcomes
        .iter()
        .filter_map(|o| match o {
            Some(Outcome::Known(k)) if needs_growth(k) => Some(k.id),
            _ => None,
        })
        .collect();
    let mut history = growth_history(c, &growth_ids, now).await?;
    let now_ts = ts(now)?;

    let mut snap = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut sight: (Vec<i64>, Vec<&str>, Vec<Option<i64>>) = (Vec::new(), Vec::new(), Vec::new());
    let mut pending = Vec::new();
    for (item, outcome) in round.iter().zip(outcomes) {
        let outcome = outcome.ok_or_else(|| {
            corrupt(
                "result",
                "an item of the batch was neither inserted nor found",
            )
        })?;
        let video = item
            .channel_id
            .as_deref()
            .map(|ch| (ch, item.source_id.as_str()));
        let (id, snapshot) = match outcome {
            Outcome::Inserted(id) => {
                report.inserted += 1;
                refresh.extend(video);
                (id, Some(item.metrics))
            }
            Outcome::Known(k) => {
                let Known {
                    id,
                    stored,
                    merged,
                    at_7d,
                    at_30d,
                } = *k;
                let is_changed = stored.item != merged;
                let metrics_changed = stored.item.metrics != merged.metrics;
                let growth = if is_changed || !stored.growth.is_settled() {
                    let mut obs = history.remove(&id).unwrap_or_default();
                    if is_changed && metrics_changed {
                        obs.push((now_ts, merged.metrics));
                    }
                    obs.push((now_ts, merged.metrics));
                    let g = Growth::of(&obs, min_span_secs);
                    (g != stored.growth).then_some(g)
                } else {
                    None
                };
                let own_format = outlier::format_of(&merged);
                let format = own_format.map(VideoFormat::as_str);
                let video_format =
                    if is_changed || stored.item.channel_id.is_none() || stored.format.is_none() {
                        own_format
                    } else {
                        stored.format
                    };
                let row = OverlayRow {
                    platform: merged.platform.clone(),
                    source_id: merged.source_id.clone(),
                    channel_id: merged.channel_id.clone(),
                    views: merged.metrics.views,
                    published_at: merged.published_at,
                    last_seen_at: now_ts,
                    format_source: own_format,
                    video_format,
                    at_7d,
                    at_30d,
                    score: stored.outlier,
                };
                let snapshot = (is_changed && metrics_changed).then_some(merged.metrics);
                let write = if is_changed {
                    report.updated += 1;
                    refresh.extend(video);
                    PendingWrite::Changed {
                        merged: Box::new(merged),
                        metrics_changed,
                        format,
                        growth,
                    }
                } else {
                    report.unchanged += 1;
                    let moved = merged.published_at.is_some_and(|p| {
                        outlier::observation_counts(p, stored.last_seen_at)
                            || outlier::observation_counts(p, now_ts)
                    });
                    if stored.format.is_none() || moved {
                        refresh.extend(video);
                    }
                    PendingWrite::Unchanged { format, growth }
                };
                pending.push(Pending { id, row, write });
                (id, snapshot)
            }
        };
        if let Some(m) = snapshot {
            snap.0.push(id);
            snap.1.push(m.views);
            snap.2.push(m.likes);
            snap.3.push(m.comments);
        }
        sight.0.push(id);
        sight.1.push(item.source.as_str());
        sight.2.push(item.rank.map(i64::from));
    }

    // Pipelined: sent together, run in this order.
    let snapshots = async {
        if snap.0.is_empty() {
            return Ok(0);
        }
        let stmt = c.prepare_cached(SNAPSHOT_SQL).await.map_err(map_err)?;
        c.execute(&stmt, &[&snap.0, &snap.1, &snap.2, &snap.3, &now])
            .await
            .map_err(map_err)
    };
    let sightings = async {
        let stmt = c.prepare_cached(SIGHT_SQL).await.map_err(map_err)?;
        c.execute(&stmt, &[&sight.0, &sight.1, &sight.2, &task, &now])
            .await
            .map_err(map_err)
    };
    futures_util::future::try_join(snapshots, sightings).await?;
    Ok(pending)
}

/// The columns of a new record: the item's own.
#[derive(Default)]
struct NewArrays<'a> {
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
    video_format: Vec<Option<&'static str>>,
    last_source: Vec<&'a str>,
    last_rank: Vec<Option<i64>>,
}

impl<'a> NewArrays<'a> {
    fn push(&mut self, item: &'a ContentItem) -> Result<(), PortError> {
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
        self.video_format
            .push(outlier::format_of(item).map(VideoFormat::as_str));
        self.last_source.push(&item.source);
        self.last_rank.push(item.rank.map(i64::from));
        Ok(())
    }
}

/// The positions of the round's items that have no outcome yet, with their platforms and
/// source ids in that order; `None` when every item has one.
fn without_outcome<'r>(
    round: &[&'r ContentItem],
    outcomes: &[Option<Outcome>],
) -> Option<(Vec<usize>, Vec<&'r str>, Vec<&'r str>)> {
    let at: Vec<usize> = (0..round.len())
        .filter(|&i| outcomes[i].is_none())
        .collect();
    if at.is_empty() {
        return None;
    }
    let platform = at.iter().map(|&i| round[i].platform.as_str()).collect();
    let source_id = at.iter().map(|&i| round[i].source_id.as_str()).collect();
    Some((at, platform, source_id))
}

/// Inserts the round's items that have no outcome yet (in batch order) where their record
/// still does not exist, setting `Inserted(id)` for each one inserted.
async fn insert_unknown(
    c: &impl GenericClient,
    task: Option<i64>,
    round: &[&ContentItem],
    now: i64,
    outcomes: &mut [Option<Outcome>],
) -> Result<(), PortError> {
    let Some((unknown, platform, source_id)) = without_outcome(round, outcomes) else {
        return Ok(());
    };
    let mut a = NewArrays::default();
    for &i in &unknown {
        a.push(round[i])?;
    }
    let stmt = c.prepare_cached(INSERT_SQL).await.map_err(map_err)?;
    let rows = c
        .query(
            &stmt,
            &[
                &platform,
                &source_id,
                &a.title,
                &a.description,
                &a.url,
                &a.tags,
                &a.channel,
                &a.channel_id,
                &a.published_at,
                &a.duration,
                &a.views,
                &a.likes,
                &a.comments,
                &a.extra,
                &a.video_format,
                &a.last_source,
                &a.last_rank,
                &now,
                &task,
            ],
        )
        .await
        .map_err(map_err)?;
    let mut ids: HashMap<(String, String), i64> = HashMap::with_capacity(rows.len());
    for r in &rows {
        ids.insert((get(r, 1)?, get(r, 2)?), get(r, 0)?);
    }
    for i in unknown {
        let item = round[i];
        if let Some(id) = ids.get(&(item.platform.clone(), item.source_id.clone())) {
            outcomes[i] = Some(Outcome::Inserted(*id));
        }
    }
    Ok(())
}

/// What [`lock_known`] does with an item whose record it does not find.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Missing {
    /// Leaves its outcome empty (the record may not exist yet).
    Leave,
    /// Fails `Busy`: the record existed when the insert was tried.
    Fail,
}

/// Reads and locks (`FOR UPDATE`, in batch order) the records of the round's items that
/// have no outcome yet, filling in the outcomes of those found.
async fn lock_known(
    c: &impl GenericClient,
    round: &[&ContentItem],
    outcomes: &mut [Option<Outcome>],
    missing: Missing,
) -> Result<(), PortError> {
    let Some((known, platform, source_id)) = without_outcome(round, outcomes) else {
        return Ok(());
    };
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {RESULT_COLUMNS}, views_7d, views_30d FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(key_platform, key_source_id, key_n)
             JOIN results ON platform = k.key_platform AND source_id = k.key_source_id
             ORDER BY k.key_n FOR UPDATE OF results"
        ))
        .await
        .map_err(map_err)?;
    let rows = c
        .query(&stmt, &[&platform, &source_id])
        .await
        .map_err(map_err)?;
    type Found = (i64, StoredResult, Option<i64>, Option<i64>);
    let mut found: HashMap<(String, String), Found> = HashMap::with_capacity(rows.len());
    for r in &rows {
        let (id, stored) = stored_from_row(r)?;
        let values = (
            get(r, RESULT_COLUMN_COUNT)?,
            get(r, RESULT_COLUMN_COUNT + 1)?,
        );
        found.insert(
            (stored.item.platform.clone(), stored.item.source_id.clone()),
            (id, stored, values.0, values.1),
        );
    }
    for i in known {
        let item = round[i];
        let Some((id, stored, at_7d, at_30d)) =
            found.remove(&(item.platform.clone(), item.source_id.clone()))
        else {
            if missing == Missing::Leave {
                continue;
            }
            // It existed when the insert was tried: deleted since, by another process.
            return Err(PortError::Busy(format!(
                "result {}/{} was deleted while being saved",
                item.platform, item.source_id
            )));
        };
        let merged = item.merged_over(&stored.item);
        outcomes[i] = Some(Outcome::Known(Box::new(Known {
            id,
            stored,
            merged,
            at_7d,
            at_30d,
        })));
    }
    Ok(())
}

/// The snapshots each record in `ids` has within the longest growth window before `now`
/// and the last one before that window, by record.
async fn growth_history(
    c: &impl GenericClient,
    ids: &[i64],
    now: i64,
) -> Result<HashMap<i64, Vec<(prismq_domain::Timestamp, Metrics)>>, PortError> {
    let mut out: HashMap<i64, Vec<_>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let from = now - GrowthWindow::Month.seconds() * 1_000;
    let stmt = c
        .prepare_cached(GROWTH_HISTORY_SQL)
        .await
        .map_err(map_err)?;
    for r in c.query(&stmt, &[&ids, &from]).await.map_err(map_err)? {
        out.entry(get::<i64>(&r, 0)?).or_default().push((
            ts(get(&r, 1)?)?,
            Metrics {
                views: get(&r, 2)?,
                likes: get(&r, 3)?,
                comments: get(&r, 4)?,
            },
        ));
    }
    Ok(out)
}
