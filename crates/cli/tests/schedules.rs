//! `prismq schedule …` with the real binary on temporary files: the operator commands with
//! `--json`, bad input refused with what is accepted and the database unchanged, a task that
//! enqueue would refuse refused with enqueue's own message, and `stats` listing schedules.

mod support;

use support::Sandbox;

fn initialised() -> Sandbox {
    let s = Sandbox::new();
    s.ok(&["init"]);
    s
}

#[test]
fn add_list_show_pause_resume_run_now_remove() {
    let s = initialised();
    let added = s.json(&[
        "schedule",
        "add",
        "--name",
        "rust-6h",
        "--every",
        "6h",
        "--jitter",
        "5m",
        "keyword",
        "rust",
        "--top-n",
        "20",
        "--priority",
        "7",
    ]);
    assert_eq!(added["name"], "rust-6h");
    assert_eq!(added["task_type"], "keyword_search");
    assert_eq!(added["params"]["query"], "rust");
    assert_eq!(added["params"]["top_n"], 20);
    assert_eq!(added["priority"], 7);
    assert_eq!(added["cadence"]["every_secs"], 21_600);
    assert_eq!(added["time_zone"], "UTC");
    assert_eq!(added["jitter_secs"], 300);
    assert_eq!(added["paused"], false);
    let text = s.ok(&[
        "schedule",
        "add",
        "--name",
        "prague-morning",
        "--cron",
        "30 2 * * *",
        "--tz",
        "Europe/Prague",
        "trending",
        "--country",
        "CZ",
    ]);
    assert!(
        text.starts_with(
            "added schedule \"prague-morning\" (trending_scrape, cron 30 2 * * *); first slot "
        ),
        "{text}"
    );

    let list = s.json(&["schedule", "list"]);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["prague-morning", "rust-6h"]);
    assert!(list[0]["error"].is_null());
    let table = s.ok(&["schedule", "list"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("every 6h"), "{table}");
    assert!(table.contains("Europe/Prague"), "{table}");
    let show = s.ok(&["schedule", "show", "prague-morning"]);
    assert!(
        show.contains("CET") || show.contains("CEST"),
        "next slot in its zone: {show}"
    );

    let paused = s.json(&["schedule", "pause", "rust-6h"]);
    assert_eq!(paused["paused"], true);
    assert!(s.ok(&["schedule", "list"]).contains("paused"));
    let resumed = s.json(&["schedule", "resume", "rust-6h"]);
    assert_eq!(resumed["paused"], false);

    let ran = s.json(&["schedule", "run-now", "rust-6h"]);
    let id = ran["id"].as_i64().unwrap();
    let task = s.json(&["tasks", "show", &id.to_string()]);
    assert_eq!(task["task"]["task_type"], "keyword_search", "{task}");
    let shown = s.json(&["schedule", "show", "rust-6h"]);
    assert_eq!(shown["last_task"], id);
    s.ok(&["enqueue", "keyword", "not from a schedule"]);
    let listed = s.json(&["tasks", "list", "--schedule", "rust-6h"]);
    let ids: Vec<i64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![id], "only the schedule's task: {listed}");
    let err = s.fails(&["tasks", "list", "--schedule", "nope"], 3);
    assert!(err.contains("schedule \"nope\""), "{err}");
    let stats = s.ok(&["stats"]);
    assert!(stats.contains("schedules: 2"), "{stats}");
    assert!(stats.contains("rust-6h: next "), "{stats}");
    assert!(stats.contains(&format!("last task {id} queued")), "{stats}");
    let stats_json = s.json(&["stats"]);
    assert_eq!(stats_json["schedules"].as_array().unwrap().len(), 2);

    let removed = s.json(&["schedule", "remove", "rust-6h"]);
    assert_eq!(removed["name"], "rust-6h");
    let err = s.fails(&["schedule", "show", "rust-6h"], 3);
    assert!(err.contains("schedule \"rust-6h\""), "{err}");
    assert_eq!(
        s.json(&["tasks", "show", &id.to_string()])["task"]["id"],
        id,
        "its task stays"
    );
}

#[test]
fn bad_schedules_are_refused_with_what_is_accepted_and_nothing_written() {
    let s = initialised();
    s.ok(&[
        "schedule", "add", "--name", "taken", "--every", "1h", "keyword", "x",
    ]);
    let before = s.db_bytes();
    fn add<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec!["schedule", "add", "--name", "n"];
        a.extend_from_slice(extra);
        a
    }
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (add(&["--every", "0s", "keyword", "x"]), 2, "invalid every: \"0s\" is shorter than the minimum of 1 minute; accepted: a duration from 1m to 366d"),
        (add(&["--every", "1ms", "keyword", "x"]), 2, "invalid every: \"1ms\" is shorter than the minimum of 1 minute"),
        (add(&["--cron", "0 0 */6 * * * 2026", "keyword", "x"]), 2, "has 7 fields; accepted: a cron expression of exactly 5 fields"),
        (add(&["--cron", "*/0 * * * *", "keyword", "x"]), 2, "has a step of 0"),
        (add(&["--every", "1h", "--tz", "Mars/Olympus", "keyword", "x"]), 2, "invalid tz: \"Mars/Olympus\" is not a known time zone; accepted: an IANA time zone name"),
        (add(&["--every", "1h", "--jitter", "2h", "keyword", "x"]), 2, "invalid jitter"),
        (add(&["--every", "1h", "keyword", "x", "--delay", "5m"]), 2, "--delay is not a schedule option"),
        (add(&["--every", "1h", "keyword", "x", "--top-n", "0"]), 2, "invalid params.top_n"),
        (add(&["--every", "1h", "raw", "--type", "nope"]), 2, "accepted: api_scrape, channel_scrape, example_echo, keyword_search, refresh_stats, trending_scrape"),
        (vec!["schedule", "add", "--name", "has space", "--every", "1h", "keyword", "x"], 2, "invalid name"),
        (vec!["schedule", "add", "--name", "taken", "--every", "2h", "keyword", "y"], 1, "a schedule named \"taken\" already exists"),
        (vec!["schedule", "pause", "nope"], 3, "schedule \"nope\""),
        (vec!["schedule", "run-now", "nope"], 3, "schedule \"nope\""),
    ];
    for (args, code, needle) in cases {
        let err = s.fails(&args, code);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    assert!(s.db_bytes() == before, "nothing was written");
    // The refusal of a task is enqueue's own message.
    let by_enqueue = s.fails(&["enqueue", "keyword", "x", "--sort-by", "best"], 2);
    let by_schedule = s.fails(
        &[
            "schedule",
            "add",
            "--name",
            "n",
            "--every",
            "1h",
            "keyword",
            "x",
            "--sort-by",
            "best",
        ],
        2,
    );
    assert_eq!(by_schedule, by_enqueue);
}
