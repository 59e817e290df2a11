//! The plugin trait: what a source (YouTube, a blog feed, …) implements to handle one task
//! type. A plugin crate depends on `prismq-domain` alone.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::cancel::CancelSignal;
use crate::content::ContentItem;
use crate::error::{PortError, ValidationError};
use crate::ports::{LogLevel, NewLogEntry, TaskEvent, TaskLog};
use crate::retry::ErrorClass;
use crate::task::{Task, TaskId, TaskType};
use crate::Timestamp;

/// What a successful run produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    /// Items found; the runtime saves them to the result store before completing the task.
    pub items: Vec<ContentItem>,
    /// A short human summary ("42 videos from @channel").
    pub summary: String,
    /// Named counters (pages fetched, quota units, …).
    pub counters: BTreeMap<String, u64>,
    /// Tasks the run asks to have enqueued after its items are saved (best effort: a
    /// follow-up that cannot be enqueued is noted in the task's log, the task still
    /// completes). Give each an idempotency key so a retried run asks for the same task.
    #[serde(default)]
    pub follow_ups: Vec<FollowUp>,
}

/// A task a run asks for, and when it is not needed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowUp {
    /// The task to enqueue (validated by its handler first, like any enqueue).
    pub task: crate::task::NewTask,
    /// Skip it when this channel already has a baseline with a median (a stored
    /// [`crate::ports::ChannelBaseline`] of any format and basis): the follow-up that
    /// collects a channel's uploads so its videos can be scored.
    #[serde(default)]
    pub unless_channel_has_baseline: Option<String>,
}

/// A failed run, classified where it arose.
///
/// A run that fetched some items before it failed (a quota spent on page three, a network
/// error midway) reports them in `partial`: the runtime saves them to the result store
/// before it records the failure, so the work already paid for is kept, and the retry or
/// deferral that follows is safe because results are deduplicated on `(source, source_id)`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct TaskError {
    /// How the runtime treats it.
    pub class: ErrorClass,
    /// One line for the operator: what went wrong and, where possible, what to do.
    pub message: String,
    /// Items fetched before the failure; saved like a success's items, then the task fails
    /// with `class`. Empty when nothing was fetched. A handler told to stop (its cancel
    /// signal raised at the time limit or the end of the shutdown grace) that returns within
    /// a second has these saved too.
    pub partial: Vec<ContentItem>,
}

impl TaskError {
    /// May succeed if tried again.
    pub fn retryable(message: impl Into<String>) -> Self {
        TaskError {
            class: ErrorClass::Retryable,
            message: message.into(),
            partial: Vec::new(),
        }
    }

    /// Will succeed only after `until` (quota reset, Retry-After); does not use an attempt.
    pub fn retry_after(until: Timestamp, message: impl Into<String>) -> Self {
        TaskError {
            class: ErrorClass::RetryableAfter(until),
            message: message.into(),
            partial: Vec::new(),
        }
    }

    /// Will never succeed as asked.
    pub fn permanent(message: impl Into<String>) -> Self {
        TaskError {
            class: ErrorClass::Permanent,
            message: message.into(),
            partial: Vec::new(),
        }
    }

    /// The same error carrying `items` fetched before it arose (replacing any already
    /// attached). The class and message are unchanged.
    #[must_use]
    pub fn with_partial(mut self, items: Vec<ContentItem>) -> Self {
        self.partial = items;
        self
    }
}

impl From<ValidationError> for TaskError {
    fn from(e: ValidationError) -> Self {
        TaskError::permanent(e.to_string())
    }
}

/// What a handler gets besides its task: a cancellation signal and the task's log.
#[derive(Clone)]
pub struct TaskContext {
    task_id: TaskId,
    cancel: CancelSignal,
    log: Arc<dyn TaskLog>,
}

