//! Enqueueing, reading, listing, operator actions (cancel, retry, purge) and stats.

use async_trait::async_trait;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use tokio_postgres::types::ToSql;

use prismq_domain::ports::{
    check_batch_keys, idempotency_conflict, ClaimRequest, ClaimedTask, Enqueued, FailOutcome,
    Failure, Handover, HandoverAnswer, LogLevel, QueueStats, RecentActivity, StatusCount,
    TaskEvent, TaskFilter, TaskQueue,
};
use prismq_domain::task::{Lease, NewTask, Task, TaskId, TaskType};
use prismq_domain::{PortError, TaskStatus, Timestamp, ValidationError};

use crate::codec::{get, status, task_from_row, ts, TASK_COLUMNS};
use crate::error::{corrupt, map_err};
use crate::logs::insert_log;
use crate::{in_tx, PostgresStore};

/// Inserts a batch from parallel arrays, in input order; a repeated idempotency key is
/// skipped (`DO NOTHING`). Returns the inserted ids with their keys.
const INSERT_TASKS: &str = "INSERT INTO task_queue
    (type, params, priority, status, attempts, max_attempts, run_after, idempotency_key, compatibility, created_at, updated_at)
    SELECT t, p, pr, 'queued', 0, ma, ra, k, c, $8, $8
    FROM unnest($1::text[], $2::jsonb[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::jsonb[])
         WITH ORDINALITY AS x(t, p, pr, ma, ra, k, c, ord)
    ORDER BY ord
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, idempotency_key";

#[derive(Default)]
struct Columns {
    types: Vec<String>,
    params: Vec<Value>,
    priorities: Vec<i64>,
    max_attempts: Vec<i64>,
    run_after: Vec<i64>,
    keys: Vec<Option<String>>,
    compat: Vec<Value>,
}

impl PostgresStore {
    /// Validates every task (errors name `tasks[i].field` in a batch) and lays them out as
    /// columns.
    fn columns(&self, tasks: &[NewTask], now: i64, batch: bool) -> Result<Columns, PortError> {
        let max = self.inner.options.max_params_bytes;
        for (i, t) in tasks.iter().enumerate() {
            t.validate(max).map_err(|e| {
                if batch {
                    e.within(&format!("tasks[{i}]"))
                } else {
                    e
                }
            })?;
        }
        let mut c = Columns::default();
        for t in tasks {
            c.types.push(t.task_type.as_str().to_owned());
            c.params.push(t.params.clone());
            c.priorities.push(i64::from(t.priority.get()));
            c.max_attempts.push(i64::from(
                t.max_attempts.unwrap_or(self.retry_policy().max_attempts),
            ));
            c.run_after
                .push(t.run_after.map_or(now, |r| r.as_millisecond()));
            c.keys.push(t.idempotency_key.clone());
            // Validated above; stored normalised (` gb` as `GB`), the form the generated
            // `region` column must hold for a claim to find the task.
            let compatibility = t.compatibility.normalised().map_err(PortError::from)?;
            c.compat.push(
                serde_json::to_value(&compatibility).map_err(|e| corrupt("compatibility", e))?,
            );
        }
        Ok(c)
    }

    async fn insert_all(
        &self,
        tasks: &[NewTask],
        single: bool,
    ) -> Result<Vec<Enqueued>, PortError> {
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now_ms();
        let c = self.columns(tasks, now, !single)?;
        check_batch_keys(tasks)?;
        let has_keys = c.keys.iter().any(Option::is_some);
        in_tx!(self, |tx| {
            async {
            let stmt = tx.prepare_cached(INSERT_TASKS).await.map_err(map_err)?;
            let rows = tx
                .query(
                    &stmt,
                    &[&c.types, &c.params, &c.priorities, &c.max_attempts, &c.run_after, &c.keys, &c.compat, &now],
                )
                .await
                .map_err(map_err)?;
            let mut inserted: Vec<(i64, Option<String>)> = rows
                .iter()
                .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
                .collect::<Result<_, PortError>>()?;
            inserted.sort_unstable_by_key(|(id, _)| *id);
            let mut by_key: HashMap<String, i64> = HashMap::new();
            let mut keyless = Vec::new();
            for (id, key) in inserted {
                match key {
                    Some(k) => {
                        by_key.insert(k, id);
                    }
                    None => keyless.push(id),
                }
            }
            // Each key's task: (id, type, params), to tell a true duplicate from a reuse of
            // the key with another type or params.
            let mut existing: HashMap<String, (i64, String, Value)> = HashMap::new();
            if has_keys {
                let missing: Vec<&String> = c
                    .keys
                    .iter()
                    .flatten()
                    .filter(|k| !by_key.contains_key(*k))
                    .collect();
                if !missing.is_empty() {
                    let rows = tx
                        .query(
                            "SELECT idempotency_key, id, type, params FROM task_queue WHERE idempotency_key = ANY($1)",
                            &[&missing],
                        )
                        .await
                        .map_err(map_err)?;
                    for r in &rows {
                        existing.insert(get(r, 0)?, (get(r, 1)?, get(r, 2)?, get(r, 3)?));
                    }
                }
            }
            let mut keyless = keyless.into_iter();
            let mut out = Vec::with_capacity(c.keys.len());
            for (i, (key, task)) in c.keys.iter().zip(tasks).enumerate() {
                let e = match key {
                    None => Enqueued {
                        id: TaskId(keyless.next().ok_or_else(|| corrupt("batch insert", "a row is missing"))?),
                        duplicate: false,
                    },
                    Some(k) => match by_key.remove(k) {
                        Some(id) => {
                            existing.insert(
                                k.clone(),
                                (id, task.task_type.as_str().to_owned(), task.params.clone()),
                            );
                            Enqueued { id: TaskId(id), duplicate: false }
                        }
                        None => {
                            let (id, ty, params) = existing.get(k).ok_or(PortError::Busy(
                                "the task with this idempotency key was removed concurrently".into(),
                            ))?;
                            if let Some(conflict) = idempotency_conflict(task, TaskId(*id), ty, params) {
                                return Err(PortError::Invalid(if single {
                                    conflict
                                } else {
                                    conflict.within(&format!("tasks[{i}]"))
                                }));
                            }
                            Enqueued { id: TaskId(*id), duplicate: true }
                        }
                    },
                };
                out.push(e);
            }
            Ok::<_, PortError>(out)
        }
        .await
        })
    }

    async fn list_tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>, PortError> {
        prismq_domain::ports::check_page_limit(filter.limit)?;
        let (sql, args) = list_statement(filter, TASK_COLUMNS);
        let args: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref() as _).collect();
        let client = self.client().await?;
        let stmt = client.prepare_cached(&sql).await.map_err(map_err)?;
        let rows = client.query(&stmt, &args).await.map_err(map_err)?;
        rows.iter().map(task_from_row).collect()
    }

    async fn operator_action(&self, id: TaskId, cancel: bool) -> Result<Task, PortError> {
        let now = self.now_ms();
        in_tx!(self, |tx| {
            async {
            let row = tx
                .query_opt("SELECT status FROM task_queue WHERE id = $1 FOR UPDATE", &[&id.0])
                .await
                .map_err(map_err)?
                .ok_or_else(|| PortError::NotFound(format!("task {id}")))?;
            let st = status(&get::<String>(&row, 0)?)?;
            let (sql, event, message) = if cancel {
                if !st.can_transition(TaskStatus::Cancelled) {
                    return Err(PortError::InvalidState { task_id: id.0, status: st, action: "cancel" });
                }
                (
                    format!("UPDATE task_queue SET status = 'cancelled', finished_at = $2, updated_at = $2,
                     lease_expires_at = NULL, lease_token = NULL WHERE id = $1 RETURNING {TASK_COLUMNS}"),
                    TaskEvent::Cancelled,
                    format!("cancelled while {st}"),
                )
            } else {
                if st != TaskStatus::Failed {
                    return Err(PortError::InvalidState {
                        task_id: id.0,
                        status: st,
                        action: "retry (only failed tasks can be retried)",
                    });
                }
                (
                    format!("UPDATE task_queue SET status = 'queued', attempts = 0, lapses = 0, run_after = $2, updated_at = $2,
                     finished_at = NULL, lease_expires_at = NULL, lease_token = NULL WHERE id = $1 RETURNING {TASK_COLUMNS}"),
                    TaskEvent::Requeued,
                    "dead letter sent back to the queue".to_owned(),
                )
            };
            let row = tx.query_one(&sql, &[&id.0, &now]).await.map_err(map_err)?;
            let task = task_from_row(&row)?;
            insert_log(&tx, id, now, LogLevel::Info, event, &message, &Value::Null).await?;
            Ok(task)
        }
        .await
        })
    }

    async fn purge_tasks(
        &self,
        st: TaskStatus,
        before: Timestamp,
        limit: u32,
    ) -> Result<u64, PortError> {
        if !st.is_final() {
            return Err(ValidationError::new(
                "status",
                format!("{st} is not a final status"),
                "completed, failed, cancelled",
            )
            .into());
        }
        prismq_domain::ports::check_page_limit(limit)?;
        let client = self.client().await?;
        let n = client
            .execute(
                "DELETE FROM task_queue WHERE id IN (
                    SELECT id FROM task_queue WHERE status = $1 AND finished_at < $2 LIMIT $3)",
                &[&st.as_str(), &before.as_millisecond(), &i64::from(limit)],
            )
            .await
            .map_err(map_err)?;
        Ok(n)
    }

    /// [`TaskQueue::stats`]: counts from the trigger-kept `queue_counts`, the oldest eligible
    /// task by one index probe per queued type.
    ///
    /// # Errors
    /// As the port.
    pub async fn queue_stats(&self) -> Result<QueueStats, PortError> {
        let now = self.now_ms();
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT type, status, sum(n)::bigint FROM queue_counts GROUP BY type, status HAVING sum(n) > 0",
                &[],
            )
            .await
            .map_err(map_err)?;
        let mut counts = Vec::new();
        let mut queued_types: Vec<String> = Vec::new();
        for r in &rows {
            let t: String = get(r, 0)?;
            let s: String = get(r, 1)?;
            let n: i64 = get(r, 2)?;
            let st = status(&s)?;
            if st == TaskStatus::Queued {
                queued_types.push(t.clone());
            }
            counts.push(StatusCount {
                task_type: TaskType::new(t).map_err(|e| corrupt("queue_counts type", e))?,
                status: st,
                count: u64::try_from(n).unwrap_or(0),
            });
        }
        counts.sort_by(|a, b| (&a.task_type, a.status).cmp(&(&b.task_type, b.status)));
        let oldest: Option<i64> = client
            .query_one(OLDEST_ELIGIBLE, &[&queued_types, &now])
            .await
            .map_err(map_err)?
            .try_get(0)
            .map_err(|e| corrupt("oldest", e))?;
        let recent_row = client
            .query_one(RECENT_FINISHES, &[&now])
            .await
            .map_err(map_err)?;
        let n = |i: usize| -> Result<u64, PortError> {
            Ok(u64::try_from(get::<i64>(&recent_row, i)?).unwrap_or(0))
        };
        let recent = RecentActivity {
            completed_last_minute: n(0)?,
            completed_last_hour: n(1)?,
            failed_last_hour: n(2)?,
        };
        Ok(QueueStats {
            counts,
            oldest_eligible: oldest.map(ts).transpose()?,
            recent,
        })
    }
}

