//! A channel's outlier values, baselines and scores brought up to date after a save, in a
//! few statements whatever the number of videos: the saved videos' rows and snapshots are
//! read once for all of them, the baselines' samples in one pipelined exchange. Nothing is
//! written to `results` here: the channel is read through the save's pending records (the
//! rows as they will be) and the rows whose values or scores changed, and what changed is
//! added to [`RowWrites`] for [`super::write::flush`] to write with the save's own update.

use std::collections::{BTreeSet, HashMap, HashSet};

use deadpool_postgres::GenericClient;
use serde_json::{Map, Value};
use tokio_postgres::Row;

use prismq_domain::outlier::{
    self, AgeBasis, Baseline, ChannelVideo, OutlierScore, OutlierSettings, VideoFormat, VideoValues,
};
use prismq_domain::{PortError, Timestamp};

use super::write::{Pending, RowWrites};
use super::{format_col, score_cols};
use crate::codec::{get, ts, ts_opt};
use crate::error::{corrupt, map_err};

/// The rows of the videos `$2` of channel `$1` but those `$3` (the save's pending ones).
const VIDEO_ROWS_SQL: &str =
    "SELECT id, source_id, platform, views, published_at, last_seen_at, extra, duration,
       outlier_score, outlier_basis, outlier_baseline, outlier_sample, outlier_views
     FROM results WHERE channel_id = $1 AND source_id = ANY($2) AND id <> ALL($3)";

/// The snapshots of each record `$1` with views that can count for 7 days of age (captured
/// within `$2`–`$3`) or 30 (within `$4`–`$5`), the windows of its video.
const VIDEO_SNAPSHOTS_SQL: &str = "SELECT k.id, m.captured_at, m.views
     FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[])
       AS k(id, a7, b7, a30, b30)
     CROSS JOIN LATERAL (
       SELECT captured_at, views FROM result_metrics
       WHERE result_id = k.id AND views IS NOT NULL
         AND (captured_at BETWEEN k.a7 AND k.b7 OR captured_at BETWEEN k.a30 AND k.b30)) m";

/// One row of a video, as its values are computed from.
struct VideoRow {
    id: i64,
    views: Option<i64>,
    published_at: Option<Timestamp>,
    last_seen_at: Timestamp,
    format: Option<VideoFormat>,
}

/// A row of the channel as the rescore sees it once the save is written: a pending
/// record, or a row whose values were recomputed.
struct Entry {
    id: i64,
    source_id: String,
    platform: String,
    published_at: Option<Timestamp>,
    views: Option<i64>,
    format: Option<VideoFormat>,
    at_7d: Option<i64>,
    at_30d: Option<i64>,
    score: Option<OutlierScore>,
}

impl Entry {
    fn values(&self) -> VideoValues {
        VideoValues {
            format: self.format,
            published_at: self.published_at,
            views: self.views,
            at_7d: self.at_7d,
            at_30d: self.at_30d,
        }
    }
}

/// A row of a video with its source id, platform and stored score.
type Located = (String, String, VideoRow, Option<OutlierScore>);

