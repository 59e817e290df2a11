//! The contract suite: one async function per obligation written in the port docs of
//! `prismq_domain::ports`. Every storage adapter runs all of them through
//! [`contract_suite!`](crate::contract_suite); the in-memory [`MemoryStore`](crate::MemoryStore)
//! passes them too.
//!
//! Each obligation takes a factory, builds a fresh [`Subject`] around a [`FakeClock`] it
//! controls, and asserts exact ids, orders, counts, statuses and log events.

pub mod admin;
pub mod batches;
pub mod claims;
pub mod dump;
pub mod failures;
pub mod handovers;
pub mod keys;
pub mod lifecycle;
pub mod listing;
pub mod logs;
pub mod operator;
pub mod outliers;
pub mod queue;
pub mod quota;
pub mod rescue;
pub mod result_queries;
pub mod results;
pub mod schedules;
pub mod strategies;
pub mod tracked;
pub mod upkeep;
pub mod workers;

mod support;

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use prismq_domain::ports::{Dump, Load, Ports, SchemaAdmin, Upkeep, WholeStore};
use prismq_domain::RetryPolicy;

use crate::FakeClock;

/// What a factory gets to build a [`Subject`]: the clock the store must read time from and
/// the retry policy its queue must apply.
#[derive(Debug, Clone)]
pub struct ContractEnv {
    /// The clock the obligation moves; the store must use it for every "now".
    pub clock: Arc<FakeClock>,
    /// The retry policy the queue applies in `fail` and for default max attempts.
    pub retry: RetryPolicy,
}

/// The ports under test, all backed by one fresh, empty store (read through it as fields:
/// `s.queue`, `s.results`; it dereferences to its [`Ports`]).
pub struct Subject {
    /// The storage ports (the notifier, when an engine has one, is not under test here).
    pub ports: Ports,
    /// Schema administration of the same database (the `admin` obligations pass over a
    /// subject without it, such as a remote client).
    pub admin: Option<Arc<dyn SchemaAdmin>>,
    /// What `admin`'s schema is: migrated, or none at all (the in-memory fake).
    pub schema: SchemaKind,
    /// Dump and load of the same store, for engines that offer them (the fake and both SQL
    /// adapters do; the `dump` obligations pass over a subject without them).
    pub dump: Option<(Arc<dyn Dump>, Arc<dyn Load>)>,
    /// Upkeep of the same store and what the engine declares it does (the `upkeep`
    /// obligations hold it to that declaration, and pass over a subject without upkeep).
    pub upkeep: Option<(Arc<dyn Upkeep>, UpkeepAnswers)>,
    /// Whatever must live as long as the subject (a temporary directory, a server handle).
    pub guard: Box<dyn Any + Send + Sync>,
}

impl std::ops::Deref for Subject {
    type Target = Ports;

    fn deref(&self) -> &Ports {
        &self.ports
    }
}

impl Subject {
    /// A subject whose ports are all `store` (one value implementing every port).
    pub fn from_store<S>(store: S) -> Subject
    where
        S: WholeStore + 'static,
    {
        Subject {
            ports: Ports::from_store(store),
            admin: None,
            schema: SchemaKind::Migrated,
            dump: None,
            upkeep: None,
            guard: Box::new(()),
        }
    }

    /// The same subject with schema administration of its database.
    pub fn with_admin(mut self, admin: Arc<dyn SchemaAdmin>) -> Subject {
        self.admin = Some(admin);
        self
    }

    /// The same subject with administration of a store that has no schema: no migrations,
    /// always current (the in-memory fake).
    pub fn with_schemaless_admin(mut self, admin: Arc<dyn SchemaAdmin>) -> Subject {
        self.admin = Some(admin);
        self.schema = SchemaKind::None;
        self
    }

    /// The same subject with upkeep of its store, which performs what `answers` says and
    /// answers the typed "not supported" for the rest.
    pub fn with_upkeep(mut self, upkeep: Arc<dyn Upkeep>, answers: UpkeepAnswers) -> Subject {
        self.upkeep = Some((upkeep, answers));
        self
    }

    /// The same subject with dump and load of its store.
    pub fn with_dump(mut self, dump: Arc<dyn Dump>, load: Arc<dyn Load>) -> Subject {
        self.dump = Some((dump, load));
        self
    }

    /// The same subject keeping `guard` alive until it is dropped.
    pub fn with_guard(mut self, guard: impl Any + Send + Sync) -> Subject {
        self.guard = Box::new(guard);
        self
    }
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subject").finish_non_exhaustive()
    }
}

/// What a subject's schema administration manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaKind {
    /// Numbered migrations, 1 to the latest, all applied once the store is in use.
    Migrated,
    /// No migrations: status lists none, only version 0 exists, up and down change nothing.
    None,
}

/// What an engine's [`Upkeep`] performs; everything else it MUST answer with the typed
/// "not supported" ([`prismq_domain::ports::StorageProblem::Unsupported`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpkeepAnswers {
    /// Which parts of `prune` it performs.
    pub prune: PruneScope,
    /// Whether `check`, `checkpoint`, `optimize`, `vacuum` and `backup` run (a store kept
    /// in a file) rather than answer "not supported".
    pub files: bool,
}

