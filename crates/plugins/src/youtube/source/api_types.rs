//! Lenient serde types for the Data API responses the client reads, and their mapping to
//! [`Video`]. Every field is optional or defaulted: counters arrive as strings and may be
//! absent, `items` is missing from an empty `channels.list` answer, search titles are
//! HTML-escaped, and durations include `P0D` and `P#DT…`.

use prismq_domain::Timestamp;
use serde::{Deserialize, Deserializer};

use crate::youtube::duration::parse_iso8601_duration;
use crate::youtube::video::Video;

/// A `*.list` response page.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<T> {
    /// The page's items (absent means none).
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
    /// The next page's token; absent on the last page.
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// A `youtube#channel`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiChannel {
    /// `UC…`.
    pub id: String,
    /// `contentDetails`.
    #[serde(default)]
    pub content_details: Option<ChannelContentDetails>,
}

/// `channel.contentDetails`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelContentDetails {
    /// `relatedPlaylists`.
    #[serde(default)]
    pub related_playlists: Option<RelatedPlaylists>,
}

/// `channel.contentDetails.relatedPlaylists`.
#[derive(Debug, Clone, Deserialize)]
pub struct RelatedPlaylists {
    /// The uploads playlist (`UU…`).
    #[serde(default)]
    pub uploads: Option<String>,
}

/// A `youtube#playlistItem`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiPlaylistItem {
    /// `contentDetails`.
    #[serde(default)]
    pub content_details: Option<PlaylistItemContentDetails>,
}

/// `playlistItem.contentDetails`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaylistItemContentDetails {
    /// The video.
    #[serde(default)]
    pub video_id: Option<String>,
    /// When the video was published; absent for deleted and private videos.
    #[serde(default)]
    pub video_published_at: Option<String>,
}

/// A `youtube#video`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiVideo {
    /// The video id.
    pub id: String,
    /// `snippet`.
    #[serde(default)]
    pub snippet: Option<VideoSnippet>,
    /// `contentDetails`.
    #[serde(default)]
    pub content_details: Option<VideoContentDetails>,
    /// `statistics`.
    #[serde(default)]
    pub statistics: Option<VideoStatistics>,
}

/// `video.snippet` (also the shape of the fields search results share).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoSnippet {
    /// RFC 3339.
    #[serde(default)]
    pub published_at: Option<String>,
    /// `UC…`.
    #[serde(default)]
    pub channel_id: Option<String>,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Channel name.
    #[serde(default)]
    pub channel_title: Option<String>,
    /// Tags (absent when none).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Category id (a string).
    #[serde(default)]
    pub category_id: Option<String>,
    /// `none`, `live`, `upcoming`, `completed`.
    #[serde(default)]
    pub live_broadcast_content: Option<String>,
    /// Thumbnails by size.
    #[serde(default)]
    pub thumbnails: Option<Thumbnails>,
}

/// Thumbnails by size name.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Thumbnails {
    /// 120×90.
    #[serde(default)]
    pub default: Option<Thumbnail>,
    /// 320×180.
    #[serde(default)]
    pub medium: Option<Thumbnail>,
    /// 480×360.
    #[serde(default)]
    pub high: Option<Thumbnail>,
}

/// One thumbnail.
#[derive(Debug, Clone, Deserialize)]
pub struct Thumbnail {
    /// Its URL.
    pub url: String,
}

/// `video.contentDetails`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct VideoContentDetails {
    /// ISO 8601 (`PT12M34S`, `P1DT2H`, `P0D`).
    #[serde(default)]
    pub duration: Option<String>,
}

/// `video.statistics`: decimal strings, some absent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoStatistics {
    /// Views.
    #[serde(default, deserialize_with = "count")]
    pub view_count: Option<u64>,
    /// Likes (absent when hidden).
    #[serde(default, deserialize_with = "count")]
    pub like_count: Option<u64>,
    /// Comments (absent when disabled).
    #[serde(default, deserialize_with = "count")]
    pub comment_count: Option<u64>,
}

