//! `refresh_stats`: new metrics for tracked videos chosen by a filter (seen within a window,
//! of a channel, found by a schedule), read from the store 50 ids at a time in id order and
//! fetched from the Data API with `videos.list` or `videos:batchGetStats`, one call per 50
//! ids. Its items carry source `youtube_refresh`, so every refresh adds a metrics snapshot
//! to the video's history without overwriting what the collecting tasks stored, and a
//! refresh never keeps a video tracked by itself.

use async_trait::async_trait;
use prismq_domain::ports::{Clock, TrackedFilter, TrackedVideos, REFRESH_SOURCE};
use prismq_domain::{
    PortError, Task, TaskContext, TaskError, TaskHandler, TaskResult, TaskType, ValidationError,
};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::common::{self, REFRESH_STATS};
use super::ids::VideoId;
use super::params::{self, RefreshMethod, RefreshParams};
use super::source::{Fetched, SourceCall, Stopped, VideoSource};
use super::video::Video;

/// The source value of this handler's items.
pub const SOURCE: &str = REFRESH_SOURCE;

/// Ids read from the store, and sent to YouTube, per call: the most one call takes.
pub const BATCH: u32 = 50;

/// What the task says when there is no Data API key.
const NEEDS_API: &str = "refresh_stats reads statistics from the YouTube Data API, and no API \
key is configured; set youtube.api_key and enqueue the task again";

/// Handles `refresh_stats`.
#[derive(Clone)]
pub struct RefreshHandler {
    source: Option<Arc<dyn VideoSource>>,
    tracked: Arc<dyn TrackedVideos>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for RefreshHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshHandler")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl RefreshHandler {
    /// A handler reading tracked ids from `tracked` and statistics from `source`, the Data
    /// API; `None` when no key is configured (its tasks then fail, saying what to set).
    /// `clock` is what `seen_within` counts back from.
    pub fn new(
        source: Option<Arc<dyn VideoSource>>,
        tracked: Arc<dyn TrackedVideos>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        RefreshHandler {
            source,
            tracked,
            clock,
        }
    }
}

/// The store's filter for `p`, as of `now`.
fn filter_of(p: &RefreshParams, now: prismq_domain::Timestamp) -> TrackedFilter {
    TrackedFilter {
        seen_since: p
            .seen_within_hours
            .and_then(|h| common::hours_before(now, i64::from(h))),
        channel_id: p.channel_id.clone(),
        schedule: p.schedule.clone(),
    }
}

/// A store error as the task's error: an unknown schedule will not appear by retrying.
fn store_error(e: PortError) -> TaskError {
    match e {
        PortError::NotFound(what) => TaskError::permanent(format!(
            "refresh_stats cannot choose its videos: no {what}; enqueue it again with a schedule that exists"
        )),
        e if e.is_transient() => {
            TaskError::retryable(format!("could not read the tracked videos: {e}"))
        }
        e => TaskError::permanent(format!("could not read the tracked videos: {e}")),
    }
}

