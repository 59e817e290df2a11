//! Claims: how a worker takes a task (the lifecycle after the claim is in `lease`).
//!
//! A claim is, in order:
//! 1. a probe of the lapsed-lease index; when a lease lapsed, a transaction locks the oldest
//!    lapse (`FOR UPDATE SKIP LOCKED`), gives back the attempt its claim counted and counts
//!    the lapse, then dead-letters it if its lapses reached `MAX_LAPSES` (and looks again),
//!    or takes it over;
//! 2. otherwise, when several types (or WeightedRandom's levels) compete, one statement reads
//!    the head of each type (or each (type, level)) by an index probe and the adapter picks
//!    the target in Rust — no sort of the queue;
//! 3. one statement: a `MATERIALIZED` CTE selects the target's next task with `LIMIT 1 FOR
//!    UPDATE SKIP LOCKED` (the fence: the planner cannot re-run it and update more rows), the
//!    `UPDATE … RETURNING` takes it, and the `claimed` log row is inserted with it.
//!
//! Every later write presents the lease token; a stale one changes nothing (`LeaseLost`).

use serde_json::{json, Value};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use prismq_domain::claiming::pick_weighted_level;
use prismq_domain::lease::{lapse_log_message, lapsed_dead_letter_message, MAX_LAPSES};
use prismq_domain::ports::{ClaimRequest, ClaimedTask, LogLevel, TaskEvent};
use prismq_domain::task::{Lease, LeaseToken, Priority, TaskId};
use prismq_domain::{ClaimingStrategy, PortError, TaskStatus};

use crate::codec::{get, ms, new_token, task_columns, task_from_row, ts};
use crate::error::map_err;
use crate::logs::insert_log;
use crate::{in_tx, PostgresStore};

/// The log of a claim. ($2 now, $4 worker, $7 strategy.)
macro_rules! claim_log {
    () => {
        "INSERT INTO task_logs (task_id, at, level, event, message, details)
    SELECT id, $2, 'info', 'claimed', 'claimed by ' || $4::text,
           jsonb_build_object('worker', $4::text, 'attempt', attempts, 'strategy', $7::text)
    FROM claimed"
    };
}

/// The logs of a claim and its start in one step, in that order (one `INSERT`, so the
/// identity values follow the `ORDER BY`; two data-modifying CTEs would run in no set order).
macro_rules! claim_and_start_logs {
    () => {
        "INSERT INTO task_logs (task_id, at, level, event, message, details)
    SELECT id, $2, 'info', e.event,
           CASE e.n WHEN 1 THEN 'claimed by ' || $4::text ELSE 'handler started' END,
           CASE e.n WHEN 1 THEN jsonb_build_object('worker', $4::text, 'attempt', attempts, 'strategy', $7::text) END
    FROM claimed CROSS JOIN (VALUES (1, 'claimed'), (2, 'started')) AS e(n, event)
    ORDER BY e.n"
    };
}

/// The part of every claim statement after `picked` (the chosen row, locked): take it as
/// `$status` (`'claimed'`, or `'running'` with `started_at` now for a claim and start in one
/// step) and log it. ($2 now, $4 worker, $5 expiry, $6 token, $7 strategy.)
macro_rules! claim_tail {
    () => {
        claim_tail!("'claimed'", "NULL", claim_log!())
    };
    (started) => {
        claim_tail!("'running'", "$2", claim_and_start_logs!())
    };
    ($status:expr, $started:expr, $logs:expr) => {
        concat!(
            "claimed AS (
    UPDATE task_queue SET status = ",
            $status,
            ", claimed_by = $4::text, lease_expires_at = $5, lease_token = $6,
        attempts = attempts + 1, updated_at = $2, started_at = ",
            $started,
            "
    FROM picked WHERE id = pid
    RETURNING ",
            task_columns!(),
            "
), logged AS (
    ",
            $logs,
            "
)"
        )
    };
}

/// The `picked` CTE: the next eligible queued task of type $1 in `$order`, locked, taken only
/// while no lease the worker could take over has lapsed, and only when `$guard` holds.
macro_rules! picked {
    ($extra:expr, $order:expr, $guard:expr) => {
        concat!(
            "picked AS MATERIALIZED (
    SELECT id AS pid FROM task_queue
    WHERE ",
            $guard,
            "status = 'queued' AND type = $1 AND run_after <= $2 AND (region IS NULL OR region = $3)
      AND NOT EXISTS (SELECT 1 FROM task_queue l
          WHERE l.status IN ('claimed', 'running') AND l.lease_expires_at <= $2
            AND (cardinality($8::text[]) = 0 OR l.type = ANY($8::text[]))
            AND (l.region IS NULL OR l.region = $3))",
            $extra,
            "
    ORDER BY ",
            $order,
            " LIMIT 1
    FOR UPDATE SKIP LOCKED
)"
        )
    };
}

