//! Typed parameters of the five task types, checked at enqueue time.
//!
//! Each task type has a raw serde struct read by `prismq_domain::params::parse` (so a typo
//! such as `topn` is refused by name, not silently defaulted) whose fields are kept as JSON
//! values, and a typed struct built from it field by field, so every error names its
//! parameter, what was wrong and what is accepted.

use prismq_domain::task::json_kind;
use prismq_domain::ValidationError;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::codes;
use super::declare;
use super::ids::{self, ChannelRef, VideoId};

/// Which of a channel's uploads `channel_scrape` reads: its content choice. Each maps to
/// one uploads playlist on the Data API and one channel tab (or playlist) on yt-dlp, so both
/// backends return the same set for the same channel and choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelTab {
    /// Long-form uploads: the `UULF…` playlist, the `/videos` tab.
    Videos,
    /// Shorts: the `UUSH…` playlist, the `/shorts` tab.
    Shorts,
    /// Past live streams: the `UULV…` playlist, the `/streams` tab.
    Streams,
    /// Every upload: the `UU…` playlist on both backends.
    All,
}

/// What `tab` accepts, for error messages.
pub const TAB_ACCEPTED: &str = "videos (long-form uploads), shorts, streams (past live streams) \
or all (every upload); default videos";

/// What a channel URL may end in, for error messages.
pub const TAB_URL_ACCEPTED: &str = "a channel URL without a tab or ending in /videos, /shorts or \
/streams (use the tab parameter, --tab, for all uploads)";

impl ChannelTab {
    /// The choice's name (`videos`, `shorts`, `streams`, `all`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelTab::Videos => "videos",
            ChannelTab::Shorts => "shorts",
            ChannelTab::Streams => "streams",
            ChannelTab::All => "all",
        }
    }

    /// The channel tab yt-dlp lists (`None` for all uploads, which is a playlist).
    pub fn ytdlp_tab(self) -> Option<&'static str> {
        match self {
            ChannelTab::Videos => Some("videos"),
            ChannelTab::Shorts => Some("shorts"),
            ChannelTab::Streams => Some("streams"),
            ChannelTab::All => None,
        }
    }

    /// The uploads playlist's prefix, followed by the channel id without its `UC`.
    pub fn playlist_prefix(self) -> &'static str {
        match self {
            ChannelTab::Videos => "UULF",
            ChannelTab::Shorts => "UUSH",
            ChannelTab::Streams => "UULV",
            ChannelTab::All => "UU",
        }
    }

    /// Whether every video of the choice is a Short, when the choice says (`None` for all).
    pub fn is_short(self) -> Option<bool> {
        match self {
            ChannelTab::Videos | ChannelTab::Streams => Some(false),
            ChannelTab::Shorts => Some(true),
            ChannelTab::All => None,
        }
    }

    /// Words for summaries and notes.
    pub fn describe(self) -> &'static str {
        match self {
            ChannelTab::Videos => "long-form videos",
            ChannelTab::Shorts => "Shorts",
            ChannelTab::Streams => "past live streams",
            ChannelTab::All => "uploads",
        }
    }

    /// The choice a channel URL's tab segment names.
    ///
    /// # Errors
    /// A segment other than `videos`, `shorts` or `streams`, saying what is accepted.
    pub fn from_url_segment(segment: &str) -> Result<Self, ValidationError> {
        match segment.to_ascii_lowercase().as_str() {
            "videos" => Ok(ChannelTab::Videos),
            "shorts" => Ok(ChannelTab::Shorts),
            "streams" => Ok(ChannelTab::Streams),
            _ => Err(ValidationError::new(
                "channel_url",
                format!(
                    "the URL ends in /{}, a part of the channel that cannot be collected",
                    ids::short(segment)
                ),
                TAB_URL_ACCEPTED,
            )),
        }
    }
}

/// `channel_scrape` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelParams {
    /// The channel.
    pub channel: ChannelRef,
    /// How many of its newest videos to collect, 1–500 (default 10).
    pub top_n: u32,
    /// Only videos published within this many days.
    pub max_age_days: Option<u32>,
    /// Which tab.
    pub tab: ChannelTab,
}

