//! Growth over windows through the real binary: `results list --order growth --window`,
//! the first-seen, channel and task filters, `results show` with its growth lines and its
//! terminal chart, the export's growth columns, and refusals of windows and instants that
//! make no sense (exit 2, nothing written).

use serde_json::Value;

use prismq_domain::{ContentItem, TaskId};

use crate::support::Sandbox;

fn video(channel: &str, id: &str, views: i64) -> ContentItem {
    let mut item = ContentItem::new("youtube_channel", id, format!("video {id}"));
    item.channel_id = Some(channel.to_owned());
    item.metrics.views = Some(views);
    item.metrics.likes = Some(views / 100);
    item
}

/// Three videos saved by task 1, then again by task 2 with more views; their first
/// snapshots are moved 30 h back, so the 24 h window is whole and the 1 h window sees only
/// the last stretch. `fast` gains 30,000 views, `slow` 3,000, `other` (channel UCb) 300.
/// Then `rescore` recomputes their growth from the moved history.
fn seeded() -> Sandbox {
    let s = Sandbox::new();
    let first = [
        video("UCa", "fast", 1_000),
        video("UCa", "slow", 1_000),
        video("UCb", "other", 1_000),
    ];
    let later = [
        video("UCa", "fast", 31_000),
        video("UCa", "slow", 4_000),
        video("UCb", "other", 1_300),
    ];
    s.inspect(async |app| {
        app.results
            .save(Some(TaskId(1)), &first)
            .await
            .expect("save");
        app.results
            .save(Some(TaskId(2)), &later)
            .await
            .expect("save");
    });
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    conn.execute(
        "UPDATE result_metrics SET captured_at = captured_at - 30 * 3600000 WHERE views = 1000",
        [],
    )
    .unwrap();
    conn.execute(
        "UPDATE results SET first_seen_at = first_seen_at - 30 * 3600000",
        [],
    )
    .unwrap();
    s.ok(&["results", "rescore"]);
    s
}

fn ids(v: &Value) -> Vec<&str> {
    v.as_array()
        .expect("a JSON array")
        .iter()
        .map(|r| r["item"]["source_id"].as_str().unwrap())
        .collect()
}

fn json_of(s: &Sandbox, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&s.ok(&all)).expect("JSON output")
}

#[test]
fn growth_lists_shows_and_exports_by_window() {
    let s = seeded();
    let day = json_of(
        &s,
        &["results", "list", "--order", "growth", "--window", "24h"],
    );
    assert_eq!(ids(&day), ["fast", "slow", "other"]);
    let rate = day[0]["growth"]["24h"]["views_per_hour"].as_f64().unwrap();
    assert!(
        (rate - 1_000.0).abs() < 1.0,
        "30,000 views over 30 h, 24 h of it: {rate}"
    );
    assert_eq!(day[0]["growth"]["24h"]["span_secs"], 86_400);
    let month = json_of(
        &s,
        &["results", "list", "--order", "growth", "--window", "30d"],
    );
    assert!(month[0]["growth"]["30d"]["span_secs"].as_i64().unwrap() >= 30 * 3_600);
    // Filters: one channel; the videos a task found (both tasks found all three); first
    // seen within a day (none: all were first seen 30 h ago).
    let ucb = json_of(&s, &["results", "list", "--channel", "UCb"]);
    assert_eq!(ids(&ucb), ["other"]);
    let task = json_of(&s, &["results", "list", "--task", "2", "--order", "growth"]);
    assert_eq!(ids(&task), ["fast", "slow", "other"]);
    let by_first = json_of(&s, &["results", "list", "--task", "1"]);
    let mut first = ids(&by_first);
    first.sort_unstable();
    assert_eq!(first, ["fast", "other", "slow"]);
    assert!(json_of(&s, &["results", "list", "--task", "3"])
        .as_array()
        .unwrap()
        .is_empty());
    assert!(json_of(&s, &["results", "list", "--new-since", "1d"])
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(
        json_of(&s, &["results", "list", "--new-since", "2d"])
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let table = s.ok(&["results", "list", "--order", "growth", "--window", "24h"]);
    assert!(table.contains("VIEWS/H"), "{table}");
    assert!(table.contains("1,000"), "{table}");

    let show = s.ok(&["results", "show", "fast"]);
    assert!(show.contains("growth 24h"), "{show}");
    assert!(show.contains("+24,000 views"), "{show}");
    assert!(show.contains("over the whole window"), "{show}");
    assert!(show.contains("views over time:"), "{show}");
    assert!(show.contains("31,000"), "{show}");
    let shown = json_of(&s, &["results", "show", "fast"]);
    assert_eq!(shown[0]["growth"]["24h"]["views"], 24_000);
    assert_eq!(shown[0]["growth"]["24h"]["likes"], 240);

    let csv = s.ok(&[
        "results", "export", "--format", "csv", "--out", "-", "--order", "growth",
    ]);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = header
        .iter()
        .position(|h| *h == "growth_24h_views_per_hour")
        .unwrap();
    let first: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(first[1], "fast");
    assert_eq!(first[at], "1000.000");
    assert_eq!(first[at + 1], "86400");
}

#[test]
fn windows_and_instants_that_make_no_sense_are_refused() {
    let s = seeded();
    let before = std::fs::read(s.db()).unwrap();
    for (args, wants) in [
        (
            &["results", "list", "--window", "0h"][..],
            &["--window", "\"0h\" is not a growth window", "1h, 24h"][..],
        ),
        (
            &["results", "list", "--window", "2h"],
            &["1h, 24h (or 1d), 7d, 30d"],
        ),
        (
            &["results", "list", "--new-since", "yesterday-ish"],
            &["new-since", "yesterday-ish", "a duration such as 7d"],
        ),
        (&["results", "list", "--task", "0"], &["task"]),
    ] {
        let out = s.command(args).output().expect("run prismq");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        for w in wants {
            assert!(err.contains(w), "{args:?}: {w:?} not in {err}");
        }
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert!(std::fs::read(s.db()).unwrap() == before, "nothing written");
}
