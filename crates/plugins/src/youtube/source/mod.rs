//! The video-source port the handlers depend on, and its two adapters: the YouTube Data
//! API ([`data_api`]) and yt-dlp ([`ytdlp`]). Errors are classified here, where they arise,
//! into [`SourceError`] variants that map one-to-one onto the domain's error classes.

pub mod api_error;
pub mod api_types;
pub mod data_api;
pub mod quota;
pub mod redact;
pub mod retry;
pub mod ytdlp;

use async_trait::async_trait;
use prismq_domain::{text, CancelSignal, PortError, TaskError, Timestamp};
use std::collections::BTreeMap;
use std::fmt;

use super::ids::{ChannelRef, VideoId};
use super::params::{ChannelTab, DurationFilter, PublishedWithin, SortBy};
use super::video::Video;
pub use quota::Bucket;

/// A channel's newest videos.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelQuery {
    /// The channel.
    pub channel: ChannelRef,
    /// Which tab.
    pub tab: ChannelTab,
    /// How many, newest first.
    pub top_n: u32,
    /// Only videos published at or after this instant.
    pub published_after: Option<Timestamp>,
}

/// The most-popular chart of a region and category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartQuery {
    /// ISO 3166-1 alpha-2, upper case.
    pub region: String,
    /// `videoCategoryId` (`0` for all).
    pub category_id: String,
    /// How many.
    pub top_n: u32,
}

/// A keyword search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// The query text.
    pub query: String,
    /// How many.
    pub top_n: u32,
    /// Only videos published at or after this instant (the Data API's `publishedAfter`).
    pub published_after: Option<Timestamp>,
    /// The same window by name (yt-dlp's search filter).
    pub published_within: PublishedWithin,
    /// Length filter.
    pub duration: DurationFilter,
    /// Order.
    pub sort_by: SortBy,
    /// Region bias.
    pub region: Option<String>,
    /// Language bias.
    pub language: Option<String>,
}

/// What a source returned, with counters for the task's summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fetched {
    /// The videos, in the source's order (newest, chart or rank order).
    pub videos: Vec<Video>,
    /// Named counters (`requests.videos`, `quota_units`, `skipped_unavailable`, …).
    pub counters: BTreeMap<String, u64>,
    /// Notes for the summary ("the channel has no Shorts playlist").
    pub notes: Vec<String>,
}

/// A source call that stopped before it finished: why, and what it had fetched by then
/// (the pages before the one that failed), so the handler can hand those on as the task's
/// partial items. A `?` on a plain [`SourceError`] converts with nothing fetched.
#[derive(Debug, Clone, PartialEq)]
pub struct Stopped {
    /// Why it stopped.
    pub error: SourceError,
    /// What was fetched before; its counters include the failed request.
    pub partial: Fetched,
}

impl Stopped {
    /// Stopped by `error` after fetching `partial`.
    pub fn after(error: SourceError, partial: Fetched) -> Self {
        Stopped { error, partial }
    }
}

impl From<SourceError> for Stopped {
    fn from(error: SourceError) -> Self {
        Stopped {
            error,
            partial: Fetched::default(),
        }
    }
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (after {} videos)",
            self.error,
            self.partial.videos.len()
        )
    }
}

/// One entry of a region's video category list (`videoCategories.list`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoCategory {
    /// The id, a decimal string (`"10"`).
    pub id: String,
    /// The title (`Music`).
    pub title: String,
    /// Whether videos can be filed under it; only assignable categories have charts.
    pub assignable: bool,
}

/// A region's video categories, with the request counters for the task's summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CategoryList {
    /// The categories in the API's order.
    pub categories: Vec<VideoCategory>,
    /// `requests.videoCategories`, `quota_units.…`.
    pub counters: BTreeMap<String, u64>,
}

impl CategoryList {
    /// The category with `id`, if the region has it.
    pub fn get(&self, id: &str) -> Option<&VideoCategory> {
        self.categories.iter().find(|c| c.id == id)
    }
}

/// A source of YouTube videos. Implementations classify their errors where they arise, and
/// a call that fails after fetching some videos returns them in [`Stopped::partial`].
#[async_trait]
pub trait VideoSource: Send + Sync + fmt::Debug {
    /// A short name for summaries (`data_api`, `ytdlp`).
    fn name(&self) -> &'static str;

