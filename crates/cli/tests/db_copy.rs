//! PostgreSQL through the binary, against the real server that `scripts/services/postgres.sh`
//! starts (the tests fail, never skip, without it): `db copy` SQLite → PostgreSQL → SQLite
//! (and SQLite → SQLite, which needs no server, and into a file of another page size),
//! `database.schema`, TLS settings in the URL, and `init` / `migrate`; and `db page-size`,
//! which needs no server either.

mod support;

use support::Sandbox;

fn postgres_url() -> String {
    std::env::var("PRISMQ_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("PRISMQ_TEST_POSTGRES_URL is not set: run `source scripts/services/postgres.sh` first (bash scripts/check.sh does)")
    })
}

/// The binary, set to the PostgreSQL queue at `url`, in `schema`.
fn postgres_command(sb: &Sandbox, url: &str, schema: &str) -> std::process::Command {
    let mut c = sb.bare();
    c.env("PRISMQ_DATABASE__URL", url)
        .env("PRISMQ_DATABASE__SCHEMA", schema);
    c
}

/// Runs the binary on the PostgreSQL queue at `url`, in `schema`.
fn on_postgres(sb: &Sandbox, url: &str, schema: &str, args: &[&str]) -> std::process::Output {
    postgres_command(sb, url, schema)
        .args(args)
        .output()
        .unwrap()
}

