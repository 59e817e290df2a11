//! Validate checks 5 to 8: the domain model round-trips through the database inside a
//! rolled-back transaction, a second connection is kept out while a write lock is held,
//! every claim and stats query is planned on an index without a temporary sort, and
//! malformed input is refused with the expected typed error.

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prismq_domain::ports::{LogLevel, SystemClock, TaskEvent};
use prismq_domain::task::{
    Compatibility, LeaseToken, NewTask, Priority, Task, TaskId, TaskType, WorkerId,
};
use prismq_domain::{ContentItem, Metrics, PortError, TaskStatus, Timestamp};

use super::rows::{insert_result, insert_task, read_result, TaskRow};
use super::validate::{CheckResult, Outcome};
use crate::codec::{task_from_row, TASK_COLUMNS};
use crate::error::map_err;
use crate::{connection, Inner, SqliteOptions, SqliteStore, CLAIM_QUERIES};

/// The queries `stats` runs, by name, for the index-usage check. They mirror
/// `SqliteStore::stats_blocking`; `queue_counts` is a handful of rows (types × statuses), so
/// scanning it is allowed.
pub const STATS_QUERIES: &[(&str, &str)] = &[
    (
        "stats counts",
        "SELECT type, status, n FROM queue_counts WHERE n > 0",
    ),
    (
        "stats oldest eligible",
        "SELECT min(run_after) FROM task_queue INDEXED BY ix_queue_claim_time
         WHERE status = 'queued' AND type = ?1 AND run_after <= ?2",
    ),
];

/// Tables that grow with use: a plan may never scan them.
const LARGE_TABLES: &[&str] = &["task_queue", "task_logs", "results", "result_metrics"];

fn probe_task(now: Timestamp) -> Result<Task, String> {
    let ms =
        |d: i64| Timestamp::from_millisecond(now.as_millisecond() + d).map_err(|e| e.to_string());
    Ok(Task {
        id: TaskId(0),
        task_type: TaskType::new("validate_probe").map_err(|e| e.to_string())?,
        params: json!({"query": "rust ✓ «ünïcode» \"quoted\"", "top_n": 50, "nested": {"a": [1, 2.5, null, true]}}),
        priority: Priority::new(7).map_err(|e| e.to_string())?,
        status: TaskStatus::Running,
        attempts: 2,
        max_attempts: 5,
        run_after: ms(-1000)?,
        lease_expires_at: Some(ms(60_000)?),
        claimed_by: Some(WorkerId::new("validate-probe").map_err(|e| e.to_string())?),
        lease_token: Some(LeaseToken(0x1234_5678_9abc_def0)),
        idempotency_key: Some(format!("validate:probe:{}", now.as_millisecond())),
        compatibility: Compatibility::with_region("de").map_err(|e| e.to_string())?,
        last_error: Some("previous attempt: timed out".into()),
        summary: Some(json!({"items": 3})),
        created_at: ms(-2000)?,
        updated_at: now,
        finished_at: None,
    })
}

fn row_of(t: &Task) -> TaskRow {
    TaskRow {
        task_type: t.task_type.as_str().to_owned(),
        params: t.params.to_string(),
        priority: t.priority.get(),
        status: t.status.as_str(),
        attempts: t.attempts,
        max_attempts: t.max_attempts,
        run_after: t.run_after.as_millisecond(),
        lease_expires_at: t.lease_expires_at.map(|x| x.as_millisecond()),
        claimed_by: t.claimed_by.as_ref().map(|w| w.as_str().to_owned()),
        lease_token: t.lease_token.map(|l| l.0),
        idempotency_key: t.idempotency_key.clone(),
        compatibility: serde_json::to_string(&t.compatibility).unwrap_or_else(|_| "{}".into()),
        last_error: t.last_error.clone(),
        summary: t.summary.as_ref().map(|s| s.to_string()),
        created_at: t.created_at.as_millisecond(),
        updated_at: t.updated_at.as_millisecond(),
        started_at: Some(t.updated_at.as_millisecond()),
        finished_at: None,
    }
}

