//! The fenced lifecycle of an attempt after its claim: renew, start, complete, fail with the
//! retry policy, release. Every write is fenced by the lease token the claim issued.

use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::Value;
use std::time::Duration;

use prismq_domain::ports::{FailOutcome, Failure, LogLevel, TaskEvent};
use prismq_domain::task::Lease;
use prismq_domain::{PortError, RetryDecision, TaskStatus};

use crate::codec::{ts, CLAIMED, COMPLETED, FAILED, QUEUED, RUNNING};
use crate::error::map_err;
use crate::logs::{insert_log, write_pending};
use crate::queue::{failure_details, move_count};
use crate::SqliteStore;

const FENCE: &str = "id = ?1 AND lease_token = ?2 AND status IN (1, 2) /* claimed, running */";

impl SqliteStore {
    /// Blocking [`prismq_domain::ports::TaskQueue::renew_lease`].
    ///
    /// # Errors
    /// As the port.
    pub fn renew_blocking(&self, lease: &Lease, lease_for: Duration) -> Result<Lease, PortError> {
        let now = self.now_ms();
        let expires = now.saturating_add(i64::try_from(lease_for.as_millis()).unwrap_or(i64::MAX));
        self.write(|tx| {
            let n = tx
                .prepare_cached(&format!(
                    "UPDATE task_queue SET lease_expires_at = ?3, updated_at = ?4 WHERE {FENCE}"
                ))
                .and_then(|mut s| s.execute(params![lease.task_id.0, lease.token.0, expires, now]))
                .map_err(map_err)?;
            if n == 0 {
                return Err(PortError::LeaseLost {
                    task_id: lease.task_id.0,
                });
            }
            Ok(Lease {
                expires_at: ts(0, expires).map_err(map_err)?,
                ..lease.clone()
            })
        })
    }

    /// Blocking [`prismq_domain::ports::TaskQueue::start`].
    ///
    /// # Errors
    /// As the port.
    pub fn start_blocking(&self, lease: &Lease) -> Result<(), PortError> {
        self.write_shared(self.start_write(lease))
    }

    /// The async port's start, run on the store's writer thread.
    pub(crate) async fn start_async(&self, lease: &Lease) -> Result<(), PortError> {
        self.write_shared_async(self.start_write(lease)).await
    }