macro_rules! claim_stmt {
    ($extra:literal, $order:literal $(, $started:ident)?) => {
        concat!(
            "WITH ",
            picked!($extra, $order, ""),
            ", ",
            claim_tail!($($started)?),
            "
SELECT ",
            task_columns!(),
            " FROM claimed"
        )
    };
}

/// A completion and the next claim (and its start) in one statement, for
/// [`TaskQueue::complete_and_claim`](prismq_domain::ports::TaskQueue::complete_and_claim):
/// `done` completes the attempt ($9 task, $10 token, $11 summary, $12 the log's details) and
/// the claim takes a task only when it did. The claim's parameters as [`CLAIM_FIFO`]'s (the
/// completion's time is $2, the claim's). The row: the claimed task's columns (all NULL when
/// nothing was claimed), then how many attempts were completed (0: a stale token, nothing
/// written).
macro_rules! handover_stmt {
    ($extra:literal, $order:literal) => {
        concat!(
            "WITH done AS (
    UPDATE task_queue SET status = 'completed', finished_at = $2, updated_at = $2, summary = $11,
        lease_expires_at = NULL, lease_token = NULL
    WHERE id = $9 AND lease_token = $10 AND status IN ('claimed', 'running') RETURNING id
), done_logged AS (
    INSERT INTO task_logs (task_id, at, level, event, message, details)
    SELECT id, $2, 'info', 'completed', 'completed', $12 FROM done
), ",
            picked!($extra, $order, "EXISTS (SELECT 1 FROM done) AND "),
            ", ",
            claim_tail!(started),
            "
SELECT ",
            task_columns!(),
            ", (SELECT count(*) FROM done) FROM (VALUES (1)) AS one (x) LEFT JOIN claimed ON true"
        )
    };
}

/// Claims the oldest eligible task of one type (FIFO).
pub(crate) const CLAIM_FIFO: &str = claim_stmt!("", "run_after, id");
/// Claims the newest eligible task of one type (LIFO).
pub(crate) const CLAIM_LIFO: &str = claim_stmt!("", "run_after DESC, id DESC");
/// Claims the highest-priority, then oldest, eligible task of one type.
pub(crate) const CLAIM_PRIORITY: &str = claim_stmt!("", "priority DESC, run_after, id");
/// Claims the oldest eligible task of one type at one priority level ($9).
pub(crate) const CLAIM_LEVEL: &str = claim_stmt!(" AND priority = $9", "run_after, id");
/// [`CLAIM_FIFO`], taking the task as `running` (a claim and its start in one step).
pub(crate) const START_FIFO: &str = claim_stmt!("", "run_after, id", started);
/// [`CLAIM_LIFO`], taking the task as `running`.
pub(crate) const START_LIFO: &str = claim_stmt!("", "run_after DESC, id DESC", started);
/// [`CLAIM_PRIORITY`], taking the task as `running`.
pub(crate) const START_PRIORITY: &str = claim_stmt!("", "priority DESC, run_after, id", started);
/// [`CLAIM_LEVEL`], taking the task as `running`.
pub(crate) const START_LEVEL: &str = claim_stmt!(" AND priority = $9", "run_after, id", started);
/// A completion, then a FIFO claim and start (see `handover_stmt!`).
pub(crate) const HANDOVER_FIFO: &str = handover_stmt!("", "run_after, id");
/// A completion, then a LIFO claim and start.
pub(crate) const HANDOVER_LIFO: &str = handover_stmt!("", "run_after DESC, id DESC");
/// A completion, then a Priority claim and start.
pub(crate) const HANDOVER_PRIORITY: &str = handover_stmt!("", "priority DESC, run_after, id");
/// A completion, then a claim and start at one priority level ($13).
pub(crate) const HANDOVER_LEVEL: &str = handover_stmt!(" AND priority = $13", "run_after, id");
/// The end of every batched claim statement, after its `ranked` CTE (`pid` a task, `rn` its
/// place in the batch from 1, in the order the tasks are to be updated): each task taken as
/// `running` with the `rn`-th lease token of `$6`, `claimed` then `started` logged task by
/// task in place order (one `INSERT`, so the identity values follow its `ORDER BY`), and the
/// tasks returned, each row ending with its place. ($2 now, $4 worker, $5 expiry, $7
/// strategy.)
macro_rules! many_tail {
    () => {
        concat!(
            "
), claimed AS (
    UPDATE task_queue SET status = 'running', claimed_by = $4::text, lease_expires_at = $5,
        lease_token = ($6::bigint[])[rn], attempts = attempts + 1, updated_at = $2, started_at = $2
    FROM ranked WHERE id = pid
    RETURNING rn, ",
            task_columns!(),
            "
), logged AS (
    INSERT INTO task_logs (task_id, at, level, event, message, details)
    SELECT id, $2, 'info', e.event,
           CASE e.n WHEN 1 THEN 'claimed by ' || $4::text ELSE 'handler started' END,
           CASE e.n WHEN 1 THEN jsonb_build_object('worker', $4::text, 'attempt', attempts, 'strategy', $7::text) END
    FROM claimed CROSS JOIN (VALUES (1, 'claimed'), (2, 'started')) AS e(n, event)
    ORDER BY rn, e.n
)
SELECT ",
            task_columns!(),
            ", rn FROM claimed"
        )
    };
}

