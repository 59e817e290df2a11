//! `ScheduleStore` on SQLite: schedules in table `schedules` (schema v5). Firing reads the
//! due schedules with one probe of `ix_schedules_due`, outside any write lock; each due one
//! then fires in its own `BEGIN IMMEDIATE` transaction that advances `next_slot` only if it
//! still holds the value read, enqueues the slot's task (keyed `schedule:<id>:<slot>`) and
//! notes the schedule in its log, so a slot yields one task whatever the number of processes.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, Row, Transaction};
use serde_json::Value;

use prismq_domain::ports::{
    check_fire_limit, duplicate_name, unknown_schedule, Enqueued, LogLevel, ScheduleStore,
    TaskEvent,
};
use prismq_domain::schedule::{Cadence, Fired, NewSchedule, Schedule, ScheduleId};
use prismq_domain::task::{Priority, TaskId, TaskType};
use prismq_domain::{NewTask, PortError, Timestamp};

use crate::codec::{json, ts, ts_opt};
use crate::error::map_err;
use crate::logs::insert_log;
use crate::queue::NewCounts;
use crate::SqliteStore;

const COLUMNS: &str = "id, name, type, params, priority, every_secs, cron, time_zone, \
    jitter_secs, paused, next_slot, last_slot, last_task, created_at";

/// The due schedules of the given types (a JSON array), earliest next slot first: one range
/// probe of the partial index (public for the `EXPLAIN QUERY PLAN` test).
pub const DUE_SCHEDULES_SQL: &str =
    "SELECT id, name, type, params, priority, every_secs, cron, time_zone, \
    jitter_secs, paused, next_slot, last_slot, last_task, created_at \
    FROM schedules INDEXED BY ix_schedules_due \
    WHERE paused = 0 AND next_slot <= ?1 AND type IN (SELECT value FROM json_each(?2)) \
    ORDER BY next_slot, id LIMIT ?3";

/// Advances a schedule if nobody did since it was read: the exactly-once guard.
const ADVANCE: &str = "UPDATE schedules SET next_slot = ?1, last_slot = ?2 \
    WHERE id = ?3 AND next_slot = ?4 AND paused = 0";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Schedule> {
    let bad = |i: usize, e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    };
    let every: Option<i64> = row.get(5)?;
    let cron: Option<String> = row.get(6)?;
    let cadence = match (every, cron) {
        (Some(s), _) => Cadence::EverySecs(u64::try_from(s).unwrap_or(0)),
        (None, Some(e)) => Cadence::Cron(e),
        (None, None) => return Err(bad(5, "a schedule without a cadence".into())),
    };
    let priority: i64 = row.get(4)?;
    Ok(Schedule {
        id: ScheduleId(row.get(0)?),
        name: row.get(1)?,
        task_type: TaskType::new(row.get::<_, String>(2)?).map_err(|e| bad(2, e.to_string()))?,
        params: json(row, 3)?,
        priority: Priority::new(priority).map_err(|e| bad(4, e.to_string()))?,
        cadence,
        time_zone: row.get(7)?,
        jitter: std::time::Duration::from_secs(u64::try_from(row.get::<_, i64>(8)?).unwrap_or(0)),
        paused: row.get::<_, i64>(9)? != 0,
        next_slot: ts(10, row.get(10)?)?,
        last_slot: ts_opt(row, 11)?,
        last_task: row.get::<_, Option<i64>>(12)?.map(TaskId),
        created_at: ts(13, row.get(13)?)?,
    })
}

fn by_name(tx: &rusqlite::Connection, name: &str) -> Result<Schedule, PortError> {
    tx.prepare_cached(&format!("SELECT {COLUMNS} FROM schedules WHERE name = ?1"))
        .and_then(|mut s| s.query_row([name], from_row).optional())
        .map_err(map_err)?
        .ok_or_else(|| unknown_schedule(name))
}

impl SqliteStore {
    /// Enqueues `task` for `schedule` inside `tx` and notes the schedule and slot in the
    /// new task's log; a repeated key returns the existing task.
    fn enqueue_for(
        &self,
        tx: &Transaction<'_>,
        schedule: &Schedule,
        task: &NewTask,
        slot: Option<Timestamp>,
        now: i64,
    ) -> Result<Enqueued, PortError> {
        let p = self.prepare_new(task)?;
        let mut counts = NewCounts::default();
        let e = Self::insert_prepared(tx, &p, task, now, &mut counts)?;
        counts.write(tx)?;
        if !e.duplicate {
            insert_log(
                tx,
                e.id,
                now,
                LogLevel::Info,
                TaskEvent::Progress,
                &schedule.log_message(slot),
                &schedule.log_details(slot),
            )?;
        }
        tx.prepare_cached("UPDATE schedules SET last_task = ?1 WHERE id = ?2")
            .and_then(|mut s| s.execute(params![e.id.0, schedule.id.0]))
            .map_err(map_err)?;
        Ok(e)
    }