    /// The channel's newest `top_n` videos of a tab, newest first.
    async fn channel_videos(
        &self,
        query: &ChannelQuery,
        cancel: &CancelSignal,
    ) -> Result<Fetched, Stopped>;

    /// The most-popular chart. An unavailable chart is an empty success.
    async fn chart(&self, query: &ChartQuery, cancel: &CancelSignal) -> Result<Fetched, Stopped>;

    /// The video categories YouTube has in `region` (ISO 3166-1 alpha-2, upper case).
    async fn categories(
        &self,
        region: &str,
        cancel: &CancelSignal,
    ) -> Result<CategoryList, SourceError>;

    /// The first `top_n` search results, in rank order.
    async fn search(&self, query: &SearchQuery, cancel: &CancelSignal) -> Result<Fetched, Stopped>;

    /// Details of the given videos, in the given order; unknown ids are left out.
    async fn videos(&self, ids: &[VideoId], cancel: &CancelSignal) -> Result<Fetched, Stopped>;

    /// Statistics, publish time and duration of the given videos (no title or channel), in
    /// the given order; unknown ids are left out. Default: `Unsupported` (only the Data API
    /// has `videos:batchGetStats`).
    async fn video_stats(
        &self,
        ids: &[VideoId],
        cancel: &CancelSignal,
    ) -> Result<Fetched, Stopped> {
        let _ = (ids, cancel);
        Err(SourceError::Unsupported(format!(
            "{} cannot read statistics in batches; use method list",
            self.name()
        ))
        .into())
    }

    /// The quota ledger buckets a call of `kind` may charge, by name, without repeats.
    /// Default: none (a source without quota, such as yt-dlp).
    fn quota_buckets(&self, kind: SourceCall) -> Vec<String> {
        let _ = kind;
        Vec::new()
    }
}

/// The calls of [`VideoSource`], for [`VideoSource::quota_buckets`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceCall {
    /// [`VideoSource::channel_videos`].
    ChannelVideos,
    /// [`VideoSource::chart`].
    Chart,
    /// [`VideoSource::categories`].
    Categories,
    /// [`VideoSource::search`].
    Search,
    /// [`VideoSource::videos`].
    Videos,
    /// [`VideoSource::video_stats`].
    VideoStats,
}

/// Why a source failed, classified at the point of failure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    /// A daily quota bucket is spent until `until` (midnight Pacific time).
    #[error("the YouTube Data API {bucket} quota is spent until {until}")]
    QuotaExhausted {
        /// The bucket.
        bucket: Bucket,
        /// When it resets.
        until: Timestamp,
    },
    /// Short-term throttling; `retry_at` from Retry-After when the server sent one.
    #[error("YouTube is throttling requests")]
    RateLimited {
        /// When to try again, if known.
        retry_at: Option<Timestamp>,
    },
    /// The API key is not valid.
    #[error("the YouTube API key is not valid")]
    KeyInvalid,
    /// The YouTube Data API is not enabled for the key's project.
    #[error("the YouTube Data API v3 is not enabled for the API key's Google Cloud project")]
    ApiDisabled,
    /// The key is restricted or access was refused (`reason` is YouTube's).
    #[error("YouTube refused access ({reason})")]
    Forbidden {
        /// YouTube's reason code.
        reason: String,
    },
    /// The channel, playlist or video does not exist or is private.
    #[error("not found: {what}")]
    NotFound {
        /// What was not found.
        what: String,
    },
    /// YouTube refused the request as malformed.
    #[error("YouTube refused the request (HTTP {status}, {reason}{})", location.as_deref().map(|l| format!(", parameter {l}")).unwrap_or_default())]
    BadRequest {
        /// HTTP status.
        status: u16,
        /// YouTube's reason code.
        reason: String,
        /// The offending parameter, if named.
        location: Option<String>,
    },
    /// The server answered with a redirect, which is never followed: the request carries
    /// the API key in its URL, and the Data API itself never redirects.
    #[error("the YouTube Data API answered HTTP {status}, a redirect, which is not followed because the request carries the API key")]
    Redirected {
        /// HTTP status (3xx).
        status: u16,
    },
    /// A server-side failure (5xx, `backendError`).
    #[error("YouTube had a server error (HTTP {status})")]
    Transient {
        /// HTTP status.
        status: u16,
    },
    /// The request took longer than the configured timeout.
    #[error("the request to YouTube timed out")]
    Timeout,
    /// A connection-level failure.
    #[error("could not reach YouTube: {0}")]
    Network(String),
    /// The response exceeded the configured size cap.
    #[error("the response exceeded the {limit}-byte cap")]
    TooLarge {
        /// The cap in bytes.
        limit: u64,
    },
    /// The response could not be understood.
    #[error("could not decode YouTube's response: {0}")]
    Decode(String),
    /// The quota ledger failed.
    #[error("quota ledger: {0}")]
    Ledger(PortError),
    /// The task was cancelled while waiting for YouTube.
    #[error("cancelled")]
    Cancelled,
    /// The yt-dlp tool failed in a way that may pass (bot check, HTTP 429, network).
    #[error("yt-dlp: {0}")]
    ToolRetryable(String),
    /// The yt-dlp tool failed in a way that will not pass (missing binary, bad usage).
    #[error("yt-dlp: {0}")]
    ToolPermanent(String),
    /// The backend cannot do this (trending without the Data API).
    #[error("{0}")]
    Unsupported(String),
}