/// Which parts of [`Upkeep::prune`] an engine performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneScope {
    /// Finished tasks, old log entries and result sightings, with an archive (SQLite).
    Everything,
    /// Result sightings only, without an archive; asking for more is "not supported"
    /// (PostgreSQL).
    SightingsOnly,
    /// Nothing: every prune is "not supported" (the in-memory fake).
    Nothing,
}

/// The retry policy every obligation runs with: base 1 s, cap 10 s, 3 attempts.
pub fn contract_retry_policy() -> RetryPolicy {
    RetryPolicy {
        base: std::time::Duration::from_secs(1),
        cap: std::time::Duration::from_secs(10),
        max_attempts: 3,
    }
}

/// Stamps out one `#[tokio::test]` per contract obligation, in the calling module, each
/// named after its obligation and calling it with `factory`.
///
/// `factory` is an expression of a type implementing `Fn(ContractEnv) -> Subject`, evaluated
/// once per test; the calling crate needs `tokio` (with `macros` and `rt-multi-thread`).
///
/// ```ignore
/// use prismq_testkit::contract::{ContractEnv, Subject};
/// use prismq_testkit::MemoryStore;
///
/// prismq_testkit::contract_suite!(|env: ContractEnv| {
///     Subject::from_store(MemoryStore::new(env.clock, env.retry))
/// });
/// ```
///
/// The list below is the only list of obligations: adding one here adds it to every
/// adapter's suite (a unit test checks that every public obligation is listed).
#[macro_export]
macro_rules! contract_suite {
    ($factory:expr $(,)?) => {
        $crate::__contract_tests! { ($factory)
            queue::enqueue_sets_defaults,
            queue::enqueue_keeps_given_fields,
            queue::enqueue_ids_increase,
            queue::enqueue_rejects_non_object_params,
            queue::enqueue_rejects_oversized_params,
            queue::enqueue_rejects_bad_idempotency_key,
            queue::enqueue_rejects_bad_max_attempts,
            queue::enqueue_rejects_bad_region,
            queue::enqueue_duplicate_key_returns_existing_task,
            queue::enqueue_reused_key_with_other_work_is_invalid,
            queue::enqueue_key_of_finished_task_is_still_duplicate,
            queue::batch_returns_one_result_per_input_in_order,
            queue::batch_with_invalid_task_writes_nothing,
            queue::batch_names_first_bad_index,
            queue::batch_existing_key_is_duplicate,
            queue::batch_repeated_key_creates_one_task,
            queue::batch_reused_key_with_other_work_writes_nothing,
            listing::get_unknown_is_not_found,
            listing::list_is_newest_first,
            listing::list_filters_by_status_and_type,
            listing::list_pages_with_before_id,
            listing::list_filters_finished_before,
            listing::list_filters_by_idempotency_key_prefix,
            listing::list_refuses_limit_out_of_range,
            listing::purge_removes_final_tasks_and_their_logs,
            listing::purge_respects_limit,
            listing::purge_refuses_non_final_status,
            listing::stats_counts_by_type_and_status,
            listing::stats_oldest_eligible,
            listing::stats_counts_recent_finishes,
            operator::cancel_queued_task,
            operator::cancel_claimed_task_fences_its_lease,
            operator::cancel_running_task_fences_its_lease,
            operator::cancel_final_task_is_invalid_state,
            operator::cancel_unknown_is_not_found,
            operator::retry_requeues_dead_letter,
            operator::retry_refuses_other_statuses,
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
            failures::fail_retryable_requeues_with_backoff,
            failures::fail_backoff_stays_under_cap,
            failures::fail_retryable_at_max_attempts_dead_letters,
            failures::fail_permanent_dead_letters_at_once,
            failures::fail_retry_after_defers_and_gives_attempt_back,
            failures::fail_retry_after_in_past_defers_until_now,
            failures::deferral_never_uses_the_last_attempt,
            failures::fail_with_stale_token_is_lease_lost,
            lifecycle::release_requeues_without_using_attempt,
            lifecycle::release_with_stale_token_is_lease_lost,
            workers::register_records_now_as_start_and_heartbeat,
            workers::reregister_resets_worker,
            workers::heartbeat_records_now_and_state,
            workers::heartbeat_records_held_types,
            workers::heartbeat_unknown_is_not_found,
            workers::deregister_marks_stopped_and_keeps_it,
            workers::list_reports_health_ordered_by_id,
            workers::prune_removes_stopped_and_stale,
            logs::append_and_list_in_written_order,
            logs::append_to_unknown_task_is_not_found,
            logs::list_of_unknown_task_is_not_found,
            logs::lifecycle_writes_one_event_per_change,
            results::save_inserts_unseen_items,
            batches::a_batch_leaves_what_its_items_saved_one_at_a_time_leave,
            results::save_same_item_again_is_unchanged,
            results::changed_field_updates_without_snapshot,
            results::changed_metric_updates_with_snapshot,
            results::save_validates_every_item_first,
            results::item_repeated_in_batch_is_saved_per_occurrence,
            results::concurrent_saves_keep_one_row_per_item,
            results::get_and_history_of_unknown_item_are_not_found,
            results::find_returns_the_id_under_every_source,
            results::one_record_per_video_across_sources,
            results::growth_covers_real_windows,
            results::growth_of_a_flat_video_stays_flat_until_it_moves,
            result_queries::query_orders_by_views,
            result_queries::query_orders_by_recent,
            result_queries::query_orders_by_growth,
            result_queries::query_filters_source_and_since,
            result_queries::query_filters_first_seen_channel_and_task,
            result_queries::query_pages_after_a_cursor,
            result_queries::query_refuses_limit_out_of_range,
            result_queries::count_all_and_by_source,
            outliers::outlier_planted_video_scores_against_known_median,
            outliers::outlier_channel_below_minimum_has_no_score,
            outliers::outlier_formats_have_their_own_medians,
            outliers::outlier_new_upload_without_history_has_no_score,
            outliers::outlier_score_moves_with_the_median,
            outliers::outlier_unsaved_videos_wait_for_a_moved_baseline_or_rescore,
            outliers::outlier_bounded_rescoring_agrees_with_the_reference,
            outliers::outlier_unchanged_save_moving_the_last_observation_recomputes,
            outliers::outlier_age_basis_comes_from_history,
            outliers::query_orders_and_filters_by_outlier_score,
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
            keys::create_stores_key_and_list_orders_by_id,
            keys::create_refuses_invalid_and_duplicate,
            keys::verify_finds_only_active_matching_keys,
            keys::revoke_deactivates_and_unknown_is_not_found,
            keys::touch_records_last_use_forward_only,
            tracked::tracked_lists_each_youtube_id_once_in_order,
            tracked::tracked_pages_with_keyset_after,
            tracked::tracked_filters_by_seen_since_and_channel,
            tracked::tracked_filters_by_schedule,
            tracked::tracked_refuses_limit_out_of_range,
            admin::status_lists_every_migration_applied,
            admin::down_then_up_returns_to_the_latest_schema,
            admin::unknown_targets_are_refused_and_change_nothing,
            admin::server_info_names_the_engine,
            admin::validate_passes_and_leaves_nothing_written,
            dump::dump_then_load_copies_every_row,
            dump::dump_streams_in_batches_of_the_given_size,
            dump::a_load_dropped_before_commit_leaves_the_target_as_it_was,
            dump::a_load_sees_existing_rows_and_may_clear_them,
            upkeep::check_answers_as_declared,
            upkeep::prune_of_finished_tasks_answers_as_declared,
            upkeep::prune_of_sightings_keeps_first_and_latest_or_is_unsupported,
            upkeep::prune_refuses_a_batch_size_out_of_range,
            upkeep::checkpoint_optimize_and_vacuum_answer_as_declared,
            upkeep::backup_writes_a_checked_copy_or_is_unsupported,
        }
    };
}