/// A `youtube#searchResult`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiSearchResult {
    /// `{kind, videoId}` for videos.
    pub id: SearchId,
    /// `snippet` (HTML-escaped title and channel title).
    #[serde(default)]
    pub snippet: Option<VideoSnippet>,
}

/// A search result's id object.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchId {
    /// `youtube#video`, `youtube#channel`, `youtube#playlist`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Set for videos.
    #[serde(default)]
    pub video_id: Option<String>,
}

/// A `youtube#videoCategory` (`videoCategories.list`, part `snippet`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiVideoCategory {
    /// The category id, a decimal string (`"10"`).
    pub id: String,
    /// `snippet`.
    #[serde(default)]
    pub snippet: Option<VideoCategorySnippet>,
}

/// `videoCategory.snippet`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoCategorySnippet {
    /// The title in the request's `hl` language (default en-US): `Music`, `Gaming`.
    #[serde(default)]
    pub title: Option<String>,
    /// Whether videos can be put in this category; YouTube keeps no chart for the others
    /// (`Trailers`, `Shows`, …). Absent is read as false.
    #[serde(default)]
    pub assignable: bool,
}

/// A counter given as a decimal string (as the API does) or a number; anything else is
/// treated as absent rather than failing the whole page.
fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        _ => None,
    })
}

/// A tolerant RFC 3339 parse (fractional seconds allowed); `None` when unparseable.
pub fn parse_time(text: Option<&str>) -> Option<Timestamp> {
    text.and_then(|t| t.parse().ok())
}

/// Decodes the HTML entities `search.list` puts in titles (`Rubik&#39;s`, `Tom &amp; Jerry`).
pub fn unescape_html(text: &str) -> String {
    html_escape::decode_html_entities(text).into_owned()
}

impl ApiVideo {
    /// The source-neutral record. `videos.list` titles are not escaped, so none is decoded.
    pub fn into_video(self) -> Video {
        let snippet = self.snippet.unwrap_or_default();
        let stats = self.statistics.unwrap_or_default();
        let duration = self
            .content_details
            .and_then(|c| c.duration)
            .and_then(|d| parse_iso8601_duration(&d))
            .filter(|&secs| secs > 0);
        let thumbnail_url = snippet
            .thumbnails
            .and_then(|t| t.high.or(t.medium).or(t.default))
            .map(|t| t.url);
        Video {
            id: self.id,
            title: snippet.title.unwrap_or_default(),
            description: snippet.description,
            tags: snippet.tags,
            channel: snippet.channel_title,
            channel_id: snippet.channel_id,
            published_at: parse_time(snippet.published_at.as_deref()),
            duration_secs: duration,
            views: stats.view_count,
            likes: stats.like_count,
            comments: stats.comment_count,
            category_id: snippet.category_id,
            live_status: snippet.live_broadcast_content,
            // The API has no Shorts flag: only the playlist a video was listed from (UUSH…,
            // UULF…, UULV…) tells, and the caller sets it then. A duration never does.
            is_short: None,
            media_type: None,
            thumbnail_url,
        }
    }
}

/// A `youtube#videoStats`, an item of `videos:batchGetStats`: no title, description,
/// tags or channel.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiVideoStats {
    /// The video id.
    pub id: String,
    /// `snippet`: only `publishTime`.
    #[serde(default)]
    pub snippet: Option<StatsSnippet>,
    /// `contentDetails` (`duration`; `durationMillis` is not read).
    #[serde(default)]
    pub content_details: Option<VideoContentDetails>,
    /// `statistics`.
    #[serde(default)]
    pub statistics: Option<VideoStatistics>,
}

/// `videoStats.snippet`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsSnippet {
    /// RFC 3339.
    #[serde(default)]
    pub publish_time: Option<String>,
}

