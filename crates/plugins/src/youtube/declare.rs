//! The YouTube task types' parameters, declared for their JSON Schemas (`prismq types`,
//! `GET /v1/types`), and the source of the names `params.rs` quotes as accepted. `params.rs`
//! stays the check at enqueue time; `declare_tests.rs` holds the two together: every value a
//! declaration allows at its edges passes the check, and every value just outside is refused
//! naming the parameter.

use prismq_domain::param_spec::{ParamKind, ParamSpec, TaskForm};

/// The most characters of a `keyword_search` query.
pub const MAX_QUERY_CHARS: usize = 500;

/// The names of `specs`, with `aliases` (accepted spellings such as `country`, each
/// `(after, alias)`) after the parameter they stand for: how an error words what is
/// accepted.
pub fn names(specs: &[ParamSpec], aliases: &[(&'static str, &'static str)]) -> Vec<&'static str> {
    let mut out = Vec::new();
    for s in specs {
        out.push(s.name);
        out.extend(
            aliases
                .iter()
                .filter(|(after, _)| *after == s.name)
                .map(|(_, a)| *a),
        );
    }
    out
}

/// The most videos one `api_scrape` task may name.
pub const MAX_API_VIDEOS: usize = 5_000;

const TOP_N: &str = "how many videos to collect";
const BASELINES: ParamSpec = ParamSpec::optional(
    "baselines",
    "enqueue a scrape of each found channel without a baseline, once per channel and day (default: [youtube] baselines_on_demand)",
    ParamKind::Boolean { default: None },
)
.cli_help(
    "Enqueue a scrape of each found channel without a baseline, once per channel and day (default: `[youtube] baselines_on_demand`)",
    Some("Do not, whatever `[youtube] baselines_on_demand` says"),
);
const REGION: &str = "ISO 3166-1 alpha-2 country code";

/// `channel_scrape`.
pub const CHANNEL: &[ParamSpec] = &[
    ParamSpec::required(
        "channel_url",
        "a channel URL (optionally ending in /videos, /shorts or /streams), @handle or UC… id",
        ParamKind::Text {
            max_chars: 2_048,
            examples: &[
                "@GoogleDevelopers",
                "https://www.youtube.com/@GoogleDevelopers/shorts",
                "UC_x5XG1OV2P6uZZ5FSM9Ttw",
            ],
        },
    )
    .flag("channel")
    .positional("CHANNEL")
    .cli_help("A channel URL, @handle, handle or UC… id", None),
    ParamSpec::optional(
        "top_n",
        TOP_N,
        ParamKind::Integer {
            min: 1,
            max: 500,
            default: Some(10),
        },
    )
    .value_name("N")
    .cli_help("How many of its newest videos (1-500; default 10)", None),
    ParamSpec::optional(
        "max_age_days",
        "only videos published within this many days",
        ParamKind::Integer {
            min: 1,
            max: 36_500,
            default: None,
        },
    )
    .value_name("DAYS")
    .cli_help("Only videos published within this many days", None),
    ParamSpec::optional(
        "tab",
        "long-form videos, Shorts, past live streams, or every upload",
        ParamKind::Choice {
            options: &["videos", "shorts", "streams", "all"],
            default: Some("videos"),
        },
    )
    .value_name("TAB")
    .cli_help("videos (long-form), shorts, streams (past live streams) or all uploads (default videos, or the tab the channel URL ends in)", None),
];

/// `trending_scrape` (`country` is also accepted for `region`).
pub const TRENDING: &[ParamSpec] = &[
    ParamSpec::optional(
        "region",
        REGION,
        ParamKind::Text {
            max_chars: 2,
            examples: &["US", "gb"],
        },
    )
    .flag("country")
    .value_name("CC")
    .cli_help("The chart's country, ISO 3166-1 alpha-2 (default US)", None),
    ParamSpec::optional(
        "category",
        "a category name (all, music, gaming, …) or id (default all)",
        ParamKind::Text {
            max_chars: 40,
            examples: &["all", "music", "10"],
        },
    )
    .value_name("CATEGORY")
    .cli_help(
        "all, music, gaming, movies, … or a category id (default all)",
        None,
    ),
    ParamSpec::optional(
        "top_n",
        TOP_N,
        ParamKind::Integer {
            min: 1,
            max: 200,
            default: Some(50),
        },
    )
    .value_name("N")
    .cli_help("How many videos (1-200; default 50)", None),
    BASELINES,
];