fn probe_item(now: Timestamp) -> ContentItem {
    let mut item = ContentItem::new(
        "youtube_api",
        format!("validate-{}", now.as_millisecond()),
        "Probe ✓ «title»",
    );
    item.description = Some("line one\nline two".into());
    item.url = Some("https://www.youtube.com/watch?v=dQw4w9WgXcQ".into());
    item.tags = vec!["rust".into(), "ünïcode".into()];
    item.channel = Some("Probe channel".into());
    item.channel_id = Some("UC0123456789abcdefghijkl".into());
    item.published_at = Some(now);
    item.duration_secs = Some(212);
    item.metrics = Metrics {
        views: Some(1_234_567_890_123),
        likes: Some(0),
        comments: None,
    };
    item.extra.insert("category_id".into(), json!("10"));
    item
}

/// Check 5: a task (every field set), a log entry and a result are written and read back
/// in one IMMEDIATE transaction that is then rolled back.
pub(crate) fn round_trip(conn: &mut Connection) -> CheckResult {
    match round_trip_inner(conn) {
        Ok(details) => CheckResult::new(
            5,
            Outcome::Pass,
            "a task, a log entry and a result read back exactly as written (then rolled back)",
        )
        .with_details(details),
        Err(reason) => CheckResult::new(5, Outcome::Fail, reason),
    }
}

