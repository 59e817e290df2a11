//! The worker registry: registration, heartbeats, health and pruning.

use async_trait::async_trait;
use serde_json::Value;
use std::time::Duration;

use prismq_domain::ports::{
    Heartbeat, HeldType, WorkerHealth, WorkerInfo, WorkerRecord, WorkerRegistry,
};
use prismq_domain::task::{TaskId, TaskType, WorkerId};
use prismq_domain::PortError;

use crate::codec::{get, ms, ts};
use crate::error::{corrupt, map_err};
use crate::PostgresStore;

fn count(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[async_trait]
impl WorkerRegistry for PostgresStore {
    async fn register(&self, info: &WorkerInfo) -> Result<(), PortError> {
        let now = self.now_ms();
        let caps =
            serde_json::to_value(&info.capabilities).map_err(|e| corrupt("capabilities", e))?;
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO workers (id, hostname, pid, capabilities, strategy, started_at, heartbeat_at, current_task_id, tasks_done, tasks_failed, status)
                 VALUES ($1, $2, $3, $4, $5, $6, $6, NULL, 0, 0, 'active')
                 ON CONFLICT (id) DO UPDATE SET hostname = excluded.hostname, pid = excluded.pid, capabilities = excluded.capabilities,
                   strategy = excluded.strategy, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,
                   current_task_id = NULL, tasks_done = 0, tasks_failed = 0, held = '[]'::jsonb, status = 'active'",
                &[&info.id.as_str(), &info.hostname, &i64::from(info.pid), &caps, &info.strategy.as_str(), &now],
            )
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn heartbeat(&self, id: &WorkerId, beat: Heartbeat) -> Result<(), PortError> {
        let now = self.now_ms();
        let held = serde_json::to_value(&beat.held).map_err(|e| corrupt("held", e))?;
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE workers SET heartbeat_at = $2, current_task_id = $3, tasks_done = $4, tasks_failed = $5, held = $6 WHERE id = $1",
                &[
                    &id.as_str(),
                    &now,
                    &beat.current_task.map(|t| t.0),
                    &count(beat.tasks_done),
                    &count(beat.tasks_failed),
                    &held,
                ],
            )
            .await
            .map_err(map_err)?;
        if n == 0 {
            return Err(PortError::NotFound(format!("worker {id}")));
        }
        Ok(())
    }

    async fn deregister(&self, id: &WorkerId) -> Result<(), PortError> {
        let now = self.now_ms();
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE workers SET status = 'stopped', current_task_id = NULL, held = '[]'::jsonb, heartbeat_at = $2 WHERE id = $1",
                &[&id.as_str(), &now],
            )
            .await
            .map_err(map_err)?;
        if n == 0 {
            return Err(PortError::NotFound(format!("worker {id}")));
        }
        Ok(())
    }

    async fn list(&self, stale_after: Duration) -> Result<Vec<WorkerRecord>, PortError> {
        let now = self.now_ms();
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, hostname, pid, capabilities, strategy, started_at, heartbeat_at, current_task_id, tasks_done, tasks_failed, status, held
                 FROM workers ORDER BY id COLLATE \"C\"",
                &[],
            )
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let caps: Value = get(r, 3)?;
                let strategy: String = get(r, 4)?;
                let heartbeat_at: i64 = get(r, 6)?;
                let status: String = get(r, 10)?;
                let held: Value = get(r, 11)?;
                let held: Vec<HeldType> =
                    serde_json::from_value(held).map_err(|e| corrupt("held", e))?;
                let health = if status == "stopped" {
                    WorkerHealth::Stopped
                } else if now.saturating_sub(heartbeat_at) > ms(stale_after) {
                    WorkerHealth::Stale
                } else {
                    WorkerHealth::Active
                };
                let capabilities: Vec<TaskType> =
                    serde_json::from_value(caps).map_err(|e| corrupt("capabilities", e))?;
                Ok(WorkerRecord {
                    info: WorkerInfo {
                        id: WorkerId::new(get::<String>(r, 0)?)
                            .map_err(|e| corrupt("worker id", e))?,
                        hostname: get(r, 1)?,
                        pid: u32::try_from(get::<i64>(r, 2)?).map_err(|e| corrupt("pid", e))?,
                        capabilities,
                        strategy: strategy.parse().map_err(|e| corrupt("strategy", e))?,
                    },
                    started_at: ts(get(r, 5)?)?,
                    heartbeat_at: ts(heartbeat_at)?,
                    heartbeat: Heartbeat {
                        current_task: get::<Option<i64>>(r, 7)?.map(TaskId),
                        tasks_done: u64::try_from(get::<i64>(r, 8)?).unwrap_or(0),
                        tasks_failed: u64::try_from(get::<i64>(r, 9)?).unwrap_or(0),
                        held,
                    },
                    health,
                })
            })
            .collect()
    }

    async fn prune(&self, stale_after: Duration) -> Result<u64, PortError> {
        let cutoff = self.now_ms().saturating_sub(ms(stale_after));
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM workers WHERE status = 'stopped' OR heartbeat_at < $1",
                &[&cutoff],
            )
            .await
            .map_err(map_err)
    }
}
