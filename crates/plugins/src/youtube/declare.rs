//! The YouTube task types' parameters, declared for their JSON Schemas (`prismq types`,
//! `GET /v1/types`). `params.rs` stays the check at enqueue time; the tests below hold the
//! two together: every value a declaration allows at its edges passes the check, and every
//! value just outside is refused naming the parameter.

use prismq_domain::param_spec::{ParamKind, ParamSpec};

use super::params::MAX_QUERY_CHARS;

/// The most videos one `api_scrape` task may name.
pub const MAX_API_VIDEOS: usize = 5_000;

const TOP_N: &str = "how many videos to collect";
const BASELINES: ParamSpec = ParamSpec::optional(
    "baselines",
    "enqueue a scrape of each found channel without a baseline, once per channel and day (default: [youtube] baselines_on_demand)",
    ParamKind::Boolean { default: None },
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
    ),
    ParamSpec::optional(
        "top_n",
        TOP_N,
        ParamKind::Integer {
            min: 1,
            max: 500,
            default: Some(10),
        },
    ),
    ParamSpec::optional(
        "max_age_days",
        "only videos published within this many days",
        ParamKind::Integer {
            min: 1,
            max: 36_500,
            default: None,
        },
    ),
    ParamSpec::optional(
        "tab",
        "long-form videos, Shorts, past live streams, or every upload",
        ParamKind::Choice {
            options: &["videos", "shorts", "streams", "all"],
            default: Some("videos"),
        },
    ),
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
    ),
    ParamSpec::optional(
        "category",
        "a category name (all, music, gaming, …) or id (default all)",
        ParamKind::Text {
            max_chars: 40,
            examples: &["all", "music", "10"],
        },
    ),
    ParamSpec::optional(
        "top_n",
        TOP_N,
        ParamKind::Integer {
            min: 1,
            max: 200,
            default: Some(50),
        },
    ),
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
    ),
    ParamSpec::optional(
        "top_n",
        TOP_N,
        ParamKind::Integer {
            min: 1,
            max: 500,
            default: Some(50),
        },
    ),
    ParamSpec::optional(
        "published_within",
        "how far back to look",
        ParamKind::Choice {
            options: &["day", "week", "month", "year", "all"],
            default: Some("all"),
        },
    ),
    ParamSpec::optional(
        "duration",
        "short (under 4 minutes), medium (4–20), long (over 20) or any",
        ParamKind::Choice {
            options: &["short", "medium", "long", "any"],
            default: Some("any"),
        },
    ),
    ParamSpec::optional(
        "sort_by",
        "the search's order",
        ParamKind::Choice {
            options: &["relevance", "date", "views", "rating"],
            default: Some("relevance"),
        },
    ),
    ParamSpec::optional(
        "region",
        REGION,
        ParamKind::Text {
            max_chars: 2,
            examples: &["US", "de"],
        },
    ),
    ParamSpec::optional(
        "language",
        "ISO 639-1 language code the results should prefer",
        ParamKind::Text {
            max_chars: 2,
            examples: &["en", "de"],
        },
    ),
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
)];

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
    ),
    ParamSpec::optional(
        "channel_id",
        "only this channel's videos (UC…)",
        ParamKind::Text {
            max_chars: 24,
            examples: &["UC_x5XG1OV2P6uZZ5FSM9Ttw"],
        },
    ),
    ParamSpec::optional(
        "schedule",
        "only videos found by this schedule's tasks",
        ParamKind::Text {
            max_chars: 100,
            examples: &["veritasium-6h"],
        },
    ),
    ParamSpec::optional(
        "all",
        "every tracked video (only without a filter)",
        ParamKind::Boolean {
            default: Some(false),
        },
    ),
    ParamSpec::optional(
        "method",
        "videos.list (the general bucket) or videos:batchGetStats (its own bucket)",
        ParamKind::Choice {
            options: &["list", "batch_get_stats"],
            default: Some("list"),
        },
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::youtube::params;
    use prismq_domain::param_spec::edge_values;
    use prismq_domain::ValidationError;
    use serde_json::{json, Map, Value};

    type Check = fn(&Map<String, Value>) -> Result<(), ValidationError>;

    fn checks() -> Vec<(&'static str, &'static [ParamSpec], Check, Value)> {
        vec![
            (
                "channel_scrape",
                CHANNEL,
                |p| params::channel(p).map(|_| ()),
                json!({"channel_url": "@GoogleDevelopers"}),
            ),
            (
                "trending_scrape",
                TRENDING,
                |p| params::trending(p).map(|_| ()),
                json!({}),
            ),
            (
                "keyword_search",
                KEYWORD,
                |p| params::keyword(p).map(|_| ()),
                json!({"query": "surf"}),
            ),
            (
                "api_scrape",
                API,
                |p| params::api(p).map(|_| ()),
                json!({"videos": ["dQw4w9WgXcQ"]}),
            ),
        ]
    }

    /// Every value `spec` allows at its edges, set on `base`, passes `check`; every value
    /// just outside is refused naming the parameter.
    fn assert_edges(kind: &str, spec: &ParamSpec, base: &Map<String, Value>, check: Check) {
        let (ok, bad) = edge_values(spec);
        for v in ok {
            let mut p = base.clone();
            p.insert(spec.name.into(), v.clone());
            check(&p).unwrap_or_else(|e| panic!("{kind}.{} = {v}: {e}", spec.name));
        }
        for v in bad {
            let mut p = base.clone();
            p.insert(spec.name.into(), v.clone());
            let e = check(&p).expect_err(&format!("{kind}.{} = {v} passed", spec.name));
            assert!(
                e.field.starts_with(spec.name),
                "{kind}.{} = {v}: {e}",
                spec.name
            );
        }
    }

    /// `refresh_stats` joins parameters (a filter, or `all` alone), so its edges are
    /// checked on a base with one filter, leaving out `all`, whose edges follow.
    #[test]
    fn refresh_stats_edges_hold_around_its_one_filter_rule() {
        let check = |p: &Value| params::refresh(p.as_object().unwrap()).map(|_| ());
        let base = json!({"seen_within": "7d"});
        let base = base.as_object().unwrap().clone();
        let specs = REFRESH
            .iter()
            .filter(|s| s.name != "all" && s.name != "seen_within");
        for spec in specs {
            assert_edges("refresh_stats", spec, &base, |p| {
                params::refresh(p).map(|_| ())
            });
        }
        for v in ["7d", "12h"] {
            check(&json!({"seen_within": v})).unwrap();
        }
        check(&json!({"seen_within": ""})).unwrap_err();
        check(&json!({"all": true})).unwrap();
        assert_eq!(check(&json!({"all": false})).unwrap_err().field, "all");
        assert_eq!(
            check(&json!({"all": true, "seen_within": "7d"}))
                .unwrap_err()
                .field,
            "all"
        );
    }

    #[test]
    fn every_declared_edge_is_what_the_check_accepts_and_refuses() {
        for (kind, specs, check, base) in checks() {
            let base = base.as_object().unwrap().clone();
            check(&base).unwrap_or_else(|e| panic!("{kind}: the base params: {e}"));
            for spec in specs {
                assert_edges(kind, spec, &base, check);
                if spec.required {
                    let mut p = base.clone();
                    p.remove(spec.name);
                    let e = check(&p).expect_err(&format!("{kind} without {}", spec.name));
                    assert_eq!(e.field, spec.name, "{kind}");
                }
            }
            // Nothing undeclared is accepted.
            let mut p = base.clone();
            p.insert("topn".into(), json!(5));
            let e = check(&p).expect_err(kind);
            assert!(e.field.contains("topn"), "{kind}: {e}");
        }
    }
}
