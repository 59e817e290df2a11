//! The runtime's defence in depth against outside text: whatever message a handler fails
//! with (control characters, forged lines, megabytes), the stored `last_error` and the
//! task log's failure entry are one line of at most `MESSAGE_MAX_CHARS` characters, and so
//! is what the runtime writes about it to the process's log.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use prismq_app::{PluginRegistry, RunOptions, Runtime, WorkerSettings};
use prismq_domain::ports::{ResultStore, TaskLog, TaskQueue, WorkerRegistry};
use prismq_domain::text::{is_one_line, MESSAGE_MAX_CHARS};
use prismq_domain::{
    ClaimingStrategy, Registrar, RetryPolicy, Task, TaskContext, TaskError, TaskHandler,
    TaskResult, TaskStatus, TaskType, ValidationError,
};
use prismq_testkit::{FakeClock, MemoryStore};

/// A handler that fails with what a careless plugin might pass on from a server.
struct Careless;

fn hostile() -> String {
    format!(
        "\u{1b}[2J\u{1b}[31mreason\u{7}\r\nerror: forged line\r\n\u{202E}{}",
        "x".repeat(5 << 20)
    )
}

#[async_trait]
impl TaskHandler for Careless {
    fn task_type(&self) -> TaskType {
        TaskType::new("careless").unwrap()
    }
    fn validate(&self, _params: &Map<String, Value>) -> Result<(), ValidationError> {
        Ok(())
    }
    async fn handle(&self, _task: &Task, _ctx: &TaskContext) -> Result<TaskResult, TaskError> {
        Err(TaskError::permanent(hostile()))
    }
}

/// The process log, captured: a `MakeWriter` appending to a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn a_hostile_failure_message_is_stored_as_one_bounded_line() {
    // The runtime's own log lines (current-thread runtime: the subscriber sees every task).
    let log = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(log.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _log_guard = tracing::subscriber::set_default(subscriber);
    let clock = Arc::new(FakeClock::default());
    let store = MemoryStore::new(clock, RetryPolicy::default());
    let mut registry = PluginRegistry::new();
    registry.add(Arc::new(Careless)).unwrap();
    let s = Arc::new(store.clone());
    let settings = WorkerSettings {
        concurrency: 1,
        strategy: ClaimingStrategy::Fifo,
        ..WorkerSettings::default()
    };
    let rt = Runtime::new(
        s.clone() as Arc<dyn TaskQueue>,
        s.clone() as Arc<dyn WorkerRegistry>,
        s.clone() as Arc<dyn TaskLog>,
        s as Arc<dyn ResultStore>,
        Arc::new(registry),
        settings,
    );
    let id = store
        .enqueue(prismq_testkit::fixtures::new_task("careless"))
        .await
        .unwrap()
        .id;
    let drain = RunOptions {
        drain: true,
        max_tasks: None,
    };
    rt.run(drain, CancellationToken::new()).await.unwrap();
    let task = TaskQueue::get(&store, id).await.unwrap();
    assert_eq!(task.status, TaskStatus::Failed);
    let error = task.last_error.unwrap();
    assert!(
        error.chars().count() <= MESSAGE_MAX_CHARS,
        "{} chars",
        error.len()
    );
    assert!(
        is_one_line(&error),
        "{:?}",
        error.chars().take(80).collect::<String>()
    );
    assert!(error.contains("reason") && error.contains("error: forged line"));
    let logged: usize = TaskLog::list(&store, id)
        .await
        .unwrap()
        .iter()
        .map(|e| e.message.len() + e.details.to_string().len())
        .sum();
    assert!(
        logged < 4 * MESSAGE_MAX_CHARS * 4,
        "{logged} bytes in the task log"
    );
    for e in TaskLog::list(&store, id).await.unwrap() {
        assert!(is_one_line(&e.message), "{:?}", e.message);
    }
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("handler failed"), "{text:.400}");
    assert!(
        !text.contains("error: forged line\r") && !text.contains('\u{1b}'),
        "the process log carries the raw message"
    );
    assert!(
        text.len() < 8 * MESSAGE_MAX_CHARS * 4,
        "{} bytes logged",
        text.len()
    );
}
