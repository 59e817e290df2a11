//! `ScheduleStore` on PostgreSQL: schedules in table `schedules` (schema v4). Firing reads
//! the due schedules with one probe of `ix_schedules_due`; each due one then fires in its own
//! transaction whose first statement advances `next_slot` only if it still holds the value
//! read. A racing transaction waits on that row and, once the winner commits, re-checks the
//! condition (READ COMMITTED), matches nothing and enqueues nothing: one task per slot,
//! whatever the number of processes and machines. The task's key `schedule:<id>:<slot>` is
//! the second guard.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use prismq_domain::ports::{
    check_fire_limit, duplicate_name, unknown_schedule, Enqueued, LogLevel, ScheduleStore,
    TaskEvent,
};
use prismq_domain::schedule::{Cadence, Fired, NewSchedule, Schedule, ScheduleId};
use prismq_domain::task::{Priority, TaskId, TaskType};
use prismq_domain::{NewTask, PortError, Timestamp};

use crate::codec::{get, ts, ts_opt};
use crate::error::{corrupt, map_err};
use crate::logs::insert_log;
use crate::{in_tx, PostgresStore};

const COLUMNS: &str = "id, name, type, params, priority, every_secs, cron, time_zone, \
    jitter_secs, paused, next_slot, last_slot, last_task, created_at";

const DUE: &str = "SELECT id, name, type, params, priority, every_secs, cron, time_zone, \
    jitter_secs, paused, next_slot, last_slot, last_task, created_at \
    FROM schedules WHERE NOT paused AND next_slot <= $1 AND type = ANY($2) \
    ORDER BY next_slot, id LIMIT $3";

const ADVANCE: &str = "UPDATE schedules SET next_slot = $1, last_slot = $2 \
    WHERE id = $3 AND next_slot = $4 AND NOT paused";

const INSERT_TASK: &str = "INSERT INTO task_queue
    (type, params, priority, status, attempts, max_attempts, run_after, idempotency_key, compatibility, created_at, updated_at)
    VALUES ($1, $2, $3, 'queued', 0, $4, $5, $6, $7, $8, $8)
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id";

fn from_row(row: &Row) -> Result<Schedule, PortError> {
    let every: Option<i64> = get(row, 5)?;
    let cron: Option<String> = get(row, 6)?;
    let cadence = match (every, cron) {
        (Some(s), _) => Cadence::EverySecs(u64::try_from(s).map_err(|e| corrupt("every_secs", e))?),
        (None, Some(e)) => Cadence::Cron(e),
        (None, None) => return Err(corrupt("schedule", "it has no cadence")),
    };
    let task_type: String = get(row, 2)?;
    let priority: i64 = get(row, 4)?;
    let jitter: i64 = get(row, 8)?;
    Ok(Schedule {
        id: ScheduleId(get(row, 0)?),
        name: get(row, 1)?,
        task_type: TaskType::new(task_type).map_err(|e| corrupt("type", e))?,
        params: get(row, 3)?,
        priority: Priority::new(priority).map_err(|e| corrupt("priority", e))?,
        cadence,
        time_zone: get(row, 7)?,
        jitter: std::time::Duration::from_secs(u64::try_from(jitter).unwrap_or(0)),
        paused: get(row, 9)?,
        next_slot: ts(get(row, 10)?)?,
        last_slot: ts_opt(get(row, 11)?)?,
        last_task: get::<Option<i64>>(row, 12)?.map(TaskId),
        created_at: ts(get(row, 13)?)?,
    })
}

async fn by_name(c: &impl GenericClient, name: &str) -> Result<Schedule, PortError> {
    let row = c
        .query_opt(
            &format!("SELECT {COLUMNS} FROM schedules WHERE name = $1"),
            &[&name],
        )
        .await
        .map_err(map_err)?
        .ok_or_else(|| unknown_schedule(name))?;
    from_row(&row)
}

impl PostgresStore {
    /// Enqueues `task` for `schedule` on `c` (a transaction), notes the schedule and slot in
    /// the new task's log and records it as the schedule's last task; a repeated key returns
    /// the existing task.
    async fn enqueue_for(
        &self,
        c: &impl GenericClient,
        schedule: &Schedule,
        task: &NewTask,
        slot: Option<Timestamp>,
        now: i64,
    ) -> Result<Enqueued, PortError> {
        task.validate(self.inner.options.max_params_bytes)?;
        let compat =
            serde_json::to_value(&task.compatibility).map_err(|e| corrupt("compatibility", e))?;
        let max_attempts = i64::from(
            task.max_attempts
                .unwrap_or(self.retry_policy().max_attempts),
        );
        let run_after = task.run_after.map_or(now, |t| t.as_millisecond());
        let row = c
            .query_opt(
                INSERT_TASK,
                &[
                    &task.task_type.as_str(),
                    &task.params,
                    &i64::from(task.priority.get()),
                    &max_attempts,
                    &run_after,
                    &task.idempotency_key,
                    &compat,
                    &now,
                ],
            )
            .await
            .map_err(map_err)?;
        let e = match row {
            Some(r) => {
                let id = TaskId(get(&r, 0)?);
                insert_log(
                    c,
                    id,
                    now,
                    LogLevel::Info,
                    TaskEvent::Progress,
                    &schedule.log_message(slot),
                    &schedule.log_details(slot),
                )
                .await?;
                Enqueued {
                    id,
                    duplicate: false,
                }
            }
            None => {
                let r = c
                    .query_one(
                        "SELECT id FROM task_queue WHERE idempotency_key = $1",
                        &[&task.idempotency_key],
                    )
                    .await
                    .map_err(map_err)?;
                Enqueued {
                    id: TaskId(get(&r, 0)?),
                    duplicate: true,
                }
            }
        };
        c.execute(
            "UPDATE schedules SET last_task = $1 WHERE id = $2",
            &[&e.id.0, &schedule.id.0],
        )
        .await
        .map_err(map_err)?;
        Ok(e)
    }
}

