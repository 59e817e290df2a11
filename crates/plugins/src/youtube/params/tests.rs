//! Unit tests of the parameter parsers: every default, every bad input, and "never panics".

use super::*;
use proptest::prelude::*;
use serde_json::json;

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("test input is an object"),
    }
}

fn err_field<T: std::fmt::Debug>(r: Result<T, ValidationError>) -> String {
    let e = r.expect_err("should be refused");
    assert!(!e.problem.is_empty() && !e.accepted.is_empty(), "{e:?}");
    e.field
}

#[test]
fn channel_defaults_and_values() {
    let p = channel(&obj(json!({"channel_url": "@GoogleDevelopers"}))).unwrap();
    assert_eq!(p.channel, ChannelRef::Handle("GoogleDevelopers".into()));
    assert_eq!(
        (p.top_n, p.max_age_days, p.tab),
        (10, None, ChannelTab::Videos)
    );
    let p = channel(&obj(json!({
        "channel_url": "https://www.youtube.com/channel/UC_x5XG1OV2P6uZZ5FSM9Ttw",
        "top_n": "500", "max_age_days": 30, "tab": "Shorts"
    })))
    .unwrap();
    assert_eq!(
        (p.top_n, p.max_age_days, p.tab),
        (500, Some(30), ChannelTab::Shorts)
    );
}

#[test]
fn channel_bad_inputs() {
    let cases = [
        (json!({}), "channel_url"),
        (json!({"channel_url": null}), "channel_url"),
        (json!({"channel_url": 5}), "channel_url"),
        (json!({"channel_url": ""}), "channel_url"),
        (json!({"channel_url": "--exec=rm -rf ~"}), "channel_url"),
        (
            json!({"channel_url": "https://example.com/@x"}),
            "channel_url",
        ),
        (json!({"channel_url": "@x", "top_n": 10}), "channel_url"),
        (json!({"channel_url": "@abc", "top_n": 0}), "top_n"),
        (json!({"channel_url": "@abc", "top_n": 501}), "top_n"),
        (json!({"channel_url": "@abc", "top_n": -1}), "top_n"),
        (json!({"channel_url": "@abc", "top_n": 1.5}), "top_n"),
        (json!({"channel_url": "@abc", "top_n": "ten"}), "top_n"),
        (json!({"channel_url": "@abc", "top_n": true}), "top_n"),
        (json!({"channel_url": "@abc", "top_n": 1e30}), "top_n"),
        (
            json!({"channel_url": "@abc", "max_age_days": 0}),
            "max_age_days",
        ),
        (
            json!({"channel_url": "@abc", "max_age_days": 40000}),
            "max_age_days",
        ),
        (json!({"channel_url": "@abc", "tab": "live"}), "tab"),
        (json!({"channel_url": "@abc", "tab": 1}), "tab"),
        (json!({"channel_url": "@abc", "topn": 5}), "topn"),
    ];
    for (input, field) in cases {
        assert_eq!(err_field(channel(&obj(input.clone()))), field, "{input}");
    }
}

#[test]
fn unknown_parameter_message_lists_the_known_ones() {
    let e = channel(&obj(json!({"channel_url": "@abc", "top": 5}))).unwrap_err();
    assert_eq!(e.field, "top");
    assert_eq!(e.problem, "unknown parameter");
    assert!(
        e.accepted.contains("channel_url, top_n, max_age_days, tab"),
        "{e}"
    );
}

#[test]
fn trending_defaults_alias_and_categories() {
    let p = trending(&Map::new()).unwrap();
    assert_eq!(
        (p.region.as_str(), p.category_id.as_str(), p.top_n),
        ("US", "0", 50)
    );
    let p = trending(&obj(
        json!({"country": "de", "category": "Music", "top_n": 200}),
    ))
    .unwrap();
    assert_eq!(
        (p.region.as_str(), p.category_id.as_str(), p.top_n),
        ("DE", "10", 200)
    );
    let p = trending(&obj(json!({"region": "gb", "category": 20}))).unwrap();
    assert_eq!((p.region.as_str(), p.category_id.as_str()), ("GB", "20"));
    let p = trending(&obj(json!({"category": "news"}))).unwrap();
    assert_eq!(p.category_id, "25");
}

