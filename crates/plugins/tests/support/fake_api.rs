//! A stand-in for the YouTube Data API v3 on 127.0.0.1, built from the reference fixtures.
//!
//! - Routes `GET /youtube/v3/{channels,playlistItems,videos,search,videoCategories}` (and
//!   `videos:batchGetStats`, answered from the same videos in the reference's shape) and
//!   picks answers by query parameters, paging with opaque tokens that encode an offset
//!   (checked on return). Each channel has its uploads playlist `UU…` and the playlists of
//!   one kind, `UULF…` (long-form), `UUSH…` (Shorts) and `UULV…` (past streams); a kind the
//!   channel has none of answers 404 `playlistNotFound`. The channel of
//!   `tests/fixtures/channel_tabs.json` (`@TabsDemo`) is served from that shared model, as
//!   the fake yt-dlp serves it. `videoCategories` answers every region with the US list of the
//!   reference (32 categories, 15 assignable; no `pageInfo`, as the real answer has none).
//! - Rejects malformed requests as the API does: a missing `part`, `maxResults` over 50,
//!   more than 50 ids, `maxResults` with `id`, more than one channel filter, and a
//!   `videoCategories` request with neither or both of `regionCode` and `id` or a part
//!   other than `snippet`.
//! - Magic keys choose error answers: `QUOTA`, `SEARCHCAP`, `THROTTLE`, `BAD`, `LEGACYBAD`,
//!   `DISABLED`, `FORBIDDEN`, `FLAKY` (one 500, then normal), `SLOW` (3 s delay), `HUGE`
//!   (a 2 MB body), `QUOTAAFTER<n>` / `FAILAFTER<n>` (the first n requests answered, every
//!   later one the 403 `quotaExceeded` / the 500 `backendError`), `HANGAFTER<n>` (the first
//!   n answered, later ones held for a minute), `UNAVAILABLE<n>` (the first n requests
//!   answered 503 `backendError`, later ones normally), `HOSTILE…` (a 400 whose reason and
//!   location carry ESC, BEL, CR, LF, the request's own query string, key included, and
//!   5 MB of padding); no key gives the missing-key 403.
//! - Requests are counted per endpoint ([`counts`]) from what the server received.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use std::time::Duration;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/data_api/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The Google for Developers channel id (from the fixtures).
pub const GOOGLE_ID: &str = "UC_x5XG1OV2P6uZZ5FSM9Ttw";
/// A generated channel with 120 uploads.
pub const BIG_ID: &str = "UCbig120channelAAAAAAAAA";

/// The channel of `tests/fixtures/channel_tabs.json` (the fake yt-dlp serves it too).
pub const TABS_ID: &str = "UCtabsDemoChannelXXXXXXX";

struct Channel {
    id: String,
    handle: String,
    /// Playlist entries newest first; `None` is a deleted video's entry.
    uploads: Vec<Option<String>>,
    /// What each upload is: `long`, `short` or `stream` (absent: long). The `UULF…`,
    /// `UUSH…` and `UULV…` playlists hold the uploads of one kind; one without any
    /// answers 404 `playlistNotFound`, as YouTube does.
    kinds: HashMap<String, &'static str>,
    uploads_missing: bool,
}