/// Completions in the last minute and hour and dead letters in the last hour, each an
/// `ix_queue_finished` range.
pub(crate) const RECENT_FINISHES: &str = "SELECT
    (SELECT count(*) FROM task_queue WHERE status = 'completed' AND finished_at >= $1::bigint - 60000 AND finished_at IS NOT NULL),
    (SELECT count(*) FROM task_queue WHERE status = 'completed' AND finished_at >= $1::bigint - 3600000 AND finished_at IS NOT NULL),
    (SELECT count(*) FROM task_queue WHERE status = 'failed' AND finished_at >= $1::bigint - 3600000 AND finished_at IS NOT NULL)";

/// The oldest eligible queued task's `run_after`: one index probe per queued type.
pub(crate) const OLDEST_ELIGIBLE: &str =
    "SELECT min(h.run_after) FROM unnest($1::text[]) AS t(type)
    CROSS JOIN LATERAL (SELECT q.run_after FROM task_queue q
        WHERE q.status = 'queued' AND q.type = t.type AND q.run_after <= $2
        ORDER BY q.run_after LIMIT 1) h";

#[async_trait]
impl TaskQueue for PostgresStore {
    async fn enqueue(&self, task: NewTask) -> Result<Enqueued, PortError> {
        let mut out = self.insert_all(std::slice::from_ref(&task), true).await?;
        out.pop()
            .ok_or_else(|| corrupt("enqueue", "no row returned"))
    }

