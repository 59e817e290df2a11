//! The yt-dlp adapter: `--flat-playlist -J` listings of a channel tab or a search, then
//! `-j --skip-download` details in batches. Arguments are fixed per operation, user input
//! only ever follows `--` and is validated first, so no input can become an option.

pub mod locate;
pub mod parse;
pub mod process;

use async_trait::async_trait;
use prismq_domain::CancelSignal;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use self::parse::{FlatChannel, FlatPlaylist, FullVideo, ToolError};
use super::{
    CategoryList, ChannelQuery, ChartQuery, Fetched, SearchQuery, SourceError, Stopped, VideoSource,
};
use crate::youtube::ids::{self, is_channel_id, is_video_id, ChannelRef, VideoId};
use crate::youtube::params::{ChannelTab, DurationFilter, PublishedWithin, SortBy};
use crate::youtube::trending::NEEDS_API;
use crate::youtube::video::Video;

/// URLs per `-j` run.
pub const DETAIL_BATCH: usize = 50;

/// The yt-dlp [`VideoSource`].
#[derive(Debug, Clone)]
pub struct YtDlpSource {
    program: PathBuf,
    timeout: Duration,
}

/// How a listing ended when it did not produce ids.
enum ListingFailure {
    MissingTab,
    Failed(SourceError),
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// One listed entry: its id, and whether the listing marks it as a Short.
type Listed = (String, bool);

/// The arguments of a flat listing of at most `limit` entries of `target` (a channel tab
/// URL or a `ytsearchN:` query): `-I :N` (`--playlist-items`), the current form of the
/// deprecated and hidden `--playlist-end N`.
pub fn listing_args(target: &str, limit: u32) -> Vec<OsString> {
    let items = format!(":{limit}");
    os(&[
        "--flat-playlist",
        "-J",
        "--no-progress",
        "-I",
        &items,
        "--",
        target,
    ])
}

/// What a search lists: `ytsearchN:QUERY` for a plain relevance search, else the results
/// page URL with its `sp` filter.
///
/// # Errors
/// Never in practice (the base URL is a constant).
pub fn search_target(query: &SearchQuery) -> Result<String, SourceError> {
    let within = query.published_within;
    let plain = query.sort_by == SortBy::Relevance
        && within == PublishedWithin::All
        && query.duration == DurationFilter::Any;
    if plain {
        return Ok(format!("ytsearch{}:{}", query.top_n, query.query));
    }
    let mut url = url::Url::parse("https://www.youtube.com/results")
        .map_err(|e| SourceError::Decode(e.to_string()))?;
    url.query_pairs_mut()
        .append_pair("search_query", &query.query)
        .append_pair("sp", &search_sp(query.sort_by, within, query.duration));
    Ok(url.to_string())
}

/// The arguments that read who a channel is without listing a video: a flat `-J` of its
/// page with `-I 0` (no entries; the top level carries `channel_id`).
pub fn channel_id_args(page_url: &str) -> Vec<OsString> {
    os(&[
        "--flat-playlist",
        "-J",
        "--no-progress",
        "-I",
        "0",
        "--",
        page_url,
    ])
}

/// The arguments of one details run over `urls` (watch URLs).
pub fn details_args(urls: &[String]) -> Vec<OsString> {
    let mut args = os(&[
        "-j",
        "--skip-download",
        "--ignore-errors",
        "--ignore-no-formats-error",
        "--no-progress",
        "--",
    ]);
    args.extend(urls.iter().map(OsString::from));
    args
}

/// Turns a failed run into an error, its stderr lines made safe (one line each, bounded):
/// exit 2 is our bug; otherwise the first decisive `ERROR:` line decides.
fn failure(code: Option<i32>, stderr: &str) -> SourceError {
    classify_failure(code, stderr).sanitized()
}

fn classify_failure(code: Option<i32>, stderr: &str) -> SourceError {
    let errors = parse::errors(stderr);
    if code == Some(2) {
        let line = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return SourceError::ToolPermanent(format!("refused its arguments (exit 2): {line}"));
    }
    if let Some(ToolError::Blocked(l)) = errors.iter().find(|e| matches!(e, ToolError::Blocked(_)))
    {
        return SourceError::ToolRetryable(l.clone());
    }
    if let Some(ToolError::NotFound(l) | ToolError::MissingTab(l)) = errors
        .iter()
        .find(|e| matches!(e, ToolError::NotFound(_) | ToolError::MissingTab(_)))
    {
        return SourceError::NotFound { what: l.clone() };
    }
    match errors.first() {
        Some(ToolError::Other(l) | ToolError::VideoUnavailable(l)) => {
            SourceError::ToolRetryable(l.clone())
        }
        _ => SourceError::ToolRetryable(format!(
            "exited with {} and no error line",
            code.map_or_else(|| "a signal".to_string(), |c| format!("code {c}"))
        )),
    }
}

/// The protobuf-encoded `sp` search parameter: sort (field 1) and filters (field 2:
/// upload date 1, type 2 = video, duration 3), base64 with padding.
fn search_sp(sort: SortBy, within: PublishedWithin, duration: DurationFilter) -> String {
    let mut bytes = Vec::new();
    let sort_value = match sort {
        SortBy::Relevance => 0,
        SortBy::Rating => 1,
        SortBy::Date => 2,
        SortBy::Views => 3,
    };
    if sort_value != 0 {
        bytes.extend([0x08, sort_value]);
    }
    let mut filters = vec![0x10, 0x01];
    let date = match within {
        PublishedWithin::Day => 2,
        PublishedWithin::Week => 3,
        PublishedWithin::Month => 4,
        PublishedWithin::Year => 5,
        PublishedWithin::All => 0,
    };
    if date != 0 {
        filters.extend([0x08, date]);
    }
    let length = match duration {
        DurationFilter::Short => 1,
        DurationFilter::Long => 2,
        DurationFilter::Medium => 3,
        DurationFilter::Any => 0,
    };
    if length != 0 {
        filters.extend([0x18, length]);
    }
    bytes.push(0x12);
    bytes.push(filters.len() as u8);
    bytes.extend(filters);
    base64(&bytes)
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl YtDlpSource {
    /// A source running `program` with a time limit of `timeout` per run.
    pub fn new(program: PathBuf, timeout: Duration) -> Self {
        YtDlpSource { program, timeout }
    }

    async fn listing(
        &self,
        target: &str,
        limit: u32,
        counters: &mut BTreeMap<String, u64>,
        cancel: &CancelSignal,
    ) -> Result<Vec<Listed>, ListingFailure> {
        let stdout = self
            .flat_json(listing_args(target, limit), counters, cancel)
            .await?;
        let listing: FlatPlaylist = serde_json::from_slice(&stdout).map_err(|e| {
            ListingFailure::Failed(SourceError::Decode(format!("yt-dlp listing: {e}")))
        })?;
        Ok(listing
            .entries
            .into_iter()
            .filter_map(|e| {
                let short = e.listed_as_short();
                e.id.filter(|id| is_video_id(id)).map(|id| (id, short))
            })
            // `-I :N` already stops yt-dlp at N; this keeps to it whatever printed the JSON.
            .take(limit as usize)
            .collect())
    }

    /// One flat `-J` run's stdout, or why it failed (a missing tab told apart).
    async fn flat_json(
        &self,
        args: Vec<OsString>,
        counters: &mut BTreeMap<String, u64>,
        cancel: &CancelSignal,
    ) -> Result<Vec<u8>, ListingFailure> {
        *counters.entry("ytdlp_runs".into()).or_default() += 1;
        let out = process::run(&self.program, &args, self.timeout, cancel)
            .await
            .map_err(ListingFailure::Failed)?;
        if out.code != Some(0) {
            if parse::errors(&out.stderr)
                .iter()
                .any(|e| matches!(e, ToolError::MissingTab(_)))
            {
                return Err(ListingFailure::MissingTab);
            }
            return Err(ListingFailure::Failed(failure(out.code, &out.stderr)));
        }
        Ok(out.stdout)
    }

    /// What a channel task lists: the choice's tab, or for all uploads the `UU…` playlist
    /// (a channel page without a tab would list each tab as its own nested playlist), whose
    /// id needs the channel id: given, or read from the channel page (one more run).
    async fn channel_target(
        &self,
        query: &ChannelQuery,
        counters: &mut BTreeMap<String, u64>,
        cancel: &CancelSignal,
    ) -> Result<String, ListingFailure> {
        if let Some(tab) = query.tab.ytdlp_tab() {
            return Ok(query.channel.tab_url(tab));
        }
        let id = match &query.channel {
            ChannelRef::Id(id) => id.clone(),
            other => {
                let stdout = self
                    .flat_json(channel_id_args(&other.page_url()), counters, cancel)
                    .await?;
                let page: FlatChannel = serde_json::from_slice(&stdout).map_err(|e| {
                    ListingFailure::Failed(SourceError::Decode(format!("yt-dlp channel page: {e}")))
                })?;
                page.channel_id
                    .or(page.id)
                    .filter(|id| is_channel_id(id))
                    .ok_or_else(|| {
                        ListingFailure::Failed(SourceError::Decode(format!(
                            "yt-dlp did not say the channel id of {other}"
                        )))
                    })?
            }
        };
        Ok(ids::playlist_url(&format!("UU{}", &id[2..])))
    }

    /// Details of `ids` in their order, appended to `videos` one batch at a time (so a
    /// failed run leaves the earlier batches there); unavailable videos are skipped and
    /// counted.
    async fn details(
        &self,
        ids: &[String],
        videos: &mut Vec<Video>,
        counters: &mut BTreeMap<String, u64>,
        cancel: &CancelSignal,
    ) -> Result<(), SourceError> {
        for batch in ids.chunks(DETAIL_BATCH) {
            let urls: Vec<String> = batch
                .iter()
                .map(|id| format!("https://www.youtube.com/watch?v={id}"))
                .collect();
            let args = details_args(&urls);
            *counters.entry("ytdlp_runs".into()).or_default() += 1;
            let out = process::run(&self.program, &args, self.timeout, cancel).await?;
            let errors = parse::errors(&out.stderr);
            match out.code {
                Some(0) => {}
                Some(1)
                    if errors
                        .iter()
                        .all(|e| matches!(e, ToolError::VideoUnavailable(_))) => {}
                code => return Err(failure(code, &out.stderr)),
            }
            // `-j` prints one JSON object per line and nothing else on stdout: anything else
            // means this is not yt-dlp (or it broke), not that the videos are unavailable.
            let mut found: HashMap<String, Video> = HashMap::new();
            for line in String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.trim().is_empty())
            {
                let full = serde_json::from_str::<FullVideo>(line).map_err(|e| {
                    let start: String = line.chars().take(60).collect();
                    SourceError::Decode(format!(
                        "yt-dlp printed a line that is not JSON video details ({e}): {start:?}"
                    ))
                })?;
                if let Some(v) = full.into_video() {
                    found.insert(v.id.clone(), v);
                }
            }
            let before = videos.len();
            videos.extend(batch.iter().filter_map(|id| found.remove(id)));
            let skipped = (batch.len() - (videos.len() - before)) as u64;
            *counters.entry("skipped_unavailable".into()).or_default() += skipped;
        }
        Ok(())
    }

    /// Details of `ids` as a [`Fetched`], or the batches fetched before a failed run.
    async fn fetch_details(
        &self,
        ids: &[String],
        mut counters: BTreeMap<String, u64>,
        notes: Vec<String>,
        cancel: &CancelSignal,
    ) -> Result<Fetched, Stopped> {
        let mut videos = Vec::with_capacity(ids.len());
        let result = self.details(ids, &mut videos, &mut counters, cancel).await;
        let fetched = Fetched {
            videos,
            counters,
            notes,
        };
        match result {
            Ok(()) => Ok(fetched),
            Err(e) => Err(Stopped::after(e, fetched)),
        }
    }
}

#[async_trait]
impl VideoSource for YtDlpSource {
    fn name(&self) -> &'static str {
        "ytdlp"
    }