/// Recomputes the clock-free [`VideoValues`] of the `videos` of a channel, each from all
/// its rows (those of the save as it leaves them) and those of their snapshots that can
/// count for 7 or 30 days of age: two reads for all of them. Each row's values go to
/// `writes`, and the row, with them, to `overlay`.
async fn refresh_videos(
    c: &impl GenericClient,
    channel_id: &str,
    videos: &BTreeSet<&str>,
    pending: &[Pending],
    pending_ids: &[i64],
    overlay: &mut Vec<Entry>,
    writes: &mut RowWrites,
) -> Result<(), PortError> {
    if videos.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = videos.iter().copied().collect();
    let stmt = c.prepare_cached(VIDEO_ROWS_SQL).await.map_err(map_err)?;
    let mut all: Vec<Located> = Vec::new();
    for r in c
        .query(&stmt, &[&channel_id, &names, &pending_ids])
        .await
        .map_err(map_err)?
    {
        let extra = serde_json::from_value::<Map<String, Value>>(get(&r, 6)?)
            .map_err(|e| corrupt("extra", e))?;
        let row = VideoRow {
            id: get(&r, 0)?,
            views: get(&r, 3)?,
            published_at: ts_opt(get(&r, 4)?)?,
            last_seen_at: ts(get(&r, 5)?)?,
            format: outlier::format_from(&extra, get(&r, 7)?),
        };
        all.push((get(&r, 1)?, get(&r, 2)?, row, score_cols(&r, 8)?));
    }
    for p in pending {
        let o = &p.row;
        if o.channel_id.as_deref() == Some(channel_id) && videos.contains(o.source_id.as_str()) {
            let row = VideoRow {
                id: p.id,
                views: o.views,
                published_at: o.published_at,
                last_seen_at: o.last_seen_at,
                format: o.format_source,
            };
            all.push((o.source_id.clone(), o.platform.clone(), row, o.score));
        }
    }
    // Each video's rows by platform (bytewise, as `COLLATE "C"`).
    all.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let mut grouped: Vec<&[Located]> = Vec::new();
    let mut start = 0;
    while start < all.len() {
        let mut end = start + 1;
        while end < all.len() && all[end].0 == all[start].0 {
            end += 1;
        }
        grouped.push(&all[start..end]);
        start = end;
    }
    // The row each video's values come from: its most viewed (the first by platform on a
    // tie); only the snapshots that can count for 7 or 30 days of age (none without a
    // publication date, when no age counts).
    let best: Vec<&VideoRow> = grouped
        .iter()
        .map(|rows| {
            let mut best = &rows[0].2;
            for r in &rows[1..] {
                if r.2.views > best.views {
                    best = &r.2;
                }
            }
            best
        })
        .collect();
    // Each row's id and its video's windows: [ids, 7-day start, end, 30-day start, end].
    let mut windows: [Vec<i64>; 5] = Default::default();
    for (rows, best) in grouped.iter().zip(&best) {
        if let Some(published) = best.published_at {
            let (a7, b7) = outlier::age_window_ms(published, 7);
            let (a30, b30) = outlier::age_window_ms(published, 30);
            for r in rows.iter() {
                windows[0].push(r.2.id);
                windows[1].push(a7);
                windows[2].push(b7);
                windows[3].push(a30);
                windows[4].push(b30);
            }
        }
    }
    let mut snapshots: HashMap<i64, Vec<(Timestamp, i64)>> = HashMap::new();
    if !windows[0].is_empty() {
        let stmt = c
            .prepare_cached(VIDEO_SNAPSHOTS_SQL)
            .await
            .map_err(map_err)?;
        for r in c
            .query(
                &stmt,
                &[
                    &windows[0],
                    &windows[1],
                    &windows[2],
                    &windows[3],
                    &windows[4],
                ],
            )
            .await
            .map_err(map_err)?
        {
            snapshots
                .entry(get(&r, 0)?)
                .or_default()
                .push((ts(get(&r, 1)?)?, get::<i64>(&r, 2)?));
        }
    }
    for (rows, best) in grouped.iter().zip(&best) {
        let mut history = Vec::new();
        for r in rows.iter() {
            history.extend(snapshots.remove(&r.2.id).unwrap_or_default());
        }
        for r in rows.iter() {
            if let Some(v) = r.2.views {
                history.push((r.2.last_seen_at, v));
            }
        }
        let v = VideoValues::of(&ChannelVideo {
            published_at: best.published_at,
            views: best.views,
            format: best.format.or_else(|| rows.iter().find_map(|r| r.2.format)),
            history,
        });
        for (source_id, platform, row, score) in rows.iter() {
            writes.values.insert(row.id, v);
            overlay.push(Entry {
                id: row.id,
                source_id: source_id.clone(),
                platform: platform.clone(),
                published_at: row.published_at,
                views: row.views,
                format: v.format,
                at_7d: v.at_7d,
                at_30d: v.at_30d,
                score: *score,
            });
        }
    }
    Ok(())
}

