//! The result store: batch upserts deduplicated on (source, source_id), metric history
//! written only on change, and ranked queries. Text ties sort bytewise (`COLLATE "C"`), as
//! on SQLite, whatever the database's collation.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use serde_json::{Map, Value};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

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

use crate::codec::{get, ts, ts_opt};
use crate::error::{corrupt, map_err};
use crate::{in_tx, PostgresStore};

const RESULT_COLUMNS: &str = "id, platform, source_id, title, description, url, tags, channel, channel_id, published_at, duration, \
     views, likes, comments, extra, first_seen_at, last_seen_at, last_task_id, first_views, first_metrics_at, metrics_at, \
     video_format, outlier_score, outlier_basis, outlier_baseline, outlier_sample, outlier_views, \
     growth_1h, growth_1h_span, growth_24h, growth_24h_span, growth_7d, growth_7d_span, growth_30d, growth_30d_span, last_source, last_rank";

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

/// Records that `task` (or a save outside a task) found the record `result_id` now: a
/// task's earlier sighting of it is moved, any other is added.
async fn sight(
    c: &impl GenericClient,
    result_id: i64,
    item: &ContentItem,
    task: Option<i64>,
    now: i64,
) -> Result<(), PortError> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO result_sightings (result_id, source, task_id, rank, seen_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (task_id, result_id) WHERE task_id IS NOT NULL
             DO UPDATE SET source = excluded.source, rank = excluded.rank, seen_at = excluded.seen_at",
        )
        .await
        .map_err(map_err)?;
    c.execute(
        &stmt,
        &[
            &result_id,
            &item.source,
            &task,
            &item.rank.map(i64::from),
            &now,
        ],
    )
    .await
    .map_err(map_err)?;
    Ok(())
}