impl SourceError {
    /// The same error with `f` applied to every text it carries (reasons, locations, tool
    /// lines, transport and decoder messages): how a source makes outside text safe
    /// (see [`prismq_domain::text`]) and removes secrets from it.
    #[must_use]
    pub fn map_text(self, f: impl Fn(&str) -> String) -> Self {
        match self {
            SourceError::Forbidden { reason } => SourceError::Forbidden { reason: f(&reason) },
            SourceError::NotFound { what } => SourceError::NotFound { what: f(&what) },
            SourceError::BadRequest {
                status,
                reason,
                location,
            } => SourceError::BadRequest {
                status,
                reason: f(&reason),
                location: location.as_deref().map(&f),
            },
            SourceError::Network(m) => SourceError::Network(f(&m)),
            SourceError::Decode(m) => SourceError::Decode(f(&m)),
            SourceError::ToolRetryable(m) => SourceError::ToolRetryable(f(&m)),
            SourceError::ToolPermanent(m) => SourceError::ToolPermanent(f(&m)),
            SourceError::Unsupported(m) => SourceError::Unsupported(f(&m)),
            other @ (SourceError::QuotaExhausted { .. }
            | SourceError::RateLimited { .. }
            | SourceError::KeyInvalid
            | SourceError::ApiDisabled
            | SourceError::Redirected { .. }
            | SourceError::Transient { .. }
            | SourceError::Timeout
            | SourceError::TooLarge { .. }
            | SourceError::Ledger(_)
            | SourceError::Cancelled) => other,
        }
    }

    /// The same error with every outside text on one line of at most
    /// [`DETAIL_MAX_CHARS`](prismq_domain::text::DETAIL_MAX_CHARS) characters.
    #[must_use]
    pub fn sanitized(self) -> Self {
        self.map_text(|t| text::one_line(t, text::DETAIL_MAX_CHARS))
    }