/// The sample query of one basis (as SQLite's `sample_sql`) with a row limit `$4`, leaving
/// out the rows `$5` (the overlay's): each row's source id, value and publication instant.
pub fn sample_sql(basis: AgeBasis) -> &'static str {
    match basis {
        AgeBasis::Age7d => {
            "SELECT source_id, views_7d, published_at FROM results
             WHERE channel_id = $1 AND video_format = $2 AND published_at <= $3
               AND views_7d IS NOT NULL AND id <> ALL($5)
             ORDER BY published_at DESC, source_id COLLATE \"C\" LIMIT $4"
        }
        AgeBasis::Age30d => {
            "SELECT source_id, views_30d, published_at FROM results
             WHERE channel_id = $1 AND video_format = $2 AND published_at <= $3
               AND views_30d IS NOT NULL AND id <> ALL($5)
             ORDER BY published_at DESC, source_id COLLATE \"C\" LIMIT $4"
        }
        AgeBasis::Total => {
            "SELECT source_id, views, published_at FROM results
             WHERE channel_id = $1 AND video_format = $2 AND published_at <= $3
               AND views IS NOT NULL AND id <> ALL($5)
             ORDER BY published_at DESC, source_id COLLATE \"C\", views DESC LIMIT $4"
        }
    }
}

/// A sample row: publication instant, source id, value. Samples are ordered by
/// publication, newest first, then source id bytewise, then (total views) value, largest
/// first: [`sample_order`].
type SampleRow = (i64, String, i64);

fn sample_order(a: &SampleRow, b: &SampleRow) -> std::cmp::Ordering {
    b.0.cmp(&a.0)
        .then_with(|| a.1.as_bytes().cmp(b.1.as_bytes()))
        .then_with(|| b.2.cmp(&a.2))
}

/// The sample of one (format, basis) from `db`, the first `limit` rows of its query, and
/// `overlay`, the overlay's rows that qualify (any order): the values of the first `window`
/// videos in sample order. `None` when the rows read do not settle it (the query filled its
/// limit before the window was), so the query must be run again with a larger limit.
fn sample_of(
    db: Vec<SampleRow>,
    overlay: &[SampleRow],
    limit: i64,
    window: usize,
) -> Option<Vec<i64>> {
    let complete = (db.len() as i64) < limit;
    let last = db.last().cloned();
    let mut rows = db;
    for o in overlay {
        // Past the last row read, rows of the table may come first: not known yet.
        let known = complete
            || last
                .as_ref()
                .is_some_and(|l| sample_order(o, l) != std::cmp::Ordering::Greater);
        if known {
            rows.push(o.clone());
        }
    }
    rows.sort_by(sample_order);
    let mut seen = std::collections::HashSet::new();
    let mut values = Vec::new();
    for (_, source_id, value) in rows {
        if values.len() == window {
            break;
        }
        if seen.insert(source_id) {
            values.push(value);
        }
    }
    (values.len() == window || complete).then_some(values)
}

