//! `results list --order outlier` and its filters through the real binary, on a queue whose
//! results were saved through the app (so the store computed the baselines): the order,
//! the score bounds, the format filter, the table's and JSON's score fields, `results show`
//! explaining a score, the export's columns, and refusals of bad values with exit 2.

use std::process::Output;

use serde_json::{json, Value};

use prismq_domain::{ContentItem, Timestamp};

use crate::support::Sandbox;

/// A video of `channel` published `age_days` ago.
fn video(channel: &str, id: &str, age_days: i64, views: i64, short: bool) -> ContentItem {
    let mut item = ContentItem::new("youtube_channel", id, format!("video {id}"));
    item.channel = Some(format!("Channel {channel}"));
    item.channel_id = Some(channel.to_owned());
    let now = Timestamp::now().as_second();
    item.published_at = Some(Timestamp::from_second(now - 86_400 * age_days).unwrap());
    item.metrics.views = Some(views);
    item.extra.insert("is_short".into(), json!(short));
    item
}

/// Channel UCa: twelve long-form uploads (ten of 1,000 views, then 3,000 and 2,000) with a
/// median of 1,000, a two-day-old upload, eleven Shorts of 500 and one of 2,500 (median
/// 500); channel UCb has five uploads (below the minimum of ten: no scores).
fn seeded() -> Sandbox {
    let s = Sandbox::new();
    let mut items: Vec<ContentItem> = (0..10)
        .map(|i| video("UCa", &format!("long{i:02}"), 40 + i, 1_000, false))
        .collect();
    items.push(video("UCa", "x3", 35, 3_000, false));
    items.push(video("UCa", "x2", 35, 2_000, false));
    items.push(video("UCa", "fresh", 2, 50_000, false));
    items.extend((0..10).map(|i| video("UCa", &format!("short{i:02}"), 40 + i, 500, true)));
    items.push(video("UCa", "s_hit", 35, 2_500, true));
    items.extend((0..5).map(|i| video("UCb", &format!("b{i}"), 40 + i, 9_000, false)));
    s.inspect(async |app| app.results.save(None, &items).await.expect("save"));
    s
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("a JSON array")
        .iter()
        .map(|r| r["item"]["source_id"].as_str().unwrap().to_owned())
        .collect()
}

fn json_of(s: &Sandbox, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&s.ok(&all)).expect("JSON output")
}

fn run(s: &Sandbox, args: &[&str]) -> Output {
    s.command(args).output().expect("run prismq")
}

#[test]
fn list_orders_and_filters_by_outlier_score() {
    let s = seeded();
    let top = json_of(
        &s,
        &["results", "list", "--order", "outlier", "--limit", "3"],
    );
    assert_eq!(ids(&top), ["s_hit", "x3", "x2"]);
    assert_eq!(top[0]["outlier"]["score"], json!(4.0));
    assert_eq!(top[0]["format"], json!("short"));
    assert_eq!(
        top[1]["outlier"],
        json!({ "score": 2.0, "basis": "total", "baseline": 1000.0, "sample": 12, "views": 3000 })
    );
    // Unscored items come last: the new upload and the small channel's.
    let all = json_of(
        &s,
        &["results", "list", "--order", "outlier", "--limit", "100"],
    );
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 29);
    assert!(all[23..].iter().all(|r| r["outlier"].is_null()), "{all:?}");
    assert!(all[..23].iter().all(|r| r["outlier"].is_object()));

    let bounded = json_of(
        &s,
        &[
            "results",
            "list",
            "--order",
            "outlier",
            "--min-score",
            "1",
            "--max-score",
            "2",
        ],
    );
    assert_eq!(ids(&bounded), ["x3", "x2"]);
    let shorts = json_of(
        &s,
        &[
            "results", "list", "--order", "outlier", "--format", "short", "--limit", "2",
        ],
    );
    assert_eq!(ids(&shorts), ["s_hit", "short00"]);
    let below = json_of(&s, &["results", "list", "--max-score", "-0.5"]);
    assert_eq!(ids(&below), Vec::<String>::new());

    let table = s.ok(&["results", "list", "--order", "outlier", "--limit", "2"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].contains("SCORE") && lines[0].contains("BASIS"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("s_hit") && lines[1].contains("4.00"),
        "{table}"
    );
    assert!(lines[1].contains("total/short n=11"), "{table}");
    assert!(
        lines[2].contains("2.00") && lines[2].contains("total/long n=12"),
        "{table}"
    );
}