#[test]
fn trending_bad_inputs() {
    let cases = [
        (json!({"region": "USA"}), "region"),
        (json!({"region": "XX"}), "region"),
        (json!({"region": 1}), "region"),
        (json!({"country": "ZZ"}), "country"),
        (json!({"region": "US", "country": "US"}), "country"),
        (json!({"category": "musik"}), "category"),
        (json!({"category": 1000}), "category"),
        (json!({"category": -1}), "category"),
        (json!({"category": []}), "category"),
        (json!({"top_n": 0}), "top_n"),
        (json!({"top_n": 201}), "top_n"),
        (json!({"regoin": "US"}), "regoin"),
    ];
    for (input, field) in cases {
        assert_eq!(err_field(trending(&obj(input.clone()))), field, "{input}");
    }
}

#[test]
fn keyword_defaults_and_values() {
    let p = keyword(&obj(json!({"query": "  surf trip "}))).unwrap();
    assert_eq!(p.query, "surf trip");
    assert_eq!(p.top_n, 50);
    assert_eq!(p.published_within, PublishedWithin::All);
    assert_eq!(p.duration, DurationFilter::Any);
    assert_eq!(p.sort_by, SortBy::Relevance);
    assert_eq!((p.region, p.language), (None, None));
    let p = keyword(&obj(json!({
        "query": "surf", "top_n": 500, "published_within": "week", "duration": "LONG",
        "sort_by": "views", "region": "us", "language": "EN"
    })))
    .unwrap();
    assert_eq!(p.sort_by.api_value(), "viewCount");
    assert_eq!(p.duration.api_value(), "long");
    assert_eq!(p.published_within.hours(), Some(168));
    assert_eq!(
        (p.region.as_deref(), p.language.as_deref()),
        (Some("US"), Some("en"))
    );
}

#[test]
fn keyword_bad_inputs() {
    let cases = [
        (json!({}), "query"),
        (json!({"query": ""}), "query"),
        (json!({"query": "   "}), "query"),
        (json!({"query": 42}), "query"),
        (json!({"query": "a\u{0}b"}), "query"),
        (json!({"query": "x".repeat(501)}), "query"),
        (json!({"query": "q", "top_n": 0}), "top_n"),
        (json!({"query": "q", "top_n": 501}), "top_n"),
        (
            json!({"query": "q", "published_within": "decade"}),
            "published_within",
        ),
        (json!({"query": "q", "duration": "tiny"}), "duration"),
        (json!({"query": "q", "sort_by": "viewCount"}), "sort_by"),
        (json!({"query": "q", "region": "EU"}), "region"),
        (json!({"query": "q", "language": "english"}), "language"),
        (json!({"query": "q", "date_filter": "day"}), "date_filter"),
    ];
    for (input, field) in cases {
        assert_eq!(err_field(keyword(&obj(input.clone()))), field, "{input}");
    }
}

#[test]
fn api_videos() {
    let p = api(&obj(json!({"videos": [
        "dQw4w9WgXcQ",
        "https://youtu.be/dQw4w9WgXcQ",
        "https://www.youtube.com/shorts/rTw3pGhYsLM",
        "https://www.youtube.com/watch?v=Kq9MZLmFMHQ&t=1"
    ]})))
    .unwrap();
    let ids: Vec<&str> = p.videos.iter().map(VideoId::as_str).collect();
    assert_eq!(ids, ["dQw4w9WgXcQ", "rTw3pGhYsLM", "Kq9MZLmFMHQ"]);
    let p = api(&obj(json!({"videos": "dQw4w9WgXcQ"}))).unwrap();
    assert_eq!(p.videos.len(), 1);
}

#[test]
fn api_bad_inputs() {
    let cases = [
        (json!({}), "videos"),
        (json!({"videos": []}), "videos"),
        (json!({"videos": {}}), "videos"),
        (json!({"videos": ["dQw4w9WgXcQ", 5]}), "videos[1]"),
        (json!({"videos": ["dQw4w9WgXcQ", "nope"]}), "videos[1]"),
        (json!({"videos": ["https://vimeo.com/1"]}), "videos[0]"),
        (json!({"video": ["dQw4w9WgXcQ"]}), "video"),
    ];
    for (input, field) in cases {
        assert_eq!(err_field(api(&obj(input.clone()))), field, "{input}");
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,30}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(Value::Array)
    })
}

proptest! {
    #[test]
    fn parsers_never_panic(
        keys in prop::collection::vec(
            prop::sample::select(vec![
                "channel_url", "top_n", "max_age_days", "tab", "region", "country",
                "category", "query", "published_within", "duration", "sort_by",
                "language", "videos", "other",
            ]),
            0..5,
        ),
        values in prop::collection::vec(arb_json(), 5),
    ) {
        let params: Map<String, Value> = keys
            .into_iter()
            .zip(values)
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let _ = channel(&params);
        let _ = trending(&params);
        let _ = keyword(&params);
        let _ = api(&params);
    }
}
