//! The real `prismq` binary against temporary database files: init and migrations, enqueue
//! of every type, bad input refused with its exit code and the database byte-for-byte
//! unchanged, task operations, exports, JSON output, and snapshots of help and tables.

mod support;

#[cfg(unix)]
#[path = "../../../tests/e2e/fake_ytdlp.rs"]
mod fake_ytdlp;

use serde_json::Value;
use support::{checksum, normalise_times, Sandbox};

fn initialised() -> Sandbox {
    let s = Sandbox::new();
    s.ok(&["init"]);
    s
}

#[test]
fn init_creates_the_database_and_is_idempotent() {
    let s = Sandbox::new();
    let out = s.ok(&["init"]);
    assert!(out.starts_with("database created at "), "{out}");
    let latest = prismq_storage_sqlite::migrations::latest_version();
    assert!(
        out.contains(&format!("queue.db (schema version {latest})")),
        "{out}"
    );
    assert!(s.db().exists());
    let again = s.json(&["init"]);
    assert_eq!(again["created"], false);
    assert_eq!(again["schema_version"], latest);
}

#[test]
fn migrate_status_up_and_down() {
    let s = Sandbox::new();
    let err = s.fails(&["migrate", "status"], 3);
    assert!(err.contains("prismq init"), "{err}");
    assert!(!s.db().exists(), "status must not create the database");
    let up = s.json(&["migrate", "up", "--to", "1"]);
    assert_eq!(up["applied"], serde_json::json!([1]));
    let status = s.json(&["migrate", "status"]);
    assert_eq!(status["current"], 1);
    assert!(status["migrations"][0]["applied_at"].is_i64());
    let err = s.fails(&["migrate", "down", "--to", "0"], 2);
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(s.json(&["migrate", "status"])["current"], 1);
    let down = s.ok(&["migrate", "down", "--to", "0", "--yes"]);
    assert!(
        down.contains("reverted migration 1; schema version 0"),
        "{down}"
    );
    let err = s.fails(&["migrate", "up", "--to", "99"], 2);
    assert!(err.contains("no migration version 99"), "{err}");
    let latest = prismq_storage_sqlite::migrations::latest_version();
    let all: Vec<String> = (1..=latest).map(|v| v.to_string()).collect();
    let up = s.ok(&["migrate", "up"]);
    assert!(
        up.contains(&format!(
            "applied migrations {}; schema version {latest}",
            all.join(", ")
        )),
        "{up}"
    );
    let reverted: Vec<String> = (2..=latest).rev().map(|v| v.to_string()).collect();
    assert!(s
        .ok(&["migrate", "down", "--to", "1", "--yes"])
        .contains(&format!(
            "reverted migrations {}; schema version 1",
            reverted.join(", ")
        )));
    assert_eq!(s.json(&["migrate", "status"])["current"], 1);
}

#[test]
fn enqueue_each_type_prints_the_id() {
    let s = initialised();
    let cases: [&[&str]; 6] = [
        &[
            "enqueue",
            "channel",
            "@GoogleDevelopers",
            "--top-n",
            "5",
            "--tab",
            "shorts",
        ],
        &[
            "enqueue",
            "trending",
            "--country",
            "gb",
            "--category",
            "music",
            "--top-n",
            "20",
        ],
        &[
            "enqueue",
            "keyword",
            "rust tutorials",
            "--sort-by",
            "views",
            "--duration",
            "medium",
            "--published-within",
            "week",
            "--country",
            "US",
            "--language",
            "en",
        ],
        &[
            "enqueue",
            "videos",
            "dQw4w9WgXcQ",
            "https://youtu.be/Kq9MZLmFMHQ",
        ],
        &[
            "enqueue",
            "raw",
            "--type",
            "keyword_search",
            "--params",
            r#"{"query":"q"}"#,
        ],
        &[
            "enqueue",
            "keyword",
            "later",
            "--priority",
            "9",
            "--delay",
            "1h",
            "--max-attempts",
            "5",
            "--region",
            "de",
        ],
    ];
    for (i, args) in cases.iter().enumerate() {
        let out = s.ok(args);
        assert_eq!(out, format!("enqueued task {}\n", i + 1), "{args:?}");
    }
    let t = s.json(&["tasks", "show", "6"]);
    assert_eq!(t["task"]["priority"], 9);
    assert_eq!(t["task"]["max_attempts"], 5);
    assert_eq!(t["task"]["compatibility"]["region"], "DE");
    assert_eq!(t["task"]["task_type"], "keyword_search");
    assert_eq!(t["log"][0]["event"], "enqueued");
    let trending = s.json(&["tasks", "show", "2"]);
    assert_eq!(trending["task"]["params"]["region"], "gb");
    assert!(trending["task"]["params"].get("baselines").is_none());
    s.ok(&["enqueue", "trending", "--baselines"]);
    s.ok(&["enqueue", "keyword", "surf", "--no-baselines"]);
    assert_eq!(
        s.json(&["tasks", "show", "7"])["task"]["params"]["baselines"],
        true
    );
    assert_eq!(
        s.json(&["tasks", "show", "8"])["task"]["params"]["baselines"],
        false
    );
    let err = s.fails(&["enqueue", "trending", "--baselines", "--no-baselines"], 2);
    assert!(err.contains("--no-baselines"), "{err}");
}

