//! `WorkerRegistry` for `MemoryStore`: registration, heartbeats and health by age.

use std::time::Duration;

use async_trait::async_trait;
use prismq_domain::ports::{Heartbeat, WorkerHealth, WorkerInfo, WorkerRecord, WorkerRegistry};
use prismq_domain::{PortError, Timestamp, WorkerId};

use super::{add, MemoryStore};

/// A registered worker as stored.
#[derive(Debug, Clone)]
pub(super) struct WorkerEntry {
    pub(super) info: WorkerInfo,
    pub(super) started_at: Timestamp,
    pub(super) heartbeat_at: Timestamp,
    pub(super) heartbeat: Heartbeat,
    pub(super) stopped: bool,
}

impl WorkerEntry {
    fn health(&self, now: Timestamp, stale_after: Duration) -> WorkerHealth {
        if self.stopped {
            WorkerHealth::Stopped
        } else if add(self.heartbeat_at, stale_after) < now {
            WorkerHealth::Stale
        } else {
            WorkerHealth::Active
        }
    }
}

fn unknown(id: &WorkerId) -> PortError {
    PortError::NotFound(format!("worker {id}"))
}

#[async_trait]
impl WorkerRegistry for MemoryStore {
    async fn register(&self, info: &WorkerInfo) -> Result<(), PortError> {
        let now = self.now();
        self.state().workers.insert(
            info.id.clone(),
            WorkerEntry {
                info: info.clone(),
                started_at: now,
                heartbeat_at: now,
                heartbeat: Heartbeat::default(),
                stopped: false,
            },
        );
        Ok(())
    }

    async fn heartbeat(&self, id: &WorkerId, beat: Heartbeat) -> Result<(), PortError> {
        let now = self.now();
        let mut st = self.state();
        let w = st.workers.get_mut(id).ok_or_else(|| unknown(id))?;
        w.heartbeat_at = now;
        w.heartbeat = beat;
        Ok(())
    }

    async fn deregister(&self, id: &WorkerId) -> Result<(), PortError> {
        let mut st = self.state();
        let w = st.workers.get_mut(id).ok_or_else(|| unknown(id))?;
        w.stopped = true;
        w.heartbeat.current_task = None;
        w.heartbeat.held.clear();
        Ok(())
    }

    async fn list(&self, stale_after: Duration) -> Result<Vec<WorkerRecord>, PortError> {
        let now = self.now();
        let st = self.state();
        Ok(st
            .workers
            .values()
            .map(|w| WorkerRecord {
                info: w.info.clone(),
                started_at: w.started_at,
                heartbeat_at: w.heartbeat_at,
                heartbeat: w.heartbeat.clone(),
                health: w.health(now, stale_after),
            })
            .collect())
    }

    async fn prune(&self, stale_after: Duration) -> Result<u64, PortError> {
        let now = self.now();
        let mut st = self.state();
        let before = st.workers.len();
        st.workers
            .retain(|_, w| w.health(now, stale_after) == WorkerHealth::Active);
        Ok((before - st.workers.len()) as u64)
    }
}
