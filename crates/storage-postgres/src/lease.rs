//! The fenced lifecycle of an attempt after its claim: renew, start, complete, fail with the
//! retry policy, release. Every write presents the lease token; a stale one changes nothing
//! (`LeaseLost`).

use serde_json::Value;
use std::time::Duration;

use prismq_domain::ports::{FailOutcome, Failure, LogLevel, TaskEvent};
use prismq_domain::task::Lease;
use prismq_domain::{PortError, RetryDecision, TaskStatus};

use crate::codec::{get, ms, status, ts};
use crate::error::map_err;
use crate::logs::insert_log;
use crate::queue::failure_details;
use crate::{in_tx, PostgresStore};

const FENCE: &str = "id = $1 AND lease_token = $2 AND status IN ('claimed', 'running')";

impl PostgresStore {
    pub(crate) async fn renew(
        &self,
        lease: &Lease,
        lease_for: Duration,
    ) -> Result<Lease, PortError> {
        let now = self.now_ms();
        let expires = now.saturating_add(ms(lease_for));
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "UPDATE task_queue SET lease_expires_at = $3, updated_at = $4 WHERE {FENCE}"
            ))
            .await
            .map_err(map_err)?;
        let n = client
            .execute(&stmt, &[&lease.task_id.0, &lease.token.0, &expires, &now])
            .await
            .map_err(map_err)?;
        if n == 0 {
            return Err(PortError::LeaseLost {
                task_id: lease.task_id.0,
            });
        }
        Ok(Lease {
            expires_at: ts(expires)?,
            ..lease.clone()
        })
    }

    pub(crate) async fn start_attempt(&self, lease: &Lease) -> Result<(), PortError> {
        let now = self.now_ms();
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "WITH u AS (
                    UPDATE task_queue SET status = 'running', started_at = $3, updated_at = $3
                    WHERE id = $1 AND lease_token = $2 AND status = 'claimed' RETURNING id)
                 INSERT INTO task_logs (task_id, at, level, event, message, details)
                 SELECT id, $3, 'info', 'started', 'handler started', NULL FROM u",
            )
            .await
            .map_err(map_err)?;
        let n = client
            .execute(&stmt, &[&lease.task_id.0, &lease.token.0, &now])
            .await
            .map_err(map_err)?;
        if n == 1 {
            return Ok(());
        }
        let row = client
            .query_opt(
                "SELECT status FROM task_queue WHERE id = $1 AND lease_token = $2",
                &[&lease.task_id.0, &lease.token.0],
            )
            .await
            .map_err(map_err)?;
        match row {
            Some(r) if status(&get::<String>(&r, 0)?)? == TaskStatus::Running => Ok(()),
            _ => Err(PortError::LeaseLost {
                task_id: lease.task_id.0,
            }),
        }
    }

    pub(crate) async fn complete_attempt(
        &self,
        lease: &Lease,
        summary: Option<Value>,
    ) -> Result<(), PortError> {
        let now = self.now_ms();
        let details = summary.as_ref().filter(|v| !v.is_null());
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "WITH u AS (
                    UPDATE task_queue SET status = 'completed', finished_at = $3, updated_at = $3, summary = $4,
                        lease_expires_at = NULL, lease_token = NULL WHERE {FENCE} RETURNING id)
                 INSERT INTO task_logs (task_id, at, level, event, message, details)
                 SELECT id, $3, 'info', 'completed', 'completed', $5 FROM u"
            ))
            .await
            .map_err(map_err)?;
        let n = client
            .execute(
                &stmt,
                &[&lease.task_id.0, &lease.token.0, &now, &summary, &details],
            )
            .await
            .map_err(map_err)?;
        if n == 0 {
            return Err(PortError::LeaseLost {
                task_id: lease.task_id.0,
            });
        }
        Ok(())
    }

    pub(crate) async fn fail_attempt(
        &self,
        lease: &Lease,
        failure: &Failure,
    ) -> Result<FailOutcome, PortError> {
        let now = self.now();
        let now_ms = now.as_millisecond();
        let sample: u64 = rand::random();
        in_tx!(self, |tx| {
            async {
            let row = tx
                .query_opt(
                    &format!("SELECT attempts, max_attempts FROM task_queue WHERE {FENCE} FOR UPDATE"),
                    &[&lease.task_id.0, &lease.token.0],
                )
                .await
                .map_err(map_err)?
                .ok_or(PortError::LeaseLost { task_id: lease.task_id.0 })?;
            let attempts = u32::try_from(get::<i64>(&row, 0)?).unwrap_or(0);
            let max_attempts = u32::try_from(get::<i64>(&row, 1)?).unwrap_or(1);
            let decision = self
                .retry_policy()
                .decide(attempts, max_attempts, failure.class, now, sample);
            let details = failure_details(failure, attempts);
            let requeue = format!(
                "UPDATE task_queue SET status = 'queued', run_after = $3, attempts = $4, last_error = $5, updated_at = $6,
                 lease_expires_at = NULL, lease_token = NULL, started_at = NULL WHERE {FENCE}"
            );
            let (attempts_after, event, level) = match decision {
                RetryDecision::RetryAt(at) => {
                    tx.execute(
                        &requeue,
                        &[&lease.task_id.0, &lease.token.0, &at.as_millisecond(), &i64::from(attempts), &failure.message, &now_ms],
                    )
                    .await
                    .map_err(map_err)?;
                    (attempts, TaskEvent::Retried, LogLevel::Warn)
                }
                RetryDecision::Defer(until) => {
                    let back = attempts.saturating_sub(1);
                    tx.execute(
                        &requeue,
                        &[&lease.task_id.0, &lease.token.0, &until.as_millisecond(), &i64::from(back), &failure.message, &now_ms],
                    )
                    .await
                    .map_err(map_err)?;
                    (back, TaskEvent::Deferred, LogLevel::Info)
                }
                RetryDecision::DeadLetter => {
                    tx.execute(
                        &format!(
                            "UPDATE task_queue SET status = 'failed', last_error = $3, finished_at = $4, updated_at = $4,
                             lease_expires_at = NULL, lease_token = NULL WHERE {FENCE}"
                        ),
                        &[&lease.task_id.0, &lease.token.0, &failure.message, &now_ms],
                    )
                    .await
                    .map_err(map_err)?;
                    (attempts, TaskEvent::Failed, LogLevel::Error)
                }
            };
            insert_log(&tx, lease.task_id, now_ms, level, event, &failure.message, &details).await?;
            Ok(FailOutcome { decision, attempts: attempts_after })
        }
        .await
        })
    }

    pub(crate) async fn release_attempt(&self, lease: &Lease) -> Result<(), PortError> {
        let now = self.now_ms();
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "WITH u AS (
                    UPDATE task_queue SET status = 'queued', run_after = $3, updated_at = $3,
                        attempts = greatest(attempts - 1, 0), lease_expires_at = NULL, lease_token = NULL,
                        started_at = NULL
                    WHERE {FENCE} RETURNING id)
                 INSERT INTO task_logs (task_id, at, level, event, message, details)
                 SELECT id, $3, 'info', 'released', 'handed back without using an attempt', NULL FROM u"
            ))
            .await
            .map_err(map_err)?;
        let n = client
            .execute(&stmt, &[&lease.task_id.0, &lease.token.0, &now])
            .await
            .map_err(map_err)?;
        if n == 0 {
            return Err(PortError::LeaseLost {
                task_id: lease.task_id.0,
            });
        }
        Ok(())
    }
}
