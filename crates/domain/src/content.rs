//! What plugins produce: content items (a video, a post) with their metrics, where each was
//! seen (a sighting), how a new sighting merges into the stored record, and the report of
//! saving a batch of them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ValidationError;
use crate::Timestamp;

/// Engagement counters as the source reported them; absent when the source hides them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    /// Views.
    pub views: Option<i64>,
    /// Likes.
    pub likes: Option<i64>,
    /// Comments.
    pub comments: Option<i64>,
}

/// One item found by a plugin: a record of the thing itself (a video) as one source saw it.
///
/// Identified by (`platform`, `source_id`): one stored record per item however many sources
/// find it. Saving the same pair again merges into that record ([`ContentItem::merged_over`])
/// and records a sighting: the `source` that found it, the task, its `rank` there, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentItem {
    /// The platform the item lives on (`youtube`); with `source_id`, its identity.
    /// [`ContentItem::new`] takes it from the source's prefix (`youtube_channel` → `youtube`).
    pub platform: String,
    /// The kind of source that found it: `youtube_channel`, `youtube_trending`,
    /// `youtube_keyword`, `youtube_api`, …
    pub source: String,
    /// The platform's own id (a YouTube video id).
    pub source_id: String,
    /// Its position in what the source listed (chart rank, search rank, position among a
    /// channel's uploads, position in a request), 1 = first; absent when the source has no
    /// order.
    #[serde(default)]
    pub rank: Option<u32>,
    /// Title.
    pub title: String,
    /// Description.
    pub description: Option<String>,
    /// Canonical URL.
    pub url: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Channel or author name.
    pub channel: Option<String>,
    /// Channel or author id.
    pub channel_id: Option<String>,
    /// When it was published.
    pub published_at: Option<Timestamp>,
    /// Length in seconds.
    pub duration_secs: Option<i64>,
    /// Counters at capture time.
    #[serde(default)]
    pub metrics: Metrics,
    /// Source-specific fields (a JSON object).
    #[serde(default)]
    pub extra: Map<String, Value>,
}

impl ContentItem {
    /// An item with just its source, id and title; other fields empty. The platform is the
    /// source's name up to its first `_` (the whole name when it has none): set
    /// [`ContentItem::platform`] for a source named otherwise.
    pub fn new(
        source: impl Into<String>,
        source_id: impl Into<String>,
        title: impl Into<String>,
    ) -> Self {
        let source = source.into();
        ContentItem {
            platform: platform_of(&source).to_owned(),
            source,
            source_id: source_id.into(),
            rank: None,
            title: title.into(),
            description: None,
            url: None,
            tags: Vec::new(),
            channel: None,
            channel_id: None,
            published_at: None,
            duration_secs: None,
            metrics: Metrics::default(),
            extra: Map::new(),
        }
    }

    /// This item as the stored record becomes when it is saved over `stored` (the same
    /// platform and id): what this sighting knows wins, and what it does not know is kept.
    ///
    /// The title, source and rank are this sighting's. Each optional field (description,
    /// URL, channel, channel id, publish date, duration) and each counter is this one's when
    /// present, else the stored one; the tags are this one's unless empty; `extra` is the
    /// stored object with this one's keys written over it. So a source that does not report
    /// likes, or does not know whether a video is a Short, never erases what another source
    /// knew.
    #[must_use]
    pub fn merged_over(&self, stored: &ContentItem) -> ContentItem {
        let mut extra = stored.extra.clone();
        for (k, v) in &self.extra {
            extra.insert(k.clone(), v.clone());
        }
        ContentItem {
            platform: self.platform.clone(),
            source: self.source.clone(),
            source_id: self.source_id.clone(),
            rank: self.rank,
            title: self.title.clone(),
            description: self
                .description
                .clone()
                .or_else(|| stored.description.clone()),
            url: self.url.clone().or_else(|| stored.url.clone()),
            tags: if self.tags.is_empty() {
                stored.tags.clone()
            } else {
                self.tags.clone()
            },
            channel: self.channel.clone().or_else(|| stored.channel.clone()),
            channel_id: self
                .channel_id
                .clone()
                .or_else(|| stored.channel_id.clone()),
            published_at: self.published_at.or(stored.published_at),
            duration_secs: self.duration_secs.or(stored.duration_secs),
            metrics: Metrics {
                views: self.metrics.views.or(stored.metrics.views),
                likes: self.metrics.likes.or(stored.metrics.likes),
                comments: self.metrics.comments.or(stored.metrics.comments),
            },
            extra,
        }
    }

    /// Checks what a store needs: a platform, source and source id of 1–200 bytes without
    /// control characters, a rank of at least 1, and counters that are not negative.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.rank == Some(0) {
            return Err(ValidationError::new(
                "rank",
                "0 is not a position",
                "1 for the first item the source listed, or absent",
            ));
        }
        for (field, value) in [
            ("platform", &self.platform),
            ("source", &self.source),
            ("source_id", &self.source_id),
        ] {
            if value.is_empty() || value.len() > 200 || value.chars().any(char::is_control) {
                return Err(ValidationError::new(
                    field,
                    format!(
                        "{:?} is not a usable identifier",
                        crate::task::truncate_for_message(value)
                    ),
                    "1 to 200 bytes of printable text",
                ));
            }
        }
        for (field, v) in [
            ("metrics.views", self.metrics.views),
            ("metrics.likes", self.metrics.likes),
            ("metrics.comments", self.metrics.comments),
        ] {
            if v.is_some_and(|n| n < 0) {
                return Err(ValidationError::new(
                    field,
                    "the counter is negative",
                    "0 or more, or absent",
                ));
            }
        }
        Ok(())
    }
}