/// `keyword_search`.
pub const KEYWORD: &[ParamSpec] = &[
    ParamSpec::required(
        "query",
        "what to search for",
        ParamKind::Text {
            max_chars: MAX_QUERY_CHARS as u32,
            examples: &["surf trip", "rust tutorials"],
        },
    )
    .positional("QUERY")
    .cli_help("The search query", None),
    ParamSpec::optional(
        "top_n",
        TOP_N,
        ParamKind::Integer {
            min: 1,
            max: 500,
            default: Some(50),
        },
    )
    .value_name("N")
    .cli_help("How many videos (1-500; default 50)", None),
    ParamSpec::optional(
        "published_within",
        "how far back to look",
        ParamKind::Choice {
            options: &["day", "week", "month", "year", "all"],
            default: Some("all"),
        },
    )
    .value_name("WINDOW")
    .cli_help("day, week, month, year or all (default all)", None),
    ParamSpec::optional(
        "duration",
        "short (under 4 minutes), medium (4–20), long (over 20) or any",
        ParamKind::Choice {
            options: &["short", "medium", "long", "any"],
            default: Some("any"),
        },
    )
    .value_name("LENGTH")
    .cli_help("short, medium, long or any (default any)", None),
    ParamSpec::optional(
        "sort_by",
        "the search's order",
        ParamKind::Choice {
            options: &["relevance", "date", "views", "rating"],
            default: Some("relevance"),
        },
    )
    .value_name("ORDER")
    .cli_help("relevance, date, views or rating (default relevance)", None),
    ParamSpec::optional(
        "region",
        REGION,
        ParamKind::Text {
            max_chars: 2,
            examples: &["US", "de"],
        },
    )
    .flag("country")
    .value_name("CC")
    .cli_help("Search results for this country (ISO 3166-1 alpha-2)", None),
    ParamSpec::optional(
        "language",
        "ISO 639-1 language code the results should prefer",
        ParamKind::Text {
            max_chars: 2,
            examples: &["en", "de"],
        },
    )
    .value_name("LANG")
    .cli_help("Prefer this language (ISO 639-1)", None),
    BASELINES,
];

/// `api_scrape`.
pub const API: &[ParamSpec] = &[ParamSpec::required(
    "videos",
    "video ids or URLs (watch?v=, youtu.be/, /shorts/)",
    ParamKind::TextList {
        max_items: MAX_API_VIDEOS as u32,
        examples: &["dQw4w9WgXcQ", "https://youtu.be/jNQXAC9IVRw"],
    },
)
.positional("ID_OR_URL")
.cli_help("Video ids or URLs (watch?v=, youtu.be/, /shorts/)", None)];

/// `refresh_stats`: at least one filter (`seen_within`, `channel_id`, `schedule`, which
/// combine), or `all: true` alone. That rule joins parameters, which a list of
/// parameters cannot say; the check says it when it refuses.
pub const REFRESH: &[ParamSpec] = &[
    ParamSpec::optional(
        "seen_within",
        "only videos seen within this long: 7d, 12h (1h to 3650d; a bare number is days)",
        ParamKind::Text {
            max_chars: 16,
            examples: &["7d", "12h"],
        },
    )
    .value_name("WINDOW")
    .cli_help("Only videos seen (saved by a task) within this window: 7d, 12h (1h to 3650d)", None),
    ParamSpec::optional(
        "channel_id",
        "only this channel's videos (UC…)",
        ParamKind::Text {
            max_chars: 24,
            examples: &["UC_x5XG1OV2P6uZZ5FSM9Ttw"],
        },
    )
    .value_name("UC_ID")
    .cli_help("Only videos of this channel id (UC…)", None),
    ParamSpec::optional(
        "schedule",
        "only videos found by this schedule's tasks",
        ParamKind::Text {
            max_chars: 100,
            examples: &["veritasium-6h"],
        },
    )
    .value_name("NAME")
    .cli_help("Only videos whose last saving task this schedule enqueued", None),
    ParamSpec::optional(
        "all",
        "every tracked video (only without a filter)",
        ParamKind::Boolean {
            default: Some(false),
        },
    )
    .cli_help("Every tracked video (instead of a filter)", None),
    ParamSpec::optional(
        "method",
        "videos.list (the general bucket) or videos:batchGetStats (its own bucket)",
        ParamKind::Choice {
            options: &["list", "batch_get_stats"],
            default: Some("list"),
        },
    )
    .value_name("METHOD")
    .cli_help("list (videos.list, the general bucket; default) or batch_get_stats (videos:batchGetStats, its own bucket; counters only)", None),
];

/// The typed forms of `prismq enqueue` (and `collect`, `schedule add`), in the order help
/// lists them, each built from the declaration above: a parameter added there is a flag.
pub const FORMS: &[TaskForm] = &[
    TaskForm {
        name: "channel",
        task_type: "channel_scrape",
        about: "a channel's newest videos",
        collect: Some("A channel's newest videos"),
        params: CHANNEL,
    },
    TaskForm {
        name: "trending",
        task_type: "trending_scrape",
        about: "a region's most popular videos",
        collect: Some("A region's most popular videos (needs YOUTUBE_API_KEY)"),
        params: TRENDING,
    },
    TaskForm {
        name: "keyword",
        task_type: "keyword_search",
        about: "videos matching a search query",
        collect: Some("Videos matching a search query"),
        params: KEYWORD,
    },
    TaskForm {
        name: "videos",
        task_type: "api_scrape",
        about: "specific videos by id or URL",
        collect: Some("Specific videos by id or URL"),
        params: API,
    },
    TaskForm {
        name: "refresh-stats",
        task_type: "refresh_stats",
        about: "new metrics for tracked videos (seen within, of a channel, a schedule's)",
        collect: None,
        params: REFRESH,
    },
];