/// `trending_scrape` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrendingParams {
    /// ISO 3166-1 alpha-2, upper case (default US).
    pub region: String,
    /// The Data API `videoCategoryId` (`0` for all).
    pub category_id: String,
    /// 1–200 (default 50).
    pub top_n: u32,
    /// Enqueue a scrape of each found video's channel that has no baseline yet; `None`
    /// follows `[youtube] baselines_on_demand`.
    pub baselines: Option<bool>,
}

/// How far back `keyword_search` looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishedWithin {
    /// The last 24 hours.
    Day,
    /// The last 7 days.
    Week,
    /// The last 30 days.
    Month,
    /// The last 365 days.
    Year,
    /// Any time.
    All,
}

impl PublishedWithin {
    /// The window's length in hours, or `None` for all time.
    pub fn hours(self) -> Option<i64> {
        match self {
            PublishedWithin::Day => Some(24),
            PublishedWithin::Week => Some(7 * 24),
            PublishedWithin::Month => Some(30 * 24),
            PublishedWithin::Year => Some(365 * 24),
            PublishedWithin::All => None,
        }
    }
}

/// `keyword_search`'s length filter (the Data API's `videoDuration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationFilter {
    /// Under 4 minutes.
    Short,
    /// 4 to 20 minutes.
    Medium,
    /// Over 20 minutes.
    Long,
    /// No filter.
    Any,
}

impl DurationFilter {
    /// The Data API value.
    pub fn api_value(self) -> &'static str {
        match self {
            DurationFilter::Short => "short",
            DurationFilter::Medium => "medium",
            DurationFilter::Long => "long",
            DurationFilter::Any => "any",
        }
    }
}

/// `keyword_search`'s order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// YouTube's relevance order.
    Relevance,
    /// Newest first.
    Date,
    /// Most viewed first.
    Views,
    /// Highest rated first.
    Rating,
}

impl SortBy {
    /// The Data API `order` value.
    pub fn api_value(self) -> &'static str {
        match self {
            SortBy::Relevance => "relevance",
            SortBy::Date => "date",
            SortBy::Views => "viewCount",
            SortBy::Rating => "rating",
        }
    }
}

/// `keyword_search` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeywordParams {
    /// The search query, trimmed, non-empty.
    pub query: String,
    /// 1–500 (default 50).
    pub top_n: u32,
    /// Default all.
    pub published_within: PublishedWithin,
    /// Default any.
    pub duration: DurationFilter,
    /// Default relevance.
    pub sort_by: SortBy,
    /// ISO 3166-1 alpha-2, upper case.
    pub region: Option<String>,
    /// ISO 639-1.
    pub language: Option<String>,
    /// As [`TrendingParams::baselines`].
    pub baselines: Option<bool>,
}

/// `api_scrape` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiParams {
    /// The videos, deduplicated, in the order given.
    pub videos: Vec<VideoId>,
}

#[derive(Deserialize)]
struct RawChannel {
    channel_url: Option<Value>,
    top_n: Option<Value>,
    max_age_days: Option<Value>,
    tab: Option<Value>,
}

#[derive(Deserialize)]
struct RawTrending {
    region: Option<Value>,
    country: Option<Value>,
    category: Option<Value>,
    top_n: Option<Value>,
    baselines: Option<Value>,
}

#[derive(Deserialize)]
struct RawKeyword {
    query: Option<Value>,
    top_n: Option<Value>,
    published_within: Option<Value>,
    duration: Option<Value>,
    sort_by: Option<Value>,
    region: Option<Value>,
    language: Option<Value>,
    baselines: Option<Value>,
}

#[derive(Deserialize)]
struct RawApi {
    videos: Option<Value>,
}

pub use super::declare::MAX_QUERY_CHARS;