#[test]
fn tasks_show_says_how_often_the_lease_lapsed() {
    let s = initialised();
    s.ok(&["enqueue", "keyword", "rust"]);
    assert_eq!(s.json(&["tasks", "show", "1"])["task"]["lapses"], 0);
    // Three lapses, as three rescues after dead workers would have counted them.
    rusqlite::Connection::open(s.db())
        .unwrap()
        .execute("UPDATE task_queue SET lapses = 3 WHERE id = 1", [])
        .unwrap();
    let out = s.ok(&["tasks", "show", "1"]);
    let line = out
        .lines()
        .find(|l| l.starts_with("lapses:"))
        .unwrap_or_else(|| panic!("no lapses line: {out}"));
    assert!(line.ends_with("  3 of at most 10"), "{line}");
    assert_eq!(s.json(&["tasks", "show", "1"])["task"]["lapses"], 3);
}

#[test]
fn a_repeated_idempotency_key_returns_the_existing_task() {
    let s = initialised();
    let args = [
        "enqueue",
        "videos",
        "dQw4w9WgXcQ",
        "--idempotency-key",
        "daily-1",
    ];
    assert_eq!(s.ok(&args), "enqueued task 1\n");
    let again = s.ok(&args);
    assert!(again.contains("task 1 already exists"), "{again}");
    let mut json_args = vec!["--json"];
    json_args.extend_from_slice(&args);
    let v: Value = serde_json::from_str(&s.ok(&json_args)).unwrap();
    assert_eq!(v, serde_json::json!({"id": 1, "duplicate": true}));
}

/// Every refusal: its exit code, a message naming what to fix, and not one byte written.
#[test]
fn invalid_input_is_refused_and_writes_nothing() {
    let s = initialised();
    s.ok(&["enqueue", "keyword", "seed"]);
    std::fs::write(
        s.path("bad.jsonl"),
        "{\"type\":\"keyword_search\",\"params\":{\"query\":\"ok\"}}\n{not json}\n{\"type\":\"api_scrape\",\"params\":{\"videos\":[]}}\n",
    )
    .unwrap();
    let before = s.db_bytes();
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["enqueue", "keyword", "x", "--priority", "11"],
            2,
            "invalid priority: 11 is out of range",
        ),
        (
            vec!["enqueue", "raw", "--type", "nope"],
            2,
            "accepted: api_scrape, channel_scrape, example_echo, keyword_search, refresh_stats, trending_scrape",
        ),
        (
            vec![
                "enqueue",
                "raw",
                "--type",
                "keyword_search",
                "--params",
                "{oops",
            ],
            2,
            "not valid JSON",
        ),
        (
            vec!["enqueue", "channel", "not a channel!!"],
            2,
            "invalid params.channel_url",
        ),
        (
            vec!["enqueue", "keyword", "x", "--top-n", "0"],
            2,
            "invalid params.top_n",
        ),
        (
            vec!["enqueue", "keyword", "x", "--sort-by", "best"],
            2,
            "one of relevance, date, views, rating",
        ),
        (
            vec!["enqueue", "videos", "nope"],
            2,
            "invalid params.videos[0]",
        ),
        (
            vec!["enqueue", "keyword", "x", "--delay", "soon"],
            2,
            "invalid delay",
        ),
        (
            vec!["enqueue", "keyword", "x", "--run-at", "tomorrow"],
            2,
            "RFC 3339",
        ),
        (
            vec!["enqueue", "keyword", "x", "--region", "usa"],
            2,
            "invalid region",
        ),
        (
            vec!["enqueue", "--file", "bad.jsonl"],
            2,
            "line 2: not a task object",
        ),
        (vec!["enqueue", "--file", "missing.jsonl"], 3, "cannot open"),
        (vec!["enqueue", "keyword"], 2, "QUERY"),
        (
            vec!["work", "--strategy", "bogus"],
            2,
            "accepted: fifo, lifo, priority, weighted_random",
        ),
        (vec!["work", "--types", "Bad Type"], 2, "invalid type"),
        (vec!["tasks", "show", "99"], 3, "not found: task 99"),
        (vec!["tasks", "cancel", "99"], 3, "task 99"),
        (vec!["tasks", "retry", "1"], 2, "task 1 is queued"),
        (
            vec!["tasks", "list", "--status", "done"],
            2,
            "not a task status",
        ),
        (vec!["dlq", "retry", "1"], 2, "not failed"),
        (
            vec!["dlq", "purge", "--older-than", "ages"],
            2,
            "invalid older_than",
        ),
        (
            vec!["results", "show", "dQw4w9WgXcQ"],
            3,
            "no stored result",
        ),
        (
            vec!["results", "list", "--since", "whenever"],
            2,
            "neither a duration nor a timestamp",
        ),
    ];
    for (args, code, needle) in cases {
        let err = s.fails(&args, code);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        let after = s.db_bytes();
        assert!(
            after == before,
            "{args:?} changed the database: {:x} -> {:x}",
            checksum(&before.0),
            checksum(&after.0)
        );
    }
    let err = s.fails(&["enqueue", "--file", "bad.jsonl"], 2);
    assert!(
        err.contains("2 invalid lines; nothing was enqueued"),
        "{err}"
    );
    assert!(err.contains("line 3: invalid params.videos"), "{err}");
    assert_eq!(s.json(&["tasks", "list"]).as_array().unwrap().len(), 1);
}

