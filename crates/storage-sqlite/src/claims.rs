//! Claims: take a task with four strategies by index probes (never a scan or sort of the
//! queued set) and rescue lapsed leases on the way. What an attempt does after its claim
//! (renew, start, complete, fail, release) is in `lease`.

use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::{json, Value};

use prismq_domain::claiming::pick_weighted_level;
use prismq_domain::lease::{lapse_log_message, lapsed_dead_letter_message, MAX_LAPSES};
use prismq_domain::ports::{ClaimRequest, ClaimedTask, LogLevel, TaskEvent};
use prismq_domain::task::{Lease, Priority, TaskId};
use prismq_domain::{ClaimingStrategy, PortError};

use crate::codec::{
    new_token, task_and_type_from_row, task_columns, ts, CLAIMED, FAILED, QUEUED, RUNNING,
};
use crate::error::{map_err, CORRUPT_ADVICE};
use crate::logs::{insert_log, write_pending};
use crate::queue::move_count;
use crate::SqliteStore;

/// Oldest eligible queued task of one type (`?1`, its interned id) and one region (FIFO
/// order). `?3` is the region, NULL for tasks that require none: `IS` makes either an
/// equality on the index's key, so a probe reads the entries of its own region only.
pub(crate) const PROBE_FIFO: &str =
    "SELECT id, run_after FROM task_queue INDEXED BY ix_queue_claim_time
    WHERE status = 0 /* queued */ AND type_id = ?1 AND region IS ?3 AND run_after <= ?2
    ORDER BY run_after, id LIMIT 1";
/// Newest eligible queued task of one type and one region (LIFO order).
pub(crate) const PROBE_LIFO: &str =
    "SELECT id, run_after FROM task_queue INDEXED BY ix_queue_claim_time
    WHERE status = 0 /* queued */ AND type_id = ?1 AND region IS ?3 AND run_after <= ?2
    ORDER BY run_after DESC, id DESC LIMIT 1";
/// Oldest eligible queued task of one type and one region at one priority level.
pub(crate) const PROBE_LEVEL: &str =
    "SELECT id, run_after FROM task_queue INDEXED BY ix_queue_claim_priority
    WHERE status = 0 /* queued */ AND type_id = ?1 AND priority = ?4 AND region IS ?3 AND run_after <= ?2
    ORDER BY run_after, id LIMIT 1";
/// In-flight tasks whose lease lapsed, oldest lapse first; only task ?2 when it is not NULL.
pub(crate) const PROBE_LAPSED: &str = "SELECT id, type_id, region, claimed_by, status
    FROM task_queue INDEXED BY ix_queue_lease
    WHERE status IN (1, 2) /* claimed, running */ AND lease_expires_at <= ?1 AND (?2 IS NULL OR id = ?2)
    ORDER BY lease_expires_at LIMIT 64";
/// One task by id, if it is queued and eligible now (`ClaimFilter::only`).
pub(crate) const PROBE_ONE: &str = "SELECT id, run_after, type_id FROM task_queue
    WHERE id = ?1 AND status = 0 /* queued */ AND run_after <= ?2 AND (region IS NULL OR region = ?3)";
/// Task types with queued tasks (from `queue_counts`), as interned ids.
pub(crate) const QUEUED_TYPES: &str =
    "SELECT type_id FROM queue_counts WHERE status = 0 /* queued */ AND n > 0 ORDER BY type_id";
/// The interned id of a task type by name.
pub(crate) const TYPE_ID: &str = "SELECT id FROM task_types WHERE name = ?1";

/// Every query a claim can run, by name, for EXPLAIN QUERY PLAN checks (tests, `validate`).
pub const CLAIM_QUERIES: &[(&str, &str)] = &[
    ("fifo", PROBE_FIFO),
    ("lifo", PROBE_LIFO),
    ("priority level", PROBE_LEVEL),
    ("lapsed leases", PROBE_LAPSED),
    ("one task", PROBE_ONE),
    ("queued types", QUEUED_TYPES),
    ("type id", TYPE_ID),
];

/// Takes a claim on one task: a new lease and token, one more attempt. The attempt's
/// `claimed` and `started` log entries are read from the row (`claim_seq` reserves their
/// numbers) and stored only if the attempt ends other than by completing.
macro_rules! take_sql {
    ($status:literal, $started:literal) => {
        concat!(
            "UPDATE task_queue SET status = ",
            $status,
            ", claimed_by = ?2, lease_expires_at = ?3, lease_token = ?4,
             attempts = attempts + 1, updated_at = ?5, claimed_at = ?5, claimed_with = ?6,
             claim_seq = log_seq, log_seq = log_seq + 2, started_at = ",
            $started,
            " WHERE id = ?1 RETURNING ",
            task_columns!(),
            ", type_id"
        )
    };
}
const TAKE: &str = take_sql!("1 /* claimed */", "NULL");
const TAKE_AND_START: &str = take_sql!("2 /* running */", "?5");