/// The shared channel model (`tests/fixtures/channel_tabs.json` of the workspace).
pub fn channel_tabs_model() -> Value {
    let path = format!(
        "{}/../../tests/fixtures/channel_tabs.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `PT#H#M#S` for `secs`.
fn iso_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = "PT".to_string();
    if h > 0 {
        out.push_str(&format!("{h}H"));
    }
    if m > 0 {
        out.push_str(&format!("{m}M"));
    }
    if s > 0 || out == "PT" {
        out.push_str(&format!("{s}S"));
    }
    out
}

/// The fake API's data.
pub struct FakeApi {
    channels: Vec<Channel>,
    videos: HashMap<String, Value>,
    chart: Vec<String>,
    search: Vec<Value>,
    flaky_tripped: AtomicBool,
    /// Requests made with a `QUOTAAFTER<n>` or `FAILAFTER<n>` key so far.
    quota_after_seen: AtomicUsize,
}

fn generated_id(prefix: &str, n: usize) -> String {
    format!("{prefix}{n:07}")
}

impl FakeApi {
    fn build() -> Self {
        let by_id = fixture("videos_by_id");
        let template = by_id["items"][0].clone();
        let mut videos: HashMap<String, Value> = HashMap::new();
        for item in by_id["items"].as_array().unwrap() {
            videos.insert(item["id"].as_str().unwrap().to_string(), item.clone());
        }
        let make = |id: &str, n: usize, title: &str| -> Value {
            let mut v = template.clone();
            v["id"] = json!(id);
            v["snippet"]["title"] = json!(title);
            v["snippet"]["localized"]["title"] = json!(title);
            let day = 18 - (n / 24) as i64;
            v["snippet"]["publishedAt"] = json!(format!(
                "2026-11-{:02}T{:02}:00:00Z",
                day.max(1),
                23 - n % 24
            ));
            v["statistics"]["viewCount"] = json!(format!("{}", 1000 + n * 7));
            v
        };
        // Google: the two fixture videos, a deleted entry, then eight generated ones.
        let mut google: Vec<Option<String>> =
            vec![Some("Kq9MZLmFMHQ".into()), Some("rTw3pGhYsLM".into()), None];
        for n in 0..8 {
            let id = generated_id("goog", n);
            videos.insert(id.clone(), make(&id, n + 2, &format!("Google video {n}")));
            google.push(Some(id));
        }
        // Big: 120 uploads, one hour apart, newest first.
        let mut big = Vec::new();
        for n in 0..120 {
            let id = generated_id("bigc", n);
            let mut v = make(&id, n, &format!("Big video {n}"));
            let hours = n as i64;
            let ts: jiff::Timestamp = "2026-11-18T12:00:00Z".parse().unwrap();
            let published = ts
                .checked_sub(jiff::SignedDuration::from_hours(hours * 24))
                .unwrap();
            v["snippet"]["publishedAt"] = json!(published.to_string());
            v["snippet"]["channelId"] = json!(BIG_ID);
            videos.insert(id.clone(), v);
            big.push(Some(id));
        }
        // Chart: the fixture item first, then 150 generated ones (151 in all, as observed).
        let chart_page = fixture("videos_chart_page");
        let first = chart_page["items"][0].clone();
        let mut chart = vec![first["id"].as_str().unwrap().to_string()];
        videos.insert(chart[0].clone(), first);
        for n in 0..150 {
            let id = generated_id("chrt", n);
            videos.insert(id.clone(), make(&id, n, &format!("Chart video {n}")));
            chart.push(id);
        }
        // Search: the three fixture results, then 117 generated ones.
        let search_page = fixture("search_surf_trip");
        let mut search: Vec<Value> = search_page["items"].as_array().unwrap().clone();
        for (n, r) in search.clone().iter().enumerate() {
            let id = r["id"]["videoId"].as_str().unwrap();
            // videos.list titles are not HTML-escaped.
            let title = r["snippet"]["title"]
                .as_str()
                .unwrap()
                .replace("&amp;", "&")
                .replace("&#39;", "'");
            videos.insert(id.to_string(), make(id, n, &title));
        }
        for n in 0..117 {
            let id = generated_id("srch", n);
            let mut r = search[0].clone();
            r["id"]["videoId"] = json!(id);
            r["snippet"]["title"] = json!(format!("Surf &amp; turf {n}"));
            videos.insert(id.clone(), make(&id, n, &format!("Surf & turf {n}")));
            search.push(r);
        }
        // Tabs Demo: long-form videos, Shorts and past streams mixed (the shared model).
        let model = channel_tabs_model();
        let mut tabs = Vec::new();
        let mut tab_kinds = HashMap::new();
        for u in model["uploads"].as_array().unwrap() {
            let id = u["id"].as_str().unwrap().to_string();
            let mut v = template.clone();
            v["id"] = json!(id);
            v["snippet"]["title"] = u["title"].clone();
            v["snippet"]["localized"]["title"] = u["title"].clone();
            v["snippet"]["publishedAt"] = u["published"].clone();
            v["snippet"]["channelId"] = model["channel_id"].clone();
            v["snippet"]["channelTitle"] = model["title"].clone();
            // A past broadcast reads "none" like any other upload.
            v["snippet"]["liveBroadcastContent"] = json!("none");
            v["contentDetails"]["duration"] = json!(iso_duration(u["duration"].as_u64().unwrap()));
            v["statistics"]["viewCount"] = json!(u["views"].to_string());
            videos.insert(id.clone(), v);
            let kind = match u["kind"].as_str().unwrap() {
                "short" => "short",
                "stream" => "stream",
                _ => "long",
            };
            tab_kinds.insert(id.clone(), kind);
            tabs.push(Some(id));
        }
        let google_kinds = HashMap::from([("rTw3pGhYsLM".to_string(), "short")]);
        FakeApi {
            channels: vec![
                Channel {
                    id: GOOGLE_ID.into(),
                    handle: "GoogleDevelopers".into(),
                    uploads: google,
                    kinds: google_kinds,
                    uploads_missing: false,
                },
                Channel {
                    id: BIG_ID.into(),
                    handle: "Big120".into(),
                    uploads: big,
                    kinds: HashMap::new(),
                    uploads_missing: false,
                },
                Channel {
                    id: "UCghostAAAAAAAAAAAAAAAAA".into(),
                    handle: "GhostChannel".into(),
                    uploads: Vec::new(),
                    kinds: HashMap::new(),
                    uploads_missing: true,
                },
                Channel {
                    id: model["channel_id"].as_str().unwrap().into(),
                    handle: model["handle"].as_str().unwrap().into(),
                    uploads: tabs,
                    kinds: tab_kinds,
                    uploads_missing: false,
                },
            ],
            videos,
            chart,
            search,
            flaky_tripped: AtomicBool::new(false),
            quota_after_seen: AtomicUsize::new(0),
        }
    }

    /// Starts the server; the base URL is `{uri}/youtube/v3/`.
    pub async fn start() -> (MockServer, String) {
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(FakeApi::build())
            .mount(&server)
            .await;
        let base = format!("{}/youtube/v3/", server.uri());
        (server, base)
    }
}

/// Requests received per endpoint (`channels`, `videos`, …).
pub async fn counts(server: &MockServer) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for r in server.received_requests().await.unwrap_or_default() {
        let name = r.url.path().trim_start_matches("/youtube/v3/").to_string();
        *m.entry(name).or_default() += 1;
    }
    m
}

