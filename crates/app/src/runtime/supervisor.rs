//! The supervisor: checks the set-up, starts one worker loop per unit of concurrency, stops
//! them all when one hits an error it cannot retry, and adds up their reports.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use prismq_domain::ports::{
    Ports, QuotaLedger, ResultStore, ScheduleStore, TaskLog, TaskQueue, WorkNotifier,
    WorkerRegistry,
};
use prismq_domain::TaskType;

use super::gate::Gate;
use super::handovers::Handovers;
use super::report::{RunReport, RuntimeError};
use super::scheduler::Scheduler;
use super::settings::{RunOptions, WorkerSettings};
use super::shared::Shared;
use super::worker_loop;
use crate::registry::PluginRegistry;

/// The worker runtime: the ports it works through, the handlers, and the settings.
#[derive(Clone)]
pub struct Runtime {
    queue: Arc<dyn TaskQueue>,
    workers: Arc<dyn WorkerRegistry>,
    logs: Arc<dyn TaskLog>,
    results: Arc<dyn ResultStore>,
    registry: Arc<PluginRegistry>,
    settings: WorkerSettings,
    notifier: Option<Arc<dyn WorkNotifier>>,
    quota: Option<Arc<dyn QuotaLedger>>,
    schedules: Option<Arc<dyn ScheduleStore>>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("registry", &self.registry)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The shortest interval between two checks for due schedules in one process: slots are at
/// least a minute apart, so a busy process need not read more often than this.
const SCHEDULE_CHECK_MIN: std::time::Duration = std::time::Duration::from_secs(1);

impl Runtime {
    /// A runtime over these ports and handlers.
    pub fn new(
        queue: Arc<dyn TaskQueue>,
        workers: Arc<dyn WorkerRegistry>,
        logs: Arc<dyn TaskLog>,
        results: Arc<dyn ResultStore>,
        registry: Arc<PluginRegistry>,
        settings: WorkerSettings,
    ) -> Self {
        Runtime {
            queue,
            workers,
            logs,
            results,
            registry,
            settings,
            notifier: None,
            schedules: None,
            quota: None,
        }
    }

    /// A runtime over the ports of one store (`App::runtime_with`): its queue, registry,
    /// log and results, reading its quota ledger before claiming ([`Runtime::with_quota`]),
    /// firing its schedules ([`Runtime::with_schedules`]) and woken by its notifier when it
    /// has one. A worker of a remote server, which has only the first four over HTTP, uses
    /// [`Runtime::new`].
    pub fn from_ports(
        ports: &Ports,
        registry: Arc<PluginRegistry>,
        settings: WorkerSettings,
    ) -> Self {
        let runtime = Runtime::new(
            ports.queue.clone(),
            ports.workers.clone(),
            ports.logs.clone(),
            ports.results.clone(),
            registry,
            settings,
        )
        .with_quota(ports.quota.clone())
        .with_schedules(ports.schedules.clone());
        match &ports.notifier {
            Some(n) => runtime.with_notifier(n.clone()),
            None => runtime,
        }
    }

    /// The same runtime reading `quota` before it claims: while a bucket a handler declares
    /// ([`prismq_domain::TaskHandler::quota_buckets`]) is marked exhausted, that handler's
    /// type is not claimed at all (see [`super::gate`]).
    pub fn with_quota(mut self, quota: Arc<dyn QuotaLedger>) -> Self {
        self.quota = Some(quota);
        self
    }

    /// The same runtime firing the due schedules of `schedules` (see `runtime::scheduler`):
    /// every run checks at most once per poll and at most once a second (the larger of
    /// `idle_backoff_min` and 1 s), except a run of one task (`only_task`).
    pub fn with_schedules(mut self, schedules: Arc<dyn ScheduleStore>) -> Self {
        self.schedules = Some(schedules);
        self
    }

