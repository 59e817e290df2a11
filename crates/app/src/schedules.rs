//! Schedules as the application sees them: adding one checks its task exactly as enqueue
//! would (the same handler checks, the same messages) before anything is written, and each
//! stored schedule is reported with whether this build can fire it.

use serde::Serialize;

use prismq_domain::ports::Enqueued;
use prismq_domain::schedule::{NewSchedule, Schedule};
use prismq_domain::{NewTask, PortError};

use crate::wiring::App;

/// A stored schedule and whether this build can fire it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleView {
    /// The schedule.
    #[serde(flatten)]
    pub schedule: Schedule,
    /// Why this build cannot fire it (its task type has no handler here), if so.
    pub error: Option<String>,
}

impl App {
    /// Validates the schedule's task as [`App::enqueue`] would, then the schedule itself,
    /// then adds it.
    ///
    /// # Errors
    /// `Invalid` with the same message enqueue gives for the task (nothing written), or the
    /// store's error (`Duplicate` name, `Invalid` cadence or zone).
    pub async fn add_schedule(&self, schedule: NewSchedule) -> Result<Schedule, PortError> {
        let task = NewTask::new(schedule.task_type.clone(), schedule.params.clone())
            .priority(schedule.priority);
        self.registry.validate(&task)?;
        schedule.validate()?;
        self.schedules.add_schedule(schedule).await
    }

    /// Every schedule, by name, each with the reason this build cannot fire it, if any.
    ///
    /// # Errors
    /// The store's error.
    pub async fn schedule_views(&self) -> Result<Vec<ScheduleView>, PortError> {
        Ok(self
            .schedules
            .list_schedules()
            .await?
            .into_iter()
            .map(|s| self.view(s))
            .collect())
    }

    /// One schedule with its error, if any.
    ///
    /// # Errors
    /// `NotFound` for an unknown name.
    pub async fn schedule_view(&self, name: &str) -> Result<ScheduleView, PortError> {
        Ok(self.view(self.schedules.get_schedule(name).await?))
    }

    /// Enqueues the schedule's task now, checked as enqueue checks it.
    ///
    /// # Errors
    /// `Invalid` when this build cannot run the task; the store's errors.
    pub async fn run_schedule_now(&self, name: &str) -> Result<Enqueued, PortError> {
        let s = self.schedules.get_schedule(name).await?;
        self.registry
            .validate(&NewTask::new(s.task_type.clone(), s.params.clone()))?;
        self.schedules.run_schedule_now(name).await
    }

    fn view(&self, schedule: Schedule) -> ScheduleView {
        let error = if self.registry.handler(&schedule.task_type).is_none() {
            Some(format!(
                "task type {:?} is not in this build: the schedule does not fire (nothing is lost; a build with that type fires it, once, for the latest slot); remove it with `prismq schedule remove {}`",
                schedule.task_type.as_str(),
                schedule.name
            ))
        } else {
            schedule
                .zone()
                .err()
                .map(|e| format!("{e}: the schedule does not fire"))
        };
        ScheduleView { schedule, error }
    }
}
