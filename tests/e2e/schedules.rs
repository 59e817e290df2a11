//! Schedules fired by real `prismq work` processes: four workers on one SQLite file, with
//! five schedules that each missed slots while no worker ran, enqueue exactly five tasks
//! (one catch-up each, never a burst) and complete them; a schedule whose task type is not
//! in this build is neither fired nor advanced, and `schedule list` says why.
//!
//! The binary has no fake clock, so "missed slots" are made by moving the stored next slot
//! back by hand; the fake-clock runs over ten slots are the store-level tests
//! (`crates/storage-*/tests/schedules.rs`) and the contract suite.

use std::time::Duration;

use prismq_domain::ports::TaskEvent;
use prismq_domain::TaskStatus;

use crate::fake_ytdlp::FakeYtdlp;
use crate::support::{terminate, wait_exit, wait_until, Sandbox};

const SCHEDULES: usize = 5;

#[test]
fn four_workers_fire_each_due_schedule_once() {
    let fake = FakeYtdlp::new(0);
    let path = fake.path().display().to_string();
    let s = Sandbox::with_env(&[
        ("PRISMQ_YOUTUBE__BACKEND", "ytdlp"),
        ("PRISMQ_YOUTUBE__YTDLP_PATH", &path),
        ("PRISMQ_WORKER__IDLE_BACKOFF_MAX", "100ms"),
        ("PRISMQ_WORKER__SHUTDOWN_GRACE", "5s"),
    ]);
    s.ok(&["init"]);
    for i in 0..SCHEDULES {
        let video = format!("vid{i:08}");
        s.ok(&[
            "schedule",
            "add",
            "--name",
            &format!("s{i}"),
            "--every",
            "1h",
            "videos",
            &video,
        ]);
    }
    // Workers were "down" for ten slots: every next slot is 10 hours back.
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    conn.execute("UPDATE schedules SET next_slot = next_slot - 36000000", [])
        .unwrap();
    conn.execute(
        "INSERT INTO schedules (name, type, params, priority, every_secs, time_zone, next_slot, created_at)
         VALUES ('gone', 'removed_type', '{}', 5, 3600, 'UTC', 0, 0)",
        [],
    )
    .unwrap();
    drop(conn);

    let mut workers: Vec<_> = (0..4)
        .map(|i| s.spawn(&format!("w{i}"), &["work", "--concurrency", "2"]))
        .collect();
    wait_until(
        Duration::from_secs(120),
        "every schedule's task to complete",
        || {
            let tasks = s.tasks();
            tasks.len() >= SCHEDULES && tasks.iter().all(|t| t.status == TaskStatus::Completed)
        },
    );
    for w in &workers {
        terminate(w);
    }
    for (i, w) in workers.iter_mut().enumerate() {
        let status = wait_exit(w, Duration::from_secs(30), "a worker");
        assert!(
            status.success(),
            "worker {i}: {}",
            s.stderr_of(&format!("w{i}"))
        );
    }

    let tasks = s.tasks();
    assert_eq!(
        tasks.len(),
        SCHEDULES,
        "one catch-up task per schedule: {tasks:?}"
    );
    let now = prismq_domain::Timestamp::now();
    let schedules = s.inspect(async |app| app.schedules.list_schedules().await.unwrap());
    for sched in schedules.iter().filter(|x| x.name != "gone") {
        let task = sched.last_task.expect("fired");
        assert!(sched.next_slot > now, "advanced past now: {sched:?}");
        let t = tasks.iter().find(|t| t.id == task).expect("its task");
        assert_eq!(
            t.idempotency_key.as_deref(),
            Some(sched.slot_key(sched.last_slot.unwrap()).as_str())
        );
        let log = s.log(task.0);
        let note = log
            .iter()
            .find(|r| r.event == TaskEvent::Progress)
            .expect("a note of the schedule");
        assert!(
            note.message
                .contains(&format!("schedule \"{}\"", sched.name)),
            "{note:?}"
        );
        assert_eq!(
            log.iter().filter(|r| r.event == TaskEvent::Claimed).count(),
            1
        );
    }
    let gone = schedules.iter().find(|x| x.name == "gone").unwrap();
    assert_eq!(
        gone.next_slot.as_millisecond(),
        0,
        "not advanced: nothing lost"
    );
    assert_eq!(gone.last_task, None, "not fired");
    let list = s.ok(&["schedule", "list"]);
    assert!(
        list.contains("error: task type \"removed_type\" is not in this build"),
        "{list}"
    );
}

/// `prismq serve` fires due schedules too, with no worker running: a schedule whose slot
/// came while nothing ran gets its one catch-up task from the server alone, and the server
/// stops cleanly.
#[test]
fn serve_fires_due_schedules_without_a_worker() {
    let s = Sandbox::new();
    s.ok(&["init"]);
    s.ok(&[
        "schedule",
        "add",
        "--name",
        "srv",
        "--every",
        "1h",
        "videos",
        "vid00000000",
    ]);
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    conn.execute("UPDATE schedules SET next_slot = next_slot - 36000000", [])
        .unwrap();
    drop(conn);
    let mut server = s.spawn("serve", &["serve", "--bind", "127.0.0.1:0"]);
    wait_until(
        Duration::from_secs(60),
        "the server to fire the schedule",
        || !s.tasks().is_empty(),
    );
    // A few more checks pass: still one task for the one missed slot.
    std::thread::sleep(Duration::from_secs(3));
    terminate(&server);
    let status = wait_exit(&mut server, Duration::from_secs(30), "the server");
    assert!(status.success(), "{}", s.stderr_of("serve"));
    let tasks = s.tasks();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let sched = s.inspect(async |app| app.schedules.list_schedules().await.unwrap());
    assert_eq!(sched[0].last_task, Some(tasks[0].id));
    assert_eq!(
        tasks[0].idempotency_key.as_deref(),
        Some(sched[0].slot_key(sched[0].last_slot.unwrap()).as_str())
    );
    assert_eq!(tasks[0].status, TaskStatus::Queued, "no worker ran it");
}