    fn add_blocking(&self, new: &NewSchedule) -> Result<Schedule, PortError> {
        let now = self.now();
        let next = new.first_slot(now)?;
        let (every, cron) = match &new.cadence {
            Cadence::EverySecs(s) => (Some(i64::try_from(*s).unwrap_or(i64::MAX)), None),
            Cadence::Cron(e) => (None, Some(e.clone())),
        };
        self.write(|tx| {
            let taken: Option<i64> = tx
                .prepare_cached("SELECT id FROM schedules WHERE name = ?1")
                .and_then(|mut s| s.query_row([&new.name], |r| r.get(0)).optional())
                .map_err(map_err)?;
            if taken.is_some() {
                return Err(duplicate_name(&new.name));
            }
            tx.prepare_cached(
                "INSERT INTO schedules (name, type, params, priority, every_secs, cron, time_zone,
                 jitter_secs, paused, next_slot, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?9, ?10)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    new.name,
                    new.task_type.as_str(),
                    new.params.to_string(),
                    new.priority.get(),
                    every,
                    cron,
                    new.time_zone.trim(),
                    i64::try_from(new.jitter.as_secs()).unwrap_or(0),
                    next.as_millisecond(),
                    now.as_millisecond()
                ])
            })
            .map_err(map_err)?;
            by_name(tx, &new.name)
        })
    }

    fn set_paused_blocking(&self, name: &str, paused: bool) -> Result<Schedule, PortError> {
        let now = self.now();
        self.write(|tx| {
            let s = by_name(tx, name)?;
            if s.paused == paused {
                return Ok(s);
            }
            let next = if paused {
                s.next_slot
            } else {
                s.next_after(now)?
            };
            tx.prepare_cached("UPDATE schedules SET paused = ?1, next_slot = ?2 WHERE id = ?3")
                .and_then(|mut st| st.execute(params![paused, next.as_millisecond(), s.id.0]))
                .map_err(map_err)?;
            by_name(tx, name)
        })
    }

    fn remove_blocking(&self, name: &str) -> Result<Schedule, PortError> {
        self.write(|tx| {
            let s = by_name(tx, name)?;
            tx.prepare_cached("DELETE FROM schedules WHERE id = ?1")
                .and_then(|mut st| st.execute([s.id.0]))
                .map_err(map_err)?;
            Ok(s)
        })
    }

    fn run_now_blocking(&self, name: &str) -> Result<Enqueued, PortError> {
        let now = self.now();
        self.write(|tx| {
            let s = by_name(tx, name)?;
            self.enqueue_for(tx, &s, &s.task_for_run_now(now), None, now.as_millisecond())
        })
    }

    /// Blocking [`ScheduleStore::fire_due`].
    ///
    /// # Errors
    /// As the port.
    pub fn fire_due_blocking(
        &self,
        task_types: &[TaskType],
        limit: u32,
    ) -> Result<Vec<Fired>, PortError> {
        check_fire_limit(limit)?;
        let now = self.now();
        let types = Value::from(task_types.iter().map(|t| t.as_str()).collect::<Vec<_>>());
        let due: Vec<Schedule> = self.read(|conn| {
            conn.prepare_cached(DUE_SCHEDULES_SQL)
                .and_then(|mut s| {
                    let rows = s.query_map(
                        params![now.as_millisecond(), types.to_string(), limit],
                        from_row,
                    )?;
                    rows.collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(map_err)
        })?;
        let mut fired = Vec::new();
        for s in due {
            let Some(f) = s.firing(now)? else { continue };
            let task = s.task_for_slot(f.slot);
            let done = self.write(|tx| {
                let advanced = tx
                    .prepare_cached(ADVANCE)
                    .and_then(|mut st| {
                        st.execute(params![
                            f.next_slot.as_millisecond(),
                            f.slot.as_millisecond(),
                            s.id.0,
                            s.next_slot.as_millisecond()
                        ])
                    })
                    .map_err(map_err)?;
                if advanced == 0 {
                    // Another process fired this slot (or the schedule was paused, removed
                    // or resumed) since the read: nothing to do.
                    return Ok(None);
                }
                self.enqueue_for(tx, &s, &task, Some(f.slot), now.as_millisecond())
                    .map(Some)
            })?;
            if let Some(e) = done {
                fired.push(Fired {
                    schedule: s.id,
                    name: s.name.clone(),
                    slot: f.slot,
                    task: e.id,
                    caught_up: f.caught_up,
                });
            }
        }
        Ok(fired)
    }
}

#[async_trait]
impl ScheduleStore for SqliteStore {
    async fn add_schedule(&self, schedule: NewSchedule) -> Result<Schedule, PortError> {
        self.blocking(move |s| s.add_blocking(&schedule)).await
    }

    async fn list_schedules(&self) -> Result<Vec<Schedule>, PortError> {
        self.blocking(|s| {
            s.read(|conn| {
                conn.prepare_cached(&format!("SELECT {COLUMNS} FROM schedules ORDER BY name"))
                    .and_then(|mut st| {
                        let rows = st.query_map([], from_row)?;
                        rows.collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .map_err(map_err)
            })
        })
        .await
    }

    async fn get_schedule(&self, name: &str) -> Result<Schedule, PortError> {
        let name = name.to_owned();
        self.blocking(move |s| s.read(|conn| by_name(conn, &name)))
            .await
    }

    async fn set_schedule_paused(&self, name: &str, paused: bool) -> Result<Schedule, PortError> {
        let name = name.to_owned();
        self.blocking(move |s| s.set_paused_blocking(&name, paused))
            .await
    }

    async fn remove_schedule(&self, name: &str) -> Result<Schedule, PortError> {
        let name = name.to_owned();
        self.blocking(move |s| s.remove_blocking(&name)).await
    }

    async fn run_schedule_now(&self, name: &str) -> Result<Enqueued, PortError> {
        let name = name.to_owned();
        self.blocking(move |s| s.run_now_blocking(&name)).await
    }

    async fn fire_due(&self, task_types: &[TaskType], limit: u32) -> Result<Vec<Fired>, PortError> {
        let types = task_types.to_vec();
        self.blocking(move |s| s.fire_due_blocking(&types, limit))
            .await
    }
}
