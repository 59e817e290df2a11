//! Enqueueing, reading, listing, operator actions (cancel, retry, purge) and stats.

use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::Duration;

use prismq_domain::ports::{
    check_batch_keys, idempotency_conflict, ClaimRequest, ClaimedTask, Enqueued, FailOutcome,
    Failure, Handover, HandoverAnswer, LogLevel, QueueStats, RecentActivity, StatusCount,
    TaskEvent, TaskFilter, TaskQueue,
};
use prismq_domain::task::{Lease, NewTask, Task, TaskId, TaskType};
use prismq_domain::{PortError, TaskStatus, Timestamp, ValidationError};

use crate::codec::{status, status_code, task_and_type_from_row, task_from_row, TASK_COLUMNS};
use crate::error::map_err;
use crate::logs::{insert_log, write_pending};
use crate::SqliteStore;

/// A new task's `updated_at` stays NULL until it first changes (schema v15): it reads as its
/// `created_at` ([`TASK_COLUMNS`]).
const INSERT_TASK: &str = "INSERT INTO task_queue
    (type_id, params, priority, status, attempts, max_attempts, run_after, idempotency_key, compatibility, region, created_at)
    VALUES (?1, ?2, ?3, 0 /* queued */, 0, ?4, ?5, ?6, ?7, ?9, ?8)
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING";

/// Rows per multi-row insert of tasks without an idempotency key, largest first: a batch's
/// run of such tasks is inserted by statements of these sizes (a few cached statements).
/// One statement of many rows pays SQLite's per-statement work once (the AUTOINCREMENT
/// counter in `sqlite_sequence` among it) instead of once per task.
const ROWS_PER_INSERT: [usize; 4] = [64, 16, 4, 1];

/// The multi-row insert of `k` tasks without an idempotency key (`k` one of
/// [`ROWS_PER_INSERT`]): eight parameters a row, in [`SqliteStore::insert_run`]'s order, and
/// `updated_at` left NULL as [`INSERT_TASK`] leaves it. No `ON CONFLICT`: only a key can
/// conflict.
fn insert_rows_sql(k: usize) -> &'static str {
    static SQL: OnceLock<Vec<String>> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        ROWS_PER_INSERT
            .iter()
            .map(|&k| {
                let row = "(?, ?, ?, 0, 0, ?, ?, NULL, ?, ?, ?)";
                format!(
                    "INSERT INTO task_queue (type_id, params, priority, status, attempts, max_attempts, run_after,
                     idempotency_key, compatibility, region, created_at) VALUES {}",
                    vec![row; k].join(", ")
                )
            })
            .collect()
    });
    let at = ROWS_PER_INSERT
        .iter()
        .position(|&n| n == k)
        .unwrap_or(ROWS_PER_INSERT.len() - 1);
    &all[at]
}

/// Adds to one (type, status) count. Since schema v11 the code that inserts tasks keeps their
/// counts (one upsert per type and status per transaction, [`NewCounts`]), and since v14 the
/// code that changes a status moves its task's count ([`move_count`]); a trigger keeps them
/// on delete.
const ADD_COUNT: &str = "INSERT INTO queue_counts (type_id, status, n) VALUES (?1, ?2, ?3)
    ON CONFLICT (status, type_id) DO UPDATE SET n = n + excluded.n";

/// One task of type `?1` leaves status `?2` for status `?3`: both counts in one statement.
const MOVE_COUNT: &str =
    "INSERT INTO queue_counts (type_id, status, n) VALUES (?1, ?2, -1), (?1, ?3, 1)
    ON CONFLICT (status, type_id) DO UPDATE SET n = n + excluded.n";

/// Moves one task's count from status code `from` to `to` (type `type_id`, interned), in the
/// transaction that changes its status. Every statement that sets `task_queue.status` is
/// followed by this (schema v14 has no status-change trigger); a status left as it was moves
/// nothing.
pub(crate) fn move_count(
    tx: &Transaction<'_>,
    type_id: i64,
    from: i64,
    to: i64,
) -> Result<(), PortError> {
    if from == to {
        return Ok(());
    }
    tx.prepare_cached(MOVE_COUNT)
        .and_then(|mut s| s.execute(params![type_id, from, to]))
        .map_err(map_err)?;
    Ok(())
}