fn round_trip_inner(conn: &mut Connection) -> Result<Vec<String>, String> {
    let now = Timestamp::from_millisecond(Timestamp::now().as_millisecond())
        .map_err(|e| e.to_string())?;
    let expected = probe_task(now)?;
    let item = probe_item(now);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| format!("cannot start a write transaction: {}", map_err(e)))?;
    let sql_err = |what: &str, e: rusqlite::Error| {
        format!(
            "{what} failed: {}; the schema is not what this binary expects (see check 3)",
            map_err(e)
        )
    };
    let id = insert_task(&tx, &row_of(&expected))
        .map_err(|e| sql_err("writing the probe task", e))?
        .ok_or("the probe task's idempotency key already exists")?;
    let read = tx
        .query_row(
            &format!("SELECT {TASK_COLUMNS} FROM task_queue WHERE id = ?1"),
            [id],
            task_from_row,
        )
        .map_err(|e| sql_err("reading the probe task back", e))?;
    let mut want = expected;
    want.id = TaskId(id);
    if read != want {
        return Err(format!(
            "the task read back differs from the one written: wrote {want:?}, read {read:?}"
        ));
    }
    let region: Option<String> = tx
        .query_row("SELECT region FROM task_queue WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .map_err(|e| sql_err("reading the region column", e))?;
    if region.as_deref() != Some("DE") {
        return Err(format!(
            "the generated region column reads {region:?}, expected \"DE\""
        ));
    }
    let details = json!({"note": "ünïcode ✓", "n": [1, 2]});
    crate::logs::insert_log(
        &tx,
        TaskId(id),
        now.as_millisecond(),
        LogLevel::Warn,
        TaskEvent::Progress,
        "probe ✓",
        &details,
    )
    .map_err(|e| format!("writing a log entry failed: {e}"))?;
    let log: (String, String, String, String) = tx
        .query_row(
            "SELECT level, event, message, details FROM task_logs WHERE task_id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .map_err(|e| sql_err("reading the log entry back", e))?;
    let log_details: serde_json::Value =
        serde_json::from_str(&log.3).map_err(|e| format!("log details are not JSON: {e}"))?;
    if (log.0.as_str(), log.1.as_str(), log.2.as_str()) != ("warn", "progress", "probe ✓")
        || log_details != details
    {
        return Err(format!("the log entry read back differs: {log:?}"));
    }
    insert_result(
        &tx,
        &item,
        now.as_millisecond(),
        now.as_millisecond(),
        Some(id),
    )
    .map_err(|e| sql_err("writing the probe result", e))?
    .ok_or("the probe result already exists")?;
    let back = read_result(&tx, &item.source, &item.source_id)
        .map_err(|e| sql_err("reading the probe result back", e))?
        .ok_or("the probe result vanished")?;
    if back != item {
        return Err(format!(
            "the result read back differs: wrote {item:?}, read {back:?}"
        ));
    }
    tx.rollback()
        .map_err(|e| format!("rolling the probe back failed: {}", map_err(e)))?;
    let left: i64 = conn
        .query_row("SELECT count(*) FROM task_queue WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .map_err(|e| sql_err("checking the rollback", e))?;
    if left != 0 {
        return Err("the probe task is still there after rollback".into());
    }
    Ok(vec![
        format!("task {id}: 18 fields, JSON params with unicode, lease, region, summary"),
        "log entry: level, event, message, JSON details".into(),
        "result: every field, tags, extra, 13-digit views".into(),
        "rolled back: nothing left behind".into(),
    ])
}

/// Check 6: while this connection holds an IMMEDIATE transaction, a second connection can
/// still read but cannot write, and gets a typed busy error after its timeout.
pub(crate) fn isolation(
    conn: &mut Connection,
    options: &SqliteOptions,
    wait: Duration,
) -> CheckResult {
    let fail = |reason: String| CheckResult::new(6, Outcome::Fail, reason);
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            return match map_err(e) {
                PortError::Busy(m) => CheckResult::new(6, Outcome::Warn, format!(
                    "another writer held the database for more than {:?} ({m}); run validate again when the workers are idle",
                    options.busy_timeout
                )),
                other => fail(format!("cannot take the write lock: {other}")),
            }
        }
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let other = match Connection::open_with_flags(&options.path, flags) {
        Ok(c) => c,
        Err(e) => {
            return fail(format!(
                "a second connection could not open: {}",
                connection::classify_open_error(e, &options.path)
            ))
        }
    };
    if let Err(e) = other.busy_timeout(wait) {
        return fail(e.to_string());
    }
    let mut details = Vec::new();
    match other.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(_) => {
            details.push("a second connection reads while the write lock is held (WAL)".to_owned())
        }
        Err(e) => {
            return fail(format!(
                "a reader was blocked by the writer ({}); is the database in WAL mode? (check 4)",
                map_err(e)
            ))
        }
    }
    let started = Instant::now();
    let attempt = other.execute_batch("BEGIN IMMEDIATE");
    let waited = started.elapsed();
    let result = match attempt {
        Ok(()) => {
            let _ = other.execute_batch("ROLLBACK");
            fail("a second connection took the write lock while the first held it: file locking does not work here (network or FUSE filesystem?); move the database to a local disk".into())
        }
        Err(e) => match map_err(e) {
            PortError::Busy(_) => {
                details.push(format!(
                    "the second writer got PortError::Busy after {} ms (timeout {} ms)",
                    waited.as_millis(),
                    wait.as_millis()
                ));
                if waited + Duration::from_millis(20) < wait {
                    CheckResult::new(6, Outcome::Warn, format!(
                        "the second writer was refused after {} ms, before its {} ms busy timeout; the busy handler is not waiting",
                        waited.as_millis(), wait.as_millis()
                    ))
                } else {
                    CheckResult::new(6, Outcome::Pass, "a second writer waits for the lock and then gets a typed busy error; readers are not blocked")
                }
            }
            other => fail(format!(
                "the second writer failed with {other:?}, expected PortError::Busy"
            )),
        },
    };
    if let Err(e) = tx.rollback() {
        return fail(format!("releasing the write lock failed: {}", map_err(e)));
    }
    result.with_details(details)
}

/// The plan of one query as text lines, with every parameter bound to NULL.
pub(crate) fn plan(conn: &Connection, sql: &str) -> Result<Vec<String>, String> {
    let mut stmt = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .map_err(|e| map_err(e).to_string())?;
    let nulls = vec![rusqlite::types::Value::Null; stmt.parameter_count()];
    let rows = stmt
        .query_map(rusqlite::params_from_iter(nulls.iter()), |r| {
            r.get::<_, String>(3)
        })
        .map_err(|e| map_err(e).to_string())?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(|e| map_err(e).to_string())
}

/// Why a plan is unacceptable: a scan of a large table or a temporary sort.
pub(crate) fn plan_problem(lines: &[String]) -> Option<String> {
    for line in lines {
        if line.contains("TEMP B-TREE") {
            return Some(format!("sorts in a temporary b-tree ({line})"));
        }
        if let Some(rest) = line.strip_prefix("SCAN ") {
            let table = rest.split_whitespace().next().unwrap_or("");
            if LARGE_TABLES.contains(&table) {
                return Some(format!("scans {table} ({line})"));
            }
        }
    }
    None
}