    async fn enqueue_batch(&self, tasks: Vec<NewTask>) -> Result<Vec<Enqueued>, PortError> {
        self.insert_all(&tasks, false).await
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Option<ClaimedTask>, PortError> {
        self.claim_task(request, false).await
    }

    async fn claim_and_start(
        &self,
        request: &ClaimRequest,
    ) -> Result<Option<ClaimedTask>, PortError> {
        self.claim_task(request, true).await
    }

    async fn renew_lease(&self, lease: &Lease, lease_for: Duration) -> Result<Lease, PortError> {
        self.renew(lease, lease_for).await
    }

    async fn start(&self, lease: &Lease) -> Result<(), PortError> {
        self.start_attempt(lease).await
    }

    async fn complete(&self, lease: &Lease, summary: Option<Value>) -> Result<(), PortError> {
        self.complete_attempt(lease, summary).await
    }

    fn completes_and_claims_at_once(&self) -> bool {
        true
    }

    async fn complete_and_claim(
        &self,
        lease: &Lease,
        summary: Option<Value>,
        next: &ClaimRequest,
    ) -> Result<Result<Option<ClaimedTask>, PortError>, PortError> {
        self.complete_and_claim_task(lease, summary, next).await
    }

    async fn claim_and_start_many(
        &self,
        request: &ClaimRequest,
        max: usize,
    ) -> Result<Vec<ClaimedTask>, PortError> {
        self.claim_and_start_batch(request, max).await
    }

    /// Completions gathered from several loops are still written one by one (each with its
    /// loop's claim, one statement each, concurrently on the pool's connections): gathering
    /// them behind one writer would serialise what the server runs in parallel. One loop's
    /// batch is two statements.
    fn claims_in_batches(&self) -> bool {
        true
    }

    async fn complete_and_claim_many(
        &self,
        items: &[Handover],
    ) -> Result<Vec<HandoverAnswer>, PortError> {
        self.complete_and_claim_batch(items).await
    }

    async fn fail(&self, lease: &Lease, failure: &Failure) -> Result<FailOutcome, PortError> {
        self.fail_attempt(lease, failure).await
    }

    async fn release(&self, lease: &Lease) -> Result<(), PortError> {
        self.release_attempt(lease).await
    }

    async fn cancel(&self, id: TaskId) -> Result<Task, PortError> {
        self.operator_action(id, true).await
    }

    async fn retry(&self, id: TaskId) -> Result<Task, PortError> {
        self.operator_action(id, false).await
    }

    async fn get(&self, id: TaskId) -> Result<Task, PortError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {TASK_COLUMNS} FROM task_queue WHERE id = $1"
            ))
            .await
            .map_err(map_err)?;
        let row = client.query_opt(&stmt, &[&id.0]).await.map_err(map_err)?;
        match row {
            Some(r) => task_from_row(&r),
            None => Err(PortError::NotFound(format!("task {id}"))),
        }
    }

    async fn list(&self, filter: &TaskFilter) -> Result<Vec<Task>, PortError> {
        self.list_tasks(filter).await
    }

    async fn purge(
        &self,
        status: TaskStatus,
        before: Timestamp,
        limit: u32,
    ) -> Result<u64, PortError> {
        self.purge_tasks(status, before, limit).await
    }

    async fn stats(&self) -> Result<QueueStats, PortError> {
        self.queue_stats().await
    }
}

