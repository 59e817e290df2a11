//! The result store port: content items deduplicated on (source, source_id), with metric
//! history for ranking by growth.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::content::{ContentItem, Metrics, SaveReport};
use crate::error::PortError;
use crate::task::TaskId;
use crate::Timestamp;

/// A stored item with its bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResult {
    /// The item as last saved.
    pub item: ContentItem,
    /// When (source, source_id) was first saved.
    pub first_seen_at: Timestamp,
    /// When it was last saved (changed or not).
    pub last_seen_at: Timestamp,
    /// The task that last saved it.
    pub last_task_id: Option<TaskId>,
    /// Views gained per hour between the first and the latest metrics snapshot (0 with one).
    pub views_per_hour: f64,
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
    /// Fastest growing (views per hour) first.
    Growth,
}

/// A query over stored results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultQuery {
    /// Only this source.
    pub source: Option<String>,
    /// Only items last seen at or after this instant.
    pub since: Option<Timestamp>,
    /// Order.
    pub order: ResultOrder,
    /// Skip this many.
    pub offset: u64,
    /// At most this many (1–10,000).
    pub limit: u32,
}

impl Default for ResultQuery {
    fn default() -> Self {
        ResultQuery {
            source: None,
            since: None,
            order: ResultOrder::Views,
            offset: 0,
            limit: 50,
        }
    }
}

/// Where plugins' items are kept.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait ResultStore: Send + Sync {
    /// Saves a batch atomically and counts what happened.
    ///
    /// An implementation MUST: validate every item first (`Invalid` naming `items[i].field`,
    /// nothing written); insert an unseen (source, source_id) and record its first metrics
    /// snapshot (`inserted`); for a seen one, update its fields, `last_seen_at` and
    /// `last_task_id`, and count it `updated` if any field or metric changed (writing a
    /// metrics snapshot only if a metric changed) or `unchanged` otherwise; keep one row per
    /// (source, source_id) even when two callers save the same item at once. An item repeated
    /// within one batch is saved once per occurrence, in order.
    async fn save(
        &self,
        task: Option<TaskId>,
        items: &[ContentItem],
    ) -> Result<SaveReport, PortError>;

    /// The stored item. MUST fail with `NotFound` when there is none.
    async fn get(&self, source: &str, source_id: &str) -> Result<StoredResult, PortError>;

    /// The item with this id under every source that has it, ordered by source; empty when
    /// none has it. MUST NOT read every stored item: one probe of the (source, source_id)
    /// key per distinct source is enough, and there are a handful of sources.
    async fn find(&self, source_id: &str) -> Result<Vec<StoredResult>, PortError>;

    /// The item's metrics history, oldest first. MUST fail with `NotFound` for an unknown item.
    async fn history(
        &self,
        source: &str,
        source_id: &str,
    ) -> Result<Vec<MetricSnapshot>, PortError>;

    /// Items matching `query` in its order, ties broken by (source, source_id). MUST refuse a
    /// limit outside 1–10,000 with `Invalid`. Items without the ordering value (no views, no
    /// publish date) come last.
    async fn query(&self, query: &ResultQuery) -> Result<Vec<StoredResult>, PortError>;

    /// How many items are stored, for one source or all.
    async fn count(&self, source: Option<String>) -> Result<u64, PortError>;
}
