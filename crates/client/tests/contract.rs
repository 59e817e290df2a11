//! The testkit's contract obligations for the ports a worker runtime uses, run through
//! [`RemoteStore`] against a real server on 127.0.0.1 (the same router `prismq serve`
//! runs) over a real SQLite file, both reading the obligation's fake clock.
//!
//! Each obligation's subject splits its ports: every call a worker makes (claim, start,
//! renew, complete, fail, release, register, heartbeat, deregister, the whole quota ledger,
//! firing schedules, reading tracked videos) goes over HTTP; the operator's side of the
//! obligation (enqueueing its tasks, reading them back, cancelling, listing workers and logs,
//! adding schedules, saving the tracked videos) is done on the server's store directly, as
//! `prismq` on the server's machine would.
//!
//! Left out, and why:
//! - `queue::*`, `listing::*`, the operator's own `operator::*` (cancel or retry without a
//!   lease in play) and `keys::*`: enqueueing, listing, purging, stats, cancel, retry and
//!   API keys are the operator's and admin's, not a worker's; a remote worker's
//!   `RemoteStore` refuses them (the API's `/v1/tasks` endpoints and `prismq keys` serve
//!   them) but for one enqueue, a follow-up's, which goes to `POST /v1/tasks` (tested in
//!   `tests/remote.rs`), and they pass on the server's store in its own suite.
//! - `results::*`, `batches::*`, `result_queries::*`, `outliers::*`: a remote worker saves
//!   items only for a task it holds the lease of (the server checks the lease), and reads no
//!   results; those
//!   obligations save without a task and query the store, which the server's store passes
//!   in its own suite.
//! - `logs::append_and_list_in_written_order`, `logs::append_to_unknown_task_is_not_found`:
//!   they append to tasks nobody claimed; a remote worker appends only to a task it holds
//!   the lease of (refused with `Invalid` otherwise). `logs::list_of_unknown_task_is_not_found`
//!   reads only. `logs::lifecycle_writes_one_event_per_change` runs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use prismq_app::{App, Config, LoadOptions, PluginRegistry, Ports};
use prismq_client::{ApiKeySecret, RemoteOptions, RemoteStore};
use prismq_domain::ports::{
    ClaimRequest, ClaimedTask, Enqueued, FailOutcome, Failure, Handover, HandoverAnswer, Heartbeat,
    LogRecord, NewApiKey, NewLogEntry, QueueStats, ScheduleStore, Scope, TaskFilter, TaskLog,
    TaskQueue, WorkerInfo, WorkerRecord, WorkerRegistry,
};
use prismq_domain::schedule::{Fired, NewSchedule, Schedule};
use prismq_domain::{
    Lease, NewTask, PortError, Task, TaskId, TaskStatus, TaskType, Timestamp, WorkerId,
};
use prismq_storage_sqlite::{SqliteOptions, SqliteStore};
use prismq_testkit::contract::{ContractEnv, SchemaKind, Subject};

/// Worker calls to `remote`, the operator's to `local` (the server's own store).
struct Split {
    remote: RemoteStore,
    local: Arc<SqliteStore>,
}

#[async_trait]
impl TaskQueue for Split {
    async fn enqueue(&self, task: NewTask) -> Result<Enqueued, PortError> {
        self.local.enqueue(task).await
    }
    async fn enqueue_batch(&self, tasks: Vec<NewTask>) -> Result<Vec<Enqueued>, PortError> {
        self.local.enqueue_batch(tasks).await
    }
    async fn claim(&self, r: &ClaimRequest) -> Result<Option<ClaimedTask>, PortError> {
        self.remote.claim(r).await
    }
    async fn claim_and_start(&self, r: &ClaimRequest) -> Result<Option<ClaimedTask>, PortError> {
        self.remote.claim_and_start(r).await
    }
    async fn claim_and_start_many(
        &self,
        r: &ClaimRequest,
        max: usize,
    ) -> Result<Vec<ClaimedTask>, PortError> {
        self.remote.claim_and_start_many(r, max).await
    }
    async fn complete_and_claim_many(
        &self,
        items: &[Handover],
    ) -> Result<Vec<HandoverAnswer>, PortError> {
        self.remote.complete_and_claim_many(items).await
    }
    async fn renew_lease(&self, l: &Lease, d: Duration) -> Result<Lease, PortError> {
        self.remote.renew_lease(l, d).await
    }
    async fn start(&self, l: &Lease) -> Result<(), PortError> {
        self.remote.start(l).await
    }
    async fn complete(&self, l: &Lease, s: Option<Value>) -> Result<(), PortError> {
        self.remote.complete(l, s).await
    }
    async fn fail(&self, l: &Lease, f: &Failure) -> Result<FailOutcome, PortError> {
        self.remote.fail(l, f).await
    }
    async fn release(&self, l: &Lease) -> Result<(), PortError> {
        self.remote.release(l).await
    }
    async fn cancel(&self, id: TaskId) -> Result<Task, PortError> {
        self.local.cancel(id).await
    }
    async fn retry(&self, id: TaskId) -> Result<Task, PortError> {
        self.local.retry(id).await
    }
    async fn get(&self, id: TaskId) -> Result<Task, PortError> {
        self.local.get(id).await
    }
    async fn list(&self, f: &TaskFilter) -> Result<Vec<Task>, PortError> {
        TaskQueue::list(&*self.local, f).await
    }
    async fn purge(&self, s: TaskStatus, b: Timestamp, l: u32) -> Result<u64, PortError> {
        self.local.purge(s, b, l).await
    }
    async fn stats(&self) -> Result<QueueStats, PortError> {
        self.local.stats().await
    }
}