/// Saves one item; returns whether its video's outlier values may have changed (false only
/// for an item saved unchanged whose previous and new `last_seen_at` both lie outside the
/// 7- and 30-day tolerances of [`outlier::observation_counts`], on a row that has a format),
/// as on SQLite.
async fn save_one(
    c: &impl GenericClient,
    task: Option<i64>,
    item: &ContentItem,
    now: i64,
    min_span_secs: i64,
    report: &mut SaveReport,
) -> Result<bool, PortError> {
    let tags = serde_json::to_value(&item.tags).map_err(|e| corrupt("tags", e))?;
    let extra = Value::Object(item.extra.clone());
    let published = item.published_at.map(|t| t.as_millisecond());
    let format = outlier::format_of(item).map(VideoFormat::as_str);
    let m = &item.metrics;
    let insert = c
        .prepare_cached(
            "INSERT INTO results (platform, source_id, title, description, url, tags, channel, channel_id, published_at, duration,
               views, likes, comments, extra, first_seen_at, last_seen_at, last_task_id, first_views, first_metrics_at, metrics_at, video_format,
               last_source, last_rank)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, $16, $11, $15, $15, $17, $18, $19)
             ON CONFLICT (platform, source_id) DO NOTHING RETURNING id",
        )
        .await
        .map_err(map_err)?;
    let inserted = c
        .query_opt(
            &insert,
            &[
                &item.platform,
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
                &format,
                &item.source,
                &item.rank.map(i64::from),
            ],
        )
        .await
        .map_err(map_err)?;
    if let Some(row) = inserted {
        let id = get(&row, 0)?;
        snapshot(c, id, now, m).await?;
        sight(c, id, item, task, now).await?;
        report.inserted += 1;
        return Ok(true);
    }
    let select = c
        .prepare_cached(&format!(
            "SELECT {RESULT_COLUMNS} FROM results WHERE platform = $1 AND source_id = $2 FOR UPDATE"
        ))
        .await
        .map_err(map_err)?;
    let row = c
        .query_one(&select, &[&item.platform, &item.source_id])
        .await
        .map_err(map_err)?;
    let (id, stored) = stored_from_row(&row)?;
    sight(c, id, item, task, now).await?;
    let merged = item.merged_over(&stored.item);
    let item = &merged;
    let tags = serde_json::to_value(&item.tags).map_err(|e| corrupt("tags", e))?;
    let extra = Value::Object(item.extra.clone());
    let published = item.published_at.map(|t| t.as_millisecond());
    let format = outlier::format_of(item).map(VideoFormat::as_str);
    let m = &item.metrics;
    let metrics_changed = stored.item.metrics != item.metrics;
    if stored.item == *item {
        // A row of a channel keeps its video's format (written by `refresh_video`).
        let unchanged = c
            .prepare_cached(
                "UPDATE results SET last_seen_at = $2, last_task_id = COALESCE($3, last_task_id),
                   video_format = CASE WHEN channel_id IS NULL OR video_format IS NULL THEN $4 ELSE video_format END
                 WHERE id = $1",
            )
            .await
            .map_err(map_err)?;
        c.execute(&unchanged, &[&id, &now, &task, &format])
            .await
            .map_err(map_err)?;
        if !stored.growth.is_settled() {
            refresh_growth(
                c,
                id,
                Some((now, item.metrics)),
                Some(stored.growth),
                min_span_secs,
            )
            .await?;
        }
        report.unchanged += 1;
        let now = ts(now)?;
        let moved = item.published_at.is_some_and(|p| {
            outlier::observation_counts(p, stored.last_seen_at)
                || outlier::observation_counts(p, now)
        });
        return Ok(stored.format.is_none() || moved);
    }
    let update = c
        .prepare_cached(
            "UPDATE results SET title = $2, description = $3, url = $4, tags = $5, channel = $6, channel_id = $7, published_at = $8,
               duration = $9, views = $10, likes = $11, comments = $12, extra = $13, last_seen_at = $14,
               last_task_id = COALESCE($15, last_task_id),
               metrics_at = CASE WHEN $16 THEN $14 ELSE metrics_at END,
               first_metrics_at = CASE WHEN first_views IS NULL AND $10::bigint IS NOT NULL THEN $14 ELSE first_metrics_at END,
               first_views = COALESCE(first_views, $10), video_format = $17, last_source = $18, last_rank = $19
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
            &format,
            &item.source,
            &item.rank.map(i64::from),
        ],
    )
    .await
    .map_err(map_err)?;
    if metrics_changed {
        snapshot(c, id, now, m).await?;
    }
    refresh_growth(
        c,
        id,
        Some((now, item.metrics)),
        Some(stored.growth),
        min_span_secs,
    )
    .await?;
    report.updated += 1;
    Ok(true)
}

