//! The task queue port: enqueue, claim with a strategy, the fenced lifecycle of an attempt,
//! operator actions, listing and stats.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

use crate::claiming::ClaimingStrategy;
use crate::error::PortError;
use crate::retry::{ErrorClass, RetryDecision};
use crate::status::TaskStatus;
use crate::task::{Lease, NewTask, Task, TaskId, TaskType, WorkerId};
use crate::Timestamp;

/// The result of an enqueue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enqueued {
    /// The task's id: new, or the existing task's for a repeated idempotency key.
    pub id: TaskId,
    /// True when the idempotency key already existed and nothing was created.
    pub duplicate: bool,
}

/// The refusal of a reused idempotency key whose task has another type or params, or `None`
/// when `task` matches the existing task `id` (same type, params equal as JSON values): then
/// the enqueue is a duplicate and returns `id`. Priority, timing, attempts and region of a
/// reuse are not compared (the existing task's stay): a key names a piece of work, and
/// `--delay` makes every repeat's `run_after` differ.
pub fn idempotency_conflict(
    task: &NewTask,
    id: TaskId,
    existing_type: &str,
    existing_params: &Value,
) -> Option<crate::ValidationError> {
    let differs = what_differs(task, existing_type, existing_params)?;
    Some(crate::ValidationError::new(
        "idempotency_key",
        format!(
            "{} is already the key of task {id}, which has {differs}; nothing was enqueued",
            shown_key(task)
        ),
        format!("the same type and params as task {id} (enqueueing them again returns it), or another key"),
    ))
}

/// Checks, before anything is written, that an idempotency key repeated within a batch
/// names the same type and params each time (then the repeats are duplicates of the first).
///
/// # Errors
/// `Invalid` naming `tasks[i].idempotency_key` of the first repeat that differs, and the
/// earlier `tasks[j]` it differs from.
pub fn check_batch_keys(tasks: &[NewTask]) -> Result<(), crate::ValidationError> {
    let mut first: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, t) in tasks.iter().enumerate() {
        let Some(k) = t.idempotency_key.as_deref() else {
            continue;
        };
        let Some(&j) = first.get(k) else {
            first.insert(k, i);
            continue;
        };
        let earlier = &tasks[j];
        if let Some(differs) = what_differs(t, earlier.task_type.as_str(), &earlier.params) {
            return Err(crate::ValidationError::new(
                "idempotency_key",
                format!(
                    "{} is also the key of tasks[{j}] of this batch, which has {differs}; nothing was enqueued",
                    shown_key(t)
                ),
                format!("the same type and params as tasks[{j}], or another key"),
            )
            .within(&format!("tasks[{i}]")));
        }
    }
    Ok(())
}

fn what_differs(task: &NewTask, existing_type: &str, existing_params: &Value) -> Option<String> {
    if task.task_type.as_str() != existing_type {
        Some(format!(
            "another type ({existing_type:?}, not {:?})",
            task.task_type.as_str()
        ))
    } else if &task.params != existing_params {
        Some("other params".to_owned())
    } else {
        None
    }
}

/// The key as messages quote it: at most 60 characters (keys are checked free of control
/// characters before they get here).
fn shown_key(task: &NewTask) -> String {
    let key: String = task
        .idempotency_key
        .as_deref()
        .unwrap_or_default()
        .chars()
        .take(60)
        .collect();
    format!("{key:?}")
}

/// Which tasks a worker can take.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimFilter {
    /// The task types the worker handles; empty means every type.
    pub task_types: Vec<TaskType>,
    /// The worker's region: it may take tasks requiring this region or none. `None`: the
    /// worker takes only tasks that require no region.
    pub region: Option<String>,
    /// Only this task: claim it when it is eligible, and no other task ever (what
    /// `prismq collect` runs its one task with). `None`: whichever task the rest allows.
    #[serde(default)]
    pub only: Option<TaskId>,
}

/// A worker's request for its next task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest {
    /// Who claims.
    pub worker: WorkerId,
    /// What it can take.
    pub filter: ClaimFilter,
    /// In which order.
    pub strategy: ClaimingStrategy,
    /// How long the lease lasts unless renewed.
    pub lease_for: Duration,
}

