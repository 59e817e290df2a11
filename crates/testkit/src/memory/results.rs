//! `ResultStore` for `MemoryStore`: one record per (platform, source_id) with its metrics
//! history and its sightings.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use prismq_domain::growth::Growth;
use prismq_domain::outlier::{
    self, Baseline, ChannelVideo, OutlierScore, OutlierSettings, VideoFormat, VideoValues,
};
use prismq_domain::ports::{
    ChannelBaseline, MetricSnapshot, OrderValue, RescoreReport, ResultCursor, ResultOrder,
    ResultQuery, ResultStore, StoredResult,
};
use prismq_domain::{ContentItem, Metrics, PortError, SaveReport, Sighting, TaskId, Timestamp};

use super::{passes, MemoryStore, State};

/// One stored item and its history. The ids (of the record, of each snapshot and of each
/// sighting) are those a dump gives them, handed out as the SQL adapters do: in save order,
/// a sighting a task moves keeping its own.
#[derive(Debug, Clone)]
pub(super) struct ResultEntry {
    pub(super) id: i64,
    pub(super) item: ContentItem,
    pub(super) first_seen_at: Timestamp,
    pub(super) last_seen_at: Timestamp,
    pub(super) last_task_id: Option<TaskId>,
    /// Oldest first, each with its id.
    pub(super) history: Vec<(i64, MetricSnapshot)>,
    /// The first views known and when they were (the first save with views), and when the
    /// metrics last changed: kept for a dump, which the SQL adapters store them for.
    pub(super) first_views: Option<i64>,
    pub(super) first_metrics_at: Timestamp,
    pub(super) metrics_at: Timestamp,
    /// Oldest first, each with its id.
    pub(super) sightings: Vec<(i64, Sighting)>,
    pub(super) format: Option<VideoFormat>,
    /// The video's views at 7 and 30 days of age, as of its last save.
    pub(super) at_7d: Option<i64>,
    pub(super) at_30d: Option<i64>,
    pub(super) outlier: Option<OutlierScore>,
    /// Its growth as of its last save (or rescore, or as loaded).
    pub(super) growth: Growth,
}

impl ResultEntry {
    fn stored(&self) -> StoredResult {
        StoredResult {
            item: self.item.clone(),
            first_seen_at: self.first_seen_at,
            last_seen_at: self.last_seen_at,
            last_task_id: self.last_task_id,
            growth: self.growth,
            format: self.format,
            outlier: self.outlier,
        }
    }
}

/// The entry's growth as a save computes it: from its snapshots and its current metrics at
/// `last_seen_at`, with the default minimum span (the memory store has no settings).
fn growth(e: &ResultEntry) -> Growth {
    let mut observations: Vec<(Timestamp, Metrics)> = e
        .history
        .iter()
        .map(|(_, s)| (s.captured_at, s.metrics))
        .collect();
    observations.push((e.last_seen_at, e.item.metrics));
    Growth::of(
        &observations,
        OutlierSettings::default().growth_min_span_secs(),
    )
}