/// Details attached to a failure log entry.
pub(crate) fn failure_details(failure: &Failure, attempts: u32) -> Value {
    json!({ "class": failure.class, "attempt": attempts })
}

/// A bound parameter of [`list_statement`].
pub type ListArg = Box<dyn ToSql + Sync + Send>;

/// The statement [`TaskQueue::list`](prismq_domain::ports::TaskQueue::list) runs for
/// `filter`, selecting `columns`, with its arguments: `… ORDER BY id DESC LIMIT n`. An
/// in-flight status (`claimed`, `running`) also states the literal `status IN ('claimed',
/// 'running')`, which lets the planner read `ix_queue_lease` (only in-flight tasks, as many as
/// the workers run) and sort those, instead of walking ids down from the newest past every
/// other task.
pub fn list_statement(filter: &TaskFilter, columns: &str) -> (String, Vec<ListArg>) {
    let mut sql = format!("SELECT {columns} FROM task_queue WHERE true");
    let mut args: Vec<ListArg> = Vec::new();
    if let Some(s) = filter.status {
        if matches!(s, TaskStatus::Claimed | TaskStatus::Running) {
            sql.push_str(" AND status IN ('claimed', 'running')");
        }
        args.push(Box::new(s.as_str().to_owned()));
        sql.push_str(&format!(" AND status = ${}", args.len()));
    }
    if let Some(t) = &filter.task_type {
        args.push(Box::new(t.as_str().to_owned()));
        sql.push_str(&format!(" AND type = ${}", args.len()));
    }
    if let Some(b) = filter.before_id {
        args.push(Box::new(b.0));
        sql.push_str(&format!(" AND id < ${}", args.len()));
    }
    if let Some(f) = filter.finished_before {
        args.push(Box::new(f.as_millisecond()));
        sql.push_str(&format!(" AND finished_at < ${}", args.len()));
    }
    if let Some(p) = &filter.key_prefix {
        args.push(Box::new(p.clone()));
        sql.push_str(&format!(
            " AND starts_with(idempotency_key, ${})",
            args.len()
        ));
    }
    args.push(Box::new(i64::from(filter.limit)));
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", args.len()));
    (sql, args)
}