/// A claimed task and the lease fencing this attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedTask {
    /// The task as it is after the claim (status `claimed`, attempts counted).
    pub task: Task,
    /// The lease; every later write of this attempt presents it.
    pub lease: Lease,
}

/// One attempt's completion and, with `next`, the claim its worker makes after it: an item
/// of [`TaskQueue::complete_and_claim_many`].
#[derive(Debug, Clone, PartialEq)]
pub struct Handover {
    /// The attempt to complete.
    pub lease: Lease,
    /// Its summary, stored as [`TaskQueue::complete`] stores it.
    pub summary: Option<Value>,
    /// The worker's next claim, made as [`TaskQueue::claim_and_start`] makes it; `None`: only
    /// complete.
    pub next: Option<ClaimRequest>,
}

/// What became of one [`Handover`]: the outer `Err` is its completion's (nothing of this
/// item written, no claim made); `Ok` holds the claim's answer (`Ok(None)` when the item
/// had no `next` or nothing was eligible).
pub type HandoverAnswer = Result<Result<Option<ClaimedTask>, PortError>, PortError>;

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// How to treat it.
    pub class: ErrorClass,
    /// One line saying what went wrong (stored as the task's last error).
    pub message: String,
}

/// What `fail` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailOutcome {
    /// The retry policy's decision, as applied.
    pub decision: RetryDecision,
    /// The task's attempts after the decision (a deferral gives one back).
    pub attempts: u32,
}

/// Filters and paging for [`TaskQueue::list`]. Results are newest first (id descending).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFilter {
    /// Only tasks in this status.
    pub status: Option<TaskStatus>,
    /// Only tasks of this type.
    pub task_type: Option<TaskType>,
    /// Only tasks with an id below this one (keyset paging: pass the last id seen).
    pub before_id: Option<TaskId>,
    /// Only tasks that finished before this instant.
    pub finished_before: Option<Timestamp>,
    /// Only tasks whose idempotency key starts with this text (a schedule's tasks are
    /// `schedule:<id>:`, see [`crate::schedule`]).
    pub key_prefix: Option<String>,
    /// At most this many (1–10,000).
    pub limit: u32,
}

impl Default for TaskFilter {
    fn default() -> Self {
        TaskFilter {
            status: None,
            task_type: None,
            before_id: None,
            finished_before: None,
            key_prefix: None,
            limit: 100,
        }
    }
}

/// One row of the queue's stats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusCount {
    /// Task type.
    pub task_type: TaskType,
    /// Status.
    pub status: TaskStatus,
    /// Tasks of that type in that status.
    pub count: u64,
}

/// Tasks that finished recently: throughput and failure rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentActivity {
    /// Tasks completed in the last 60 seconds.
    pub completed_last_minute: u64,
    /// Tasks completed in the last hour.
    pub completed_last_hour: u64,
    /// Tasks dead-lettered (status `failed`) in the last hour.
    pub failed_last_hour: u64,
}

impl RecentActivity {
    /// Dead letters as a share of the tasks that finished in the last hour (0 when none did).
    pub fn failure_rate(&self) -> f64 {
        let finished = self.completed_last_hour + self.failed_last_hour;
        if finished == 0 {
            0.0
        } else {
            self.failed_last_hour as f64 / finished as f64
        }
    }
}

/// A snapshot of the queue.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueStats {
    /// Counts per (type, status), only non-zero ones, ordered by type then status.
    pub counts: Vec<StatusCount>,
    /// The `run_after` of the longest-waiting eligible queued task.
    pub oldest_eligible: Option<Timestamp>,
    /// Finishes in the last minute and hour (by `finished_at`, inclusive of the window start).
    pub recent: RecentActivity,
}

impl QueueStats {
    /// Tasks in `status` across all types.
    pub fn total(&self, status: TaskStatus) -> u64 {
        self.counts
            .iter()
            .filter(|c| c.status == status)
            .map(|c| c.count)
            .sum()
    }
}