/// Claims and starts up to `cardinality($6)` tasks of the types in $1 (an array) in one
/// statement, for
/// [`TaskQueue::claim_and_start_many`](prismq_domain::ports::TaskQueue::claim_and_start_many):
/// each type's first `cardinality($6)` eligible tasks in `$order` (one index scan a type,
/// locked `FOR UPDATE SKIP LOCKED`), then the first of them over every type in the same
/// order (`$ranked` over `c`, `$ranked_picked` over `picked`: `pid` the id, `pa` run_after,
/// `pp` priority), which is what the same number of single claims one after another would
/// take. The n-th task in that order gets the n-th lease token of `$6`, and one `INSERT` logs
/// `claimed` then `started` task by task in that order. The rows a type's scan locked beyond
/// the batch are free again when the statement commits. The UPDATE goes through the batch
/// by type (`ranked`'s order, which the plan's nested loop over the primary key keeps,
/// though SQL does not promise it), so its count triggers lock `queue_counts` rows type by
/// type, the order every batch statement uses, and two batches sharing a count slot do not
/// take them in opposite orders (should the server still break a deadlock, the adapter runs
/// the statement again: `PostgresStore::query_retrying`). The other parameters as
/// [`CLAIM_FIFO`]'s; each row ends with `rn`, the task's place in claim order (from 1).
macro_rules! claim_many_stmt {
    ($order:literal, $ranked:literal, $ranked_picked:literal) => {
        concat!(
            "WITH picked AS MATERIALIZED (
    SELECT c.id AS pid, c.run_after AS pa, c.priority AS pp, t.type AS pt
    FROM unnest($1::text[]) AS t(type) CROSS JOIN LATERAL (
        SELECT id, run_after, priority FROM task_queue
        WHERE status = 'queued' AND type = t.type AND run_after <= $2 AND (region IS NULL OR region = $3)
          AND NOT EXISTS (SELECT 1 FROM task_queue l
              WHERE l.status IN ('claimed', 'running') AND l.lease_expires_at <= $2
                AND (cardinality($8::text[]) = 0 OR l.type = ANY($8::text[]))
                AND (l.region IS NULL OR l.region = $3))
        ORDER BY ",
            $order,
            " LIMIT cardinality($6::bigint[])
        FOR UPDATE SKIP LOCKED
    ) c
    ORDER BY ",
            $ranked,
            " LIMIT cardinality($6::bigint[])
), ranked AS MATERIALIZED (
    SELECT pid, rn FROM (
        SELECT pid, pt, row_number() OVER (ORDER BY ",
            $ranked_picked,
            ") AS rn FROM picked
    ) r ORDER BY pt, pid",
            many_tail!()
        )
    };
}

/// Up to `cardinality($6)` FIFO claims and starts over the types in $1 (see
/// `claim_many_stmt!`).
pub(crate) const START_MANY_FIFO: &str =
    claim_many_stmt!("run_after, id", "c.run_after, c.id", "pa, pid");
/// Up to `cardinality($6)` LIFO claims and starts over the types in $1.
pub(crate) const START_MANY_LIFO: &str = claim_many_stmt!(
    "run_after DESC, id DESC",
    "c.run_after DESC, c.id DESC",
    "pa DESC, pid DESC"
);
/// Up to `cardinality($6)` Priority claims and starts over the types in $1.
pub(crate) const START_MANY_PRIORITY: &str = claim_many_stmt!(
    "priority DESC, run_after, id",
    "c.priority DESC, c.run_after, c.id",
    "pp DESC, pa, pid"
);

/// WeightedRandom's claims and starts of a batch in one statement: `$9` the levels drawn,
/// `$10` how many times each was drawn, `$11` where each level's draw places begin in `$12`
/// (from 0), `$12` the places in the batch (from 1) of every level's draws, level after
/// level. Each level's first `$10` eligible tasks over the types in $1, oldest first (one
/// index scan a (type, level), locked `FOR UPDATE SKIP LOCKED`, as a single claim of that
/// level takes them), and the n-th of a level goes to that level's n-th draw: its place
/// gives it the lease token `($6)[place]` and its turn in the log. A level with fewer tasks
/// than draws leaves those places empty (the adapter claims them one by one). The other
/// parameters as `claim_many_stmt!`'s; each row ends with its place.
pub(crate) const START_MANY_LEVELS: &str = concat!(
    "WITH picked AS MATERIALIZED (
    SELECT lv.p, lv.c, lv.off, c.id AS pid, c.run_after AS pa, t.type AS pt
    FROM unnest($9::bigint[], $10::bigint[], $11::bigint[]) AS lv(p, c, off)
    CROSS JOIN unnest($1::text[]) AS t(type) CROSS JOIN LATERAL (
        SELECT id, run_after FROM task_queue
        WHERE status = 'queued' AND type = t.type AND priority = lv.p AND run_after <= $2
          AND (region IS NULL OR region = $3)
          AND NOT EXISTS (SELECT 1 FROM task_queue l
              WHERE l.status IN ('claimed', 'running') AND l.lease_expires_at <= $2
                AND (cardinality($8::text[]) = 0 OR l.type = ANY($8::text[]))
                AND (l.region IS NULL OR l.region = $3))
        ORDER BY run_after, id LIMIT lv.c
        FOR UPDATE SKIP LOCKED
    ) c
    -- Never cuts a row (each (type, level) gives at most its level's draws, which sum to
    -- cardinality($6)); it tells the planner how few rows come, so the UPDATE below finds
    -- each by its key instead of hashing the table.
    LIMIT cardinality($6::bigint[]) * cardinality($1::text[])
), ranked AS MATERIALIZED (
    SELECT pid, ($12::bigint[])[off + rk] AS rn FROM (
        SELECT pid, pt, c, off, row_number() OVER (PARTITION BY p ORDER BY pa, pid) AS rk
        FROM picked
    ) r WHERE rk <= c ORDER BY pt, pid",
    many_tail!()
);

/// Claims task $1 if it is queued and eligible now and of a type in $8 (`ClaimFilter::only`);
/// the other parameters as the claim statements'.
pub(crate) const CLAIM_ONE: &str = concat!(
    "WITH picked AS MATERIALIZED (
    SELECT id AS pid FROM task_queue
    WHERE id = $1::bigint AND status = 'queued' AND run_after <= $2 AND (region IS NULL OR region = $3)
      AND (cardinality($8::text[]) = 0 OR type = ANY($8::text[]))
    FOR UPDATE SKIP LOCKED
), ",
    claim_tail!(),
    "
SELECT ",
    task_columns!(),
    " FROM claimed"
);

