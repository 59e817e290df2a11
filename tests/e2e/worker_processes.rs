//! Worker processes: a worker killed with SIGKILL mid-task has its task completed by
//! another once the lease lapses, the tasks it held ahead too; two workers (one keeping
//! tasks ahead) and an enqueuer at once complete every task exactly once.

use std::collections::BTreeMap;
use std::time::Duration;

use prismq_domain::ports::TaskEvent;
use prismq_domain::TaskStatus;

use crate::fake_ytdlp::FakeYtdlp;
use crate::support::{terminate, wait_exit, wait_until, Sandbox};

fn sandbox(fake: &FakeYtdlp, lease: &str) -> Sandbox {
    let path = fake.path().display().to_string();
    Sandbox::with_env(&[
        ("PRISMQ_YOUTUBE__BACKEND", "ytdlp"),
        ("PRISMQ_YOUTUBE__YTDLP_PATH", &path),
        ("PRISMQ_WORKER__LEASE", lease),
        ("PRISMQ_WORKER__IDLE_BACKOFF_MAX", "200ms"),
        ("PRISMQ_WORKER__SHUTDOWN_GRACE", "5s"),
    ])
}

#[test]
fn a_killed_workers_task_is_completed_by_another_after_the_lease_lapses() {
    let fake = FakeYtdlp::new(120);
    let s = sandbox(&fake, "2s");
    s.ok(&["init"]);
    s.ok(&["enqueue", "videos", "dQw4w9WgXcQ"]);

    let mut first = s.spawn("first", &["work", "--concurrency", "1"]);
    wait_until(
        Duration::from_secs(30),
        "the first worker to start the handler",
        || fake.sleeper().is_some() && s.task(1).status == TaskStatus::Running,
    );
    first.kill().expect("SIGKILL the first worker");
    first.wait().expect("reap the first worker");
    assert_eq!(
        s.task(1).status,
        TaskStatus::Running,
        "the kill left the task leased"
    );

    let mut second = s.spawn(
        "second",
        &["work", "--concurrency", "1", "--max-tasks", "1"],
    );
    let status = wait_exit(&mut second, Duration::from_secs(60), "the second worker");
    assert!(status.success(), "second worker: {}", s.stderr_of("second"));

    let task = s.task(1);
    assert_eq!(task.status, TaskStatus::Completed, "{task:?}");
    // The killed attempt was given back and counted as a lapse instead.
    assert_eq!((task.attempts, task.lapses), (1, 1), "{task:?}");
    let events: Vec<TaskEvent> = s.log(1).iter().map(|r| r.event).collect();
    assert!(events.contains(&TaskEvent::LeaseExpired), "{events:?}");
    assert_eq!(
        events
            .iter()
            .filter(|e| **e == TaskEvent::Completed)
            .count(),
        1
    );
    assert_eq!(
        fake.details(),
        ["dQw4w9WgXcQ"],
        "only the second run finished"
    );
}

/// A worker keeping four tasks ahead is killed while the first one runs: the three it held
/// unstarted and the one it ran are all claimed again once their leases lapse, and each
/// completes once.
#[test]
fn a_killed_worker_holding_tasks_ahead_loses_none_of_them() {
    let fake = FakeYtdlp::new(120);
    let s = sandbox(&fake, "2s");
    s.ok(&["init"]);
    for id in ["dQw4w9WgXcQ", "9bZkp7q19f0", "kJQP7kiw5Fk", "JGwWNGJdvx8"] {
        s.ok(&["enqueue", "videos", id]);
    }
    let mut first = s.spawn(
        "first",
        &[
            "work",
            "--concurrency",
            "1",
            "--prefetch",
            "4",
            "--strategy",
            "fifo",
        ],
    );
    wait_until(
        Duration::from_secs(30),
        "the first worker to hold all four and start the first",
        || fake.sleeper().is_some() && s.tasks().iter().all(|t| t.status == TaskStatus::Running),
    );
    first.kill().expect("SIGKILL the first worker");
    first.wait().expect("reap the first worker");

    let mut second = s.spawn(
        "second",
        &["work", "--concurrency", "1", "--max-tasks", "4"],
    );
    let status = wait_exit(&mut second, Duration::from_secs(60), "the second worker");
    assert!(status.success(), "second worker: {}", s.stderr_of("second"));
    let tasks = s.tasks();
    assert_eq!(tasks.len(), 4);
    for t in tasks {
        assert_eq!(t.status, TaskStatus::Completed, "{t:?}");
        // The killed attempts were given back and counted as lapses instead.
        assert_eq!((t.attempts, t.lapses), (1, 1), "{t:?}");
        let completed = s
            .log(t.id.0)
            .iter()
            .filter(|r| r.event == TaskEvent::Completed)
            .count();
        assert_eq!(completed, 1, "{t:?}");
    }
}

fn video_id(n: usize) -> String {
    format!("vid{n:08}")
}

fn tasks_file(s: &Sandbox, name: &str, range: std::ops::Range<usize>) -> String {
    let lines: Vec<String> = range
        .map(|n| {
            serde_json::json!({"type": "api_scrape", "params": {"videos": [video_id(n)]}})
                .to_string()
        })
        .collect();
    let path = s.dir.path().join(name);
    std::fs::write(&path, lines.join("\n")).unwrap();
    path.display().to_string()
}

