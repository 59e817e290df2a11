//! Validate checks 6 to 8: a second connection is kept out while a write lock is held,
//! every claim and stats query is planned on an index without a temporary sort, and
//! malformed input is refused with the expected typed error.

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prismq_domain::ports::SystemClock;
use prismq_domain::task::{Compatibility, NewTask, TaskId, TaskType};
use prismq_domain::PortError;

use crate::error::map_err;
use crate::{connection, SqliteOptions, SqliteStore, CLAIM_QUERIES};
use prismq_domain::ports::validation::{CheckResult, Outcome};

/// The queries `stats` runs, by name, for the index-usage check (defined beside
/// `SqliteStore::stats_blocking`, which runs exactly these).
pub const STATS_QUERIES: &[(&str, &str)] = &[
    ("stats counts", crate::queue::STATS_COUNTS),
    ("stats oldest eligible", crate::queue::STATS_OLDEST),
    ("stats next region", crate::queue::STATS_NEXT_REGION),
    ("stats recent finishes", crate::queue::STATS_FINISHED),
];

/// Tables that grow with use: a plan may never scan them.
const LARGE_TABLES: &[&str] = &["task_queue", "task_logs", "results", "result_metrics"];

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
        .chain(super::prune::PRUNE_QUERIES);
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
    let store = SqliteStore::with_pool(
        connection::Pool::new(conn, 1),
        options.clone(),
        Arc::new(SystemClock),
    );
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
    // What the schema itself still refuses (v11: params and summary JSON are the adapter's,
    // checked row by row in check 3), each written directly and rolled back.
    let direct = [
        ("priority 11", "'{}', 11, '{}', NULL"),
        ("params that are not an object", "'[1]', 5, '{}', NULL"),
        (
            "compatibility that is not an object",
            "'{}', 5, '\"GB\"', NULL",
        ),
        (
            "a region that is not two capital letters",
            "'{}', 5, '{\"region\":\"usa\"}', 'usa'",
        ),
        (
            "a region other than the one compatibility names",
            "'{}', 5, '{}', 'GB'",
        ),
    ];
    for (what, values) in direct {
        let constraint = store.with_connection(|c| {
            let tx = c.transaction().map_err(map_err)?;
            // The probe's type is interned first (rolled back with the rest), so only the
            // CHECK under test can refuse the row, not the type's foreign key.
            let r = tx
                .execute(
                    "INSERT OR IGNORE INTO task_types (name) VALUES ('validate_probe')",
                    [],
                )
                .and_then(|_| {
                    tx.execute(
                        &format!("INSERT INTO task_queue (type_id, params, priority, compatibility, region, run_after, created_at, updated_at) VALUES ((SELECT id FROM task_types WHERE name = 'validate_probe'), {values}, 0, 0, 0)"),
                        [],
                    )
                });
            drop(tx);
            Ok(r.map_err(map_err))
        });
        match constraint {
            Ok(Err(PortError::Unavailable(m))) if m.contains("constraint") => details.push(
                format!("{what} written directly: refused by the schema's CHECK constraint"),
            ),
            other => problems.push(format!(
                "{what} written directly: expected a CHECK constraint error, got {other:?}"
            )),
        }
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
