//! What plugins produce: content items (a video, a post) with their metrics, and the
//! report of saving a batch of them.

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

/// One item found by a plugin. Identified by (`source`, `source_id`): saving the same pair
/// again updates the stored row instead of adding one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentItem {
    /// Where it came from: `youtube_channel`, `youtube_trending`, `youtube_keyword`, `youtube_api`, …
    pub source: String,
    /// The source's own id (a YouTube video id).
    pub source_id: String,
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
    /// An item with just its identity and title; other fields empty.
    pub fn new(
        source: impl Into<String>,
        source_id: impl Into<String>,
        title: impl Into<String>,
    ) -> Self {
        ContentItem {
            source: source.into(),
            source_id: source_id.into(),
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

    /// Checks what a store needs: a source and source id of 1–200 bytes without control
    /// characters, and counters that are not negative.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), ValidationError> {
        for (field, value) in [("source", &self.source), ("source_id", &self.source_id)] {
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