    fn start_write(
        &self,
        lease: &Lease,
    ) -> impl FnMut(&Transaction<'_>) -> Result<(), PortError> + Send + 'static {
        let now = self.now_ms();
        let lease = lease.clone();
        move |tx| {
            // `Some(stored)`: started now; `stored` when the claim's entries are already rows
            // (a task claimed before schema v2), so this one must be a row too.
            let started: Option<(bool, i64)> = tx
                .prepare_cached(
                    "UPDATE task_queue SET status = 2 /* running */, started_at = ?3, updated_at = ?3
                     WHERE id = ?1 AND lease_token = ?2 AND status = 1 /* claimed */ RETURNING claim_seq IS NULL, type_id",
                )
                .and_then(|mut s| s.query_row(params![lease.task_id.0, lease.token.0, now], |r| Ok((r.get(0)?, r.get(1)?))).optional())
                .map_err(map_err)?;
            if let Some((stored, type_id)) = started {
                move_count(tx, type_id, CLAIMED, RUNNING)?;
                if !stored {
                    return Ok(());
                }
                return insert_log(
                    tx,
                    lease.task_id,
                    now,
                    LogLevel::Info,
                    TaskEvent::Started,
                    "handler started",
                    &Value::Null,
                );
            }
            match fenced_status(tx, &lease)? {
                Some(TaskStatus::Running) => Ok(()),
                _ => Err(PortError::LeaseLost {
                    task_id: lease.task_id.0,
                }),
            }
        }
    }

    /// Blocking [`prismq_domain::ports::TaskQueue::complete`].
    ///
    /// # Errors
    /// As the port.
    pub fn complete_blocking(
        &self,
        lease: &Lease,
        summary: Option<&Value>,
    ) -> Result<(), PortError> {
        self.write_shared(self.complete_write(lease, summary))
    }

    /// The async port's completion, run on the store's writer thread.
    pub(crate) async fn complete_async(
        &self,
        lease: &Lease,
        summary: Option<&Value>,
    ) -> Result<(), PortError> {
        self.write_shared_async(self.complete_write(lease, summary))
            .await
    }

    pub(crate) fn complete_write(
        &self,
        lease: &Lease,
        summary: Option<&Value>,
    ) -> impl FnMut(&Transaction<'_>) -> Result<(), PortError> + Send + 'static {
        let now = self.now_ms();
        let summary_text = summary.map(Value::to_string);
        let lease = lease.clone();
        move |tx| {
            // The `completed` entry is read from the row (status and finished_at) unless the
            // claim's entries are already rows (a task claimed before schema v2). The fence
            // names the status the task leaves, so its count moves from the right one: running
            // first (the runtime claims and starts in one transaction), then claimed.
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE task_queue SET status = 3 /* completed */, finished_at = ?3, updated_at = ?3, summary = ?4,
                     lease_expires_at = NULL, lease_token = NULL WHERE id = ?1 AND lease_token = ?2 AND status = ?5
                     RETURNING claim_seq IS NULL, type_id",
                )
                .map_err(map_err)?;
            let mut stored = None;
            for from in [RUNNING, CLAIMED] {
                let row: Option<(bool, i64)> = stmt
                    .query_row(
                        params![lease.task_id.0, lease.token.0, now, summary_text, from],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()
                    .map_err(map_err)?;
                if let Some((pending, type_id)) = row {
                    move_count(tx, type_id, from, COMPLETED)?;
                    stored = Some(pending);
                    break;
                }
            }
            match stored {
                None => Err(PortError::LeaseLost {
                    task_id: lease.task_id.0,
                }),
                Some(false) => Ok(()),
                // The summary lives on the task row; the log entry stays small.
                Some(true) => insert_log(
                    tx,
                    lease.task_id,
                    now,
                    LogLevel::Info,
                    TaskEvent::Completed,
                    "completed",
                    &Value::Null,
                ),
            }
        }
    }

    /// Blocking [`prismq_domain::ports::TaskQueue::fail`].
    ///
    /// # Errors
    /// As the port.
    pub fn fail_blocking(
        &self,
        lease: &Lease,
        failure: &Failure,
    ) -> Result<FailOutcome, PortError> {
        let now = self.now();
        let now_ms = now.as_millisecond();
        let sample: u64 = rand::random();
        self.write(|tx| {
            let row: Option<(u32, u32, i64, i64)> = tx
                .prepare_cached(&format!("SELECT attempts, max_attempts, status, type_id FROM task_queue WHERE {FENCE}"))
                .and_then(|mut s| s.query_row(params![lease.task_id.0, lease.token.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).optional())
                .map_err(map_err)?;
            let (attempts, max_attempts, from, type_id) = row.ok_or(PortError::LeaseLost { task_id: lease.task_id.0 })?;
            write_pending(tx, lease.task_id)?;
            let decision = self.retry_policy().decide(attempts, max_attempts, failure.class, now, sample);
            let details = failure_details(failure, attempts);
            let (attempts_after, event, level) = match decision {
                RetryDecision::RetryAt(at) => {
                    requeue(tx, lease, at.as_millisecond(), attempts, &failure.message, now_ms)?;
                    move_count(tx, type_id, from, QUEUED)?;
                    (attempts, TaskEvent::Retried, LogLevel::Warn)
                }
                RetryDecision::Defer(until) => {
                    let back = attempts.saturating_sub(1);
                    requeue(tx, lease, until.as_millisecond(), back, &failure.message, now_ms)?;
                    move_count(tx, type_id, from, QUEUED)?;
                    (back, TaskEvent::Deferred, LogLevel::Info)
                }
                RetryDecision::DeadLetter => {
                    tx.prepare_cached(&format!(
                        "UPDATE task_queue SET status = 4 /* failed */, last_error = ?3, finished_at = ?4, updated_at = ?4,
                         lease_expires_at = NULL, lease_token = NULL WHERE {FENCE}"
                    ))
                    .and_then(|mut s| s.execute(params![lease.task_id.0, lease.token.0, failure.message, now_ms]))
                    .map_err(map_err)?;
                    move_count(tx, type_id, from, FAILED)?;
                    (attempts, TaskEvent::Failed, LogLevel::Error)
                }
            };
            insert_log(tx, lease.task_id, now_ms, level, event, &failure.message, &details)?;
            Ok(FailOutcome { decision, attempts: attempts_after })
        })
    }

    /// Blocking [`prismq_domain::ports::TaskQueue::release`].
    ///
    /// # Errors
    /// As the port.
    pub fn release_blocking(&self, lease: &Lease) -> Result<(), PortError> {
        let now = self.now_ms();
        self.write(|tx| {
            let (from, type_id): (i64, i64) = tx
                .prepare_cached(&format!("SELECT status, type_id FROM task_queue WHERE {FENCE}"))
                .and_then(|mut s| s.query_row(params![lease.task_id.0, lease.token.0], |r| Ok((r.get(0)?, r.get(1)?))).optional())
                .map_err(map_err)?
                .ok_or(PortError::LeaseLost { task_id: lease.task_id.0 })?;
            // The fence held above, in this transaction. Before the update clears started_at.
            write_pending(tx, lease.task_id)?;
            tx.prepare_cached(&format!(
                "UPDATE task_queue SET status = 0 /* queued */, run_after = ?3, updated_at = ?3, attempts = max(attempts - 1, 0),
                 lease_expires_at = NULL, lease_token = NULL, started_at = NULL WHERE {FENCE}"
            ))
            .and_then(|mut s| s.execute(params![lease.task_id.0, lease.token.0, now]))
            .map_err(map_err)?;
            move_count(tx, type_id, from, QUEUED)?;
            insert_log(tx, lease.task_id, now, LogLevel::Info, TaskEvent::Released, "handed back without using an attempt", &Value::Null)
        })
    }
}

fn requeue(
    tx: &Transaction<'_>,
    lease: &Lease,
    run_after: i64,
    attempts: u32,
    error: &str,
    now: i64,
) -> Result<(), PortError> {
    tx.prepare_cached(&format!(
        "UPDATE task_queue SET status = 0 /* queued */, run_after = ?3, attempts = ?4, last_error = ?5, updated_at = ?6,
         lease_expires_at = NULL, lease_token = NULL, started_at = NULL WHERE {FENCE}"
    ))
    .and_then(|mut s| s.execute(params![lease.task_id.0, lease.token.0, run_after, attempts, error, now]))
    .map_err(map_err)?;
    Ok(())
}

fn fenced_status(tx: &Transaction<'_>, lease: &Lease) -> Result<Option<TaskStatus>, PortError> {
    let s: Option<i64> = tx
        .prepare_cached("SELECT status FROM task_queue WHERE id = ?1 AND lease_token = ?2")
        .and_then(|mut s| {
            s.query_row(params![lease.task_id.0, lease.token.0], |r| r.get(0))
                .optional()
        })
        .map_err(map_err)?;
    s.map(|s| crate::codec::status(0, s))
        .transpose()
        .map_err(map_err)
}
