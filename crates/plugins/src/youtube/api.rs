//! `api_scrape`: details and metrics of listed videos, items with source `youtube_api`.

use async_trait::async_trait;
use prismq_domain::{
    Task, TaskContext, TaskError, TaskHandler, TaskResult, TaskType, ValidationError,
};
use serde_json::{Map, Value};
use std::sync::Arc;

use super::common::{self, API_SCRAPE};
use super::params;
use super::source::{SourceCall, VideoSource};
use super::video::Video;

/// The source value of this handler's items.
pub const SOURCE: &str = "youtube_api";

/// Handles `api_scrape`.
#[derive(Debug, Clone)]
pub struct ApiHandler {
    source: Arc<dyn VideoSource>,
}

impl ApiHandler {
    /// A handler reading `source`.
    pub fn new(source: Arc<dyn VideoSource>) -> Self {
        ApiHandler { source }
    }
}

#[async_trait]
impl TaskHandler for ApiHandler {
    fn task_type(&self) -> TaskType {
        common::task_type(API_SCRAPE)
    }

    /// The Data API buckets its source charges (none with yt-dlp).
    fn quota_buckets(&self) -> Vec<String> {
        self.source.quota_buckets(SourceCall::Videos)
    }

    fn params(&self) -> Option<Vec<prismq_domain::param_spec::ParamSpec>> {
        Some(super::declare::API.to_vec())
    }

    fn validate(&self, params: &Map<String, Value>) -> Result<(), ValidationError> {
        params::api(params).map(|_| ())
    }

    async fn handle(&self, task: &Task, ctx: &TaskContext) -> Result<TaskResult, TaskError> {
        let p = common::parse_task(task, params::api)?;
        let backend = self.source.name();
        // The position in the request, counting the videos YouTube did not return.
        let extra = |_: usize, v: &Video| {
            let mut m = Map::new();
            if let Some(i) = p.videos.iter().position(|id| id.as_str() == v.id) {
                m.insert("request_rank".into(), serde_json::json!(i + 1));
            }
            m
        };
        match self.source.videos(&p.videos, ctx.cancel_signal()).await {
            Ok(fetched) => Ok(common::result(
                SOURCE,
                backend,
                fetched,
                &format!("{} requested", p.videos.len()),
                extra,
            )),
            Err(stopped) => Err(common::stopped(SOURCE, backend, stopped, extra)),
        }
    }
}