#[async_trait]
impl ScheduleStore for PostgresStore {
    async fn add_schedule(&self, schedule: NewSchedule) -> Result<Schedule, PortError> {
        let now = self.now();
        let next = schedule.first_slot(now)?;
        let (every, cron) = match &schedule.cadence {
            Cadence::EverySecs(s) => (Some(i64::try_from(*s).unwrap_or(i64::MAX)), None),
            Cadence::Cron(e) => (None, Some(e.clone())),
        };
        let jitter = i64::try_from(schedule.jitter.as_secs()).unwrap_or(0);
        let (next_ms, now_ms) = (next.as_millisecond(), now.as_millisecond());
        let priority = i64::from(schedule.priority.get());
        in_tx!(self, |tx| {
            async {
                let inserted = tx
                    .query_opt(
                        "INSERT INTO schedules (name, type, params, priority, every_secs, cron,
                         time_zone, jitter_secs, paused, next_slot, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, FALSE, $9, $10)
                         ON CONFLICT (name) DO NOTHING RETURNING id",
                        &[
                            &schedule.name,
                            &schedule.task_type.as_str(),
                            &schedule.params,
                            &priority,
                            &every,
                            &cron,
                            &schedule.time_zone.trim(),
                            &jitter,
                            &next_ms,
                            &now_ms,
                        ],
                    )
                    .await
                    .map_err(map_err)?;
                if inserted.is_none() {
                    return Err(duplicate_name(&schedule.name));
                }
                by_name(&tx, &schedule.name).await
            }
            .await
        })
    }

    async fn list_schedules(&self) -> Result<Vec<Schedule>, PortError> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!("SELECT {COLUMNS} FROM schedules ORDER BY name COLLATE \"C\""),
                &[],
            )
            .await
            .map_err(map_err)?;
        rows.iter().map(from_row).collect()
    }

    async fn get_schedule(&self, name: &str) -> Result<Schedule, PortError> {
        let c = self.client().await?;
        by_name(&c, name).await
    }

    async fn set_schedule_paused(&self, name: &str, paused: bool) -> Result<Schedule, PortError> {
        let now = self.now();
        in_tx!(self, |tx| {
            async {
                let row = tx
                    .query_opt(
                        &format!("SELECT {COLUMNS} FROM schedules WHERE name = $1 FOR UPDATE"),
                        &[&name],
                    )
                    .await
                    .map_err(map_err)?
                    .ok_or_else(|| unknown_schedule(name))?;
                let s = from_row(&row)?;
                if s.paused == paused {
                    return Ok(s);
                }
                let next = if paused {
                    s.next_slot
                } else {
                    s.next_after(now)?
                };
                tx.execute(
                    "UPDATE schedules SET paused = $1, next_slot = $2 WHERE id = $3",
                    &[&paused, &next.as_millisecond(), &s.id.0],
                )
                .await
                .map_err(map_err)?;
                by_name(&tx, name).await
            }
            .await
        })
    }

    async fn remove_schedule(&self, name: &str) -> Result<Schedule, PortError> {
        in_tx!(self, |tx| {
            async {
                let row = tx
                    .query_opt(
                        &format!("DELETE FROM schedules WHERE name = $1 RETURNING {COLUMNS}"),
                        &[&name],
                    )
                    .await
                    .map_err(map_err)?
                    .ok_or_else(|| unknown_schedule(name))?;
                from_row(&row)
            }
            .await
        })
    }

    async fn run_schedule_now(&self, name: &str) -> Result<Enqueued, PortError> {
        let now = self.now();
        in_tx!(self, |tx| {
            async {
                let s = by_name(&tx, name).await?;
                let task = s.task_for_run_now(now);
                self.enqueue_for(&tx, &s, &task, None, now.as_millisecond())
                    .await
            }
            .await
        })
    }

    async fn fire_due(&self, task_types: &[TaskType], limit: u32) -> Result<Vec<Fired>, PortError> {
        check_fire_limit(limit)?;
        let now = self.now();
        let types: Vec<&str> = task_types.iter().map(TaskType::as_str).collect();
        let due: Vec<Schedule> = {
            let c = self.client().await?;
            c.query(DUE, &[&now.as_millisecond(), &types, &i64::from(limit)])
                .await
                .map_err(map_err)?
                .iter()
                .map(from_row)
                .collect::<Result<_, _>>()?
        };
        let mut fired = Vec::new();
        for s in due {
            let Some(f) = s.firing(now)? else { continue };
            let task = s.task_for_slot(f.slot);
            let done = in_tx!(self, |tx| {
                async {
                    let advanced = tx
                        .execute(
                            ADVANCE,
                            &[
                                &f.next_slot.as_millisecond(),
                                &f.slot.as_millisecond(),
                                &s.id.0,
                                &s.next_slot.as_millisecond(),
                            ],
                        )
                        .await
                        .map_err(map_err)?;
                    if advanced == 0 {
                        // Another process fired this slot (or the schedule was paused,
                        // removed or resumed) since the read: nothing to do.
                        return Ok(None);
                    }
                    self.enqueue_for(&tx, &s, &task, Some(f.slot), now.as_millisecond())
                        .await
                        .map(Some)
                }
                .await
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
