//! Output and input paths through the real binary: `results export` and `backup` replace
//! only nothing or a regular file (with `--force`), write through a FIFO or character device,
//! take `-` for stdout, and refuse links, directories and sockets untouched; `enqueue --file`
//! reads `-` as stdin, is bounded (`/dev/zero`, an endless pipe), accepts a UTF-8 BOM, says
//! so when an idempotency key is reused for other work, and prints only true id ranges.

use std::io::{Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::seeded;
use prismq_tests::harness::{expect_code, Sandbox};

const ACCEPTED: &str = "accepted: a new file, an existing regular file with --force, a FIFO or character device (written through), or - for stdout";

fn mkfifo(path: &Path) {
    let st = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(st.success(), "mkfifo {}", path.display());
}

/// Reads everything written to the FIFO at `path`, in a thread.
fn read_fifo(path: &Path) -> std::thread::JoinHandle<Vec<u8>> {
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        std::fs::File::open(path)
            .expect("open the FIFO for reading")
            .read_to_end(&mut out)
            .expect("read the FIFO");
        out
    })
}

/// Checks that `bytes` are a whole PrismQ database holding `tasks` tasks.
fn assert_database(s: &Sandbox, bytes: &[u8], tasks: i64) {
    assert!(bytes.starts_with(b"SQLite format 3\0"), "not a SQLite file");
    let copy = s.path("check-copy.db");
    std::fs::write(&copy, bytes).unwrap();
    let c = rusqlite::Connection::open(&copy).unwrap();
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let n: i64 = c
        .query_row("SELECT count(*) FROM task_queue", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, tasks);
    drop(c);
    std::fs::remove_file(copy).unwrap();
}

#[test]
fn a_fifo_is_written_through_never_replaced() {
    let s = seeded();
    let fifo = s.path("out.fifo");
    mkfifo(&fifo);
    let reader = read_fifo(&fifo);
    let out = s.ok(&["results", "export", "--format", "csv", "--out", "out.fifo"]);
    assert!(out.contains("wrote 0 results to out.fifo"), "{out}");
    let got = String::from_utf8(reader.join().unwrap()).unwrap();
    assert!(got.starts_with("platform,source_id,title,"), "{got}");
    // The whole backup goes through the FIFO, and is a valid database.
    let reader = read_fifo(&fifo);
    s.ok(&["backup", "--out", "out.fifo"]);
    assert_database(&s, &reader.join().unwrap(), 1);
    let meta = std::fs::symlink_metadata(&fifo).unwrap();
    assert!(meta.file_type().is_fifo(), "the FIFO is still a FIFO");
    let partials = std::fs::read_dir(s.dir.path())
        .unwrap()
        .chain(std::fs::read_dir(s.db().parent().unwrap()).unwrap())
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .count();
    assert_eq!(partials, 0, "no temporary file is left behind");
}

#[test]
fn a_character_device_is_written_through_and_stays_one() {
    let s = seeded();
    for args in [
        &[
            "results",
            "export",
            "--format",
            "jsonl",
            "--out",
            "/dev/null",
        ][..],
        &[
            "results",
            "export",
            "--format",
            "csv",
            "--out",
            "/dev/null",
            "--force",
        ],
        &["backup", "--out", "/dev/null"],
        &["backup", "--out", "/dev/null", "--force"],
    ] {
        s.ok(args);
        let meta = std::fs::symlink_metadata("/dev/null").unwrap();
        assert!(
            meta.file_type().is_char_device(),
            "{args:?} replaced /dev/null"
        );
    }
}

#[test]
fn links_directories_and_sockets_are_refused_untouched() {
    let s = seeded();
    std::fs::write(s.path("target.csv"), "keep me").unwrap();
    std::os::unix::fs::symlink("target.csv", s.path("link.csv")).unwrap();
    std::os::unix::fs::symlink("nowhere.csv", s.path("dangling.csv")).unwrap();
    std::fs::create_dir(s.path("adir")).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(s.path("sock")).unwrap();
    for (out, is) in [
        ("link.csv", "is a symbolic link"),
        ("dangling.csv", "is a symbolic link"),
        ("adir", "is a directory"),
        ("sock", "is a socket"),
    ] {
        for force in [false, true] {
            for cmd in [
                &["results", "export", "--format", "csv", "--out", out][..],
                &["backup", "--out", out],
            ] {
                let mut args = cmd.to_vec();
                if force {
                    args.push("--force");
                }
                let err = s.fails(&args, 2);
                assert!(err.starts_with("error: "), "{args:?}: {err}");
                assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
                assert!(err.contains(is), "{args:?}: {err}");
                assert!(err.contains(ACCEPTED), "{args:?}: {err}");
            }
        }
    }
    assert_eq!(
        std::fs::read_to_string(s.path("target.csv")).unwrap(),
        "keep me"
    );
    for link in ["link.csv", "dangling.csv"] {
        let meta = std::fs::symlink_metadata(s.path(link)).unwrap();
        assert!(meta.file_type().is_symlink(), "{link} is still a link");
    }
    assert!(
        !s.path("nowhere.csv").exists(),
        "a dangling link's target is not created"
    );
    assert!(std::fs::read_dir(s.path("adir")).unwrap().next().is_none());
    let meta = std::fs::symlink_metadata(s.path("sock")).unwrap();
    assert!(meta.file_type().is_socket());
}

