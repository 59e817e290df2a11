//! The source-neutral video record every source produces, and its mapping to the domain's
//! [`ContentItem`] with an engagement score.

use prismq_domain::text::{multi_line, one_line};
use prismq_domain::{ContentItem, Metrics, Timestamp};
use serde_json::{json, Map, Value};

/// The most characters kept of a title, a channel name, a tag or another one-line field
/// (YouTube allows 100 for a title, 500 for all tags together).
pub const MAX_FIELD_CHARS: usize = 1_000;

/// The most characters kept of a description (YouTube allows 5,000 bytes).
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;

/// The most tags kept.
pub const MAX_TAGS: usize = 100;

fn field(s: &str) -> String {
    one_line(s, MAX_FIELD_CHARS)
}

/// One video as a source reported it. Counters are absent when the source hides them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Video {
    /// The 11-character video id.
    pub id: String,
    /// Title (HTML entities already decoded).
    pub title: String,
    /// Description.
    pub description: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Channel name.
    pub channel: Option<String>,
    /// Channel id (`UC…`).
    pub channel_id: Option<String>,
    /// Publication instant.
    pub published_at: Option<Timestamp>,
    /// Length in seconds; absent for live and upcoming broadcasts and when unknown.
    pub duration_secs: Option<u64>,
    /// Views.
    pub views: Option<u64>,
    /// Likes.
    pub likes: Option<u64>,
    /// Comments.
    pub comments: Option<u64>,
    /// The Data API category id.
    pub category_id: Option<String>,
    /// `none`, `live`, `upcoming`, `was_live`, … as the source says it.
    pub live_status: Option<String>,
    /// Whether it is a Short, only when the source knows: the playlist or tab it was
    /// listed from, yt-dlp's `media_type`, or a `/shorts/` URL in a yt-dlp listing. Never
    /// guessed from the duration (Shorts may be up to three minutes long, and so may
    /// ordinary videos).
    pub is_short: Option<bool>,
    /// yt-dlp's `media_type` (`video`, `short`, `livestream`), when it said.
    pub media_type: Option<String>,
    /// A thumbnail URL.
    pub thumbnail_url: Option<String>,
}

/// (likes + comments) / views, rounded to six decimals; 0 without views.
pub fn engagement_score(v: &Video) -> f64 {
    match v.views {
        Some(views) if views > 0 => {
            let engaged = v.likes.unwrap_or(0).saturating_add(v.comments.unwrap_or(0));
            let raw = engaged as f64 / views as f64;
            (raw * 1_000_000.0).round() / 1_000_000.0
        }
        _ => 0.0,
    }
}

