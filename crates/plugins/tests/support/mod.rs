//! Test support: a local stand-in for the YouTube Data API served over real HTTP on
//! loopback (wiremock), answering from the fixtures in `tests/fixtures/data_api/`, and
//! helpers to register the plugin and run a task.

#![allow(dead_code)]

pub mod fake_api;

use prismq_domain::ports::Clock;
use prismq_domain::PluginContext;
use prismq_domain::{
    CancelSignal, Compatibility, Priority, Registrar, RetryPolicy, Task, TaskContext, TaskError,
    TaskHandler, TaskId, TaskResult, TaskStatus, TaskType, Timestamp, ValidationError,
};
use prismq_plugins::{register, ApiKey, Backend, YoutubeConfig};
use prismq_testkit::{FakeClock, MemoryStore};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Collects handlers by task type.
#[derive(Default)]
pub struct Handlers(pub BTreeMap<String, Arc<dyn TaskHandler>>);

impl Registrar for Handlers {
    fn add(&mut self, handler: Arc<dyn TaskHandler>) -> Result<(), ValidationError> {
        let t = handler.task_type().to_string();
        if self.0.contains_key(&t) {
            return Err(ValidationError::new(
                "type",
                format!("{t} twice"),
                "unique types",
            ));
        }
        self.0.insert(t, handler);
        Ok(())
    }
}

/// The plugin registered against a base URL, with a fake clock and an in-memory ledger.
pub struct Harness {
    pub handlers: Handlers,
    pub clock: Arc<FakeClock>,
    pub store: MemoryStore,
}

/// 2026-11-20T12:00:00Z: after every fixture's publication date.
pub fn start_time() -> Timestamp {
    "2026-11-20T12:00:00Z".parse().unwrap()
}

/// A config pointing at `base` with `key`.
pub fn config(base: &str, key: &str) -> YoutubeConfig {
    YoutubeConfig {
        backend: Backend::Api,
        api_key: Some(ApiKey::new(key).unwrap()),
        api_base_url: base.to_string(),
        ..YoutubeConfig::default()
    }
}

impl Harness {
    pub fn new(config: YoutubeConfig) -> Self {
        Self::at(config, start_time())
    }

    /// The harness with its clock starting at `start`.
    pub fn at(config: YoutubeConfig, start: Timestamp) -> Self {
        let clock = Arc::new(FakeClock::new(start));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let store = MemoryStore::new(dyn_clock.clone(), RetryPolicy::default());
        let mut handlers = Handlers::default();
        register(
            &mut handlers,
            config,
            PluginContext {
                quota: Arc::new(store.clone()),
                clock: dyn_clock,
                tracked: Arc::new(store.clone()),
            },
        )
        .expect("register");
        Harness {
            handlers,
            clock,
            store,
        }
    }

    pub fn handler(&self, task_type: &str) -> Arc<dyn TaskHandler> {
        self.handlers.0[task_type].clone()
    }

    /// Validates `params` as enqueue would, then runs one attempt.
    pub async fn run(&self, task_type: &str, params: Value) -> Result<TaskResult, TaskError> {
        self.run_until(task_type, params, CancelSignal::new()).await
    }

    /// Runs a task of `task_type` with `params`, stopped when `cancel` is raised.
    pub async fn run_until(
        &self,
        task_type: &str,
        params: Value,
        cancel: CancelSignal,
    ) -> Result<TaskResult, TaskError> {
        let handler = self.handler(task_type);
        handler
            .validate(params.as_object().expect("params object"))
            .expect("params validate");
        let task = task(task_type, params, self.clock.now());
        let ctx = TaskContext::new(task.id, cancel, Arc::new(self.store.clone()));
        handler.handle(&task, &ctx).await
    }
}

/// A running task of `task_type` with `params`.
pub fn task(task_type: &str, params: Value, now: Timestamp) -> Task {
    Task {
        id: TaskId(1),
        task_type: TaskType::new(task_type).unwrap(),
        params,
        priority: Priority::DEFAULT,
        status: TaskStatus::Running,
        attempts: 1,
        max_attempts: 3,
        run_after: now,
        lease_expires_at: None,
        claimed_by: None,
        lease_token: None,
        idempotency_key: None,
        compatibility: Compatibility::default(),
        last_error: None,
        summary: None,
        created_at: now,
        updated_at: now,
        finished_at: None,
        lapses: 0,
    }
}
