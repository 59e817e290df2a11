//! Claims and the fenced lifecycle of an attempt: claim with four strategies by index
//! probes (never a scan or sort of the queued set), lapsed-lease rescue, renew, start,
//! complete, fail with the retry policy, release.

use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::{json, Value};
use std::time::Duration;

use prismq_domain::claiming::pick_weighted_level;
use prismq_domain::lease::{lapse_log_message, lapsed_dead_letter_message, MAX_LAPSES};
use prismq_domain::ports::{ClaimRequest, ClaimedTask, FailOutcome, Failure, LogLevel, TaskEvent};
use prismq_domain::task::{Lease, Priority, TaskId};
use prismq_domain::{ClaimingStrategy, PortError, RetryDecision, TaskStatus};

use crate::codec::{new_token, task_columns, task_from_row, ts};
use crate::error::map_err;
use crate::logs::{insert_log, write_pending};
use crate::queue::failure_details;
use crate::SqliteStore;

/// Oldest eligible queued task of one type (FIFO order).
pub(crate) const PROBE_FIFO: &str =
    "SELECT id, run_after FROM task_queue INDEXED BY ix_queue_claim_time
    WHERE status = 'queued' AND type = ?1 AND run_after <= ?2 AND (region IS NULL OR region = ?3)
    ORDER BY run_after, id LIMIT 1";
/// Newest eligible queued task of one type (LIFO order).
pub(crate) const PROBE_LIFO: &str =
    "SELECT id, run_after FROM task_queue INDEXED BY ix_queue_claim_time
    WHERE status = 'queued' AND type = ?1 AND run_after <= ?2 AND (region IS NULL OR region = ?3)
    ORDER BY run_after DESC, id DESC LIMIT 1";
/// Oldest eligible queued task of one type at one priority level.
pub(crate) const PROBE_LEVEL: &str = "SELECT id, run_after FROM task_queue INDEXED BY ix_queue_claim_priority
    WHERE status = 'queued' AND type = ?1 AND priority = ?4 AND run_after <= ?2 AND (region IS NULL OR region = ?3)
    ORDER BY run_after, id LIMIT 1";
/// In-flight tasks whose lease lapsed, oldest lapse first; only task ?2 when it is not NULL.
pub(crate) const PROBE_LAPSED: &str = "SELECT id, type, region, claimed_by
    FROM task_queue INDEXED BY ix_queue_lease
    WHERE status IN ('claimed', 'running') AND lease_expires_at <= ?1 AND (?2 IS NULL OR id = ?2)
    ORDER BY lease_expires_at LIMIT 64";
/// One task by id, if it is queued and eligible now (`ClaimFilter::only`).
pub(crate) const PROBE_ONE: &str = "SELECT id, run_after, type FROM task_queue
    WHERE id = ?1 AND status = 'queued' AND run_after <= ?2 AND (region IS NULL OR region = ?3)";
/// Task types with queued tasks (from the trigger-kept counts).
pub(crate) const QUEUED_TYPES: &str =
    "SELECT type FROM queue_counts WHERE status = 'queued' AND n > 0 ORDER BY type";

/// Every query a claim can run, by name, for EXPLAIN QUERY PLAN checks (tests, `validate`).
pub const CLAIM_QUERIES: &[(&str, &str)] = &[
    ("fifo", PROBE_FIFO),
    ("lifo", PROBE_LIFO),
    ("priority level", PROBE_LEVEL),
    ("lapsed leases", PROBE_LAPSED),
    ("one task", PROBE_ONE),
    ("queued types", QUEUED_TYPES),
];