/// The channel's baselines as of `now`, each from a sample read through an index (the
/// window's worth of rows, read again with twice the limit only when rows of one video
/// filled it) with `overlay`'s rows in place of those `excluded`, and the baselines stored
/// for it: the formats present, every sample and the stored baselines are asked for at once
/// (a pipeline, one exchange with the server).
async fn compute_baselines(
    c: &impl GenericClient,
    channel_id: &str,
    now: Timestamp,
    settings: &OutlierSettings,
    overlay: &[Entry],
    excluded: &[i64],
) -> Result<(Vec<Baseline>, Vec<Baseline>), PortError> {
    let present_stmt = c
        .prepare_cached(
            "SELECT f FROM unnest($2::text[]) AS f
             WHERE EXISTS (SELECT 1 FROM results
                           WHERE channel_id = $1 AND video_format = f AND id <> ALL($3))",
        )
        .await
        .map_err(map_err)?;
    let stored_stmt = c
        .prepare_cached(
            "SELECT format, basis, median_views, sample FROM channel_baselines WHERE channel_id = $1",
        )
        .await
        .map_err(map_err)?;
    let mut sample_stmts = Vec::new();
    for basis in AgeBasis::ALL {
        sample_stmts.push((
            basis,
            c.prepare_cached(sample_sql(basis)).await.map_err(map_err)?,
        ));
    }
    let sample_stmt = |basis: AgeBasis| {
        sample_stmts
            .iter()
            .find(|(b, _)| *b == basis)
            .map(|(_, s)| s)
            .ok_or_else(|| corrupt("sample statement", basis.as_str()))
    };
    let formats: Vec<&str> = VideoFormat::ALL.iter().map(|f| f.as_str()).collect();
    let window = settings.window as usize;
    let limit = i64::from(settings.window);
    let cutoff = |basis: AgeBasis| match basis {
        AgeBasis::Total => outlier::total_cutoff(now, settings.baseline_min_age_days),
        _ => now,
    };
    let cases: Vec<(VideoFormat, AgeBasis, i64)> = VideoFormat::ALL
        .iter()
        .flat_map(|f| {
            AgeBasis::ALL
                .iter()
                .map(move |b| (*f, *b, cutoff(*b).as_millisecond()))
        })
        .collect();
    let present = async {
        c.query(&present_stmt, &[&channel_id, &formats, &excluded])
            .await
    };
    let stored = async { c.query(&stored_stmt, &[&channel_id]).await };
    let mut sample_queries = Vec::new();
    for (f, b, cut) in &cases {
        let stmt = sample_stmt(*b)?;
        sample_queries.push(async move {
            c.query(stmt, &[&channel_id, &f.as_str(), cut, &limit, &excluded])
                .await
        });
    }
    let samples = futures_util::future::try_join_all(sample_queries);
    let (present, stored, samples) = futures_util::future::try_join3(present, stored, samples)
        .await
        .map_err(map_err)?;
    let mut present: Vec<String> = present
        .iter()
        .map(|r| get(r, 0))
        .collect::<Result<_, _>>()?;
    for e in overlay {
        if let Some(f) = e.format {
            present.push(f.as_str().to_owned());
        }
    }
    let mut stored = stored
        .iter()
        .map(baseline_from_row)
        .collect::<Result<Vec<_>, PortError>>()?;
    stored.sort_by_key(|b| (b.format, b.basis));
    let sample_rows = |rows: &[Row]| -> Result<Vec<SampleRow>, PortError> {
        rows.iter()
            .map(|r| Ok((get(r, 2)?, get(r, 0)?, get(r, 1)?)))
            .collect()
    };
    let mut out = Vec::new();
    for ((format, basis, cut), rows) in cases.iter().zip(samples) {
        if !present.iter().any(|p| p == format.as_str()) {
            continue;
        }
        let extra: Vec<SampleRow> = overlay
            .iter()
            .filter(|e| e.format == Some(*format))
            .filter_map(|e| {
                let published = e.published_at?.as_millisecond();
                let value = match basis {
                    AgeBasis::Age7d => e.at_7d,
                    AgeBasis::Age30d => e.at_30d,
                    AgeBasis::Total => e.views,
                }?;
                (published <= *cut).then(|| (published, e.source_id.clone(), value))
            })
            .collect();
        let mut limit = limit;
        let mut rows = sample_rows(&rows)?;
        let values = loop {
            if let Some(values) = sample_of(rows, &extra, limit, window) {
                break values;
            }
            limit *= 2;
            rows = sample_rows(
                &c.query(
                    sample_stmt(*basis)?,
                    &[&channel_id, &format.as_str(), cut, &limit, &excluded],
                )
                .await
                .map_err(map_err)?,
            )?;
        };
        out.push(Baseline::from_sample(*format, *basis, values, settings));
    }
    Ok((out, stored))
}