/// Implementation detail of [`contract_suite!`]: one test per `module::obligation`.
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_tests {
    (($factory:expr) $($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::contract::$module::$name($factory).await;
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    /// Every `pub async fn` in the obligation modules is listed in `contract_suite!`.
    #[test]
    fn every_obligation_is_listed_in_the_macro() {
        let macro_src = include_str!("mod.rs");
        let modules = [
            ("admin", include_str!("admin.rs")),
            ("batches", include_str!("batches.rs")),
            ("claims", include_str!("claims.rs")),
            ("dump", include_str!("dump.rs")),
            ("failures", include_str!("failures.rs")),
            ("handovers", include_str!("handovers.rs")),
            ("keys", include_str!("keys.rs")),
            ("lifecycle", include_str!("lifecycle.rs")),
            ("listing", include_str!("listing.rs")),
            ("logs", include_str!("logs.rs")),
            ("operator", include_str!("operator.rs")),
            ("outliers", include_str!("outliers.rs")),
            ("queue", include_str!("queue.rs")),
            ("quota", include_str!("quota.rs")),
            ("rescue", include_str!("rescue.rs")),
            ("result_queries", include_str!("result_queries.rs")),
            ("results", include_str!("results.rs")),
            ("schedules", include_str!("schedules.rs")),
            ("strategies", include_str!("strategies.rs")),
            ("tracked", include_str!("tracked.rs")),
            ("upkeep", include_str!("upkeep.rs")),
            ("workers", include_str!("workers.rs")),
        ];
        let mut missing = Vec::new();
        for (module, src) in modules {
            for line in src.lines() {
                if let Some(rest) = line.strip_prefix("pub async fn ") {
                    let name = rest.split('(').next().unwrap_or_default();
                    let entry = format!("{module}::{name},");
                    if !macro_src.contains(&entry) {
                        missing.push(entry);
                    }
                }
            }
        }
        assert!(missing.is_empty(), "not in contract_suite!: {missing:?}");
    }
}
