//! Obligations of `ScheduleStore`: adding and validating, the operator actions, firing each
//! due slot exactly once (also when callers race), the catch-up rule after downtime, pause,
//! remove, run-now, and schedules of task types the caller cannot run.

use std::sync::Arc;

use prismq_domain::ports::{ScheduleStore, TaskEvent};
use prismq_domain::schedule::{Cadence, NewSchedule};
use prismq_domain::{PortError, TaskStatus, TaskType, Timestamp};
use serde_json::json;

use super::support::{assert_not_found, invalid_field, setup};
use super::{ContractEnv, Subject};
use crate::fixtures::{plus_secs, task_type_of};

/// An hourly schedule of task type `a` named `name`.
fn hourly(name: &str) -> NewSchedule {
    NewSchedule::new(
        name,
        task_type_of("a"),
        json!({"channel": name}),
        Cadence::every("1h").expect("1h"),
    )
}

fn types() -> Vec<TaskType> {
    vec![task_type_of("a")]
}

fn at(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

/// A new schedule is not paused and waits for the first slot strictly after now.
pub async fn add_starts_at_the_first_slot_after_now(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let mut new = hourly("h");
    new.priority = prismq_domain::Priority::new(8).unwrap();
    new.time_zone = "Europe/Prague".into();
    new.jitter = std::time::Duration::from_secs(60);
    let added = s.schedules.add_schedule(new).await.unwrap();
    assert_eq!(added.name, "h");
    assert!(!added.paused);
    assert_eq!(added.next_slot, plus_secs(clock.now(), 3_600));
    assert_eq!((added.last_slot, added.last_task), (None, None));
    assert_eq!(added.created_at, clock.now());
    let got = s.schedules.get_schedule("h").await.unwrap();
    assert_eq!(got, added, "reads back field for field");
    s.schedules.add_schedule(hourly("a-first")).await.unwrap();
    let names: Vec<String> = s
        .schedules
        .list_schedules()
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.name)
        .collect();
    assert_eq!(names, ["a-first", "h"], "ordered by name");
}

/// Invalid schedules and taken names are refused, writing nothing.
pub async fn add_refuses_invalid_and_duplicate_names(factory: impl Fn(ContractEnv) -> Subject) {
    let (_clock, s) = setup(factory);
    let mut bad_zone = hourly("z");
    bad_zone.time_zone = "Mars/Olympus".into();
    assert_eq!(
        invalid_field(s.schedules.add_schedule(bad_zone).await),
        "tz"
    );
    let mut bad_every = hourly("e");
    bad_every.cadence = Cadence::EverySecs(0);
    assert_eq!(
        invalid_field(s.schedules.add_schedule(bad_every).await),
        "every"
    );
    let mut bad_cron = hourly("c");
    bad_cron.cadence = Cadence::Cron("*/0 * * * *".into());
    assert_eq!(
        invalid_field(s.schedules.add_schedule(bad_cron).await),
        "cron"
    );
    let mut bad_name = hourly("x");
    bad_name.name = "has space".into();
    assert_eq!(
        invalid_field(s.schedules.add_schedule(bad_name).await),
        "name"
    );
    assert!(s.schedules.list_schedules().await.unwrap().is_empty());
    let first = s.schedules.add_schedule(hourly("dup")).await.unwrap();
    let mut again = hourly("dup");
    again.params = json!({"other": true});
    let r = s.schedules.add_schedule(again).await;
    assert!(
        matches!(r, Err(PortError::Duplicate(ref m)) if m.contains("dup")),
        "{r:?}"
    );
    let all = s.schedules.list_schedules().await.unwrap();
    assert_eq!(all, [first], "the first one is untouched");
}