/// A `channel_baselines` row's (format, basis, median_views, sample) in columns 0–3.
fn baseline_from_row(r: &Row) -> Result<Baseline, PortError> {
    Ok(Baseline {
        format: format_col(r, 0)?.ok_or_else(|| corrupt("baseline format", "none"))?,
        basis: get::<String>(r, 1)?
            .parse::<AgeBasis>()
            .map_err(|e| corrupt("baseline basis", e))?,
        median: get(r, 2)?,
        sample: u32::try_from(get::<i64>(r, 3)?).map_err(|e| corrupt("baseline sample", e))?,
    })
}

/// Scores rows of a channel against `baselines` (`overlay`'s rows in place of those
/// `excluded`) and adds the scores that changed to `writes`: every row of the channel when
/// `only` is `None`, else the rows of the videos it names.
#[allow(clippy::too_many_arguments)]
async fn score_rows(
    c: &impl GenericClient,
    channel_id: &str,
    only: Option<&BTreeSet<&str>>,
    baselines: &[Baseline],
    now: Timestamp,
    settings: &OutlierSettings,
    overlay: &[Entry],
    excluded: &[i64],
    writes: &mut RowWrites,
) -> Result<(), PortError> {
    const COLUMNS: &str = "id, source_id, video_format, published_at, views, views_7d, views_30d,
        outlier_score, outlier_basis, outlier_baseline, outlier_sample, outlier_views, platform";
    let rows = match only {
        None => {
            let stmt = c
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM results WHERE channel_id = $1 AND id <> ALL($2)"
                ))
                .await
                .map_err(map_err)?;
            c.query(&stmt, &[&channel_id, &excluded])
                .await
                .map_err(map_err)?
        }
        Some(videos) => {
            let ids: Vec<&str> = videos.iter().copied().collect();
            let stmt = c
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM results
                     WHERE channel_id = $1 AND source_id = ANY($2) AND id <> ALL($3)"
                ))
                .await
                .map_err(map_err)?;
            c.query(&stmt, &[&channel_id, &ids, &excluded])
                .await
                .map_err(map_err)?
        }
    };
    // (source id, platform, id, values, stored score), each video's rows by platform.
    let mut rows: Vec<(String, String, i64, VideoValues, Option<OutlierScore>)> = rows
        .iter()
        .map(|r| {
            Ok((
                get(r, 1)?,
                get(r, 12)?,
                get(r, 0)?,
                VideoValues {
                    format: format_col(r, 2)?,
                    published_at: ts_opt(get(r, 3)?)?,
                    views: get(r, 4)?,
                    at_7d: get(r, 5)?,
                    at_30d: get(r, 6)?,
                },
                score_cols(r, 7)?,
            ))
        })
        .collect::<Result<_, PortError>>()?;
    for e in overlay {
        if only.is_none_or(|videos| videos.contains(e.source_id.as_str())) {
            rows.push((
                e.source_id.clone(),
                e.platform.clone(),
                e.id,
                e.values(),
                e.score,
            ));
        }
    }
    rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let mut start = 0;
    while start < rows.len() {
        let mut end = start + 1;
        while end < rows.len() && rows[end].0 == rows[start].0 {
            end += 1;
        }
        let group = &rows[start..end];
        let mut best = &group[0];
        for r in &group[1..] {
            if r.3.views > best.3.views {
                best = r;
            }
        }
        let score = outlier::score_of(&best.3, baselines, now, settings);
        for r in group {
            if r.4 != score {
                writes.scores.insert(r.2, score);
            }
        }
        start = end;
    }
    Ok(())
}