impl ApiVideoStats {
    /// The video with what the answer carries: counters, publish time and duration; the
    /// title is empty and everything else unknown.
    pub fn into_video(self) -> Video {
        let stats = self.statistics.unwrap_or_default();
        let duration = self
            .content_details
            .and_then(|c| c.duration)
            .and_then(|d| parse_iso8601_duration(&d))
            .filter(|&secs| secs > 0);
        Video {
            id: self.id,
            published_at: parse_time(self.snippet.and_then(|s| s.publish_time).as_deref()),
            duration_secs: duration,
            views: stats.view_count,
            likes: stats.like_count,
            comments: stats.comment_count,
            ..Video::default()
        }
    }
}

impl ApiSearchResult {
    /// The video id, for video results.
    pub fn video_id(&self) -> Option<&str> {
        let is_video = matches!(self.id.kind.as_deref(), None | Some("youtube#video"));
        self.id.video_id.as_deref().filter(|_| is_video)
    }

    /// The result's title with HTML entities decoded.
    pub fn title(&self) -> Option<String> {
        self.snippet
            .as_ref()
            .and_then(|s| s.title.as_deref())
            .map(unescape_html)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lenient_statistics_and_missing_items() {
        let page: ListResponse<ApiVideo> = serde_json::from_value(json!({
            "items": [{"id": "x", "statistics": {"viewCount": "12", "likeCount": 3, "commentCount": "n/a"},
                       "contentDetails": {"duration": "P0D"}, "snippet": {"liveBroadcastContent": "upcoming"}}]
        }))
        .unwrap();
        let v = page.items[0].clone().into_video();
        assert_eq!((v.views, v.likes, v.comments), (Some(12), Some(3), None));
        assert_eq!(v.duration_secs, None);
        assert_eq!(v.is_short, None);
        let empty: ListResponse<ApiChannel> = serde_json::from_value(
            json!({"kind": "youtube#channelListResponse", "pageInfo": {"totalResults": 0}}),
        )
        .unwrap();
        assert!(empty.items.is_empty() && empty.next_page_token.is_none());
    }

    #[test]
    fn search_titles_are_unescaped() {
        let r: ApiSearchResult = serde_json::from_value(json!({
            "id": {"kind": "youtube#video", "videoId": "b_q5GhinG10"},
            "snippet": {"title": "Tom &amp; Jerry &#39;n&quot; Rubik&#39;s"}
        }))
        .unwrap();
        assert_eq!(r.title().as_deref(), Some("Tom & Jerry 'n\" Rubik's"));
        assert_eq!(r.video_id(), Some("b_q5GhinG10"));
        let c: ApiSearchResult =
            serde_json::from_value(json!({"id": {"kind": "youtube#channel", "channelId": "UCx"}}))
                .unwrap();
        assert_eq!(c.video_id(), None);
    }

    #[test]
    fn categories_are_lenient() {
        let page: ListResponse<ApiVideoCategory> = serde_json::from_value(json!({
            "kind": "youtube#videoCategoryListResponse",
            "items": [
                {"kind": "youtube#videoCategory", "id": "10",
                 "snippet": {"title": "Music", "assignable": true, "channelId": "UCBR8-60-B28hp2BmDPdntcQ"}},
                {"id": "44", "snippet": {"title": "Trailers"}},
                {"id": "99"}
            ]
        }))
        .unwrap();
        let s: Vec<(String, Option<String>, bool)> = page
            .items
            .into_iter()
            .map(|c| {
                let snippet = c.snippet.unwrap_or_default();
                (c.id, snippet.title, snippet.assignable)
            })
            .collect();
        assert_eq!(
            s,
            [
                ("10".into(), Some("Music".into()), true),
                ("44".into(), Some("Trailers".into()), false),
                ("99".into(), None, false)
            ]
        );
    }

    #[test]
    fn fractional_times() {
        assert_eq!(
            parse_time(Some("2025-04-29T10:04:44.04884Z")).map(|t| t.as_second()),
            Some(1_745_921_084)
        );
        assert_eq!(parse_time(Some("20240101")), None);
    }
}