fn clamp_i64(n: Option<u64>) -> Option<i64> {
    n.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

/// The extra fields that hold a video's place in its source's own order, one per task type:
/// chart rank, search rank, position among the channel's uploads, position in the request.
/// [`Video::into_item`] copies the one present into [`ContentItem::rank`].
pub const RANK_KEYS: [&str; 4] = [
    "trending_rank",
    "search_rank",
    "upload_rank",
    "request_rank",
];

impl Video {
    /// The canonical URL (`/shorts/ID` for a known Short).
    pub fn url(&self) -> String {
        if self.is_short == Some(true) {
            format!("https://www.youtube.com/shorts/{}", self.id)
        } else {
            format!("https://www.youtube.com/watch?v={}", self.id)
        }
    }

    /// The content item for `source`, with `extra` merged into the item's extra fields.
    /// Every text the source reported is made safe on the way ([`prismq_domain::text`]):
    /// one line of at most [`MAX_FIELD_CHARS`] characters without control characters, the
    /// description keeping its line feeds and tabs and at most [`MAX_DESCRIPTION_CHARS`],
    /// at most [`MAX_TAGS`] tags.
    pub fn into_item(self, source: &str, extra: Map<String, Value>) -> ContentItem {
        let mut item = ContentItem::new(source, self.id.clone(), field(&self.title));
        item.url = Some(self.url());
        item.metrics = Metrics {
            views: clamp_i64(self.views),
            likes: clamp_i64(self.likes),
            comments: clamp_i64(self.comments),
        };
        item.extra
            .insert("engagement_score".into(), json!(engagement_score(&self)));
        if let Some(c) = &self.category_id {
            item.extra.insert("category_id".into(), json!(field(c)));
        }
        if let Some(s) = &self.live_status {
            item.extra.insert("live_status".into(), json!(field(s)));
        }
        if let Some(s) = self.is_short {
            item.extra.insert("is_short".into(), json!(s));
        }
        if let Some(m) = &self.media_type {
            item.extra.insert("media_type".into(), json!(field(m)));
        }
        if let Some(t) = &self.thumbnail_url {
            item.extra.insert("thumbnail_url".into(), json!(field(t)));
        }
        item.extra.extend(extra);
        // The sighting's rank: the one rank field the task put in the extra fields.
        item.rank = RANK_KEYS
            .iter()
            .find_map(|k| item.extra.get(*k).and_then(Value::as_u64))
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n >= 1);
        item.description = self
            .description
            .map(|d| multi_line(&d, MAX_DESCRIPTION_CHARS));
        item.tags = self.tags.iter().take(MAX_TAGS).map(|t| field(t)).collect();
        item.channel = self.channel.as_deref().map(field);
        item.channel_id = self.channel_id.as_deref().map(field);
        item.published_at = self.published_at;
        item.duration_secs = clamp_i64(self.duration_secs);
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engagement() {
        let mut v = Video {
            views: Some(48_213),
            likes: Some(1_520),
            comments: Some(87),
            ..Video::default()
        };
        assert_eq!(engagement_score(&v), 0.033331);
        v.likes = None;
        assert_eq!(engagement_score(&v), 0.001804);
        v.views = Some(0);
        assert_eq!(engagement_score(&v), 0.0);
        v.views = None;
        assert_eq!(engagement_score(&v), 0.0);
    }

    #[test]
    fn item_mapping() {
        let v = Video {
            id: "rTw3pGhYsLM".into(),
            title: "t".into(),
            views: Some(u64::MAX),
            is_short: Some(true),
            duration_secs: Some(58),
            ..Video::default()
        };
        let mut extra = Map::new();
        extra.insert("search_rank".into(), json!(1));
        let item = v.into_item("youtube_keyword", extra);
        assert_eq!(
            item.url.as_deref(),
            Some("https://www.youtube.com/shorts/rTw3pGhYsLM")
        );
        assert_eq!(item.metrics.views, Some(i64::MAX));
        assert_eq!(item.duration_secs, Some(58));
        assert_eq!(item.extra["search_rank"], json!(1));
        assert_eq!(
            item.rank,
            Some(1),
            "the rank field becomes the sighting's rank"
        );
        assert_eq!(item.extra["is_short"], json!(true));
        assert!(item.validate().is_ok());
    }

    #[test]
    fn outside_text_is_made_safe_in_the_item() {
        let v = Video {
            id: "rTw3pGhYsLM".into(),
            title: format!("\x1b[2Jtitle\r\nerror: forged{}", "x".repeat(5_000)),
            description: Some("line one\r\nline two\x07".into()),
            tags: (0..500).map(|n| format!("tag\n{n}")).collect(),
            channel: Some("chan\u{202E}nel".into()),
            channel_id: Some("UC\x00".into()),
            live_status: Some("none\x1b".into()),
            ..Video::default()
        };
        let item = v.into_item("youtube_api", Map::new());
        assert_eq!(item.title.chars().count(), MAX_FIELD_CHARS);
        assert!(item.title.starts_with("\u{FFFD}[2Jtitle  error: forged"));
        assert_eq!(
            item.description.as_deref(),
            Some("line one\nline two\u{FFFD}")
        );
        assert_eq!(item.tags.len(), MAX_TAGS);
        assert_eq!(item.tags[7], "tag 7");
        assert_eq!(item.channel.as_deref(), Some("chan\u{FFFD}nel"));
        assert_eq!(item.channel_id.as_deref(), Some("UC\u{FFFD}"));
        assert_eq!(item.extra["live_status"], json!("none\u{FFFD}"));
    }
}