impl fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskContext")
            .field("task_id", &self.task_id)
            .field("cancelled", &self.cancel.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl TaskContext {
    /// A context for `task_id` that logs to `log` and is cancelled through `cancel`.
    pub fn new(task_id: TaskId, cancel: CancelSignal, log: Arc<dyn TaskLog>) -> Self {
        TaskContext {
            task_id,
            cancel,
            log,
        }
    }

    /// The task this context belongs to.
    pub fn task_id(&self) -> TaskId {
        self.task_id
    }

    /// Raised when the handler should stop early: shutdown, timeout or a lost lease. A
    /// handler should check it between requests and return promptly.
    pub fn cancel_signal(&self) -> &CancelSignal {
        &self.cancel
    }

    /// True once the handler should stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Writes a progress note to the task's log.
    ///
    /// # Errors
    /// The log's port error; a handler may ignore it (progress is advisory).
    pub async fn progress(
        &self,
        message: impl Into<String> + Send,
        details: Value,
    ) -> Result<(), PortError> {
        self.log
            .append(
                self.task_id,
                NewLogEntry {
                    level: LogLevel::Info,
                    event: TaskEvent::Progress,
                    message: message.into(),
                    details,
                },
            )
            .await
    }
}

/// A handler for one task type. Implemented by plugins, registered in the app.
#[async_trait]
pub trait TaskHandler: Send + Sync {
    /// The task type this handler runs.
    fn task_type(&self) -> TaskType;

    /// Checks parameters at enqueue time, so a bad task is refused before it is queued.
    /// Should parse into a typed struct with `deny_unknown_fields` so typos are errors.
    ///
    /// # Errors
    /// A [`ValidationError`] naming the parameter (`field` relative to params), its problem
    /// and what is accepted.
    fn validate(&self, params: &Map<String, Value>) -> Result<(), ValidationError>;

    /// Runs one attempt of `task`.
    ///
    /// # Errors
    /// A classified [`TaskError`]; the runtime retries, defers or dead-letters by its class.
    async fn handle(&self, task: &Task, ctx: &TaskContext) -> Result<TaskResult, TaskError>;

    /// The task type's parameters, declared ([`crate::param_spec`]): the source of the
    /// JSON Schema `prismq types` and `GET /v1/types` show. `None` (the default) when the
    /// plugin declares none; `validate` is the check either way.
    fn params(&self) -> Option<Vec<crate::param_spec::ParamSpec>> {
        None
    }

    /// The quota buckets (names in the [`QuotaLedger`](crate::ports::QuotaLedger)) this
    /// handler's runs charge. While any of them is marked exhausted (its `exhausted_until`
    /// ahead), the worker runtime does not claim this type at all: its tasks stay queued
    /// instead of being claimed only to be deferred. Empty (the default): no quota holds
    /// this type back.
    fn quota_buckets(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Where a plugin's `register` function puts its handlers. The app's plugin registry
/// implements it; a plugin crate needs nothing else of ours to register.
pub trait Registrar {
    /// Adds a handler.
    ///
    /// # Errors
    /// A [`ValidationError`] on field `type` when a handler for the same task type is
    /// already registered.
    fn add(&mut self, handler: Arc<dyn TaskHandler>) -> Result<(), ValidationError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_classify() {
        assert_eq!(TaskError::retryable("x").class, ErrorClass::Retryable);
        assert_eq!(TaskError::permanent("x").class, ErrorClass::Permanent);
        let t = Timestamp::from_second(10).unwrap();
        assert_eq!(
            TaskError::retry_after(t, "x").class,
            ErrorClass::RetryableAfter(t)
        );
        let v: TaskError = ValidationError::new("query", "empty", "text").into();
        assert_eq!(v.class, ErrorClass::Permanent);
        assert!(v.message.contains("invalid query"));
        assert!(v.partial.is_empty());
    }

    #[test]
    fn partial_items_ride_along_without_changing_the_class_or_message() {
        let t = Timestamp::from_second(10).unwrap();
        let items = vec![
            ContentItem::new("s", "a", "A"),
            ContentItem::new("s", "b", "B"),
        ];
        let e = TaskError::retry_after(t, "quota spent").with_partial(items.clone());
        assert_eq!(e.class, ErrorClass::RetryableAfter(t));
        assert_eq!(e.message, "quota spent");
        assert_eq!(e.to_string(), "quota spent");
        assert_eq!(e.partial, items);
        let replaced = e.with_partial(vec![items[0].clone()]);
        assert_eq!(replaced.partial.len(), 1);
        assert!(TaskError::permanent("x").partial.is_empty());
    }
}