#[test]
fn a_regular_file_is_replaced_only_with_force() {
    let s = seeded();
    std::fs::write(s.path("old.csv"), "keep me").unwrap();
    let err = s.fails(
        &["results", "export", "--format", "csv", "--out", "old.csv"],
        2,
    );
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(
        std::fs::read_to_string(s.path("old.csv")).unwrap(),
        "keep me"
    );
    s.ok(&[
        "results", "export", "--format", "csv", "--out", "old.csv", "--force",
    ]);
    let now = std::fs::read_to_string(s.path("old.csv")).unwrap();
    assert!(now.starts_with("platform,source_id,"), "{now}");
    s.ok(&["backup", "--out", "b.db"]);
    s.fails(&["backup", "--out", "b.db"], 2);
    s.ok(&["backup", "--out", "b.db", "--force"]);
    assert_database(&s, &std::fs::read(s.path("b.db")).unwrap(), 1);
}

#[test]
fn a_dash_is_stdout_with_the_summary_on_stderr() {
    let s = seeded();
    let out = s.run(&["results", "export", "--format", "csv", "--out", "-"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.starts_with("platform,source_id,title,"), "{stdout}");
    assert!(!stdout.contains("wrote"), "{stdout}");
    assert!(stderr.contains("wrote 0 results to stdout"), "{stderr}");
    assert!(!s.path("-").exists(), "no file named -");
    let out = s.run(&["backup", "--out", "-"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_database(&s, &out.stdout, 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("to stdout"));
}

#[test]
fn enqueue_file_dash_reads_stdin_and_a_bom_is_accepted() {
    let s = seeded();
    let mut child = s
        .command(&["enqueue", "--file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"\xef\xbb\xbf{\"type\":\"keyword_search\",\"params\":{\"query\":\"from stdin\"}}\r\n",
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "enqueued 1 task (id 2); 0 already existed for their idempotency key\n"
    );
    // Not on a terminal: no progress bar, nothing else on stderr.
    assert_eq!(String::from_utf8(out.stderr).unwrap(), "");
    // A file saved by a Windows editor: BOM and CRLF.
    std::fs::write(
        s.path("bom.jsonl"),
        b"\xef\xbb\xbf{\"type\":\"keyword_search\",\"params\":{\"query\":\"bom\"}}\r\n",
    )
    .unwrap();
    s.ok(&["enqueue", "--file", "bom.jsonl"]);
    let tasks = s.json(&["tasks", "list"]);
    let queries: Vec<&str> = tasks
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["params"]["query"].as_str())
        .collect();
    assert_eq!(queries, vec!["bom", "from stdin", "seed"]);
}

#[test]
fn enqueue_file_reads_are_bounded() {
    let s = seeded();
    let before = s.db_bytes();
    let started = Instant::now();
    let err = s.fails(&["enqueue", "--file", "/dev/zero"], 2);
    assert!(err.contains("longer than"), "{err}");
    // An endless stream of blank lines (no line is too long) stops at the file cap.
    let mut child = s
        .command(&["enqueue", "--file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'\n'; 1 << 20];
        let mut sent = 0u64;
        while stdin.write_all(&chunk).is_ok() {
            sent += chunk.len() as u64;
            if sent > 1 << 30 {
                break; // never: the reader stops at 32 MiB
            }
        }
        sent
    });
    let out = child.wait_with_output().unwrap();
    let sent = writer.join().unwrap();
    let err = expect_code(&out, 2, "endless stdin");
    assert!(err.contains("stdin is larger than 32 MiB"), "{err}");
    assert!(sent < 1 << 30, "the reader stopped after {sent} bytes");
    // A regular file over the cap is refused before it is read.
    let big = std::fs::File::create(s.path("big.jsonl")).unwrap();
    big.set_len(33 * 1024 * 1024).unwrap();
    let err = s.fails(&["enqueue", "--file", "big.jsonl"], 2);
    assert!(err.contains("is larger than 32 MiB"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(s.db_bytes() == before, "nothing was written");
}

#[test]
fn a_reused_idempotency_key_with_other_work_is_refused() {
    let s = seeded();
    let first = ["enqueue", "keyword", "rust", "--idempotency-key", "daily"];
    s.ok(&first);
    // The same work again: a silent success returning the existing task.
    let again = s.ok(&first);
    assert!(again.contains("task 2 already exists"), "{again}");
    let before = s.db_bytes();
    for other in [
        &["enqueue", "keyword", "go", "--idempotency-key", "daily"][..],
        &[
            "enqueue",
            "videos",
            "dQw4w9WgXcQ",
            "--idempotency-key",
            "daily",
        ],
    ] {
        let err = s.fails(other, 2);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("error: invalid idempotency_key: \"daily\""),
            "{err}"
        );
        assert!(err.contains("task 2"), "{err}");
    }
    std::fs::write(
        s.path("t.jsonl"),
        "{\"type\":\"keyword_search\",\"params\":{\"query\":\"new\"}}\n\n{\"type\":\"keyword_search\",\"params\":{\"query\":\"other\"},\"idempotency_key\":\"daily\"}\n",
    )
    .unwrap();
    let err = s.fails(&["enqueue", "--file", "t.jsonl"], 2);
    assert!(
        err.contains("t.jsonl line 3: invalid idempotency_key"),
        "{err}"
    );
    assert!(err.contains("task 2"), "{err}");
    assert!(s.db_bytes() == before, "nothing was written");
}

#[test]
fn the_enqueue_summary_names_only_the_ids_it_created() {
    let s = seeded();
    let line = |q: &str, k: &str| {
        format!(
            "{{\"type\":\"keyword_search\",\"params\":{{\"query\":\"{q}\"}},\"idempotency_key\":\"{k}\"}}\n"
        )
    };
    std::fs::write(s.path("a.jsonl"), line("a", "ka") + &line("b", "kb")).unwrap();
    let out = s.ok(&["enqueue", "--file", "a.jsonl"]);
    assert_eq!(
        out,
        "enqueued 2 tasks (ids 2–3); 0 already existed for their idempotency key\n"
    );
    // Every line a duplicate: no id range at all.
    let out = s.ok(&["enqueue", "--file", "a.jsonl"]);
    assert_eq!(
        out,
        "enqueued 0 tasks; 2 already existed for their idempotency key\n"
    );
    // Old duplicates and new tasks: the range is the new tasks' only.
    std::fs::write(
        s.path("b.jsonl"),
        line("a", "ka") + &line("c", "kc") + &line("d", "kd"),
    )
    .unwrap();
    let out = s.ok(&["enqueue", "--file", "b.jsonl"]);
    let ids: Vec<i64> = s
        .json(&["tasks", "list"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| ["c", "d"].contains(&t["params"]["query"].as_str().unwrap_or("")))
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    let (lo, hi) = (ids.iter().min().unwrap(), ids.iter().max().unwrap());
    assert_eq!(
        out,
        format!("enqueued 2 tasks (ids {lo}–{hi}); 1 already existed for their idempotency key\n")
    );
}

#[test]
fn import_reads_only_a_bounded_regular_file() {
    let s = seeded();
    let before = s.db_bytes();
    mkfifo(&s.path("old.fifo"));
    let huge = std::fs::File::create(s.path("huge.db")).unwrap();
    huge.set_len(5 * 1024 * 1024 * 1024).unwrap(); // sparse: no disk used
    for (old, says) in [
        ("/dev/zero", "is not a regular file"),
        ("old.fifo", "is not a regular file"),
        ("huge.db", "larger than 4 GiB"),
    ] {
        let err = s.fails(&["import", "legacy", old], 2);
        assert!(err.contains(says), "{old}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert!(s.db_bytes() == before, "nothing was written");
}

#[test]
fn a_path_cannot_forge_terminal_output() {
    let s = seeded();
    let name = "evil\u{1b}[2K\rerror: forged\u{7}";
    std::fs::create_dir(s.path(name)).unwrap();
    for args in [
        &["results", "export", "--format", "csv", "--out", name][..],
        &["backup", "--out", name],
        &["enqueue", "--file", name],
        &["import", "legacy", name],
    ] {
        let err = s.fails(args, 2);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err:?}");
        assert!(
            !err.contains('\u{1b}') && !err.contains('\u{7}') && !err.contains('\r'),
            "{err:?}"
        );
        assert!(
            err.contains("evil\\u{1b}[2K\\rerror: forged\\u{7}"),
            "{err:?}"
        );
    }
}