/// Takes over a task already locked in this transaction (a lapsed lease).
const TAKE_BY_ID: &str = concat!(
    "WITH claimed AS (
    UPDATE task_queue SET status = 'claimed', claimed_by = $3::text, lease_expires_at = $4, lease_token = $5,
        attempts = attempts + 1, updated_at = $2, started_at = NULL
    WHERE id = $1
    RETURNING ",
    task_columns!(),
    "
), logged AS (
    INSERT INTO task_logs (task_id, at, level, event, message, details)
    SELECT id, $2, 'info', 'claimed', 'claimed by ' || $3::text,
           jsonb_build_object('worker', $3::text, 'attempt', attempts, 'strategy', $6::text)
    FROM claimed
)
SELECT ",
    task_columns!(),
    " FROM claimed"
);

const LAPSED_WHERE: &str = "status IN ('claimed', 'running') AND lease_expires_at <= $1
    AND (cardinality($2::text[]) = 0 OR type = ANY($2::text[])) AND (region IS NULL OR region = $3)
    AND ($4::bigint IS NULL OR id = $4)";

/// Is any lease the worker may take over lapsed? ($1 now, $2 types or empty, $3 region, $4
/// the only task it may take, or NULL.)
pub(crate) const PROBE_LAPSED: &str = "SELECT id FROM task_queue
    WHERE status IN ('claimed', 'running') AND lease_expires_at <= $1
    AND (cardinality($2::text[]) = 0 OR type = ANY($2::text[])) AND (region IS NULL OR region = $3)
    AND ($4::bigint IS NULL OR id = $4)
    ORDER BY lease_expires_at, id LIMIT 1";