#[test]
fn a_missing_config_file_is_a_configuration_error() {
    let s = initialised();
    let err = s.fails(&["--config", "nope.toml", "stats"], 5);
    assert!(err.contains("nope.toml does not exist"), "{err}");
    let mut s = initialised();
    s.env("PRISMQ_WORKER__CONCURENCY", "4");
    let err = s.fails(&["stats"], 5);
    assert!(
        err.contains("unknown configuration key `worker.concurency`"),
        "{err}"
    );
}

#[test]
fn enqueue_file_is_all_or_nothing_and_reports_duplicates() {
    let s = initialised();
    let lines = [
        r#"{"type":"keyword_search","params":{"query":"a"},"priority":8}"#,
        r#"{"type":"api_scrape","params":{"videos":["dQw4w9WgXcQ"]},"idempotency_key":"k"}"#,
        "",
        r#"{"type":"api_scrape","params":{"videos":["dQw4w9WgXcQ"]},"idempotency_key":"k"}"#,
        r#"{"type":"channel_scrape","params":{"channel_url":"@xyz"},"run_after":"2030-01-01T00:00:00Z","max_attempts":2,"region":"fr"}"#,
    ];
    std::fs::write(s.path("t.jsonl"), lines.join("\n")).unwrap();
    let out = s.ok(&["enqueue", "--file", "t.jsonl"]);
    assert!(out.contains("enqueued 3 tasks"), "{out}");
    assert!(out.contains("1 already existed"), "{out}");
    let listed = s.json(&["tasks", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 3);
}

#[test]
fn tasks_cancel_and_retry() {
    let mut s = initialised();
    s.ok(&["enqueue", "videos", "dQw4w9WgXcQ"]);
    s.ok(&["enqueue", "keyword", "to cancel"]);
    let out = s.ok(&["tasks", "cancel", "2"]);
    assert_eq!(out, "task 2 cancelled (status cancelled)\n");
    let err = s.fails(&["tasks", "cancel", "2"], 2);
    assert!(err.contains("task 2 is cancelled"), "{err}");
    // yt-dlp cannot start: the task fails permanently and lands in the dead-letter queue.
    s.env("PRISMQ_YOUTUBE__YTDLP_PATH", "/nonexistent/yt-dlp");
    let report = s.json(&["work", "--drain", "--concurrency", "1"]);
    assert_eq!(report["report"]["failed"], 1, "{report}");
    let dlq = s.json(&["dlq", "list"]);
    assert_eq!(dlq[0]["id"], 1);
    assert!(dlq[0]["last_error"]
        .as_str()
        .unwrap()
        .contains("install yt-dlp"));
    let out = s.ok(&["tasks", "retry", "1"]);
    assert_eq!(out, "task 1 sent back to the queue (status queued)\n");
    assert_eq!(
        s.json(&["tasks", "list", "--status", "queued"])[0]["attempts"],
        0
    );
    s.ok(&["work", "--drain", "--concurrency", "1"]);
    assert_eq!(
        s.json(&["dlq", "retry", "--all"])["retried"],
        serde_json::json!([1])
    );
    s.ok(&["work", "--drain", "--concurrency", "1"]);
    let out = s.ok(&["dlq", "purge", "--older-than", "0s"]);
    assert!(out.starts_with("purged 1 failed task"), "{out}");
    assert_eq!(s.json(&["dlq", "list"]), serde_json::json!([]));
}

#[test]
fn results_export_refuses_to_overwrite() {
    let s = initialised();
    let out = s.path("out.csv");
    std::fs::write(&out, "keep me").unwrap();
    let err = s.fails(
        &["results", "export", "--format", "csv", "--out", "out.csv"],
        2,
    );
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me");
    s.ok(&[
        "results", "export", "--format", "csv", "--out", "out.csv", "--force",
    ]);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("platform,source_id,title,"), "{text}");
    let v = s.json(&[
        "results",
        "export",
        "--format",
        "jsonl",
        "--out",
        "new.jsonl",
    ]);
    assert_eq!(v["written"], 0);
    assert_eq!(std::fs::read_to_string(s.path("new.jsonl")).unwrap(), "");
}