#[test]
fn show_explains_the_score_and_export_carries_it() {
    let s = seeded();
    let show = s.ok(&["results", "show", "x3"]);
    assert!(
        show.contains(
            "2.00: total views 3,000 against the channel's median of 1,000 over 12 long uploads (3.0x typical)"
        ),
        "{show}"
    );
    assert!(show.contains("total median 1,000 (n=12)"), "{show}");
    let small = s.ok(&["results", "show", "b0"]);
    assert!(
        small.contains("outlier score:") && small.contains("none: no baseline"),
        "{small}"
    );
    assert!(small.contains("total median - (n=5)"), "{small}");
    let shown = json_of(&s, &["results", "show", "x3"]);
    let baselines = shown[0]["baselines"].as_array().unwrap();
    assert!(
        baselines.contains(&json!({
            "channel_id": "UCa", "format": "long", "basis": "total", "median": 1000.0,
            "sample": 12, "computed_at": baselines[0]["computed_at"].clone()
        })),
        "{baselines:?}"
    );

    let out = run(
        &s,
        &[
            "results",
            "export",
            "--format",
            "csv",
            "--out",
            "-",
            "--order",
            "outlier",
            "--video-format",
            "long",
            "--min-score",
            "1.5",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(
        lines[0].ends_with(
            "format,outlier_score,outlier_basis,outlier_baseline,outlier_sample,outlier_views,last_source,last_rank"
        ),
        "{csv}"
    );
    assert!(lines[1].starts_with("youtube,x3,"), "{csv}");
    assert!(
        lines[1].ends_with("long,2,total,1000,12,3000,youtube_channel,"),
        "{csv}"
    );
}

#[test]
fn bad_score_and_format_values_are_refused_with_what_is_accepted() {
    let s = seeded();
    for (args, wants) in [
        (
            &["results", "list", "--min-score", "abc"][..],
            &["--min-score", "not a finite number", "0.5"][..],
        ),
        (
            &["results", "list", "--max-score", "inf"],
            &["--max-score", "not a finite number"],
        ),
        (
            &["results", "list", "--min-score", "2", "--max-score", "1"],
            &[
                "--min-score 2 is above --max-score 1",
                "at most the maximum",
            ],
        ),
        (
            &["results", "list", "--format", "tall"],
            &["tall", "long", "short", "stream"],
        ),
        (
            &["results", "list", "--order", "outliers"],
            &["outliers", "outlier"],
        ),
    ] {
        let out = run(&s, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        for w in wants {
            assert!(err.contains(w), "{args:?}: {w:?} not in {err}");
        }
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

/// `results rescore` recomputes every channel (or one) and says how much it did, in text
/// and JSON; scores stay what the saves made them (nothing changed in between).
#[test]
fn rescore_recomputes_every_channel_or_one() {
    let s = seeded();
    let before = json_of(
        &s,
        &["results", "list", "--order", "outlier", "--limit", "50"],
    );
    let all = json_of(&s, &["results", "rescore"]);
    assert_eq!(all, json!({"channels": 2, "videos": 29, "growth": 29}));
    let one = s.ok(&["results", "rescore", "--channel", "UCb"]);
    assert_eq!(one.trim(), "rescored 5 video(s) of 1 channel(s)");
    let after = json_of(
        &s,
        &["results", "list", "--order", "outlier", "--limit", "50"],
    );
    let scores = |v: &Value| -> Vec<Value> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| json!([r["item"]["source_id"], r["outlier"]]))
            .collect()
    };
    assert_eq!(scores(&before), scores(&after));
    assert_eq!(after[0]["item"]["source_id"], "s_hit");
}
