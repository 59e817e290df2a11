//! The task log: lifecycle events written inside the queue's transactions (or in the same
//! statement), and handler progress notes. The `enqueued` event is the task row's
//! `created_at`, not a stored row, so enqueueing costs one insert — as on SQLite.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use serde_json::Value;

use prismq_domain::ports::{LogLevel, LogRecord, NewLogEntry, TaskEvent, TaskLog};
use prismq_domain::task::TaskId;
use prismq_domain::PortError;

use crate::codec::{get, ts};
use crate::error::map_err;
use crate::PostgresStore;

const INSERT_LOG: &str = "INSERT INTO task_logs (task_id, at, level, event, message, details)
    VALUES ($1, $2, $3, $4, $5, $6)";

/// Appends one log row on `c` (a transaction).
pub(crate) async fn insert_log(
    c: &impl GenericClient,
    task: TaskId,
    at: i64,
    level: LogLevel,
    event: TaskEvent,
    message: &str,
    details: &Value,
) -> Result<(), PortError> {
    let details = (!details.is_null()).then_some(details);
    let stmt = c.prepare_cached(INSERT_LOG).await.map_err(map_err)?;
    c.execute(
        &stmt,
        &[
            &task.0,
            &at,
            &level.as_str(),
            &event.as_str(),
            &message,
            &details,
        ],
    )
    .await
    .map_err(map_err)?;
    Ok(())
}

fn level_of(s: &str) -> LogLevel {
    match s {
        "debug" => LogLevel::Debug,
        "warn" => LogLevel::Warn,
        "error" => LogLevel::Error,
        _ => LogLevel::Info,
    }
}

impl PostgresStore {
    /// [`TaskLog::list`].
    ///
    /// # Errors
    /// As the port.
    pub async fn task_log(&self, task: TaskId) -> Result<Vec<LogRecord>, PortError> {
        let client = self.client().await?;
        let head = client
            .prepare_cached("SELECT created_at FROM task_queue WHERE id = $1")
            .await
            .map_err(map_err)?;
        let body = client
            .prepare_cached(
                "SELECT at, level, event, message, details FROM task_logs WHERE task_id = $1 ORDER BY id",
            )
            .await
            .map_err(map_err)?;
        let id = task.0;
        let args: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&id];
        let (created, rows) =
            tokio::try_join!(client.query_opt(&head, &args), client.query(&body, &args))
                .map_err(map_err)?;
        let created = created.ok_or_else(|| PortError::NotFound(format!("task {task}")))?;
        let mut out = vec![LogRecord {
            task_id: task,
            at: ts(get(&created, 0)?)?,
            level: LogLevel::Info,
            event: TaskEvent::Enqueued,
            message: "enqueued".into(),
            details: Value::Null,
        }];
        for r in &rows {
            let level: String = get(r, 1)?;
            let event: String = get(r, 2)?;
            out.push(LogRecord {
                task_id: task,
                at: ts(get(r, 0)?)?,
                level: level_of(&level),
                event: TaskEvent::parse(&event).unwrap_or(TaskEvent::Progress),
                message: get(r, 3)?,
                details: get::<Option<Value>>(r, 4)?.unwrap_or(Value::Null),
            });
        }
        Ok(out)
    }
}

#[async_trait]
impl TaskLog for PostgresStore {
    async fn append(&self, task: TaskId, entry: NewLogEntry) -> Result<(), PortError> {
        let now = self.now_ms();
        let details = (!entry.details.is_null()).then_some(&entry.details);
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO task_logs (task_id, at, level, event, message, details)
                 SELECT id, $2, $3, $4, $5, $6 FROM task_queue WHERE id = $1",
            )
            .await
            .map_err(map_err)?;
        let n = client
            .execute(
                &stmt,
                &[
                    &task.0,
                    &now,
                    &entry.level.as_str(),
                    &entry.event.as_str(),
                    &entry.message,
                    &details,
                ],
            )
            .await
            .map_err(map_err)?;
        if n == 0 {
            return Err(PortError::NotFound(format!("task {task}")));
        }
        Ok(())
    }

    async fn list(&self, task: TaskId) -> Result<Vec<LogRecord>, PortError> {
        self.task_log(task).await
    }
}