fn add_counters(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

#[async_trait]
impl TaskHandler for RefreshHandler {
    fn task_type(&self) -> TaskType {
        common::task_type(REFRESH_STATS)
    }

    /// The buckets of both methods (`videos.list`'s and `videos:batchGetStats`'s): while
    /// either is spent, refresh tasks wait (none without a key).
    fn quota_buckets(&self) -> Vec<String> {
        let Some(source) = &self.source else {
            return Vec::new();
        };
        let mut names = source.quota_buckets(SourceCall::Videos);
        for b in source.quota_buckets(SourceCall::VideoStats) {
            if !names.contains(&b) {
                names.push(b);
            }
        }
        names
    }

    fn params(&self) -> Option<Vec<prismq_domain::param_spec::ParamSpec>> {
        Some(super::declare::REFRESH.to_vec())
    }

    fn validate(&self, params: &Map<String, Value>) -> Result<(), ValidationError> {
        params::refresh(params).map(|_| ())
    }

    async fn handle(&self, task: &Task, ctx: &TaskContext) -> Result<TaskResult, TaskError> {
        let p = common::parse_task(task, params::refresh)?;
        let Some(source) = &self.source else {
            return Err(TaskError::permanent(NEEDS_API));
        };
        let filter = filter_of(&p, self.clock.now());
        let backend = source.name();
        let method = p.method;
        let extra = |_: usize, _: &Video| {
            let mut m = Map::new();
            m.insert("method".into(), json!(method.as_str()));
            m
        };
        let mut done = Fetched::default();
        let mut tracked = 0u64;
        let mut after: Option<String> = None;
        loop {
            if ctx.is_cancelled() {
                let e = TaskError::retryable("cancelled between batches");
                return Err(e.with_partial(common::items(SOURCE, backend, done.videos, extra)));
            }
            let page = self
                .tracked
                .tracked_ids(&filter, after.clone(), BATCH)
                .await
                .map_err(|e| {
                    store_error(e).with_partial(common::items(
                        SOURCE,
                        backend,
                        done.videos.clone(),
                        extra,
                    ))
                })?;
            let Some(last) = page.last().cloned() else {
                break;
            };
            tracked += page.len() as u64;
            let ids: Vec<VideoId> = page
                .iter()
                .filter_map(|id| super::ids::parse_video(id).ok())
                .collect();
            *done
                .counters
                .entry("skipped_invalid_id".into())
                .or_default() += (page.len() - ids.len()) as u64;
            let got = match method {
                RefreshMethod::List => source.videos(&ids, ctx.cancel_signal()).await,
                RefreshMethod::BatchGetStats => source.video_stats(&ids, ctx.cancel_signal()).await,
            };
            match got {
                Ok(f) => {
                    add_counters(&mut done.counters, &f.counters);
                    done.videos.extend(f.videos);
                }
                Err(Stopped { error, partial }) => {
                    add_counters(&mut done.counters, &partial.counters);
                    done.videos.extend(partial.videos);
                    return Err(common::stopped(
                        SOURCE,
                        backend,
                        Stopped::after(error, done),
                        extra,
                    ));
                }
            }
            if page.len() < BATCH as usize {
                break;
            }
            after = Some(last);
        }
        done.counters.insert("tracked".into(), tracked);
        let what = format!("{tracked} tracked, refreshed with {}", method.as_str());
        Ok(common::result(SOURCE, backend, done, &what, extra))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("test input is an object"),
        }
    }

    #[test]
    fn params_take_each_filter_and_a_method() {
        let p = params::refresh(&obj(json!({"seen_within": "7d"}))).unwrap();
        assert_eq!(p.seen_within_hours, Some(168));
        assert_eq!(p.method, RefreshMethod::List);
        let p = params::refresh(&obj(
            json!({"seen_within": "12h", "method": "batch_get_stats"}),
        ))
        .unwrap();
        assert_eq!(
            (p.seen_within_hours, p.method),
            (Some(12), RefreshMethod::BatchGetStats)
        );
        assert_eq!(
            params::refresh(&obj(json!({"seen_within": 3})))
                .unwrap()
                .seen_within_hours,
            Some(72)
        );
        let p = params::refresh(&obj(json!({
            "channel_id": "UC_x5XG1OV2P6uZZ5FSM9Ttw", "schedule": "track-a"
        })))
        .unwrap();
        assert_eq!(p.channel_id.as_deref(), Some("UC_x5XG1OV2P6uZZ5FSM9Ttw"));
        assert_eq!(p.schedule.as_deref(), Some("track-a"));
        let p = params::refresh(&obj(json!({"all": true}))).unwrap();
        assert_eq!(
            filter_of(&p, jiff::Timestamp::UNIX_EPOCH),
            TrackedFilter::default()
        );
    }

    #[test]
    fn params_refuse_no_filter_and_bad_values_saying_what_is_accepted() {
        let cases = [
            (json!({}), "all"),
            (json!({"all": false}), "all"),
            (json!({"all": true, "seen_within": "7d"}), "all"),
            (json!({"all": "yes"}), "all"),
            (json!({"seen_within": "0d"}), "seen_within"),
            (json!({"seen_within": "7w"}), "seen_within"),
            (json!({"seen_within": "3651d"}), "seen_within"),
            (json!({"seen_within": true}), "seen_within"),
            (json!({"channel_id": "@handle"}), "channel_id"),
            (json!({"schedule": "bad name!"}), "schedule"),
            (json!({"schedule": ""}), "schedule"),
            (json!({"all": true, "method": "batch"}), "method"),
            (json!({"all": true, "seenwithin": "7d"}), "seenwithin"),
        ];
        for (input, field) in cases {
            let e = params::refresh(&obj(input.clone())).expect_err(&input.to_string());
            assert_eq!(e.field, field, "{input}: {e}");
            assert!(!e.accepted.is_empty(), "{e}");
        }
        let e = params::refresh(&obj(json!({}))).unwrap_err();
        assert!(e.accepted.contains("seen_within") && e.accepted.contains("all: true"));
    }

    #[test]
    fn the_window_is_counted_back_from_now() {
        let now: jiff::Timestamp = "2026-06-10T00:00:00Z".parse().unwrap();
        let p = params::refresh(&obj(json!({"seen_within": "2d"}))).unwrap();
        assert_eq!(
            filter_of(&p, now).seen_since,
            Some("2026-06-08T00:00:00Z".parse().unwrap())
        );
    }

    #[test]
    fn an_unknown_schedule_is_permanent_and_a_busy_store_retried() {
        use prismq_domain::ErrorClass;
        assert_eq!(
            store_error(PortError::NotFound("schedule \"x\"".into())).class,
            ErrorClass::Permanent
        );
        assert_eq!(
            store_error(PortError::Busy("x".into())).class,
            ErrorClass::Retryable
        );
    }
}
