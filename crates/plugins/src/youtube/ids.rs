//! Normalising what operators type into YouTube identities: video ids from ids and URLs
//! (`watch?v=`, `youtu.be/`, `/shorts/`, …) and channels from `@handle`, `handle`, `UC…`
//! ids and channel URLs.
//!
//! Every accepted value is reduced to characters that can never be read as a command-line
//! option or a URL of another site, so the yt-dlp adapter can build its URLs from them.

use std::fmt;
use url::Url;

/// What is accepted for a video, for error messages.
pub const VIDEO_ACCEPTED: &str = "an 11-character video id (e.g. dQw4w9WgXcQ) or a YouTube URL: \
    https://www.youtube.com/watch?v=ID, https://youtu.be/ID, https://www.youtube.com/shorts/ID";

/// What is accepted for a channel, for error messages.
pub const CHANNEL_ACCEPTED: &str = "a channel URL (https://www.youtube.com/@handle, \
    …/channel/UC…, …/user/name, …/c/name), an @handle, a bare handle, or a UC… channel id";

/// An 11-character YouTube video id (`[A-Za-z0-9_-]{11}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VideoId(String);

impl VideoId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The canonical watch URL.
    pub fn watch_url(&self) -> String {
        format!("https://www.youtube.com/watch?v={}", self.0)
    }
}

impl fmt::Display for VideoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A channel as the operator named it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChannelRef {
    /// A `UC…` channel id (24 characters).
    Id(String),
    /// A handle, stored without its `@`.
    Handle(String),
    /// A legacy username (`/user/NAME`).
    Username(String),
    /// A legacy custom URL name (`/c/NAME`).
    Custom(String),
}

impl ChannelRef {
    /// The channel's page URL without a tab.
    pub fn page_url(&self) -> String {
        match self {
            ChannelRef::Id(id) => format!("https://www.youtube.com/channel/{id}"),
            ChannelRef::Handle(h) => format!("https://www.youtube.com/@{h}"),
            ChannelRef::Username(u) => format!("https://www.youtube.com/user/{u}"),
            ChannelRef::Custom(c) => format!("https://www.youtube.com/c/{c}"),
        }
    }

    /// The channel's page URL with the given tab (`videos`, `shorts` or `streams`).
    pub fn tab_url(&self, tab: &str) -> String {
        format!("{}/{tab}", self.page_url())
    }
}

/// The playlist URL of a `UU…` (or `UULF…`, `UUSH…`, `UULV…`) uploads playlist.
pub fn playlist_url(playlist_id: &str) -> String {
    format!("https://www.youtube.com/playlist?list={playlist_id}")
}

impl fmt::Display for ChannelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelRef::Id(id) => f.write_str(id),
            ChannelRef::Handle(h) => write!(f, "@{h}"),
            ChannelRef::Username(u) => write!(f, "user/{u}"),
            ChannelRef::Custom(c) => write!(f, "c/{c}"),
        }
    }
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// True for exactly 11 characters of `[A-Za-z0-9_-]`.
pub fn is_video_id(s: &str) -> bool {
    s.len() == 11 && s.chars().all(is_id_char)
}

/// True for `UC` followed by 22 characters of `[A-Za-z0-9_-]`.
pub fn is_channel_id(s: &str) -> bool {
    s.len() == 24 && s.starts_with("UC") && s.chars().all(is_id_char)
}

