//! Completing an attempt and claiming the worker's next task in one statement: what a worker
//! does between two tasks, in one round trip and one commit instead of three.

use serde_json::Value;
use tokio_postgres::types::ToSql;

use prismq_domain::ports::{ClaimRequest, ClaimedTask};
use prismq_domain::task::Lease;
use prismq_domain::{PortError, TaskStatus};

use crate::claims::{candidate_types, claimed, handover_statement, scope};
use crate::codec::{get, ms, new_token};
use crate::PostgresStore;

/// The completion's outcome (`Err`: nothing written) and, after a completion, the next
/// claim's.
pub(crate) type Handover = Result<Option<ClaimedTask>, PortError>;

impl PostgresStore {
    /// [`prismq_domain::ports::TaskQueue::complete_and_claim`]: one statement completes the
    /// attempt and, when it did, claims and starts the next task of the target the claim
    /// would pick (read first, without writing, when several types or levels compete).
    ///
    /// The two calls of the port's default run instead where the statement cannot answer
    /// alone: a claim of one task (`only`), nothing queued for the worker, a target taken
    /// meanwhile or a lapsed lease waiting (the statement then only completes, and the claim
    /// that follows rescues the lease first), or a statement that failed (it wrote nothing).
    pub(crate) async fn complete_and_claim_task(
        &self,
        lease: &Lease,
        summary: Option<Value>,
        next: &ClaimRequest,
    ) -> Result<Handover, PortError> {
        if next.filter.only.is_some() {
            return self.handover_in_two(lease, summary, next).await;
        }
        let now = self.now_ms();
        let expires = now.saturating_add(ms(next.lease_for));
        let (wanted, region) = scope(next);
        let client = self.client().await?;
        let types = candidate_types(&client, &wanted).await?;
        let target = if types.is_empty() {
            None
        } else {
            self.target(&client, next.strategy, &types, now, &region)
                .await?
        };
        let Some((task_type, level)) = target else {
            drop(client);
            return self.handover_in_two(lease, summary, next).await;
        };
        let details = summary.as_ref().filter(|v| !v.is_null());
        let token = new_token();
        let (worker, strategy) = (next.worker.as_str(), next.strategy.as_str());
        let sql = handover_statement(next.strategy, level.is_some());
        let mut args: Vec<&(dyn ToSql + Sync)> = vec![
            &task_type,
            &now,
            &region,
            &worker,
            &expires,
            &token.0,
            &strategy,
            &wanted,
            &lease.task_id.0,
            &lease.token.0,
            &summary,
            &details,
        ];
        if let Some(p) = &level {
            args.push(p);
        }
        let row = match client.prepare_cached(sql).await {
            Ok(stmt) => client.query_one(&stmt, &args).await,
            Err(e) => Err(e),
        };
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                // The statement wrote nothing: the two calls decide (the completion's error is
                // theirs to give, with its own retry of a busy server).
                tracing::debug!(error = %e, "complete-and-claim statement failed; two calls instead");
                drop(client);
                return self.handover_in_two(lease, summary, next).await;
            }
        };
        // The last column counts the attempts completed.
        let completed: i64 = get(&row, row.len() - 1)?;
        if completed == 0 {
            return Err(PortError::LeaseLost {
                task_id: lease.task_id.0,
            });
        }
        if get::<Option<i64>>(&row, 0)?.is_some() {
            let mut c = claimed(&row, next, token, expires)?;
            c.task.status = TaskStatus::Running;
            return Ok(Ok(Some(c)));
        }
        // Completed; the target was taken meanwhile or a lapsed lease comes first.
        drop(client);
        Ok(self.claim_task(next, true).await)
    }

    /// The port's default: complete, then claim and start.
    async fn handover_in_two(
        &self,
        lease: &Lease,
        summary: Option<Value>,
        next: &ClaimRequest,
    ) -> Result<Handover, PortError> {
        self.complete_attempt(lease, summary).await?;
        Ok(self.claim_task(next, true).await)
    }
}