#[test]
fn two_workers_and_an_enqueuer_complete_every_task_exactly_once() {
    const TASKS: usize = 90;
    let fake = FakeYtdlp::new(0);
    let s = sandbox(&fake, "30s");
    s.ok(&["init"]);
    let files: Vec<String> = (0..3)
        .map(|i| tasks_file(&s, &format!("t{i}.jsonl"), i * 30..(i + 1) * 30))
        .collect();

    let mut a = s.spawn("a", &["work", "--concurrency", "2", "--strategy", "fifo"]);
    let mut b = s.spawn(
        "b",
        &[
            "work",
            "--concurrency",
            "2",
            "--strategy",
            "weighted_random",
            "--prefetch",
            "4",
        ],
    );
    // One enqueuing process at a time, while both workers run.
    for (i, f) in files.iter().enumerate() {
        let mut e = s.spawn(&format!("enqueue{i}"), &["enqueue", "--file", f]);
        let status = wait_exit(&mut e, Duration::from_secs(60), "the enqueuer");
        assert!(
            status.success(),
            "enqueuer: {}",
            s.stderr_of(&format!("enqueue{i}"))
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_until(Duration::from_secs(120), "every task to complete", || {
        let tasks = s.tasks();
        tasks.len() == TASKS && tasks.iter().all(|t| t.status == TaskStatus::Completed)
    });
    terminate(&a);
    terminate(&b);
    for (name, child) in [("a", &mut a), ("b", &mut b)] {
        let status = wait_exit(child, Duration::from_secs(30), name);
        assert!(status.success(), "worker {name}: {}", s.stderr_of(name));
    }

    for t in s.tasks() {
        assert_eq!(t.attempts, 1, "{t:?}");
        let log = s.log(t.id.0);
        let count = |e: TaskEvent| log.iter().filter(|r| r.event == e).count();
        assert_eq!(
            count(TaskEvent::Claimed),
            1,
            "task {} claimed twice: {log:?}",
            t.id
        );
        assert_eq!(count(TaskEvent::Completed), 1, "task {}", t.id);
    }
    let mut runs: BTreeMap<String, usize> = BTreeMap::new();
    for id in fake.details() {
        *runs.entry(id).or_default() += 1;
    }
    assert_eq!(runs.len(), TASKS);
    assert!(
        runs.values().all(|n| *n == 1),
        "a video was fetched twice: {runs:?}"
    );
    let both =
        ["a", "b"].map(|n| std::fs::read_to_string(s.dir.path().join(format!("{n}.out"))).unwrap());
    assert!(
        both.iter().all(|o| o.contains("stopped by signal")),
        "{both:?}"
    );
}

/// SIGTERM asks a graceful stop: a worker whose handler outlives the grace releases the lease
/// (no attempt used) and exits 0. A second SIGTERM during the grace exits at once with 130,
/// leaving the task to its lease.
#[test]
fn one_signal_stops_gracefully_and_a_second_exits_at_once() {
    let fake = FakeYtdlp::new(120);
    let s = Sandbox::with_env(&[
        ("PRISMQ_YOUTUBE__BACKEND", "ytdlp"),
        (
            "PRISMQ_YOUTUBE__YTDLP_PATH",
            &fake.path().display().to_string(),
        ),
        ("PRISMQ_WORKER__LEASE", "60s"),
        ("PRISMQ_WORKER__SHUTDOWN_GRACE", "1s"),
    ]);
    s.ok(&["init"]);
    s.ok(&["enqueue", "videos", "dQw4w9WgXcQ"]);
    let mut worker = s.spawn("graceful", &["work", "--concurrency", "1"]);
    wait_until(Duration::from_secs(30), "the handler to start", || {
        fake.sleeper().is_some() && s.task(1).status == TaskStatus::Running
    });
    terminate(&worker);
    let status = wait_exit(&mut worker, Duration::from_secs(30), "the graceful stop");
    assert_eq!(status.code(), Some(0), "{}", s.stderr_of("graceful"));
    let task = s.task(1);
    assert_eq!(
        (task.status, task.attempts),
        (TaskStatus::Queued, 0),
        "released: {task:?}"
    );
    assert_eq!(s.log(1).last().map(|r| r.event), Some(TaskEvent::Released));

    // The same again, but with a longer grace and a second signal inside it.
    let fake2 = FakeYtdlp::new(120);
    let s2 = Sandbox::with_env(&[
        ("PRISMQ_YOUTUBE__BACKEND", "ytdlp"),
        (
            "PRISMQ_YOUTUBE__YTDLP_PATH",
            &fake2.path().display().to_string(),
        ),
        ("PRISMQ_WORKER__LEASE", "60s"),
        ("PRISMQ_WORKER__SHUTDOWN_GRACE", "60s"),
    ]);
    s2.ok(&["init"]);
    s2.ok(&["enqueue", "videos", "dQw4w9WgXcQ"]);
    let mut worker = s2.spawn("impatient", &["work", "--concurrency", "1"]);
    wait_until(Duration::from_secs(30), "the handler to start", || {
        fake2.sleeper().is_some() && s2.task(1).status == TaskStatus::Running
    });
    terminate(&worker);
    std::thread::sleep(Duration::from_millis(300));
    terminate(&worker);
    let started = std::time::Instant::now();
    let status = wait_exit(&mut worker, Duration::from_secs(10), "the second signal");
    assert_eq!(status.code(), Some(130), "{}", s2.stderr_of("impatient"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "exited after {:?}",
        started.elapsed()
    );
    assert_eq!(s2.task(1).status, TaskStatus::Running, "left to its lease");
}