/// Heads of each type in FIFO order ($1 types, $2 now, $3 region).
pub(crate) const HEADS_FIFO: &str = "SELECT t.type, h.run_after, h.id FROM unnest($1::text[]) AS t(type)
    CROSS JOIN LATERAL (SELECT q.run_after, q.id FROM task_queue q
        WHERE q.status = 'queued' AND q.type = t.type AND q.run_after <= $2 AND (q.region IS NULL OR q.region = $3)
        ORDER BY q.run_after, q.id LIMIT 1) h";
/// Heads of each type in LIFO order.
pub(crate) const HEADS_LIFO: &str = "SELECT t.type, h.run_after, h.id FROM unnest($1::text[]) AS t(type)
    CROSS JOIN LATERAL (SELECT q.run_after, q.id FROM task_queue q
        WHERE q.status = 'queued' AND q.type = t.type AND q.run_after <= $2 AND (q.region IS NULL OR q.region = $3)
        ORDER BY q.run_after DESC, q.id DESC LIMIT 1) h";
/// Heads of each type in priority order.
pub(crate) const HEADS_PRIORITY: &str = "SELECT t.type, h.priority, h.run_after, h.id FROM unnest($1::text[]) AS t(type)
    CROSS JOIN LATERAL (SELECT q.priority, q.run_after, q.id FROM task_queue q
        WHERE q.status = 'queued' AND q.type = t.type AND q.run_after <= $2 AND (q.region IS NULL OR q.region = $3)
        ORDER BY q.priority DESC, q.run_after, q.id LIMIT 1) h";
/// The oldest eligible task of each (type, level): one probe per pair (WeightedRandom).
pub(crate) const HEADS_LEVELS: &str = "SELECT t.type, l.p, h.run_after, h.id
    FROM unnest($1::text[]) AS t(type) CROSS JOIN generate_series(1::bigint, 10::bigint) AS l(p)
    CROSS JOIN LATERAL (SELECT q.run_after, q.id FROM task_queue q
        WHERE q.status = 'queued' AND q.type = t.type AND q.priority = l.p AND q.run_after <= $2
          AND (q.region IS NULL OR q.region = $3)
        ORDER BY q.run_after, q.id LIMIT 1) h";
/// Task types with queued tasks (from the trigger-kept counts).
pub(crate) const QUEUED_TYPES: &str =
    "SELECT type FROM queue_counts WHERE status = 'queued' GROUP BY type HAVING sum(n) > 0 ORDER BY type";

/// Every query a claim can run on the queue, by name, for EXPLAIN checks (tests, `validate`).
/// Parameters: the `claim …` statements take ($1 type, $2 now, $3 region, $4 worker,
/// $5 expiry, $6 token, $7 strategy, $8 the worker's types (empty: all)[, $9 level]); the
/// `heads …` ones ($1 types, $2 now, $3 region); `claim one` as the claims but $1 the task
/// id; `lapsed leases` ($1 now, $2 types, $3 region, $4 task id or NULL); the `handover …`
/// ones as the claims, then $9 the completed task, $10 its token, $11 its summary, $12 the
/// log's details[, $13 level]; the `claim many …` ones as the claims but $1 the types to
/// claim from (an array) and $6 the lease tokens, one a task to claim, and `claim many
/// levels` then the draws ($9–$12, see `START_MANY_LEVELS`).
///
/// The `claim …` statements take a queued task only while no lease the worker could take
/// over has lapsed (the `NOT EXISTS` guard, one probe of `ix_queue_lease`), so the common
/// claim is one round trip and a lapsed lease is still always rescued first.
pub const CLAIM_QUERIES: &[(&str, &str)] = &[
    ("claim fifo", CLAIM_FIFO),
    ("claim lifo", CLAIM_LIFO),
    ("claim priority", CLAIM_PRIORITY),
    ("claim level", CLAIM_LEVEL),
    ("claim one", CLAIM_ONE),
    ("claim fifo, started", START_FIFO),
    ("claim lifo, started", START_LIFO),
    ("claim priority, started", START_PRIORITY),
    ("claim level, started", START_LEVEL),
    ("handover fifo", HANDOVER_FIFO),
    ("handover lifo", HANDOVER_LIFO),
    ("handover priority", HANDOVER_PRIORITY),
    ("handover level", HANDOVER_LEVEL),
    ("claim many fifo, started", START_MANY_FIFO),
    ("claim many lifo, started", START_MANY_LIFO),
    ("claim many priority, started", START_MANY_PRIORITY),
    ("claim many levels, started", START_MANY_LEVELS),
    ("heads fifo", HEADS_FIFO),
    ("heads lifo", HEADS_LIFO),
    ("heads priority", HEADS_PRIORITY),
    ("heads levels", HEADS_LEVELS),
    ("lapsed leases", PROBE_LAPSED),
    ("queued types", QUEUED_TYPES),
];

