//! `keyword_search`: the first `top_n` results of a search with their 1-based rank, items
//! with source `youtube_keyword`.

use async_trait::async_trait;
use prismq_domain::ports::Clock;
use prismq_domain::{
    Task, TaskContext, TaskError, TaskHandler, TaskResult, TaskType, ValidationError,
};
use serde_json::{json, Map, Value};
use std::sync::Arc;

use super::common::{self, KEYWORD_SEARCH};
use super::params;
use super::source::{SearchQuery, SourceCall, VideoSource};
use super::video::Video;

/// The source value of this handler's items.
pub const SOURCE: &str = "youtube_keyword";

/// Handles `keyword_search`.
#[derive(Debug, Clone)]
pub struct KeywordHandler {
    source: Arc<dyn VideoSource>,
    clock: Arc<dyn Clock>,
    baselines_on_demand: bool,
}

impl KeywordHandler {
    /// A handler searching `source`, with `clock` for `published_within`.
    pub fn new(source: Arc<dyn VideoSource>, clock: Arc<dyn Clock>) -> Self {
        KeywordHandler {
            source,
            clock,
            baselines_on_demand: false,
        }
    }

    /// Whether a task without a `baselines` parameter asks for its channels' baselines
    /// (`[youtube] baselines_on_demand`).
    pub fn with_baselines_on_demand(mut self, on: bool) -> Self {
        self.baselines_on_demand = on;
        self
    }
}

#[async_trait]
impl TaskHandler for KeywordHandler {
    fn task_type(&self) -> TaskType {
        common::task_type(KEYWORD_SEARCH)
    }

    /// The Data API buckets its source charges (none with yt-dlp).
    fn quota_buckets(&self) -> Vec<String> {
        self.source.quota_buckets(SourceCall::Search)
    }

    fn params(&self) -> Option<Vec<prismq_domain::param_spec::ParamSpec>> {
        Some(super::declare::KEYWORD.to_vec())
    }

    fn validate(&self, params: &Map<String, Value>) -> Result<(), ValidationError> {
        params::keyword(params).map(|_| ())
    }

    async fn handle(&self, task: &Task, ctx: &TaskContext) -> Result<TaskResult, TaskError> {
        let p = common::parse_task(task, params::keyword)?;
        let query = SearchQuery {
            query: p.query.clone(),
            top_n: p.top_n,
            published_after: p
                .published_within
                .hours()
                .and_then(|h| common::hours_before(self.clock.now(), h)),
            published_within: p.published_within,
            duration: p.duration,
            sort_by: p.sort_by,
            region: p.region.clone(),
            language: p.language.clone(),
        };
        let extra = |i: usize, _: &Video| {
            let mut m = Map::new();
            m.insert("search_query".into(), json!(p.query));
            m.insert("search_rank".into(), json!(i + 1));
            m
        };
        let backend = self.source.name();
        match self.source.search(&query, ctx.cancel_signal()).await {
            Ok(fetched) => {
                let mut result = common::result(
                    SOURCE,
                    backend,
                    fetched,
                    &format!("a search for {:?}", p.query),
                    extra,
                );
                if p.baselines.unwrap_or(self.baselines_on_demand) {
                    result.follow_ups = common::baseline_follow_ups(task, &result.items);
                }
                Ok(result)
            }
            // Ranks stay right: the partial items are the first results, in order.
            Err(stopped) => Err(common::stopped(SOURCE, backend, stopped, extra)),
        }
    }
}
