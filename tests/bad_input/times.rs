//! Instants outside the accepted range (2000-01-01T00:00:00Z to 9999-01-01T00:00:00Z) from
//! every way one enters: `--delay`, `--run-at`, a JSONL `run_after`, `--since`. Each is refused
//! (exit 2) saying the range is the problem, and nothing is written; the edges themselves are
//! accepted and every command reads them back; and a row an older release wrote at the last
//! millisecond a timestamp holds no longer poisons `tasks list`, `show` or `cancel`.

use prismq_tests::harness::{checksum, Sandbox};

const RANGE: &str = "outside the accepted range 2000-01-01T00:00:00Z to 9999-01-01T00:00:00Z";

fn seeded() -> Sandbox {
    let s = Sandbox::new();
    s.ok(&["init"]);
    s.ok(&["enqueue", "keyword", "seed"]);
    s
}

#[test]
fn instants_outside_the_range_are_refused_naming_the_range_and_write_nothing() {
    let s = seeded();
    let line = |at: &str| {
        format!("{{\"type\":\"api_scrape\",\"params\":{{\"videos\":[\"Lqf-ZycFRAk\"]}},\"run_after\":\"{at}\"}}\n")
    };
    std::fs::write(s.path("far.jsonl"), line("9999-12-31T23:59:59Z")).unwrap();
    std::fs::write(
        s.path("early.jsonl"),
        line("2026-01-31T08:00:00Z") + &line("0001-01-01T00:00:00Z"),
    )
    .unwrap();
    let video = ["enqueue", "videos", "Lqf-ZycFRAk"];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        video.iter().copied().chain(extra.iter().copied()).collect()
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            with(&["--delay", "1000000000h"]),
            "1000000000h from now ends",
        ),
        (with(&["--delay", "3000000d"]), "3000000d from now ends"),
        (with(&["--delay", "18446744073709551615"]), "from now ends"),
        (
            with(&["--run-at", "9999-12-30T22:00:00.5Z"]),
            "9999-12-30T22:00:00.5Z is",
        ),
        // Valid RFC 3339, beyond what a timestamp holds: still the range is the problem.
        (
            with(&["--run-at", "9999-12-31T23:59:59Z"]),
            "9999-12-31T23:59:59Z is",
        ),
        (
            with(&["--run-at", "9999-01-01T00:00:00.001Z"]),
            "9999-01-01T00:00:00.001Z is",
        ),
        (
            with(&["--run-at", "0001-01-01T00:00:00Z"]),
            "0001-01-01T00:00:00Z is",
        ),
        (
            with(&["--run-at", "1999-12-31T23:59:59Z"]),
            "1999-12-31T23:59:59Z is",
        ),
        (
            vec![
                "enqueue",
                "raw",
                "--type",
                "api_scrape",
                "--run-at",
                "1970-01-01T00:00:00Z",
            ],
            "1970-01-01T00:00:00Z is",
        ),
        (
            vec!["enqueue", "--file", "far.jsonl"],
            "line 1: invalid run_after: 9999-12-31T23:59:59Z is",
        ),
        (
            vec!["enqueue", "--file", "early.jsonl"],
            "line 2: invalid run_after: 0001-01-01T00:00:00Z is",
        ),
        (
            vec!["results", "list", "--since", "1990-01-01T00:00:00Z"],
            "1990-01-01T00:00:00Z is",
        ),
    ];
    let before = s.db_bytes();
    for (args, says) in &cases {
        let err = s.fails(args, 2);
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert_eq!(
            err.lines().count(),
            1 + usize::from(args[1] == "--file"),
            "{args:?}: {err}"
        );
        assert!(err.contains(says), "{args:?}: expected {says:?} in {err}");
        assert!(err.contains(RANGE), "{args:?}: {err}");
        assert!(!err.contains("not an RFC 3339"), "{args:?}: {err}");
        let after = s.db_bytes();
        assert!(
            after == before,
            "{args:?} changed the database: {:x} -> {:x}",
            checksum(&before.0),
            checksum(&after.0)
        );
    }
    assert_eq!(s.json(&["tasks", "list"]).as_array().unwrap().len(), 1);
}

#[test]
fn the_edges_of_the_range_are_accepted_and_read_back_by_every_command() {
    let s = seeded();
    s.ok(&[
        "enqueue",
        "videos",
        "Lqf-ZycFRAk",
        "--run-at",
        "9999-01-01T00:00:00Z",
    ]);
    s.ok(&[
        "enqueue",
        "videos",
        "Lqf-ZycFRAk",
        "--run-at",
        "2000-01-01T01:00:00+01:00",
    ]);
    // The longest delay that still ends by 9999-01-01 from today is accepted.
    s.ok(&["enqueue", "videos", "Lqf-ZycFRAk", "--delay", "2900000d"]);
    let list = s.json(&["tasks", "list"]);
    let run_after: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["run_after"].as_str().unwrap())
        .collect();
    assert_eq!(run_after.len(), 4, "{list}");
    assert_eq!(run_after[1], "2000-01-01T00:00:00Z", "{list}");
    assert_eq!(run_after[2], "9999-01-01T00:00:00Z", "{list}");
    assert!(run_after[0].starts_with("99"), "{list}");
    let shown = s.json(&["tasks", "show", "2"]);
    assert_eq!(
        shown["task"]["run_after"], "9999-01-01T00:00:00Z",
        "{shown}"
    );
    let text = s.ok(&["tasks", "show", "2"]);
    assert!(text.contains("9999-01-01"), "{text}");
    s.ok(&["tasks", "list"]);
    s.ok(&["tasks", "cancel", "2"]);
    s.ok(&["stats"]);
    let cancelled = s.json(&["tasks", "show", "2"]);
    assert_eq!(cancelled["task"]["status"], "cancelled", "{cancelled}");
}

