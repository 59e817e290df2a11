//! `TaskLog` for `MemoryStore`: per-task audit entries in the order they were written.

use async_trait::async_trait;
use prismq_domain::ports::{LogRecord, NewLogEntry, TaskLog};
use prismq_domain::{PortError, TaskId};

use super::MemoryStore;

#[async_trait]
impl TaskLog for MemoryStore {
    async fn append(&self, task: TaskId, entry: NewLogEntry) -> Result<(), PortError> {
        let now = self.now();
        let mut st = self.state();
        if !st.tasks.contains_key(&task) {
            return Err(PortError::NotFound(format!("task {task}")));
        }
        st.logs.entry(task).or_default().push(LogRecord {
            task_id: task,
            at: now,
            level: entry.level,
            event: entry.event,
            message: entry.message,
            details: entry.details,
        });
        Ok(())
    }

    async fn list(&self, task: TaskId) -> Result<Vec<LogRecord>, PortError> {
        let st = self.state();
        if !st.tasks.contains_key(&task) {
            return Err(PortError::NotFound(format!("task {task}")));
        }
        Ok(st.logs.get(&task).cloned().unwrap_or_default())
    }
}
