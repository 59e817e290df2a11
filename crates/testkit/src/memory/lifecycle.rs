//! The fenced lifecycle of one attempt for `MemoryStore`: renew, start, complete, fail
//! (applying the retry policy) and release. Every write presents the attempt's lease token.

use std::time::Duration;

use prismq_domain::ports::{FailOutcome, Failure, LogLevel, TaskEvent};
use prismq_domain::{Lease, PortError, RetryDecision, Task, TaskStatus};
use rand::Rng;
use serde_json::Value;

use super::{add, MemoryStore, State};
use crate::clock::truncate_to_millis;

/// The task `lease` fences, if the token still matches a claimed or running task.
fn fenced<'a>(st: &'a mut State, lease: &Lease) -> Result<&'a mut Task, PortError> {
    match st.tasks.get_mut(&lease.task_id) {
        Some(t) if t.status.is_leased() && t.lease_token == Some(lease.token) => Ok(t),
        _ => Err(PortError::LeaseLost {
            task_id: lease.task_id.0,
        }),
    }
}

/// Ends the attempt's lease (the worker stays recorded as the last holder).
fn clear_lease(task: &mut Task) {
    task.lease_token = None;
    task.lease_expires_at = None;
}

impl MemoryStore {
    pub(super) fn renew(&self, lease: &Lease, lease_for: Duration) -> Result<Lease, PortError> {
        let now = self.now();
        let mut st = self.state();
        let task = fenced(&mut st, lease)?;
        let expires_at = add(now, lease_for);
        task.lease_expires_at = Some(expires_at);
        task.updated_at = now;
        Ok(Lease {
            expires_at,
            ..lease.clone()
        })
    }

    pub(super) fn start_attempt(&self, lease: &Lease) -> Result<(), PortError> {
        let now = self.now();
        let mut st = self.state();
        let task = fenced(&mut st, lease)?;
        if task.status == TaskStatus::Running {
            return Ok(());
        }
        task.status = TaskStatus::Running;
        task.updated_at = now;
        let attempt = task.attempts;
        st.started.insert(lease.task_id, now);
        st.log(
            lease.task_id,
            now,
            LogLevel::Info,
            TaskEvent::Started,
            format!("attempt {attempt} started on {}", lease.worker),
        );
        Ok(())
    }

    pub(super) fn complete_attempt(
        &self,
        lease: &Lease,
        summary: Option<Value>,
    ) -> Result<(), PortError> {
        let now = self.now();
        let mut st = self.state();
        let task = fenced(&mut st, lease)?;
        if !task.status.can_transition(TaskStatus::Completed) {
            return Err(PortError::InvalidState {
                task_id: lease.task_id.0,
                status: task.status,
                action: "complete (start the attempt first)",
            });
        }
        task.status = TaskStatus::Completed;
        task.summary = summary;
        task.finished_at = Some(now);
        task.updated_at = now;
        clear_lease(task);
        st.log(
            lease.task_id,
            now,
            LogLevel::Info,
            TaskEvent::Completed,
            "completed".into(),
        );
        Ok(())
    }

    pub(super) fn fail_attempt(
        &self,
        lease: &Lease,
        failure: &Failure,
    ) -> Result<FailOutcome, PortError> {
        let now = self.now();
        let retry = self.inner.retry;
        let mut st = self.state();
        let task = fenced(&mut st, lease)?;
        let sample: u64 = rand::thread_rng().gen();
        let decision =
            match retry.decide(task.attempts, task.max_attempts, failure.class, now, sample) {
                RetryDecision::RetryAt(t) => RetryDecision::RetryAt(truncate_to_millis(t)),
                RetryDecision::Defer(t) => RetryDecision::Defer(truncate_to_millis(t)),
                RetryDecision::DeadLetter => RetryDecision::DeadLetter,
            };
        task.last_error = Some(failure.message.clone());
        task.updated_at = now;
        clear_lease(task);
        let (event, level, note) = match decision {
            RetryDecision::RetryAt(at) => {
                task.status = TaskStatus::Queued;
                task.run_after = at;
                (TaskEvent::Retried, LogLevel::Warn, format!("retry at {at}"))
            }
            RetryDecision::Defer(until) => {
                task.status = TaskStatus::Queued;
                task.run_after = until;
                task.attempts = task.attempts.saturating_sub(1);
                (
                    TaskEvent::Deferred,
                    LogLevel::Warn,
                    format!("deferred until {until}"),
                )
            }
            RetryDecision::DeadLetter => {
                task.status = TaskStatus::Failed;
                task.finished_at = Some(now);
                (TaskEvent::Failed, LogLevel::Error, "dead-lettered".into())
            }
        };
        let attempts = task.attempts;
        if task.status == TaskStatus::Queued {
            // Handed back for another attempt: this one's start no longer stands.
            st.started.remove(&lease.task_id);
        }
        st.log(
            lease.task_id,
            now,
            level,
            event,
            format!("{note}: {}", failure.message),
        );
        Ok(FailOutcome { decision, attempts })
    }

    pub(super) fn release_attempt(&self, lease: &Lease) -> Result<(), PortError> {
        let now = self.now();
        let mut st = self.state();
        let task = fenced(&mut st, lease)?;
        task.status = TaskStatus::Queued;
        task.run_after = now;
        task.attempts = task.attempts.saturating_sub(1);
        task.updated_at = now;
        clear_lease(task);
        st.started.remove(&lease.task_id);
        st.log(
            lease.task_id,
            now,
            LogLevel::Info,
            TaskEvent::Released,
            format!("released by {}", lease.worker),
        );
        Ok(())
    }
}