    /// The same runtime woken by `notifier` when tasks are enqueued, instead of only polling:
    /// an idle loop then claims within milliseconds of an enqueue, and polls with its backoff
    /// as the fallback.
    pub fn with_notifier(mut self, notifier: Arc<dyn WorkNotifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &WorkerSettings {
        &self.settings
    }

    /// The task types a run claims: `settings.task_types`, or every registered type.
    ///
    /// # Errors
    /// [`RuntimeError::NoHandlers`] when nothing is registered, and
    /// [`RuntimeError::UnknownTaskType`] when a configured type has no handler.
    pub fn capabilities(&self) -> Result<Vec<TaskType>, RuntimeError> {
        let registered = self.registry.task_types();
        if registered.is_empty() {
            return Err(RuntimeError::NoHandlers);
        }
        if self.settings.task_types.is_empty() {
            return Ok(registered);
        }
        for t in &self.settings.task_types {
            if !registered.contains(t) {
                return Err(RuntimeError::UnknownTaskType {
                    task_type: t.to_string(),
                    registered: registered
                        .iter()
                        .map(TaskType::as_str)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        Ok(self.settings.task_types.clone())
    }

    /// Runs `settings.concurrency` worker loops until `shutdown` is cancelled, or until the
    /// mode in `options` ends them (drain, max tasks). On shutdown the loops stop claiming,
    /// in-flight handlers get `shutdown_grace` to finish, the leases of the rest are released
    /// (no attempt used), and every loop deregisters. Then returns the counts.
    ///
    /// # Errors
    /// Set-up errors (see [`Runtime::capabilities`], [`RuntimeError::WorkerId`]) before any
    /// loop starts; a store error no retry can fix in `register` or `claim` (the other loops
    /// are then shut down gracefully first); a crashed loop.
    pub async fn run(
        &self,
        options: RunOptions,
        shutdown: CancellationToken,
    ) -> Result<RunReport, RuntimeError> {
        let capabilities = self.capabilities()?;
        let concurrency = self.settings.concurrency.max(1);
        let ids = (0..concurrency)
            .map(|i| self.settings.worker_id(i))
            .collect::<Result<Vec<_>, _>>()
            .map_err(RuntimeError::WorkerId)?;
        let stop = shutdown.child_token();
        let buckets: BTreeMap<TaskType, Vec<String>> = capabilities
            .iter()
            .filter_map(|t| {
                self.registry
                    .handler(t)
                    .map(|h| (t.clone(), h.quota_buckets()))
            })
            .collect();
        let gate = Gate::new(
            self.settings.breaker,
            self.settings.only_task.is_none(),
            self.quota.clone(),
            buckets,
        );
        let shared = Arc::new(Shared {
            queue: self.queue.clone(),
            workers: self.workers.clone(),
            logs: self.logs.clone(),
            results: self.results.clone(),
            registry: self.registry.clone(),
            settings: self.settings.clone(),
            options,
            capabilities,
            stop: stop.clone(),
            busy: AtomicUsize::new(0),
            remaining: options.max_tasks.map(AtomicU64::new),
            notifier: self.notifier.clone(),
            gate,
            handovers: self.queue.completes_in_batches().then(Handovers::default),
            scheduler: self
                .schedules
                .clone()
                .filter(|_| self.settings.only_task.is_none())
                .map(|store| {
                    Scheduler::new(
                        store,
                        self.registry.task_types(),
                        self.settings.idle_backoff_min.max(SCHEDULE_CHECK_MIN),
                    )
                }),
        });
        tracing::info!(
            concurrency,
            strategy = %self.settings.strategy,
            drain = options.drain,
            max_tasks = ?options.max_tasks,
            "worker runtime starting"
        );
        let mut loops = JoinSet::new();
        for id in ids {
            loops.spawn(worker_loop::run(shared.clone(), id));
        }
        let mut report = RunReport::default();
        let mut first_error = None;
        while let Some(joined) = loops.join_next().await {
            let (r, err) = match joined {
                Ok(Ok(r)) => (r, None),
                Ok(Err((r, e))) => (r, Some(e)),
                Err(e) => (
                    RunReport::default(),
                    Some(RuntimeError::LoopCrashed(e.to_string())),
                ),
            };
            report.merge(r);
            if let Some(e) = err {
                tracing::error!(error = %e, "worker loop stopped; shutting the others down");
                stop.cancel();
                first_error.get_or_insert(e);
            }
        }
        tracing::info!(?report, "worker runtime stopped");
        first_error.map_or(Ok(report), Err)
    }
}