/// Every action on an unknown name is `NotFound`.
pub async fn get_pause_resume_remove_unknown_are_not_found(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (_clock, s) = setup(factory);
    assert_not_found(s.schedules.get_schedule("nope").await);
    assert_not_found(s.schedules.set_schedule_paused("nope", true).await);
    assert_not_found(s.schedules.set_schedule_paused("nope", false).await);
    assert_not_found(s.schedules.remove_schedule("nope").await);
    assert_not_found(s.schedules.run_schedule_now("nope").await);
    assert!(s.all_tasks().await.is_empty(), "run-now wrote nothing");
}

/// A due slot enqueues one task of the schedule's type, params and priority, keyed by the
/// slot, with the schedule and slot noted in its log; the schedule advances.
pub async fn due_slot_fires_one_task_noted_in_its_log(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let mut new = hourly("h");
    new.priority = prismq_domain::Priority::new(9).unwrap();
    let sched = s.schedules.add_schedule(new).await.unwrap();
    assert!(
        s.schedules
            .fire_due(&types(), 100)
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    clock.set(at("2026-01-01T01:00:00Z"));
    let fired = s.schedules.fire_due(&types(), 100).await.unwrap();
    assert_eq!(fired.len(), 1);
    let f = &fired[0];
    assert_eq!(
        (f.schedule, f.name.as_str(), f.slot),
        (sched.id, "h", at("2026-01-01T01:00:00Z"))
    );
    assert!(!f.caught_up);
    let task = s.task(f.task).await;
    assert_eq!(task.task_type.as_str(), "a");
    assert_eq!(task.params, json!({"channel": "h"}));
    assert_eq!(task.priority.get(), 9);
    assert_eq!(task.status, TaskStatus::Queued);
    assert_eq!(task.run_after, at("2026-01-01T01:00:00Z"));
    assert_eq!(
        task.idempotency_key.as_deref(),
        Some(format!("schedule:{}:2026-01-01T01:00:00Z", sched.id).as_str())
    );
    let log = s.logs.list(f.task).await.unwrap();
    let events: Vec<TaskEvent> = log.iter().map(|r| r.event).collect();
    assert_eq!(events, [TaskEvent::Enqueued, TaskEvent::Progress]);
    assert!(
        log[1].message.contains("schedule \"h\""),
        "{}",
        log[1].message
    );
    assert_eq!(log[1].details["schedule"], "h");
    assert_eq!(log[1].details["slot"], "2026-01-01T01:00:00Z");
    let after = s.schedules.get_schedule("h").await.unwrap();
    assert_eq!(after.next_slot, at("2026-01-01T02:00:00Z"));
    assert_eq!(after.last_slot, Some(at("2026-01-01T01:00:00Z")));
    assert_eq!(after.last_task, Some(f.task));
    assert!(
        s.schedules
            .fire_due(&types(), 100)
            .await
            .unwrap()
            .is_empty(),
        "fired once"
    );
}

/// Calling fire_due through ten slots (twice in each) yields ten tasks, one per slot.
pub async fn ten_slots_fire_ten_tasks(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    s.schedules.add_schedule(hourly("h")).await.unwrap();
    let mut slots = Vec::new();
    for i in 1..=10 {
        clock.set(plus_secs(at("2026-01-01T00:00:00Z"), i * 3_600 + 5));
        for f in s.schedules.fire_due(&types(), 100).await.unwrap() {
            slots.push(f.slot);
        }
        clock.set(plus_secs(at("2026-01-01T00:00:00Z"), i * 3_600 + 1_800));
        assert!(s
            .schedules
            .fire_due(&types(), 100)
            .await
            .unwrap()
            .is_empty());
    }
    let want: Vec<Timestamp> = (1..=10)
        .map(|i| plus_secs(at("2026-01-01T00:00:00Z"), i * 3_600))
        .collect();
    assert_eq!(slots, want);
    assert_eq!(s.all_tasks().await.len(), 10);
}

/// Down across ten slots: one catch-up task for the latest, then the regular timetable.
pub async fn downtime_fires_once_then_keeps_the_timetable(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (clock, s) = setup(factory);
    s.schedules.add_schedule(hourly("h")).await.unwrap();
    clock.set(at("2026-01-01T10:30:00Z"));
    let fired = s.schedules.fire_due(&types(), 100).await.unwrap();
    assert_eq!(fired.len(), 1, "never a burst");
    assert_eq!(
        fired[0].slot,
        at("2026-01-01T10:00:00Z"),
        "the latest missed slot"
    );
    assert!(fired[0].caught_up);
    assert!(s
        .schedules
        .fire_due(&types(), 100)
        .await
        .unwrap()
        .is_empty());
    clock.set(at("2026-01-01T11:00:00Z"));
    let next = s.schedules.fire_due(&types(), 100).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].slot, at("2026-01-01T11:00:00Z"));
    assert!(!next[0].caught_up);
    assert_eq!(s.all_tasks().await.len(), 2);
}

