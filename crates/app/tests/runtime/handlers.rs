//! Test-only handlers.

use async_trait::async_trait;
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prismq_domain::{
    CancelSignal, ContentItem, FollowUp, Task, TaskContext, TaskError, TaskHandler, TaskResult,
    TaskType, Timestamp, ValidationError,
};

/// What a scripted handler does on one call.
#[derive(Clone, Debug)]
pub enum Step {
    Ok(usize),
    Retryable,
    Permanent,
    DeferUntil(Timestamp),
    Panic,
    /// Sleeps this long (tokio time), ignoring cancellation, then succeeds.
    Sleep(Duration),
    /// Sleeps until cancelled, then fails as retryable (the runtime usually stops it first).
    UntilCancelled,
    /// Succeeds with no items, asking for these follow-ups.
    FollowUps(Vec<FollowUp>),
}

/// Plays `steps` in order, one per call; the last step repeats.
pub struct Scripted {
    pub name: &'static str,
    pub steps: Vec<Step>,
    pub calls: AtomicU32,
    /// Every call's cancel signal, to check the runtime raised it.
    pub signals: Mutex<Vec<CancelSignal>>,
}

impl Scripted {
    pub fn new(name: &'static str, steps: Vec<Step>) -> Arc<Self> {
        Arc::new(Scripted {
            name,
            steps,
            calls: AtomicU32::new(0),
            signals: Mutex::new(Vec::new()),
        })
    }

    pub fn all_cancelled(&self) -> bool {
        let s = self.signals.lock().unwrap();
        !s.is_empty() && s.iter().all(CancelSignal::is_cancelled)
    }

    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

fn items(task: &Task, n: usize) -> Vec<ContentItem> {
    (0..n)
        .map(|i| {
            let mut it = ContentItem::new("test_source", format!("t{}-{i}", task.id), "an item");
            it.metrics.views = Some(10);
            it
        })
        .collect()
}

#[async_trait]
impl TaskHandler for Scripted {
    fn task_type(&self) -> TaskType {
        TaskType::new(self.name).unwrap()
    }

    fn validate(&self, _: &Map<String, Value>) -> Result<(), ValidationError> {
        Ok(())
    }

    async fn handle(&self, task: &Task, ctx: &TaskContext) -> Result<TaskResult, TaskError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) as usize;
        self.signals
            .lock()
            .unwrap()
            .push(ctx.cancel_signal().clone());
        let step = self.steps[n.min(self.steps.len() - 1)].clone();
        match step {
            Step::Ok(k) => Ok(TaskResult {
                items: items(task, k),
                summary: format!("{k} items"),
                counters: [("pages".to_owned(), 1)].into_iter().collect(),
                follow_ups: Vec::new(),
            }),
            Step::FollowUps(follow_ups) => Ok(TaskResult {
                summary: "follow-ups".into(),
                follow_ups,
                ..TaskResult::default()
            }),
            Step::Retryable => Err(TaskError::retryable("flaky")),
            Step::Permanent => Err(TaskError::permanent("never")),
            Step::DeferUntil(t) => Err(TaskError::retry_after(t, "quota")),
            Step::Panic => panic!("boom in handler"),
            Step::Sleep(d) => {
                tokio::time::sleep(d).await;
                Ok(TaskResult::default())
            }
            Step::UntilCancelled => {
                ctx.cancel_signal().cancelled().await;
                Err(TaskError::retryable("cancelled"))
            }
        }
    }
}
