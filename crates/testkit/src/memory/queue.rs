//! `TaskQueue` for `MemoryStore`: enqueue, operator actions, listing, purge and stats. The
//! claim and the fenced lifecycle of an attempt live in `claims.rs` and `lifecycle.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use prismq_domain::ports::{
    check_batch_keys, idempotency_conflict, ClaimRequest, ClaimedTask, Enqueued, FailOutcome,
    Failure, LogLevel, QueueStats, RecentActivity, StatusCount, TaskEvent, TaskFilter, TaskQueue,
};
use prismq_domain::{
    Lease, NewTask, PortError, Task, TaskId, TaskStatus, TaskType, Timestamp, ValidationError,
};
use serde_json::Value;

use super::{passes, MemoryStore, State};
use crate::clock::truncate_to_millis;

impl MemoryStore {
    /// Validates `task` as enqueue does (shape, size limit, region).
    pub(super) fn validate_new(&self, task: &NewTask) -> Result<(), ValidationError> {
        task.validate(self.inner.max_params_bytes)
    }

    /// The existing task `task`'s idempotency key names, if any: `Ok` when it has the same
    /// type and params (a duplicate), the refusal when it has others.
    pub(super) fn resolve_key(
        st: &State,
        task: &NewTask,
    ) -> Result<Option<TaskId>, ValidationError> {
        let Some(id) = task.idempotency_key.as_ref().and_then(|k| st.keys.get(k)) else {
            return Ok(None);
        };
        match st.tasks.get(id) {
            Some(t) => match idempotency_conflict(task, *id, t.task_type.as_str(), &t.params) {
                Some(conflict) => Err(conflict),
                None => Ok(Some(*id)),
            },
            None => Ok(Some(*id)),
        }
    }

    /// Inserts a validated task whose key, if any, is new, under the lock.
    pub(super) fn insert(&self, st: &mut State, task: NewTask, now: Timestamp) -> Enqueued {
        st.last_id += 1;
        let id = TaskId(st.last_id);
        // Validated already, so the region is two letters.
        let compatibility = task.compatibility.normalised().unwrap_or_default();
        let row = Task {
            id,
            task_type: task.task_type,
            params: task.params,
            priority: task.priority,
            status: TaskStatus::Queued,
            attempts: 0,
            max_attempts: task.max_attempts.unwrap_or(self.inner.retry.max_attempts),
            run_after: task.run_after.map(truncate_to_millis).unwrap_or(now),
            lease_expires_at: None,
            claimed_by: None,
            lease_token: None,
            idempotency_key: task.idempotency_key,
            compatibility,
            last_error: None,
            summary: None,
            created_at: now,
            updated_at: now,
            finished_at: None,
            lapses: 0,
        };
        if let Some(key) = &row.idempotency_key {
            st.keys.insert(key.clone(), id);
        }
        st.tasks.insert(id, row);
        st.log(
            id,
            now,
            LogLevel::Info,
            TaskEvent::Enqueued,
            "enqueued".into(),
        );
        Enqueued {
            id,
            duplicate: false,
        }
    }
}

fn not_found(id: TaskId) -> PortError {
    PortError::NotFound(format!("task {id}"))
}

#[async_trait]
impl TaskQueue for MemoryStore {
    async fn enqueue(&self, task: NewTask) -> Result<Enqueued, PortError> {
        self.validate_new(&task)?;
        let now = self.now();
        let mut st = self.state();
        if let Some(id) = Self::resolve_key(&st, &task)? {
            return Ok(Enqueued {
                id,
                duplicate: true,
            });
        }
        Ok(self.insert(&mut st, task, now))
    }