    /// The domain error: its class and one line telling the operator what to do, with every
    /// outside text in it made safe first ([`SourceError::sanitized`]).
    pub fn to_task_error(&self) -> TaskError {
        // Outside text is made safe here too, whichever source built the error.
        let this = &self.clone().sanitized();
        match this {
            SourceError::QuotaExhausted { bucket, until } => TaskError::retry_after(
                *until,
                format!(
                    "the YouTube Data API {bucket} quota for today is spent; the task waits until it resets at {until} (midnight Pacific time)"
                ),
            ),
            SourceError::RateLimited { retry_at: Some(t) } => TaskError::retry_after(
                *t,
                format!("YouTube is throttling requests and asked to wait until {t}"),
            ),
            SourceError::RateLimited { retry_at: None } => {
                TaskError::retryable(this.to_string())
            }
            SourceError::KeyInvalid => TaskError::permanent(
                "the YouTube API key is not valid: set a valid key in the youtube.api_key setting (Google Cloud console → APIs & Services → Credentials)",
            ),
            SourceError::ApiDisabled => TaskError::permanent(
                "the YouTube Data API v3 is not enabled for the API key's project: enable it in the Google Cloud console (APIs & Services → Library), wait a few minutes, then re-enqueue",
            ),
            SourceError::Forbidden { reason } => TaskError::permanent(format!(
                "YouTube refused access ({reason}): check that youtube.api_key is set and that its restrictions (referrer, IP, allowed APIs) permit the YouTube Data API v3 from this machine"
            )),
            SourceError::NotFound { what } => TaskError::permanent(format!(
                "not found on YouTube: {what}; check the spelling, or whether it is private or deleted"
            )),
            SourceError::BadRequest { .. } => {
                TaskError::permanent(format!("{this}; the task's parameters cannot be run as given"))
            }
            SourceError::Redirected { .. } => TaskError::permanent(format!(
                "{this}; check that youtube.api_base_url points at the Data API itself"
            )),
            SourceError::Transient { .. } | SourceError::Timeout | SourceError::Network(_) => {
                TaskError::retryable(this.to_string())
            }
            SourceError::TooLarge { .. } => TaskError::permanent(format!(
                "{this}; a real answer is far smaller, so check that youtube.api_base_url and youtube.ytdlp_path point at YouTube's API and a real yt-dlp"
            )),
            SourceError::Decode(_) => TaskError::retryable(this.to_string()),
            SourceError::Ledger(e) if e.is_transient() => TaskError::retryable(this.to_string()),
            SourceError::Ledger(_) => TaskError::permanent(this.to_string()),
            SourceError::Cancelled => TaskError::retryable("cancelled before YouTube answered"),
            SourceError::ToolRetryable(_) => TaskError::retryable(this.to_string()),
            SourceError::ToolPermanent(_) | SourceError::Unsupported(_) => {
                TaskError::permanent(this.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prismq_domain::ErrorClass;

    #[test]
    fn classes() {
        let t = Timestamp::from_second(1_790_319_600).unwrap();
        let q = SourceError::QuotaExhausted {
            bucket: Bucket::Search,
            until: t,
        };
        assert_eq!(q.to_task_error().class, ErrorClass::RetryableAfter(t));
        assert!(q.to_task_error().message.contains("search"));
        assert_eq!(
            SourceError::RateLimited { retry_at: Some(t) }
                .to_task_error()
                .class,
            ErrorClass::RetryableAfter(t)
        );
        for e in [
            SourceError::RateLimited { retry_at: None },
            SourceError::Transient { status: 503 },
            SourceError::Timeout,
            SourceError::Network("reset".into()),
            SourceError::Decode("eof".into()),
            SourceError::Ledger(PortError::Busy("x".into())),
            SourceError::ToolRetryable("bot check".into()),
        ] {
            let te = e.to_task_error();
            assert_eq!(te.class, ErrorClass::Retryable, "{e:?}");
            // The stored message says what failed; whether it is retried is the runtime's
            // decision, shown apart (a dead-lettered task must not read "retrying").
            assert!(!te.message.contains("retrying"), "{}", te.message);
            assert_eq!(te.message, e.to_string(), "{e:?}");
        }
        for e in [
            SourceError::KeyInvalid,
            SourceError::ApiDisabled,
            SourceError::Forbidden {
                reason: "forbidden".into(),
            },
            SourceError::NotFound {
                what: "channel @x".into(),
            },
            SourceError::BadRequest {
                status: 400,
                reason: "invalidParameter".into(),
                location: Some("order".into()),
            },
            SourceError::TooLarge { limit: 10 },
            SourceError::Ledger(PortError::NotFound("x".into())),
            SourceError::ToolPermanent("no such file".into()),
            SourceError::Unsupported("x".into()),
        ] {
            assert_eq!(e.to_task_error().class, ErrorClass::Permanent, "{e:?}");
        }
        assert!(SourceError::KeyInvalid
            .to_task_error()
            .message
            .contains("youtube.api_key"));
    }
}
