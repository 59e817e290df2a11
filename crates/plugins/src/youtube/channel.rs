//! `channel_scrape`: a channel's newest long-form videos, Shorts, past streams or uploads
//! of every kind (its `tab` choice), items with source `youtube_channel`, each with its
//! position among them (`upload_rank`, 1 = the newest).

use async_trait::async_trait;
use prismq_domain::ports::Clock;
use prismq_domain::{
    Task, TaskContext, TaskError, TaskHandler, TaskResult, TaskType, ValidationError,
};
use serde_json::{json, Map, Value};
use std::sync::Arc;

use super::common::{self, CHANNEL_SCRAPE};
use super::params;
use super::source::{ChannelQuery, SourceCall, VideoSource};
use super::video::Video;

/// The source value of this handler's items.
pub const SOURCE: &str = "youtube_channel";

/// Handles `channel_scrape`.
#[derive(Debug, Clone)]
pub struct ChannelHandler {
    source: Arc<dyn VideoSource>,
    clock: Arc<dyn Clock>,
}

impl ChannelHandler {
    /// A handler reading `source`, with `clock` for `max_age_days`.
    pub fn new(source: Arc<dyn VideoSource>, clock: Arc<dyn Clock>) -> Self {
        ChannelHandler { source, clock }
    }
}

#[async_trait]
impl TaskHandler for ChannelHandler {
    fn task_type(&self) -> TaskType {
        common::task_type(CHANNEL_SCRAPE)
    }

    /// The Data API buckets its source charges (none with yt-dlp).
    fn quota_buckets(&self) -> Vec<String> {
        self.source.quota_buckets(SourceCall::ChannelVideos)
    }

    fn params(&self) -> Option<Vec<prismq_domain::param_spec::ParamSpec>> {
        Some(super::declare::CHANNEL.to_vec())
    }

    fn validate(&self, params: &Map<String, Value>) -> Result<(), ValidationError> {
        params::channel(params).map(|_| ())
    }

    async fn handle(&self, task: &Task, ctx: &TaskContext) -> Result<TaskResult, TaskError> {
        let p = common::parse_task(task, params::channel)?;
        let query = ChannelQuery {
            channel: p.channel.clone(),
            tab: p.tab,
            top_n: p.top_n,
            published_after: p
                .max_age_days
                .and_then(|d| common::hours_before(self.clock.now(), i64::from(d) * 24)),
        };
        let channel = p.channel.to_string();
        let tab = p.tab.as_str();
        let extra = |i: usize, _: &Video| {
            let mut m = Map::new();
            m.insert("channel_query".into(), json!(channel));
            m.insert("tab".into(), json!(tab));
            // Position among the choice's uploads, newest first (1 = the latest).
            m.insert("upload_rank".into(), json!(i + 1));
            m
        };
        let backend = self.source.name();
        match self
            .source
            .channel_videos(&query, ctx.cancel_signal())
            .await
        {
            Ok(fetched) => Ok(common::result(
                SOURCE,
                backend,
                fetched,
                &format!("{channel} ({tab})"),
                extra,
            )),
            Err(stopped) => Err(common::stopped(SOURCE, backend, stopped, extra)),
        }
    }
}
