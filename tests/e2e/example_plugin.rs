//! The example plugin (`crates/example-plugin`), registered in the real app by its one line
//! in the plugin list, runs through the real binary: `prismq enqueue raw` queues an
//! `example_echo` task on a SQLite file, `prismq work` runs it, and its items are stored.

use std::time::Duration;

use prismq_domain::ports::ResultQuery;
use prismq_domain::TaskStatus;

use crate::support::{wait_exit, Sandbox};

#[test]
fn an_example_echo_task_runs_through_enqueue_raw_and_work() {
    let s = Sandbox::with_env(&[("PRISMQ_WORKER__IDLE_BACKOFF_MAX", "200ms")]);
    s.ok(&["init"]);
    s.ok(&[
        "enqueue",
        "raw",
        "--type",
        "example_echo",
        "--params",
        r#"{"text": "an idea", "times": 3}"#,
    ]);
    // The plugin's own check refuses a bad task before it is queued.
    let out = s
        .command(&[
            "enqueue",
            "raw",
            "--type",
            "example_echo",
            "--params",
            r#"{"text": ""}"#,
        ])
        .output()
        .expect("run prismq");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("params.text"),
        "{out:?}"
    );

    let mut worker = s.spawn(
        "worker",
        &["work", "--concurrency", "1", "--max-tasks", "1"],
    );
    let status = wait_exit(&mut worker, Duration::from_secs(60), "the worker");
    assert!(status.success(), "worker: {}", s.stderr_of("worker"));

    let task = s.task(1);
    assert_eq!(task.task_type.as_str(), "example_echo");
    assert_eq!(task.status, TaskStatus::Completed, "{task:?}");
    assert_eq!(s.tasks().len(), 1, "the refused task was not queued");
    let items = s.inspect(async |app| {
        app.results
            .query(&ResultQuery {
                limit: 100,
                ..ResultQuery::default()
            })
            .await
            .expect("results")
    });
    let titles: Vec<&str> = items.iter().map(|r| r.item.title.as_str()).collect();
    assert_eq!(titles, ["an idea"; 3], "{items:?}");
}