/// All requests' query maps, in order, for one endpoint.
pub async fn queries(server: &MockServer, endpoint: &str) -> Vec<HashMap<String, String>> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == format!("/youtube/v3/{endpoint}"))
        .map(|r| r.url.query_pairs().into_owned().collect())
        .collect()
}

fn error(name: &str) -> ResponseTemplate {
    let body = fixture(name);
    let code = body["error"]["code"].as_u64().unwrap_or(400) as u16;
    json_response(code, body)
}

fn json_response(code: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(code)
        .insert_header("content-type", "application/json; charset=UTF-8")
        .set_body_string(serde_json::to_string_pretty(&body).unwrap())
}

/// Offsets ↔ tokens: the protobuf tokens the API uses for chart and search offsets where
/// known, an opaque form otherwise.
fn token_for(offset: usize) -> String {
    match offset {
        3 => "CAMQAA".into(),
        5 => "CAUQAA".into(),
        10 => "CAoQAA".into(),
        25 => "CBkQAA".into(),
        50 => "CDIQAA".into(),
        100 => "CGQQAA".into(),
        150 => "CJYBEAA".into(),
        n => format!("EAAaB{n}PT"),
    }
}

fn offset_of(token: &str) -> Option<usize> {
    (0..1000).find(|&n| token_for(n) == token)
}

fn bad_request() -> ResponseTemplate {
    error("error_bad_request_generic")
}

impl FakeApi {
    #[allow(clippy::result_large_err)] // a test server: the error is the answer to send
    fn page<T: Clone>(
        &self,
        all: &[T],
        q: &HashMap<String, String>,
        default_max: usize,
    ) -> Result<(Vec<T>, Option<String>), ResponseTemplate> {
        let max = match q.get("maxResults") {
            Some(m) => m
                .parse::<usize>()
                .map_err(|_| error("error_invalid_parameter"))?,
            None => default_max,
        };
        if max > 50 {
            return Err(error("error_invalid_parameter"));
        }
        let offset = match q.get("pageToken") {
            Some(t) => offset_of(t).ok_or_else(bad_request)?,
            None => 0,
        };
        let end = (offset + max).min(all.len());
        let items = all.get(offset..end).unwrap_or_default().to_vec();
        let next = (end < all.len()).then(|| token_for(end));
        Ok((items, next))
    }

