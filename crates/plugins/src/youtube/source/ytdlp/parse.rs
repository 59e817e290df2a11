//! yt-dlp's output: lenient parsing of `-J --flat-playlist` listings and `-j` per-video
//! JSON into [`Video`]s, and classification of its `ERROR:` lines (reference §2.5–2.6).

use prismq_domain::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use crate::youtube::video::Video;

/// A `-J --flat-playlist` listing.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FlatPlaylist {
    /// The entries (`_type: url`).
    #[serde(default)]
    pub entries: Vec<FlatEntry>,
}

/// One flat entry; every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FlatEntry {
    /// The video id.
    #[serde(default)]
    pub id: Option<String>,
    /// The entry's URL (`/shorts/` for Shorts).
    #[serde(default)]
    pub url: Option<String>,
}

impl FlatEntry {
    /// Whether the listing marks the entry as a Short: its URL is a `/shorts/` one
    /// (search results and the Shorts tab list Shorts so).
    pub fn listed_as_short(&self) -> bool {
        self.url.as_deref().is_some_and(|u| u.contains("/shorts/"))
    }
}

/// The top level of a `-J --flat-playlist` run on a channel page: who the channel is.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FlatChannel {
    /// The channel id (`UC…`).
    #[serde(default)]
    pub channel_id: Option<String>,
    /// The playlist id; a channel page's is the channel id.
    #[serde(default)]
    pub id: Option<String>,
}

/// One `-j` object; every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FullVideo {
    /// The video id.
    #[serde(default)]
    pub id: Option<String>,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Channel name.
    #[serde(default)]
    pub channel: Option<String>,
    /// Uploader name (fallback for the channel).
    #[serde(default)]
    pub uploader: Option<String>,
    /// Channel id.
    #[serde(default)]
    pub channel_id: Option<String>,
    /// Unix seconds.
    #[serde(default)]
    pub timestamp: Option<Value>,
    /// `YYYYMMDD` (UTC).
    #[serde(default)]
    pub upload_date: Option<String>,
    /// Seconds (an integer or a float).
    #[serde(default)]
    pub duration: Option<Value>,
    /// Views.
    #[serde(default)]
    pub view_count: Option<Value>,
    /// Likes (null when hidden).
    #[serde(default)]
    pub like_count: Option<Value>,
    /// Comments (null when disabled).
    #[serde(default)]
    pub comment_count: Option<Value>,
    /// One category name.
    #[serde(default)]
    pub categories: Option<Vec<String>>,
    /// `not_live`, `is_live`, `was_live`, `is_upcoming`, `post_live`.
    #[serde(default)]
    pub live_status: Option<String>,
    /// `video`, `short`, `livestream`.
    #[serde(default)]
    pub media_type: Option<String>,
    /// The best thumbnail.
    #[serde(default)]
    pub thumbnail: Option<String>,
}

fn whole(v: Option<&Value>) -> Option<u64> {
    let v = v?;
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f.round() as u64)
    })
}

/// The Data API category id for a YouTube category name (the US list, reference §1.7).
pub fn category_id_for_name(name: &str) -> Option<&'static str> {
    const TABLE: &[(&str, &str)] = &[
        ("Film & Animation", "1"),
        ("Autos & Vehicles", "2"),
        ("Music", "10"),
        ("Pets & Animals", "15"),
        ("Sports", "17"),
        ("Short Movies", "18"),
        ("Travel & Events", "19"),
        ("Gaming", "20"),
        ("Videoblogging", "21"),
        ("People & Blogs", "22"),
        ("Comedy", "23"),
        ("Entertainment", "24"),
        ("News & Politics", "25"),
        ("Howto & Style", "26"),
        ("Education", "27"),
        ("Science & Technology", "28"),
        ("Nonprofits & Activism", "29"),
        ("Movies", "30"),
        ("Trailers", "44"),
    ];
    TABLE.iter().find(|(n, _)| *n == name).map(|(_, id)| *id)
}