#[async_trait]
impl WorkerRegistry for Split {
    async fn register(&self, info: &WorkerInfo) -> Result<(), PortError> {
        self.remote.register(info).await
    }
    async fn heartbeat(&self, id: &WorkerId, beat: Heartbeat) -> Result<(), PortError> {
        self.remote.heartbeat(id, beat).await
    }
    async fn deregister(&self, id: &WorkerId) -> Result<(), PortError> {
        self.remote.deregister(id).await
    }
    async fn list(&self, stale_after: Duration) -> Result<Vec<WorkerRecord>, PortError> {
        WorkerRegistry::list(&*self.local, stale_after).await
    }
    async fn prune(&self, stale_after: Duration) -> Result<u64, PortError> {
        self.local.prune(stale_after).await
    }
}

#[async_trait]
impl TaskLog for Split {
    async fn append(&self, task: TaskId, entry: NewLogEntry) -> Result<(), PortError> {
        self.remote.append(task, entry).await
    }
    async fn list(&self, task: TaskId) -> Result<Vec<LogRecord>, PortError> {
        TaskLog::list(&*self.local, task).await
    }
}

#[async_trait]
impl ScheduleStore for Split {
    async fn add_schedule(&self, s: NewSchedule) -> Result<Schedule, PortError> {
        self.local.add_schedule(s).await
    }
    async fn list_schedules(&self) -> Result<Vec<Schedule>, PortError> {
        self.local.list_schedules().await
    }
    async fn get_schedule(&self, name: &str) -> Result<Schedule, PortError> {
        self.local.get_schedule(name).await
    }
    async fn set_schedule_paused(&self, name: &str, paused: bool) -> Result<Schedule, PortError> {
        self.local.set_schedule_paused(name, paused).await
    }
    async fn remove_schedule(&self, name: &str) -> Result<Schedule, PortError> {
        self.local.remove_schedule(name).await
    }
    async fn run_schedule_now(&self, name: &str) -> Result<Enqueued, PortError> {
        self.local.run_schedule_now(name).await
    }
    async fn fire_due(&self, types: &[TaskType], limit: u32) -> Result<Vec<Fired>, PortError> {
        self.remote.fire_due(types, limit).await
    }
}

/// A server on 127.0.0.1 over a fresh SQLite file reading `env.clock`, and a subject whose
/// worker calls go to it.
fn remote(env: ContractEnv) -> Subject {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = SqliteOptions::new(dir.path().join("queue.db"));
    options.retry = env.retry;
    let store = Arc::new(SqliteStore::open(options, env.clock.clone()).expect("open store"));
    let secret = prismq_server::secret::generate();
    let key = NewApiKey::for_secret(&secret, "contract", vec![Scope::Work], 100_000).unwrap();
    // The factory is synchronous: the key is written on a thread of its own.
    {
        let store = store.clone();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(prismq_domain::ports::ApiKeyStore::create(&*store, key))
                .unwrap();
        })
        .join()
        .unwrap();
    }
    let load = LoadOptions {
        working_dir: Some(dir.path().to_path_buf()),
        env: BTreeMap::new(),
        ..LoadOptions::default()
    };
    let config = Config::load(&load).unwrap();
    let app = App::from_parts(
        Ports::from_store((*store).clone()),
        env.clock.clone(),
        Arc::new(PluginRegistry::new()),
        config,
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let router =
        prismq_server::router_until(app, prismq_server::ServerOptions::new(addr), stop.clone());
    let serving = stop.clone();
    tokio::spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { serving.cancelled().await })
            .await
            .unwrap();
    });
    let mut o = RemoteOptions::new(
        &format!("http://{addr}"),
        ApiKeySecret::new(&secret).unwrap(),
    )
    .unwrap();
    o.claim_wait = Duration::ZERO;
    o.retry_for = Duration::from_secs(2);
    let split = Arc::new(Split {
        remote: RemoteStore::new(o).unwrap(),
        local: store.clone(),
    });
    Subject {
        ports: Ports {
            queue: split.clone(),
            workers: split.clone(),
            logs: split.clone(),
            results: store.clone(),
            quota: Arc::new(split.remote.clone()),
            tracked: Arc::new(split.remote.clone()),
            schedules: split,
            keys: store,
            notifier: None,
        },
        admin: None,
        schema: SchemaKind::Migrated,
        dump: None,
        upkeep: None,
        guard: Box::new(()),
    }
    .with_guard((dir, stop.drop_guard()))
}

