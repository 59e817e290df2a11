//! The result store port: one record per item (platform, source_id) however many sources
//! find it, with its metric history for ranking by growth and its sightings.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::content::{ContentItem, Metrics, SaveReport, Sighting};
use crate::error::{PortError, ValidationError};
use crate::growth::{Growth, GrowthWindow};
use crate::outlier::{Baseline, OutlierScore, VideoFormat};
use crate::task::TaskId;
use crate::Timestamp;

/// A stored item with its bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResult {
    /// The record: every sighting merged in order ([`ContentItem::merged_over`]); its
    /// `source` and `rank` are the latest sighting's.
    pub item: ContentItem,
    /// When (platform, source_id) was first saved.
    pub first_seen_at: Timestamp,
    /// When it was last saved (changed or not).
    pub last_seen_at: Timestamp,
    /// The task that last saved it.
    pub last_task_id: Option<TaskId>,
    /// Views gained per hour over each window ending at the latest observation
    /// ([`crate::growth`]), with the span the history covers; a window is absent when the
    /// history spans less than the configured minimum of it.
    #[serde(default)]
    pub growth: Growth,
    /// The item's format ([`crate::outlier::format_of`]); absent when unknown.
    #[serde(default)]
    pub format: Option<VideoFormat>,
    /// How far it beats its channel's baseline, as of the last save of the channel's
    /// results; absent when it cannot be scored (never 0 for unknown).
    #[serde(default)]
    pub outlier: Option<OutlierScore>,
}

/// A channel's stored baseline for one format and basis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelBaseline {
    /// The channel id.
    pub channel_id: String,
    /// The format, basis, median and sample.
    #[serde(flatten)]
    pub baseline: Baseline,
    /// When it was computed (the save that last touched the channel).
    pub computed_at: Timestamp,
}

/// One metrics history row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricSnapshot {
    /// When the metrics were captured.
    pub captured_at: Timestamp,
    /// The counters.
    pub metrics: Metrics,
}

/// How to order a result query.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultOrder {
    /// Most views first.
    #[default]
    Views,
    /// Most recently published first.
    Recent,
    /// Fastest growing (views per hour over [`ResultQuery::window`]) first.
    Growth,
    /// Highest outlier score first (an index on the stored score serves it).
    Outlier,
}

/// A query over stored results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultQuery {
    /// Only items a sighting of this source kind found.
    pub source: Option<String>,
    /// Only items last seen at or after this instant.
    pub since: Option<Timestamp>,
    /// Only items first seen at or after this instant.
    #[serde(default)]
    pub new_since: Option<Timestamp>,
    /// Only items of this channel.
    #[serde(default)]
    pub channel_id: Option<String>,
    /// Only items this task found (one of their sightings is the task's).
    #[serde(default)]
    pub task: Option<TaskId>,
    /// The window `Growth` orders by.
    #[serde(default = "default_window")]
    pub window: GrowthWindow,
    /// Only items with an outlier score of at least this.
    #[serde(default)]
    pub min_score: Option<f64>,
    /// Only items with an outlier score of at most this.
    #[serde(default)]
    pub max_score: Option<f64>,
    /// Only items of this format.
    #[serde(default)]
    pub format: Option<VideoFormat>,
    /// Order.
    pub order: ResultOrder,
    /// Only items after this one in the order: the previous page's
    /// [`ResultQuery::cursor_after`] (keyset paging; a page never skips rows by counting).
    #[serde(default)]
    pub after: Option<ResultCursor>,
    /// At most this many (1–10,000).
    pub limit: u32,
}

/// An item's value in a [`ResultOrder`]: views and publish times are integers, growth and
/// scores real numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OrderValue {
    /// Views, or a publish time in milliseconds since the epoch.
    Int(i64),
    /// Views per hour, or an outlier score.
    Real(f64),
}

/// Where a page of a [`ResultQuery`] ended: the last item's value in the order (absent for
/// an item without one, which sort last) and its identity, the order's tie-break.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultCursor {
    /// The ordering value.
    pub value: Option<OrderValue>,
    /// The platform.
    pub platform: String,
    /// The id on it.
    pub source_id: String,
}

