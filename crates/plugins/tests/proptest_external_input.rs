//! Never panic on what comes from outside: arbitrary bytes and arbitrary JSON shaped like
//! the Data API's pages, its error bodies and Retry-After headers, and yt-dlp's `-j` and
//! `-J` output go through the same decoding the sources use, down to the stored item.
//! Parameters, ids and ISO 8601 durations already have property tests in the crate's
//! modules; these cover the decoders that had none.

use prismq_plugins::youtube::source::api_error::classify;
use prismq_plugins::youtube::source::api_types::{
    parse_time, unescape_html, ApiChannel, ApiPlaylistItem, ApiSearchResult, ApiVideo, ListResponse,
};
use prismq_plugins::youtube::source::data_api::parse_retry_after;
use prismq_plugins::youtube::source::ytdlp::parse::{FlatPlaylist, FullVideo};
use prismq_plugins::youtube::source::Bucket;
use prismq_plugins::youtube::video::engagement_score;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Any JSON value, a few levels deep, with the numbers that break naive code.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::String),
        "(PT?[0-9]{0,6}[HMSDW]?){0,3}".prop_map(Value::String),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{0,12}Z?".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object with the API's field names holding arbitrary values.
fn api_shaped(fields: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(fields), arb_json()), 0..8).prop_map(|kv| {
        let mut m = Map::new();
        for (k, v) in kv {
            m.insert(k.to_owned(), v);
        }
        Value::Object(m)
    })
}

const VIDEO_FIELDS: &[&str] = &[
    "id",
    "kind",
    "etag",
    "snippet",
    "statistics",
    "contentDetails",
];
const SNIPPET_FIELDS: &[&str] = &[
    "title",
    "description",
    "tags",
    "channelTitle",
    "channelId",
    "publishedAt",
    "categoryId",
    "liveBroadcastContent",
    "thumbnails",
];
const YTDLP_FIELDS: &[&str] = &[
    "id",
    "title",
    "description",
    "tags",
    "channel",
    "uploader",
    "channel_id",
    "timestamp",
    "upload_date",
    "duration",
    "view_count",
    "like_count",
    "comment_count",
    "categories",
    "live_status",
    "media_type",
    "thumbnail",
    "original_url",
    "entries",
    "url",
];

fn decode_all_pages(bytes: &[u8]) {
    if let Ok(p) = serde_json::from_slice::<ListResponse<ApiVideo>>(bytes) {
        for v in p.items {
            let video = v.into_video();
            let _ = engagement_score(&video);
            let _ = video.url();
            let _ = video.into_item("youtube_api", Map::new());
        }
    }
    if let Ok(p) = serde_json::from_slice::<ListResponse<ApiSearchResult>>(bytes) {
        for r in p.items {
            let _ = r.video_id();
            let _ = r.title();
        }
    }
    let _ = serde_json::from_slice::<ListResponse<ApiPlaylistItem>>(bytes);
    let _ = serde_json::from_slice::<ListResponse<ApiChannel>>(bytes);
}

fn decode_ytdlp(bytes: &[u8]) {
    for line in String::from_utf8_lossy(bytes).lines() {
        if let Ok(v) = serde_json::from_str::<FullVideo>(line) {
            if let Some(video) = v.into_video() {
                let _ = engagement_score(&video);
                let _ = video.into_item("youtube_channel", Map::new());
            }
        }
    }
    let _ = serde_json::from_slice::<FlatPlaylist>(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn data_api_pages_of_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        decode_all_pages(&bytes);
    }

    #[test]
    fn data_api_pages_of_api_shaped_json(
        items in prop::collection::vec(
            (api_shaped(VIDEO_FIELDS), api_shaped(SNIPPET_FIELDS), arb_json()),
            0..4,
        ),
        token in arb_json(),
    ) {
        let items: Vec<Value> = items
            .into_iter()
            .map(|(mut v, snippet, stats)| {
                if let Value::Object(m) = &mut v {
                    m.entry("id").or_insert_with(|| json!("dQw4w9WgXcQ"));
                    m.insert("snippet".into(), snippet);
                    m.insert("statistics".into(), stats);
                }
                v
            })
            .collect();
        let page = json!({"items": items, "nextPageToken": token});
        decode_all_pages(page.to_string().as_bytes());
    }

    #[test]
    fn data_api_error_bodies(
        status in 0u16..1000,
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..256),
            arb_json().prop_map(|v| json!({"error": v}).to_string().into_bytes()),
            (arb_json(), "\\PC{0,20}").prop_map(|(v, reason)| json!({
                "error": {"code": v, "errors": [{"reason": reason, "domain": v}], "message": reason}
            }).to_string().into_bytes()),
        ],
        search in any::<bool>(),
        retry in any::<bool>(),
    ) {
        let bucket = if search { Bucket::Search } else { Bucket::General };
        let at = retry.then(|| "2026-11-20T12:00:00Z".parse().unwrap());
        let _ = classify(status, &body, bucket, at);
    }

    #[test]
    fn retry_after_and_times(text in "\\PC{0,40}", secs in any::<i64>()) {
        let now = "2026-11-20T12:00:00Z".parse().unwrap();
        let _ = parse_retry_after(&text, now);
        let _ = parse_retry_after(&secs.to_string(), now);
        let _ = parse_retry_after(&format!("{}", secs.unsigned_abs()), now);
        let _ = parse_time(Some(&text));
        let _ = unescape_html(&text);
    }

    #[test]
    fn ytdlp_output_of_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        decode_ytdlp(&bytes);
    }

    #[test]
    fn ytdlp_json_of_any_shape(objects in prop::collection::vec(api_shaped(YTDLP_FIELDS), 0..4)) {
        let text: Vec<String> = objects.iter().map(Value::to_string).collect();
        decode_ytdlp(text.join("\n").as_bytes());
        let listing = json!({"entries": objects});
        decode_ytdlp(listing.to_string().as_bytes());
    }
}