/// The tasks one transaction inserted, per (type, status), to add to `queue_counts` before it
/// commits: every path that inserts task rows tallies them here and calls [`NewCounts::write`]
/// in the same transaction (schema v11 has no insert trigger). It also keeps the interned ids
/// of the types the transaction wrote ([`NewCounts::type_id`]), so a batch looks each up once.
#[derive(Debug, Default)]
pub(crate) struct NewCounts {
    /// (type id, status code, tasks)
    counts: Vec<(i64, i64, i64)>,
    /// (type name, type id)
    ids: Vec<(String, i64)>,
}

impl NewCounts {
    /// The interned id of `task_type`, added to `task_types` on its first use.
    pub(crate) fn type_id(
        &mut self,
        tx: &Transaction<'_>,
        task_type: &str,
    ) -> rusqlite::Result<i64> {
        if let Some((_, id)) = self.ids.iter().find(|(t, _)| t == task_type) {
            return Ok(*id);
        }
        let id = crate::types::intern(tx, task_type)?;
        self.ids.push((task_type.to_owned(), id));
        Ok(id)
    }

    /// One more task of type `type_id` in `status`.
    pub(crate) fn add(&mut self, type_id: i64, status: TaskStatus) {
        let code = status_code(status);
        match self
            .counts
            .iter_mut()
            .find(|(t, s, _)| *s == code && *t == type_id)
        {
            Some((_, _, n)) => *n += 1,
            None => self.counts.push((type_id, code, 1)),
        }
    }

    /// Adds the tally to `queue_counts` inside `tx`.
    pub(crate) fn write(self, tx: &Transaction<'_>) -> Result<(), PortError> {
        self.write_rows(tx).map_err(map_err)
    }

    /// [`NewCounts::write`] with SQLite's error.
    pub(crate) fn write_rows(self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let mut stmt = tx.prepare_cached(ADD_COUNT)?;
        for (t, s, n) in &self.counts {
            stmt.execute(params![t, s, n])?;
        }
        Ok(())
    }
}

/// Recounts `queue_counts` from the rows (one scan of the queue), for bulk paths that insert
/// rows by table, such as a dump's load.
pub(crate) const RECOUNT: &str = "DELETE FROM queue_counts;
    INSERT INTO queue_counts (type_id, status, n)
    SELECT type_id, status, count(*) FROM task_queue GROUP BY status, type_id;";

/// Counts per (type, status), from `queue_counts` (a handful of rows).
pub(crate) const STATS_COUNTS: &str = "SELECT t.name, c.status, c.n, c.type_id
    FROM queue_counts c JOIN task_types t ON t.id = c.type_id WHERE c.n > 0";
/// The oldest eligible queued task of one type and one region (`?3`, NULL for none): one
/// index probe.
pub(crate) const STATS_OLDEST: &str =
    "SELECT min(run_after) FROM task_queue INDEXED BY ix_queue_claim_time
     WHERE status = 0 /* queued */ AND type_id = ?1 AND region IS ?3 AND run_after <= ?2";
/// The next region after `?2` that queued tasks of one type require: one index probe, so the
/// regions of a type are walked one key at a time (a loose index scan), never entry by entry.
pub(crate) const STATS_NEXT_REGION: &str =
    "SELECT region FROM task_queue INDEXED BY ix_queue_claim_time
     WHERE status = 0 /* queued */ AND type_id = ?1 AND region > ?2 ORDER BY region LIMIT 1";

/// Tasks in one final status that finished at or after an instant (`ix_queue_finished` range).
pub(crate) const STATS_FINISHED: &str =
    "SELECT count(*) FROM task_queue INDEXED BY ix_queue_finished
     WHERE status = ?1 AND finished_at >= ?2 AND finished_at IS NOT NULL";

pub(crate) struct Prepared {
    task_type: String,
    params: String,
    priority: u8,
    max_attempts: u32,
    run_after: Option<i64>,
    key: Option<String>,
    /// `None` for a task that requires nothing (stored as NULL since schema v12).
    compatibility: Option<String>,
    /// `compatibility`'s region, for the `region` column the claim indexes key on.
    region: Option<String>,
}

