//! The YouTube Data API v3 adapter: a reqwest (rustls) client with a configurable base URL,
//! request timeout and response-size cap, charging the quota ledger before every request,
//! and the [`VideoSource`] operations built on `channels.list`, `playlistItems.list`,
//! `videos.list`, `search.list` and `videoCategories.list`.
//!
//! Paged operations fetch details as soon as a batch of ids is ready (a playlist or search
//! page, then its `videos.list` batch, then the next page), so a quota or error that stops
//! one midway returns the videos of the batches already fetched in [`Stopped::partial`].

use async_trait::async_trait;
use prismq_domain::text::{self, DETAIL_MAX_CHARS};
use prismq_domain::{CancelSignal, Timestamp};
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::Duration;
use url::Url;

use super::api_error::{classify, Classified};
use super::api_types::{
    parse_time, ApiChannel, ApiPlaylistItem, ApiSearchResult, ApiVideo, ApiVideoCategory,
    ApiVideoStats, ListResponse,
};
use super::quota::{Cost, QuotaGate};
use super::redact::redact_key;
use super::retry::RequestRetry;
use super::{
    CategoryList, ChannelQuery, ChartQuery, Fetched, SearchQuery, SourceCall, SourceError, Stopped,
    VideoCategory, VideoSource,
};
use crate::config::ApiKey;
use crate::youtube::ids::{is_video_id, ChannelRef, VideoId};
use crate::youtube::params::{ChannelTab, DurationFilter};
use crate::youtube::video::{Video, MAX_FIELD_CHARS};

/// The most ids `videos.list` takes, and the largest page any list method returns.
pub const MAX_PAGE: usize = 50;

/// The methods the client calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Method {
    /// `channels.list`.
    Channels,
    /// `playlistItems.list`.
    PlaylistItems,
    /// `videos.list`.
    Videos,
    /// `search.list`.
    Search,
    /// `videoCategories.list`.
    VideoCategories,
    /// `videos:batchGetStats`.
    BatchGetStats,
}

impl Method {
    fn path(self) -> &'static str {
        match self {
            Method::Channels => "channels",
            Method::PlaylistItems => "playlistItems",
            Method::Videos => "videos",
            Method::Search => "search",
            Method::VideoCategories => "videoCategories",
            Method::BatchGetStats => "videos:batchGetStats",
        }
    }
}

/// Settings of the client.
#[derive(Debug, Clone)]
pub struct DataApiSettings {
    /// Base URL ending in `/youtube/v3/`.
    pub base_url: Url,
    /// The API key.
    pub api_key: ApiKey,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Largest response body accepted, in bytes.
    pub max_response_bytes: u64,
    /// How a request that failed transiently is tried again within the attempt.
    pub retry: RequestRetry,
}

/// The Data API client and [`VideoSource`].
#[derive(Debug)]
pub struct DataApiSource {
    http: reqwest::Client,
    settings: DataApiSettings,
    quota: QuotaGate,
}

/// The result of one request: a page, or a chart that does not exist.
enum Answer<T> {
    Page(T),
    ChartUnavailable,
}