prismq_testkit::__contract_tests! { (remote)
    claims::claim_on_empty_queue_is_none,
    claims::claim_sets_lease_fields,
    claims::claim_waits_for_run_after,
    claims::claimed_task_is_not_claimed_again,
    claims::claim_filters_by_task_type,
    claims::region_task_needs_worker_of_that_region,
    claims::a_region_is_stored_normalised,
    claims::regionless_task_goes_to_any_worker,
    claims::finished_tasks_are_never_claimed,
    claims::concurrent_claims_never_share_a_task,
    strategies::fifo_order_with_ties_by_id,
    strategies::lifo_order_with_ties_by_id,
    strategies::priority_order_with_ties_by_id,
    strategies::retried_task_is_ordered_by_its_new_run_after,
    strategies::weighted_random_takes_oldest_of_drawn_level,
    strategies::weighted_random_draws_levels_in_proportion,
    rescue::lapsed_lease_is_rescued_before_queued_tasks,
    rescue::rescue_takes_oldest_lapse_first,
    rescue::live_lease_is_not_rescued,
    rescue::old_lease_is_fenced_after_rescue,
    rescue::lapse_gives_the_attempt_back_and_counts_a_lapse,
    rescue::max_lapses_dead_letter_with_the_message,
    rescue::own_failures_still_count_attempts_after_a_lapse,
    rescue::rescue_respects_the_filter,
    rescue::claim_only_takes_that_task_and_no_other,
    lifecycle::renew_extends_the_lease,
    lifecycle::claim_and_start_marks_running_and_logs_both,
    lifecycle::complete_and_claim_completes_then_claims_the_next,
    lifecycle::complete_and_claim_with_a_stale_token_writes_nothing,
    lifecycle::complete_and_claim_on_an_empty_queue_completes,
    lifecycle::complete_and_claim_rescues_a_lapsed_lease_first,
    lifecycle::complete_and_claim_picks_across_types_by_strategy,
    handovers::complete_and_claim_many_answers_each_item_in_order,
    handovers::complete_and_claim_many_leaves_the_others_when_one_lease_is_stale,
    handovers::complete_and_claim_many_answers_none_once_the_queue_is_dry,
    handovers::claim_and_start_many_takes_tasks_in_order_each_with_its_own_lease,
    handovers::claim_and_start_many_stops_when_the_queue_is_dry,
    lifecycle::renew_after_lapse_without_reclaim_succeeds,
    lifecycle::renew_with_stale_token_is_lease_lost,
    lifecycle::start_marks_running,
    lifecycle::start_with_stale_token_is_lease_lost,
    lifecycle::complete_stores_summary_and_clears_lease,
    lifecycle::complete_twice_is_lease_lost,
    lifecycle::release_requeues_without_using_attempt,
    lifecycle::release_with_stale_token_is_lease_lost,
    failures::fail_retryable_requeues_with_backoff,
    failures::fail_backoff_stays_under_cap,
    failures::fail_retryable_at_max_attempts_dead_letters,
    failures::fail_permanent_dead_letters_at_once,
    failures::fail_retry_after_defers_and_gives_attempt_back,
    failures::fail_retry_after_in_past_defers_until_now,
    failures::deferral_never_uses_the_last_attempt,
    failures::fail_with_stale_token_is_lease_lost,
    operator::cancel_claimed_task_fences_its_lease,
    operator::cancel_running_task_fences_its_lease,
    workers::register_records_now_as_start_and_heartbeat,
    workers::reregister_resets_worker,
    workers::heartbeat_records_now_and_state,
    workers::heartbeat_records_held_types,
    workers::heartbeat_unknown_is_not_found,
    workers::deregister_marks_stopped_and_keeps_it,
    workers::list_reports_health_ordered_by_id,
    workers::prune_removes_stopped_and_stale,
    logs::lifecycle_writes_one_event_per_change,
    quota::grant_charges_and_reports_remaining,
    quota::over_limit_is_exhausted_until_window_end,
    quota::window_rollover_starts_from_zero,
    quota::mark_exhausted_blocks_until_then,
    quota::usage_lists_buckets_by_name,
    quota::buckets_are_independent,
    quota::racing_consumers_never_exceed_the_limit,
    schedules::add_starts_at_the_first_slot_after_now,
    schedules::add_refuses_invalid_and_duplicate_names,
    schedules::get_pause_resume_remove_unknown_are_not_found,
    schedules::due_slot_fires_one_task_noted_in_its_log,
    schedules::ten_slots_fire_ten_tasks,
    schedules::downtime_fires_once_then_keeps_the_timetable,
    schedules::paused_schedule_fires_nothing_and_resume_skips_missed_slots,
    schedules::removed_schedule_fires_nothing_and_keeps_its_tasks,
    schedules::run_now_beside_a_due_slot_keeps_the_slot,
    schedules::unknown_task_type_is_not_fired_nor_advanced,
    schedules::fire_due_respects_the_limit_earliest_first,
    schedules::racing_fire_due_yields_one_task_per_slot,
    tracked::tracked_lists_each_youtube_id_once_in_order,
    tracked::tracked_pages_with_keyset_after,
    tracked::tracked_filters_by_seen_since_and_channel,
    tracked::tracked_filters_by_schedule,
    tracked::tracked_refuses_limit_out_of_range,
}
