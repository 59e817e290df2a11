//! The bad-input corpus, table-driven over every command and task type: malformed JSON,
//! wrong types, out-of-range numbers, empty and huge strings, NUL bytes, invalid UTF-8 in
//! files, SQL injection strings in every text parameter, option-like strings, path
//! traversal and existing files in output paths. A refusal must exit with its documented
//! code (docs/cli.md) and one `error: …` line, never panic, and leave the database and its
//! -wal byte-for-byte unchanged. Text that is valid (an injection string as a search
//! query) must be stored verbatim, run as one argument after `--`, and change nothing else.
//! Extends `crates/cli/tests/cli.rs`, which covers the ordinary refusals.
#![cfg(unix)]

use prismq_tests::harness;

mod accepted;
mod dbfiles;
mod outputs;
mod proptest_jsonl;
mod times;

use prismq_tests::harness::{checksum, Sandbox};

pub const INJECTIONS: [&str; 5] = [
    "'; DROP TABLE task_queue; --",
    "Robert'); DELETE FROM results; --",
    "\" OR 1=1 --",
    "1; UPDATE task_queue SET status='failed'",
    "x' UNION SELECT sqlite_version() --",
];

pub const OPTION_LIKE: [&str; 3] = ["--exec rm -rf ~", "-o /tmp/pwned", "--exec=touch pwned"];

fn seeded() -> Sandbox {
    let s = Sandbox::new();
    s.ok(&["init"]);
    s.ok(&["enqueue", "keyword", "seed"]);
    s
}