/// A paused schedule fires nothing; resuming skips the slots passed while paused.
pub async fn paused_schedule_fires_nothing_and_resume_skips_missed_slots(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (clock, s) = setup(factory);
    s.schedules.add_schedule(hourly("h")).await.unwrap();
    let p = s.schedules.set_schedule_paused("h", true).await.unwrap();
    assert!(p.paused);
    assert_eq!(
        s.schedules.set_schedule_paused("h", true).await.unwrap(),
        p,
        "idempotent"
    );
    clock.set(at("2026-01-01T03:30:00Z"));
    assert!(
        s.schedules
            .fire_due(&types(), 100)
            .await
            .unwrap()
            .is_empty(),
        "paused while due"
    );
    let r = s.schedules.set_schedule_paused("h", false).await.unwrap();
    assert!(!r.paused);
    assert_eq!(
        r.next_slot,
        at("2026-01-01T04:00:00Z"),
        "missed slots skipped"
    );
    assert!(s
        .schedules
        .fire_due(&types(), 100)
        .await
        .unwrap()
        .is_empty());
    assert!(s.all_tasks().await.is_empty());
    clock.set(at("2026-01-01T04:00:00Z"));
    assert_eq!(s.schedules.fire_due(&types(), 100).await.unwrap().len(), 1);
}

/// A removed schedule fires nothing; the tasks it enqueued stay.
pub async fn removed_schedule_fires_nothing_and_keeps_its_tasks(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let (clock, s) = setup(factory);
    let sched = s.schedules.add_schedule(hourly("h")).await.unwrap();
    clock.set(at("2026-01-01T01:00:00Z"));
    let fired = s.schedules.fire_due(&types(), 100).await.unwrap();
    clock.set(at("2026-01-01T02:00:00Z"));
    let removed = s.schedules.remove_schedule("h").await.unwrap();
    assert_eq!(removed.id, sched.id);
    assert_not_found(s.schedules.get_schedule("h").await);
    assert!(
        s.schedules
            .fire_due(&types(), 100)
            .await
            .unwrap()
            .is_empty(),
        "removed while due"
    );
    assert_eq!(
        s.task(fired[0].task).await.status,
        TaskStatus::Queued,
        "its task stays"
    );
    assert_eq!(s.all_tasks().await.len(), 1);
}

/// run-now enqueues at once, notes it in the log, and leaves the due slot to fire.
pub async fn run_now_beside_a_due_slot_keeps_the_slot(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    s.schedules.add_schedule(hourly("h")).await.unwrap();
    clock.set(at("2026-01-01T01:00:00Z"));
    let now = s.schedules.run_schedule_now("h").await.unwrap();
    assert!(!now.duplicate);
    let t = s.task(now.id).await;
    assert_eq!(t.run_after, clock.now());
    let log = s.logs.list(now.id).await.unwrap();
    assert_eq!(log.last().map(|r| r.event), Some(TaskEvent::Progress));
    assert!(log.last().unwrap().message.contains("run-now"));
    let sched = s.schedules.get_schedule("h").await.unwrap();
    assert_eq!(
        sched.next_slot,
        at("2026-01-01T01:00:00Z"),
        "timetable unchanged"
    );
    assert_eq!(sched.last_task, Some(now.id));
    let fired = s.schedules.fire_due(&types(), 100).await.unwrap();
    assert_eq!(fired.len(), 1, "the due slot still fires");
    assert_ne!(fired[0].task, now.id);
    assert_eq!(s.all_tasks().await.len(), 2);
    s.schedules.set_schedule_paused("h", true).await.unwrap();
    clock.set(at("2026-01-01T01:00:01Z"));
    let paused = s.schedules.run_schedule_now("h").await.unwrap();
    assert!(!paused.duplicate, "run-now works on a paused schedule");
    assert_eq!(s.all_tasks().await.len(), 3);
}