#[test]
fn json_output_parses_everywhere() {
    let s = initialised();
    s.ok(&["enqueue", "keyword", "rust"]);
    for args in [
        &["tasks", "list"][..],
        &["tasks", "show", "1"],
        &["stats"],
        &["workers"],
        &["config", "show"],
        &["migrate", "status"],
        &["results", "list"],
        &["dlq", "list"],
    ] {
        s.json(args);
    }
    let stats = s.json(&["stats"]);
    assert_eq!(stats["totals"]["queued"], 1);
    s.ok(&["tasks", "cancel", "1"]);
    let stats = s.json(&["stats"]);
    assert_eq!(stats["totals"]["cancelled"], 1);
    assert_eq!(stats["recent"]["completed_last_hour"], 0);
    assert_eq!(stats["dead_letters"], 0);
    assert_eq!(stats["workers"]["active"], 0);
    assert_eq!(stats["quota"], serde_json::json!([]));
    let config = s.json(&["config", "show"]);
    let db = config
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "database.path")
        .unwrap();
    assert_eq!(db["origin"]["kind"], "flag");
}

#[test]
fn config_show_redacts_the_api_key() {
    let mut s = initialised();
    s.env("YOUTUBE_API_KEY", "AIzaSyTopSecretValue");
    let out = s.ok(&["config", "show"]);
    assert!(!out.contains("TopSecret"), "{out}");
    assert!(out.contains("youtube.api_key"), "{out}");
    assert!(out.contains("<redacted>"), "{out}");
    assert!(
        out.contains("environment variable YOUTUBE_API_KEY"),
        "{out}"
    );
}

#[test]
fn collect_without_a_source_says_what_to_set_or_install() {
    let s = initialised();
    let before = s.db_bytes();
    let err = s.fails(&["collect", "keyword", "rust"], 5);
    assert!(err.contains("set YOUTUBE_API_KEY"), "{err}");
    assert!(err.contains("install yt-dlp"), "{err}");
    let err = s.fails(&["collect", "trending"], 5);
    assert!(err.contains("set YOUTUBE_API_KEY"), "{err}");
    assert!(
        s.db_bytes() == before,
        "a refused collect wrote to the database"
    );
}