/// Brings `channel_id`'s values, baselines and scores up to date as the port describes:
/// the `saved` videos' values are recomputed (every video's with `everything`), the
/// baselines come from every video's stored values, and the other videos are rescored only
/// when a baseline moved.
fn rescore_channel(
    st: &mut State,
    channel_id: &str,
    saved: &BTreeSet<String>,
    everything: bool,
    now: Timestamp,
    settings: &OutlierSettings,
) {
    // source_id -> the keys of its rows, in source_id order (then by source).
    let mut by_video: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (key, e) in &st.results {
        if e.item.channel_id.as_deref() == Some(channel_id) {
            by_video.entry(key.1.clone()).or_default().push(key.clone());
        }
    }
    // The row with the most views stands for the video (the first on a tie).
    let best = |st: &State, keys: &[(String, String)]| -> (String, String) {
        let mut best = &keys[0];
        for k in &keys[1..] {
            if st.results[k].item.metrics.views > st.results[best].item.metrics.views {
                best = k;
            }
        }
        best.clone()
    };
    for (source_id, keys) in &by_video {
        if !everything && !saved.contains(source_id) {
            continue;
        }
        let rows: Vec<&ResultEntry> = keys.iter().map(|k| &st.results[k]).collect();
        let top = &st.results[&best(st, keys)];
        let mut history = Vec::new();
        for r in &rows {
            history.extend(
                r.history
                    .iter()
                    .filter_map(|(_, s)| s.metrics.views.map(|v| (s.captured_at, v))),
            );
            if let Some(v) = r.item.metrics.views {
                history.push((r.last_seen_at, v));
            }
        }
        let values = VideoValues::of(&ChannelVideo {
            published_at: top.item.published_at,
            views: top.item.metrics.views,
            format: outlier::format_of(&top.item)
                .or_else(|| rows.iter().find_map(|r| outlier::format_of(&r.item))),
            history,
        });
        for k in keys {
            if let Some(e) = st.results.get_mut(k) {
                e.format = values.format;
                e.at_7d = values.at_7d;
                e.at_30d = values.at_30d;
            }
        }
    }
    let values: Vec<(String, VideoValues)> = by_video
        .iter()
        .map(|(source_id, keys)| {
            let top = &st.results[&best(st, keys)];
            (
                source_id.clone(),
                VideoValues {
                    format: top.format,
                    published_at: top.item.published_at,
                    views: top.item.metrics.views,
                    at_7d: top.at_7d,
                    at_30d: top.at_30d,
                },
            )
        })
        .collect();
    let all: Vec<VideoValues> = values.iter().map(|(_, v)| *v).collect();
    let baselines = outlier::baselines_of(&all, now, settings);
    let stored: Vec<Baseline> = st
        .baselines
        .get(channel_id)
        .map(|b| b.iter().map(|c| c.baseline).collect())
        .unwrap_or_default();
    let moved = everything || stored != baselines;
    for (source_id, v) in &values {
        if !moved && !saved.contains(source_id) {
            continue;
        }
        let score = outlier::score_of(v, &baselines, now, settings);
        for k in &by_video[source_id] {
            if let Some(e) = st.results.get_mut(k) {
                e.outlier = score;
            }
        }
    }
    st.baselines.insert(
        channel_id.to_owned(),
        baselines
            .into_iter()
            .map(|baseline| ChannelBaseline {
                channel_id: channel_id.to_owned(),
                baseline,
                computed_at: now,
            })
            .collect(),
    );
}

fn not_found(platform: &str, source_id: &str) -> PortError {
    PortError::NotFound(format!("result {platform}/{source_id}"))
}

/// Records a sighting of an entry: a task's earlier sighting of it is updated (moved to the
/// end, keeping its id), any other sighting is added with the next id after `last_id`.
fn sight(
    e: &mut ResultEntry,
    item: &ContentItem,
    task: Option<TaskId>,
    now: Timestamp,
    last_id: &mut i64,
) {
    let sighting = Sighting {
        source: item.source.clone(),
        task_id: task,
        rank: item.rank,
        seen_at: now,
    };
    let earlier = task
        .and_then(|_| e.sightings.iter().position(|(_, s)| s.task_id == task))
        .map(|i| e.sightings.remove(i).0);
    let id = earlier.unwrap_or_else(|| {
        *last_id += 1;
        *last_id
    });
    e.sightings.push((id, sighting));
}

