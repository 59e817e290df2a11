//! Tests of partial progress: a handler that fails after fetching some items has them saved
//! (with the task id, noted in the task's log) before the failure is recorded, and a store
//! that cannot save them does not stop the failure from being recorded. The same for a
//! handler the runtime stops (time limit, shutdown grace over) that returns its items when
//! told to; one that does not return is aborted and keeps nothing.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use prismq_domain::ports::{
    LogLevel, MetricSnapshot, ResultQuery, ResultStore, StoredResult, TaskEvent, TaskLog,
    TaskQueue, WorkerRegistry,
};
use prismq_domain::{
    ClaimingStrategy, ContentItem, PortError, Registrar, RetryPolicy, SaveReport, Task,
    TaskContext, TaskError, TaskHandler, TaskId, TaskResult, TaskStatus, TaskType, Timestamp,
    ValidationError,
};
use prismq_testkit::{FakeClock, MemoryStore};

use super::gate::BreakerSettings;
use super::{RunOptions, Runtime, WorkerSettings};
use crate::registry::PluginRegistry;

const DRAIN: RunOptions = RunOptions {
    drain: true,
    max_tasks: None,
};

fn settings() -> WorkerSettings {
    WorkerSettings {
        concurrency: 1,
        strategy: ClaimingStrategy::Fifo,
        task_types: Vec::new(),
        region: None,
        only_task: None,
        lease: Duration::from_secs(30),
        heartbeat_interval: Duration::from_secs(10),
        idle_backoff_min: Duration::from_millis(50),
        idle_backoff_max: Duration::from_secs(5),
        handler_timeout: Duration::from_secs(600),
        shutdown_grace: Duration::from_secs(30),
        prefetch: crate::config::Prefetch::AtMost(1),
        hostname: "testhost".into(),
        pid: 7,
        breaker: BreakerSettings::default(),
    }
}

fn items(n: usize) -> Vec<ContentItem> {
    (0..n)
        .map(|i| {
            let mut it = ContentItem::new("test_source", format!("p{i}"), "a partial item");
            it.metrics.views = Some(10 + i as i64);
            it
        })
        .collect()
}

/// When [`FailsWith`] returns its error.
#[derive(Clone, Copy)]
enum Returns {
    /// At once.
    AtOnce,
    /// Once its cancel signal is raised (the runtime stopping it).
    WhenCancelled,
    /// Never: it ignores the cancel signal.
    Never,
}

/// Fails every call with `error` (partial items included), when `returns` says.
struct FailsWith {
    error: TaskError,
    returns: Returns,
    calls: AtomicU32,
}

#[async_trait]
impl TaskHandler for FailsWith {
    fn task_type(&self) -> TaskType {
        TaskType::new("partial").unwrap()
    }

    fn validate(&self, _: &Map<String, Value>) -> Result<(), ValidationError> {
        Ok(())
    }

    async fn handle(&self, _: &Task, ctx: &TaskContext) -> Result<TaskResult, TaskError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.returns {
            Returns::AtOnce => {}
            Returns::WhenCancelled => ctx.cancel_signal().cancelled().await,
            Returns::Never => std::future::pending().await,
        }
        Err(self.error.clone())
    }
}

/// A result store over the memory store that records the task's status at each save (to
/// prove the save came before `fail`), or refuses every save with `refuse`.
struct Watching {
    inner: MemoryStore,
    seen_status: Mutex<Vec<TaskStatus>>,
    refuse: Option<PortError>,
}

#[async_trait]
impl ResultStore for Watching {
    async fn save(
        &self,
        task: Option<TaskId>,
        items: &[ContentItem],
    ) -> Result<SaveReport, PortError> {
        let id = task.expect("partial items are saved with the task id");
        let status = TaskQueue::get(&self.inner, id).await?.status;
        self.seen_status.lock().unwrap().push(status);
        match &self.refuse {
            Some(e) => Err(e.clone()),
            None => self.inner.save(task, items).await,
        }
    }

