//! Row conversion for the legacy import: ISO-8601 text times, the Python-era task, log and
//! result rows into PrismQ's, with every refusal a one-line reason reported by row id.

use rusqlite::types::Value as Sql;
use serde_json::{Map, Value};

use prismq_domain::ports::{LogLevel, TaskEvent};
use prismq_domain::task::{TaskType, WorkerId, MAX_ATTEMPTS_LIMIT};
use prismq_domain::{ContentItem, Metrics, TaskStatus, Timestamp};

use super::rows::TaskRow;

/// Milliseconds since the epoch from a legacy time: ISO-8601 text with or without an
/// offset (no offset means UTC, as Python's `utcnow().isoformat()` and SQLite's
/// `datetime('now')` write), a `T` or a space between date and time; or a number of
/// seconds since the epoch.
pub(crate) fn parse_time(v: &Sql, column: &str) -> Result<Option<i64>, String> {
    match v {
        Sql::Null => Ok(None),
        Sql::Integer(s) => Ok(Some(s.saturating_mul(1000))),
        Sql::Real(s) => Ok(Some((s * 1000.0).round() as i64)),
        Sql::Text(t) => parse_text_time(t)
            .map(Some)
            .ok_or_else(|| format!("{column} {t:?} is not an ISO-8601 time")),
        Sql::Blob(_) => Err(format!("{column} is a blob, not a time")),
    }
}

fn parse_text_time(t: &str) -> Option<i64> {
    let t = t.trim();
    let mut s = t.to_owned();
    if s.len() > 10 && s.as_bytes()[10] == b' ' {
        s.replace_range(10..11, "T");
    }
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Some(ts.as_millisecond());
    }
    let civil = s.parse::<jiff::civil::DateTime>().ok().or_else(|| {
        s.parse::<jiff::civil::Date>()
            .ok()
            .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
    })?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp().as_millisecond())
}

fn text(v: &Sql) -> Option<String> {
    match v {
        Sql::Text(t) => Some(t.clone()),
        Sql::Integer(i) => Some(i.to_string()),
        Sql::Real(r) => Some(r.to_string()),
        _ => None,
    }
}

fn int(v: &Sql, column: &str) -> Result<i64, String> {
    match v {
        Sql::Integer(i) => Ok(*i),
        Sql::Text(t) => t
            .trim()
            .parse()
            .map_err(|_| format!("{column} {t:?} is not an integer")),
        _ => Err(format!("{column} is missing or not an integer")),
    }
}

/// The legacy task columns, in the order [`task_row`] reads them.
pub(crate) const TASK_COLUMNS: [&str; 13] = [
    "id",
    "task_type",
    "parameters",
    "priority",
    "status",
    "claimed_by",
    "retry_count",
    "max_retries",
    "result_data",
    "error_message",
    "created_at",
    "updated_at",
    "completed_at",
];

/// Converts one legacy task row; the flag is true when a claimed or running task was put
/// back in the queue.
pub(crate) fn task_row(v: &[Sql]) -> Result<(TaskRow, bool), String> {
    let id = int(&v[0], "id")?;
    let task_type =
        TaskType::new(text(&v[1]).unwrap_or_default()).map_err(|e| format!("task_type: {e}"))?;
    let params_text = text(&v[2]).ok_or("parameters is missing")?;
    let params: Value =
        serde_json::from_str(&params_text).map_err(|e| format!("parameters is not JSON ({e})"))?;
    if !params.is_object() {
        return Err("parameters is JSON but not an object".into());
    }
    let priority = int(&v[3], "priority")?;
    if !(1..=10).contains(&priority) {
        return Err(format!("priority {priority} is outside 1–10"));
    }
    let status_text = text(&v[4]).unwrap_or_default();
    let status: TaskStatus = status_text
        .parse()
        .map_err(|_| format!("unknown status {status_text:?}"))?;
    let requeued = matches!(status, TaskStatus::Claimed | TaskStatus::Running);
    let created = parse_time(&v[10], "created_at")?.ok_or("created_at is missing")?;
    let updated = parse_time(&v[11], "updated_at")?.unwrap_or(created);
    let completed = parse_time(&v[12], "completed_at")?;
    let attempts = int(&v[6], "retry_count")?.clamp(0, i64::from(u32::MAX)) as u32;
    let max_attempts = int(&v[7], "max_retries")?.clamp(1, i64::from(MAX_ATTEMPTS_LIMIT)) as u32;
    let summary = text(&v[8]).map(|r| match serde_json::from_str::<Value>(&r) {
        Ok(json) => json.to_string(),
        Err(_) => Value::String(r).to_string(),
    });
    let finished = status.is_final().then(|| completed.unwrap_or(updated));
    let claimed_by = if status.is_final() {
        text(&v[5]).filter(|w| WorkerId::new(w.as_str()).is_ok())
    } else {
        None
    };
    let row = TaskRow {
        task_type: task_type.as_str().to_owned(),
        params: params.to_string(),
        priority: priority as u8,
        status: if requeued { TaskStatus::Queued } else { status },
        attempts,
        max_attempts,
        run_after: created,
        lease_expires_at: None,
        claimed_by,
        lease_token: None,
        idempotency_key: Some(legacy_key(id)),
        compatibility: "{}".into(),
        last_error: text(&v[9]),
        summary,
        created_at: created,
        updated_at: updated,
        started_at: None,
        finished_at: finished,
        lapses: 0,
    };
    Ok((row, requeued))
}

/// The idempotency key recording that legacy task `id` was imported.
pub(crate) fn legacy_key(id: i64) -> String {
    format!("legacy:{id}")
}