#[cfg(unix)]
#[test]
fn collect_runs_the_task_and_prints_its_results() {
    let fake = fake_ytdlp::FakeYtdlp::new(0);
    let mut s = initialised();
    s.env("PRISMQ_YOUTUBE__YTDLP_PATH", fake.path());
    let out = s.ok(&["collect", "channel", "@GoogleDevelopers", "--top-n", "2"]);
    assert!(out.starts_with("task 1 completed: "), "{out}");
    assert!(
        out.contains("Kq9MZLmFMHQ") && out.contains("pQ7vGf3x2Lk"),
        "{out}"
    );
    insta::assert_snapshot!("collect_channel_table", normalise_times(&out));
    let v = s.json(&["collect", "keyword", "surf trip", "--top-n", "2"]);
    assert_eq!(v["task"]["status"], "completed");
    let ids: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["item"]["source_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{v}");
    assert!(ids.contains(&"b_q5GhinG10"), "{ids:?}");
    let v = s.json(&["collect", "videos", "dQw4w9WgXcQ"]);
    assert_eq!(v["results"][0]["item"]["source"], "youtube_api");
    assert_eq!(v["results"][0]["item"]["source_id"], "dQw4w9WgXcQ");
    // Results are stored: list, show and export them.
    let list = s.ok(&["results", "list", "--source", "youtube_channel"]);
    insta::assert_snapshot!("results_list_table", normalise_times(&list));
    let show = s.ok(&["results", "show", "Kq9MZLmFMHQ"]);
    assert!(show.contains("metrics history:"), "{show}");
    s.ok(&["results", "export", "--format", "csv", "--out", "all.csv"]);
    let csv = std::fs::read_to_string(s.path("all.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 5, "{csv}");
    let tasks = s.ok(&["tasks", "list"]);
    insta::assert_snapshot!("tasks_list_table", normalise_times(&tasks));
    // A terminal 80 columns wide: every line fits, titles cut with an ellipsis.
    s.env("COLUMNS", "80");
    let tasks = s.ok(&["tasks", "list"]);
    insta::assert_snapshot!("tasks_list_table_80", normalise_times(&tasks));
    let out = s.ok(&[
        "collect",
        "channel",
        "@TabsDemo",
        "--tab",
        "all",
        "--top-n",
        "6",
    ]);
    insta::assert_snapshot!("collect_all_uploads_80", normalise_times(&out));
    for text in [&tasks, &out] {
        for line in text.lines() {
            assert!(
                line.chars().count() <= 80,
                "{} wide: {line}",
                line.chars().count()
            );
        }
    }
}

/// A collect prints in its source's order (newest upload first, with RANK) unless --order
/// says otherwise; a channel URL's tab chooses what it reads, another tab is refused.
#[cfg(unix)]
#[test]
fn collect_orders_by_rank_unless_told_and_honours_the_urls_tab() {
    let fake = fake_ytdlp::FakeYtdlp::new(0);
    let mut s = initialised();
    s.env("PRISMQ_YOUTUBE__YTDLP_PATH", fake.path())
        .env("COLUMNS", "120");
    let out = s.ok(&[
        "collect",
        "channel",
        "https://www.youtube.com/@TabsDemo/shorts",
    ]);
    insta::assert_snapshot!("collect_shorts_tab_120", normalise_times(&out));
    let v = s.json(&[
        "collect",
        "channel",
        "@TabsDemo",
        "--tab",
        "all",
        "--order",
        "views",
        "--limit",
        "3",
    ]);
    let views: Vec<i64> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["item"]["metrics"]["views"].as_i64().unwrap())
        .collect();
    assert_eq!(views.len(), 3, "{v}");
    assert!(views.windows(2).all(|w| w[0] >= w[1]), "{views:?}");
    let err = s.fails(
        &[
            "collect",
            "channel",
            "https://www.youtube.com/@TabsDemo/community",
        ],
        2,
    );
    assert!(err.contains("/community"), "{err}");
    assert!(err.contains("/videos, /shorts or /streams"), "{err}");
}

#[cfg(unix)]
#[test]
fn collect_runs_its_own_task_and_leaves_the_backlog_queued() {
    let fake = fake_ytdlp::FakeYtdlp::new(0);
    let mut s = initialised();
    s.env("PRISMQ_YOUTUBE__YTDLP_PATH", fake.path());
    // A backlog of the same type, due now: a loop filtered by type alone would work through
    // it (the fake answers at once) before the collect noticed its own task was done.
    s.ok(&["enqueue", "channel", "@Older"]);
    s.ok(&["enqueue", "channel", "@Newer", "--priority", "10"]);
    let out = s.ok(&["collect", "channel", "@GoogleDevelopers", "--top-n", "2"]);
    assert!(out.starts_with("task 3 completed: "), "{out}");
    for id in ["1", "2"] {
        let t = s.json(&["tasks", "show", id]);
        assert_eq!(t["task"]["status"], "queued", "task {id}: {t}");
        assert_eq!(t["task"]["attempts"], 0, "task {id}: {t}");
    }
}

#[test]
fn collect_trending_reads_the_data_api() {
    let body = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/videos_chart_page.json"),
    )
    .unwrap();
    let api = support::data_api::FakeDataApi::start(body);
    let mut s = initialised();
    s.env("YOUTUBE_API_KEY", "AIzaSyLoopbackTestKey")
        .env("PRISMQ_YOUTUBE__API_BASE_URL", &api.base_url);
    let out = s.ok(&["collect", "trending", "--country", "IN", "--top-n", "1"]);
    assert!(out.contains("V41Iou1O0uQ"), "{out}");
    assert!(out.contains("NEELI CHHAT"), "{out}");
    let requests = api.requests();
    // The whole chart (category all): one chart page, one unit, no category list.
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(requests[0].contains("chart=mostPopular"), "{requests:?}");
    assert!(requests[0].contains("regionCode=IN"), "{requests:?}");
    assert!(requests[0].contains("videoCategoryId=0"), "{requests:?}");
    // In chart order, with the chart rank as the first column.
    assert!(out.contains("RANK"), "{out}");
    let v = s.json(&["results", "list", "--source", "youtube_trending"]);
    assert_eq!(v[0]["item"]["source_id"], "V41Iou1O0uQ");
}