/// A candidate's position in claim order: (run_after, id).
type Key = (i64, i64);

/// The regions whose tasks a worker may take, as the probes' `?3`: tasks that require none
/// (NULL) and, for a worker serving a region, that region's.
pub fn claim_regions(region: Option<&str>) -> impl Iterator<Item = Option<&str>> {
    std::iter::once(None).chain(region.map(Some))
}

/// The candidate a probe statement (`PROBE_FIFO`, `PROBE_LIFO` or `PROBE_LEVEL` with its
/// `level`) finds for one type and one region of [`claim_regions`].
fn probe_region(
    tx: &Transaction<'_>,
    sql: &str,
    task_type: i64,
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

/// The best candidate of one type for a worker serving `region`: one probe per region it
/// may take ([`claim_regions`]), the earliest (latest with `newest`) of their answers.
fn probe(
    tx: &Transaction<'_>,
    sql: &str,
    task_type: i64,
    now: i64,
    region: Option<&str>,
    level: Option<u8>,
    newest: bool,
) -> Result<Option<Key>, PortError> {
    let mut found = None;
    for r in claim_regions(region) {
        let k = probe_region(tx, sql, task_type, now, r, level)?;
        found = best(found.into_iter().chain(k), newest);
    }
    Ok(found)
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
    pub(crate) fn claim_write(
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
            // The wanted types' interned ids; a name never written has no tasks to take.
            let wanted = type_ids(tx, &wanted)?;
            if wanted.as_ref().is_some_and(Vec::is_empty) {
                return Ok(None);
            }
            let wanted = wanted.as_deref();
            if let Some((id, from)) = rescue_lapsed(tx, wanted, region, now, only)? {
                return take(tx, id, from, &req, now, expires, start).map(Some);
            }
            let picked = match only {
                Some(id) => probe_one(tx, id, wanted, now, region)?,
                None => {
                    let types = match wanted {
                        None => queued_types(tx)?,
                        Some(w) => w.to_vec(),
                    };
                    pick(tx, req.strategy, &types, now, region, sample)?
                }
            };
            match picked {
                Some((_, id)) => take(tx, TaskId(id), QUEUED, &req, now, expires, start).map(Some),
                None => Ok(None),
            }
        }
    }
}

/// Takes back the first lapsed lease the worker may take: the attempt counted at its claim
/// is given back and the lapse counted (logged `lease_expired`), and its id and status code
/// returned for the claim. A task whose lapses reach [`MAX_LAPSES`] is dead-lettered on the
/// way instead.
fn rescue_lapsed(
    tx: &Transaction<'_>,
    wanted: Option<&[i64]>,
    region: Option<&str>,
    now: i64,
    only: Option<i64>,
) -> Result<Option<(TaskId, i64)>, PortError> {
    let mut stmt = tx.prepare_cached(PROBE_LAPSED).map_err(map_err)?;
    let lapsed = stmt
        .query_map(params![now, only], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .map_err(map_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(map_err)?;
    for (id, task_type, task_region, worker, status) in lapsed {
        let type_ok = wanted.is_none_or(|w| w.contains(&task_type));
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
            return Ok(Some((TaskId(id), status)));
        }
        let message = lapsed_dead_letter_message(lapses, worker.as_deref());
        tx.prepare_cached(
            "UPDATE task_queue SET status = 4 /* failed */, finished_at = ?2, updated_at = ?2, last_error = ?3,
             lease_expires_at = NULL, lease_token = NULL WHERE id = ?1",
        )
        .and_then(|mut s| s.execute(params![id, now, message]))
        .map_err(map_err)?;
        move_count(tx, task_type, status, FAILED)?;
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

/// Marks task `id` (whose status code is `from`) claimed by `req.worker` under a fresh lease
/// token (and running when `start`), and returns it with its lease.
fn take(
    tx: &Transaction<'_>,
    id: TaskId,
    from: i64,
    req: &ClaimRequest,
    now: i64,
    expires: i64,
    start: bool,
) -> Result<ClaimedTask, PortError> {
    let token = new_token();
    let sql = if start { TAKE_AND_START } else { TAKE };
    let (task, type_id) = tx
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
                task_and_type_from_row,
            )
        })
        .map_err(|e| match e {
            // The id came from an index in this same transaction: a row the index lists and
            // the table does not have is a damaged file (the probes read only the index, so
            // this is where damage to the table's pages shows), not a passing failure.
            rusqlite::Error::QueryReturnedNoRows => PortError::Corrupt(format!(
                "the claim index lists task {id} but the table has no such row; {CORRUPT_ADVICE}"
            )),
            other => map_err(other),
        })?;
    move_count(tx, type_id, from, if start { RUNNING } else { CLAIMED })?;
    let expires_at = ts(0, expires).map_err(map_err)?;
    let lease = Lease {
        task_id: id,
        token,
        worker: req.worker.clone(),
        expires_at,
    };
    Ok(ClaimedTask { task, lease })
}