/// Takes a claim on one task: a new lease and token, one more attempt. The attempt's
/// `claimed` and `started` log entries are read from the row (`claim_seq` reserves their
/// numbers) and stored only if the attempt ends other than by completing.
macro_rules! take_sql {
    ($status:literal, $started:literal) => {
        concat!(
            "UPDATE task_queue SET status = '",
            $status,
            "', claimed_by = ?2, lease_expires_at = ?3, lease_token = ?4,
             attempts = attempts + 1, updated_at = ?5, claimed_at = ?5, claimed_with = ?6,
             claim_seq = log_seq, log_seq = log_seq + 2, started_at = ",
            $started,
            " WHERE id = ?1 RETURNING ",
            task_columns!()
        )
    };
}
const TAKE: &str = take_sql!("claimed", "NULL");
const TAKE_AND_START: &str = take_sql!("running", "?5");

const FENCE: &str = "id = ?1 AND lease_token = ?2 AND status IN ('claimed', 'running')";

/// A candidate's position in claim order: (run_after, id).
type Key = (i64, i64);

fn probe(
    tx: &Transaction<'_>,
    sql: &str,
    task_type: &str,
    now: i64,
    region: Option<&str>,
    level: Option<u8>,
) -> Result<Option<Key>, PortError> {
    let mut stmt = tx.prepare_cached(sql).map_err(map_err)?;
    let row = match level {
        Some(p) => stmt.query_row(params![task_type, now, region, p], |r| {
            Ok((r.get(1)?, r.get(0)?))
        }),
        None => stmt.query_row(params![task_type, now, region], |r| {
            Ok((r.get(1)?, r.get(0)?))
        }),
    };
    row.optional().map_err(map_err)
}

fn best(keys: impl Iterator<Item = Key>, newest: bool) -> Option<Key> {
    if newest {
        keys.max()
    } else {
        keys.min()
    }
}

impl SqliteStore {
    /// Blocking [`prismq_domain::ports::TaskQueue::claim`].
    ///
    /// # Errors
    /// As the port.
    pub fn claim_blocking(&self, req: &ClaimRequest) -> Result<Option<ClaimedTask>, PortError> {
        self.write_shared(self.claim_write(req, false))
    }

    /// Blocking [`prismq_domain::ports::TaskQueue::claim_and_start`]: the claim and the start
    /// in one transaction.
    ///
    /// # Errors
    /// As the port.
    pub fn claim_and_start_blocking(
        &self,
        req: &ClaimRequest,
    ) -> Result<Option<ClaimedTask>, PortError> {
        self.write_shared(self.claim_write(req, true))
    }

    /// The async ports' claim (`start`: and start), run on the store's writer thread.
    pub(crate) async fn claim_async(
        &self,
        req: &ClaimRequest,
        start: bool,
    ) -> Result<Option<ClaimedTask>, PortError> {
        self.write_shared_async(self.claim_write(req, start)).await
    }