/// Check 7: EXPLAIN QUERY PLAN of every claim query, the stats queries and the prune probe.
pub(crate) fn index_usage(conn: &Connection) -> CheckResult {
    let mut details = Vec::new();
    let mut problems = Vec::new();
    let queries = CLAIM_QUERIES
        .iter()
        .chain(STATS_QUERIES)
        .chain(super::maintenance::PRUNE_QUERIES);
    for (name, sql) in queries {
        match plan(conn, sql) {
            Ok(lines) => {
                if let Some(p) = plan_problem(&lines) {
                    problems.push(format!("{name}: {p}"));
                }
                details.push(format!("{name}: {}", lines.join(" | ")));
            }
            Err(e) => problems.push(format!("{name}: cannot be planned ({e})")),
        }
    }
    match problems.first() {
        None => CheckResult::new(
            7,
            Outcome::Pass,
            format!("{} queries each use an index and never sort", details.len()),
        )
        .with_details(details),
        Some(first) => {
            details.splice(0..0, problems.iter().map(|p| format!("FAIL {p}")));
            CheckResult::new(7, Outcome::Fail, format!(
                "{first}; an index is missing or was changed: see check 3, restore a backup or re-apply the migration"
            ))
            .with_details(details)
        }
    }
}

/// Check 8: malformed input is refused with the expected typed error, and the schema's own
/// constraints refuse what slips past.
pub(crate) fn error_handling(conn: Connection, options: &SqliteOptions) -> CheckResult {
    let store = SqliteStore {
        inner: Arc::new(Inner {
            options: options.clone(),
            clock: Arc::new(SystemClock),
            pool: connection::Pool::new(conn, 1),
        }),
    };
    let Ok(tt) = TaskType::new("validate_probe") else {
        return CheckResult::new(8, Outcome::Fail, "internal: the probe task type is invalid");
    };
    let base = NewTask::new(tt, json!({"query": "x"}));
    let cases: Vec<(&str, NewTask, &str)> = vec![
        (
            "params that are not an object",
            NewTask {
                params: json!(["a"]),
                ..base.clone()
            },
            "params",
        ),
        (
            "max_attempts 0",
            base.clone().max_attempts(0),
            "max_attempts",
        ),
        (
            "an empty idempotency key",
            base.clone().idempotency_key(""),
            "idempotency_key",
        ),
        (
            "a three-letter region",
            NewTask {
                compatibility: Compatibility {
                    region: Some("USA".into()),
                },
                ..base
            },
            "region",
        ),
    ];
    let mut details = Vec::new();
    let mut problems = Vec::new();
    for (what, task, field) in cases {
        match store.enqueue_blocking(&task) {
            Err(PortError::Invalid(e)) if e.field == field => {
                details.push(format!("{what}: refused, Invalid({field})"))
            }
            other => problems.push(format!("{what}: expected Invalid({field}), got {other:?}")),
        }
    }
    match store.get_blocking(TaskId(i64::MAX)) {
        Err(PortError::NotFound(_)) => details.push("an unknown task id: NotFound".into()),
        other => problems.push(format!(
            "an unknown task id: expected NotFound, got {other:?}"
        )),
    }
    let constraint = store.with_connection(|c| {
        let tx = c.transaction().map_err(map_err)?;
        let r = tx.execute(
            "INSERT INTO task_queue (type, params, priority, run_after, created_at, updated_at) VALUES ('validate_probe', '{}', 11, 0, 0, 0)",
            [],
        );
        drop(tx);
        Ok(r.map_err(map_err))
    });
    match constraint {
        Ok(Err(PortError::Unavailable(m))) if m.contains("constraint") => details
            .push("priority 11 written directly: refused by the schema's CHECK constraint".into()),
        other => problems.push(format!(
            "priority 11 written directly: expected a CHECK constraint error, got {other:?}"
        )),
    }
    match problems.first() {
        None => CheckResult::new(
            8,
            Outcome::Pass,
            "malformed tasks are refused with the typed error naming the field; nothing is written",
        )
        .with_details(details),
        Some(first) => CheckResult::new(8, Outcome::Fail, first.clone())
            .with_details(problems.into_iter().chain(details).collect()),
    }
}
