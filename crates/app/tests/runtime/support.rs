//! Builders shared by the runtime tests.

use std::sync::Arc;
use std::time::Duration;

use prismq_app::{BreakerSettings, PluginRegistry, Runtime, WorkerSettings};
use prismq_domain::ports::{ResultStore, TaskLog, TaskQueue, WorkerRegistry};
use prismq_domain::{
    ClaimingStrategy, Compatibility, Lease, LeaseToken, Priority, Registrar, RetryPolicy, Task,
    TaskHandler, TaskId, TaskStatus, TaskType, Timestamp, WorkerId,
};
use prismq_testkit::{FakeClock, MemoryStore};

pub const LEASE: Duration = Duration::from_secs(30);

/// Settings for tests: one loop, a 30 s lease, 10 s heartbeats, 50 ms–5 s idle backoff,
/// a 10 min timeout and a 30 s grace.
pub fn settings() -> WorkerSettings {
    WorkerSettings {
        concurrency: 1,
        strategy: ClaimingStrategy::Fifo,
        task_types: Vec::new(),
        region: None,
        only_task: None,
        lease: LEASE,
        heartbeat_interval: Duration::from_secs(10),
        idle_backoff_min: Duration::from_millis(50),
        idle_backoff_max: Duration::from_secs(5),
        handler_timeout: Duration::from_secs(600),
        shutdown_grace: Duration::from_secs(30),
        prefetch: prismq_app::config::Prefetch::AtMost(1),
        hostname: "testhost".into(),
        pid: 7,
        breaker: BreakerSettings::default(),
    }
}

pub fn registry(handlers: Vec<Arc<dyn TaskHandler>>) -> Arc<PluginRegistry> {
    let mut r = PluginRegistry::new();
    for h in handlers {
        r.add(h).unwrap();
    }
    Arc::new(r)
}

/// A memory store with retries due at once (base 0), 3 attempts by default.
pub struct Mem {
    pub clock: Arc<FakeClock>,
    pub store: MemoryStore,
}

impl Mem {
    pub fn new() -> Self {
        let clock = Arc::new(FakeClock::default());
        let policy = RetryPolicy {
            base: Duration::ZERO,
            cap: Duration::ZERO,
            max_attempts: 3,
        };
        let store = MemoryStore::new(clock.clone(), policy);
        Mem { clock, store }
    }

    pub fn runtime(&self, registry: Arc<PluginRegistry>, settings: WorkerSettings) -> Runtime {
        let s = Arc::new(self.store.clone());
        Runtime::new(
            s.clone() as Arc<dyn TaskQueue>,
            s.clone() as Arc<dyn WorkerRegistry>,
            s.clone() as Arc<dyn TaskLog>,
            s as Arc<dyn ResultStore>,
            registry,
            settings,
        )
    }

    pub async fn enqueue(&self, task_type: &str) -> TaskId {
        self.store
            .enqueue(prismq_testkit::fixtures::new_task(task_type))
            .await
            .unwrap()
            .id
    }

    pub async fn task(&self, id: TaskId) -> Task {
        TaskQueue::get(&self.store, id).await.unwrap()
    }
}

pub fn tt(s: &str) -> TaskType {
    TaskType::new(s).unwrap()
}

pub fn t0() -> Timestamp {
    prismq_testkit::clock::DEFAULT_START
}

/// A task as a claim returns it, for mocks.
pub fn claimed_task(id: i64, task_type: &str) -> (Task, Lease) {
    let worker = WorkerId::new("testhost-7-0").unwrap();
    let lease = Lease {
        task_id: TaskId(id),
        token: LeaseToken(99),
        worker: worker.clone(),
        expires_at: t0(),
    };
    let task = Task {
        id: TaskId(id),
        task_type: tt(task_type),
        params: serde_json::json!({}),
        priority: Priority::DEFAULT,
        status: TaskStatus::Claimed,
        attempts: 1,
        max_attempts: 3,
        run_after: t0(),
        lease_expires_at: Some(t0()),
        claimed_by: Some(worker),
        lease_token: Some(LeaseToken(99)),
        idempotency_key: None,
        compatibility: Compatibility::default(),
        last_error: None,
        summary: None,
        created_at: t0(),
        updated_at: t0(),
        finished_at: None,
        lapses: 0,
    };
    (task, lease)
}