/// Parses `channel_scrape` parameters.
///
/// # Errors
/// The first invalid or unknown parameter.
pub fn channel(params: &Map<String, Value>) -> Result<ChannelParams, ValidationError> {
    let raw: RawChannel = raw(params, &declare::names(declare::CHANNEL, &[]))?;
    let text = required_string(raw.channel_url, "channel_url", ids::CHANNEL_ACCEPTED)?;
    let (channel, segment) = ids::parse_channel_and_tab(&text)
        .map_err(|p| ValidationError::new("channel_url", p, ids::CHANNEL_ACCEPTED))?;
    let from_url = segment
        .as_deref()
        .map(ChannelTab::from_url_segment)
        .transpose()?;
    let given = choice_accepting(
        raw.tab,
        "tab",
        &[
            ("videos", ChannelTab::Videos),
            ("shorts", ChannelTab::Shorts),
            ("streams", ChannelTab::Streams),
            ("all", ChannelTab::All),
        ],
        TAB_ACCEPTED,
    )?;
    let tab = match (from_url, given) {
        (Some(u), Some(t)) if u != t => {
            return Err(ValidationError::new(
                "tab",
                format!(
                    "tab is {} but the channel URL ends in /{}",
                    t.as_str(),
                    u.as_str()
                ),
                "the same choice in both, or only one of them",
            ))
        }
        (u, t) => u.or(t).unwrap_or(ChannelTab::Videos),
    };
    Ok(ChannelParams {
        channel,
        top_n: integer(raw.top_n, "top_n", 1, 500)?.unwrap_or(10),
        max_age_days: integer(raw.max_age_days, "max_age_days", 1, 36_500)?,
        tab,
    })
}

/// Parses `trending_scrape` parameters (`country` is an alias of `region`).
///
/// # Errors
/// The first invalid or unknown parameter.
pub fn trending(params: &Map<String, Value>) -> Result<TrendingParams, ValidationError> {
    let raw: RawTrending = raw(
        params,
        &declare::names(declare::TRENDING, &[("region", "country")]),
    )?;
    let (region_value, region_field) = match (raw.region, raw.country) {
        (Some(_), Some(_)) => {
            return Err(ValidationError::new(
                "country",
                "both region and its alias country are given",
                "region or country, not both",
            ))
        }
        (Some(r), None) => (Some(r), "region"),
        (None, c) => (c, "country"),
    };
    let region = optional_string(region_value, region_field, codes::REGION_ACCEPTED)?
        .map(|r| {
            codes::region(&r).ok_or_else(|| {
                ValidationError::new(
                    region_field,
                    format!("{:?} is not an ISO 3166-1 alpha-2 code", ids::short(&r)),
                    codes::REGION_ACCEPTED,
                )
            })
        })
        .transpose()?
        .unwrap_or_else(|| "US".to_string());
    let category_id = match raw.category {
        None | Some(Value::Null) => "0".to_string(),
        Some(Value::Number(n)) => codes::category_id(&n.to_string()).ok_or_else(|| {
            ValidationError::new(
                "category",
                format!("{n} is not a category id"),
                codes::category_accepted(),
            )
        })?,
        Some(Value::String(s)) => codes::category_id(&s).ok_or_else(|| {
            ValidationError::new(
                "category",
                format!("{:?} is not a known category", ids::short(&s)),
                codes::category_accepted(),
            )
        })?,
        Some(other) => {
            return Err(ValidationError::new(
                "category",
                format!("expected text, got {}", json_kind(&other)),
                codes::category_accepted(),
            ))
        }
    };
    Ok(TrendingParams {
        region,
        category_id,
        top_n: integer(raw.top_n, "top_n", 1, 200)?.unwrap_or(50),
        baselines: boolean(raw.baselines, "baselines")?,
    })
}