/// Descending by an optional key, absent values last.
fn desc_some_first<T: PartialOrd>(a: Option<T>, b: Option<T>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => y.partial_cmp(&x).unwrap_or(Ordering::Equal),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Whether `r` comes after the cursor in the query's order (its value descending, absent
/// values last, then (platform, source_id)).
fn after(q: &ResultQuery, r: &StoredResult, c: &ResultCursor) -> bool {
    let f = |v: OrderValue| match v {
        OrderValue::Int(n) => n as f64,
        OrderValue::Real(x) => x,
    };
    let key = (r.item.platform.as_str(), r.item.source_id.as_str());
    let ckey = (c.platform.as_str(), c.source_id.as_str());
    match (q.value_of(r).map(f), c.value.map(f)) {
        (Some(v), Some(cv)) if v != cv => v < cv,
        (Some(_), None) => false,
        (None, Some(_)) => true,
        _ => key > ckey,
    }
}

#[async_trait]
impl ResultStore for MemoryStore {
    async fn save(
        &self,
        task: Option<TaskId>,
        items: &[ContentItem],
    ) -> Result<SaveReport, PortError> {
        for (i, item) in items.iter().enumerate() {
            item.validate()
                .map_err(|e| e.within(&format!("items[{i}]")))?;
        }
        let now = self.now();
        let mut guard = self.state();
        let st = &mut *guard;
        let mut report = SaveReport::default();
        for item in items {
            let key = (item.platform.clone(), item.source_id.clone());
            let snapshot = MetricSnapshot {
                captured_at: now,
                metrics: item.metrics,
            };
            match st.results.get_mut(&key) {
                None => {
                    st.last_result_id += 1;
                    st.last_metric_id += 1;
                    let mut e = ResultEntry {
                        id: st.last_result_id,
                        item: item.clone(),
                        first_seen_at: now,
                        last_seen_at: now,
                        last_task_id: task,
                        history: vec![(st.last_metric_id, snapshot)],
                        first_views: item.metrics.views,
                        first_metrics_at: now,
                        metrics_at: now,
                        sightings: Vec::new(),
                        format: outlier::format_of(item),
                        at_7d: None,
                        at_30d: None,
                        outlier: None,
                        growth: Growth::default(),
                    };
                    sight(&mut e, item, task, now, &mut st.last_sighting_id);
                    e.growth = growth(&e);
                    st.results.insert(key, e);
                    report.inserted += 1;
                }
                Some(e) => {
                    let merged = item.merged_over(&e.item);
                    if e.item.metrics != merged.metrics {
                        st.last_metric_id += 1;
                        e.history.push((
                            st.last_metric_id,
                            MetricSnapshot {
                                captured_at: now,
                                metrics: merged.metrics,
                            },
                        ));
                        e.metrics_at = now;
                        if e.first_views.is_none() && merged.metrics.views.is_some() {
                            e.first_metrics_at = now;
                        }
                        e.first_views = e.first_views.or(merged.metrics.views);
                    }
                    if e.item == merged {
                        report.unchanged += 1;
                    } else {
                        report.updated += 1;
                        e.format = outlier::format_of(&merged);
                        e.item = merged;
                    }
                    e.last_seen_at = now;
                    e.last_task_id = task.or(e.last_task_id);
                    sight(e, item, task, now, &mut st.last_sighting_id);
                    e.growth = growth(e);
                }
            }
        }
        let mut channels: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for item in items {
            if let Some(c) = item.channel_id.as_deref() {
                channels
                    .entry(c)
                    .or_default()
                    .insert(item.source_id.clone());
            }
        }
        let settings = OutlierSettings::default();
        for (channel, saved) in channels {
            rescore_channel(st, channel, &saved, false, now, &settings);
        }
        Ok(report)
    }

    async fn get(&self, platform: &str, source_id: &str) -> Result<StoredResult, PortError> {
        self.state()
            .results
            .get(&(platform.to_owned(), source_id.to_owned()))
            .map(ResultEntry::stored)
            .ok_or_else(|| not_found(platform, source_id))
    }

    async fn find(&self, source_id: &str) -> Result<Vec<StoredResult>, PortError> {
        // The map is ordered by (platform, source_id), so the matches come out by platform.
        Ok(self
            .state()
            .results
            .iter()
            .filter(|((_, id), _)| id == source_id)
            .map(|(_, e)| e.stored())
            .collect())
    }

    async fn history(
        &self,
        platform: &str,
        source_id: &str,
    ) -> Result<Vec<MetricSnapshot>, PortError> {
        self.state()
            .results
            .get(&(platform.to_owned(), source_id.to_owned()))
            .map(|e| e.history.iter().map(|(_, s)| *s).collect())
            .ok_or_else(|| not_found(platform, source_id))
    }

    async fn sightings(
        &self,
        platform: &str,
        source_id: &str,
        limit: u32,
    ) -> Result<Vec<Sighting>, PortError> {
        prismq_domain::ports::check_page_limit(limit)?;
        self.state()
            .results
            .get(&(platform.to_owned(), source_id.to_owned()))
            .map(|e| {
                e.sightings
                    .iter()
                    .rev()
                    .take(limit as usize)
                    .map(|(_, s)| s.clone())
                    .collect()
            })
            .ok_or_else(|| not_found(platform, source_id))
    }

    async fn query(&self, query: &ResultQuery) -> Result<Vec<StoredResult>, PortError> {
        query.validate()?;
        let st = self.state();
        // The map iterates in (source, source_id) order and the sort is stable, so ties
        // keep that order.
        let mut rows: Vec<StoredResult> = st
            .results
            .values()
            .filter(|e| {
                passes(query.source.as_ref(), |s| {
                    e.sightings.iter().any(|(_, x)| &x.source == s)
                })
            })
            .filter(|e| passes(query.since, |s| e.last_seen_at >= s))
            .filter(|e| passes(query.new_since, |s| e.first_seen_at >= s))
            .filter(|e| {
                passes(query.channel_id.as_ref(), |c| {
                    e.item.channel_id.as_ref() == Some(c)
                })
            })
            .filter(|e| {
                passes(query.task, |t| {
                    e.sightings.iter().any(|(_, x)| x.task_id == Some(t))
                })
            })
            .filter(|e| passes(query.format, |f| e.format == Some(f)))
            .filter(|e| {
                passes(query.min_score, |lo| {
                    e.outlier.is_some_and(|o| o.score >= lo)
                })
            })
            .filter(|e| {
                passes(query.max_score, |hi| {
                    e.outlier.is_some_and(|o| o.score <= hi)
                })
            })
            .map(ResultEntry::stored)
            .collect();
        match query.order {
            ResultOrder::Views => {
                rows.sort_by(|a, b| desc_some_first(a.item.metrics.views, b.item.metrics.views));
            }
            ResultOrder::Recent => {
                rows.sort_by(|a, b| desc_some_first(a.item.published_at, b.item.published_at));
            }
            ResultOrder::Growth => {
                let w = query.window;
                rows.sort_by(|a, b| {
                    desc_some_first(
                        a.growth.get(w).map(|r| r.views_per_hour),
                        b.growth.get(w).map(|r| r.views_per_hour),
                    )
                });
            }
            ResultOrder::Outlier => {
                rows.sort_by(|a, b| {
                    desc_some_first(a.outlier.map(|o| o.score), b.outlier.map(|o| o.score))
                });
            }
        }
        Ok(rows
            .into_iter()
            .filter(|r| query.after.as_ref().is_none_or(|c| after(query, r, c)))
            .take(query.limit as usize)
            .collect())
    }

    async fn baselines(&self, channel_id: &str) -> Result<Vec<ChannelBaseline>, PortError> {
        Ok(self
            .state()
            .baselines
            .get(channel_id)
            .cloned()
            .unwrap_or_default())
    }

    async fn rescore(&self, channel_id: Option<String>) -> Result<RescoreReport, PortError> {
        let now = self.now();
        let mut st = self.state();
        let rescoring_all = channel_id.is_none();
        let channels: BTreeSet<String> = match channel_id {
            Some(c) => BTreeSet::from([c]),
            None => st
                .results
                .values()
                .filter_map(|e| e.item.channel_id.clone())
                .collect(),
        };
        let mut report = RescoreReport::default();
        for channel in channels {
            let videos: BTreeSet<String> = st
                .results
                .iter()
                .filter(|(_, e)| e.item.channel_id.as_deref() == Some(channel.as_str()))
                .map(|((_, id), _)| id.clone())
                .collect();
            if videos.is_empty() {
                continue;
            }
            rescore_channel(
                &mut st,
                &channel,
                &videos,
                true,
                now,
                &OutlierSettings::default(),
            );
            report.channels += 1;
            report.videos += videos.len() as u64;
        }
        if rescoring_all {
            // Growth from each record's history, as its last save computed it (a loaded
            // record's stored growth included).
            for e in st.results.values_mut() {
                e.growth = growth(e);
            }
            report.growth = st.results.len() as u64;
        }
        Ok(report)
    }

    async fn count(&self, platform: Option<String>) -> Result<u64, PortError> {
        let st = self.state();
        Ok(st
            .results
            .values()
            .filter(|e| passes(platform.as_ref(), |p| &e.item.platform == p))
            .count() as u64)
    }
}