fn upload_date(text: &str) -> Option<Timestamp> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let iso = format!("{}-{}-{}T00:00:00Z", &text[..4], &text[4..6], &text[6..]);
    iso.parse().ok()
}

impl FullVideo {
    /// The source-neutral record, or `None` without an id.
    pub fn into_video(self) -> Option<Video> {
        let id = self.id?;
        let published_at = whole(self.timestamp.as_ref())
            .and_then(|s| Timestamp::from_second(i64::try_from(s).ok()?).ok())
            .or_else(|| self.upload_date.as_deref().and_then(upload_date));
        // yt-dlp's media_type comes from the watch page's Shorts eligibility: the only
        // per-video signal. Without it the video's kind stays unknown.
        let is_short = match self.media_type.as_deref() {
            Some("short") => Some(true),
            Some("video" | "livestream") => Some(false),
            _ => None,
        };
        Some(Video {
            title: self.title.unwrap_or_default(),
            description: self.description,
            tags: self.tags.unwrap_or_default(),
            channel: self.channel.or(self.uploader),
            channel_id: self.channel_id,
            published_at,
            duration_secs: whole(self.duration.as_ref()).filter(|d| *d > 0),
            views: whole(self.view_count.as_ref()),
            likes: whole(self.like_count.as_ref()),
            comments: whole(self.comment_count.as_ref()),
            category_id: self
                .categories
                .as_ref()
                .and_then(|c| c.first())
                .and_then(|n| category_id_for_name(n))
                .map(str::to_string),
            live_status: self.live_status,
            is_short,
            media_type: self.media_type,
            thumbnail_url: self.thumbnail,
            id,
        })
    }
}

/// What an `ERROR:` line means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolError {
    /// This one video cannot be read (removed, private, age or geo restricted): skip it.
    VideoUnavailable(String),
    /// YouTube is blocking us (bot check, rate limit, HTTP 429, IP block): retry later.
    Blocked(String),
    /// The channel has no such tab (`This channel does not have a shorts tab`).
    MissingTab(String),
    /// The channel or playlist does not exist (404, terminated, unresolvable).
    NotFound(String),
    /// Anything else.
    Other(String),
}

/// Classifies one `ERROR:` line by the text after `ERROR: [extractor] id: ` — yt-dlp's
/// only signal, interpreted here where it arises.
pub fn classify_error_line(line: &str) -> Option<ToolError> {
    let rest = line.trim().strip_prefix("ERROR:")?.trim();
    let raw = rest.to_string();
    let has = |needle: &str| rest.contains(needle);
    Some(
        if has("not a bot")
            || has("rate-limited")
            || has("HTTP Error 429")
            || has("IP is likely being blocked")
        {
            ToolError::Blocked(raw)
        } else if has("Video unavailable")
            || has("Private video")
            || has("confirm your age")
            || has("available in your country")
        {
            ToolError::VideoUnavailable(raw)
        } else if has("does not have a") && has(" tab") {
            ToolError::MissingTab(raw)
        } else if has("HTTP Error 404")
            || has("does not exist")
            || has("has been terminated")
            || has("Failed to resolve url")
        {
            ToolError::NotFound(raw)
        } else {
            ToolError::Other(raw)
        },
    )
}