/// Pages ids out of a playlist or a search, one request at a time.
#[derive(Debug)]
struct IdPager {
    kind: PagerKind,
    query: Vec<(&'static str, String)>,
    token: Option<String>,
    done: bool,
}

#[derive(Debug, Clone, Copy)]
enum PagerKind {
    Playlist { published_after: Option<Timestamp> },
    Search,
}

/// Counts requests and units for the task summary.
#[derive(Debug, Default)]
struct Tally(BTreeMap<String, u64>);

impl Tally {
    fn request(&mut self, method: Method, cost: Cost) {
        *self
            .0
            .entry(format!("requests.{}", method.path()))
            .or_default() += 1;
        *self
            .0
            .entry(format!("quota_units.{}", cost.bucket.ledger_name()))
            .or_default() += cost.units;
    }
}

impl DataApiSource {
    /// A client with `settings`, charging `quota`.
    ///
    /// # Errors
    /// A message when the HTTP client cannot be built (no TLS roots, …).
    pub fn new(mut settings: DataApiSettings, quota: QuotaGate) -> Result<Self, String> {
        if !settings.base_url.path().ends_with('/') {
            let path = format!("{}/", settings.base_url.path());
            settings.base_url.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("prismq/", env!("CARGO_PKG_VERSION")))
            // The key is in the URL, and the Data API never redirects: a redirect is an
            // error (`Redirected`), never followed, to this origin or any other.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(DataApiSource {
            http,
            settings,
            quota,
        })
    }

    fn cost(&self, method: Method) -> Cost {
        let c = self.quota.costs();
        match method {
            Method::Channels => c.channels,
            Method::PlaylistItems => c.playlist_items,
            Method::Videos => c.videos,
            Method::Search => c.search,
            Method::VideoCategories => c.video_categories,
            Method::BatchGetStats => c.batch_get_stats,
        }
    }

    /// One GET: charge, send, read at most the cap, classify; a transient failure is tried
    /// again as [`DataApiSettings::retry`] says (each try charged and counted, as it is a
    /// request). Every error's text is made safe and rid of the key before it leaves.
    async fn get<T: DeserializeOwned>(
        &self,
        method: Method,
        query: &[(&str, String)],
        tally: &mut Tally,
        cancel: &CancelSignal,
    ) -> Result<Answer<T>, SourceError> {
        let key = self.settings.api_key.expose();
        self.get_once_retried(method, query, tally, cancel)
            .await
            .map_err(|e| e.map_text(|t| text::one_line(&redact_key(t, key), DETAIL_MAX_CHARS)))
    }

    async fn get_once_retried<T: DeserializeOwned>(
        &self,
        method: Method,
        query: &[(&str, String)],
        tally: &mut Tally,
        cancel: &CancelSignal,
    ) -> Result<Answer<T>, SourceError> {
        let mut tried = 0;
        loop {
            tried += 1;
            let e = match self.get_once(method, query, tally, cancel).await {
                Ok(answer) => return Ok(answer),
                Err(e) => e,
            };
            let Some(wait) = self.settings.retry.delay(&e, tried, self.quota.now()) else {
                return Err(e);
            };
            tracing::debug!(
                method = method.path(),
                tried,
                wait_ms = wait.as_millis() as u64,
                error = %text::one_line(&redact_key(&e.to_string(), self.settings.api_key.expose()), DETAIL_MAX_CHARS),
                "transient failure; trying the request again"
            );
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = cancel.cancelled() => return Err(SourceError::Cancelled),
            }
        }
    }

    /// One try of one GET: charge, send, read at most the cap, classify.
    async fn get_once<T: DeserializeOwned>(
        &self,
        method: Method,
        query: &[(&str, String)],
        tally: &mut Tally,
        cancel: &CancelSignal,
    ) -> Result<Answer<T>, SourceError> {
        if cancel.is_cancelled() {
            return Err(SourceError::Cancelled);
        }
        let cost = self.cost(method);
        self.quota.charge(cost).await?;
        tally.request(method, cost);
        let mut url = self
            .settings
            .base_url
            // `./` keeps `videos:batchGetStats` a path, not a URL of scheme `videos`.
            .join(&format!("./{}", method.path()))
            .map_err(|e| SourceError::Decode(format!("bad base URL: {e}")))?;
        url.query_pairs_mut()
            .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())))
            .append_pair("key", self.settings.api_key.expose());
        let exchange = self.exchange(url, cost);
        tokio::select! {
            r = exchange => {
                match r? {
                    Ok(bytes) => serde_json::from_slice(&bytes)
                        .map(Answer::Page)
                        .map_err(|e| SourceError::Decode(e.to_string())),
                    Err(Classified::ChartUnavailable) => Ok(Answer::ChartUnavailable),
                    Err(Classified::QuotaExhausted(bucket)) => Err(self.quota.exhausted(bucket).await),
                    Err(Classified::Error(e)) => Err(e),
                }
            }
            () = cancel.cancelled() => Err(SourceError::Cancelled),
        }
    }

    /// Sends and reads the body; `Ok(Err(_))` is a classified API error answer.
    async fn exchange(
        &self,
        url: Url,
        cost: Cost,
    ) -> Result<Result<Vec<u8>, Classified>, SourceError> {
        let mut resp = self.http.get(url).send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let retry_at = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, self.quota.now()));
        let limit = self.settings.max_response_bytes;
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(SourceError::TooLarge { limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(SourceError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        if (200..300).contains(&status) {
            Ok(Ok(body))
        } else if (300..400).contains(&status) {
            Err(SourceError::Redirected { status })
        } else {
            Ok(Err(classify(status, &body, cost.bucket, retry_at)))
        }
    }

    async fn page<T: DeserializeOwned>(
        &self,
        method: Method,
        query: &[(&str, String)],
        tally: &mut Tally,
        cancel: &CancelSignal,
    ) -> Result<ListResponse<T>, SourceError> {
        match self.get(method, query, tally, cancel).await? {
            Answer::Page(p) => Ok(p),
            // Only chart requests can be answered so; elsewhere it is an unexpected refusal.
            Answer::ChartUnavailable => Err(SourceError::BadRequest {
                status: 400,
                reason: "videoChartNotFound".into(),
                location: None,
            }),
        }
    }

    /// Details of up to 50 ids, in the order given; ids YouTube does not return are left out.
    async fn details(
        &self,
        ids: &[String],
        tally: &mut Tally,
        cancel: &CancelSignal,
    ) -> Result<Vec<Video>, SourceError> {
        debug_assert!(ids.len() <= MAX_PAGE);
        let query = [
            ("part", "snippet,statistics,contentDetails".to_string()),
            ("id", ids.join(",")),
        ];
        let page: ListResponse<ApiVideo> = self.page(Method::Videos, &query, tally, cancel).await?;
        let mut by_id: BTreeMap<String, ApiVideo> =
            page.items.into_iter().map(|v| (v.id.clone(), v)).collect();
        Ok(ids
            .iter()
            .filter_map(|id| by_id.remove(id))
            .map(ApiVideo::into_video)
            .collect())
    }

    /// Fetches details into `videos` until `top_n` are collected, paging `pager` for
    /// further ids whenever fewer are pending than one batch (or than still needed). Details
    /// follow each page rather than all pages coming first, so when a request fails,
    /// `videos` holds every batch fetched before it.
    async fn collect(
        &self,
        top_n: usize,
        pager: &mut IdPager,
        videos: &mut Vec<Video>,
        tally: &mut Tally,
        cancel: &CancelSignal,
    ) -> Result<(), SourceError> {
        let mut pending: VecDeque<String> = VecDeque::new();
        let mut seen: HashSet<String> = HashSet::new();
        while videos.len() < top_n {
            let need = top_n - videos.len();
            if pending.len() < need.min(MAX_PAGE) {
                if let Some(ids) = self.next_ids(pager, tally, cancel).await? {
                    pending.extend(ids.into_iter().filter(|id| seen.insert(id.clone())));
                    continue;
                }
            }
            if pending.is_empty() {
                break;
            }
            let take = need.min(MAX_PAGE).min(pending.len());
            let batch: Vec<String> = pending.drain(..take).collect();
            videos.extend(self.details(&batch, tally, cancel).await?);
        }
        Ok(())
    }

    /// `videoCategories.list?part=snippet&regionCode=…`: one request, never paged.
    async fn region_categories(
        &self,
        region: &str,
        tally: &mut Tally,
        cancel: &CancelSignal,
    ) -> Result<Vec<VideoCategory>, SourceError> {
        let query = [
            ("part", "snippet".to_string()),
            ("regionCode", region.to_string()),
        ];
        let page: ListResponse<ApiVideoCategory> = self
            .page(Method::VideoCategories, &query, tally, cancel)
            .await?;
        Ok(page
            .items
            .into_iter()
            .map(|c| {
                let snippet = c.snippet.unwrap_or_default();
                // Outside text: it reaches errors, summaries and items.
                VideoCategory {
                    id: text::one_line(&c.id, DETAIL_MAX_CHARS),
                    title: text::one_line(&snippet.title.unwrap_or_default(), MAX_FIELD_CHARS),
                    assignable: snippet.assignable,
                }
            })
            .collect())
    }

    /// The next page of ids, or `None` when the pager has no more.
    async fn next_ids(
        &self,
        pager: &mut IdPager,
        tally: &mut Tally,
        cancel: &CancelSignal,
    ) -> Result<Option<Vec<String>>, SourceError> {
        if pager.done {
            return Ok(None);
        }
        let mut q = pager.query.clone();
        if let Some(t) = pager.token.take() {
            q.push(("pageToken", t));
        }
        let (ids, next, stop) = match pager.kind {
            PagerKind::Playlist { published_after } => {
                let page: ListResponse<ApiPlaylistItem> =
                    self.page(Method::PlaylistItems, &q, tally, cancel).await?;
                let mut older_seen = false;
                let ids = page
                    .items
                    .into_iter()
                    .filter_map(|i| i.content_details)
                    .filter_map(|c| {
                        // Deleted and private entries carry no publication time: skipped.
                        let published = parse_time(c.video_published_at.as_deref())?;
                        if published_after.is_some_and(|cut| published < cut) {
                            older_seen = true;
                            return None;
                        }
                        c.video_id
                    })
                    .collect();
                // The uploads playlist is newest first: past the cutoff no later page helps.
                (ids, page.next_page_token, older_seen)
            }
            PagerKind::Search => {
                let page: ListResponse<ApiSearchResult> =
                    self.page(Method::Search, &q, tally, cancel).await?;
                let empty = page.items.is_empty();
                let ids = page
                    .items
                    .iter()
                    .filter_map(|r| r.video_id().map(str::to_string))
                    .collect();
                (ids, page.next_page_token, empty)
            }
        };
        pager.done = next.is_none() || stop;
        pager.token = next;
        Ok(Some(ids))
    }

    async fn resolve_channel(
        &self,
        channel: &ChannelRef,
        tally: &mut Tally,
        cancel: &CancelSignal,
    ) -> Result<(String, Option<String>), SourceError> {
        let filter = match channel {
            ChannelRef::Id(id) => ("id", id.clone()),
            ChannelRef::Handle(h) => ("forHandle", format!("@{h}")),
            ChannelRef::Username(u) => ("forUsername", u.clone()),
            // Legacy custom names mostly became handles in 2022; the API has no other lookup.
            ChannelRef::Custom(c) => ("forHandle", format!("@{c}")),
        };
        let query = [("part", "contentDetails".to_string()), filter];
        let page: ListResponse<ApiChannel> =
            match self.page(Method::Channels, &query, tally, cancel).await {
                Err(SourceError::NotFound { .. }) => ListResponse {
                    items: Vec::new(),
                    next_page_token: None,
                },
                other => other?,
            };
        let channel_found = page
            .items
            .into_iter()
            .next()
            .ok_or_else(|| SourceError::NotFound {
                what: format!("channel {channel}"),
            })?;
        let uploads = channel_found
            .content_details
            .and_then(|c| c.related_playlists)
            .and_then(|r| r.uploads)
            .filter(|u| !u.is_empty());
        Ok((channel_found.id, uploads))
    }
}

fn transport(e: reqwest::Error) -> SourceError {
    // Never show the URL: it carries the API key.
    let e = e.without_url();
    if e.is_timeout() {
        SourceError::Timeout
    } else if e.is_decode() || e.is_body() {
        SourceError::Network(format!("the response was cut off: {e}"))
    } else {
        SourceError::Network(e.to_string())
    }
}

/// Retry-After as delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: Timestamp) -> Option<Timestamp> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u32>() {
        return now
            .checked_add(jiff::SignedDuration::from_secs(i64::from(secs)))
            .ok();
    }
    jiff::fmt::rfc2822::parse(value).ok().map(|z| z.timestamp())
}