/// `init` and `migrate` work on the PostgreSQL server `database.url` names (the real server
/// is in `--test db_copy`); one that cannot be reached is exit 4, saying why, and `migrate
/// down` without `--yes` is refused before any connection.
#[test]
fn init_and_migrate_go_to_the_postgres_server_the_url_names() {
    let mut s = Sandbox::new();
    s.env(
        "PRISMQ_DATABASE__URL",
        "postgres://prismq:s3cr3t@127.0.0.1:1/prismq",
    );
    // --db would conflict with database.url, so run without it.
    for args in [&["init"][..], &["migrate", "status"], &["migrate", "up"]] {
        let out = s.bare().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {err}");
        assert!(err.contains("cannot connect to PostgreSQL"), "{err}");
        assert!(!err.contains("s3cr3t"), "{err}");
    }
    let out = s
        .bare()
        .args(["migrate", "down", "--to", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
}

#[test]
fn help_snapshots() {
    let s = Sandbox::new();
    insta::assert_snapshot!("help", s.ok(&["--help"]));
    insta::assert_snapshot!(
        "enqueue_keyword_help",
        s.ok(&["enqueue", "keyword", "--help"])
    );
    insta::assert_snapshot!("work_help", s.ok(&["work", "--help"]));
    let err = s.fails(&["bogus"], 2);
    assert!(err.contains("unrecognized subcommand"), "{err}");
}

#[test]
fn completions_are_generated() {
    let s = Sandbox::new();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = s.ok(&["completions", shell]);
        assert!(out.contains("prismq"), "{shell}");
    }
}

/// `stats --watch --json | head -1`: the watch prints its first line at once and, when the
/// reader goes away, exits 0 instead of printing into nothing for ever.
#[test]
fn stats_watch_json_stops_when_its_reader_goes_away() {
    use std::io::BufRead;
    use std::process::Stdio;
    let s = initialised();
    let mut child = s
        .command(&["stats", "--watch", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    let value: Value = serde_json::from_str(&first).expect("the first line is one JSON object");
    assert!(value["totals"].is_object(), "{first}");
    drop(reader); // the reader goes away, as `head -1` does
                  // The next snapshot is 2 s later; it finds the pipe closed and the watch ends. The
                  // bound is generous: a watch that never notices runs until killed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("stats --watch --json kept running after its reader went away");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn types_lists_each_task_type_with_its_declared_parameters() {
    let s = initialised();
    let out = s.ok(&["types"]);
    assert!(out.starts_with("TYPE"), "{out}");
    for name in [
        "api_scrape",
        "channel_scrape",
        "keyword_search",
        "refresh_stats",
        "trending_scrape",
    ] {
        assert!(out.contains(name), "{name} in {out}");
    }
    assert!(out.contains("query (required)"), "{out}");
    let json = s.json(&["types"]);
    let types = json["types"].as_array().unwrap();
    // The YouTube plugin's five and the example plugin's `example_echo`.
    assert_eq!(types.len(), 6);
    for t in types {
        let schema = &t["params_schema"];
        assert_eq!(schema["type"], "object", "{t}");
        assert_eq!(schema["additionalProperties"], false, "{t}");
    }
    let channel = types
        .iter()
        .find(|t| t["type"] == "channel_scrape")
        .unwrap();
    assert_eq!(
        channel["params_schema"]["required"],
        serde_json::json!(["channel_url"])
    );
    assert_eq!(
        channel["params_schema"]["properties"]["tab"]["enum"],
        serde_json::json!(["videos", "shorts", "streams", "all"])
    );
}