#[test]
fn a_row_written_at_the_last_millisecond_a_timestamp_holds_no_longer_poisons_the_list() {
    let s = seeded();
    s.ok(&["enqueue", "videos", "Lqf-ZycFRAk"]);
    // What `enqueue --delay 1000000000h` stored before the range existed: jiff's
    // Timestamp::MAX (9999-12-30T22:00:00.999999999Z) in milliseconds, one past the last
    // whole second `Timestamp::from_millisecond` reads.
    let edge: i64 = 253_402_207_200_999;
    {
        let c = rusqlite::Connection::open(s.db()).unwrap();
        let n = c
            .execute(
                "UPDATE task_queue SET run_after = ?1, updated_at = ?1 WHERE id = 2",
                [edge],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    let list = s.json(&["tasks", "list"]);
    assert_eq!(list[0]["run_after"], "9999-12-30T22:00:00.999Z", "{list}");
    let text = s.ok(&["tasks", "list"]);
    assert!(text.contains("9999-12-30"), "{text}");
    let shown = s.json(&["tasks", "show", "2"]);
    assert_eq!(shown["task"]["updated_at"], "9999-12-30T22:00:00.999Z");
    let cancelled = s.json(&["tasks", "cancel", "2"]);
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
}

/// Configuration that used to be silently ignored, cut or read without end: a `PRISMQ_*`
/// variable that is not UTF-8, a whole-seconds timeout given in milliseconds, and a
/// configuration file that never ends. Each is exit 5 naming the variable, key or file.
#[test]
fn configuration_refusals_name_what_is_wrong_and_write_nothing() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    use std::time::{Duration, Instant};

    let s = seeded();
    let before = s.db_bytes();
    for (var, value) in [
        ("PRISMQ_WORKER__REGION", &b"G\xffB"[..]),
        ("PRISMQ_CONFIG", b"/tmp/\xfe.toml"),
        ("YOUTUBE_API_KEY", b"AIzaSy\xffSecretBytes"),
    ] {
        let out = s
            .command(&["stats"])
            .env(var, OsStr::from_bytes(value))
            .output()
            .unwrap();
        let err = prismq_tests::harness::expect_code(&out, 5, var);
        assert_eq!(
            err,
            format!("error: environment variable {var} is not valid UTF-8 (its value is not shown); accepted: UTF-8 text; set it again as UTF-8 or unset it\n")
        );
        assert!(
            !out.stderr.windows(value.len()).any(|w| w == value),
            "{var}: the raw bytes were echoed"
        );
    }

    for (args, env, says) in [
        (
            vec!["stats"],
            Some(("PRISMQ_YOUTUBE__REQUEST_TIMEOUT", "1500ms")),
            "invalid value for `youtube.request_timeout` (from environment variable PRISMQ_YOUTUBE__REQUEST_TIMEOUT): \"1500ms\": not a whole number of seconds; accepted: a whole number of seconds",
        ),
        (
            vec!["stats"],
            Some(("PRISMQ_YOUTUBE__YTDLP_TIMEOUT", "90500")),
            "`youtube.ytdlp_timeout` (from environment variable PRISMQ_YOUTUBE__YTDLP_TIMEOUT): \"90500\": not a whole number of seconds",
        ),
        (
            vec!["--config", "/dev/zero", "stats"],
            None,
            "cannot read configuration file /dev/zero: it holds more than 1048576 bytes (1 MiB), the most a configuration file may hold",
        ),
    ] {
        let mut c = s.command(&args);
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        let started = Instant::now();
        let out = c.output().unwrap();
        let err = prismq_tests::harness::expect_code(&out, 5, &format!("{args:?} {env:?}"));
        assert!(err.starts_with("error: ") && err.contains(says), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{args:?} took {:?}",
            started.elapsed()
        );
    }
    assert!(s.db_bytes() == before, "a refused configuration wrote");
    // Whole seconds are accepted in every form.
    let mut ok = seeded();
    ok.env("PRISMQ_YOUTUBE__REQUEST_TIMEOUT", "2000")
        .env("PRISMQ_YOUTUBE__YTDLP_TIMEOUT", "1m30s");
    let shown = ok.ok(&["config", "show"]);
    assert!(
        shown.contains("youtube.request_timeout = \"2s\"")
            && shown.contains("youtube.ytdlp_timeout = \"1m30s\""),
        "{shown}"
    );
}