/// Brings a channel's baselines and scores up to date after `saved` videos of it were
/// saved ([`ResultStore::save`]'s rule), under a transaction-scoped advisory lock on the
/// channel so two saves of one channel rescore it one after the other, reading the
/// channel's rows through the save's `pending` records; the values and scores that changed
/// go to `writes`, the baselines are written. As on SQLite, the cost is bounded by the
/// window and the saved videos unless a baseline moved. Only the saved videos in `refresh`
/// have their values recomputed (the others were saved unchanged in a way that cannot move
/// them, see [`super::save`]); with `everything` every video is refreshed and rescored.
///
/// [`ResultStore::save`]: prismq_domain::ports::ResultStore::save
#[allow(clippy::too_many_arguments)]
pub(super) async fn rescore_channel(
    c: &impl GenericClient,
    channel_id: &str,
    saved: &BTreeSet<&str>,
    refresh: &BTreeSet<&str>,
    everything: bool,
    now: i64,
    settings: &OutlierSettings,
    pending: &[Pending],
    writes: &mut RowWrites,
) -> Result<(), PortError> {
    let lock = c
        .prepare_cached("SELECT pg_advisory_xact_lock(20561, hashtext($1))")
        .await
        .map_err(map_err)?;
    c.execute(&lock, &[&channel_id]).await.map_err(map_err)?;
    let now = ts(now)?;
    let pending_ids: Vec<i64> = pending.iter().map(|p| p.id).collect();
    let mut overlay = Vec::new();
    refresh_videos(
        c,
        channel_id,
        refresh,
        pending,
        &pending_ids,
        &mut overlay,
        writes,
    )
    .await?;
    // The save's other records in the channel, as it leaves them.
    let refreshed: HashSet<i64> = overlay.iter().map(|e| e.id).collect();
    for p in pending {
        let o = &p.row;
        if o.channel_id.as_deref() == Some(channel_id) && !refreshed.contains(&p.id) {
            overlay.push(Entry {
                id: p.id,
                source_id: o.source_id.clone(),
                platform: o.platform.clone(),
                published_at: o.published_at,
                views: o.views,
                format: o.video_format,
                at_7d: o.at_7d,
                at_30d: o.at_30d,
                score: o.score,
            });
        }
    }
    let mut excluded: Vec<i64> = pending_ids;
    excluded.extend(refreshed);
    excluded.sort_unstable();
    excluded.dedup();
    let (baselines, stored) =
        compute_baselines(c, channel_id, now, settings, &overlay, &excluded).await?;
    let moved = everything || stored != baselines;
    score_rows(
        c,
        channel_id,
        (!moved).then_some(saved),
        &baselines,
        now,
        settings,
        &overlay,
        &excluded,
        writes,
    )
    .await?;
    if moved {
        let formats: Vec<&str> = baselines.iter().map(|b| b.format.as_str()).collect();
        let bases: Vec<&str> = baselines.iter().map(|b| b.basis.as_str()).collect();
        let medians: Vec<Option<f64>> = baselines.iter().map(|b| b.median).collect();
        let samples: Vec<i64> = baselines.iter().map(|b| i64::from(b.sample)).collect();
        let delete = c
            .prepare_cached("DELETE FROM channel_baselines WHERE channel_id = $1")
            .await
            .map_err(map_err)?;
        let insert = c
            .prepare_cached(
                "INSERT INTO channel_baselines (channel_id, format, basis, median_views, sample, computed_at)
                 SELECT $1::text, b.format, b.basis, b.median_views, b.sample, $6::bigint
                 FROM unnest($2::text[], $3::text[], $4::float8[], $5::bigint[])
                   AS b(format, basis, median_views, sample)",
            )
            .await
            .map_err(map_err)?;
        // Pipelined: sent together, run in this order.
        futures_util::future::try_join(
            c.execute(&delete, &[&channel_id]),
            c.execute(
                &insert,
                &[
                    &channel_id,
                    &formats,
                    &bases,
                    &medians,
                    &samples,
                    &now.as_millisecond(),
                ],
            ),
        )
        .await
        .map_err(map_err)?;
    } else {
        let touch = c
            .prepare_cached("UPDATE channel_baselines SET computed_at = $2 WHERE channel_id = $1")
            .await
            .map_err(map_err)?;
        c.execute(&touch, &[&channel_id, &now.as_millisecond()])
            .await
            .map_err(map_err)?;
    }
    Ok(())
}