    fn channels(&self, q: &HashMap<String, String>) -> ResponseTemplate {
        let filters: Vec<&str> = [
            "id",
            "forHandle",
            "forUsername",
            "mine",
            "categoryId",
            "managedByMe",
        ]
        .into_iter()
        .filter(|f| q.contains_key(*f))
        .collect();
        if filters.len() != 1 {
            return bad_request();
        }
        let found = self.channels.iter().find(|c| {
            q.get("id").is_some_and(|id| *id == c.id)
                || q.get("forHandle")
                    .is_some_and(|h| h.trim_start_matches('@').eq_ignore_ascii_case(&c.handle))
        });
        if q.get("forHandle").map(String::as_str) == Some("@NotFoundErr") {
            return error("error_channel_not_found");
        }
        let Some(c) = found else {
            return json_response(200, fixture("channels_empty"));
        };
        let mut body = fixture("channels_google_developers");
        let item = &mut body["items"][0];
        item["id"] = json!(c.id);
        item["contentDetails"]["relatedPlaylists"]["uploads"] = json!(format!("UU{}", &c.id[2..]));
        json_response(200, body)
    }

    fn playlist_items(&self, q: &HashMap<String, String>) -> ResponseTemplate {
        let Some(pid) = q.get("playlistId") else {
            return bad_request();
        };
        // UU… every upload; UULF… / UUSH… / UULV… the long-form ones, Shorts, past streams.
        let found = self.channels.iter().find_map(|c| {
            let suffix = &c.id[2..];
            [
                ("UU", None),
                ("UULF", Some("long")),
                ("UUSH", Some("short")),
                ("UULV", Some("stream")),
            ]
            .into_iter()
            .find(|(prefix, _)| *pid == format!("{prefix}{suffix}"))
            .map(|(_, kind)| (c, kind))
        });
        let Some((channel, kind)) = found else {
            return error("error_playlist_not_found");
        };
        if channel.uploads_missing {
            return error("error_playlist_not_found");
        }
        let entries: Vec<Option<String>> = match kind {
            None => channel.uploads.clone(),
            Some(kind) => channel
                .uploads
                .iter()
                .filter(|e| match e {
                    Some(id) => channel.kinds.get(id).copied().unwrap_or("long") == kind,
                    // A deleted entry stays in every playlist it was in: here, the long-form one.
                    None => kind == "long",
                })
                .cloned()
                .collect(),
        };
        if kind.is_some() && entries.iter().flatten().next().is_none() {
            return error("error_playlist_not_found");
        }
        let (page, next) = match self.page(&entries, q, 5) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let mut body = fixture("playlist_items_page");
        let template = body["items"][0].clone();
        let items: Vec<Value> = page
            .iter()
            .map(|entry| match entry {
                Some(id) => {
                    let mut it = template.clone();
                    let published = self.videos[id]["snippet"]["publishedAt"].clone();
                    it["snippet"]["resourceId"]["videoId"] = json!(id);
                    it["snippet"]["title"] = self.videos[id]["snippet"]["title"].clone();
                    it["contentDetails"]["videoId"] = json!(id);
                    it["contentDetails"]["videoPublishedAt"] = published;
                    it
                }
                None => {
                    // A deleted video: no publication time, no owner fields.
                    let mut it = template.clone();
                    it["snippet"]["title"] = json!("Deleted video");
                    it["snippet"]["description"] = json!("This video is unavailable.");
                    let snippet = it["snippet"].as_object_mut().unwrap();
                    snippet.remove("videoOwnerChannelTitle");
                    snippet.remove("videoOwnerChannelId");
                    it["snippet"]["resourceId"]["videoId"] = json!("dEl3t3dXXXX");
                    it["contentDetails"] = json!({"videoId": "dEl3t3dXXXX"});
                    it
                }
            })
            .collect();
        body["items"] = json!(items);
        body["pageInfo"]["totalResults"] = json!(entries.len());
        body["pageInfo"]["resultsPerPage"] = json!(page.len());
        set_next(&mut body, next);
        json_response(200, body)
    }