/// `e` after fetching `videos`, with the counters so far (the failed request included).
fn stopped(e: SourceError, videos: Vec<Video>, tally: Tally, notes: Vec<String>) -> Stopped {
    Stopped::after(
        e,
        Fetched {
            videos,
            counters: tally.0,
            notes,
        },
    )
}

fn rfc3339_seconds(t: Timestamp) -> String {
    Timestamp::from_second(t.as_second())
        .unwrap_or(t)
        .to_string()
}

#[async_trait]
impl VideoSource for DataApiSource {
    fn name(&self) -> &'static str {
        "data_api"
    }

    /// From the cost table (buckets are configurable per method): `channel_videos` calls
    /// channels, playlistItems and videos; `chart` videos; `categories` videoCategories;
    /// `search` search and videos; `videos` videos.
    fn quota_buckets(&self, kind: SourceCall) -> Vec<String> {
        let methods: &[Method] = match kind {
            SourceCall::ChannelVideos => &[Method::Channels, Method::PlaylistItems, Method::Videos],
            SourceCall::Chart => &[Method::Videos],
            SourceCall::Categories => &[Method::VideoCategories],
            SourceCall::Search => &[Method::Search, Method::Videos],
            SourceCall::Videos => &[Method::Videos],
            SourceCall::VideoStats => &[Method::BatchGetStats],
        };
        let mut names: Vec<String> = Vec::new();
        for m in methods {
            let name = self.cost(*m).bucket.ledger_name().to_owned();
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    async fn channel_videos(
        &self,
        query: &ChannelQuery,
        cancel: &CancelSignal,
    ) -> Result<Fetched, Stopped> {
        let mut tally = Tally::default();
        let (channel_id, uploads) = self
            .resolve_channel(&query.channel, &mut tally, cancel)
            .await?;
        let suffix = channel_id
            .strip_prefix("UC")
            .unwrap_or(&channel_id)
            .to_string();
        // The content choice is a playlist: UULF… long-form, UUSH… Shorts, UULV… past
        // streams, UU… (relatedPlaylists.uploads) everything; the same quota per page.
        let playlist = match query.tab {
            ChannelTab::All => uploads.unwrap_or_else(|| format!("UU{suffix}")),
            tab => format!("{}{suffix}", tab.playlist_prefix()),
        };
        let mut pager = IdPager {
            kind: PagerKind::Playlist {
                published_after: query.published_after,
            },
            query: vec![
                ("part", "contentDetails".to_string()),
                ("playlistId", playlist),
                ("maxResults", MAX_PAGE.to_string()),
            ],
            token: None,
            done: false,
        };
        let mut videos = Vec::new();
        let result = self
            .collect(
                query.top_n as usize,
                &mut pager,
                &mut videos,
                &mut tally,
                cancel,
            )
            .await;
        // Membership of the playlist is what tells a Short from a long-form video (partial
        // results included).
        if let Some(short) = query.tab.is_short() {
            for v in &mut videos {
                v.is_short = Some(short);
            }
        }
        let mut notes = Vec::new();
        match result {
            Ok(()) => {}
            // A channel without Shorts (or long-form videos, or past streams) has no such
            // playlist: 404 playlistNotFound, which is an empty answer, not a failure.
            Err(SourceError::NotFound { .. })
                if query.tab != ChannelTab::All && videos.is_empty() =>
            {
                notes.push(format!(
                    "the channel has no {} playlist",
                    query.tab.describe()
                ));
            }
            Err(e) => return Err(stopped(e, videos, tally, notes)),
        }
        Ok(Fetched {
            videos,
            counters: tally.0,
            notes,
        })
    }

    async fn chart(&self, query: &ChartQuery, cancel: &CancelSignal) -> Result<Fetched, Stopped> {
        let mut tally = Tally::default();
        let mut videos: Vec<Video> = Vec::new();
        let mut seen = HashSet::new();
        let mut token: Option<String> = None;
        let mut notes = Vec::new();
        let top_n = query.top_n as usize;
        while videos.len() < top_n {
            let mut q = vec![
                ("part", "snippet,statistics,contentDetails".to_string()),
                ("chart", "mostPopular".to_string()),
                ("regionCode", query.region.clone()),
                ("videoCategoryId", query.category_id.clone()),
                (
                    "maxResults",
                    (top_n - videos.len()).min(MAX_PAGE).to_string(),
                ),
            ];
            if let Some(t) = token.take() {
                q.push(("pageToken", t));
            }
            let answer = match self
                .get::<ListResponse<ApiVideo>>(Method::Videos, &q, &mut tally, cancel)
                .await
            {
                Ok(a) => a,
                Err(e) => return Err(stopped(e, videos, tally, notes)),
            };
            match answer {
                Answer::ChartUnavailable => {
                    notes.push(format!(
                        "YouTube has no most-popular chart for region {} and category {}",
                        query.region, query.category_id
                    ));
                    break;
                }
                Answer::Page(page) => {
                    // An id that is not a video id cannot be stored (nor trusted): left out.
                    for v in page.items.into_iter().filter(|v| is_video_id(&v.id)) {
                        if videos.len() < top_n && seen.insert(v.id.clone()) {
                            videos.push(v.into_video());
                        }
                    }
                    match page.next_page_token {
                        Some(t) => token = Some(t),
                        None => break,
                    }
                }
            }
        }
        Ok(Fetched {
            videos,
            counters: tally.0,
            notes,
        })
    }

    async fn categories(
        &self,
        region: &str,
        cancel: &CancelSignal,
    ) -> Result<CategoryList, SourceError> {
        let mut tally = Tally::default();
        let categories = self.region_categories(region, &mut tally, cancel).await?;
        Ok(CategoryList {
            categories,
            counters: tally.0,
        })
    }

    async fn search(&self, query: &SearchQuery, cancel: &CancelSignal) -> Result<Fetched, Stopped> {
        let mut tally = Tally::default();
        let mut q = vec![
            ("part", "snippet".to_string()),
            ("type", "video".to_string()),
            ("q", query.query.clone()),
            ("order", query.sort_by.api_value().to_string()),
            ("maxResults", MAX_PAGE.to_string()),
        ];
        if query.duration != DurationFilter::Any {
            q.push(("videoDuration", query.duration.api_value().to_string()));
        }
        if let Some(r) = &query.region {
            q.push(("regionCode", r.clone()));
        }
        if let Some(l) = &query.language {
            q.push(("relevanceLanguage", l.clone()));
        }
        if let Some(after) = query.published_after {
            q.push(("publishedAfter", rfc3339_seconds(after)));
        }
        let mut pager = IdPager {
            kind: PagerKind::Search,
            query: q,
            token: None,
            done: false,
        };
        let mut videos = Vec::new();
        if let Err(e) = self
            .collect(
                query.top_n as usize,
                &mut pager,
                &mut videos,
                &mut tally,
                cancel,
            )
            .await
        {
            return Err(stopped(e, videos, tally, Vec::new()));
        }
        Ok(Fetched {
            videos,
            counters: tally.0,
            notes: Vec::new(),
        })
    }

    async fn videos(&self, ids: &[VideoId], cancel: &CancelSignal) -> Result<Fetched, Stopped> {
        let mut tally = Tally::default();
        let mut videos = Vec::with_capacity(ids.len());
        let ids: Vec<String> = ids.iter().map(|v| v.as_str().to_string()).collect();
        for batch in ids.chunks(MAX_PAGE) {
            match self.details(batch, &mut tally, cancel).await {
                Ok(found) => videos.extend(found),
                Err(e) => return Err(stopped(e, videos, tally, Vec::new())),
            }
        }
        let missing = ids.len() - videos.len();
        let mut counters = tally.0;
        counters.insert("not_found".into(), missing as u64);
        Ok(Fetched {
            videos,
            counters,
            notes: Vec::new(),
        })
    }

    /// `videos:batchGetStats?part=snippet,statistics,contentDetails&id=…`, 50 ids a call.
    async fn video_stats(
        &self,
        ids: &[VideoId],
        cancel: &CancelSignal,
    ) -> Result<Fetched, Stopped> {
        let mut tally = Tally::default();
        let mut videos = Vec::with_capacity(ids.len());
        let ids: Vec<String> = ids.iter().map(|v| v.as_str().to_string()).collect();
        for batch in ids.chunks(MAX_PAGE) {
            let query = [
                ("part", "snippet,statistics,contentDetails".to_string()),
                ("id", batch.join(",")),
            ];
            let page: ListResponse<ApiVideoStats> = match self
                .page(Method::BatchGetStats, &query, &mut tally, cancel)
                .await
            {
                Ok(p) => p,
                Err(e) => return Err(stopped(e, videos, tally, Vec::new())),
            };
            let mut by_id: BTreeMap<String, ApiVideoStats> =
                page.items.into_iter().map(|v| (v.id.clone(), v)).collect();
            videos.extend(
                batch
                    .iter()
                    .filter_map(|id| by_id.remove(id))
                    .map(ApiVideoStats::into_video),
            );
        }
        let missing = ids.len() - videos.len();
        let mut counters = tally.0;
        counters.insert("not_found".into(), missing as u64);
        Ok(Fetched {
            videos,
            counters,
            notes: Vec::new(),
        })
    }
}