/// Parses `keyword_search` parameters.
///
/// # Errors
/// The first invalid or unknown parameter.
pub fn keyword(params: &Map<String, Value>) -> Result<KeywordParams, ValidationError> {
    let raw: RawKeyword = raw(params, &declare::names(declare::KEYWORD, &[]))?;
    const QUERY_ACCEPTED: &str =
        "non-empty text of at most 500 characters without control characters";
    let query = required_string(raw.query, "query", QUERY_ACCEPTED)?;
    let query = query.trim().to_string();
    if query.is_empty() {
        return Err(ValidationError::new(
            "query",
            "the query is empty",
            QUERY_ACCEPTED,
        ));
    }
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(ValidationError::new(
            "query",
            format!("the query is {} characters long", query.chars().count()),
            QUERY_ACCEPTED,
        ));
    }
    if query.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "query",
            "the query contains control characters",
            QUERY_ACCEPTED,
        ));
    }
    let region = optional_string(raw.region, "region", codes::REGION_ACCEPTED)?
        .map(|r| {
            codes::region(&r).ok_or_else(|| {
                ValidationError::new(
                    "region",
                    format!("{:?} is not an ISO 3166-1 alpha-2 code", ids::short(&r)),
                    codes::REGION_ACCEPTED,
                )
            })
        })
        .transpose()?;
    let language = optional_string(raw.language, "language", codes::LANGUAGE_ACCEPTED)?
        .map(|l| {
            codes::language(&l).ok_or_else(|| {
                ValidationError::new(
                    "language",
                    format!("{:?} is not an ISO 639-1 code", ids::short(&l)),
                    codes::LANGUAGE_ACCEPTED,
                )
            })
        })
        .transpose()?;
    Ok(KeywordParams {
        query,
        top_n: integer(raw.top_n, "top_n", 1, 500)?.unwrap_or(50),
        published_within: choice(
            raw.published_within,
            "published_within",
            &[
                ("day", PublishedWithin::Day),
                ("week", PublishedWithin::Week),
                ("month", PublishedWithin::Month),
                ("year", PublishedWithin::Year),
                ("all", PublishedWithin::All),
            ],
        )?
        .unwrap_or(PublishedWithin::All),
        duration: choice(
            raw.duration,
            "duration",
            &[
                ("short", DurationFilter::Short),
                ("medium", DurationFilter::Medium),
                ("long", DurationFilter::Long),
                ("any", DurationFilter::Any),
            ],
        )?
        .unwrap_or(DurationFilter::Any),
        sort_by: choice(
            raw.sort_by,
            "sort_by",
            &[
                ("relevance", SortBy::Relevance),
                ("date", SortBy::Date),
                ("views", SortBy::Views),
                ("rating", SortBy::Rating),
            ],
        )?
        .unwrap_or(SortBy::Relevance),
        region,
        language,
        baselines: boolean(raw.baselines, "baselines")?,
    })
}

/// Parses `api_scrape` parameters: `videos` is a list of ids or URLs (one string is taken
/// as a list of one).
///
/// # Errors
/// The first invalid or unknown parameter; an invalid entry is named `videos[i]`.
pub fn api(params: &Map<String, Value>) -> Result<ApiParams, ValidationError> {
    let raw: RawApi = raw(params, &declare::names(declare::API, &[]))?;
    const ACCEPTED: &str =
        "a non-empty list of video ids or URLs (watch?v=, youtu.be/, /shorts/, bare 11-character id)";
    let entries = match raw.videos {
        None | Some(Value::Null) => {
            return Err(ValidationError::new("videos", "missing", ACCEPTED))
        }
        Some(Value::String(s)) => vec![Value::String(s)],
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(ValidationError::new(
                "videos",
                format!("expected a list, got {}", json_kind(&other)),
                ACCEPTED,
            ))
        }
    };
    if entries.is_empty() {
        return Err(ValidationError::new(
            "videos",
            "the list is empty",
            ACCEPTED,
        ));
    }
    let most = super::declare::MAX_API_VIDEOS;
    if entries.len() > most {
        return Err(ValidationError::new(
            "videos",
            format!("{} entries is too many", entries.len()),
            format!("at most {most} videos a task (split a longer list into several tasks)"),
        ));
    }
    let mut videos: Vec<VideoId> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let field = format!("videos[{i}]");
        let Value::String(text) = entry else {
            return Err(ValidationError::new(
                field,
                format!("expected text, got {}", json_kind(entry)),
                ids::VIDEO_ACCEPTED,
            ));
        };
        let id = ids::parse_video(text)
            .map_err(|p| ValidationError::new(field, p, ids::VIDEO_ACCEPTED))?;
        if !videos.contains(&id) {
            videos.push(id);
        }
    }
    Ok(ApiParams { videos })
}

/// Which videos `refresh_stats` reads them through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshMethod {
    /// `videos.list` (details and statistics, 1 unit of the general bucket per 50 ids).
    List,
    /// `videos:batchGetStats` (statistics, publish time and duration only; 1 unit of its
    /// own bucket per 50 ids).
    BatchGetStats,
}