    async fn enqueue_batch(&self, tasks: Vec<NewTask>) -> Result<Vec<Enqueued>, PortError> {
        for (i, t) in tasks.iter().enumerate() {
            self.validate_new(t)
                .map_err(|e| e.within(&format!("tasks[{i}]")))?;
        }
        let now = self.now();
        let mut st = self.state();
        // All or nothing: every key is resolved (within the batch, then against the store)
        // before any task is inserted, so a conflict anywhere writes nothing.
        check_batch_keys(&tasks)?;
        for (i, t) in tasks.iter().enumerate() {
            Self::resolve_key(&st, t).map_err(|e| e.within(&format!("tasks[{i}]")))?;
        }
        Ok(tasks
            .into_iter()
            .map(|t| match Self::resolve_key(&st, &t) {
                Ok(Some(id)) => Enqueued {
                    id,
                    duplicate: true,
                },
                _ => self.insert(&mut st, t, now),
            })
            .collect())
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Option<ClaimedTask>, PortError> {
        Ok(self.claim_next(request))
    }

    async fn renew_lease(&self, lease: &Lease, lease_for: Duration) -> Result<Lease, PortError> {
        self.renew(lease, lease_for)
    }

    async fn start(&self, lease: &Lease) -> Result<(), PortError> {
        self.start_attempt(lease)
    }

    async fn complete(&self, lease: &Lease, summary: Option<Value>) -> Result<(), PortError> {
        self.complete_attempt(lease, summary)
    }

    async fn fail(&self, lease: &Lease, failure: &Failure) -> Result<FailOutcome, PortError> {
        self.fail_attempt(lease, failure)
    }

    async fn release(&self, lease: &Lease) -> Result<(), PortError> {
        self.release_attempt(lease)
    }

    async fn cancel(&self, id: TaskId) -> Result<Task, PortError> {
        let now = self.now();
        let mut st = self.state();
        let task = st.tasks.get_mut(&id).ok_or_else(|| not_found(id))?;
        if task.status.is_final() {
            return Err(PortError::InvalidState {
                task_id: id.0,
                status: task.status,
                action: "cancel",
            });
        }
        task.status = TaskStatus::Cancelled;
        task.lease_token = None;
        task.lease_expires_at = None;
        task.finished_at = Some(now);
        task.updated_at = now;
        let out = task.clone();
        st.log(
            id,
            now,
            LogLevel::Info,
            TaskEvent::Cancelled,
            "cancelled".into(),
        );
        Ok(out)
    }

    async fn retry(&self, id: TaskId) -> Result<Task, PortError> {
        let now = self.now();
        let mut st = self.state();
        let task = st.tasks.get_mut(&id).ok_or_else(|| not_found(id))?;
        if task.status != TaskStatus::Failed {
            return Err(PortError::InvalidState {
                task_id: id.0,
                status: task.status,
                action: "retry",
            });
        }
        task.status = TaskStatus::Queued;
        task.attempts = 0;
        task.lapses = 0;
        task.run_after = now;
        task.finished_at = None;
        task.updated_at = now;
        let out = task.clone();
        st.log(
            id,
            now,
            LogLevel::Info,
            TaskEvent::Requeued,
            "sent back to the queue by an operator".into(),
        );
        Ok(out)
    }

    async fn get(&self, id: TaskId) -> Result<Task, PortError> {
        self.state()
            .tasks
            .get(&id)
            .cloned()
            .ok_or_else(|| not_found(id))
    }

    async fn list(&self, filter: &TaskFilter) -> Result<Vec<Task>, PortError> {
        prismq_domain::ports::check_page_limit(filter.limit)?;
        let st = self.state();
        let upper = filter.before_id.map_or(i64::MAX, |b| b.0);
        Ok(st
            .tasks
            .range(..TaskId(upper))
            .rev()
            .map(|(_, t)| t)
            .filter(|t| passes(filter.status, |s| t.status == s))
            .filter(|t| passes(filter.task_type.as_ref(), |ty| &t.task_type == ty))
            .filter(|t| {
                passes(filter.finished_before, |b| {
                    t.finished_at.is_some_and(|f| f < b)
                })
            })
            .filter(|t| {
                passes(filter.key_prefix.as_ref(), |p| {
                    t.idempotency_key
                        .as_deref()
                        .is_some_and(|k| k.starts_with(p.as_str()))
                })
            })
            .take(filter.limit as usize)
            .cloned()
            .collect())
    }

    async fn purge(
        &self,
        status: TaskStatus,
        before: Timestamp,
        limit: u32,
    ) -> Result<u64, PortError> {
        if !status.is_final() {
            return Err(PortError::Invalid(ValidationError::new(
                "status",
                format!("{status} is not a final status"),
                "completed, failed or cancelled",
            )));
        }
        let mut st = self.state();
        let doomed: Vec<TaskId> = st
            .tasks
            .values()
            .filter(|t| t.status == status && t.finished_at.is_some_and(|f| f < before))
            .map(|t| t.id)
            .take(limit as usize)
            .collect();
        for id in &doomed {
            if let Some(t) = st.tasks.remove(id) {
                if let Some(key) = t.idempotency_key {
                    st.keys.remove(&key);
                }
            }
            st.logs.remove(id);
            st.started.remove(id);
        }
        Ok(doomed.len() as u64)
    }

    async fn stats(&self) -> Result<QueueStats, PortError> {
        let now = self.now();
        let st = self.state();
        let mut counts: BTreeMap<(TaskType, TaskStatus), u64> = BTreeMap::new();
        let mut oldest: Option<Timestamp> = None;
        let mut recent = RecentActivity::default();
        let minute_ago = now - std::time::Duration::from_secs(60);
        let hour_ago = now - std::time::Duration::from_secs(3600);
        for t in st.tasks.values() {
            *counts.entry((t.task_type.clone(), t.status)).or_default() += 1;
            if let Some(f) = t.finished_at {
                match t.status {
                    TaskStatus::Completed if f >= minute_ago => {
                        recent.completed_last_minute += 1;
                        recent.completed_last_hour += 1;
                    }
                    TaskStatus::Completed if f >= hour_ago => recent.completed_last_hour += 1,
                    TaskStatus::Failed if f >= hour_ago => recent.failed_last_hour += 1,
                    _ => {}
                }
            }
            if t.status == TaskStatus::Queued && t.run_after <= now {
                oldest = Some(oldest.map_or(t.run_after, |o| o.min(t.run_after)));
            }
        }
        Ok(QueueStats {
            counts: counts
                .into_iter()
                .map(|((task_type, status), count)| StatusCount {
                    task_type,
                    status,
                    count,
                })
                .collect(),
            oldest_eligible: oldest,
            recent,
        })
    }
}