    async fn channel_videos(
        &self,
        query: &ChannelQuery,
        cancel: &CancelSignal,
    ) -> Result<Fetched, Stopped> {
        let mut counters = BTreeMap::new();
        let listed = match self.channel_target(query, &mut counters, cancel).await {
            Ok(target) => {
                self.listing(&target, query.top_n, &mut counters, cancel)
                    .await
            }
            Err(e) => Err(e),
        };
        let ids: Vec<String> = match listed {
            Ok(listed) => listed.into_iter().map(|(id, _)| id).collect(),
            // A channel without Shorts (or long-form videos, or streams) has no such tab:
            // an empty answer, as the Data API's 404 for the matching playlist.
            Err(ListingFailure::MissingTab) if query.tab != ChannelTab::All => {
                return Ok(Fetched {
                    videos: Vec::new(),
                    counters,
                    notes: vec![format!("the channel has no {} tab", query.tab.describe())],
                })
            }
            Err(ListingFailure::MissingTab) => {
                return Err(SourceError::NotFound {
                    what: format!("the uploads of channel {}", query.channel),
                }
                .into())
            }
            Err(ListingFailure::Failed(SourceError::NotFound { what })) => {
                return Err(SourceError::NotFound {
                    what: format!("channel {} ({what})", query.channel),
                }
                .into())
            }
            Err(ListingFailure::Failed(e)) => return Err(e.into()),
        };
        let (mut videos, result) =
            match self.fetch_details(&ids, counters, Vec::new(), cancel).await {
                Ok(f) => (f, None),
                Err(s) => (s.partial, Some(s.error)),
            };
        if let Some(cut) = query.published_after {
            // Tabs are newest first, so the first top_n cover every video newer than the cut.
            videos
                .videos
                .retain(|v| !matches!(v.published_at, Some(p) if p < cut));
        }
        // The tab a video was listed from says what it is; for all uploads yt-dlp's
        // media_type (kept from the details) does.
        if let Some(short) = query.tab.is_short() {
            for v in &mut videos.videos {
                v.is_short = Some(short);
            }
        }
        match result {
            None => Ok(videos),
            Some(e) => Err(Stopped::after(e, videos)),
        }
    }