/// The task `id` when it is queued, eligible now, and of a type the worker takes.
fn probe_one(
    tx: &Transaction<'_>,
    id: i64,
    wanted: Option<&[i64]>,
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
                    r.get::<_, i64>(2)?,
                ))
            })
            .optional()
        })
        .map_err(map_err)?;
    Ok(row
        .filter(|(_, _, t)| wanted.is_none_or(|w| w.contains(t)))
        .map(|(at, id, _)| (at, id)))
}

fn queued_types(tx: &Transaction<'_>) -> Result<Vec<i64>, PortError> {
    let mut stmt = tx.prepare_cached(QUEUED_TYPES).map_err(map_err)?;
    let rows = stmt.query_map([], |r| r.get(0)).map_err(map_err)?;
    rows.collect::<Result<Vec<i64>, _>>().map_err(map_err)
}

/// The interned ids of the types a claim asks for (`None`: every type), leaving out names no
/// task ever had (`task_types` has every name written).
fn type_ids(tx: &Transaction<'_>, wanted: &[String]) -> Result<Option<Vec<i64>>, PortError> {
    if wanted.is_empty() {
        return Ok(None);
    }
    let mut stmt = tx.prepare_cached(TYPE_ID).map_err(map_err)?;
    let mut ids = Vec::with_capacity(wanted.len());
    for name in wanted {
        if let Some(id) = stmt
            .query_row([name], |r| r.get(0))
            .optional()
            .map_err(map_err)?
        {
            ids.push(id);
        }
    }
    Ok(Some(ids))
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
    types: &[i64],
    now: i64,
    region: Option<&str>,
    sample: u64,
) -> Result<Option<Key>, PortError> {
    let per_type = |sql: &str, level: Option<u8>, newest: bool| -> Result<Vec<Key>, PortError> {
        let mut found = Vec::new();
        for t in types {
            if let Some(k) = probe(tx, sql, *t, now, region, level, newest)? {
                found.push(k);
            }
        }
        Ok(found)
    };
    match strategy {
        ClaimingStrategy::Fifo => Ok(best(per_type(PROBE_FIFO, None, false)?.into_iter(), false)),
        ClaimingStrategy::Lifo => Ok(best(per_type(PROBE_LIFO, None, true)?.into_iter(), true)),
        ClaimingStrategy::Priority => {
            for p in Priority::descending() {
                if let Some(k) = best(
                    per_type(PROBE_LEVEL, Some(p.get()), false)?.into_iter(),
                    false,
                ) {
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
                if let Some(k) = best(
                    per_type(PROBE_LEVEL, Some(level.get()), false)?.into_iter(),
                    false,
                ) {
                    return Ok(Some(k));
                }
                left.retain(|p| *p != level);
                sample = next_sample(sample);
            }
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use rusqlite::StatementStatus;

    use prismq_domain::ports::{ClaimFilter, SystemClock};
    use prismq_domain::task::{NewTask, TaskType, WorkerId};

    use super::*;
    use crate::SqliteOptions;

    #[test]
    fn claim_statements_are_compiled_once_not_on_every_claim() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(
            SqliteOptions::new(dir.path().join("queue.db")),
            Arc::new(SystemClock),
        )
        .unwrap();
        let tasks: Vec<NewTask> = (0..80)
            .map(|i| {
                NewTask::new(TaskType::new("noop").unwrap(), json!({ "i": i }))
                    .priority(Priority::new(i % 10 + 1).unwrap())
            })
            .collect();
        store.enqueue_batch_blocking(&tasks).unwrap();
        for strategy in ClaimingStrategy::ALL {
            let req = ClaimRequest {
                worker: WorkerId::new("w").unwrap(),
                filter: ClaimFilter {
                    task_types: vec![TaskType::new("noop").unwrap()],
                    region: None,
                    only: None,
                },
                strategy,
                lease_for: Duration::from_secs(300),
            };
            for _ in 0..20 {
                let c = store.claim_and_start_blocking(&req).unwrap().unwrap();
                store.complete_blocking(&c.lease, None).unwrap();
            }
        }
        let slot = store.inner.writer.lock();
        let conn = slot.as_ref().expect("the writer connection is open");
        for (name, sql) in [
            ("fifo", PROBE_FIFO),
            ("lifo", PROBE_LIFO),
            ("priority level", PROBE_LEVEL),
            ("lapsed leases", PROBE_LAPSED),
            ("take and start", TAKE_AND_START),
        ] {
            let stmt = conn.prepare_cached(sql).unwrap();
            let runs = stmt.get_status(StatementStatus::Run);
            assert!(
                runs >= 20,
                "{name}: run {runs} times, so not the cached statement"
            );
            assert_eq!(
                stmt.get_status(StatementStatus::RePrepare),
                0,
                "{name}: compiled again after its first use"
            );
        }
    }
}