/// The platform a source name belongs to by the naming rule of [`ContentItem::new`]: the
/// name up to its first `_`, or all of it.
pub fn platform_of(source: &str) -> &str {
    source.split_once('_').map_or(source, |(p, _)| p)
}

/// One time a source found an item: which kind of source, the task, the item's rank there,
/// and when it was saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sighting {
    /// The kind of source ([`ContentItem::source`]).
    pub source: String,
    /// The task that saved it; absent for an item saved outside a task (an import).
    pub task_id: Option<crate::task::TaskId>,
    /// Its position there ([`ContentItem::rank`]).
    pub rank: Option<u32>,
    /// When it was saved (a task saving it again moves this).
    pub seen_at: Timestamp,
}

/// What saving a batch did, counted exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaveReport {
    /// Items not seen before.
    pub inserted: u64,
    /// Items seen before whose stored fields or metrics changed.
    pub updated: u64,
    /// Items seen before and identical to what was stored.
    pub unchanged: u64,
}

impl SaveReport {
    /// Adds another report's counts to this one.
    pub fn merge(&mut self, other: SaveReport) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
    }

    /// Items in the batch.
    pub fn total(&self) -> u64 {
        self.inserted + self.updated + self.unchanged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_rejects_bad_ids_and_negative_counters() {
        let ok = ContentItem::new("youtube_api", "dQw4w9WgXcQ", "t");
        assert!(ok.validate().is_ok());
        let mut bad = ok.clone();
        bad.source_id = String::new();
        assert_eq!(bad.validate().unwrap_err().field, "source_id");
        let mut bad = ok.clone();
        bad.metrics.likes = Some(-1);
        assert_eq!(bad.validate().unwrap_err().field, "metrics.likes");
    }

    #[test]
    fn new_takes_the_platform_from_the_source_name() {
        assert_eq!(
            ContentItem::new("youtube_channel", "a", "t").platform,
            "youtube"
        );
        assert_eq!(ContentItem::new("blog", "a", "t").platform, "blog");
        assert_eq!(platform_of("rss_feed_x"), "rss");
        let mut bad = ContentItem::new("youtube_channel", "a", "t");
        bad.platform = String::new();
        assert_eq!(bad.validate().unwrap_err().field, "platform");
        bad = ContentItem::new("youtube_channel", "a", "t");
        bad.rank = Some(0);
        let e = bad.validate().unwrap_err();
        assert_eq!(e.field, "rank");
        assert!(e.accepted.contains("1 for the first"), "{e}");
    }

    #[test]
    fn a_sighting_keeps_what_it_does_not_know() {
        let mut stored = ContentItem::new("youtube_channel", "v", "old title");
        stored.description = Some("long".into());
        stored.channel_id = Some("UC1".into());
        stored.tags = vec!["a".into()];
        stored.metrics = Metrics {
            views: Some(10),
            likes: Some(2),
            comments: None,
        };
        stored.rank = Some(4);
        stored
            .extra
            .insert("is_short".into(), serde_json::json!(true));
        stored
            .extra
            .insert("upload_rank".into(), serde_json::json!(4));
        let mut seen = ContentItem::new("youtube_keyword", "v", "new title");
        seen.metrics = Metrics {
            views: Some(15),
            likes: None,
            comments: Some(1),
        };
        seen.rank = Some(1);
        seen.extra
            .insert("search_rank".into(), serde_json::json!(1));
        let m = seen.merged_over(&stored);
        assert_eq!(m.title, "new title");
        assert_eq!(m.source, "youtube_keyword");
        assert_eq!(m.rank, Some(1));
        assert_eq!(m.description.as_deref(), Some("long"));
        assert_eq!(m.channel_id.as_deref(), Some("UC1"));
        assert_eq!(m.tags, vec!["a".to_owned()]);
        assert_eq!(
            m.metrics,
            Metrics {
                views: Some(15),
                likes: Some(2),
                comments: Some(1)
            }
        );
        assert_eq!(m.extra["is_short"], serde_json::json!(true));
        assert_eq!(m.extra["upload_rank"], serde_json::json!(4));
        assert_eq!(m.extra["search_rank"], serde_json::json!(1));
        // Merging what is already stored changes nothing.
        assert_eq!(m.merged_over(&m), m);
    }

    #[test]
    fn report_merges() {
        let mut a = SaveReport {
            inserted: 1,
            updated: 2,
            unchanged: 3,
        };
        a.merge(SaveReport {
            inserted: 1,
            updated: 0,
            unchanged: 1,
        });
        assert_eq!(
            a,
            SaveReport {
                inserted: 2,
                updated: 2,
                unchanged: 4
            }
        );
        assert_eq!(a.total(), 8);
    }
}
