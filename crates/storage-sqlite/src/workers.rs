//! The worker registry: registration, heartbeats, health and pruning.

use async_trait::async_trait;
use rusqlite::params;
use std::time::Duration;

use prismq_domain::ports::{
    Heartbeat, HeldType, WorkerHealth, WorkerInfo, WorkerRecord, WorkerRegistry,
};
use prismq_domain::task::{TaskId, TaskType, WorkerId};
use prismq_domain::PortError;

use crate::codec::ts;
use crate::error::map_err;
use crate::SqliteStore;

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl SqliteStore {
    fn register_blocking(&self, info: &WorkerInfo) -> Result<(), PortError> {
        let now = self.now_ms();
        let caps = serde_json::to_string(&info.capabilities)
            .map_err(|e| PortError::Unavailable(e.to_string()))?;
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO workers (id, hostname, pid, capabilities, strategy, started_at, heartbeat_at, current_task_id, tasks_done, tasks_failed, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, NULL, 0, 0, 'active')
                 ON CONFLICT (id) DO UPDATE SET hostname = excluded.hostname, pid = excluded.pid, capabilities = excluded.capabilities,
                   strategy = excluded.strategy, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,
                   current_task_id = NULL, tasks_done = 0, tasks_failed = 0, held = '[]', status = 'active'",
            )
            .and_then(|mut s| s.execute(params![info.id.as_str(), info.hostname, info.pid, caps, info.strategy.as_str(), now]))
            .map_err(map_err)?;
            Ok(())
        })
    }

    fn heartbeat_blocking(&self, id: &WorkerId, beat: &Heartbeat) -> Result<(), PortError> {
        let now = self.now_ms();
        let held =
            serde_json::to_string(&beat.held).map_err(|e| PortError::Unavailable(e.to_string()))?;
        self.write(|tx| {
            let n = tx
                .prepare_cached("UPDATE workers SET heartbeat_at = ?2, current_task_id = ?3, tasks_done = ?4, tasks_failed = ?5, held = ?6 WHERE id = ?1")
                .and_then(|mut s| {
                    s.execute(params![
                        id.as_str(),
                        now,
                        beat.current_task.map(|t| t.0),
                        i64::try_from(beat.tasks_done).unwrap_or(i64::MAX),
                        i64::try_from(beat.tasks_failed).unwrap_or(i64::MAX),
                        held
                    ])
                })
                .map_err(map_err)?;
            if n == 0 {
                return Err(PortError::NotFound(format!("worker {id}")));
            }
            Ok(())
        })
    }

    fn deregister_blocking(&self, id: &WorkerId) -> Result<(), PortError> {
        let now = self.now_ms();
        self.write(|tx| {
            let n = tx
                .prepare_cached("UPDATE workers SET status = 'stopped', current_task_id = NULL, held = '[]', heartbeat_at = ?2 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![id.as_str(), now]))
                .map_err(map_err)?;
            if n == 0 {
                return Err(PortError::NotFound(format!("worker {id}")));
            }
            Ok(())
        })
    }

    /// Blocking [`WorkerRegistry::list`].
    ///
    /// # Errors
    /// As the port.
    pub fn workers_blocking(&self, stale_after: Duration) -> Result<Vec<WorkerRecord>, PortError> {
        let now = self.now_ms();
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, hostname, pid, capabilities, strategy, started_at, heartbeat_at, current_task_id, tasks_done, tasks_failed, status, held
                     FROM workers ORDER BY id",
                )
                .map_err(map_err)?;
            let rows = stmt
                .query_map([], |r| {
                    let bad = |i: usize, e: String| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into());
                    let id: String = r.get(0)?;
                    let caps: String = r.get(3)?;
                    let strategy: String = r.get(4)?;
                    let heartbeat_at: i64 = r.get(6)?;
                    let status: String = r.get(10)?;
                    let held: String = r.get(11)?;
                    let held: Vec<HeldType> = serde_json::from_str(&held).map_err(|e| bad(11, e.to_string()))?;
                    let capabilities: Vec<TaskType> = serde_json::from_str(&caps).map_err(|e| bad(3, e.to_string()))?;
                    let health = if status == "stopped" {
                        WorkerHealth::Stopped
                    } else if now.saturating_sub(heartbeat_at) > ms(stale_after) {
                        WorkerHealth::Stale
                    } else {
                        WorkerHealth::Active
                    };
                    Ok(WorkerRecord {
                        info: WorkerInfo {
                            id: WorkerId::new(id).map_err(|e| bad(0, e.to_string()))?,
                            hostname: r.get(1)?,
                            pid: r.get(2)?,
                            capabilities,
                            strategy: strategy.parse().map_err(|e: prismq_domain::ValidationError| bad(4, e.to_string()))?,
                        },
                        started_at: ts(5, r.get(5)?)?,
                        heartbeat_at: ts(6, heartbeat_at)?,
                        heartbeat: Heartbeat {
                            current_task: r.get::<_, Option<i64>>(7)?.map(TaskId),
                            tasks_done: r.get::<_, i64>(8)?.max(0) as u64,
                            tasks_failed: r.get::<_, i64>(9)?.max(0) as u64,
                            held,
                        },
                        health,
                    })
                })
                .map_err(map_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
        })
    }

    fn prune_blocking(&self, stale_after: Duration) -> Result<u64, PortError> {
        let cutoff = self.now_ms().saturating_sub(ms(stale_after));
        self.write(|tx| {
            let n = tx
                .prepare_cached("DELETE FROM workers WHERE status = 'stopped' OR heartbeat_at < ?1")
                .and_then(|mut s| s.execute([cutoff]))
                .map_err(map_err)?;
            Ok(n as u64)
        })
    }
}

#[async_trait]
impl WorkerRegistry for SqliteStore {
    async fn register(&self, info: &WorkerInfo) -> Result<(), PortError> {
        let info = info.clone();
        self.blocking(move |s| s.register_blocking(&info)).await
    }

    async fn heartbeat(&self, id: &WorkerId, beat: Heartbeat) -> Result<(), PortError> {
        let id = id.clone();
        let beat = beat.clone();
        self.blocking(move |s| s.heartbeat_blocking(&id, &beat))
            .await
    }

    async fn deregister(&self, id: &WorkerId) -> Result<(), PortError> {
        let id = id.clone();
        self.blocking(move |s| s.deregister_blocking(&id)).await
    }

    async fn list(&self, stale_after: Duration) -> Result<Vec<WorkerRecord>, PortError> {
        self.blocking(move |s| s.workers_blocking(stale_after))
            .await
    }

    async fn prune(&self, stale_after: Duration) -> Result<u64, PortError> {
        self.blocking(move |s| s.prune_blocking(stale_after)).await
    }
}