/// One refusal: arguments (owned, so they can be generated), code, and a piece of the
/// message (empty: any message).
type Case = (Vec<String>, i32, &'static str);

fn case(args: &[&str], code: i32, says: &'static str) -> Case {
    (args.iter().map(|a| (*a).to_owned()).collect(), code, says)
}

fn cases(s: &Sandbox) -> Vec<Case> {
    let long = "a".repeat(100_000); // argv allows 128 KiB per argument; files carry 10 MB
    let mut v: Vec<Case> = Vec::new();

    // Every text parameter of every task type, with injection and option-like strings
    // where the parameter has a fixed shape (ids, handles, codes, names).
    for bad in INJECTIONS.iter().chain(OPTION_LIKE.iter()) {
        v.push(case(
            &["enqueue", "channel", "--", bad],
            2,
            "invalid params.channel_url",
        ));
        v.push(case(
            &["enqueue", "videos", "--", bad],
            2,
            "invalid params.videos[0]",
        ));
        v.push(case(
            &["enqueue", "trending", &format!("--country={bad}")],
            2,
            "invalid params.region",
        ));
        v.push(case(
            &["enqueue", "trending", &format!("--category={bad}")],
            2,
            "invalid params.category",
        ));
        for flag in [
            "--published-within",
            "--duration",
            "--sort-by",
            "--language",
            "--country",
        ] {
            v.push(case(
                &["enqueue", "keyword", "q", &format!("{flag}={bad}")],
                2,
                "invalid",
            ));
        }
        v.push(case(
            &["enqueue", "channel", "@xyz", &format!("--tab={bad}")],
            2,
            "invalid params.tab",
        ));
        v.push(case(
            &["enqueue", "keyword", "q", &format!("--region={bad}")],
            2,
            "invalid region",
        ));
        v.push(case(
            &["enqueue", "keyword", "q", &format!("--delay={bad}")],
            2,
            "invalid delay",
        ));
        v.push(case(
            &["enqueue", "keyword", "q", &format!("--run-at={bad}")],
            2,
            "RFC 3339",
        ));
        v.push(case(
            &["enqueue", "raw", &format!("--type={bad}")],
            2,
            "invalid type",
        ));
        v.push(case(
            &["work", &format!("--types={bad}"), "--drain"],
            2,
            "invalid type",
        ));
        v.push(case(
            &["work", &format!("--strategy={bad}"), "--drain"],
            2,
            "accepted: fifo",
        ));
        v.push(case(
            &["tasks", "list", &format!("--status={bad}")],
            2,
            "not a task status",
        ));
        v.push(case(
            &["tasks", "list", &format!("--type={bad}")],
            2,
            "invalid type",
        ));
        v.push(case(&["tasks", "show", "--", bad], 2, ""));
        v.push(case(&["tasks", "cancel", "--", bad], 2, ""));
        v.push(case(&["dlq", "retry", "--", bad], 2, ""));
        v.push(case(
            &["dlq", "purge", &format!("--older-than={bad}")],
            2,
            "invalid older_than",
        ));
        v.push(case(
            &["results", "list", &format!("--since={bad}")],
            2,
            "neither a duration",
        ));
        v.push(case(&["results", "list", &format!("--order={bad}")], 2, ""));
        v.push(case(&["results", "show", "--", bad], 3, "no stored result"));
        v.push(case(&["workers", &format!("--stale-after={bad}")], 2, ""));
        v.push(case(&["migrate", "up", &format!("--to={bad}")], 2, ""));
        v.push(case(&["import", "legacy", "--", bad], 3, ""));
        v.push(case(
            &["enqueue", &format!("--file={bad}")],
            3,
            "cannot open",
        ));
    }
    // Empty and huge strings.
    for (text, says) in [("", "empty"), (long.as_str(), "100000 characters")] {
        v.push(case(&["enqueue", "keyword", text], 2, says));
    }
    v.push(case(
        &["enqueue", "channel", ""],
        2,
        "invalid params.channel_url",
    ));
    v.push(case(
        &["enqueue", "channel", &format!("@{long}")],
        2,
        "invalid params.channel_url",
    ));
    v.push(case(
        &["enqueue", "videos", ""],
        2,
        "invalid params.videos[0]",
    ));
    v.push(case(
        &["enqueue", "videos", &long],
        2,
        "invalid params.videos[0]",
    ));
    v.push(case(
        &["enqueue", "keyword", "q", "--idempotency-key", ""],
        2,
        "idempotency",
    ));
    v.push(case(
        &["enqueue", "keyword", "q", "--idempotency-key", &long],
        2,
        "idempotency",
    ));
    v.push(case(
        &["enqueue", "keyword", "line\nbreak"],
        2,
        "control characters",
    ));
    // Out-of-range and wrong-typed numbers.
    for n in [
        "0",
        "-1",
        "501",
        "99999999999999999999",
        "1.5",
        "1e3",
        "NaN",
        "ten",
        "",
    ] {
        v.push(case(&["enqueue", "keyword", "q", "--top-n", n], 2, ""));
        v.push(case(&["enqueue", "channel", "@xyz", "--top-n", n], 2, ""));
        v.push(case(
            &["enqueue", "keyword", "q", "--max-attempts", n],
            2,
            "",
        ));
    }
    for n in ["0", "-1", "10001", "99999999999999999999", "1.5", "ten", ""] {
        v.push(case(&["tasks", "list", "--limit", n], 2, ""));
        v.push(case(&["results", "list", "--limit", n], 2, ""));
    }
    for n in ["0", "-1", "11", "99999999999999999999", "high"] {
        v.push(case(&["enqueue", "keyword", "q", "--priority", n], 2, ""));
    }
    v.push(case(
        &["enqueue", "trending", "--top-n", "201"],
        2,
        "invalid params.top_n",
    ));
    v.push(case(
        &["enqueue", "channel", "@xyz", "--max-age-days", "-3"],
        2,
        "",
    ));
    v.push(case(
        &["enqueue", "keyword", "q", "--max-attempts", "101"],
        2,
        "",
    ));
    v.push(case(
        &["work", "--concurrency", "0", "--drain"],
        2,
        "invalid concurrency",
    ));
    v.push(case(
        &["work", "--concurrency", "100000", "--drain"],
        2,
        "invalid concurrency",
    ));
    v.push(case(
        &["work", "--prefetch", "0", "--drain"],
        2,
        "invalid prefetch: 0; accepted: auto, or 1 (one task at a time) to 256",
    ));
    v.push(case(
        &["work", "--prefetch", "some", "--drain"],
        2,
        "invalid prefetch: some; accepted: auto",
    ));
    v.push(case(
        &["work", "--prefetch", "257", "--drain"],
        2,
        "invalid prefetch: 257",
    ));
    v.push(case(&["work", "--max-tasks", "-1"], 2, ""));
    v.push(case(&["tasks", "show", "0"], 2, "not a task id"));
    v.push(case(&["tasks", "show", "99999999999999999999"], 2, ""));
    v.push(case(&["tasks", "show", "999999"], 3, "not found"));
    // Malformed JSON and wrong types in --params, for every task type.
    for t in [
        "keyword_search",
        "channel_scrape",
        "trending_scrape",
        "api_scrape",
    ] {
        for p in [
            "{oops",
            "[1]",
            "\"text\"",
            "null",
            "{\"query\": 5, \"channel_url\": 5, \"videos\": 5, \"region\": 5}",
            "{\"top_n\": {\"$gt\": 1}}",
            "{\"unknown_field\": true}",
            "{\"query\": \"a\\u0000b\", \"channel_url\": \"@a\\u0000b\", \"videos\": [\"a\\u0000b\"]}",
            "{\"top_n\": 1.5}",
            "{\"top_n\": -1}",
            "{\"top_n\": 1e400}",
        ] {
            v.push(case(&["enqueue", "raw", "--type", t, "--params", p], 2, "invalid"));
        }
        let deep = "[".repeat(50_000);
        v.push(case(
            &["enqueue", "raw", "--type", t, "--params", &deep],
            2,
            "not valid JSON",
        ));
    }
    // Files: invalid UTF-8, NUL bytes, a 10 MB string, no newline at all, a directory.
    let files: [(&str, Vec<u8>, &'static str); 6] = [
        ("utf8.jsonl", b"\xff\xfe{\"type\":\"keyword_search\"}\n".to_vec(), "UTF-8"),
        (
            "nul.jsonl",
            b"{\"type\":\"keyword_search\",\"params\":{\"query\":\"a\x00b\"}}\n".to_vec(),
            "line 1",
        ),
        (
            "big.jsonl",
            format!(
                "{{\"type\":\"keyword_search\",\"params\":{{\"query\":\"{}\"}}}}\n",
                "a".repeat(10_000_000)
            )
            .into_bytes(),
            "line",
        ),
        ("endless.jsonl", vec![b'x'; 6 * 1024 * 1024], "longer than"),
        (
            "types.jsonl",
            b"{\"type\":\"keyword_search\",\"params\":{\"query\":\"q\"},\"priority\":\"high\"}\n{\"type\":5}\n[]\n"
                .to_vec(),
            "3 invalid lines",
        ),
        (
            "inject.jsonl",
            b"{\"type\":\"keyword_search'; DROP TABLE task_queue;--\",\"params\":{}}\n".to_vec(),
            "line 1",
        ),
    ];
    for (name, bytes, says) in files {
        std::fs::write(s.path(name), bytes).unwrap();
        v.push((
            vec!["enqueue".into(), "--file".into(), name.into()],
            2,
            says,
        ));
    }
    std::fs::create_dir_all(s.path("adir")).unwrap();
    v.push(case(&["enqueue", "--file", "adir"], 2, "is a directory"));
    // Output paths: an existing file (also reached by traversal), a directory, the
    // database itself.
    std::fs::create_dir_all(s.path("sub")).unwrap();
    std::fs::write(s.path("existing.csv"), "keep me").unwrap();
    for out in ["existing.csv", "sub/../existing.csv", "adir"] {
        for format in ["csv", "jsonl"] {
            v.push(case(
                &["results", "export", "--format", format, "--out", out],
                2,
                "already exists",
            ));
        }
        v.push(case(&["backup", "--out", out], 2, ""));
    }
    let db = s.db().display().to_string();
    let db_traversal = format!("{}/../db/queue.db", s.db().parent().unwrap().display());
    for out in [db.as_str(), db_traversal.as_str()] {
        v.push(case(
            &["backup", "--out", out, "--force"],
            2,
            "the database itself",
        ));
        v.push(case(
            &[
                "results", "export", "--format", "csv", "--out", out, "--force",
            ],
            2,
            "",
        ));
    }
    v.push(case(
        &["results", "export", "--format", "xml", "--out", "x"],
        2,
        "",
    ));
    v.push(case(
        &["results", "export", "--format", "csv", "--out", ""],
        2,
        "",
    ));
    // Configuration: a value of the wrong type, a file that is not UTF-8, one with a NUL.
    std::fs::write(s.path("inv.toml"), b"\xff\xfe[worker]\n").unwrap();
    std::fs::write(s.path("nul.toml"), b"[worker]\nconcurrency = \"\x00\"\n").unwrap();
    std::fs::write(s.path("types.toml"), b"[worker]\nconcurrency = \"many\"\n").unwrap();
    for f in ["inv.toml", "nul.toml", "types.toml", "missing.toml"] {
        v.push(case(&["--config", f, "stats"], 5, ""));
    }
    v
}

#[test]
fn every_refusal_has_its_code_and_writes_nothing() {
    let s = seeded();
    let cases = cases(&s);
    let before = s.db_bytes();
    let exported = std::fs::read(s.path("existing.csv")).unwrap();
    let mut by_code = [0usize; 6];
    for (args, code, says) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.chars().take(60).collect::<String>())
            .collect();
        let err = s.fails(&args, *code);
        assert!(err.starts_with("error: "), "{shown:?}: {err}");
        assert!(err.contains(says), "{shown:?}: expected {says:?} in {err}");
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.len() < 2_000,
            "{shown:?}: a {}-byte error line",
            first.len()
        );
        let after = s.db_bytes();
        assert!(
            after == before,
            "{shown:?} changed the database: {:x} -> {:x}",
            checksum(&before.0),
            checksum(&after.0)
        );
        by_code[usize::try_from(*code).unwrap()] += 1;
    }
    assert_eq!(std::fs::read(s.path("existing.csv")).unwrap(), exported);
    assert!(!s.path("pwned").exists());
    eprintln!(
        "{} refusals: {} exit 2, {} exit 3, {} exit 5; database unchanged after each",
        cases.len(),
        by_code[2],
        by_code[3],
        by_code[5]
    );
    // The database still works and holds only the seed task.
    assert_eq!(s.json(&["tasks", "list"]).as_array().unwrap().len(), 1);
}

#[test]
fn a_file_that_is_not_a_database_is_refused_untouched() {
    let s = Sandbox::new();
    for (name, bytes) in [
        ("garbage.db", b"this is not sqlite at all".repeat(100)),
        ("empty-ish.db", vec![0u8; 4096]),
    ] {
        let path = s.path(name);
        std::fs::write(&path, &bytes).unwrap();
        for args in [
            &["stats"][..],
            &["enqueue", "keyword", "q"],
            &["work", "--drain"],
        ] {
            let out = s.bare().arg("--db").arg(&path).args(args).output().unwrap();
            let err = harness::expect_code(&out, 4, &format!("{name} {args:?}"));
            assert!(err.starts_with("error: "), "{err}");
            assert_eq!(
                std::fs::read(&path).unwrap(),
                bytes,
                "{name} {args:?} wrote"
            );
        }
    }
}