/// A legacy log row converted: (at, level, event, message, details); `None` for the
/// creation event, which PrismQ derives from the task's `created_at`.
pub(crate) type LogRow = (i64, LogLevel, TaskEvent, String, Value);

/// Converts one log row: `v` = [id, task_id, time, event, level, message, details].
pub(crate) fn log_row(v: &[Sql]) -> Result<Option<LogRow>, String> {
    let at = parse_time(&v[2], "time")?.ok_or("the time is missing")?;
    let event_name = text(&v[3]).unwrap_or_else(|| "progress".into());
    let event = match event_name.trim().to_ascii_lowercase().as_str() {
        "created" | "enqueued" | "queued" => return Ok(None),
        "claimed" => TaskEvent::Claimed,
        "started" | "running" | "processing" => TaskEvent::Started,
        "completed" | "succeeded" | "done" => TaskEvent::Completed,
        "failed" | "dead_letter" => TaskEvent::Failed,
        "retried" | "retry" | "retrying" => TaskEvent::Retried,
        "cancelled" | "canceled" => TaskEvent::Cancelled,
        other => TaskEvent::parse(other).unwrap_or(TaskEvent::Progress),
    };
    let level = match text(&v[4])
        .map(|l| l.trim().to_ascii_lowercase())
        .as_deref()
    {
        Some("debug") => LogLevel::Debug,
        Some("info") => LogLevel::Info,
        Some("warn" | "warning") => LogLevel::Warn,
        Some("error" | "critical") => LogLevel::Error,
        _ => match event {
            TaskEvent::Failed => LogLevel::Error,
            TaskEvent::Retried => LogLevel::Warn,
            _ => LogLevel::Info,
        },
    };
    let message = match (text(&v[5]), event) {
        (Some(m), _) => m,
        (None, TaskEvent::Progress) => format!("legacy event {event_name:?}"),
        (None, e) => e.as_str().to_owned(),
    };
    let details = match text(&v[6]) {
        None => Value::Null,
        Some(d) => serde_json::from_str(&d).map_err(|e| format!("details is not JSON ({e})"))?,
    };
    Ok(Some((at, level, event, message, details)))
}

fn counter(m: &Map<String, Value>, keys: &[&str]) -> Result<Option<i64>, String> {
    for k in keys {
        let n = match m.get(*k) {
            None | Some(Value::Null) => continue,
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            Some(_) => None,
        };
        return match n {
            Some(n) if n >= 0 => Ok(Some(n)),
            _ => Err(format!("metrics.{k} is not a non-negative integer")),
        };
    }
    Ok(None)
}

/// Converts one legacy result row: `v` = [id, source, source_id, title, description, tags,
/// metrics, created_at, updated_at]. Returns the item and its first and last seen times.
pub(crate) fn result_row(v: &[Sql]) -> Result<(ContentItem, i64, i64), String> {
    let mut item = ContentItem::new(
        text(&v[1]).unwrap_or_default(),
        text(&v[2]).unwrap_or_default(),
        text(&v[3]).ok_or("title is missing")?,
    );
    item.description = text(&v[4]);
    if let Some(tags) = text(&v[5]) {
        item.tags = serde_json::from_str(&tags)
            .map_err(|e| format!("tags is not a JSON array of strings ({e})"))?;
    }
    if let Some(metrics) = text(&v[6]) {
        let m: Map<String, Value> = serde_json::from_str(&metrics)
            .map_err(|e| format!("metrics is not a JSON object ({e})"))?;
        item.metrics = Metrics {
            views: counter(&m, &["views", "view_count", "viewCount"])?,
            likes: counter(&m, &["likes", "like_count", "likeCount"])?,
            comments: counter(&m, &["comments", "comment_count", "commentCount"])?,
        };
        let known = [
            "views",
            "view_count",
            "viewCount",
            "likes",
            "like_count",
            "likeCount",
            "comments",
            "comment_count",
            "commentCount",
        ];
        let rest: Map<String, Value> = m
            .into_iter()
            .filter(|(k, _)| !known.contains(&k.as_str()))
            .collect();
        if !rest.is_empty() {
            item.extra
                .insert("legacy_metrics".into(), Value::Object(rest));
        }
    }
    item.validate().map_err(|e| e.to_string())?;
    if item.source.starts_with("youtube") {
        item.url = Some(format!(
            "https://www.youtube.com/watch?v={}",
            item.source_id
        ));
    }
    let first = parse_time(&v[7], "created_at")?.ok_or("created_at is missing")?;
    let last = parse_time(&v[8], "updated_at")?.unwrap_or(first).max(first);
    Ok((item, first, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_the_shapes_python_wrote() {
        let t = |s: &str| parse_time(&Sql::Text(s.into()), "t").unwrap().unwrap();
        let want = 1_762_862_400_000; // 2025-11-11T12:00:00Z
        assert_eq!(t("2025-11-11T12:00:00Z"), want);
        assert_eq!(t("2025-11-11T12:00:00"), want);
        assert_eq!(t("2025-11-11 12:00:00"), want);
        assert_eq!(t("2025-11-11T13:00:00+01:00"), want);
        assert_eq!(t("2025-11-11T12:00:00.250000"), want + 250);
        assert_eq!(t("2025-11-11"), want - 12 * 3_600_000);
        assert!(parse_time(&Sql::Text("yesterday".into()), "t").is_err());
        assert_eq!(parse_time(&Sql::Null, "t").unwrap(), None);
    }
}
