//! The tracked-videos port: a narrow read of which stored videos a statistics refresh
//! (`refresh_stats`) should visit, page by page in id order.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::PortError;
use crate::Timestamp;

/// The kinds of source whose sightings make a video tracked start with this (the YouTube
/// plugin's sources).
pub const TRACKED_SOURCE_PREFIX: &str = "youtube_";

/// The platform of tracked videos.
pub const TRACKED_PLATFORM: &str = "youtube";

/// The source of the refresh's own items: never counted as a sighting of a tracked video,
/// so a refresh does not keep a video tracked by itself.
pub const REFRESH_SOURCE: &str = "youtube_refresh";

/// Which tracked videos to list. The record's channel must match, and the other conditions
/// must hold for one and the same sighting of it; no condition at all means every tracked
/// video.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackedFilter {
    /// Only videos a sighting found at or after this instant.
    pub seen_since: Option<Timestamp>,
    /// Only videos of this channel id.
    pub channel_id: Option<String>,
    /// Only videos a task enqueued by the schedule of this name found (its idempotency key
    /// starts with [`crate::schedule::Schedule::key_prefix`]).
    pub schedule: Option<String>,
}

impl TrackedFilter {
    /// True when no condition is set.
    pub fn is_empty(&self) -> bool {
        self.seen_since.is_none() && self.channel_id.is_none() && self.schedule.is_none()
    }
}

/// Reads the ids of tracked videos: the stored YouTube records a sighting of a source other
/// than [`REFRESH_SOURCE`] found.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait TrackedVideos: Send + Sync {
    /// The distinct `source_id`s of tracked videos matching `filter`, ascending, strictly
    /// greater than `after` when given, at most `limit` of them (keyset paging: pass the last
    /// id of a page as the next page's `after`).
    ///
    /// An implementation MUST: list each id once; leave out records of other platforms and
    /// those only [`REFRESH_SOURCE`] found; apply the filter's sighting conditions to one and
    /// the same sighting; fail with `NotFound` naming the schedule when
    /// `filter.schedule` names none; refuse a `limit` outside 1–[`super::MAX_PAGE_LIMIT`]
    /// with `Invalid` on `limit`.
    async fn tracked_ids(
        &self,
        filter: &TrackedFilter,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<String>, PortError>;
}