/// A schedule whose type the caller cannot run is neither fired nor advanced: nothing lost.
pub async fn unknown_task_type_is_not_fired_nor_advanced(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let mut other = hourly("gone");
    other.task_type = task_type_of("removed_type");
    s.schedules.add_schedule(other).await.unwrap();
    s.schedules.add_schedule(hourly("h")).await.unwrap();
    clock.set(at("2026-01-01T01:00:00Z"));
    let fired = s.schedules.fire_due(&types(), 1).await.unwrap();
    assert_eq!(fired.len(), 1, "the other schedule does not take the limit");
    assert_eq!(fired[0].name, "h");
    let gone = s.schedules.get_schedule("gone").await.unwrap();
    assert_eq!(gone.next_slot, at("2026-01-01T01:00:00Z"), "not advanced");
    assert_eq!(gone.last_task, None);
    let later = s
        .schedules
        .fire_due(&[task_type_of("a"), task_type_of("removed_type")], 100)
        .await
        .unwrap();
    assert_eq!(later.len(), 1, "fires once a build has the type again");
    assert_eq!(later[0].name, "gone");
}

/// At most `limit` schedules fire per call, the earliest next slot first; a bad limit is
/// refused.
pub async fn fire_due_respects_the_limit_earliest_first(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let mut slow = hourly("b-slow");
    slow.cadence = Cadence::every("2h").unwrap();
    s.schedules.add_schedule(slow).await.unwrap();
    s.schedules.add_schedule(hourly("c-fast")).await.unwrap();
    clock.set(at("2026-01-01T02:00:00Z"));
    let first = s.schedules.fire_due(&types(), 1).await.unwrap();
    assert_eq!(first[0].name, "c-fast", "its next slot (01:00) is earlier");
    let second = s.schedules.fire_due(&types(), 1).await.unwrap();
    assert_eq!(second[0].name, "b-slow");
    assert!(s.schedules.fire_due(&types(), 1).await.unwrap().is_empty());
    assert_eq!(
        invalid_field(s.schedules.fire_due(&types(), 0).await),
        "limit"
    );
    assert_eq!(
        invalid_field(s.schedules.fire_due(&types(), 1_001).await),
        "limit"
    );
}

/// Eight callers racing over ten slots: each slot yields exactly one task.
pub async fn racing_fire_due_yields_one_task_per_slot(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    s.schedules.add_schedule(hourly("h")).await.unwrap();
    let store: Arc<dyn ScheduleStore> = s.schedules.clone();
    let mut total = 0;
    for i in 1..=10 {
        clock.set(plus_secs(at("2026-01-01T00:00:00Z"), i * 3_600));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.fire_due(&types(), 100).await.unwrap().len() })
            })
            .collect();
        let mut this_slot = 0;
        for h in handles {
            this_slot += h.await.unwrap();
        }
        assert_eq!(this_slot, 1, "slot {i} fired once");
        total += this_slot;
    }
    assert_eq!(total, 10);
    let tasks = s.all_tasks().await;
    assert_eq!(tasks.len(), 10);
    let mut keys: Vec<_> = tasks.iter().map(|t| t.idempotency_key.clone()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 10, "one task per slot key");
}