/// Recomputes the clock-free [`VideoValues`] of one video of a channel from all its rows
/// and those of their snapshots that can count for 7 or 30 days of age, and stores them on
/// every row of the video.
async fn refresh_video(
    c: &impl GenericClient,
    channel_id: &str,
    source_id: &str,
) -> Result<(), PortError> {
    struct VideoRow {
        id: i64,
        views: Option<i64>,
        published_at: Option<Timestamp>,
        last_seen_at: Timestamp,
        format: Option<VideoFormat>,
    }
    let select = c
        .prepare_cached(
            "SELECT id, views, published_at, last_seen_at, extra, duration
             FROM results WHERE channel_id = $1 AND source_id = $2 ORDER BY platform COLLATE \"C\"",
        )
        .await
        .map_err(map_err)?;
    let rows: Vec<VideoRow> = c
        .query(&select, &[&channel_id, &source_id])
        .await
        .map_err(map_err)?
        .iter()
        .map(|r| {
            let extra = serde_json::from_value::<Map<String, Value>>(get(r, 4)?)
                .map_err(|e| corrupt("extra", e))?;
            Ok(VideoRow {
                id: get(r, 0)?,
                views: get(r, 1)?,
                published_at: ts_opt(get(r, 2)?)?,
                last_seen_at: ts(get(r, 3)?)?,
                format: outlier::format_from(&extra, get(r, 5)?),
            })
        })
        .collect::<Result<_, PortError>>()?;
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let mut best = first;
    for r in &rows[1..] {
        if r.views > best.views {
            best = r;
        }
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut history = Vec::new();
    // Only the snapshots that can count for 7 or 30 days of age (none without a
    // publication date, when no age counts).
    if let Some(published) = best.published_at {
        let (a7, b7) = outlier::age_window_ms(published, 7);
        let (a30, b30) = outlier::age_window_ms(published, 30);
        let snaps = c
            .prepare_cached(
                "SELECT captured_at, views FROM result_metrics
                 WHERE result_id = ANY($1) AND views IS NOT NULL
                   AND (captured_at BETWEEN $2 AND $3 OR captured_at BETWEEN $4 AND $5)",
            )
            .await
            .map_err(map_err)?;
        for r in c
            .query(&snaps, &[&ids, &a7, &b7, &a30, &b30])
            .await
            .map_err(map_err)?
        {
            history.push((ts(get(&r, 0)?)?, get::<i64>(&r, 1)?));
        }
    }
    for r in &rows {
        if let Some(v) = r.views {
            history.push((r.last_seen_at, v));
        }
    }
    let values = VideoValues::of(&ChannelVideo {
        published_at: best.published_at,
        views: best.views,
        format: best.format.or_else(|| rows.iter().find_map(|r| r.format)),
        history,
    });
    c.execute(
        "UPDATE results SET video_format = $2, views_7d = $3, views_30d = $4 WHERE id = ANY($1)",
        &[
            &ids,
            &values.format.map(VideoFormat::as_str),
            &values.at_7d,
            &values.at_30d,
        ],
    )
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

/// The channel's baselines as of `now`, each from a sample read through an index: the
/// window's worth of rows, read again with twice the limit only when rows of one video
/// filled it.
async fn compute_baselines(
    c: &impl GenericClient,
    channel_id: &str,
    now: Timestamp,
    settings: &OutlierSettings,
) -> Result<Vec<Baseline>, PortError> {
    let present = c
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM results WHERE channel_id = $1 AND video_format = $2)",
        )
        .await
        .map_err(map_err)?;
    let mut out = Vec::new();
    for format in VideoFormat::ALL {
        let row = c
            .query_one(&present, &[&channel_id, &format.as_str()])
            .await
            .map_err(map_err)?;
        if !get::<bool>(&row, 0)? {
            continue;
        }
        for basis in AgeBasis::ALL {
            let cutoff = match basis {
                AgeBasis::Total => outlier::total_cutoff(now, settings.baseline_min_age_days),
                _ => now,
            };
            let stmt = c.prepare_cached(sample_sql(basis)).await.map_err(map_err)?;
            let window = settings.window as usize;
            let mut limit = i64::from(settings.window);
            let values = loop {
                let rows = c
                    .query(
                        &stmt,
                        &[
                            &channel_id,
                            &format.as_str(),
                            &cutoff.as_millisecond(),
                            &limit,
                        ],
                    )
                    .await
                    .map_err(map_err)?;
                let mut seen = std::collections::HashSet::new();
                let mut values = Vec::new();
                for r in &rows {
                    if values.len() == window {
                        break;
                    }
                    if seen.insert(get::<String>(r, 0)?) {
                        values.push(get::<i64>(r, 1)?);
                    }
                }
                if values.len() == window || (rows.len() as i64) < limit {
                    break values;
                }
                limit *= 2;
            };
            out.push(Baseline::from_sample(format, basis, values, settings));
        }
    }
    Ok(out)
}