impl RefreshMethod {
    /// The method's parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            RefreshMethod::List => "list",
            RefreshMethod::BatchGetStats => "batch_get_stats",
        }
    }
}

/// `refresh_stats` parameters: which tracked videos, and how. At least one filter, or
/// `all: true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshParams {
    /// Only videos seen (saved by a task) within this many hours.
    pub seen_within_hours: Option<u32>,
    /// Only videos of this channel (`UC…`).
    pub channel_id: Option<String>,
    /// Only videos whose last saving task this schedule enqueued.
    pub schedule: Option<String>,
    /// `videos.list` (default) or `videos:batchGetStats`.
    pub method: RefreshMethod,
}

/// What `refresh_stats` needs to know which videos to refresh, for error messages.
pub const REFRESH_FILTER_ACCEPTED: &str = "at least one filter: seen_within (e.g. 7d or 12h), channel_id (a UC… channel id), schedule (a schedule's name); or all: true for every tracked video";

/// What `seen_within` accepts, for error messages.
pub const SEEN_WITHIN_ACCEPTED: &str =
    "a number of days or hours such as 7d or 12h (1h to 3650d; a bare number is days)";

#[derive(Deserialize)]
struct RawRefresh {
    seen_within: Option<Value>,
    channel_id: Option<Value>,
    schedule: Option<Value>,
    all: Option<Value>,
    method: Option<Value>,
}

/// `7d`, `12h` or `7` (days) as hours, 1 hour to 3,650 days.
fn seen_within(value: Option<Value>) -> Result<Option<u32>, ValidationError> {
    let field = "seen_within";
    let text = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.trim().to_ascii_lowercase(),
        Some(Value::Number(n)) => format!("{n}d"),
        Some(other) => {
            return Err(ValidationError::new(
                field,
                format!("expected text, got {}", json_kind(&other)),
                SEEN_WITHIN_ACCEPTED,
            ))
        }
    };
    let (digits, per) = match text.strip_suffix('d') {
        Some(d) => (d, 24),
        None => match text.strip_suffix('h') {
            Some(h) => (h, 1),
            None => (text.as_str(), 24),
        },
    };
    let hours = digits
        .parse::<u32>()
        .ok()
        .and_then(|n| n.checked_mul(per))
        .filter(|h| (1..=3_650 * 24).contains(h))
        .ok_or_else(|| {
            ValidationError::new(
                field,
                format!("{:?} is not a usable window", ids::short(&text)),
                SEEN_WITHIN_ACCEPTED,
            )
        })?;
    Ok(Some(hours))
}

/// Parses `refresh_stats` parameters.
///
/// # Errors
/// The first invalid or unknown parameter; no filter without `all: true`, or a filter with
/// it, on `all` with [`REFRESH_FILTER_ACCEPTED`].
pub fn refresh(params: &Map<String, Value>) -> Result<RefreshParams, ValidationError> {
    let raw: RawRefresh = raw(params, &declare::names(declare::REFRESH, &[]))?;
    let seen_within_hours = seen_within(raw.seen_within)?;
    let channel_id = optional_string(raw.channel_id, "channel_id", "a channel id (UC…)")?
        .map(|c| c.trim().to_owned());
    if let Some(c) = &channel_id {
        if !ids::is_channel_id(c) {
            return Err(ValidationError::new(
                "channel_id",
                format!("{:?} is not a channel id", ids::short(c)),
                "a channel id: UC followed by 22 letters, digits, - or _ (the filter matches the stored channel id)",
            ));
        }
    }
    let schedule = optional_string(raw.schedule, "schedule", "a schedule's name")?;
    if let Some(name) = &schedule {
        prismq_domain::schedule::check_name(name).map_err(|e| ValidationError {
            field: "schedule".into(),
            ..e
        })?;
    }
    let all = match raw.all {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(other) => {
            return Err(ValidationError::new(
                "all",
                format!("expected true or false, got {}", json_kind(&other)),
                "true (every tracked video) or false",
            ))
        }
    };
    let filtered = seen_within_hours.is_some() || channel_id.is_some() || schedule.is_some();
    if filtered == all {
        let problem = if all {
            "all: true is given together with a filter"
        } else {
            "no filter is given and all is not true"
        };
        return Err(ValidationError::new(
            "all",
            problem,
            REFRESH_FILTER_ACCEPTED,
        ));
    }
    let method = choice(
        raw.method,
        "method",
        &[
            ("list", RefreshMethod::List),
            ("batch_get_stats", RefreshMethod::BatchGetStats),
        ],
    )?
    .unwrap_or(RefreshMethod::List);
    Ok(RefreshParams {
        seen_within_hours,
        channel_id,
        schedule,
        method,
    })
}

