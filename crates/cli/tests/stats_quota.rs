//! `prismq stats` on quota, and the typed `refresh-stats` form of `enqueue` and `schedule
//! add`, with the real binary on temporary files: per bucket the units used, the configured
//! limit, what is left and the reset, and the schedules whose task waits for a spent bucket.

mod support;

use serde_json::Value;
use support::Sandbox;

const KEY: &str = "AIzaSyLoopbackTestKey";

fn initialised() -> Sandbox {
    let mut s = Sandbox::new();
    s.env("YOUTUBE_API_KEY", KEY)
        .env("PRISMQ_YOUTUBE__QUOTA_UNITS_PER_DAY", "5");
    s.ok(&["init"]);
    s
}

/// Writes the ledger row a day's spending leaves: `used` units of `bucket`, the window
/// ending in an hour.
fn spend(s: &Sandbox, bucket: &str, used: i64) {
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    let window_end = jiff::Timestamp::now().as_millisecond() + 3_600_000;
    conn.execute(
        "INSERT INTO quota_usage (bucket, window_end, used, exhausted_until) VALUES (?1, ?2, ?3, NULL)",
        rusqlite::params![bucket, window_end, used],
    )
    .unwrap();
}

fn bucket<'a>(stats: &'a Value, name: &str) -> &'a Value {
    stats["quota_buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["bucket"] == name)
        .unwrap_or_else(|| panic!("no {name}: {stats}"))
}

#[test]
fn stats_shows_used_limit_left_and_reset_per_bucket() {
    let s = initialised();
    let stats = s.json(&["stats"]);
    let general = bucket(&stats, "youtube_data_api.general");
    assert_eq!(general["used"], 0, "{stats}");
    assert_eq!(general["limit"], 5, "the configured limit: {stats}");
    assert_eq!(general["left"], 5);
    assert_eq!(general["spent"], false);
    let reset: jiff::Timestamp = general["resets_at"].as_str().unwrap().parse().unwrap();
    let in_pacific = reset.to_zoned(jiff::tz::TimeZone::get("America/Los_Angeles").unwrap());
    assert_eq!(
        (in_pacific.hour(), in_pacific.minute()),
        (0, 0),
        "midnight Pacific"
    );
    assert_eq!(bucket(&stats, "youtube_data_api.search")["limit"], 100);
    assert_eq!(bucket(&stats, "youtube_data_api.stats")["limit"], 10_000);
    assert_eq!(stats["waiting_for_quota"], serde_json::json!([]));

    spend(&s, "youtube_data_api.general", 3);
    let stats = s.json(&["stats"]);
    let general = bucket(&stats, "youtube_data_api.general");
    assert_eq!(
        (general["used"].as_u64(), general["left"].as_u64()),
        (Some(3), Some(2))
    );
    let text = s.ok(&["stats"]);
    assert!(text.contains("quota (per day):\n"), "{text}");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("youtube_data_api.general:"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("3 used of 5, 2 left, resets "), "{line}");
    assert!(text.contains("waiting for quota: none\n"), "{text}");
}

#[test]
fn stats_lists_the_schedules_waiting_for_a_spent_bucket() {
    let s = initialised();
    // The form of the guide, the cadence after the task.
    let added = s.json(&[
        "schedule",
        "add",
        "--name",
        "refresh-week",
        "refresh-stats",
        "--seen-within",
        "7d",
        "--every",
        "1d",
    ]);
    assert_eq!(added["task_type"], "refresh_stats");
    assert_eq!(added["params"], serde_json::json!({"seen_within": "7d"}));
    assert_eq!(added["cadence"]["every_secs"], 86_400);
    s.ok(&[
        "schedule",
        "add",
        "--name",
        "refresh-paused",
        "--every",
        "1d",
        "refresh-stats",
        "--all",
        "--method",
        "batch_get_stats",
    ]);
    s.ok(&[
        "schedule", "add", "--name", "chart", "--every", "1d", "trending",
    ]);
    for name in ["refresh-week", "refresh-paused", "chart"] {
        s.ok(&["schedule", "run-now", name]);
    }
    s.ok(&["schedule", "pause", "refresh-paused"]);
    // Nothing spent: nothing waits.
    assert_eq!(
        s.json(&["stats"])["waiting_for_quota"],
        serde_json::json!([])
    );

    spend(&s, "youtube_data_api.stats", 10_000);
    let stats = s.json(&["stats"]);
    assert_eq!(bucket(&stats, "youtube_data_api.stats")["spent"], true);
    let waiting = stats["waiting_for_quota"].as_array().unwrap();
    assert_eq!(waiting.len(), 1, "only refresh_stats charges it: {stats}");
    assert_eq!(waiting[0]["name"], "refresh-week");
    assert_eq!(waiting[0]["task_type"], "refresh_stats");
    assert_eq!(waiting[0]["bucket"], "youtube_data_api.stats");
    assert_eq!(waiting[0]["last_status"], "queued");

    spend(&s, "youtube_data_api.general", 5);
    let stats = s.json(&["stats"]);
    let names: Vec<&str> = stats["waiting_for_quota"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["chart", "refresh-week"],
        "the paused one is not waiting: {stats}"
    );
    let text = s.ok(&["stats"]);
    assert!(text.contains("waiting for quota:\n"), "{text}");
    assert!(
        text.lines().any(|l| l
            .trim_start()
            .starts_with("chart (trending_scrape): youtube_data_api.general spent until ")
            && l.ends_with("queued")),
        "{text}"
    );
}

#[test]
fn refresh_stats_typed_forms_and_their_refusals() {
    let s = initialised();
    let e = s.json(&[
        "enqueue",
        "refresh-stats",
        "--channel-id",
        "UC_x5XG1OV2P6uZZ5FSM9Ttw",
        "--method",
        "list",
    ]);
    let task = s.json(&["tasks", "show", &e["id"].to_string()]);
    assert_eq!(task["task"]["task_type"], "refresh_stats", "{task}");
    assert_eq!(
        task["task"]["params"],
        serde_json::json!({"channel_id": "UC_x5XG1OV2P6uZZ5FSM9Ttw", "method": "list"})
    );
    let before = s.db_bytes();
    let err = s.fails(&["enqueue", "refresh-stats"], 2);
    assert!(
        err.contains("invalid params.all: no filter is given")
            && err.contains("accepted: at least one filter: seen_within"),
        "{err}"
    );
    let err = s.fails(&["enqueue", "refresh-stats", "--seen-within", "soon"], 2);
    assert!(err.contains("invalid params.seen_within"), "{err}");
    let err = s.fails(
        &[
            "schedule",
            "add",
            "--name",
            "r",
            "--every",
            "1d",
            "refresh-stats",
        ],
        2,
    );
    assert!(err.contains("no filter is given"), "{err}");
    let err = s.fails(
        &["schedule", "add", "--name", "r", "refresh-stats", "--all"],
        2,
    );
    assert!(err.contains("--every DURATION or --cron EXPR"), "{err}");
    assert!(before == s.db_bytes(), "nothing written");
    assert_eq!(s.json(&["schedule", "list"]), serde_json::json!([]));
}
