//! A channel's outlier values, baselines and scores brought up to date after a save, in a
//! few statements whatever the number of videos: the saved videos' values are read and
//! written once for all of them, the baselines' samples are read in one pipelined exchange,
//! and the scores that changed are written by one statement.

use std::collections::{BTreeSet, HashMap};

use deadpool_postgres::GenericClient;
use serde_json::{Map, Value};
use tokio_postgres::Row;

use prismq_domain::outlier::{
    self, AgeBasis, Baseline, ChannelVideo, OutlierScore, OutlierSettings, VideoFormat, VideoValues,
};
use prismq_domain::{PortError, Timestamp};

use super::{format_col, score_cols};
use crate::codec::{get, ts, ts_opt};
use crate::error::{corrupt, map_err};

/// The rows of the videos `$2` of channel `$1`, each video's rows by platform.
const VIDEO_ROWS_SQL: &str =
    "SELECT id, source_id, views, published_at, last_seen_at, extra, duration
     FROM results WHERE channel_id = $1 AND source_id = ANY($2)
     ORDER BY source_id COLLATE \"C\", platform COLLATE \"C\"";

/// The snapshots of each record `$1` with views that can count for 7 days of age (captured
/// within `$2`–`$3`) or 30 (within `$4`–`$5`), the windows of its video.
const VIDEO_SNAPSHOTS_SQL: &str = "SELECT k.id, m.captured_at, m.views
     FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[])
       AS k(id, a7, b7, a30, b30)
     CROSS JOIN LATERAL (
       SELECT captured_at, views FROM result_metrics
       WHERE result_id = k.id AND views IS NOT NULL
         AND (captured_at BETWEEN k.a7 AND k.b7 OR captured_at BETWEEN k.a30 AND k.b30)) m";

/// Stores each record's video values.
const VIDEO_VALUES_SQL: &str = "UPDATE results r SET video_format = u.video_format, views_7d = u.at_7d, views_30d = u.at_30d
     FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[]) AS u(id, video_format, at_7d, at_30d)
     WHERE r.id = u.id";

/// One row of a video, as its values are computed from.
struct VideoRow {
    id: i64,
    views: Option<i64>,
    published_at: Option<Timestamp>,
    last_seen_at: Timestamp,
    format: Option<VideoFormat>,
}