/// The head of every (type, level) with an eligible task: (level, type, (run_after, id)).
pub(crate) async fn level_heads(
    client: &deadpool_postgres::Object,
    types: &[String],
    now: i64,
    region: &Option<String>,
) -> Result<Vec<(Priority, String, (i64, i64))>, PortError> {
    let stmt = client.prepare_cached(HEADS_LEVELS).await.map_err(map_err)?;
    let rows = client
        .query(&stmt, &[&types, &now, region])
        .await
        .map_err(map_err)?;
    let mut levels = Vec::with_capacity(rows.len());
    for r in &rows {
        let p = Priority::new(get(r, 1)?).map_err(|e| crate::error::corrupt("priority", e))?;
        levels.push((p, get(r, 0)?, key(r, 2)?));
    }
    Ok(levels)
}

/// The levels among `heads` ([`level_heads`]), each once.
pub(crate) fn present_levels(heads: &[(Priority, String, (i64, i64))]) -> Vec<Priority> {
    let mut present: Vec<Priority> = heads.iter().map(|(p, _, _)| *p).collect();
    present.sort_unstable();
    present.dedup();
    present
}

/// Where the next queued task comes from: a type, and for WeightedRandom a level.
pub(crate) type Target = (String, Option<i64>);

/// The worker's task types (empty: every type) and region (upper case), as the claim
/// statements bind them.
pub(crate) fn scope(req: &ClaimRequest) -> (Vec<String>, Option<String>) {
    let wanted = req
        .filter
        .task_types
        .iter()
        .map(|t| t.as_str().to_owned())
        .collect();
    let region = req
        .filter
        .region
        .as_ref()
        .map(|r| r.trim().to_ascii_uppercase());
    (wanted, region)
}

/// The types a claim looks at: the worker's, or when it takes every type, those with queued
/// tasks (from the trigger-kept counts).
pub(crate) async fn candidate_types(
    client: &deadpool_postgres::Object,
    wanted: &[String],
) -> Result<Vec<String>, PortError> {
    if !wanted.is_empty() {
        return Ok(wanted.to_vec());
    }
    let stmt = client.prepare_cached(QUEUED_TYPES).await.map_err(map_err)?;
    let rows = client.query(&stmt, &[]).await.map_err(map_err)?;
    rows.iter().map(|r| get(r, 0)).collect()
}

/// The claim statement for `strategy` (a level's when `level`), taking the task as `running`
/// when `start`.
fn claim_statement(strategy: ClaimingStrategy, level: bool, start: bool) -> &'static str {
    match (strategy, level, start) {
        (_, true, false) => CLAIM_LEVEL,
        (_, true, true) => START_LEVEL,
        (ClaimingStrategy::Fifo, false, false) => CLAIM_FIFO,
        (ClaimingStrategy::Fifo, false, true) => START_FIFO,
        (ClaimingStrategy::Lifo, false, false) => CLAIM_LIFO,
        (ClaimingStrategy::Lifo, false, true) => START_LIFO,
        (_, false, false) => CLAIM_PRIORITY,
        (_, false, true) => START_PRIORITY,
    }
}

/// The completion-and-claim statement for `strategy` (a level's when `level`).
pub(crate) fn handover_statement(strategy: ClaimingStrategy, level: bool) -> &'static str {
    match (strategy, level) {
        (_, true) => HANDOVER_LEVEL,
        (ClaimingStrategy::Fifo, false) => HANDOVER_FIFO,
        (ClaimingStrategy::Lifo, false) => HANDOVER_LIFO,
        (_, false) => HANDOVER_PRIORITY,
    }
}

fn key(r: &Row, at: usize) -> Result<(i64, i64), PortError> {
    Ok((get(r, at)?, get(r, at + 1)?))
}

/// The claimed task in `row` (selected with the task columns) and its new lease.
pub(crate) fn claimed(
    row: &Row,
    req: &ClaimRequest,
    token: LeaseToken,
    expires: i64,
) -> Result<ClaimedTask, PortError> {
    let task = task_from_row(row)?;
    Ok(ClaimedTask {
        lease: Lease {
            task_id: task.id,
            token,
            worker: req.worker.clone(),
            expires_at: ts(expires)?,
        },
        task,
    })
}

/// The next eligible task of one type, as a claim of `strategy` would see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) task_type: String,
    /// Its priority (read for Priority only; 0 otherwise).
    pub(crate) priority: i64,
    pub(crate) run_after: i64,
    pub(crate) id: i64,
}