impl SqliteStore {
    pub(crate) fn prepare_new(&self, task: &NewTask) -> Result<Prepared, ValidationError> {
        let params = task.validated_params(self.inner.options.max_params_bytes)?;
        // `validate` accepts a region in any case and with spaces around it; what is stored
        // is the normalised code (`Compatibility::with_region`), the one a claim compares
        // with its worker's uppercased region and the column's CHECK accepts.
        let compatibility = task.compatibility.normalised()?;
        Ok(Prepared {
            task_type: task.task_type.as_str().to_owned(),
            params,
            priority: task.priority.get(),
            max_attempts: task
                .max_attempts
                .unwrap_or(self.retry_policy().max_attempts),
            run_after: task.run_after.map(|t| t.as_millisecond()),
            key: task.idempotency_key.clone(),
            compatibility: serde_json::to_string(&compatibility)
                .ok()
                .filter(|c| c != "{}"),
            region: compatibility.region,
        })
    }

    /// Inserts one prepared task, tallied in `counts` (which the caller writes before its
    /// transaction commits), or resolves its idempotency key: the existing task when it has
    /// the same type and params, `Invalid` (nothing written) when it has others.
    pub(crate) fn insert_prepared(
        tx: &Transaction<'_>,
        p: &Prepared,
        task: &NewTask,
        now: i64,
        counts: &mut NewCounts,
    ) -> Result<Enqueued, PortError> {
        // No `RETURNING`: SQLite builds a temporary table for each statement that returns
        // rows; the new row's id is the connection's last insert rowid, and nothing inserted
        // means the key was taken.
        let type_id = counts.type_id(tx, &p.task_type).map_err(map_err)?;
        if p.key.is_none() {
            let mut ids = Self::insert_run(tx, std::slice::from_ref(p), now, counts)?;
            return Ok(ids.remove(0));
        }
        let mut stmt = tx.prepare_cached(INSERT_TASK).map_err(map_err)?;
        let inserted = stmt
            .execute(params![
                type_id,
                p.params,
                p.priority,
                p.max_attempts,
                p.run_after.unwrap_or(now),
                p.key,
                p.compatibility,
                now,
                p.region
            ])
            .map_err(map_err)?;
        match inserted {
            1 => {
                counts.add(type_id, TaskStatus::Queued);
                Ok(Enqueued {
                    id: TaskId(tx.last_insert_rowid()),
                    duplicate: false,
                })
            }
            _ => {
                let (id, existing_type, existing_params): (i64, String, String) = tx
                    .prepare_cached(concat!(
                        "SELECT id, ",
                        crate::types::type_name!(),
                        ", params FROM task_queue WHERE idempotency_key = ?1"
                    ))
                    .and_then(|mut s| {
                        s.query_row([&p.key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    })
                    .map_err(map_err)?;
                let existing_params: Value =
                    serde_json::from_str(&existing_params).unwrap_or(Value::Null);
                if let Some(conflict) =
                    idempotency_conflict(task, TaskId(id), &existing_type, &existing_params)
                {
                    return Err(conflict.into());
                }
                Ok(Enqueued {
                    id: TaskId(id),
                    duplicate: true,
                })
            }
        }
    }

    /// Inserts tasks without an idempotency key, in order, by multi-row inserts of
    /// [`ROWS_PER_INSERT`] rows, tallied in `counts`. The ids of one statement's rows are the
    /// `k` ids up to the connection's last insert rowid: AUTOINCREMENT gives each new row one
    /// more than the largest id the table ever had, and the transaction holds the write lock.
    pub(crate) fn insert_run(
        tx: &Transaction<'_>,
        run: &[Prepared],
        now: i64,
        counts: &mut NewCounts,
    ) -> Result<Vec<Enqueued>, PortError> {
        let mut out = Vec::with_capacity(run.len());
        let mut rest = run;
        while !rest.is_empty() {
            let k = ROWS_PER_INSERT
                .into_iter()
                .find(|&n| n <= rest.len())
                .unwrap_or(1);
            let (these, after) = rest.split_at(k);
            let mut stmt = tx.prepare_cached(insert_rows_sql(k)).map_err(map_err)?;
            let mut at = 1;
            for p in these {
                let type_id = counts.type_id(tx, &p.task_type).map_err(map_err)?;
                let values: [&dyn rusqlite::ToSql; 8] = [
                    &type_id,
                    &p.params,
                    &p.priority,
                    &p.max_attempts,
                    &p.run_after.unwrap_or(now),
                    &p.compatibility,
                    &p.region,
                    &now,
                ];
                for v in values {
                    stmt.raw_bind_parameter(at, v).map_err(map_err)?;
                    at += 1;
                }
                counts.add(type_id, TaskStatus::Queued);
            }
            let inserted = stmt.raw_execute().map_err(map_err)?;
            if inserted != k {
                return Err(PortError::Unavailable(format!(
                    "inserting {k} tasks changed {inserted} rows"
                )));
            }
            let last = tx.last_insert_rowid();
            out.extend((0..k as i64).rev().map(|back| Enqueued {
                id: TaskId(last - back),
                duplicate: false,
            }));
            rest = after;
        }
        Ok(out)
    }

    /// Blocking [`TaskQueue::enqueue`].
    ///
    /// # Errors
    /// As the port.
    pub fn enqueue_blocking(&self, task: &NewTask) -> Result<Enqueued, PortError> {
        let p = self.prepare_new(task)?;
        let now = self.now_ms();
        self.write(|tx| {
            let mut counts = NewCounts::default();
            let e = Self::insert_prepared(tx, &p, task, now, &mut counts)?;
            counts.write(tx)?;
            Ok(e)
        })
    }

    /// Blocking [`TaskQueue::enqueue_batch`].
    ///
    /// # Errors
    /// As the port.
    pub fn enqueue_batch_blocking(&self, tasks: &[NewTask]) -> Result<Vec<Enqueued>, PortError> {
        let prepared = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                self.prepare_new(t)
                    .map_err(|e| e.within(&format!("tasks[{i}]")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        check_batch_keys(tasks)?;
        let now = self.now_ms();
        self.write(|tx| {
            let mut counts = NewCounts::default();
            let mut out = Vec::with_capacity(tasks.len());
            let mut i = 0;
            while i < prepared.len() {
                // A run of tasks without a key goes in by multi-row inserts; a task with one
                // alone, since its key may resolve to a task already there.
                let run = prepared[i..].iter().take_while(|p| p.key.is_none()).count();
                if run > 0 {
                    out.extend(Self::insert_run(
                        tx,
                        &prepared[i..i + run],
                        now,
                        &mut counts,
                    )?);
                    i += run;
                    continue;
                }
                let e = Self::insert_prepared(tx, &prepared[i], &tasks[i], now, &mut counts)
                    .map_err(|e| match e {
                        PortError::Invalid(v) => {
                            PortError::Invalid(v.within(&format!("tasks[{i}]")))
                        }
                        other => other,
                    })?;
                out.push(e);
                i += 1;
            }
            counts.write(tx)?;
            Ok(out)
        })
    }

    /// Blocking [`TaskQueue::get`].
    ///
    /// # Errors
    /// As the port.
    pub fn get_blocking(&self, id: TaskId) -> Result<Task, PortError> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {TASK_COLUMNS} FROM task_queue WHERE id = ?1"
            ))
            .and_then(|mut s| s.query_row([id.0], task_from_row).optional())
            .map_err(map_err)?
            .ok_or_else(|| PortError::NotFound(format!("task {id}")))
        })
    }

    fn list_blocking(&self, filter: &TaskFilter) -> Result<Vec<Task>, PortError> {
        prismq_domain::ports::check_page_limit(filter.limit)?;
        let (sql, args) = list_statement(filter, TASK_COLUMNS);
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql).map_err(map_err)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args.iter()), task_from_row)
                .map_err(map_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
        })
    }

    fn status_of(tx: &Transaction<'_>, id: TaskId) -> Result<TaskStatus, PortError> {
        let s: Option<i64> = tx
            .prepare_cached("SELECT status FROM task_queue WHERE id = ?1")
            .and_then(|mut s| s.query_row([id.0], |r| r.get(0)).optional())
            .map_err(map_err)?;
        let s = s.ok_or_else(|| PortError::NotFound(format!("task {id}")))?;
        status(0, s).map_err(map_err)
    }

    fn cancel_blocking(&self, id: TaskId) -> Result<Task, PortError> {
        let now = self.now_ms();
        self.write(|tx| {
            let status = Self::status_of(tx, id)?;
            if !status.can_transition(TaskStatus::Cancelled) {
                return Err(PortError::InvalidState { task_id: id.0, status, action: "cancel" });
            }
            write_pending(tx, id)?;
            let (task, type_id) = tx
                .prepare_cached(&format!(
                    "UPDATE task_queue SET status = 5 /* cancelled */, finished_at = ?2, updated_at = ?2,
                     lease_expires_at = NULL, lease_token = NULL WHERE id = ?1 RETURNING {TASK_COLUMNS}, type_id"
                ))
                .and_then(|mut s| s.query_row(params![id.0, now], task_and_type_from_row))
                .map_err(map_err)?;
            move_count(tx, type_id, status_code(status), status_code(TaskStatus::Cancelled))?;
            insert_log(tx, id, now, LogLevel::Info, TaskEvent::Cancelled, &format!("cancelled while {status}"), &Value::Null)?;
            Ok(task)
        })
    }

    fn retry_blocking(&self, id: TaskId) -> Result<Task, PortError> {
        let now = self.now_ms();
        self.write(|tx| {
            let status = Self::status_of(tx, id)?;
            if status != TaskStatus::Failed {
                return Err(PortError::InvalidState { task_id: id.0, status, action: "retry (only failed tasks can be retried)" });
            }
            let (task, type_id) = tx
                .prepare_cached(&format!(
                    "UPDATE task_queue SET status = 0 /* queued */, attempts = 0, lapses = 0, run_after = ?2, updated_at = ?2,
                     finished_at = NULL, lease_expires_at = NULL, lease_token = NULL WHERE id = ?1 RETURNING {TASK_COLUMNS}, type_id"
                ))
                .and_then(|mut s| s.query_row(params![id.0, now], task_and_type_from_row))
                .map_err(map_err)?;
            move_count(tx, type_id, status_code(TaskStatus::Failed), status_code(TaskStatus::Queued))?;
            insert_log(tx, id, now, LogLevel::Info, TaskEvent::Requeued, "dead letter sent back to the queue", &Value::Null)?;
            Ok(task)
        })
    }

    fn purge_blocking(
        &self,
        status: TaskStatus,
        before: Timestamp,
        limit: u32,
    ) -> Result<u64, PortError> {
        if !status.is_final() {
            return Err(ValidationError::new(
                "status",
                format!("{status} is not a final status"),
                "completed, failed, cancelled",
            )
            .into());
        }
        prismq_domain::ports::check_page_limit(limit)?;
        self.write(|tx| {
            let n = tx
                .prepare_cached(
                    "DELETE FROM task_queue WHERE id IN (
                        SELECT id FROM task_queue WHERE status = ?1 AND finished_at < ?2 LIMIT ?3)",
                )
                .and_then(|mut s| {
                    s.execute(params![status_code(status), before.as_millisecond(), limit])
                })
                .map_err(map_err)?;
            Ok(n as u64)
        })
    }

    /// Blocking [`TaskQueue::stats`]: counts from `queue_counts` (kept exact by the code that
    /// inserts tasks or changes their status, and by the delete trigger), the
    /// oldest eligible task by one index probe per queued type.
    ///
    /// # Errors
    /// As the port.
    pub fn stats_blocking(&self) -> Result<QueueStats, PortError> {
        let now = self.now_ms();
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(STATS_COUNTS).map_err(map_err)?;
            let rows = stmt
                .query_map([], |r| {
                    let t: String = r.get(0)?;
                    Ok((
                        t,
                        status(1, r.get(1)?)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                })
                .map_err(map_err)?;
            let mut counts = Vec::new();
            // The interned ids of the types with queued tasks, for the index probes.
            let mut queued = Vec::new();
            for row in rows {
                let (t, status, n, type_id) = row.map_err(map_err)?;
                let task_type = TaskType::new(t)
                    .map_err(|e| PortError::Unavailable(format!("corrupt queue_counts: {e}")))?;
                if status == TaskStatus::Queued {
                    queued.push(type_id);
                }
                counts.push(StatusCount {
                    task_type,
                    status,
                    count: n as u64,
                });
            }
            counts.sort_by(|a, b| (&a.task_type, a.status).cmp(&(&b.task_type, b.status)));
            let mut oldest: Option<i64> = None;
            let mut probe = conn.prepare_cached(STATS_OLDEST).map_err(map_err)?;
            let mut next_region = conn.prepare_cached(STATS_NEXT_REGION).map_err(map_err)?;
            for t in queued {
                // Tasks without a region first, then each region the type's tasks require.
                let mut region: Option<String> = None;
                loop {
                    let m: Option<i64> = probe
                        .query_row(params![t, now, region], |r| r.get(0))
                        .map_err(map_err)?;
                    oldest = match (oldest, m) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    let after = region.take().unwrap_or_default();
                    region = next_region
                        .query_row(params![t, after], |r| r.get(0))
                        .optional()
                        .map_err(map_err)?;
                    if region.is_none() {
                        break;
                    }
                }
            }
            let oldest_eligible = oldest
                .map(|ms| crate::codec::ts(0, ms))
                .transpose()
                .map_err(map_err)?;
            let mut finished = conn.prepare_cached(STATS_FINISHED).map_err(map_err)?;
            let mut count = |status: TaskStatus, since: i64| -> Result<u64, PortError> {
                let n: i64 = finished
                    .query_row(params![status_code(status), since], |r| r.get(0))
                    .map_err(map_err)?;
                Ok(n.max(0) as u64)
            };
            let recent = RecentActivity {
                completed_last_minute: count(TaskStatus::Completed, now - 60_000)?,
                completed_last_hour: count(TaskStatus::Completed, now - 3_600_000)?,
                failed_last_hour: count(TaskStatus::Failed, now - 3_600_000)?,
            };
            Ok(QueueStats {
                counts,
                oldest_eligible,
                recent,
            })
        })
    }
}