/// Recomputes the clock-free [`VideoValues`] of the `videos` of a channel, each from all
/// its rows and those of their snapshots that can count for 7 or 30 days of age, and
/// stores them on every row of the video: three statements for all of them.
async fn refresh_videos(
    c: &impl GenericClient,
    channel_id: &str,
    videos: &BTreeSet<&str>,
) -> Result<(), PortError> {
    if videos.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = videos.iter().copied().collect();
    let stmt = c.prepare_cached(VIDEO_ROWS_SQL).await.map_err(map_err)?;
    // Each video's rows, by platform, in the order of the names.
    let mut grouped: Vec<Vec<VideoRow>> = Vec::new();
    let mut last: Option<String> = None;
    for r in c
        .query(&stmt, &[&channel_id, &names])
        .await
        .map_err(map_err)?
    {
        let source_id: String = get(&r, 1)?;
        let extra = serde_json::from_value::<Map<String, Value>>(get(&r, 5)?)
            .map_err(|e| corrupt("extra", e))?;
        let row = VideoRow {
            id: get(&r, 0)?,
            views: get(&r, 2)?,
            published_at: ts_opt(get(&r, 3)?)?,
            last_seen_at: ts(get(&r, 4)?)?,
            format: outlier::format_from(&extra, get(&r, 6)?),
        };
        if last.as_deref() != Some(source_id.as_str()) {
            grouped.push(Vec::new());
            last = Some(source_id);
        }
        if let Some(g) = grouped.last_mut() {
            g.push(row);
        }
    }
    // The row each video's values come from: its most viewed (the first by platform on a
    // tie); only the snapshots that can count for 7 or 30 days of age (none without a
    // publication date, when no age counts).
    let best: Vec<&VideoRow> = grouped
        .iter()
        .map(|rows| {
            let mut best = &rows[0];
            for r in &rows[1..] {
                if r.views > best.views {
                    best = r;
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
            for r in rows {
                windows[0].push(r.id);
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
    let mut ids = Vec::new();
    let mut formats: Vec<Option<&str>> = Vec::new();
    let mut at_7d = Vec::new();
    let mut at_30d = Vec::new();
    for (rows, best) in grouped.iter().zip(&best) {
        let mut history = Vec::new();
        for r in rows {
            history.extend(snapshots.remove(&r.id).unwrap_or_default());
        }
        for r in rows {
            if let Some(v) = r.views {
                history.push((r.last_seen_at, v));
            }
        }
        let v = VideoValues::of(&ChannelVideo {
            published_at: best.published_at,
            views: best.views,
            format: best.format.or_else(|| rows.iter().find_map(|r| r.format)),
            history,
        });
        for r in rows {
            ids.push(r.id);
            formats.push(v.format.map(VideoFormat::as_str));
            at_7d.push(v.at_7d);
            at_30d.push(v.at_30d);
        }
    }
    let stmt = c.prepare_cached(VIDEO_VALUES_SQL).await.map_err(map_err)?;
    c.execute(&stmt, &[&ids, &formats, &at_7d, &at_30d])
        .await
        .map_err(map_err)?;
    Ok(())
}

/// The sample query of one basis (as SQLite's `sample_sql`), with a row limit `$4`.
fn sample_sql(basis: AgeBasis) -> &'static str {
    match basis {
        AgeBasis::Age7d => {
            "SELECT source_id, views_7d FROM results
             WHERE channel_id = $1 AND video_format = $2 AND published_at <= $3
               AND views_7d IS NOT NULL
             ORDER BY published_at DESC, source_id COLLATE \"C\" LIMIT $4"
        }
        AgeBasis::Age30d => {
            "SELECT source_id, views_30d FROM results
             WHERE channel_id = $1 AND video_format = $2 AND published_at <= $3
               AND views_30d IS NOT NULL
             ORDER BY published_at DESC, source_id COLLATE \"C\" LIMIT $4"
        }
        AgeBasis::Total => {
            "SELECT source_id, views FROM results
             WHERE channel_id = $1 AND video_format = $2 AND published_at <= $3
               AND views IS NOT NULL
             ORDER BY published_at DESC, source_id COLLATE \"C\", views DESC LIMIT $4"
        }
    }
}

/// The sample of one (format, basis): the first `limit` rows of its query, read again with
/// twice the limit while rows of one video filled it; or the values of `rows`, the query's
/// answer with `limit` already read. `None` asks for the query to be run (again).
fn sample_of(rows: &[Row], limit: i64, window: usize) -> Result<Option<Vec<i64>>, PortError> {
    let mut seen = std::collections::HashSet::new();
    let mut values = Vec::new();
    for r in rows {
        if values.len() == window {
            break;
        }
        if seen.insert(get::<String>(r, 0)?) {
            values.push(get::<i64>(r, 1)?);
        }
    }
    if values.len() == window || (rows.len() as i64) < limit {
        Ok(Some(values))
    } else {
        Ok(None)
    }
}

/// The channel's baselines as of `now`, each from a sample read through an index (the
/// window's worth of rows, read again with twice the limit only when rows of one video
/// filled it), and the baselines stored for it: the formats present, every sample and the
/// stored baselines are asked for at once (a pipeline, one exchange with the server).
async fn compute_baselines(
    c: &impl GenericClient,
    channel_id: &str,
    now: Timestamp,
    settings: &OutlierSettings,
) -> Result<(Vec<Baseline>, Vec<Baseline>), PortError> {
    let present_stmt = c
        .prepare_cached(
            "SELECT f FROM unnest($2::text[]) AS f
             WHERE EXISTS (SELECT 1 FROM results WHERE channel_id = $1 AND video_format = f)",
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
    let present = async { c.query(&present_stmt, &[&channel_id, &formats]).await };
    let stored = async { c.query(&stored_stmt, &[&channel_id]).await };
    let mut sample_queries = Vec::new();
    for (f, b, cut) in &cases {
        let stmt = sample_stmt(*b)?;
        sample_queries.push(async move {
            c.query(stmt, &[&channel_id, &f.as_str(), cut, &limit])
                .await
        });
    }
    let samples = futures_util::future::try_join_all(sample_queries);
    let (present, stored, samples) = futures_util::future::try_join3(present, stored, samples)
        .await
        .map_err(map_err)?;
    let present: Vec<String> = present
        .iter()
        .map(|r| get(r, 0))
        .collect::<Result<_, _>>()?;
    let mut stored = stored
        .iter()
        .map(baseline_from_row)
        .collect::<Result<Vec<_>, PortError>>()?;
    stored.sort_by_key(|b| (b.format, b.basis));
    let mut out = Vec::new();
    for ((format, basis, cut), rows) in cases.iter().zip(samples) {
        if !present.iter().any(|p| p == format.as_str()) {
            continue;
        }
        let mut limit = limit;
        let mut rows = rows;
        let values = loop {
            if let Some(values) = sample_of(&rows, limit, window)? {
                break values;
            }
            limit *= 2;
            rows = c
                .query(
                    sample_stmt(*basis)?,
                    &[&channel_id, &format.as_str(), cut, &limit],
                )
                .await
                .map_err(map_err)?;
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

/// Scores rows of a channel against `baselines` and writes the scores that changed (one
/// statement for all): every row of the channel when `only` is `None`, else the rows of the
/// videos it names.
async fn score_rows(
    c: &impl GenericClient,
    channel_id: &str,
    only: Option<&BTreeSet<&str>>,
    baselines: &[Baseline],
    now: Timestamp,
    settings: &OutlierSettings,
) -> Result<(), PortError> {
    const COLUMNS: &str = "id, source_id, video_format, published_at, views, views_7d, views_30d,
        outlier_score, outlier_basis, outlier_baseline, outlier_sample, outlier_views";
    let rows = match only {
        None => {
            let stmt = c
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM results WHERE channel_id = $1
                     ORDER BY source_id COLLATE \"C\", platform COLLATE \"C\""
                ))
                .await
                .map_err(map_err)?;
            c.query(&stmt, &[&channel_id]).await.map_err(map_err)?
        }
        Some(videos) => {
            let ids: Vec<&str> = videos.iter().copied().collect();
            let stmt = c
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM results WHERE channel_id = $1 AND source_id = ANY($2)
                     ORDER BY source_id COLLATE \"C\", platform COLLATE \"C\""
                ))
                .await
                .map_err(map_err)?;
            c.query(&stmt, &[&channel_id, &ids])
                .await
                .map_err(map_err)?
        }
    };
    let rows: Vec<(i64, String, VideoValues, Option<OutlierScore>)> = rows
        .iter()
        .map(|r| {
            Ok((
                get(r, 0)?,
                get(r, 1)?,
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
    let mut ids = Vec::new();
    let mut scores: Vec<Option<OutlierScore>> = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let mut end = start + 1;
        while end < rows.len() && rows[end].1 == rows[start].1 {
            end += 1;
        }
        let group = &rows[start..end];
        let mut best = &group[0];
        for r in &group[1..] {
            if r.2.views > best.2.views {
                best = r;
            }
        }
        let score = outlier::score_of(&best.2, baselines, now, settings);
        for r in group {
            if r.3 == score {
                continue;
            }
            ids.push(r.0);
            scores.push(score);
        }
        start = end;
    }
    if ids.is_empty() {
        return Ok(());
    }
    let score: Vec<Option<f64>> = scores.iter().map(|s| s.map(|s| s.score)).collect();
    let basis: Vec<Option<&str>> = scores.iter().map(|s| s.map(|s| s.basis.as_str())).collect();
    let baseline: Vec<Option<f64>> = scores.iter().map(|s| s.map(|s| s.baseline)).collect();
    let sample: Vec<Option<i64>> = scores
        .iter()
        .map(|s| s.map(|s| i64::from(s.sample)))
        .collect();
    let views: Vec<Option<i64>> = scores.iter().map(|s| s.map(|s| s.views)).collect();
    let update = c
        .prepare_cached(
            "UPDATE results r SET outlier_score = u.score, outlier_basis = u.basis,
                    outlier_baseline = u.baseline, outlier_sample = u.sample, outlier_views = u.views
             FROM unnest($1::bigint[], $2::float8[], $3::text[], $4::float8[], $5::bigint[], $6::bigint[])
               AS u(id, score, basis, baseline, sample, views)
             WHERE r.id = u.id",
        )
        .await
        .map_err(map_err)?;
    c.execute(&update, &[&ids, &score, &basis, &baseline, &sample, &views])
        .await
        .map_err(map_err)?;
    Ok(())
}

/// Brings a channel's baselines and scores up to date after `saved` videos of it were
/// written ([`ResultStore::save`]'s rule), under a transaction-scoped advisory lock on the
/// channel so two saves of one channel rescore it one after the other. As on SQLite, the
/// cost is bounded by the window and the saved videos unless a baseline moved. Only the
/// saved videos in `refresh` have their values recomputed (the others were saved unchanged
/// in a way that cannot move them, see [`super::save`]); with `everything` every video is
/// refreshed and rescored.
///
/// [`ResultStore::save`]: prismq_domain::ports::ResultStore::save
pub(super) async fn rescore_channel(
    c: &impl GenericClient,
    channel_id: &str,
    saved: &BTreeSet<&str>,
    refresh: &BTreeSet<&str>,
    everything: bool,
    now: i64,
    settings: &OutlierSettings,
) -> Result<(), PortError> {
    let lock = c
        .prepare_cached("SELECT pg_advisory_xact_lock(20561, hashtext($1))")
        .await
        .map_err(map_err)?;
    c.execute(&lock, &[&channel_id]).await.map_err(map_err)?;
    let now = ts(now)?;
    refresh_videos(c, channel_id, refresh).await?;
    let (baselines, stored) = compute_baselines(c, channel_id, now, settings).await?;
    let moved = everything || stored != baselines;
    score_rows(
        c,
        channel_id,
        (!moved).then_some(saved),
        &baselines,
        now,
        settings,
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