/// True for a handle without its `@`: 3 to 30 letters, digits, `_`, `-` or `.`, starting
/// with a letter or digit.
pub fn is_handle(s: &str) -> bool {
    let count = s.chars().count();
    (3..=30).contains(&count)
        && s.chars().next().is_some_and(char::is_alphanumeric)
        && s.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// True for a legacy username or custom name: 1 to 100 letters, digits, `_`, `-` or `.`,
/// starting with a letter or digit.
fn is_legacy_name(s: &str) -> bool {
    let count = s.chars().count();
    (1..=100).contains(&count)
        && s.chars().next().is_some_and(char::is_alphanumeric)
        && s.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// Parses `text` as a YouTube URL (a scheme is optional), or `None` when it is not one.
fn youtube_url(text: &str) -> Option<Url> {
    let lower = text.to_ascii_lowercase();
    let with_scheme = if lower.starts_with("http://") || lower.starts_with("https://") {
        text.to_string()
    } else if [
        "youtube.com/",
        "www.youtube.com/",
        "m.youtube.com/",
        "youtu.be/",
        "music.youtube.com/",
    ]
    .iter()
    .any(|p| lower.starts_with(p))
    {
        format!("https://{text}")
    } else {
        return None;
    };
    let url = Url::parse(&with_scheme).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    let known = matches!(
        host.as_str(),
        "youtube.com" | "www.youtube.com" | "m.youtube.com" | "music.youtube.com" | "youtu.be"
    );
    known.then_some(url)
}

fn path_segments(url: &Url) -> Vec<String> {
    url.path_segments()
        .map(|s| s.filter(|p| !p.is_empty()).map(str::to_string).collect())
        .unwrap_or_default()
}

/// Reduces a video id or URL to its id.
///
/// # Errors
/// A one-line problem description when `text` is neither a bare id nor a YouTube video URL
/// with an id in it.
pub fn parse_video(text: &str) -> Result<VideoId, String> {
    let text = text.trim();
    if is_video_id(text) {
        return Ok(VideoId(text.to_string()));
    }
    let Some(url) = youtube_url(text) else {
        return Err(format!(
            "{:?} is neither an 11-character video id nor a YouTube URL",
            short(text)
        ));
    };
    let segments = path_segments(&url);
    let candidate = if url.host_str() == Some("youtu.be") {
        segments.first().cloned()
    } else if segments.first().map(String::as_str) == Some("watch") {
        url.query_pairs()
            .find(|(k, _)| k == "v")
            .map(|(_, v)| v.into_owned())
    } else {
        match segments.as_slice() {
            [kind, id, ..] if matches!(kind.as_str(), "shorts" | "embed" | "live" | "v") => {
                Some(id.clone())
            }
            _ => None,
        }
    };
    match candidate {
        Some(id) if is_video_id(&id) => Ok(VideoId(id)),
        Some(id) => Err(format!(
            "the URL's video id {:?} is not 11 characters of A-Z, a-z, 0-9, - and _",
            short(&id)
        )),
        None => Err(format!(
            "{:?} is a YouTube URL but not a video's",
            short(text)
        )),
    }
}

/// Reduces a channel URL, `@handle`, handle or `UC…` id to a [`ChannelRef`].
///
/// # Errors
/// A one-line problem description for anything else, including strings that start with
/// `-` (which a command-line tool could read as an option).
pub fn parse_channel(text: &str) -> Result<ChannelRef, String> {
    parse_channel_and_tab(text).map(|(c, _)| c)
}

/// [`parse_channel`], with what a channel URL names after the channel (`videos` in
/// `…/@handle/videos`, lower-cased; further segments joined with `/`), so that a caller can
/// honour it or refuse it rather than drop it. `None` without a URL or without a tab.
///
/// # Errors
/// As [`parse_channel`].
pub fn parse_channel_and_tab(text: &str) -> Result<(ChannelRef, Option<String>), String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the channel is empty".into());
    }
    if is_channel_id(text) {
        return Ok((ChannelRef::Id(text.to_string()), None));
    }
    if let Some(handle) = text.strip_prefix('@') {
        return if is_handle(handle) {
            Ok((ChannelRef::Handle(handle.to_string()), None))
        } else {
            Err(format!(
                "{:?} is not a valid handle (3 to 30 letters, digits, _, - or ., starting with a letter or digit)",
                short(text)
            ))
        };
    }
    if let Some(url) = youtube_url(text) {
        return channel_from_url(&url, text);
    }
    if is_handle(text) {
        return Ok((ChannelRef::Handle(text.to_string()), None));
    }
    Err(format!(
        "{:?} is not a channel URL, @handle, handle or UC… channel id",
        short(text)
    ))
}