#[async_trait]
impl TaskQueue for SqliteStore {
    async fn enqueue(&self, task: NewTask) -> Result<Enqueued, PortError> {
        self.blocking(move |s| s.enqueue_blocking(&task)).await
    }

    async fn enqueue_batch(&self, tasks: Vec<NewTask>) -> Result<Vec<Enqueued>, PortError> {
        self.blocking(move |s| s.enqueue_batch_blocking(&tasks))
            .await
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Option<ClaimedTask>, PortError> {
        self.claim_async(request, false).await
    }

    async fn claim_and_start(
        &self,
        request: &ClaimRequest,
    ) -> Result<Option<ClaimedTask>, PortError> {
        self.claim_async(request, true).await
    }

    async fn claim_and_start_many(
        &self,
        request: &ClaimRequest,
        max: usize,
    ) -> Result<Vec<ClaimedTask>, PortError> {
        self.claim_and_start_many_async(request, max).await
    }

    async fn renew_lease(&self, lease: &Lease, lease_for: Duration) -> Result<Lease, PortError> {
        let lease = lease.clone();
        self.blocking(move |s| s.renew_blocking(&lease, lease_for))
            .await
    }

    async fn start(&self, lease: &Lease) -> Result<(), PortError> {
        self.start_async(lease).await
    }

    async fn complete(&self, lease: &Lease, summary: Option<Value>) -> Result<(), PortError> {
        self.complete_async(lease, summary.as_ref()).await
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
        self.complete_and_claim_async(lease, summary.as_ref(), next)
            .await
    }

    fn completes_in_batches(&self) -> bool {
        true
    }

    async fn complete_and_claim_many(
        &self,
        items: &[Handover],
    ) -> Result<Vec<HandoverAnswer>, PortError> {
        self.complete_and_claim_many_async(items).await
    }

    async fn fail(&self, lease: &Lease, failure: &Failure) -> Result<FailOutcome, PortError> {
        let (lease, failure) = (lease.clone(), failure.clone());
        self.blocking(move |s| s.fail_blocking(&lease, &failure))
            .await
    }

    async fn release(&self, lease: &Lease) -> Result<(), PortError> {
        let lease = lease.clone();
        self.blocking(move |s| s.release_blocking(&lease)).await
    }

    async fn cancel(&self, id: TaskId) -> Result<Task, PortError> {
        self.blocking(move |s| s.cancel_blocking(id)).await
    }

    async fn retry(&self, id: TaskId) -> Result<Task, PortError> {
        self.blocking(move |s| s.retry_blocking(id)).await
    }

    async fn get(&self, id: TaskId) -> Result<Task, PortError> {
        self.blocking(move |s| s.get_blocking(id)).await
    }

    async fn list(&self, filter: &TaskFilter) -> Result<Vec<Task>, PortError> {
        let filter = filter.clone();
        self.blocking(move |s| s.list_blocking(&filter)).await
    }

    async fn purge(
        &self,
        status: TaskStatus,
        before: Timestamp,
        limit: u32,
    ) -> Result<u64, PortError> {
        self.blocking(move |s| s.purge_blocking(status, before, limit))
            .await
    }

    async fn stats(&self) -> Result<QueueStats, PortError> {
        self.blocking(|s| s.stats_blocking()).await
    }
}

/// Details attached to a failure log entry.
pub(crate) fn failure_details(failure: &Failure, attempts: u32) -> Value {
    json!({ "class": failure.class, "attempt": attempts })
}

/// The statement [`TaskQueue::list`](prismq_domain::ports::TaskQueue::list) runs for
/// `filter`, selecting `columns`, with its arguments: `… ORDER BY id DESC LIMIT n`, a walk of
/// ids down from the newest (or from the keyset bound) that stops after `n` matches. An
/// in-flight status (`claimed`, `running`) is read from `ix_queue_lease`, which holds only
/// in-flight tasks (as many as the workers run), and sorts those: walking ids for a status so
/// few tasks have would read most of the table.
pub fn list_statement(filter: &TaskFilter, columns: &str) -> (String, Vec<SqlValue>) {
    let in_flight = matches!(
        filter.status,
        Some(TaskStatus::Claimed | TaskStatus::Running)
    );
    let mut sql = if in_flight {
        format!(
            "SELECT {columns} FROM task_queue INDEXED BY ix_queue_lease \
             WHERE status IN (1, 2) /* claimed, running */"
        )
    } else {
        format!("SELECT {columns} FROM task_queue WHERE 1 = 1")
    };
    let mut args: Vec<SqlValue> = Vec::new();
    if let Some(st) = filter.status {
        sql.push_str(" AND status = ?");
        args.push(SqlValue::Integer(status_code(st)));
    }
    if let Some(t) = &filter.task_type {
        sql.push_str(" AND type_id = (SELECT id FROM task_types WHERE name = ?)");
        args.push(SqlValue::Text(t.as_str().into()));
    }
    if let Some(id) = filter.before_id {
        sql.push_str(" AND id < ?");
        args.push(SqlValue::Integer(id.0));
    }
    if let Some(before) = filter.finished_before {
        sql.push_str(" AND finished_at < ?");
        args.push(SqlValue::Integer(before.as_millisecond()));
    }
    if let Some(prefix) = &filter.key_prefix {
        // A range of the idempotency index (keys compare bytewise), then the prefix test
        // itself, which also holds where the range has no upper bound.
        sql.push_str(" AND idempotency_key >= ? AND substr(idempotency_key, 1, length(?)) = ?");
        args.push(SqlValue::Text(prefix.clone()));
        args.push(SqlValue::Text(prefix.clone()));
        args.push(SqlValue::Text(prefix.clone()));
        if let Some(upper) = prismq_domain::ports::prefix_upper_bound(prefix) {
            sql.push_str(" AND idempotency_key < ?");
            args.push(SqlValue::Text(upper));
        }
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    args.push(SqlValue::Integer(i64::from(filter.limit)));
    (sql, args)
}