    async fn chart(&self, _query: &ChartQuery, _cancel: &CancelSignal) -> Result<Fetched, Stopped> {
        Err(SourceError::Unsupported(NEEDS_API.to_string()).into())
    }

    async fn categories(
        &self,
        _region: &str,
        _cancel: &CancelSignal,
    ) -> Result<CategoryList, SourceError> {
        Err(SourceError::Unsupported(NEEDS_API.to_string()))
    }

    async fn search(&self, query: &SearchQuery, cancel: &CancelSignal) -> Result<Fetched, Stopped> {
        let mut counters = BTreeMap::new();
        let mut notes = Vec::new();
        let target = search_target(query)?;
        if query.region.is_some() || query.language.is_some() {
            notes.push("region and language are not applied by the yt-dlp backend".to_string());
        }
        let listed = match self
            .listing(&target, query.top_n, &mut counters, cancel)
            .await
        {
            Ok(listed) => listed,
            Err(ListingFailure::MissingTab) => Vec::new(),
            Err(ListingFailure::Failed(e)) => return Err(e.into()),
        };
        let ids: Vec<String> = listed.iter().map(|(id, _)| id.clone()).collect();
        // Search listings give Shorts `/shorts/` URLs: a Short the details did not mark.
        let mark = |fetched: &mut Fetched| {
            for v in &mut fetched.videos {
                if v.is_short.is_none() && listed.iter().any(|(id, s)| *s && *id == v.id) {
                    v.is_short = Some(true);
                }
            }
        };
        match self.fetch_details(&ids, counters, notes, cancel).await {
            Ok(mut f) => {
                mark(&mut f);
                Ok(f)
            }
            Err(mut s) => {
                mark(&mut s.partial);
                Err(s)
            }
        }
    }