/// The baselines stored for a channel, by format then basis.
async fn stored_baselines(
    c: &impl GenericClient,
    channel_id: &str,
) -> Result<Vec<Baseline>, PortError> {
    let rows = c
        .query(
            "SELECT format, basis, median_views, sample FROM channel_baselines WHERE channel_id = $1",
            &[&channel_id],
        )
        .await
        .map_err(map_err)?;
    let mut out = rows
        .iter()
        .map(baseline_from_row)
        .collect::<Result<Vec<_>, PortError>>()?;
    out.sort_by_key(|b| (b.format, b.basis));
    Ok(out)
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

/// Scores rows of a channel against `baselines` and writes the scores that changed: every
/// row of the channel when `only` is `None`, else the rows of the videos it names.
async fn score_rows(
    c: &impl GenericClient,
    channel_id: &str,
    only: Option<&std::collections::BTreeSet<&str>>,
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
    let update = c
        .prepare_cached(
            "UPDATE results SET outlier_score = $2, outlier_basis = $3,
                    outlier_baseline = $4, outlier_sample = $5, outlier_views = $6 WHERE id = $1",
        )
        .await
        .map_err(map_err)?;
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
            c.execute(
                &update,
                &[
                    &r.0,
                    &score.map(|s| s.score),
                    &score.map(|s| s.basis.as_str()),
                    &score.map(|s| s.baseline),
                    &score.map(|s| i64::from(s.sample)),
                    &score.map(|s| s.views),
                ],
            )
            .await
            .map_err(map_err)?;
        }
        start = end;
    }
    Ok(())
}

/// Brings a channel's baselines and scores up to date after `saved` videos of it were
/// written ([`ResultStore::save`]'s rule), under a transaction-scoped advisory lock on the
/// channel so two saves of one channel rescore it one after the other. As on SQLite, the
/// cost is bounded by the window and the saved videos unless a baseline moved. Only the
/// saved videos in `refresh` have their values recomputed (the others were saved unchanged
/// in a way that cannot move them, see [`save_one`]); with `everything` every video is
/// refreshed and rescored.
async fn rescore_channel(
    c: &impl GenericClient,
    channel_id: &str,
    saved: &std::collections::BTreeSet<&str>,
    refresh: &std::collections::BTreeSet<&str>,
    everything: bool,
    now: i64,
    settings: &OutlierSettings,
) -> Result<(), PortError> {
    c.execute(
        "SELECT pg_advisory_xact_lock(20561, hashtext($1))",
        &[&channel_id],
    )
    .await
    .map_err(map_err)?;
    let now = ts(now)?;
    for source_id in refresh {
        refresh_video(c, channel_id, source_id).await?;
    }
    let baselines = compute_baselines(c, channel_id, now, settings).await?;
    let moved = everything || stored_baselines(c, channel_id).await? != baselines;
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
        c.execute(
            "DELETE FROM channel_baselines WHERE channel_id = $1",
            &[&channel_id],
        )
        .await
        .map_err(map_err)?;
        let insert = c
            .prepare_cached(
                "INSERT INTO channel_baselines (channel_id, format, basis, median_views, sample, computed_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .await
            .map_err(map_err)?;
        for b in &baselines {
            c.execute(
                &insert,
                &[
                    &channel_id,
                    &b.format.as_str(),
                    &b.basis.as_str(),
                    &b.median,
                    &i64::from(b.sample),
                    &now.as_millisecond(),
                ],
            )
            .await
            .map_err(map_err)?;
        }
    } else {
        c.execute(
            "UPDATE channel_baselines SET computed_at = $2 WHERE channel_id = $1",
            &[&channel_id, &now.as_millisecond()],
        )
        .await
        .map_err(map_err)?;
    }
    Ok(())
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
            for item in items {
                if save_one(&tx, task, item, now, min_span, &mut report).await? {
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
                rescore_channel(&tx, channel, saved, &refresh, false, now, &settings).await?;
            }
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
                rescore_channel(&tx, &channel, &saved, &saved, true, now, &settings).await
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