/// How many tasks of `app`'s queue are in `status`.
pub async fn count_in(app: &prismq_app::App, status: TaskStatus) -> usize {
    app.queue
        .list(&prismq_domain::ports::TaskFilter {
            status: Some(status),
            limit: 1_000,
            ..prismq_domain::ports::TaskFilter::default()
        })
        .await
        .unwrap()
        .len()
}

/// Thirty queued `quick` tasks drained with `max_tasks` 7 by `app` (whose engine completes
/// and claims in one step): a claim made with a completion counts against the cap, so the
/// run stops at it with nothing left claimed or running.
pub async fn chained_claims_stop_at_the_cap(
    app: &prismq_app::App,
    quick: &crate::handlers::Scripted,
) {
    assert!(app.queue.completes_and_claims_at_once());
    let tasks = (0..30)
        .map(|_| prismq_domain::NewTask::new(tt("quick"), serde_json::json!({})))
        .collect();
    app.enqueue_batch(tasks).await.unwrap();
    let report = app
        .work(
            prismq_app::RunOptions {
                drain: true,
                max_tasks: Some(7),
            },
            tokio_util::sync::CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!((report.claimed, report.completed), (7, 7));
    assert_eq!(quick.calls(), 7);
    assert_eq!(count_in(app, TaskStatus::Completed).await, 7);
    assert_eq!(count_in(app, TaskStatus::Queued).await, 23);
    assert_eq!(count_in(app, TaskStatus::Claimed).await, 0);
    assert_eq!(count_in(app, TaskStatus::Running).await, 0);
}

/// An app opened with `overrides` on top of the defaults, running `handlers`: the test's
/// database and worker settings, whichever engine.
pub fn app_with(
    overrides: &[(&str, &str)],
    handlers: Vec<Arc<dyn TaskHandler>>,
) -> prismq_app::App {
    let config = prismq_app::Config::load(&prismq_app::LoadOptions {
        overrides: overrides
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..prismq_app::LoadOptions::default()
    })
    .unwrap();
    let mut app = prismq_app::App::open_with(config, &[]).unwrap();
    app.registry = registry(handlers);
    app
}

/// One `flaky` task (two retryable failures, then success) and 40 `quick` ones drained by
/// `app`: every task completes once, the flaky one on its third attempt. Returns the quick
/// tasks' ids.
pub async fn drain_flaky_and_quick(
    app: &prismq_app::App,
    quick: &crate::handlers::Scripted,
) -> Vec<TaskId> {
    let flaky_id = app
        .enqueue(prismq_domain::NewTask::new(
            tt("flaky"),
            serde_json::json!({}),
        ))
        .await
        .unwrap()
        .id;
    let tasks = (0..40)
        .map(|_| prismq_domain::NewTask::new(tt("quick"), serde_json::json!({})))
        .collect();
    let quick_ids = app
        .enqueue_batch(tasks)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    let report = app
        .work(
            prismq_app::RunOptions {
                drain: true,
                max_tasks: None,
            },
            tokio_util::sync::CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        (report.completed, report.retried, report.claimed),
        (41, 2, 43)
    );
    assert_eq!(quick.calls(), 40);
    let flaky_task = app.queue.get(flaky_id).await.unwrap();
    assert_eq!(
        (flaky_task.status, flaky_task.attempts),
        (TaskStatus::Completed, 3)
    );
    quick_ids
}

/// The events in task `id`'s log on a memory store, in order.
pub async fn events(mem: &Mem, id: TaskId) -> Vec<prismq_domain::ports::TaskEvent> {
    TaskLog::list(&mem.store, id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .collect()
}

/// Each of `ids` ran once, to completion: its log reads enqueued, claimed, started,
/// completed.
pub async fn each_ran_once(app: &prismq_app::App, ids: Vec<TaskId>) {
    use prismq_domain::ports::TaskEvent as E;
    for id in ids {
        let events: Vec<E> = app
            .logs
            .list(id)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.event)
            .collect();
        assert_eq!(
            events,
            vec![E::Enqueued, E::Claimed, E::Started, E::Completed],
            "task {id}"
        );
    }
}

/// [`drain_flaky_and_quick`] by `app`: besides, nothing is left queued, claimed or running,
/// and each quick task ran once ([`each_ran_once`]).
pub async fn drain_and_check_the_logs(app: &prismq_app::App, quick: &crate::handlers::Scripted) {
    let quick_ids = drain_flaky_and_quick(app, quick).await;
    assert_eq!(count_in(app, TaskStatus::Completed).await, 41);
    for status in [TaskStatus::Queued, TaskStatus::Claimed, TaskStatus::Running] {
        assert_eq!(count_in(app, status).await, 0, "{status:?}");
    }
    each_ran_once(app, quick_ids).await;
}

/// Counts, at each call, the tasks of its type that are running (its own and those its loop
/// holds ahead), then takes `takes`.
pub struct Watcher {
    pub takes: Duration,
    pub queue: std::sync::OnceLock<Arc<dyn prismq_domain::ports::TaskQueue>>,
    pub seen: std::sync::Mutex<Vec<u64>>,
}

#[async_trait::async_trait]
impl TaskHandler for Watcher {
    fn task_type(&self) -> prismq_domain::TaskType {
        tt("watched")
    }

    fn validate(
        &self,
        _: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), prismq_domain::ValidationError> {
        Ok(())
    }

    async fn handle(
        &self,
        _: &prismq_domain::Task,
        _: &prismq_domain::TaskContext,
    ) -> Result<prismq_domain::TaskResult, prismq_domain::TaskError> {
        let stats = self.queue.get().unwrap().stats().await.unwrap();
        let running = stats
            .counts
            .iter()
            .filter(|c| c.status == TaskStatus::Running)
            .map(|c| c.count)
            .sum();
        self.seen.lock().unwrap().push(running);
        tokio::time::sleep(self.takes).await;
        Ok(prismq_domain::TaskResult::default())
    }
}

/// `worker.prefetch = "auto"` (the default) over `make`'s queue, one loop: `tasks` tasks
/// that take `takes` each all run once; quick ones are held ahead (the handler sees more
/// than its own task running), ones slower than the loop's budget are taken one at a time,
/// and the first claim is always a single task.
pub async fn auto_prefetch_holds_quick_tasks_only(
    make: impl FnOnce(Vec<Arc<dyn TaskHandler>>) -> prismq_app::App,
    takes: Duration,
    tasks: usize,
) {
    let watcher = Arc::new(Watcher {
        takes,
        queue: std::sync::OnceLock::new(),
        seen: std::sync::Mutex::new(Vec::new()),
    });
    let app = make(vec![watcher.clone()]);
    assert_eq!(
        app.config.worker.prefetch,
        prismq_app::config::Prefetch::Auto,
        "the default"
    );
    watcher.queue.set(app.queue.clone()).ok().unwrap();
    for _ in 0..tasks {
        app.enqueue(prismq_domain::NewTask::new(
            tt("watched"),
            serde_json::json!({}),
        ))
        .await
        .unwrap();
    }
    let report = app
        .work(
            prismq_app::RunOptions {
                drain: true,
                max_tasks: None,
            },
            tokio_util::sync::CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(report.completed, tasks as u64, "{takes:?}");
    let seen = watcher.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), tasks, "each task once");
    assert_eq!(
        seen[0], 1,
        "the first claim takes one task: nothing measured yet"
    );
    if takes.is_zero() {
        assert!(
            seen.iter().any(|&n| n > 1),
            "quick tasks are held ahead: {seen:?}"
        );
    } else {
        assert!(
            seen.iter().all(|&n| n == 1),
            "slow tasks one at a time: {seen:?}"
        );
    }
}