    async fn videos(&self, ids: &[VideoId], cancel: &CancelSignal) -> Result<Fetched, Stopped> {
        let ids: Vec<String> = ids.iter().map(|v| v.as_str().to_string()).collect();
        let mut fetched = self
            .fetch_details(&ids, BTreeMap::new(), Vec::new(), cancel)
            .await?;
        let missing = (ids.len() - fetched.videos.len()) as u64;
        fetched.counters.insert("not_found".into(), missing);
        Ok(fetched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sp_codes_match_youtubes() {
        // Filters alone, with type=video first.
        assert_eq!(
            search_sp(SortBy::Views, PublishedWithin::All, DurationFilter::Any),
            "CAMSAhAB"
        );
        assert_eq!(
            search_sp(SortBy::Date, PublishedWithin::All, DurationFilter::Any),
            "CAISAhAB"
        );
        assert_eq!(
            search_sp(
                SortBy::Relevance,
                PublishedWithin::Week,
                DurationFilter::Short
            ),
            "EgYQAQgDGAE="
        );
        assert_eq!(base64(b"\x12\x02\x08\x02"), "EgIIAg==");
        assert_eq!(base64(b"\x08\x02"), "CAI=");
    }

    #[test]
    fn failures_are_classified() {
        assert!(matches!(
            failure(Some(2), "yt-dlp: error: no such option: --bogus\n"),
            SourceError::ToolPermanent(_)
        ));
        assert!(matches!(
            failure(Some(1), "ERROR: [youtube:tab] @nosuch: Unable to download webpage: HTTP Error 404: Not Found"),
            SourceError::NotFound { .. }
        ));
        assert!(matches!(
            failure(
                Some(1),
                "ERROR: [youtube] x: Sign in to confirm you\u{2019}re not a bot."
            ),
            SourceError::ToolRetryable(_)
        ));
        assert!(matches!(failure(None, ""), SourceError::ToolRetryable(_)));
    }

    #[test]
    fn a_failure_line_is_made_safe() {
        let stderr = format!(
            "ERROR: [youtube] x: \u{1b}[2J\u{7}bad\r{}\nERROR: second",
            "z".repeat(100_000)
        );
        let SourceError::ToolRetryable(line) = failure(Some(1), &stderr) else {
            panic!("not retryable");
        };
        assert!(
            line.starts_with("[youtube] x: \u{FFFD}[2J\u{FFFD}bad zzz"),
            "{line}"
        );
        assert_eq!(line.chars().count(), prismq_domain::text::DETAIL_MAX_CHARS);
        assert!(prismq_domain::text::is_one_line(&line));
        let SourceError::ToolPermanent(line) = failure(Some(2), "yt-dlp: error: \u{1b}]0;x\u{7}")
        else {
            panic!("not permanent");
        };
        assert!(prismq_domain::text::is_one_line(&line), "{line:?}");
    }
}
