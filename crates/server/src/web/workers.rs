//! Workers: each registered worker loop with its health, current task, counts, claiming
//! strategy and the task types it holds back, as `prismq workers`.

use askama::Template;
use axum::extract::State;

use prismq_app::overview::health_name;

use super::page::{line, render, time, Chrome, Viewer, WebResult, LINE_MAX, TITLE_MAX};
use crate::ServerState;

/// One worker's row.
#[derive(Debug)]
pub struct WorkerRow {
    /// Id.
    pub id: String,
    /// Host and pid.
    pub host: String,
    /// active, stale or stopped.
    pub health: &'static str,
    /// The task it runs, if any.
    pub current: Option<i64>,
    /// Done and failed.
    pub done: u64,
    /// Failed.
    pub failed: u64,
    /// Strategy.
    pub strategy: String,
    /// Started.
    pub started: String,
    /// Last heartbeat.
    pub heartbeat: String,
    /// Types held back and why.
    pub held: String,
}

#[derive(Debug, Template)]
#[template(path = "workers.html")]
struct WorkersPage {
    chrome: Chrome,
    rows: Vec<WorkerRow>,
}

/// `GET /workers`.
pub async fn list(State(state): State<ServerState>, viewer: Viewer) -> WebResult {
    let stale_after = state.app.config.worker.heartbeat_interval * 3;
    let workers = state.app.workers.list(stale_after).await?;
    let rows = workers
        .iter()
        .map(|w| WorkerRow {
            id: line(&w.info.id.to_string(), TITLE_MAX),
            host: line(
                &format!("{} (pid {})", w.info.hostname, w.info.pid),
                TITLE_MAX,
            ),
            health: health_name(w.health),
            current: w.heartbeat.current_task.map(|t| t.0),
            done: w.heartbeat.tasks_done,
            failed: w.heartbeat.tasks_failed,
            strategy: w.info.strategy.to_string(),
            started: time(w.started_at),
            heartbeat: time(w.heartbeat_at),
            held: line(
                &w.heartbeat
                    .held
                    .iter()
                    .map(|h| format!("{}: {}", h.task_type, h.reason))
                    .collect::<Vec<_>>()
                    .join("; "),
                LINE_MAX,
            ),
        })
        .collect();
    Ok(render(&WorkersPage {
        chrome: viewer.chrome("Workers", "workers"),
        rows,
    }))
}