    async fn get(&self, source: &str, source_id: &str) -> Result<StoredResult, PortError> {
        ResultStore::get(&self.inner, source, source_id).await
    }

    async fn find(&self, source_id: &str) -> Result<Vec<StoredResult>, PortError> {
        self.inner.find(source_id).await
    }

    async fn history(
        &self,
        source: &str,
        source_id: &str,
    ) -> Result<Vec<MetricSnapshot>, PortError> {
        self.inner.history(source, source_id).await
    }

    async fn sightings(
        &self,
        platform: &str,
        source_id: &str,
        limit: u32,
    ) -> Result<Vec<prismq_domain::Sighting>, PortError> {
        self.inner.sightings(platform, source_id, limit).await
    }

    async fn query(&self, query: &ResultQuery) -> Result<Vec<StoredResult>, PortError> {
        self.inner.query(query).await
    }

    async fn baselines(
        &self,
        channel_id: &str,
    ) -> Result<Vec<prismq_domain::ports::ChannelBaseline>, PortError> {
        self.inner.baselines(channel_id).await
    }

    async fn rescore(
        &self,
        channel_id: Option<String>,
    ) -> Result<prismq_domain::ports::RescoreReport, PortError> {
        self.inner.rescore(channel_id).await
    }

    async fn count(&self, source: Option<String>) -> Result<u64, PortError> {
        self.inner.count(source).await
    }
}

struct Setup {
    store: MemoryStore,
    results: Arc<Watching>,
    handler: Arc<FailsWith>,
    runtime: Runtime,
}

fn setup(error: TaskError, refuse: Option<PortError>) -> Setup {
    setup_with(error, refuse, Returns::AtOnce, settings())
}

fn setup_with(
    error: TaskError,
    refuse: Option<PortError>,
    returns: Returns,
    settings: WorkerSettings,
) -> Setup {
    let clock = Arc::new(FakeClock::default());
    let policy = RetryPolicy {
        base: Duration::from_secs(60),
        cap: Duration::from_secs(60),
        max_attempts: 3,
    };
    let store = MemoryStore::new(clock, policy);
    let results = Arc::new(Watching {
        inner: store.clone(),
        seen_status: Mutex::new(Vec::new()),
        refuse,
    });
    let handler = Arc::new(FailsWith {
        error,
        returns,
        calls: AtomicU32::new(0),
    });
    let mut registry = PluginRegistry::new();
    registry.add(handler.clone()).unwrap();
    let shared = Arc::new(store.clone());
    let runtime = Runtime::new(
        shared.clone() as Arc<dyn TaskQueue>,
        shared.clone() as Arc<dyn WorkerRegistry>,
        shared as Arc<dyn TaskLog>,
        results.clone() as Arc<dyn ResultStore>,
        Arc::new(registry),
        settings,
    );
    Setup {
        store,
        results,
        handler,
        runtime,
    }
}

impl Setup {
    /// Enqueues one task and drains the queue: the task's id and the run's report.
    async fn drain_one(&self) -> (TaskId, super::RunReport) {
        let id = enqueue(&self.store).await;
        let report = self
            .runtime
            .run(DRAIN, CancellationToken::new())
            .await
            .unwrap();
        (id, report)
    }
}

async fn enqueue(store: &MemoryStore) -> TaskId {
    store
        .enqueue(prismq_testkit::fixtures::new_task("partial"))
        .await
        .unwrap()
        .id
}