    fn videos_list(&self, q: &HashMap<String, String>) -> ResponseTemplate {
        if let Some(ids) = q.get("id") {
            if q.contains_key("maxResults") || q.contains_key("chart") {
                return bad_request();
            }
            let ids: Vec<&str> = ids.split(',').collect();
            if ids.len() > 50 {
                return bad_request();
            }
            let items: Vec<Value> = ids
                .iter()
                .filter_map(|id| self.videos.get(*id).cloned())
                .collect();
            let mut body = fixture("videos_by_id");
            body["pageInfo"] = json!({"totalResults": items.len(), "resultsPerPage": items.len()});
            body["items"] = json!(items);
            return json_response(200, body);
        }
        if q.get("chart").map(String::as_str) != Some("mostPopular") {
            return bad_request();
        }
        let region = q.get("regionCode").map(String::as_str).unwrap_or("US");
        let category = q.get("videoCategoryId").map(String::as_str).unwrap_or("0");
        match (region, category) {
            // Assignable categories without a chart (both documented status codes).
            (_, "29") => return error("error_video_chart_not_found"),
            (_, "19") => {
                let mut body = fixture("error_video_chart_not_found");
                body["error"]["code"] = json!(404);
                return json_response(404, body);
            }
            ("US", "0" | "10") => {}
            _ => {
                return json_response(
                    200,
                    json!({
                        "kind": "youtube#videoListResponse", "etag": "x", "items": [],
                        "pageInfo": {"totalResults": 0, "resultsPerPage": 0}
                    }),
                )
            }
        }
        let (page, next) = match self.page(&self.chart, q, 5) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let mut body = fixture("videos_chart_page");
        body["items"] = json!(page
            .iter()
            .map(|id| self.videos[id].clone())
            .collect::<Vec<_>>());
        body["pageInfo"] = json!({"totalResults": self.chart.len(), "resultsPerPage": page.len()});
        set_next(&mut body, next);
        json_response(200, body)
    }

    /// `videos:batchGetStats` (the reference's shape, `videos_batch_get_stats.json`): the
    /// same videos as `videos.list`, as statistics, publish time and duration only.
    fn batch_get_stats(&self, q: &HashMap<String, String>) -> ResponseTemplate {
        let Some(ids) = q.get("id") else {
            return bad_request();
        };
        let ids: Vec<&str> = ids.split(',').collect();
        if ids.len() > 50 || q.contains_key("maxResults") {
            return bad_request();
        }
        let mut body = fixture("videos_batch_get_stats");
        let template = body["items"][0].clone();
        let items: Vec<Value> = ids
            .iter()
            .filter_map(|id| self.videos.get(*id))
            .map(|v| {
                let mut s = template.clone();
                s["id"] = v["id"].clone();
                s["snippet"]["publishTime"] = v["snippet"]["publishedAt"].clone();
                s["statistics"] = v["statistics"].clone();
                s["contentDetails"]["duration"] = v["contentDetails"]["duration"].clone();
                s
            })
            .collect();
        body["items"] = json!(items);
        json_response(200, body)
    }

    fn search_list(&self, q: &HashMap<String, String>) -> ResponseTemplate {
        let video_filters = [
            "videoDuration",
            "videoCategoryId",
            "videoDefinition",
            "videoCaption",
        ];
        if video_filters.iter().any(|f| q.contains_key(*f))
            && q.get("type").map(String::as_str) != Some("video")
        {
            return bad_request();
        }
        if let Some(order) = q.get("order") {
            if ![
                "date",
                "rating",
                "relevance",
                "title",
                "videoCount",
                "viewCount",
            ]
            .contains(&order.as_str())
            {
                return error("error_invalid_parameter");
            }
        }
        let results: &[Value] = if q.get("q").map(String::as_str) == Some("surf trip") {
            &self.search
        } else {
            &[]
        };
        let (page, next) = match self.page(results, q, 5) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let mut body = fixture("search_surf_trip");
        body["items"] = json!(page);
        body["pageInfo"]["resultsPerPage"] = json!(page.len());
        body["regionCode"] = json!(q.get("regionCode").cloned().unwrap_or_else(|| "US".into()));
        set_next(&mut body, next);
        json_response(200, body)
    }
}