/// Every classified `ERROR:` line of `stderr`.
pub fn errors(stderr: &str) -> Vec<ToolError> {
    stderr.lines().filter_map(classify_error_line).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stderr_lines() {
        let bot = "ERROR: [youtube] tpUr8xVxj-w: Sign in to confirm you\u{2019}re not a bot. Use --cookies-from-browser or --cookies for the authentication.";
        assert!(matches!(
            classify_error_line(bot),
            Some(ToolError::Blocked(_))
        ));
        let e429 = "ERROR: [youtube:tab] @handle: Unable to download API page: HTTP Error 429: Too Many Requests (caused by <HTTPError 429: Too Many Requests>)";
        assert!(matches!(
            classify_error_line(e429),
            Some(ToolError::Blocked(_))
        ));
        let gone = "ERROR: [youtube] dQw4w9WgXcZ: Video unavailable. This video has been removed by the uploader";
        assert!(matches!(
            classify_error_line(gone),
            Some(ToolError::VideoUnavailable(_))
        ));
        let private = "ERROR: [youtube] dQw4w9WgXcZ: Private video. Sign in if you've been granted access to this video.";
        assert!(matches!(
            classify_error_line(private),
            Some(ToolError::VideoUnavailable(_))
        ));
        let h404 = "ERROR: [youtube:tab] @nosuchhandle12345: Unable to download webpage: HTTP Error 404: Not Found (caused by <HTTPError 404: Not Found>)";
        assert!(matches!(
            classify_error_line(h404),
            Some(ToolError::NotFound(_))
        ));
        let terminated = "ERROR: [youtube:tab] UCxxxxxxxxxxxxxxxxxxxxxx: YouTube said: This account has been terminated for a violation of YouTube's Terms of Service.";
        assert!(matches!(
            classify_error_line(terminated),
            Some(ToolError::NotFound(_))
        ));
        let tab = "ERROR: [youtube:tab] UC_x5XG1OV2P6uZZ5FSM9Ttw: This channel does not have a shorts tab";
        assert!(matches!(
            classify_error_line(tab),
            Some(ToolError::MissingTab(_))
        ));
        assert!(matches!(
            classify_error_line("ERROR: something new"),
            Some(ToolError::Other(_))
        ));
        assert_eq!(
            classify_error_line("WARNING: [youtube] No supported JavaScript runtime"),
            None
        );
    }

    #[test]
    fn full_video_mapping() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/ytdlp/video_full.json"
        ))
        .unwrap();
        let v: FullVideo = serde_json::from_str(&text).unwrap();
        let v = v.into_video().unwrap();
        assert_eq!(v.id, "Kq9MZLmFMHQ");
        assert_eq!(v.category_id.as_deref(), Some("28"));
        assert_eq!(v.duration_secs, Some(754));
        assert_eq!(
            (v.views, v.likes, v.comments),
            (Some(48_213), Some(1_520), Some(87))
        );
        assert_eq!(
            v.published_at,
            Some(Timestamp::from_second(1_795_021_206).unwrap())
        );
        assert_eq!(v.is_short, Some(false));
        let short: FullVideo = serde_json::from_value(serde_json::json!({
            "id": "rTw3pGhYsLM", "like_count": null, "upload_date": "20261117", "duration": 58.0,
            "media_type": "short"
        }))
        .unwrap();
        let s = short.into_video().unwrap();
        assert_eq!(
            (s.likes, s.duration_secs, s.is_short),
            (None, Some(58), Some(true))
        );
        assert_eq!(s.media_type.as_deref(), Some("short"));
        assert_eq!(s.published_at, "2026-11-17T00:00:00Z".parse().ok());
        // No media_type: unknown, however short the video.
        let unknown: FullVideo = serde_json::from_value(serde_json::json!({
            "id": "rTw3pGhYsLM", "duration": 30,
            "original_url": "https://www.youtube.com/shorts/rTw3pGhYsLM"
        }))
        .unwrap();
        assert_eq!(unknown.into_video().unwrap().is_short, None);
        let stream: FullVideo = serde_json::from_value(
            serde_json::json!({"id": "pQ7vGf3x2Lk", "media_type": "livestream"}),
        )
        .unwrap();
        assert_eq!(stream.into_video().unwrap().is_short, Some(false));
    }

    proptest! {
        #[test]
        fn classification_never_panics(s in "\\PC{0,120}") {
            let _ = classify_error_line(&s);
            let _ = errors(&s);
            let _ = upload_date(&s);
        }
    }
}
