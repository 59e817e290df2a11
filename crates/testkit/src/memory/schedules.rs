//! `ScheduleStore` for `MemoryStore`: schedules by name, fired under the store's one lock, so
//! a slot's task and the schedule's advance happen together.

use async_trait::async_trait;
use prismq_domain::ports::{
    check_fire_limit, duplicate_name, unknown_schedule, Enqueued, LogLevel, LogRecord,
    ScheduleStore, TaskEvent,
};
use prismq_domain::schedule::{Fired, NewSchedule, Schedule, ScheduleId};
use prismq_domain::{NewTask, PortError, TaskId, TaskType, Timestamp};

use super::{MemoryStore, State};

impl MemoryStore {
    /// Enqueues `task` for `schedule` (a duplicate key returns the existing task) and notes
    /// the schedule and slot in the task's log, under the lock.
    fn enqueue_for(
        &self,
        st: &mut State,
        schedule: &Schedule,
        task: NewTask,
        slot: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<TaskId, PortError> {
        self.validate_new(&task)?;
        if let Some(id) = Self::resolve_key(st, &task)? {
            return Ok(id);
        }
        let id = self.insert(st, task, now).id;
        st.logs.entry(id).or_default().push(LogRecord {
            task_id: id,
            at: now,
            level: LogLevel::Info,
            event: TaskEvent::Progress,
            message: schedule.log_message(slot),
            details: schedule.log_details(slot),
        });
        Ok(id)
    }
}

#[async_trait]
impl ScheduleStore for MemoryStore {
    async fn add_schedule(&self, schedule: NewSchedule) -> Result<Schedule, PortError> {
        let now = self.now();
        let next_slot = schedule.first_slot(now)?;
        let mut st = self.state();
        if st.schedules.contains_key(&schedule.name) {
            return Err(duplicate_name(&schedule.name));
        }
        st.last_schedule_id += 1;
        let s = Schedule {
            id: ScheduleId(st.last_schedule_id),
            name: schedule.name,
            task_type: schedule.task_type,
            params: schedule.params,
            priority: schedule.priority,
            cadence: schedule.cadence,
            time_zone: schedule.time_zone,
            jitter: schedule.jitter,
            paused: false,
            next_slot,
            last_slot: None,
            last_task: None,
            created_at: now,
        };
        st.schedules.insert(s.name.clone(), s.clone());
        Ok(s)
    }

    async fn list_schedules(&self) -> Result<Vec<Schedule>, PortError> {
        Ok(self.state().schedules.values().cloned().collect())
    }

    async fn get_schedule(&self, name: &str) -> Result<Schedule, PortError> {
        self.state()
            .schedules
            .get(name)
            .cloned()
            .ok_or_else(|| unknown_schedule(name))
    }

    async fn set_schedule_paused(&self, name: &str, paused: bool) -> Result<Schedule, PortError> {
        let now = self.now();
        let mut st = self.state();
        let s = st
            .schedules
            .get_mut(name)
            .ok_or_else(|| unknown_schedule(name))?;
        if s.paused != paused {
            if !paused {
                s.next_slot = s.next_after(now)?;
            }
            s.paused = paused;
        }
        Ok(s.clone())
    }

    async fn remove_schedule(&self, name: &str) -> Result<Schedule, PortError> {
        self.state()
            .schedules
            .remove(name)
            .ok_or_else(|| unknown_schedule(name))
    }

    async fn run_schedule_now(&self, name: &str) -> Result<Enqueued, PortError> {
        let now = self.now();
        let mut st = self.state();
        let s = st
            .schedules
            .get(name)
            .cloned()
            .ok_or_else(|| unknown_schedule(name))?;
        let before = st.last_id;
        let id = self.enqueue_for(&mut st, &s, s.task_for_run_now(now), None, now)?;
        if let Some(stored) = st.schedules.get_mut(name) {
            stored.last_task = Some(id);
        }
        Ok(Enqueued {
            id,
            duplicate: st.last_id == before,
        })
    }

    async fn fire_due(&self, task_types: &[TaskType], limit: u32) -> Result<Vec<Fired>, PortError> {
        check_fire_limit(limit)?;
        let now = self.now();
        let mut st = self.state();
        let mut due: Vec<Schedule> = st
            .schedules
            .values()
            .filter(|s| !s.paused && s.next_slot <= now && task_types.contains(&s.task_type))
            .cloned()
            .collect();
        due.sort_by_key(|s| (s.next_slot, s.id));
        due.truncate(limit as usize);
        let mut fired = Vec::new();
        for s in due {
            let Some(f) = s.firing(now)? else { continue };
            let task = self.enqueue_for(&mut st, &s, s.task_for_slot(f.slot), Some(f.slot), now)?;
            if let Some(stored) = st.schedules.get_mut(&s.name) {
                stored.next_slot = f.next_slot;
                stored.last_slot = Some(f.slot);
                stored.last_task = Some(task);
            }
            fired.push(Fired {
                schedule: s.id,
                name: s.name,
                slot: f.slot,
                task,
                caught_up: f.caught_up,
            });
        }
        Ok(fired)
    }
}