/// [`TaskQueue::claim_and_start_many`]'s default: `max` calls of
/// [`TaskQueue::claim_and_start`] one after another, stopping when the queue runs dry. An
/// adapter that claims several tasks in one step only for some requests calls it for the
/// others.
///
/// # Errors
/// The first call's error; a later call's error ends the batch with the tasks already
/// claimed (they are claimed and must be run or released).
pub async fn claim_and_start_one_by_one<Q: TaskQueue + ?Sized>(
    queue: &Q,
    request: &ClaimRequest,
    max: usize,
) -> Result<Vec<ClaimedTask>, PortError> {
    let mut claimed = Vec::with_capacity(max.min(64));
    while claimed.len() < max {
        match queue.claim_and_start(request).await {
            Ok(Some(c)) => claimed.push(c),
            Ok(None) => break,
            Err(e) if claimed.is_empty() => return Err(e),
            Err(_) => break,
        }
    }
    Ok(claimed)
}

/// [`TaskQueue::complete_and_claim_many`]'s default: each item's
/// [`TaskQueue::complete_and_claim`] (or [`TaskQueue::complete`] without a `next`), in order.
/// An adapter that writes a batch in one step only when its items allow it calls it for the
/// others.
///
/// # Errors
/// None of its own: each item's outcome is in its answer.
pub async fn complete_and_claim_one_by_one<Q: TaskQueue + ?Sized>(
    queue: &Q,
    items: &[Handover],
) -> Result<Vec<HandoverAnswer>, PortError> {
    let mut answers = Vec::with_capacity(items.len());
    for item in items {
        let answer = match &item.next {
            Some(next) => {
                queue
                    .complete_and_claim(&item.lease, item.summary.clone(), next)
                    .await
            }
            None => queue
                .complete(&item.lease, item.summary.clone())
                .await
                .map(|()| Ok(None)),
        };
        answers.push(answer);
    }
    Ok(answers)
}