/// Reads the raw struct with the domain's parameter reader, which refuses unknown keys by
/// name; `known` only words what is accepted.
fn raw<T: serde::de::DeserializeOwned>(
    params: &Map<String, Value>,
    known: &[&str],
) -> Result<T, ValidationError> {
    prismq_domain::params::parse(params, &format!("the parameters {}", known.join(", ")))
}

fn required_string(
    value: Option<Value>,
    field: &str,
    accepted: &str,
) -> Result<String, ValidationError> {
    optional_string(value, field, accepted)?
        .ok_or_else(|| ValidationError::new(field, "missing", accepted))
}

fn optional_string(
    value: Option<Value>,
    field: &str,
    accepted: &str,
) -> Result<Option<String>, ValidationError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ValidationError::new(
            field,
            format!("expected text, got {}", json_kind(&other)),
            accepted,
        )),
    }
}

/// An integer in `min..=max`, given as a JSON integer or a string of digits.
fn integer(
    value: Option<Value>,
    field: &str,
    min: u32,
    max: u32,
) -> Result<Option<u32>, ValidationError> {
    let accepted = format!("a whole number from {min} to {max}");
    let n: i128 = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => i128::from(i),
            None => match n.as_u64() {
                Some(u) => i128::from(u),
                None => {
                    return Err(ValidationError::new(
                        field,
                        format!("{n} is not a whole number"),
                        accepted,
                    ))
                }
            },
        },
        Some(Value::String(s)) => s.trim().parse::<i128>().map_err(|_| {
            ValidationError::new(
                field,
                format!("{:?} is not a whole number", ids::short(&s)),
                accepted.clone(),
            )
        })?,
        Some(other) => {
            return Err(ValidationError::new(
                field,
                format!("expected a number, got {}", json_kind(&other)),
                accepted,
            ))
        }
    };
    if n < i128::from(min) || n > i128::from(max) {
        return Err(ValidationError::new(
            field,
            format!("{n} is out of range"),
            accepted,
        ));
    }
    Ok(Some(n as u32))
}

/// `true` or `false`, as JSON or as text; absent or null is `None`.
fn boolean(value: Option<Value>, field: &str) -> Result<Option<bool>, ValidationError> {
    const ACCEPTED: &str = "true or false";
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(ValidationError::new(
                field,
                format!("{:?} is not true or false", ids::short(&s)),
                ACCEPTED,
            )),
        },
        Some(other) => Err(ValidationError::new(
            field,
            format!("expected true or false, got {}", json_kind(&other)),
            ACCEPTED,
        )),
    }
}

/// One of `options` by name, case-insensitively.
fn choice<T: Copy>(
    value: Option<Value>,
    field: &str,
    options: &[(&str, T)],
) -> Result<Option<T>, ValidationError> {
    let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
    let accepted = format!("one of {}", names.join(", "));
    choice_accepting(value, field, options, &accepted)
}

/// [`choice`] with its own words for what is accepted.
fn choice_accepting<T: Copy>(
    value: Option<Value>,
    field: &str,
    options: &[(&str, T)],
    accepted: &str,
) -> Result<Option<T>, ValidationError> {
    let accepted = accepted.to_owned();
    let Some(text) = optional_string(value, field, &accepted)? else {
        return Ok(None);
    };
    let lower = text.trim().to_ascii_lowercase();
    options
        .iter()
        .find(|(n, _)| *n == lower)
        .map(|(_, v)| Some(*v))
        .ok_or_else(|| {
            ValidationError::new(
                field,
                format!("{:?} is not a known value", ids::short(&text)),
                accepted,
            )
        })
}

#[cfg(test)]
mod tests;