/// The page size of the SQLite file at `p`, read on a connection of its own.
fn page_size(p: &std::path::Path) -> i64 {
    rusqlite::Connection::open(p)
        .and_then(|c| c.query_row("PRAGMA page_size", [], |r| r.get(0)))
        .unwrap()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn copies_a_queue_to_postgres_and_back_and_refuses_a_non_empty_target() {
    let url = postgres_url();
    let sb = Sandbox::new();
    assert!(sb.run(&["init"]).status.success());
    for q in ["rust", "sqlite", "queues"] {
        let o = sb.run(&["enqueue", "keyword", q, "--top-n", "5"]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let from = format!("sqlite:{}", sb.db().display());
    let o = sb.run(&["db", "copy", "--from", &from, "--to", &url, "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
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
    assert!(o.status.success(), "{}", stderr(&o));
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
    assert!(stderr(&o).contains("not empty"), "{}", stderr(&o));
}

/// `database.schema` puts a queue in its own schema of the same database, and
/// `database.pool_size` is accepted with it: two queues side by side see only their own
/// tasks.
#[test]
fn database_schema_keeps_two_queues_apart_in_one_database() {
    let url = postgres_url();
    let stamp = format!(
        "{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let sb = Sandbox::new();
    let in_schema = |schema: &str, args: &[&str]| {
        postgres_command(&sb, &url, schema)
            .env("PRISMQ_DATABASE__POOL_SIZE", "2")
            .args(args)
            .output()
            .unwrap()
    };
    let (a, b) = (format!("cfg_a_{stamp}"), format!("cfg_b_{stamp}"));
    for (schema, queries) in [(&a, &["rust"][..]), (&b, &["sqlite", "queues"][..])] {
        for q in queries {
            let o = in_schema(schema, &["enqueue", "keyword", q]);
            assert!(o.status.success(), "{}", stderr(&o));
        }
    }
    let listed = |schema: &str| -> Vec<String> {
        let o = in_schema(schema, &["--json", "tasks", "list"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|t| t["params"]["query"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(listed(&a), ["rust"]);
    let mut in_b = listed(&b);
    in_b.sort();
    assert_eq!(in_b, ["queues", "sqlite"]);
    let o = in_schema("Not-A-Schema", &["tasks", "list"]);
    assert_eq!(o.status.code(), Some(5), "a configuration error");
    assert!(stderr(&o).contains("database.schema"), "{}", stderr(&o));
}

/// The URL's TLS parameters through the binary: the test server speaks TLS with a
/// certificate for `localhost` signed by the service script's CA.
#[test]
fn tls_settings_in_the_url_reach_every_command() {
    let tls = std::env::var("PRISMQ_TEST_POSTGRES_TLS").expect(
        "PRISMQ_TEST_POSTGRES_TLS is not set: run `source scripts/services/postgres.sh` first",
    );
    let port = std::env::var("PRISMQ_TEST_POSTGRES_PORT").expect("PRISMQ_TEST_POSTGRES_PORT");
    let schema = format!("cli_tls_{}", std::process::id());
    let sb = Sandbox::new();
    let run = |host: &str, query: &str, args: &[&str]| {
        let url = format!("postgres://prismq@{host}:{port}/prismq_test?{query}");
        on_postgres(&sb, &url, &schema, args)
    };
    let full = format!("sslmode=verify-full&sslrootcert={tls}/ca.crt");
    let o = run("localhost", &full, &["enqueue", "keyword", "over tls"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run("localhost", &full, &["--json", "tasks", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("over tls"), "{}", stdout(&o));

    // The certificate names localhost only: by address, verify-full refuses (exit 4,
    // saying what to do) and verify-ca accepts.
    let o = run("127.0.0.1", &full, &["stats"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(
        err.contains("not valid for name") && err.contains("sslmode=verify-ca"),
        "{err}"
    );
    let ca = format!("sslmode=verify-ca&sslrootcert={tls}/ca.crt");
    let o = run("127.0.0.1", &ca, &["stats"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // An unknown mode is a configuration error, naming the key and what is accepted.
    let o = run("localhost", "sslmode=allow", &["stats"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(5), "{err}");
    assert!(
        err.contains("database.url") && err.contains("verify-full"),
        "{err}"
    );
}

/// `db copy --schema` puts the copy in its own schema, which a queue configured with that
/// `database.schema` then sees; without the flag the configured schema is used; a bad name is
/// refused before anything is written.
#[test]
fn db_copy_goes_to_and_from_the_schema_asked_for() {
    let url = postgres_url();
    let schema = format!("copy_s_{}", std::process::id());
    let sb = Sandbox::new();
    assert!(sb.run(&["init"]).status.success());
    for q in ["alpha", "beta"] {
        assert!(sb.run(&["enqueue", "keyword", q]).status.success());
    }
    let from = format!("sqlite:{}", sb.db().display());
    let o = sb.run(&[
        "db", "copy", "--from", &from, "--to", &url, "--schema", &schema,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("copied 2 tasks"), "{}", stdout(&o));

    let in_schema = |args: &[&str]| on_postgres(&sb, &url, &schema, args);
    let listed = stdout(&in_schema(&["--json", "tasks", "list"]));
    assert!(
        listed.contains("alpha") && listed.contains("beta"),
        "{listed}"
    );

    // Back to a new file, the schema coming from the configuration this time.
    let back = sb.path("from_schema.db");
    let o = in_schema(&[
        "db",
        "copy",
        "--from",
        &url,
        "--to",
        &format!("sqlite:{}", back.display()),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("copied 2 tasks"), "{}", stdout(&o));

    let bad = sb.path("never.db");
    let o = sb.run(&[
        "db",
        "copy",
        "--from",
        &url,
        "--to",
        &format!("sqlite:{}", bad.display()),
        "--schema",
        "Bad-Name",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--schema \"Bad-Name\""),
        "{}",
        stderr(&o)
    );
    assert!(!bad.exists(), "nothing written");
}

/// `prismq init` and `prismq migrate status|up|down` on PostgreSQL, in a schema of their own.
#[test]
fn init_and_migrate_manage_a_postgres_schema() {
    let url = postgres_url();
    let schema = format!("cli_mig_{}", std::process::id());
    let sb = Sandbox::new();
    let pg = |args: &[&str]| on_postgres(&sb, &url, &schema, args);
    let json = |o: &std::process::Output| -> serde_json::Value {
        assert!(o.status.success(), "{}", stderr(o));
        serde_json::from_slice(&o.stdout).unwrap()
    };

    let v = json(&pg(&["--json", "migrate", "status"]));
    assert_eq!(v["current"], 0, "a fresh schema: {v}");
    let all = v["migrations"].as_array().unwrap().len();
    assert!(all >= 1, "{v}");
    assert!(v["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["applied_at"].is_null()));

    let o = pg(&["migrate", "down", "--to", "0"]);
    assert_eq!(o.status.code(), Some(2), "down needs --yes");

    let v = json(&pg(&["--json", "migrate", "up"]));
    assert_eq!(v["applied"].as_array().unwrap().len(), all, "{v}");
    assert_eq!(v["current"], all);
    let v = json(&pg(&["--json", "migrate", "up"]));
    assert_eq!(
        v["applied"],
        serde_json::json!([]),
        "up twice is a no-op: {v}"
    );

    let o = pg(&["init"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let said = stdout(&o);
    assert!(
        said.starts_with("database ready at postgres://")
            && said.contains(&format!("(schema version {all})")),
        "{said}"
    );

    let o = pg(&["migrate", "up", "--to", "99"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no migration version 99"));

    let v = json(&pg(&["--json", "migrate", "down", "--to", "0", "--yes"]));
    assert_eq!(v["reverted"].as_array().unwrap().len(), all);
    assert_eq!(v["current"], 0);
    let v = json(&pg(&["--json", "init"]));
    assert_eq!(
        (v["created"].clone(), v["schema_version"].clone()),
        (true.into(), all.into()),
        "{v}"
    );
}

/// `prismq validate` on PostgreSQL: check 2 says the server answers and whether the
/// connection is encrypted, check 3 whether migrations are pending; an unreachable server
/// fails check 2 (exit 1).
#[test]
fn validate_checks_the_postgres_server_and_its_migrations() {
    let tls = std::env::var("PRISMQ_TEST_POSTGRES_TLS").expect("PRISMQ_TEST_POSTGRES_TLS");
    let port = std::env::var("PRISMQ_TEST_POSTGRES_PORT").expect("PRISMQ_TEST_POSTGRES_PORT");
    let schema = format!("cli_val_{}", std::process::id());
    let sb = Sandbox::new();
    let validate = |url: &str| {
        let o = on_postgres(&sb, url, &schema, &["--json", "validate", "--no-benchmark"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let check = |n: u64| -> (String, String) {
            let c = v["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["number"] == n)
                .unwrap();
            (
                c["outcome"].as_str().unwrap().to_owned(),
                c["reason"].as_str().unwrap().to_owned(),
            )
        };
        (o.status.code(), check(2), check(3), check(4))
    };

    let verified = format!(
        "postgres://prismq@localhost:{port}/prismq_test?sslmode=verify-full&sslrootcert={tls}/ca.crt"
    );
    let (code, database, migrations, sqlite_only) = validate(&verified);
    assert_eq!(code, Some(0));
    assert_eq!(database.0, "pass", "{database:?}");
    assert!(database.1.contains("encrypted (TLSv1.3"), "{database:?}");
    assert_eq!(migrations.0, "warn", "a fresh schema: {migrations:?}");
    assert!(migrations.1.contains("prismq migrate up"), "{migrations:?}");
    assert_eq!(sqlite_only.0, "skip");

    let o = on_postgres(&sb, &verified, &schema, &["migrate", "up"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let plain = format!("postgres://prismq@127.0.0.1:{port}/prismq_test");
    let (code, database, migrations, _) = validate(&plain);
    assert_eq!(code, Some(0));
    assert!(
        database.1.contains("on this machine, without TLS"),
        "{database:?}"
    );
    assert_eq!(migrations.0, "pass", "{migrations:?}");

    let (code, database, _, _) = validate("postgres://prismq@127.0.0.1:1/prismq_test");
    assert_eq!(code, Some(1));
    assert_eq!(database.0, "fail", "{database:?}");
    assert!(
        database.1.contains("cannot connect to PostgreSQL"),
        "{database:?}"
    );
}

/// `db copy` carries schedules both ways with their ids, timetables, pause state and last
/// task, and the target's next schedule id follows the copied ones.
#[test]
fn copies_schedules_to_postgres_and_back() {
    let url = postgres_url();
    let schema = format!(
        "copy_sched_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let sb = Sandbox::new();
    assert!(sb.run(&["init"]).status.success());
    let adds: [&[&str]; 3] = [
        &[
            "--name", "rust-6h", "--every", "6h", "--jitter", "5m", "keyword", "rust",
        ],
        &[
            "--name",
            "prague-morning",
            "--cron",
            "30 2 * * *",
            "--tz",
            "Europe/Prague",
            "trending",
            "--country",
            "CZ",
            "--priority",
            "8",
        ],
        &[
            "--name",
            "refresh-week",
            "--every",
            "1d",
            "refresh-stats",
            "--seen-within",
            "7d",
        ],
    ];
    for a in adds {
        let mut args = vec!["schedule", "add"];
        args.extend_from_slice(a);
        let o = sb.run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    for a in [
        &["schedule", "run-now", "rust-6h"][..],
        &["schedule", "pause", "prague-morning"],
    ] {
        let o = sb.run(a);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let original = stdout(&sb.run(&["--json", "schedule", "list"]));
    let list: serde_json::Value = serde_json::from_str(&original).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3, "{original}");

    let from = format!("sqlite:{}", sb.db().display());
    let o = sb.run(&[
        "db", "copy", "--from", &from, "--to", &url, "--schema", &schema,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(", 3 schedules"), "{}", stdout(&o));
    let on_pg = on_postgres(&sb, &url, &schema, &["--json", "schedule", "list"]);
    assert!(on_pg.status.success(), "{}", stderr(&on_pg));
    assert_eq!(stdout(&on_pg), original, "the same schedules on PostgreSQL");

    let back = sb.path("back.db");
    let o = sb.run(&[
        "db",
        "copy",
        "--from",
        &url,
        "--schema",
        &schema,
        "--to",
        &format!("sqlite:{}", back.display()),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let in_back = |args: &[&str]| {
        sb.bare()
            .arg("--db")
            .arg(&back)
            .args(args)
            .output()
            .unwrap()
    };
    assert_eq!(
        stdout(&in_back(&["--json", "schedule", "list"])),
        original,
        "the same schedules back on SQLite"
    );
    // New schedules on either target get ids after the copied ones.
    let added = on_postgres(
        &sb,
        &url,
        &schema,
        &[
            "--json", "schedule", "add", "--name", "new", "--every", "1h", "keyword", "q",
        ],
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let v: serde_json::Value = serde_json::from_slice(&added.stdout).unwrap();
    assert_eq!(v["id"], 4, "{v}");
    let added = in_back(&[
        "--json", "schedule", "add", "--name", "new", "--every", "1h", "keyword", "q",
    ]);
    assert!(added.status.success(), "{}", stderr(&added));
    let v: serde_json::Value = serde_json::from_slice(&added.stdout).unwrap();
    assert_eq!(v["id"], 4, "{v}");
}

/// `db copy` between two SQLite files (any pair of engines copies): the copy lists the same
/// tasks, a non-empty target is refused (exit 2) and the source itself as the target too.
#[test]
fn copies_a_queue_between_two_sqlite_files() {
    let sb = Sandbox::new();
    assert!(sb.run(&["init"]).status.success());
    for q in ["rust", "sqlite"] {
        let o = sb.run(&["enqueue", "keyword", q, "--top-n", "5"]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let from = format!("sqlite:{}", sb.db().display());
    let copy = sb.path("copy.db");
    let to = format!("sqlite:{}", copy.display());
    let o = sb.run(&["db", "copy", "--from", &from, "--to", &to]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("copied 2 tasks"), "{}", stdout(&o));
    let original = stdout(&sb.run(&["--json", "tasks", "list"]));
    let copied = stdout(
        &sb.bare()
            .arg("--db")
            .arg(&copy)
            .args(["--json", "tasks", "list"])
            .output()
            .unwrap(),
    );
    assert_eq!(original, copied);
    let o = sb.run(&["db", "copy", "--from", &from, "--to", &to]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not empty"), "{}", stderr(&o));
    let o = sb.run(&["db", "copy", "--from", &from, "--to", &from]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("same store"), "{}", stderr(&o));
}

/// `prismq --db DB init` with the sandbox's environment.
fn init_at(sb: &Sandbox, db: &std::path::Path) -> std::process::Output {
    sb.bare().arg("--db").arg(db).arg("init").output().unwrap()
}

/// `database.page_size` through the binary: `init` makes a new file with it, a size SQLite
/// does not accept is refused (exit 5, a configuration error) naming the key and what is
/// accepted, with no file
/// made, and `db copy` into a new file moves a queue to another page size.
#[test]
fn a_new_file_takes_database_page_size_and_db_copy_moves_a_queue_to_it() {
    let mut sb = Sandbox::new();
    sb.ok(&["init"]);
    assert_eq!(page_size(&sb.db()), 2048);
    for q in ["rust", "sqlite"] {
        sb.ok(&["enqueue", "keyword", q, "--top-n", "5"]);
    }

    sb.env("PRISMQ_DATABASE__PAGE_SIZE", "1000");
    let refused = sb.path("refused.db");
    let o = init_at(&sb, &refused);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("database.page_size") && e.contains("1000"),
        "{e}"
    );
    assert!(e.contains("a power of two from 512 to 65536"), "{e}");
    assert!(!refused.exists(), "nothing made for a refused page size");

    sb.env("PRISMQ_DATABASE__PAGE_SIZE", "1024");
    let fresh = sb.path("fresh.db");
    let o = init_at(&sb, &fresh);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(page_size(&fresh), 1024, "init makes a new file with it");
    let small = sb.path("small.db");
    let from = format!("sqlite:{}", sb.db().display());
    let to = format!("sqlite:{}", small.display());
    let o = sb.run(&["db", "copy", "--from", &from, "--to", &to]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!((page_size(&sb.db()), page_size(&small)), (2048, 1024));
    let listed = |db: &std::path::Path| {
        stdout(
            &sb.bare()
                .arg("--db")
                .arg(db)
                .args(["--json", "tasks", "list"])
                .output()
                .unwrap(),
        )
    };
    assert_eq!(listed(&sb.db()), listed(&small));
    // The configured size is for new files: the existing queue keeps its pages.
    sb.ok(&["enqueue", "keyword", "pages", "--top-n", "5"]);
    assert_eq!(page_size(&sb.db()), 2048);
}

/// `maintenance` and `backup` on PostgreSQL: the engine answers "not supported" through the
/// upkeep port (exit 4, naming PostgreSQL's own tools) before anything is written.
#[test]
fn maintenance_and_backup_are_not_supported_on_postgres() {
    let url = postgres_url();
    let sb = Sandbox::new();
    let schema = format!("t_upkeep_{}", std::process::id());
    let out = sb.path("backup.db");
    let out_arg = out.display().to_string();
    for args in [
        &["maintenance", "checkpoint"][..],
        &["maintenance", "prune", "--logs-older-than", "30d"][..],
        &["backup", "--out", &out_arg][..],
    ] {
        let o = on_postgres(&sb, &url, &schema, args);
        assert_eq!(o.status.code(), Some(4), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("use PostgreSQL's own tools (VACUUM, pg_dump)"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    assert!(!out.exists(), "nothing written for the backup");
    // Except the pruning of result sightings, which the server does (on a migrated schema).
    let o = on_postgres(&sb, &url, &schema, &["migrate", "up"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = on_postgres(
        &sb,
        &url,
        &schema,
        &["maintenance", "prune", "--sightings-older-than", "30d"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("0 older sightings"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// `db page-size` shows a SQLite queue's page size and rewrites the file in place: a queue
/// made with 4 KiB pages holds the same tasks at 2 KiB; a size SQLite refuses is a usage
/// error; a file a running worker holds is refused with nothing changed, and the worker
/// goes on; PostgreSQL is refused before anything is opened.
#[test]
fn db_page_size_shows_and_changes_a_files_pages_in_place() {
    use prismq_tests::harness::{signal, wait_exit, wait_until};
    use std::time::Duration;

    let mut sb = Sandbox::new();
    sb.env("PRISMQ_DATABASE__PAGE_SIZE", "4096");
    sb.ok(&["init"]);
    for q in ["rust", "sqlite", "pages"] {
        sb.ok(&["enqueue", "keyword", q, "--top-n", "5"]);
    }
    let before = sb.tasks();
    let shown = sb.ok(&["db", "page-size"]);
    assert!(
        shown.contains("4096-byte pages (database.page_size, what a new file gets: 4096)"),
        "{shown}"
    );
    sb.env("PRISMQ_DATABASE__PAGE_SIZE", "2048");

    let e = sb.fails(&["db", "page-size", "1000"], 2);
    assert!(
        e.contains("\"1000\" is not a page size SQLite accepts")
            && e.contains("a power of two from 512 to 65536"),
        "{e}"
    );
    assert_eq!(page_size(&sb.db()), 4096);

    // A worker (of a type with no tasks, so it only waits) holds the file open.
    let mut worker = sb.spawn("work", &["work", "--types", "example_echo"]);
    wait_until(Duration::from_secs(20), "the worker's registration", || {
        sb.count("SELECT count(*) FROM workers WHERE status = 'active'") > 0
    });
    let e = sb.fails(&["db", "page-size", "2048"], 4);
    assert!(
        e.contains("is open elsewhere") && e.contains("nothing was changed"),
        "{e}"
    );
    assert_eq!(page_size(&sb.db()), 4096);
    sb.ok(&[
        "enqueue",
        "raw",
        "--type",
        "example_echo",
        "--params",
        r#"{"text": "still here"}"#,
    ]);
    wait_until(Duration::from_secs(20), "the worker's task", || {
        sb.count("SELECT count(*) FROM task_queue WHERE status = 3") == 1
    });
    assert!(signal(worker.id(), "TERM"));
    assert!(wait_exit(&mut worker, Duration::from_secs(20), "the worker").success());

    let out = sb.ok(&["db", "page-size", "2048"]);
    assert!(
        out.contains("rewritten with 2048-byte pages (were 4096)"),
        "{out}"
    );
    assert!(out.contains("quick_check ok"), "{out}");
    assert_eq!(page_size(&sb.db()), 2048);
    let after = sb.tasks();
    assert_eq!(after.len(), before.len() + 1);
    // Newest first: the worker's task, then the three as they read before.
    assert_eq!(after[1..], before[..], "the same tasks, as they read");
    let again = sb.json(&["db", "page-size", "2048"]);
    assert_eq!(again["changed"], false, "{again}");
    assert_eq!(again["after"], 2048, "{again}");

    // Refused before any connection: nothing listens on port 1.
    let o = on_postgres(
        &sb,
        "postgres://u@127.0.0.1:1/none",
        "public",
        &["db", "page-size", "2048"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("names a PostgreSQL server"),
        "{}",
        stderr(&o)
    );
}