fn default_window() -> GrowthWindow {
    GrowthWindow::Day
}

impl Default for ResultQuery {
    fn default() -> Self {
        ResultQuery {
            source: None,
            since: None,
            new_since: None,
            channel_id: None,
            task: None,
            window: GrowthWindow::Day,
            min_score: None,
            max_score: None,
            format: None,
            order: ResultOrder::Views,
            after: None,
            limit: 50,
        }
    }
}

impl ResultQuery {
    /// An item's value in this query's order, as [`ResultCursor::value`] holds it.
    pub fn value_of(&self, r: &StoredResult) -> Option<OrderValue> {
        match self.order {
            ResultOrder::Views => r.item.metrics.views.map(OrderValue::Int),
            ResultOrder::Recent => r
                .item
                .published_at
                .map(|t| OrderValue::Int(t.as_millisecond())),
            ResultOrder::Growth => r
                .growth
                .get(self.window)
                .map(|g| OrderValue::Real(g.views_per_hour)),
            ResultOrder::Outlier => r.outlier.map(|o| OrderValue::Real(o.score)),
        }
    }

    /// The cursor of the page that ends at `last`: pass it as the next query's `after`.
    pub fn cursor_after(&self, last: &StoredResult) -> ResultCursor {
        ResultCursor {
            value: self.value_of(last),
            platform: last.item.platform.clone(),
            source_id: last.item.source_id.clone(),
        }
    }

    /// Checks the limit (1–10,000), the score bounds (finite numbers, the minimum not
    /// above the maximum) and the cursor (a value of the order's kind: an integer for views
    /// and recent, a finite number for growth and outlier).
    ///
    /// # Errors
    /// The first problem, naming `limit`, `min_score`, `max_score` or `after`.
    pub fn validate(&self) -> Result<(), ValidationError> {
        super::check_page_limit(self.limit)?;
        if let Some(c) = &self.after {
            let fits = match (self.order, c.value) {
                (_, None) => true,
                (ResultOrder::Views | ResultOrder::Recent, Some(OrderValue::Int(_))) => true,
                (ResultOrder::Growth | ResultOrder::Outlier, Some(OrderValue::Real(x))) => {
                    x.is_finite()
                }
                (ResultOrder::Growth | ResultOrder::Outlier, Some(OrderValue::Int(_))) => true,
                _ => false,
            };
            if !fits {
                return Err(ValidationError::new(
                    "after",
                    "the cursor's value does not fit the order",
                    "the cursor the previous page of the same order gave",
                ));
            }
        }
        for (field, v) in [("min_score", self.min_score), ("max_score", self.max_score)] {
            if v.is_some_and(|x| !x.is_finite()) {
                return Err(ValidationError::new(
                    field,
                    "not a finite number",
                    "a number such as 0.5 or 2 (a score of 2 is three times the channel's median)",
                ));
            }
        }
        if let (Some(lo), Some(hi)) = (self.min_score, self.max_score) {
            if lo > hi {
                return Err(ValidationError::new(
                    "max_score",
                    format!("{hi} is below min_score {lo}"),
                    "a maximum at least as large as the minimum",
                ));
            }
        }
        Ok(())
    }
}

