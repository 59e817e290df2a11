//! Validate check 5: the domain model round-trips through the database. A task with every
//! field set, a log entry and a result are written and read back through the adapter's
//! decoders in one IMMEDIATE transaction that is then rolled back.

use rusqlite::{Connection, TransactionBehavior};
use serde_json::json;

use prismq_domain::ports::{LogLevel, TaskEvent};
use prismq_domain::task::{Compatibility, LeaseToken, Priority, Task, TaskId, TaskType, WorkerId};
use prismq_domain::{ContentItem, Metrics, TaskStatus, Timestamp};

use super::rows::{insert_result, insert_task, read_result, TaskRow};
use crate::codec::{task_from_row, TASK_COLUMNS};
use crate::error::map_err;
use prismq_domain::ports::validation::{CheckResult, Outcome};

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
        lapses: 4,
    })
}

fn row_of(t: &Task) -> TaskRow {
    TaskRow {
        task_type: t.task_type.as_str().to_owned(),
        params: t.params.to_string(),
        priority: t.priority.get(),
        status: t.status,
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
        lapses: t.lapses,
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
    item.rank = Some(3);
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
            "the region column reads {region:?}, expected \"DE\" (the compatibility's)"
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
    let back = read_result(&tx, &item.platform, &item.source_id)
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
