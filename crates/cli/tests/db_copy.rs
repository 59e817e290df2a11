//! `prismq db copy` through the binary, SQLite → PostgreSQL → SQLite, against the real server
//! that `scripts/services/postgres.sh` starts (the test fails, never skips, without it).

mod support;

use support::Sandbox;

fn postgres_url() -> String {
    std::env::var("PRISMQ_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("PRISMQ_TEST_POSTGRES_URL is not set: run `source scripts/services/postgres.sh` first (bash scripts/check.sh does)")
    })
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn copies_a_queue_to_postgres_and_back_and_refuses_a_non_empty_target() {
    let url = postgres_url();
    let sb = Sandbox::new();
    assert!(sb.run(&["init"]).status.success());
    for q in ["rust", "sqlite", "queues"] {
        let o = sb.run(&["enqueue", "keyword", q, "--top-n", "5"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let from = format!("sqlite:{}", sb.db().display());
    let o = sb.run(&["db", "copy", "--from", &from, "--to", &url, "--force"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains("copied 3 tasks"), "{}", stdout(&o));

    let back = sb.path("back.db");
    let o = sb.run(&[
        "db",
        "copy",
        "--from",
        &url,
        "--to",
        &format!("sqlite:{}", back.display()),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let original = stdout(&sb.run(&["--json", "tasks", "list"]));
    let copied = stdout(
        &sb.bare()
            .arg("--db")
            .arg(&back)
            .args(["--json", "tasks", "list"])
            .output()
            .unwrap(),
    );
    assert_eq!(original, copied);

    let o = sb.run(&["db", "copy", "--from", &from, "--to", &url]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not empty"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
