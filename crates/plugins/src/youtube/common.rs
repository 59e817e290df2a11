//! What the four handlers share: reading a task's parameters, turning a source's answer
//! into a [`TaskResult`] (or, when it stopped midway, into a [`TaskError`] carrying the
//! items fetched before it stopped), and the task type names and source values.

use prismq_domain::plugin::FollowUp;
use prismq_domain::{
    ContentItem, NewTask, Task, TaskError, TaskResult, TaskType, Timestamp, ValidationError,
};
use serde_json::{Map, Value};

use super::source::{Fetched, SourceError, Stopped};
use super::video::Video;

/// `channel_scrape`.
pub const CHANNEL_SCRAPE: &str = "channel_scrape";
/// `trending_scrape`.
pub const TRENDING_SCRAPE: &str = "trending_scrape";
/// `keyword_search`.
pub const KEYWORD_SEARCH: &str = "keyword_search";
/// `api_scrape`.
pub const API_SCRAPE: &str = "api_scrape";

/// `refresh_stats`.
pub const REFRESH_STATS: &str = "refresh_stats";

/// The five task types this plugin handles.
pub const TASK_TYPES: [&str; 5] = [
    CHANNEL_SCRAPE,
    TRENDING_SCRAPE,
    KEYWORD_SEARCH,
    API_SCRAPE,
    REFRESH_STATS,
];

/// A task type constant as a [`TaskType`]; the names above are valid by construction.
pub(crate) fn task_type(name: &'static str) -> TaskType {
    TaskType::new(name).unwrap_or_else(|e| unreachable!("{name} is a valid task type: {e}"))
}

/// The task's parameters as an object, parsed by `parse`.
pub(crate) fn parse_task<T>(
    task: &Task,
    parse: fn(&Map<String, Value>) -> Result<T, ValidationError>,
) -> Result<T, TaskError> {
    let empty = Map::new();
    let params = match &task.params {
        Value::Object(m) => m,
        Value::Null => &empty,
        other => {
            return Err(ValidationError::new(
                "params",
                format!(
                    "expected an object, got {}",
                    prismq_domain::task::json_kind(other)
                ),
                "a JSON object of parameters",
            )
            .into())
        }
    };
    Ok(parse(params)?)
}

/// `now` minus `hours`, or `None` when that is before the representable range.
pub(crate) fn hours_before(now: Timestamp, hours: i64) -> Option<Timestamp> {
    now.checked_sub(jiff::SignedDuration::from_hours(hours))
        .ok()
}

/// A source error as the task's error.
pub(crate) fn fail(e: SourceError) -> TaskError {
    e.to_task_error()
}

/// A source that stopped midway as the task's error, carrying the videos it fetched
/// before it stopped as partial items — built exactly like a success's items, so the
/// retry that completes the task updates the same rows.
pub(crate) fn stopped(
    source: &str,
    backend: &str,
    stopped: Stopped,
    extra: impl Fn(usize, &Video) -> Map<String, Value>,
) -> TaskError {
    let partial = items(source, backend, stopped.partial.videos, extra);
    stopped.error.to_task_error().with_partial(partial)
}

/// One item per video with `extra(index, video)` and the backend merged in.
pub(crate) fn items(
    source: &str,
    backend: &str,
    videos: Vec<Video>,
    extra: impl Fn(usize, &Video) -> Map<String, Value>,
) -> Vec<ContentItem> {
    videos
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let mut x = extra(i, &v);
            x.insert("backend".into(), Value::String(backend.to_string()));
            v.into_item(source, x)
        })
        .collect()
}

/// Builds the result: one item per video with `extra(index, video)` merged in.
pub(crate) fn result(
    source: &str,
    backend: &str,
    fetched: Fetched,
    what: &str,
    extra: impl Fn(usize, &Video) -> Map<String, Value>,
) -> TaskResult {
    let count = fetched.videos.len();
    let items = items(source, backend, fetched.videos, extra);
    let mut summary = format!("{count} videos from {what} via {backend}");
    for note in &fetched.notes {
        summary.push_str("; ");
        summary.push_str(note);
    }
    let mut counters = fetched.counters;
    counters.insert("videos".into(), count as u64);
    TaskResult {
        items,
        summary,
        counters,
        follow_ups: Vec::new(),
    }
}

/// The most channel scrapes one task asks for to give channels a baseline (each costs
/// about two units on the Data API: one page of uploads and their details).
pub const MAX_BASELINE_FOLLOW_UPS: usize = 25;

/// The uploads a baseline scrape collects: one page, enough for the default window of 30
/// uploads older than a week.
pub const BASELINE_SCRAPE_TOP_N: u32 = 50;

/// Follow-ups that give the found videos' channels a baseline (issue: baselines on
/// demand): for each distinct channel id among `items`, in their order and at most
/// [`MAX_BASELINE_FOLLOW_UPS`], a `channel_scrape` of its newest
/// [`BASELINE_SCRAPE_TOP_N`] uploads on the tab of the video's format (`shorts` for a
/// Short, `videos` otherwise), skipped by the runtime when the channel already has a
/// baseline. The idempotency key `baseline:<channel>:<tab>:<day>` (the day of the task's
/// claim, UTC) makes it once per channel, tab and day however many tasks find the channel.
pub(crate) fn baseline_follow_ups(task: &Task, items: &[ContentItem]) -> Vec<FollowUp> {
    let day = task.updated_at.to_string();
    let day = day.get(..10).unwrap_or("");
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for item in items {
        let Some(channel) = item.channel_id.as_deref() else {
            continue;
        };
        if !super::ids::is_channel_id(channel) {
            continue;
        }
        let short = item.extra.get("is_short").and_then(Value::as_bool) == Some(true);
        let tab = if short { "shorts" } else { "videos" };
        if !seen.insert((channel.to_owned(), tab)) {
            continue;
        }
        if out.len() == MAX_BASELINE_FOLLOW_UPS {
            break;
        }
        let mut new = NewTask::new(
            task_type(CHANNEL_SCRAPE),
            serde_json::json!({
                "channel_url": format!("https://www.youtube.com/channel/{channel}"),
                "top_n": BASELINE_SCRAPE_TOP_N,
                "tab": tab,
            }),
        );
        new.priority = task.priority;
        new.idempotency_key = Some(format!("baseline:{channel}:{tab}:{day}"));
        out.push(FollowUp {
            task: new,
            unless_channel_has_baseline: Some(channel.to_owned()),
        });
    }
    out
}