    /// The claim's transaction, for [`SqliteStore::write_shared`] or its async twin.
    fn claim_write(
        &self,
        req: &ClaimRequest,
        start: bool,
    ) -> impl FnMut(&Transaction<'_>) -> Result<Option<ClaimedTask>, PortError> + Send + 'static
    {
        let now = self.now_ms();
        let lease_ms = i64::try_from(req.lease_for.as_millis()).unwrap_or(i64::MAX);
        let expires = now.saturating_add(lease_ms);
        let sample: u64 = rand::random();
        let wanted: Vec<String> = req
            .filter
            .task_types
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect();
        let region_upper = req
            .filter
            .region
            .as_ref()
            .map(|r| r.trim().to_ascii_uppercase());
        let only = req.filter.only.map(|id| id.0);
        let req = req.clone();
        move |tx| {
            let region = region_upper.as_deref();
            if let Some(id) = rescue_lapsed(tx, &wanted, region, now, only)? {
                return take(tx, id, &req, now, expires, start).map(Some);
            }
            let picked = match only {
                Some(id) => probe_one(tx, id, &wanted, now, region)?,
                None => {
                    let types = if wanted.is_empty() {
                        queued_types(tx)?
                    } else {
                        wanted.clone()
                    };
                    pick(tx, req.strategy, &types, now, region, sample)?
                }
            };
            match picked {
                Some((_, id)) => take(tx, TaskId(id), &req, now, expires, start).map(Some),
                None => Ok(None),
            }
        }
    }
}

/// Takes back the first lapsed lease the worker may take: the attempt counted at its claim
/// is given back and the lapse counted (logged `lease_expired`), and its id returned for the
/// claim. A task whose lapses reach [`MAX_LAPSES`] is dead-lettered on the way instead.
fn rescue_lapsed(
    tx: &Transaction<'_>,
    wanted: &[String],
    region: Option<&str>,
    now: i64,
    only: Option<i64>,
) -> Result<Option<TaskId>, PortError> {
    let mut stmt = tx.prepare_cached(PROBE_LAPSED).map_err(map_err)?;
    let lapsed = stmt
        .query_map(params![now, only], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })
        .map_err(map_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(map_err)?;
    for (id, task_type, task_region, worker) in lapsed {
        let type_ok = wanted.is_empty() || wanted.contains(&task_type);
        let region_ok = task_region.is_none() || task_region.as_deref() == region;
        if !(type_ok && region_ok) {
            continue;
        }
        // The lapsed attempt's `claimed`/`started` entries are read from the row: store them
        // before the row changes.
        write_pending(tx, TaskId(id))?;
        let (attempts, lapses): (u32, u32) = tx
            .prepare_cached(
                "UPDATE task_queue SET attempts = max(attempts - 1, 0), lapses = lapses + 1, updated_at = ?2
                 WHERE id = ?1 RETURNING attempts, lapses",
            )
            .and_then(|mut s| s.query_row(params![id, now], |r| Ok((r.get(0)?, r.get(1)?))))
            .map_err(map_err)?;
        let details = json!({ "previous_worker": worker, "lapses": lapses, "attempts": attempts });
        let dead = lapses >= MAX_LAPSES;
        insert_log(
            tx,
            TaskId(id),
            now,
            LogLevel::Warn,
            TaskEvent::LeaseExpired,
            &lapse_log_message(lapses, dead),
            &details,
        )?;
        if !dead {
            return Ok(Some(TaskId(id)));
        }
        let message = lapsed_dead_letter_message(lapses, worker.as_deref());
        tx.prepare_cached(
            "UPDATE task_queue SET status = 'failed', finished_at = ?2, updated_at = ?2, last_error = ?3,
             lease_expires_at = NULL, lease_token = NULL WHERE id = ?1",
        )
        .and_then(|mut s| s.execute(params![id, now, message]))
        .map_err(map_err)?;
        insert_log(
            tx,
            TaskId(id),
            now,
            LogLevel::Error,
            TaskEvent::Failed,
            &message,
            &Value::Null,
        )?;
    }
    Ok(None)
}

/// Marks task `id` claimed by `req.worker` under a fresh lease token (and running when
/// `start`), and returns it with its lease.
fn take(
    tx: &Transaction<'_>,
    id: TaskId,
    req: &ClaimRequest,
    now: i64,
    expires: i64,
    start: bool,
) -> Result<ClaimedTask, PortError> {
    let token = new_token();
    let sql = if start { TAKE_AND_START } else { TAKE };
    let task = tx
        .prepare_cached(sql)
        .and_then(|mut s| {
            s.query_row(
                params![
                    id.0,
                    req.worker.as_str(),
                    expires,
                    token.0,
                    now,
                    req.strategy.as_str()
                ],
                task_from_row,
            )
        })
        .map_err(map_err)?;
    let expires_at = ts(0, expires).map_err(map_err)?;
    let lease = Lease {
        task_id: id,
        token,
        worker: req.worker.clone(),
        expires_at,
    };
    Ok(ClaimedTask { task, lease })
}

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
            let started: Option<bool> = tx
                .prepare_cached(
                    "UPDATE task_queue SET status = 'running', started_at = ?3, updated_at = ?3
                     WHERE id = ?1 AND lease_token = ?2 AND status = 'claimed' RETURNING claim_seq IS NULL",
                )
                .and_then(|mut s| s.query_row(params![lease.task_id.0, lease.token.0, now], |r| r.get(0)).optional())
                .map_err(map_err)?;
            if let Some(stored) = started {
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

    fn complete_write(
        &self,
        lease: &Lease,
        summary: Option<&Value>,
    ) -> impl FnMut(&Transaction<'_>) -> Result<(), PortError> + Send + 'static {
        let now = self.now_ms();
        let summary_text = summary.map(Value::to_string);
        let lease = lease.clone();
        move |tx| {
            // The `completed` entry is read from the row (status and finished_at) unless the
            // claim's entries are already rows (a task claimed before schema v2).
            let stored: Option<bool> = tx
                .prepare_cached(&format!(
                    "UPDATE task_queue SET status = 'completed', finished_at = ?3, updated_at = ?3, summary = ?4,
                     lease_expires_at = NULL, lease_token = NULL WHERE {FENCE} RETURNING claim_seq IS NULL"
                ))
                .and_then(|mut s| s.query_row(params![lease.task_id.0, lease.token.0, now, summary_text], |r| r.get(0)).optional())
                .map_err(map_err)?;
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
            let row: Option<(u32, u32)> = tx
                .prepare_cached(&format!("SELECT attempts, max_attempts FROM task_queue WHERE {FENCE}"))
                .and_then(|mut s| s.query_row(params![lease.task_id.0, lease.token.0], |r| Ok((r.get(0)?, r.get(1)?))).optional())
                .map_err(map_err)?;
            let (attempts, max_attempts) = row.ok_or(PortError::LeaseLost { task_id: lease.task_id.0 })?;
            write_pending(tx, lease.task_id)?;
            let decision = self.retry_policy().decide(attempts, max_attempts, failure.class, now, sample);
            let details = failure_details(failure, attempts);
            let (attempts_after, event, level) = match decision {
                RetryDecision::RetryAt(at) => {
                    requeue(tx, lease, at.as_millisecond(), attempts, &failure.message, now_ms)?;
                    (attempts, TaskEvent::Retried, LogLevel::Warn)
                }
                RetryDecision::Defer(until) => {
                    let back = attempts.saturating_sub(1);
                    requeue(tx, lease, until.as_millisecond(), back, &failure.message, now_ms)?;
                    (back, TaskEvent::Deferred, LogLevel::Info)
                }
                RetryDecision::DeadLetter => {
                    tx.prepare_cached(&format!(
                        "UPDATE task_queue SET status = 'failed', last_error = ?3, finished_at = ?4, updated_at = ?4,
                         lease_expires_at = NULL, lease_token = NULL WHERE {FENCE}"
                    ))
                    .and_then(|mut s| s.execute(params![lease.task_id.0, lease.token.0, failure.message, now_ms]))
                    .map_err(map_err)?;
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
            // Before the update clears started_at. On a lost lease the transaction rolls
            // back, this included.
            write_pending(tx, lease.task_id)?;
            let n = tx
                .prepare_cached(&format!(
                    "UPDATE task_queue SET status = 'queued', run_after = ?3, updated_at = ?3, attempts = max(attempts - 1, 0),
                     lease_expires_at = NULL, lease_token = NULL, started_at = NULL WHERE {FENCE}"
                ))
                .and_then(|mut s| s.execute(params![lease.task_id.0, lease.token.0, now]))
                .map_err(map_err)?;
            if n == 0 {
                return Err(PortError::LeaseLost { task_id: lease.task_id.0 });
            }
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
        "UPDATE task_queue SET status = 'queued', run_after = ?3, attempts = ?4, last_error = ?5, updated_at = ?6,
         lease_expires_at = NULL, lease_token = NULL, started_at = NULL WHERE {FENCE}"
    ))
    .and_then(|mut s| s.execute(params![lease.task_id.0, lease.token.0, run_after, attempts, error, now]))
    .map_err(map_err)?;
    Ok(())
}

fn fenced_status(tx: &Transaction<'_>, lease: &Lease) -> Result<Option<TaskStatus>, PortError> {
    let s: Option<String> = tx
        .prepare_cached("SELECT status FROM task_queue WHERE id = ?1 AND lease_token = ?2")
        .and_then(|mut s| {
            s.query_row(params![lease.task_id.0, lease.token.0], |r| r.get(0))
                .optional()
        })
        .map_err(map_err)?;
    s.map(|s| crate::codec::status(0, &s))
        .transpose()
        .map_err(map_err)
}

/// The task `id` when it is queued, eligible now, and of a type the worker takes.
fn probe_one(
    tx: &Transaction<'_>,
    id: i64,
    wanted: &[String],
    now: i64,
    region: Option<&str>,
) -> Result<Option<Key>, PortError> {
    let row = tx
        .prepare_cached(PROBE_ONE)
        .and_then(|mut s| {
            s.query_row(params![id, now, region], |r| {
                Ok((
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .optional()
        })
        .map_err(map_err)?;
    Ok(row
        .filter(|(_, _, t)| wanted.is_empty() || wanted.contains(t))
        .map(|(at, id, _)| (at, id)))
}

fn queued_types(tx: &Transaction<'_>) -> Result<Vec<String>, PortError> {
    let mut stmt = tx.prepare_cached(QUEUED_TYPES).map_err(map_err)?;
    let rows = stmt.query_map([], |r| r.get(0)).map_err(map_err)?;
    rows.collect::<Result<Vec<String>, _>>().map_err(map_err)
}

/// The next uniform sample after `x` (splitmix64): one random draw per claim is enough for
/// WeightedRandom's redraws.
fn next_sample(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Picks the next queued task by strategy: one index probe per type (FIFO, LIFO), per
/// (type, level) from the top level down until one has a task (Priority), or per (type,
/// drawn level) (WeightedRandom).
fn pick(
    tx: &Transaction<'_>,
    strategy: ClaimingStrategy,
    types: &[String],
    now: i64,
    region: Option<&str>,
    sample: u64,
) -> Result<Option<Key>, PortError> {
    let per_type = |sql: &str, level: Option<u8>| -> Result<Vec<Key>, PortError> {
        let mut found = Vec::new();
        for t in types {
            if let Some(k) = probe(tx, sql, t, now, region, level)? {
                found.push(k);
            }
        }
        Ok(found)
    };
    match strategy {
        ClaimingStrategy::Fifo => Ok(best(per_type(PROBE_FIFO, None)?.into_iter(), false)),
        ClaimingStrategy::Lifo => Ok(best(per_type(PROBE_LIFO, None)?.into_iter(), true)),
        ClaimingStrategy::Priority => {
            for p in Priority::descending() {
                if let Some(k) = best(per_type(PROBE_LEVEL, Some(p.get()))?.into_iter(), false) {
                    return Ok(Some(k));
                }
            }
            Ok(None)
        }
        ClaimingStrategy::WeightedRandom => {
            // Draw a level by weight among those not yet found empty and probe only that
            // one. The first non-empty level drawn is distributed exactly as one draw among
            // the non-empty levels (striking out an empty level leaves the odds between the
            // others unchanged), so a queue with every level populated costs one probe per
            // task type instead of ten.
            let mut left: Vec<Priority> = Priority::descending().collect();
            let mut sample = sample;
            while let Some(level) = pick_weighted_level(&left, sample) {
                if let Some(k) = best(per_type(PROBE_LEVEL, Some(level.get()))?.into_iter(), false)
                {
                    return Ok(Some(k));
                }
                left.retain(|p| *p != level);
                sample = next_sample(sample);
            }
            Ok(None)
        }
    }
}
