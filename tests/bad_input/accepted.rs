//! Text that is valid but hostile: SQL injection strings, shell syntax and option-like
//! strings as search queries and idempotency keys. They are stored verbatim (bound
//! parameters, never SQL text), every table survives, and yt-dlp receives each query as one
//! argument after `--` with no shell in between (nothing is expanded or executed).

use std::os::unix::fs::PermissionsExt;

use crate::{INJECTIONS, OPTION_LIKE};
use prismq_tests::harness::Sandbox;

const SHELL: [&str; 4] = [
    "$(touch pwned)",
    "`touch pwned`",
    "a; touch pwned",
    "a | touch pwned && touch pwned",
];

#[test]
fn hostile_text_is_stored_verbatim_and_reaches_ytdlp_as_one_argument() {
    let mut s = Sandbox::new();
    let dir = s.path("fake");
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("args.log");
    let script = format!(
        "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\" >> '{log}'; done\necho '----' >> '{log}'\necho '{{\"entries\": []}}'\n",
        log = log.display()
    );
    let fake = dir.join("yt-dlp");
    std::fs::write(&fake, script).unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    s.env("PRISMQ_YOUTUBE__BACKEND", "ytdlp")
        .env("PRISMQ_YOUTUBE__YTDLP_PATH", &fake);
    s.ok(&["init"]);

    let texts: Vec<&str> = INJECTIONS
        .iter()
        .chain(OPTION_LIKE.iter())
        .chain(SHELL.iter())
        .copied()
        .collect();
    for (i, text) in texts.iter().enumerate() {
        let key = format!("--idempotency-key={text}");
        let out = s.ok(&["enqueue", "keyword", "--top-n", "3", &key, "--", text]);
        assert_eq!(out, format!("enqueued task {}\n", i + 1), "{text}");
    }
    for (i, text) in texts.iter().enumerate() {
        let t = s.json(&["tasks", "show", &(i + 1).to_string()]);
        assert_eq!(t["task"]["params"]["query"], *text);
        assert_eq!(t["task"]["idempotency_key"], *text);
    }
    // Filters and lookups with the same strings find nothing and break nothing.
    for text in &texts {
        let r = s.json(&["results", "list", &format!("--source={text}")]);
        assert_eq!(r, serde_json::json!([]), "{text}");
    }

    let report = s.json(&["work", "--drain", "--concurrency", "1"]);
    assert_eq!(report["report"]["completed"], texts.len(), "{report}");
    assert!(!s.path("pwned").exists(), "a shell ran the query");
    assert!(!dir.join("pwned").exists(), "a shell ran the query");

    let runs: Vec<Vec<String>> = std::fs::read_to_string(&log)
        .unwrap()
        .split("----\n")
        .filter(|r| !r.is_empty())
        .map(|r| r.lines().map(str::to_owned).collect())
        .collect();
    assert_eq!(runs.len(), texts.len());
    for run in &runs {
        let dash = run.iter().position(|a| a == "--").expect("a -- separator");
        assert_eq!(
            &run[..dash],
            ["--flat-playlist", "-J", "--no-progress", "-I", ":3"],
            "{run:?}"
        );
        assert_eq!(run.len(), dash + 2, "the query was split: {run:?}");
        let query = run[dash + 1]
            .strip_prefix("ytsearch3:")
            .expect("ytsearch3:");
        assert!(texts.contains(&query), "{query}");
    }
    // Every table is still there, and the file is sound.
    let c = s.sql();
    for table in [
        "task_queue",
        "task_logs",
        "results",
        "result_metrics",
        "workers",
    ] {
        let n: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1, "{table} is gone");
    }
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let failed: i64 = c
        .query_row(
            "SELECT count(*) FROM task_queue WHERE status <> 3 /* completed */",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(failed, 0);
}