fn reset() -> Timestamp {
    prismq_testkit::clock::DEFAULT_START
        .checked_add(jiff::SignedDuration::from_hours(10))
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn partial_items_are_saved_before_the_deferral_is_recorded() {
    let error = TaskError::retry_after(reset(), "quota spent midway").with_partial(items(3));
    let s = setup(error, None);
    let (id, report) = s.drain_one().await;
    assert_eq!((report.claimed, report.deferred), (1, 1), "{report:?}");
    assert_eq!(s.handler.calls.load(Ordering::SeqCst), 1);

    // Saved while the task was still running, i.e. before `fail` moved it on.
    assert_eq!(
        *s.results.seen_status.lock().unwrap(),
        [TaskStatus::Running]
    );
    for i in 0..3 {
        let stored = ResultStore::get(&s.store, "test", &format!("p{i}"))
            .await
            .unwrap();
        assert_eq!(stored.last_task_id, Some(id), "item p{i}");
    }
    let task = TaskQueue::get(&s.store, id).await.unwrap();
    assert_eq!(task.status, TaskStatus::Queued);
    assert_eq!(task.run_after, reset());
    assert_eq!(task.attempts, 0, "a deferral uses no attempt");
    assert_eq!(task.last_error.as_deref(), Some("quota spent midway"));

    let log = TaskLog::list(&s.store, id).await.unwrap();
    let note = log
        .iter()
        .position(|r| r.event == TaskEvent::Progress)
        .expect("a progress note about the partial items");
    let deferred = log
        .iter()
        .position(|r| r.event == TaskEvent::Deferred)
        .expect("the deferral");
    assert!(note < deferred, "{log:?}");
    assert_eq!(log[note].level, LogLevel::Info);
    assert!(
        log[note].message.contains("saved 3 partial items"),
        "{}",
        log[note].message
    );
    assert_eq!(log[note].details["partial_items"], json!(3));
    assert_eq!(log[note].details["saved"]["inserted"], json!(3));
}

#[tokio::test(start_paused = true)]
async fn a_failed_save_still_records_the_handlers_failure() {
    let refusal = PortError::Invalid(ValidationError::new(
        "items[0].source_id",
        "refused for the test",
        "anything else",
    ));
    let error = TaskError::permanent("the channel vanished midway").with_partial(items(2));
    let s = setup(error, Some(refusal));
    let (id, report) = s.drain_one().await;
    assert_eq!((report.claimed, report.failed), (1, 1), "{report:?}");
    assert_eq!(s.results.seen_status.lock().unwrap().len(), 1);
    assert_eq!(s.store.count(None).await.unwrap(), 0, "nothing was saved");

    let task = TaskQueue::get(&s.store, id).await.unwrap();
    assert_eq!(
        task.status,
        TaskStatus::Failed,
        "dead-lettered as classified"
    );
    assert_eq!(
        task.last_error.as_deref(),
        Some("the channel vanished midway"),
        "the handler's message, not the store's"
    );
    let log = TaskLog::list(&s.store, id).await.unwrap();
    let warn = log
        .iter()
        .find(|r| r.event == TaskEvent::Progress)
        .expect("a note about the lost partial items");
    assert_eq!(warn.level, LogLevel::Warn);
    assert!(
        warn.message.contains("could not save 2 partial items")
            && warn.message.contains("refused for the test"),
        "{}",
        warn.message
    );
    assert_eq!(log.last().map(|r| r.event), Some(TaskEvent::Failed));
}

#[tokio::test(start_paused = true)]
async fn a_store_that_stays_unavailable_does_not_lose_the_retry() {
    let error = TaskError::retryable("network reset on page 3").with_partial(items(1));
    let s = setup(error, Some(PortError::Unavailable("disk gone".into())));
    let (id, report) = s.drain_one().await;
    assert_eq!((report.claimed, report.retried), (1, 1), "{report:?}");
    assert!(
        s.results.seen_status.lock().unwrap().len() > 1,
        "a transient store error is retried before giving up"
    );
    let task = TaskQueue::get(&s.store, id).await.unwrap();
    assert_eq!(task.status, TaskStatus::Queued);
    assert_eq!(task.attempts, 1);
    assert_eq!(task.last_error.as_deref(), Some("network reset on page 3"));
}

#[tokio::test(start_paused = true)]
async fn an_error_without_partial_items_saves_nothing_and_notes_nothing() {
    let s = setup(TaskError::retryable("no luck"), None);
    let id = enqueue(&s.store).await;
    s.runtime
        .run(DRAIN, CancellationToken::new())
        .await
        .unwrap();
    assert!(s.results.seen_status.lock().unwrap().is_empty());
    let log = TaskLog::list(&s.store, id).await.unwrap();
    assert!(
        !log.iter().any(|r| r.event == TaskEvent::Progress),
        "{log:?}"
    );
    let task = TaskQueue::get(&s.store, id).await.unwrap();
    assert_eq!((task.status, task.attempts), (TaskStatus::Queued, 1));
}

/// A 5 s time limit; the rest as [`settings`].
fn with_time_limit() -> WorkerSettings {
    WorkerSettings {
        handler_timeout: Duration::from_secs(5),
        ..settings()
    }
}

#[tokio::test(start_paused = true)]
async fn a_handler_stopped_at_the_time_limit_keeps_what_it_returns() {
    let error = TaskError::retryable("stopped on request").with_partial(items(2));
    let s = setup_with(error, None, Returns::WhenCancelled, with_time_limit());
    let (id, report) = s.drain_one().await;
    assert_eq!((report.claimed, report.retried), (1, 1), "{report:?}");
    assert_eq!(
        *s.results.seen_status.lock().unwrap(),
        [TaskStatus::Running],
        "saved before the failure was recorded"
    );
    for i in 0..2 {
        let stored = ResultStore::get(&s.store, "test", &format!("p{i}"))
            .await
            .unwrap();
        assert_eq!(stored.last_task_id, Some(id), "item p{i}");
    }
    let task = TaskQueue::get(&s.store, id).await.unwrap();
    assert_eq!((task.status, task.attempts), (TaskStatus::Queued, 1));
    let error = task.last_error.unwrap_or_default();
    assert!(
        error.contains("did not finish within worker.handler_timeout (5s)"),
        "the time limit's message, not the handler's: {error}"
    );
    let log = TaskLog::list(&s.store, id).await.unwrap();
    let note = log
        .iter()
        .find(|r| r.event == TaskEvent::Progress)
        .expect("a progress note about the partial items");
    assert!(
        note.message
            .contains("saved 2 partial items fetched before the attempt stopped"),
        "{}",
        note.message
    );
}

#[tokio::test(start_paused = true)]
async fn a_handler_that_ignores_the_stop_is_aborted_and_keeps_nothing() {
    let error = TaskError::retryable("never returned").with_partial(items(2));
    let s = setup_with(error, None, Returns::Never, with_time_limit());
    let (id, report) = s.drain_one().await;
    assert_eq!((report.claimed, report.retried), (1, 1), "{report:?}");
    assert!(s.results.seen_status.lock().unwrap().is_empty());
    assert_eq!(s.store.count(None).await.unwrap(), 0);
    let task = TaskQueue::get(&s.store, id).await.unwrap();
    assert_eq!((task.status, task.attempts), (TaskStatus::Queued, 1));
    assert!(task
        .last_error
        .unwrap_or_default()
        .contains("did not finish within worker.handler_timeout"));
}

#[tokio::test(start_paused = true)]
async fn a_handler_still_running_when_the_grace_ends_keeps_what_it_returns() {
    let error = TaskError::retryable("stopped on request").with_partial(items(3));
    let grace = WorkerSettings {
        shutdown_grace: Duration::from_secs(2),
        ..settings()
    };
    let s = setup_with(error, None, Returns::WhenCancelled, grace);
    let id = enqueue(&s.store).await;
    let stop = CancellationToken::new();
    let run = {
        let (runtime, stop) = (s.runtime.clone(), stop.clone());
        tokio::spawn(async move { runtime.run(RunOptions::default(), stop).await })
    };
    while TaskQueue::get(&s.store, id).await.unwrap().status != TaskStatus::Running {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.cancel();
    let report = run.await.unwrap().unwrap();
    assert_eq!((report.claimed, report.released), (1, 1), "{report:?}");
    assert_eq!(
        *s.results.seen_status.lock().unwrap(),
        [TaskStatus::Running]
    );
    assert_eq!(s.store.count(None).await.unwrap(), 3);
    let task = TaskQueue::get(&s.store, id).await.unwrap();
    assert_eq!(
        (task.status, task.attempts),
        (TaskStatus::Queued, 0),
        "released: no attempt used"
    );
}