/// The durable task queue.
///
/// Every method that changes a task MUST write the matching [`crate::ports::TaskEvent`] to
/// the task's log in the same atomic step as the change, and nothing at all when it fails.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait TaskQueue: Send + Sync {
    /// Adds one task, status `queued`, attempts 0, lapses 0, `run_after` = its own or now, max_attempts
    /// = its own or the queue's retry policy default.
    ///
    /// MUST validate the task (`Invalid`, nothing written). When the idempotency key already
    /// exists: MUST return the existing task's id with `duplicate: true`, creating nothing,
    /// if that task has the same type and params; otherwise MUST fail with `Invalid`, field
    /// `idempotency_key`, naming the existing task (see [`idempotency_conflict`]), writing
    /// nothing.
    async fn enqueue(&self, task: NewTask) -> Result<Enqueued, PortError>;

    /// Adds many tasks all or nothing, returning one [`Enqueued`] per input in order.
    ///
    /// MUST validate every task before writing any (`Invalid` naming the index of the first
    /// bad one as `tasks[i].field`). Existing idempotency keys, and keys repeated within the
    /// batch, resolve as in [`TaskQueue::enqueue`]: the same type and params give one task
    /// flagged as a duplicate; another type or params fails the whole batch with `Invalid`
    /// naming `tasks[i].idempotency_key`, writing nothing.
    async fn enqueue_batch(&self, tasks: Vec<NewTask>) -> Result<Vec<Enqueued>, PortError>;

    /// Atomically claims the next eligible task for `request`, or `None`.
    ///
    /// Eligible: the task's type is in the filter (or the filter is empty), its region
    /// requirement is absent or equals the filter's region, and it is either `queued` with
    /// `run_after <= now`, or `claimed`/`running` with a lease that lapsed (rescued first,
    /// oldest lapse first). Among queued tasks the strategy orders.
    ///
    /// A lapsed lease is not the task's own failure ([`MAX_LAPSES`](crate::lease::MAX_LAPSES)).
    /// Taking one back MUST give back the attempt counted at its claim (attempts − 1, never
    /// below 0), add 1 to `lapses`, and log `lease_expired` (saying the attempt was given back
    /// and the lapse count) in the same atomic step; it MUST NOT dead-letter the task for its
    /// attempts, whatever they are. When `lapses` reaches `MAX_LAPSES` the task MUST be
    /// dead-lettered instead (status `failed`, finished now, lease cleared,
    /// [`lapsed_dead_letter_message`](crate::lease::lapsed_dead_letter_message) as
    /// `last_error`, logged `lease_expired` then `failed`) and the claim moves on; otherwise
    /// the task is claimed as below.
    ///
    /// MUST set status `claimed`, `claimed_by`, a lease expiring at now + `lease_for`, a fresh
    /// lease token, and attempts + 1; MUST never hand one task to two live leases. With
    /// `filter.only`, MUST take that task when it is eligible and no other task (a lapsed
    /// lease of another task is neither rescued nor dead-lettered by that claim).
    async fn claim(&self, request: &ClaimRequest) -> Result<Option<ClaimedTask>, PortError>;

    /// Claims the next eligible task and marks it running in one step — what a worker that
    /// starts its handler at once wants. Same eligibility, order, lease and attempt count as
    /// [`TaskQueue::claim`]; the task comes back `running`, with `claimed` then `started` in its
    /// log. The default runs `claim` then `start`; an adapter SHOULD do both in one atomic
    /// step (one transaction instead of two).
    async fn claim_and_start(
        &self,
        request: &ClaimRequest,
    ) -> Result<Option<ClaimedTask>, PortError> {
        let Some(mut claimed) = self.claim(request).await? else {
            return Ok(None);
        };
        self.start(&claimed.lease).await?;
        claimed.task.status = TaskStatus::Running;
        Ok(Some(claimed))
    }

    /// Claims up to `max` tasks as that many [`TaskQueue::claim_and_start`] calls made one
    /// after another would, each with its own lease: what a worker that keeps a few tasks
    /// ahead takes. Fewer (or none) when the queue runs dry; `max` 0 claims nothing. `Err`
    /// means nothing was claimed. The default makes the calls one by one and, when one fails
    /// after others succeeded, answers with those (they are claimed and must be run or
    /// released); an adapter SHOULD claim them all in one transaction (one commit, the
    /// pages the tasks share written once).
    async fn claim_and_start_many(
        &self,
        request: &ClaimRequest,
        max: usize,
    ) -> Result<Vec<ClaimedTask>, PortError> {
        claim_and_start_one_by_one(self, request, max).await
    }

    /// Extends the lease to now + `lease_for`, returning the new lease.
    /// MUST fail with `LeaseLost`, changing nothing, when the token no longer matches a
    /// `claimed`/`running` task (claimed again, cancelled, finished) — even if the lease merely
    /// lapsed and nobody claimed it yet, renewal still succeeds while the token matches.
    async fn renew_lease(&self, lease: &Lease, lease_for: Duration) -> Result<Lease, PortError>;

    /// Marks the attempt running. MUST fail with `LeaseLost` on a stale token.
    async fn start(&self, lease: &Lease) -> Result<(), PortError>;

    /// Completes the attempt: status `completed`, `finished_at` now, the summary stored, lease
    /// cleared. MUST fail with `LeaseLost` (changing nothing) on a stale token.
    async fn complete(&self, lease: &Lease, summary: Option<Value>) -> Result<(), PortError>;

    /// Whether [`TaskQueue::complete_and_claim`] does both in one step here. A worker uses it
    /// only then: with the default (two calls) its completion would be reported only once the
    /// next claim answers, which for a remote worker may wait for work. Default `false`; an
    /// adapter that overrides `complete_and_claim` with one step says `true`, and a wrapper
    /// says what it wraps.
    fn completes_and_claims_at_once(&self) -> bool {
        false
    }

    /// Completes the attempt as [`TaskQueue::complete`] does, then claims the worker's next
    /// task as [`TaskQueue::claim_and_start`] does for `next`: what a worker does between two
    /// tasks. The outer `Err` is the completion's, and then nothing MUST have been written and
    /// nothing claimed (`LeaseLost` on a stale token). `Ok` means the attempt is completed;
    /// it holds the claim's outcome, which MUST be what `claim_and_start` would have answered
    /// just after the completion (a claim that fails leaves the completion in place). The
    /// default runs the two calls; an adapter SHOULD do both in one transaction (one commit
    /// per task instead of two).
    async fn complete_and_claim(
        &self,
        lease: &Lease,
        summary: Option<Value>,
        next: &ClaimRequest,
    ) -> Result<Result<Option<ClaimedTask>, PortError>, PortError> {
        self.complete(lease, summary).await?;
        Ok(self.claim_and_start(next).await)
    }

    /// Whether [`TaskQueue::complete_and_claim_many`] writes all its items in one step here,
    /// so that a worker pool gains by gathering the completions of loops that finish
    /// together. Default `false`; an adapter that overrides it with one transaction says
    /// `true`, and a wrapper says what it wraps.
    fn completes_in_batches(&self) -> bool {
        false
    }

    /// Whether [`TaskQueue::claim_and_start_many`] and [`TaskQueue::complete_and_claim_many`]
    /// take one worker's batch in one step each here (a transaction; one statement for the
    /// completions and one for the claims; one request each), so that a worker loop gains by claiming
    /// several quick tasks at once and keeping them ahead (`worker.prefetch = "auto"`).
    /// Default: [`TaskQueue::completes_in_batches`]; a wrapper says what it wraps.
    fn claims_in_batches(&self) -> bool {
        self.completes_in_batches()
    }

    /// [`TaskQueue::complete_and_claim`] for several attempts at once (the loops of one
    /// worker pool that finished together): one answer per item, in order. Every item MUST
    /// end as it would have had its call been made alone, in the order given; an item whose
    /// completion fails (`LeaseLost` on a stale token) MUST write nothing of its own and
    /// leave the others be. The outer `Err` means nothing at all was written (the store
    /// busy or unusable): the caller may try the whole batch again. The default makes the
    /// calls one by one, so there an item's own error may be transient (`Busy`) while the
    /// items before it stand; an adapter SHOULD write them all in one transaction (one
    /// commit for the batch, with pages shared between its tasks).
    async fn complete_and_claim_many(
        &self,
        items: &[Handover],
    ) -> Result<Vec<HandoverAnswer>, PortError> {
        complete_and_claim_one_by_one(self, items).await
    }

    /// Fails the attempt and applies the queue's retry policy in the same atomic step: back to
    /// `queued` with a later `run_after` (logged `retried`), a free deferral that gives the
    /// attempt back (logged `deferred`), or `failed` (logged `failed`). The message becomes
    /// `last_error`. A failure is the task's own: its attempt MUST stay counted (unless the
    /// decision is a deferral), earlier lapses given back or not, and `lapses` is left as it
    /// is. MUST fail with `LeaseLost` (changing nothing) on a stale token.
    async fn fail(&self, lease: &Lease, failure: &Failure) -> Result<FailOutcome, PortError>;

    /// Hands the task back without using the attempt (shutdown): `queued`, run_after now,
    /// attempts − 1, logged `released`. MUST fail with `LeaseLost` on a stale token.
    async fn release(&self, lease: &Lease) -> Result<(), PortError>;

    /// Cancels a task that is queued, claimed or running (a running handler's later writes
    /// then get `LeaseLost`). MUST fail with `NotFound` for an unknown id and `InvalidState`
    /// for a completed, failed or cancelled task.
    async fn cancel(&self, id: TaskId) -> Result<Task, PortError>;

    /// Sends a dead-lettered (`failed`) task back to the queue with attempts and lapses reset
    /// to 0 and run_after now, logged `requeued`. MUST fail with `NotFound` for an unknown id and
    /// `InvalidState` for any other status.
    async fn retry(&self, id: TaskId) -> Result<Task, PortError>;

    /// The task with `id`. MUST fail with `NotFound` when there is none.
    async fn get(&self, id: TaskId) -> Result<Task, PortError>;

    /// Tasks matching `filter`, newest first. MUST refuse a limit outside 1–10,000 with
    /// `Invalid`.
    async fn list(&self, filter: &TaskFilter) -> Result<Vec<Task>, PortError>;

    /// Deletes tasks in a final status (`completed`, `failed`, `cancelled`) that finished
    /// before `before`, with their logs, at most `limit` per call; returns how many. MUST
    /// refuse a status that is not final with `Invalid`.
    async fn purge(
        &self,
        status: TaskStatus,
        before: Timestamp,
        limit: u32,
    ) -> Result<u64, PortError>;

    /// Counts by type and status, the oldest eligible task's `run_after`, and the tasks that
    /// completed or were dead-lettered with `finished_at` in the last minute and hour
    /// (`finished_at >= now − window`).
    async fn stats(&self) -> Result<QueueStats, PortError>;
}