/// The head of each of `types` that has an eligible task, best first in `strategy`'s order
/// (FIFO, LIFO or Priority; one index probe a type).
pub(crate) async fn ordered_heads(
    client: &deadpool_postgres::Object,
    strategy: ClaimingStrategy,
    types: &[String],
    now: i64,
    region: &Option<String>,
) -> Result<Vec<Head>, PortError> {
    let priority = strategy == ClaimingStrategy::Priority;
    let sql = match strategy {
        ClaimingStrategy::Lifo => HEADS_LIFO,
        ClaimingStrategy::Priority => HEADS_PRIORITY,
        _ => HEADS_FIFO,
    };
    let stmt = client.prepare_cached(sql).await.map_err(map_err)?;
    let rows = client
        .query(&stmt, &[&types, &now, region])
        .await
        .map_err(map_err)?;
    let mut heads = Vec::with_capacity(rows.len());
    for r in &rows {
        let at = usize::from(priority) + 1;
        let (run_after, id) = key(r, at)?;
        heads.push(Head {
            task_type: get(r, 0)?,
            priority: if priority { get(r, 1)? } else { 0 },
            run_after,
            id,
        });
    }
    match strategy {
        ClaimingStrategy::Lifo => heads.sort_by_key(|h| std::cmp::Reverse((h.run_after, h.id))),
        _ => heads.sort_by_key(|h| (-h.priority, h.run_after, h.id)),
    }
    Ok(heads)
}

impl PostgresStore {
    /// A claim, and with `start` the attempt started in the same step (the task `running`).
    pub(crate) async fn claim_task(
        &self,
        req: &ClaimRequest,
        start: bool,
    ) -> Result<Option<ClaimedTask>, PortError> {
        let claimed = self.claim_inner(req, start).await?;
        match claimed {
            Some(mut c) if start && c.task.status != TaskStatus::Running => {
                // Taken by a path with no starting variant (a lapsed lease, `only`).
                self.start_attempt(&c.lease).await?;
                c.task.status = TaskStatus::Running;
                Ok(Some(c))
            }
            other => Ok(other),
        }
    }

