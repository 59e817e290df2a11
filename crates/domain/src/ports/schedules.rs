//! The schedule store port: schedules kept beside the queue, and the atomic step that turns
//! each due slot into exactly one task however many processes ask at once.

use async_trait::async_trait;

use crate::error::PortError;
use crate::ports::Enqueued;
use crate::schedule::{Fired, NewSchedule, Schedule};
use crate::task::TaskType;

/// The most due schedules one [`ScheduleStore::fire_due`] call fires.
pub const MAX_FIRE_BATCH: u32 = 1_000;

/// Schedules in the same store as the queue, so a slot's task and the schedule's advance
/// commit together.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Adds a schedule, not paused, its next slot the first one after now (the store's
    /// clock), no last slot or task.
    ///
    /// MUST validate it ([`NewSchedule::validate`]; `Invalid`, nothing written) and MUST fail
    /// with `Duplicate` naming the name when a schedule of that name exists, writing nothing.
    async fn add_schedule(&self, schedule: NewSchedule) -> Result<Schedule, PortError>;

    /// Every schedule, ordered by name.
    async fn list_schedules(&self) -> Result<Vec<Schedule>, PortError>;

    /// The schedule called `name`. MUST fail with `NotFound` when there is none.
    async fn get_schedule(&self, name: &str) -> Result<Schedule, PortError>;

    /// Pauses (`paused`) or resumes a schedule and returns it. A paused schedule MUST fire
    /// nothing. Resuming MUST set its next slot to the first one after now, so the slots
    /// passed while paused are skipped, not caught up; resuming a running schedule or pausing
    /// a paused one changes nothing. MUST fail with `NotFound` for an unknown name.
    async fn set_schedule_paused(&self, name: &str, paused: bool) -> Result<Schedule, PortError>;

    /// Removes a schedule and returns it as it was; the tasks it enqueued stay. MUST fail
    /// with `NotFound` for an unknown name.
    async fn remove_schedule(&self, name: &str) -> Result<Schedule, PortError>;

    /// Enqueues the schedule's task now ([`Schedule::task_for_run_now`]), paused or not,
    /// noting the schedule in the task's log (a `progress` entry with
    /// [`Schedule::log_message`] and [`Schedule::log_details`], slot null), and records it
    /// as the last task. The timetable MUST NOT change: a slot due beside it still fires.
    /// MUST fail with `NotFound` for an unknown name, writing nothing.
    async fn run_schedule_now(&self, name: &str) -> Result<Enqueued, PortError>;

    /// Fires the due schedules: those not paused, of a type in `task_types`, whose next slot
    /// is at or before now (the store's clock), at most `limit` (1–[`MAX_FIRE_BATCH`]),
    /// earliest next slot first.
    ///
    /// For each one, in one atomic step, an implementation MUST: compute
    /// [`Schedule::firing`] at now; enqueue [`Schedule::task_for_slot`] for its slot (logged
    /// `enqueued`, plus a `progress` entry with [`Schedule::log_message`] and
    /// [`Schedule::log_details`]); and set the next slot, last slot and last task — only if
    /// the next slot it read is still the stored one, so that however many processes call
    /// this at once each slot yields exactly one task, and the others fire nothing for it.
    /// After downtime a schedule fires once, for the latest missed slot. Schedules of other
    /// types are left untouched (nothing fired, nothing advanced). Returns what it fired.
    /// MUST refuse a limit outside 1–[`MAX_FIRE_BATCH`] with `Invalid`.
    async fn fire_due(&self, task_types: &[TaskType], limit: u32) -> Result<Vec<Fired>, PortError>;
}

/// Checks a [`ScheduleStore::fire_due`] limit.
///
/// # Errors
/// `Invalid` on `limit` saying what is accepted.
pub fn check_fire_limit(limit: u32) -> Result<(), crate::ValidationError> {
    if (1..=MAX_FIRE_BATCH).contains(&limit) {
        Ok(())
    } else {
        Err(crate::ValidationError::new(
            "limit",
            format!("{limit} is out of range"),
            format!("an integer from 1 to {MAX_FIRE_BATCH}"),
        ))
    }
}

/// The `Duplicate` error of a schedule name that is taken.
pub fn duplicate_name(name: &str) -> PortError {
    PortError::Duplicate(format!(
        "a schedule named {name:?} already exists; choose another name or remove it first"
    ))
}

/// The `NotFound` error of an unknown schedule name.
pub fn unknown_schedule(name: &str) -> PortError {
    PortError::NotFound(format!(
        "schedule {:?} (see `prismq schedule list`)",
        crate::task::truncate_for_message(name)
    ))
}