/// Where plugins' items are kept.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait ResultStore: Send + Sync {
    /// Saves a batch atomically and counts what happened.
    ///
    /// An implementation MUST: validate every item first (`Invalid` naming `items[i].field`,
    /// nothing written); insert an unseen (platform, source_id) and record its first metrics
    /// snapshot (`inserted`); for a seen one, store the item [`ContentItem::merged_over`] the
    /// stored record, move `last_seen_at` and `last_task_id`, and count it `updated` if the
    /// merged record differs from the stored one (writing a metrics snapshot only if a metric
    /// changed) or `unchanged` otherwise; keep one record per (platform, source_id) whichever
    /// source finds it, even when two callers save the same item at once. An item repeated
    /// within one batch is saved once per occurrence, in order. Each saved item records a
    /// sighting (its source, the task, its rank, now); a task that saves the same record
    /// again updates its one sighting of it instead of adding another. Every saved item's
    /// [`StoredResult::growth`] is recomputed, as [`Growth::of`] its metric snapshots plus
    /// its current metrics at `last_seen_at`, with the configured minimum span.
    ///
    /// In the same transaction it MUST bring outlier scores up to date for every channel id
    /// in the batch, as of the save's "now". A channel's videos are its stored items
    /// (ordered by `source_id`; a video's format is [`crate::outlier::format_from`] its
    /// record; its metric snapshots and its current views at its `last_seen_at` are its
    /// history). The saved videos' [`crate::outlier::VideoValues`] are recomputed; the
    /// channel's baselines are [`crate::outlier::baselines_of`] every video's stored values;
    /// the saved videos are scored with [`crate::outlier::score_of`]; and when a baseline
    /// differs from the stored one, every video of the channel is rescored and the baselines
    /// are replaced. Every row of a video gets that video's format and score. The work MUST be
    /// bounded by the window and the saved videos unless a baseline moved: a video not saved
    /// keeps the score it had until its channel's baseline moves or [`Self::rescore`] runs.
    async fn save(
        &self,
        task: Option<TaskId>,
        items: &[ContentItem],
    ) -> Result<SaveReport, PortError>;

    /// The stored record. MUST fail with `NotFound` when there is none.
    async fn get(&self, platform: &str, source_id: &str) -> Result<StoredResult, PortError>;

    /// The record with this id on every platform that has it, ordered by platform; empty
    /// when none has it. MUST NOT read every stored item: one probe of the (platform,
    /// source_id) key per distinct platform is enough, and there are a handful of them.
    async fn find(&self, source_id: &str) -> Result<Vec<StoredResult>, PortError>;

    /// The record's metrics history, oldest first. MUST fail with `NotFound` for an unknown
    /// record.
    async fn history(
        &self,
        platform: &str,
        source_id: &str,
    ) -> Result<Vec<MetricSnapshot>, PortError>;

    /// The record's sightings, newest first (ties by the order they were recorded, newest
    /// first), at most `limit` (1–10,000, else `Invalid`). MUST fail with `NotFound` for an
    /// unknown record.
    async fn sightings(
        &self,
        platform: &str,
        source_id: &str,
        limit: u32,
    ) -> Result<Vec<Sighting>, PortError>;

    /// Items matching `query` in its order, ties broken by (platform, source_id), starting
    /// after `query.after` when given. MUST NOT read the items before the cursor: a page
    /// costs the same at the millionth item as at the first. MUST refuse
    /// what [`ResultQuery::validate`] refuses with `Invalid`. Items without the ordering
    /// value (no views, no publish date, no score, no growth in the window) come last. A score bound leaves out
    /// items without a score; a format keeps only items of that format.
    async fn query(&self, query: &ResultQuery) -> Result<Vec<StoredResult>, PortError>;

    /// The channel's stored baselines, by format then basis; empty for a channel without
    /// any.
    async fn baselines(&self, channel_id: &str) -> Result<Vec<ChannelBaseline>, PortError>;

    /// How many records are stored, on one platform or all.
    async fn count(&self, platform: Option<String>) -> Result<u64, PortError>;

    /// Recomputes from scratch the values, baselines and scores of one channel, or of every
    /// channel when `channel_id` is `None`, as of now: the state [`Self::save`] would reach
    /// if every video of the channel were saved again unchanged. For a database upgraded
    /// from a schema without scores, and for scores that time alone would change (a video
    /// becoming old enough to be scored on its total views). One transaction per channel.
    /// With `channel_id` `None` it also recomputes every item's growth (for a database
    /// upgraded from a schema without growth windows), in batches of at most 1,000 items a
    /// transaction. Returns how many channels, videos and items were recomputed.
    async fn rescore(&self, channel_id: Option<String>) -> Result<RescoreReport, PortError>;
}

/// What [`ResultStore::rescore`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RescoreReport {
    /// Channels whose baselines were recomputed.
    pub channels: u64,
    /// Videos (distinct ids within a channel) whose values and scores were recomputed.
    pub videos: u64,
    /// Items whose growth was recomputed (every item when rescoring all channels).
    pub growth: u64,
}