    async fn claim_inner(
        &self,
        req: &ClaimRequest,
        start: bool,
    ) -> Result<Option<ClaimedTask>, PortError> {
        let now = self.now_ms();
        let expires = now.saturating_add(ms(req.lease_for));
        let (wanted, region) = scope(req);
        if let Some(only) = req.filter.only {
            return self
                .claim_only(req, only.0, &wanted, &region, now, expires)
                .await;
        }
        let mut client = self.client().await?;
        let types = candidate_types(&client, &wanted).await?;
        // A target whose eligible tasks were all taken meanwhile is looked up again.
        for _ in 0..3 {
            let target = if types.is_empty() {
                None
            } else {
                self.target(&client, req.strategy, &types, now, &region)
                    .await?
            };
            if let Some((task_type, level)) = &target {
                let sql = claim_statement(req.strategy, level.is_some(), start);
                let token = new_token();
                let worker = req.worker.as_str();
                let strategy = req.strategy.as_str();
                let stmt = client.prepare_cached(sql).await.map_err(map_err)?;
                let mut args: Vec<&(dyn ToSql + Sync)> = vec![
                    task_type, &now, &region, &worker, &expires, &token.0, &strategy, &wanted,
                ];
                if let Some(p) = level {
                    args.push(p);
                }
                let row = client.query_opt(&stmt, &args).await.map_err(map_err)?;
                if let Some(row) = row {
                    return claimed(&row, req, token, expires).map(Some);
                }
            }
            // Nothing queued was taken: maybe a lapsed lease came first.
            let stmt = client.prepare_cached(PROBE_LAPSED).await.map_err(map_err)?;
            let lapsed = client
                .query_opt(&stmt, &[&now, &wanted, &region, &None::<i64>])
                .await
                .map_err(map_err)?;
            if lapsed.is_some() {
                drop(client);
                if let Some(c) = self
                    .rescue(req, &wanted, &region, None, now, expires)
                    .await?
                {
                    return Ok(Some(c));
                }
                client = self.client().await?;
            } else if target.is_none() {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// [`ClaimFilter::only`](prismq_domain::ports::ClaimFilter::only): that task when it is
    /// queued and eligible, else when its lease lapsed, else nothing.
    async fn claim_only(
        &self,
        req: &ClaimRequest,
        id: i64,
        wanted: &[String],
        region: &Option<String>,
        now: i64,
        expires: i64,
    ) -> Result<Option<ClaimedTask>, PortError> {
        let client = self.client().await?;
        let token = new_token();
        let (worker, strategy) = (req.worker.as_str(), req.strategy.as_str());
        let stmt = client.prepare_cached(CLAIM_ONE).await.map_err(map_err)?;
        let row = client
            .query_opt(
                &stmt,
                &[
                    &id, &now, region, &worker, &expires, &token.0, &strategy, &wanted,
                ],
            )
            .await
            .map_err(map_err)?;
        if let Some(row) = row {
            return claimed(&row, req, token, expires).map(Some);
        }
        drop(client);
        self.rescue(req, wanted, region, Some(id), now, expires)
            .await
    }

    /// Picks the type (and level) to claim from, by reading each candidate's head.
    pub(crate) async fn target(
        &self,
        client: &deadpool_postgres::Object,
        strategy: ClaimingStrategy,
        types: &[String],
        now: i64,
        region: &Option<String>,
    ) -> Result<Option<Target>, PortError> {
        if types.len() == 1 && strategy != ClaimingStrategy::WeightedRandom {
            return Ok(Some((types[0].clone(), None)));
        }
        if strategy != ClaimingStrategy::WeightedRandom {
            let heads = ordered_heads(client, strategy, types, now, region).await?;
            return Ok(heads.into_iter().next().map(|h| (h.task_type, None)));
        }
        let levels = level_heads(client, types, now, region).await?;
        let present = present_levels(&levels);
        let Some(chosen) = pick_weighted_level(&present, rand::random()) else {
            return Ok(None);
        };
        Ok(levels
            .into_iter()
            .filter(|(p, _, _)| *p == chosen)
            .min_by_key(|(_, _, k)| *k)
            .map(|(p, t, _)| (t, Some(i64::from(p.get())))))
    }

    /// Takes over the oldest lapsed lease the worker may take: its attempt is given back and
    /// the lapse counted, then it is claimed again; a task whose lapses reach [`MAX_LAPSES`]
    /// is dead-lettered on the way instead. `None` when none is left to take.
    async fn rescue(
        &self,
        req: &ClaimRequest,
        wanted: &[String],
        region: &Option<String>,
        only: Option<i64>,
        now: i64,
        expires: i64,
    ) -> Result<Option<ClaimedTask>, PortError> {
        let lock = format!(
            "SELECT id, claimed_by FROM task_queue WHERE {LAPSED_WHERE}
             ORDER BY lease_expires_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
        );
        let worker = req.worker.as_str();
        let strategy = req.strategy.as_str();
        in_tx!(self, |tx| {
            async {
            loop {
                let Some(row) = tx
                    .query_opt(&lock, &[&now, &wanted, region, &only])
                    .await
                    .map_err(map_err)?
                else {
                    return Ok(None);
                };
                let id: i64 = get(&row, 0)?;
                let previous: Option<String> = get(&row, 1)?;
                // The lapsed attempt is given back and the lapse counted.
                let counted = tx
                    .query_one(
                        "UPDATE task_queue SET attempts = greatest(attempts - 1, 0), lapses = lapses + 1, updated_at = $2
                         WHERE id = $1 RETURNING attempts, lapses",
                        &[&id, &now],
                    )
                    .await
                    .map_err(map_err)?;
                let attempts: i64 = get(&counted, 0)?;
                let lapses = u32::try_from(get::<i64>(&counted, 1)?).unwrap_or(u32::MAX);
                let details = json!({ "previous_worker": previous, "lapses": lapses, "attempts": attempts });
                let dead = lapses >= MAX_LAPSES;
                insert_log(&tx, TaskId(id), now, LogLevel::Warn, TaskEvent::LeaseExpired, &lapse_log_message(lapses, dead), &details).await?;
                if dead {
                    let message = lapsed_dead_letter_message(lapses, previous.as_deref());
                    tx.execute(
                        "UPDATE task_queue SET status = 'failed', finished_at = $2, updated_at = $2, last_error = $3,
                         lease_expires_at = NULL, lease_token = NULL WHERE id = $1",
                        &[&id, &now, &message],
                    )
                    .await
                    .map_err(map_err)?;
                    insert_log(&tx, TaskId(id), now, LogLevel::Error, TaskEvent::Failed, &message, &Value::Null).await?;
                    continue;
                }
                let token = new_token();
                let row = tx
                    .query_one(TAKE_BY_ID, &[&id, &now, &worker, &expires, &token.0, &strategy])
                    .await
                    .map_err(map_err)?;
                return claimed(&row, req, token, expires).map(Some);
            }
        }
        .await
        })
    }
}