fn channel_from_url(url: &Url, text: &str) -> Result<(ChannelRef, Option<String>), String> {
    if url.host_str() == Some("youtu.be") {
        return Err(format!("{:?} is a video link, not a channel", short(text)));
    }
    let segments = path_segments(url);
    let first = segments.first().map(String::as_str).unwrap_or_default();
    let second = segments.get(1).map(String::as_str).unwrap_or_default();
    let (result, used) = if let Some(handle) = first.strip_prefix('@') {
        (
            is_handle(handle).then(|| ChannelRef::Handle(handle.to_string())),
            1,
        )
    } else {
        let r = match first {
            "channel" => is_channel_id(second).then(|| ChannelRef::Id(second.to_string())),
            "user" => is_legacy_name(second).then(|| ChannelRef::Username(second.to_string())),
            "c" => is_legacy_name(second).then(|| ChannelRef::Custom(second.to_string())),
            _ => None,
        };
        (r, 2)
    };
    let channel =
        result.ok_or_else(|| format!("{:?} is a YouTube URL but not a channel's", short(text)))?;
    let rest = segments.get(used..).unwrap_or_default();
    let tab = (!rest.is_empty()).then(|| rest.join("/").to_ascii_lowercase());
    Ok((channel, tab))
}

/// The first 60 characters of `s`, for messages.
pub(crate) fn short(s: &str) -> String {
    prismq_domain::task::truncate_for_message(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn video_forms() {
        for text in [
            "dQw4w9WgXcQ",
            " dQw4w9WgXcQ ",
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            "https://www.youtube.com/watch?feature=share&v=dQw4w9WgXcQ&t=10s",
            "http://youtube.com/watch?v=dQw4w9WgXcQ",
            "https://m.youtube.com/watch?v=dQw4w9WgXcQ",
            "https://music.youtube.com/watch?v=dQw4w9WgXcQ",
            "youtube.com/watch?v=dQw4w9WgXcQ",
            "https://youtu.be/dQw4w9WgXcQ",
            "https://youtu.be/dQw4w9WgXcQ?si=abc",
            "youtu.be/dQw4w9WgXcQ",
            "https://www.youtube.com/shorts/dQw4w9WgXcQ",
            "https://www.youtube.com/shorts/dQw4w9WgXcQ?feature=share",
            "https://www.youtube.com/embed/dQw4w9WgXcQ",
            "https://www.youtube.com/live/dQw4w9WgXcQ",
            "HTTPS://WWW.YOUTUBE.COM/watch?v=dQw4w9WgXcQ",
        ] {
            assert_eq!(
                parse_video(text).map(|v| v.as_str().to_string()),
                Ok("dQw4w9WgXcQ".to_string()),
                "{text}"
            );
        }
        assert_eq!(parse_video("-abcdefghij").unwrap().as_str(), "-abcdefghij");
    }

    #[test]
    fn bad_videos() {
        for text in [
            "",
            "dQw4w9WgXc",
            "dQw4w9WgXcQQ",
            "dQw4w9WgXc!",
            "https://www.youtube.com/watch?v=short",
            "https://www.youtube.com/watch",
            "https://www.youtube.com/@handle",
            "https://vimeo.com/123456789",
            "https://evil.example/watch?v=dQw4w9WgXcQ",
            "https://youtube.com.evil.example/watch?v=dQw4w9WgXcQ",
            "ftp://youtube.com/watch?v=dQw4w9WgXcQ",
            "--exec=rm",
        ] {
            assert!(parse_video(text).is_err(), "{text:?} accepted");
        }
    }

    #[test]
    fn channel_forms() {
        let h = |s: &str| ChannelRef::Handle(s.into());
        let id = ChannelRef::Id("UC_x5XG1OV2P6uZZ5FSM9Ttw".into());
        for (text, want) in [
            ("@GoogleDevelopers", h("GoogleDevelopers")),
            ("GoogleDevelopers", h("GoogleDevelopers")),
            (
                "https://www.youtube.com/@GoogleDevelopers",
                h("GoogleDevelopers"),
            ),
            (
                "https://www.youtube.com/@GoogleDevelopers/",
                h("GoogleDevelopers"),
            ),
            (
                "https://www.youtube.com/@GoogleDevelopers/videos",
                h("GoogleDevelopers"),
            ),
            (
                "https://www.youtube.com/@GoogleDevelopers/shorts",
                h("GoogleDevelopers"),
            ),
            ("youtube.com/@GoogleDevelopers", h("GoogleDevelopers")),
            ("https://m.youtube.com/@Google.Dev-1_x", h("Google.Dev-1_x")),
            ("UC_x5XG1OV2P6uZZ5FSM9Ttw", id.clone()),
            (
                "https://www.youtube.com/channel/UC_x5XG1OV2P6uZZ5FSM9Ttw",
                id.clone(),
            ),
            (
                "https://www.youtube.com/channel/UC_x5XG1OV2P6uZZ5FSM9Ttw/videos?x=1",
                id,
            ),
            (
                "https://www.youtube.com/user/GoogleDevelopers",
                ChannelRef::Username("GoogleDevelopers".into()),
            ),
            (
                "https://www.youtube.com/c/GoogleDevelopers",
                ChannelRef::Custom("GoogleDevelopers".into()),
            ),
        ] {
            assert_eq!(parse_channel(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn bad_channels() {
        for text in [
            "",
            "   ",
            "@",
            "@ab",
            "ab",
            "--exec=rm -rf /",
            "-handle",
            "@-handle",
            "@has space",
            "has space",
            "@a/b",
            "https://www.youtube.com/",
            "https://www.youtube.com/channel/UCshort",
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            "https://youtu.be/dQw4w9WgXcQ",
            "https://example.com/@GoogleDevelopers",
            "https://www.youtube.com/@",
            "file:///etc/passwd",
            "@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert!(parse_channel(text).is_err(), "{text:?} accepted");
        }
    }

    #[test]
    fn channel_urls_keep_their_tab() {
        let h = || ChannelRef::Handle("GoogleDevelopers".into());
        for (text, tab) in [
            ("@GoogleDevelopers", None),
            ("https://www.youtube.com/@GoogleDevelopers", None),
            ("https://www.youtube.com/@GoogleDevelopers/", None),
            (
                "https://www.youtube.com/@GoogleDevelopers/Shorts",
                Some("shorts"),
            ),
            (
                "https://www.youtube.com/@GoogleDevelopers/featured",
                Some("featured"),
            ),
            (
                "https://www.youtube.com/@GoogleDevelopers/videos/x",
                Some("videos/x"),
            ),
        ] {
            assert_eq!(
                parse_channel_and_tab(text),
                Ok((h(), tab.map(str::to_owned))),
                "{text}"
            );
        }
        assert_eq!(
            parse_channel_and_tab(
                "https://www.youtube.com/channel/UC_x5XG1OV2P6uZZ5FSM9Ttw/streams?x=1"
            ),
            Ok((
                ChannelRef::Id("UC_x5XG1OV2P6uZZ5FSM9Ttw".into()),
                Some("streams".into())
            ))
        );
    }

    #[test]
    fn tab_urls() {
        assert_eq!(
            playlist_url("UU_x5XG1OV2P6uZZ5FSM9Ttw"),
            "https://www.youtube.com/playlist?list=UU_x5XG1OV2P6uZZ5FSM9Ttw"
        );
        assert_eq!(
            ChannelRef::Handle("x_y".into()).tab_url("videos"),
            "https://www.youtube.com/@x_y/videos"
        );
        assert_eq!(
            ChannelRef::Id("UC_x5XG1OV2P6uZZ5FSM9Ttw".into()).tab_url("shorts"),
            "https://www.youtube.com/channel/UC_x5XG1OV2P6uZZ5FSM9Ttw/shorts"
        );
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC{0,80}") {
            let _ = parse_video(&s);
            let _ = parse_channel(&s);
        }

        #[test]
        fn url_shaped_inputs_never_panic(
            host in "(www\\.|m\\.)?(youtube\\.com|youtu\\.be)",
            path in "[/@a-zA-Z0-9_?=&.%-]{0,40}",
        ) {
            let _ = parse_video(&format!("https://{host}{path}"));
            let _ = parse_channel(&format!("https://{host}{path}"));
        }

        #[test]
        fn accepted_channels_never_look_like_options(s in "\\PC{0,40}") {
            if let Ok(c) = parse_channel(&s) {
                let text = match c {
                    ChannelRef::Id(x) | ChannelRef::Handle(x) | ChannelRef::Username(x) | ChannelRef::Custom(x) => x,
                };
                prop_assert!(!text.starts_with('-'));
            }
        }
    }
}