impl FakeApi {
    fn video_categories(&self, q: &HashMap<String, String>) -> ResponseTemplate {
        if let Some(part) = q
            .get("part")
            .and_then(|p| p.split(',').find(|p| p.trim() != "snippet"))
        {
            let mut body = fixture("error_unknown_part");
            body["error"]["message"] = json!(format!("'{part}'"));
            body["error"]["errors"][0]["message"] = json!(format!("'{part}'"));
            return json_response(400, body);
        }
        // Exactly one filter: regionCode or id.
        if q.contains_key("regionCode") == q.contains_key("id") {
            return bad_request();
        }
        let mut body = fixture("video_categories_us");
        if let Some(ids) = q.get("id") {
            let wanted: Vec<&str> = ids.split(',').collect();
            let items: Vec<Value> = body["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| wanted.contains(&c["id"].as_str().unwrap()))
                .cloned()
                .collect();
            body["items"] = json!(items);
        }
        json_response(200, body)
    }
}

fn set_next(body: &mut Value, next: Option<String>) {
    let obj = body.as_object_mut().unwrap();
    match next {
        Some(t) => {
            obj.insert("nextPageToken".into(), json!(t));
        }
        None => {
            obj.remove("nextPageToken");
        }
    }
}

impl Respond for FakeApi {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
        let endpoint = req
            .url
            .path()
            .trim_start_matches("/youtube/v3/")
            .to_string();
        match q.get("key").map(String::as_str) {
            None => return error("error_missing_key"),
            Some("QUOTA") => return error("error_quota_exceeded"),
            Some("SEARCHCAP") if endpoint == "search" => return error("error_search_bucket_429"),
            Some("THROTTLE") => {
                return error("error_rate_limit_429").insert_header("retry-after", "120")
            }
            Some("THROTTLE403") => {
                let mut body = fixture("error_rate_limit_429");
                body["error"]["code"] = json!(403);
                body["error"]["errors"][0]["reason"] = json!("userRateLimitExceeded");
                let obj = body["error"].as_object_mut().unwrap();
                obj.remove("details");
                obj.remove("status");
                return json_response(403, body);
            }
            Some("BAD") => return error("error_api_key_invalid"),
            Some("LEGACYBAD") => return error("error_key_invalid_legacy"),
            Some("DISABLED") => return error("error_access_not_configured"),
            Some("FORBIDDEN") => return error("error_forbidden"),
            Some("FLAKY") if !self.flaky_tripped.swap(true, Ordering::SeqCst) => {
                return error("error_backend")
            }
            Some("SLOW") => {
                return json_response(200, fixture("channels_empty"))
                    .set_delay(Duration::from_secs(3))
            }
            Some(k) if k.starts_with("QUOTAAFTER") || k.starts_with("FAILAFTER") => {
                let (answer, n) = match k.strip_prefix("QUOTAAFTER") {
                    Some(n) => ("error_quota_exceeded", n),
                    None => ("error_backend", &k["FAILAFTER".len()..]),
                };
                let allowed: usize = n.parse().unwrap();
                if self.quota_after_seen.fetch_add(1, Ordering::SeqCst) >= allowed {
                    return error(answer);
                }
            }
            Some(k) if k.starts_with("UNAVAILABLE") => {
                let failing: usize = k["UNAVAILABLE".len()..].parse().unwrap();
                if self.quota_after_seen.fetch_add(1, Ordering::SeqCst) < failing {
                    let mut body = fixture("error_backend");
                    body["error"]["code"] = json!(503);
                    return json_response(503, body);
                }
            }
            Some(k) if k.starts_with("HOSTILE") => {
                let echo = req.url.query().unwrap_or_default();
                let padding = "A".repeat(5 << 20);
                let reason = format!(
                    "\u{1b}[2J\u{1b}[1;31mbadRequest\u{7}\r\nerror: forged line from the server\r\n{echo}\n{padding}"
                );
                let location = format!("\u{1b}]0;owned\u{7}\rparam\n{echo}{}", "B".repeat(100_000));
                let body = json!({"error": {
                    "code": 400,
                    "message": format!("echo: {echo}"),
                    "errors": [{"message": format!("echo: {echo}"), "domain": "global",
                                "reason": reason, "location": location,
                                "locationType": "parameter"}],
                }});
                return ResponseTemplate::new(400)
                    .insert_header("content-type", "application/json; charset=UTF-8")
                    .set_body_string(body.to_string());
            }
            Some(k) if k.starts_with("HANGAFTER") => {
                let allowed: usize = k["HANGAFTER".len()..].parse().unwrap();
                if self.quota_after_seen.fetch_add(1, Ordering::SeqCst) >= allowed {
                    return json_response(200, fixture("channels_empty"))
                        .set_delay(Duration::from_secs(60));
                }
            }
            Some("HUGE") => {
                let mut body = fixture("videos_by_id");
                body["items"][0]["snippet"]["description"] = json!("x".repeat(2_000_000));
                return json_response(200, body);
            }
            _ => {}
        }
        if !q.contains_key("part") {
            return bad_request();
        }
        match endpoint.as_str() {
            "channels" => self.channels(&q),
            "playlistItems" => self.playlist_items(&q),
            "videos" => self.videos_list(&q),
            "videos:batchGetStats" => self.batch_get_stats(&q),
            "search" => self.search_list(&q),
            "videoCategories" => self.video_categories(&q),
            _ => ResponseTemplate::new(404).set_body_string("Not Found"),
        }
    }
}
