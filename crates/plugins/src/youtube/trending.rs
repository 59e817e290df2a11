//! `trending_scrape`: the Data API's most-popular chart of a region and category, items with
//! source `youtube_trending`. YouTube retired its Trending page in July 2025, so there is no
//! yt-dlp fallback.

use async_trait::async_trait;
use prismq_domain::{
    Task, TaskContext, TaskError, TaskHandler, TaskResult, TaskType, ValidationError,
};
use serde_json::{json, Map, Value};
use std::sync::Arc;

use super::common::{self, TRENDING_SCRAPE};
use super::params;
use super::source::{ChartQuery, VideoSource};

/// The source value of this handler's items.
pub const SOURCE: &str = "youtube_trending";

/// Why trending cannot run without the Data API, and what to configure.
pub const NEEDS_API: &str = "trending_scrape needs the YouTube Data API: YouTube retired its \
Trending page in July 2025, so yt-dlp has nothing to read; set youtube.api_key (and backend = \
\"api\" or \"auto\") and enqueue the task again";

/// Handles `trending_scrape`.
#[derive(Debug, Clone)]
pub struct TrendingHandler {
    source: Option<Arc<dyn VideoSource>>,
}

impl TrendingHandler {
    /// A handler reading the chart from `source`, the Data API; `None` when no key is
    /// configured, in which case every task fails permanently saying what to configure.
    pub fn new(source: Option<Arc<dyn VideoSource>>) -> Self {
        TrendingHandler { source }
    }
}

#[async_trait]
impl TaskHandler for TrendingHandler {
    fn task_type(&self) -> TaskType {
        common::task_type(TRENDING_SCRAPE)
    }

    fn validate(&self, params: &Map<String, Value>) -> Result<(), ValidationError> {
        params::trending(params).map(|_| ())
    }

    async fn handle(&self, task: &Task, ctx: &TaskContext) -> Result<TaskResult, TaskError> {
        let p = common::parse_task(task, params::trending)?;
        let Some(source) = &self.source else {
            return Err(TaskError::permanent(NEEDS_API));
        };
        let query = ChartQuery {
            region: p.region.clone(),
            category_id: p.category_id.clone(),
            top_n: p.top_n,
        };
        let fetched = source
            .chart(&query, ctx.cancel_signal())
            .await
            .map_err(common::fail)?;
        Ok(common::result(
            SOURCE,
            source.name(),
            fetched,
            &format!("the {} chart (category {})", p.region, p.category_id),
            |i, _| {
                let mut m = Map::new();
                m.insert("trending_region".into(), json!(p.region));
                m.insert("trending_category".into(), json!(p.category_id));
                m.insert("trending_rank".into(), json!(i + 1));
                m
            },
        ))
    }
}
