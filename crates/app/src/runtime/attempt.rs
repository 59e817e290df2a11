//! One attempt of one claimed task: start it, run the handler under its lease and timeout,
//! and write the outcome back — fenced by the lease at every step.

use std::any::Any;
use std::future::Future;
use std::time::Duration;

use serde_json::json;
use tokio::task::{JoinError, JoinHandle};
use tokio::time::{interval_at, sleep, Instant, MissedTickBehavior};

use prismq_domain::ports::{
    ClaimRequest, ClaimedTask, Failure, Handover, LogLevel, NewLogEntry, TaskEvent,
};
use prismq_domain::text::{one_line, MESSAGE_MAX_CHARS};
use prismq_domain::{
    CancelSignal, ContentItem, ErrorClass, Lease, PortError, RetryDecision, SaveReport, Task,
    TaskContext, TaskError, TaskResult,
};

use super::backoff::Backoff;
use super::gate::Verdict;
use super::handovers::{one_per_item, BatchFuture};
use super::shared::{update, BeatState, Shared};
use crate::config::format_duration;

/// What became of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Completed,
    Failed(RetryDecision),
    Released,
    Lost,
}

/// How an attempt ended: settled in the store, or succeeded with its completion still to
/// write (see [`Finish`]).
pub(crate) enum Ended {
    Settled(Outcome),
    Succeeded(Finish),
}

/// A successful attempt whose completion is not written yet: its items are saved and its
/// follow-ups enqueued. The worker loop writes it alone ([`Finish::complete`]) or together
/// with its next claim ([`Finish::complete_and_claim`]), one transaction on SQLite, one
/// statement on PostgreSQL.
pub(crate) struct Finish {
    lease: Lease,
    body: serde_json::Value,
    items: usize,
    saved: SaveReport,
}

impl Finish {
    /// Writes the completion.
    pub(crate) async fn complete(self, shared: &Shared) -> Outcome {
        let (outcome, _) = self.write(shared, None).await;
        outcome
    }

    /// Writes the completion and claims the loop's next task in the same step: the outcome,
    /// and the claim's answer when the completion was written.
    pub(crate) async fn complete_and_claim(
        self,
        shared: &Shared,
        next: &ClaimRequest,
    ) -> (Outcome, Option<Result<Option<ClaimedTask>, PortError>>) {
        self.write(shared, Some(next)).await
    }

    /// The completion, with `next` claimed after it: together with the completions of other
    /// loops when the store writes them in one step (see [`super::handovers`]), else in this
    /// loop's own call. A transient failure of the batch is tried again alone.
    async fn write(
        self,
        shared: &Shared,
        next: Option<&ClaimRequest>,
    ) -> (Outcome, Option<Result<Option<ClaimedTask>, PortError>>) {
        let summary = Some(self.body.clone());
        let grouped = match &shared.handovers {
            Some(group) => {
                let item = Handover {
                    lease: self.lease.clone(),
                    summary: summary.clone(),
                    next: next.cloned(),
                };
                // A batch that fails transiently is tried again for up to a lease length,
                // as a loop's own calls are.
                let write = |items: Vec<Handover>| -> BatchFuture<'_> {
                    Box::pin(async move {
                        with_retries(shared, || shared.queue.complete_and_claim_many(&items)).await
                    })
                };
                Some(group.hand_over(item, &write).await)
            }
            None => None,
        };
        let answer = match grouped {
            // Written, or refused for this attempt alone: the answer stands.
            Some(a @ (Ok(_) | Err(PortError::LeaseLost { .. }))) => a,
            // No batches here, or the batch was not written: this loop's own call.
            _ => {
                with_retries(shared, || async {
                    match next {
                        Some(next) => {
                            shared
                                .queue
                                .complete_and_claim(&self.lease, summary.clone(), next)
                                .await
                        }
                        None => shared
                            .queue
                            .complete(&self.lease, summary.clone())
                            .await
                            .map(|()| Ok(None)),
                    }
                })
                .await
            }
        };
        match answer {
            Ok(claimed) => (self.settle(Ok(())), next.map(|_| claimed)),
            Err(e) => (self.settle(Err(e)), None),
        }
    }

    /// The completion as one item of a batch, with `next` claimed after it.
    fn handover(&self, next: Option<ClaimRequest>) -> Handover {
        Handover {
            lease: self.lease.clone(),
            summary: Some(self.body.clone()),
            next,
        }
    }

    fn settle(&self, r: Result<(), PortError>) -> Outcome {
        match r {
            Ok(()) => {
                tracing::info!(
                    items = self.items,
                    inserted = self.saved.inserted,
                    updated = self.saved.updated,
                    "completed"
                );
                Outcome::Completed
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not complete the task; its items are saved");
                Outcome::Lost
            }
        }
    }
}

/// How long a loop that keeps tasks ahead leaves a completion unwritten while it runs its
/// next tasks: past this, the completions waiting are written while the handler runs, so a
/// long task never keeps finished ones shown running (nor lets their leases lapse).
pub(crate) const HELD_COMPLETIONS_WAIT: Duration = Duration::from_millis(50);

/// The completions a loop that keeps tasks ahead has not written yet (see
/// [`super::ahead`]), each with its task's span, and the outcomes of those written.
#[derive(Default)]
pub(crate) struct Pending {
    items: Vec<(Finish, tracing::Span)>,
    since: Option<Instant>,
    settled: Vec<Outcome>,
}

impl Pending {
    pub(crate) fn push(&mut self, finish: Finish, span: tracing::Span) {
        self.since.get_or_insert_with(Instant::now);
        self.items.push((finish, span));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// When the completions waiting must be written at the latest.
    fn due(&self) -> Option<Instant> {
        self.since.map(|t| t + HELD_COMPLETIONS_WAIT)
    }

    /// The outcomes of the completions written since the last call.
    pub(crate) fn take_settled(&mut self) -> Vec<Outcome> {
        std::mem::take(&mut self.settled)
    }

    /// Writes every completion waiting in one step
    /// ([`TaskQueue::complete_and_claim_many`](prismq_domain::ports::TaskQueue::complete_and_claim_many)),
    /// the first `claims` of them each with a claim for `next`, and answers the tasks
    /// claimed. A batch that fails transiently is tried again for up to a lease length; one
    /// that still fails leaves the completions to their leases (outcome lost) and answers
    /// its error. A claim's own error is answered when no claim took a task.
    pub(crate) async fn write(
        &mut self,
        shared: &Shared,
        next: Option<(&ClaimRequest, usize)>,
    ) -> Result<Vec<ClaimedTask>, PortError> {
        let items = std::mem::take(&mut self.items);
        self.since = None;
        let (request, claims) = next.map_or((None, 0), |(r, n)| (Some(r), n));
        let batch: Vec<Handover> = items
            .iter()
            .enumerate()
            .map(|(i, (f, _))| f.handover(request.filter(|_| i < claims).cloned()))
            .collect();
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let answers = with_retries(shared, || shared.queue.complete_and_claim_many(&batch)).await;
        let answers = one_per_item(answers, items.len());
        let mut claimed = Vec::new();
        let mut claim_error = None;
        let mut batch_error = None;
        for ((finish, span), answer) in items.into_iter().zip(answers) {
            let _in_task = span.enter();
            match answer {
                Ok(claim) => {
                    self.settled.push(finish.settle(Ok(())));
                    match claim {
                        Ok(Some(c)) => claimed.push(c),
                        Ok(None) => {}
                        Err(e) => claim_error = Some(e),
                    }
                }
                Err(e) => {
                    self.settled.push(finish.settle(Err(e.clone())));
                    if !matches!(e, PortError::LeaseLost { .. }) {
                        batch_error = Some(e);
                    }
                }
            }
        }
        match (claimed.is_empty(), batch_error.or(claim_error)) {
            (true, Some(e)) if claims > 0 => Err(e),
            _ => Ok(claimed),
        }
    }
}

/// How the handler's run ended. A handler stopped by the time limit or by the end of the
/// shutdown grace carries the items it returned when told to stop (see [`WIND_DOWN`]).
enum Ending {
    Finished(Result<Result<TaskResult, TaskError>, JoinError>),
    TimedOut(Vec<ContentItem>),
    LeaseLost,
    GraceOver(Vec<ContentItem>),
}

/// How long a handler told to stop (time limit, shutdown grace over) has to return, with
/// what it fetched so far as [`TaskError::partial`], before it is aborted. The YouTube
/// handlers check their cancel signal between requests and kill yt-dlp on it, so they
/// return well within it; one that ignores the signal is aborted and keeps nothing.
const WIND_DOWN: Duration = Duration::from_secs(1);

/// Retries `op` while it fails with a transient error, with backoff, for at most one lease
/// length (after that the lease has lapsed and the task is another claim's).
pub(crate) async fn with_retries<T, F, Fut>(shared: &Shared, mut op: F) -> Result<T, PortError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, PortError>>,
{
    let give_up = Instant::now() + shared.settings.lease;
    let mut backoff = Backoff::new(
        shared.settings.idle_backoff_min,
        shared.settings.idle_backoff_max,
    );
    loop {
        match op().await {
            Err(e) if e.is_transient() && Instant::now() < give_up => {
                tracing::warn!(error = %e, "store busy or unavailable; retrying");
                sleep(backoff.next_delay()).await;
            }
            other => return other,
        }
    }
}

/// The span an attempt of `task` by `worker` runs in.
pub(crate) fn task_span(task: &Task, worker: &prismq_domain::WorkerId) -> tracing::Span {
    tracing::info_span!(
        "task",
        task_id = task.id.0,
        task_type = %task.task_type,
        attempt = task.attempts,
        worker = %worker,
    )
}

/// Runs one claimed attempt to its outcome, and says what it showed of the task type's
/// source (for the circuit breaker). `hand_back`: release the task unrun (its type was held
/// back while the claim was in flight).
///
/// `pending`: the completions of a loop that keeps tasks ahead, written while the handler
/// runs once they have waited [`HELD_COMPLETIONS_WAIT`].
pub(crate) async fn run(
    shared: &Shared,
    claimed: ClaimedTask,
    state: &BeatState,
    hand_back: bool,
    pending: Option<&mut Pending>,
) -> (Ended, Verdict) {
    let ClaimedTask { task, mut lease } = claimed;
    update(state, |b| b.current_task = Some(task.id));
    tracing::info!("claimed");
    if shared.stop.is_cancelled() {
        // Shutdown was asked while the claim was in flight: hand it straight back.
        return (
            Ended::Settled(release(shared, &lease).await),
            Verdict::Neutral,
        );
    }
    if hand_back {
        tracing::info!("its task type is held back now; releasing it without using an attempt");
        return (
            Ended::Settled(release(shared, &lease).await),
            Verdict::Neutral,
        );
    }
    let Some(handler) = shared.registry.handler(&task.task_type) else {
        let message = format!(
            "this worker has no handler for {}; another worker may",
            task.task_type
        );
        return (
            Ended::Settled(fail(shared, &lease, ErrorClass::Retryable, message).await),
            Verdict::Neutral,
        );
    };
    let cancel = CancelSignal::new();
    let ctx = TaskContext::new(task.id, cancel.clone(), shared.logs.clone());
    let mut join = {
        let task = task.clone();
        tokio::spawn(async move { handler.handle(&task, &ctx).await })
    };
    let ending = supervise(shared, &mut lease, &mut join, &cancel, pending).await;
    let verdict = match &ending {
        Ending::Finished(Ok(Ok(_))) => Verdict::Answered,
        Ending::Finished(Ok(Err(e))) => match e.class {
            ErrorClass::Retryable => Verdict::Transient,
            ErrorClass::RetryableAfter(_) => Verdict::Deferred,
            ErrorClass::Permanent => Verdict::Answered,
        },
        Ending::TimedOut(_) => Verdict::Transient,
        Ending::Finished(Err(_)) | Ending::LeaseLost | Ending::GraceOver(_) => Verdict::Neutral,
    };
    let outcome = match ending {
        Ending::Finished(Ok(Ok(result))) => {
            return match succeed(shared, &lease, &task, result).await {
                Ok(finish) => (Ended::Succeeded(finish), verdict),
                Err(outcome) => (Ended::Settled(outcome), verdict),
            };
        }
        Ending::Finished(Ok(Err(e))) => {
            let TaskError {
                class,
                message,
                partial,
            } = e;
            // Outside text may be in it: one bounded line in the log as in the store.
            let message = one_line(&message, MESSAGE_MAX_CHARS);
            tracing::info!(class = ?class, error = %message, partial = partial.len(), "handler failed");
            save_partial(shared, &task, &partial).await;
            fail(shared, &lease, class, message).await
        }
        Ending::Finished(Err(join_error)) => {
            let message = match join_error.try_into_panic() {
                Ok(payload) => format!("the handler panicked: {}", panic_message(&*payload)),
                Err(e) => format!("the handler was stopped: {e}"),
            };
            let message = one_line(&message, MESSAGE_MAX_CHARS);
            tracing::error!(error = %message, "handler panicked");
            fail(shared, &lease, ErrorClass::Retryable, message).await
        }
        Ending::TimedOut(partial) => {
            let message = format!(
                "the handler did not finish within worker.handler_timeout ({})",
                format_duration(shared.settings.handler_timeout)
            );
            tracing::warn!(error = %message, partial = partial.len(), "handler timed out");
            save_partial(shared, &task, &partial).await;
            fail(shared, &lease, ErrorClass::Retryable, message).await
        }
        Ending::LeaseLost => {
            tracing::warn!("lease lost while the handler ran; its result is discarded");
            Outcome::Lost
        }
        Ending::GraceOver(partial) => {
            tracing::info!(
                partial = partial.len(),
                "shutdown grace over; releasing the task"
            );
            save_partial(shared, &task, &partial).await;
            release(shared, &lease).await
        }
    };
    (Ended::Settled(outcome), verdict)
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic payload".to_owned())
}

/// Waits for the handler while renewing the lease every third of its length, enforcing the
/// timeout and, once shutdown is asked, the grace period; writes `pending` completions once
/// they are due.
async fn supervise(
    shared: &Shared,
    lease: &mut Lease,
    join: &mut JoinHandle<Result<TaskResult, TaskError>>,
    cancel: &CancelSignal,
    mut pending: Option<&mut Pending>,
) -> Ending {
    let s = &shared.settings;
    let every = s.renew_every();
    let mut renew = interval_at(Instant::now() + every, every);
    renew.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let timeout = sleep(s.handler_timeout);
    tokio::pin!(timeout);
    // Armed only once shutdown is asked; until then it sits (about) 30 years out.
    let grace = sleep(Duration::from_secs(86_400 * 365 * 30));
    tokio::pin!(grace);
    let mut shutting_down = false;
    // The completions waiting from earlier tasks, written while this handler runs once due.
    let due = pending.as_ref().and_then(|p| p.due());
    let write_pending = tokio::time::sleep_until(due.unwrap_or_else(Instant::now));
    tokio::pin!(write_pending);
    let mut pending_due = due.is_some();
    let stop = |join: &JoinHandle<_>, ending| {
        cancel.cancel();
        join.abort();
        ending
    };
    loop {
        tokio::select! {
            biased;
            res = &mut *join => return Ending::Finished(res),
            () = &mut timeout => return wind_down(join, cancel, Ending::TimedOut).await,
            () = &mut grace, if shutting_down => return wind_down(join, cancel, Ending::GraceOver).await,
            () = &mut write_pending, if pending_due => {
                pending_due = false;
                if let Some(p) = pending.as_deref_mut() {
                    // Outcomes are kept in `p` for the loop; no claim, so no answer to use.
                    let _ = p.write(shared, None).await;
                }
            }
            () = shared.stop.cancelled(), if !shutting_down => {
                shutting_down = true;
                grace.as_mut().reset(Instant::now() + s.shutdown_grace);
            }
            _ = renew.tick() => match shared.queue.renew_lease(lease, s.lease).await {
                Ok(renewed) => *lease = renewed,
                Err(e) if e.is_transient() => {
                    tracing::warn!(error = %e, "lease renewal failed; trying again at the next renewal");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lease renewal refused");
                    return stop(join, Ending::LeaseLost);
                }
            },
        }
    }
}

/// Tells the handler to stop and gives it [`WIND_DOWN`] to return: its partial items go into
/// `stopped`'s ending; a handler that finishes successfully after all is taken as finished;
/// one still running is aborted and keeps nothing.
async fn wind_down(
    join: &mut JoinHandle<Result<TaskResult, TaskError>>,
    cancel: &CancelSignal,
    stopped: fn(Vec<ContentItem>) -> Ending,
) -> Ending {
    cancel.cancel();
    match tokio::time::timeout(WIND_DOWN, &mut *join).await {
        Ok(Ok(Ok(result))) => Ending::Finished(Ok(Ok(result))),
        Ok(Ok(Err(e))) => stopped(e.partial),
        Ok(Err(_)) => stopped(Vec::new()),
        Err(_) => {
            join.abort();
            stopped(Vec::new())
        }
    }
}

/// Saves a successful run's items and enqueues its follow-ups: the completion to write, or
/// the failure written when the items could not be saved.
async fn succeed(
    shared: &Shared,
    lease: &Lease,
    task: &Task,
    result: TaskResult,
) -> Result<Finish, Outcome> {
    let TaskResult {
        items,
        summary,
        counters,
        follow_ups,
    } = result;
    let saved = if items.is_empty() {
        SaveReport::default()
    } else {
        match with_retries(shared, || shared.results.save(Some(task.id), &items)).await {
            Ok(r) => r,
            Err(PortError::Invalid(v)) => {
                let message = format!("the result store refused an item the handler produced: {v}");
                return Err(fail(shared, lease, ErrorClass::Permanent, message).await);
            }
            Err(e) => {
                let message = format!("could not save the handler's items: {e}");
                return Err(fail(shared, lease, ErrorClass::Retryable, message).await);
            }
        }
    };
    let followed = enqueue_follow_ups(shared, task, follow_ups).await;
    let mut body = json!({ "summary": summary, "counters": counters, "saved": saved });
    if let Some(f) = followed {
        body["follow_ups"] = f;
    }
    Ok(Finish {
        lease: lease.clone(),
        body,
        items: items.len(),
        saved,
    })
}

/// Enqueues the follow-ups a successful run asked for, after its items are saved (so a
/// baseline they made counts), and says what became of them for the completion summary:
/// `{"enqueued": [ids], "duplicates": [ids], "skipped": n, "refused": n}`; `None` when
/// there were none. Best effort: a follow-up its handler refuses, or that the queue cannot
/// take, is noted in the task's log and the task still completes.
async fn enqueue_follow_ups(
    shared: &Shared,
    task: &Task,
    follow_ups: Vec<prismq_domain::FollowUp>,
) -> Option<serde_json::Value> {
    if follow_ups.is_empty() {
        return None;
    }
    let (mut enqueued, mut duplicates, mut skipped, mut refused) = (Vec::new(), Vec::new(), 0, 0);
    for f in follow_ups {
        if let Some(channel) = &f.unless_channel_has_baseline {
            match shared.results.baselines(channel).await {
                Ok(b) if b.iter().any(|b| b.baseline.median.is_some()) => {
                    skipped += 1;
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    refused += 1;
                    note(
                        shared,
                        task,
                        format!("follow-up not enqueued: reading the baselines of {channel}: {e}"),
                    )
                    .await;
                    continue;
                }
            }
        }
        let kind = f.task.task_type.clone();
        if let Err(e) = shared.registry.validate(&f.task) {
            refused += 1;
            note(shared, task, format!("follow-up {kind} refused: {e}")).await;
            continue;
        }
        match shared.queue.enqueue(f.task).await {
            Ok(e) if e.duplicate => duplicates.push(e.id.0),
            Ok(e) => enqueued.push(e.id.0),
            Err(e) => {
                refused += 1;
                note(shared, task, format!("follow-up {kind} not enqueued: {e}")).await;
            }
        }
    }
    if !enqueued.is_empty() {
        tracing::info!(count = enqueued.len(), "enqueued follow-up tasks");
    }
    Some(json!({
        "enqueued": enqueued,
        "duplicates": duplicates,
        "skipped": skipped,
        "refused": refused,
    }))
}

/// A warning in the task's log (best effort).
async fn note(shared: &Shared, task: &Task, message: String) {
    tracing::warn!(task = task.id.0, "{message}");
    let entry = NewLogEntry {
        level: LogLevel::Warn,
        event: TaskEvent::Progress,
        message,
        details: json!({ "follow_up": "refused" }),
    };
    if let Err(e) = shared.logs.append(task.id, entry).await {
        tracing::warn!(error = %e, "could not write the follow-up note to the task's log");
    }
}

/// Saves the items a failed handler fetched before it stopped ([`TaskError::partial`]),
/// with the task id, and notes in the task's log how many were kept.
///
/// Ordering: this runs **before** `fail`. Once `fail` is recorded the task may be claimed
/// again at once (a retry after a short backoff, or another worker), so saving afterwards
/// could race the next attempt, and a crash between the two would lose the items; saving
/// first means a crash or a lost lease at worst leaves items saved for a task that will run
/// again, which the result store's dedupe on `(source, source_id)` absorbs (the retry
/// updates those rows, it never adds a second one).
///
/// A failure here never replaces the handler's failure: it is logged (tracing and the
/// task's log, both best effort) and the caller goes on to `fail` with the handler's class
/// and message, so the task is still retried, deferred or dead-lettered as classified.
async fn save_partial(shared: &Shared, task: &Task, partial: &[ContentItem]) {
    if partial.is_empty() {
        return;
    }
    let count = partial.len();
    let (level, message, details) = match with_retries(shared, || {
        shared.results.save(Some(task.id), partial)
    })
    .await
    {
        Ok(saved) => {
            tracing::info!(
                items = count,
                inserted = saved.inserted,
                updated = saved.updated,
                "saved the partial items of a failed attempt"
            );
            (
                    LogLevel::Info,
                    format!(
                        "saved {count} partial items fetched before the attempt stopped ({} new, {} updated, {} unchanged)",
                        saved.inserted, saved.updated, saved.unchanged
                    ),
                    json!({ "partial_items": count, "saved": saved }),
                )
        }
        Err(e) => {
            tracing::warn!(items = count, error = %e, "could not save the partial items of a failed attempt");
            (
                LogLevel::Warn,
                format!(
                    "could not save {count} partial items fetched before the attempt stopped: {e}"
                ),
                json!({ "partial_items": count, "error": e.to_string() }),
            )
        }
    };
    let entry = NewLogEntry {
        level,
        event: TaskEvent::Progress,
        message,
        details,
    };
    if let Err(e) = shared.logs.append(task.id, entry).await {
        tracing::warn!(error = %e, "could not write the partial-items note to the task's log");
    }
}

async fn fail(shared: &Shared, lease: &Lease, class: ErrorClass, message: String) -> Outcome {
    // Defence in depth: whatever a handler put in its message, one bounded line is stored.
    let message = one_line(&message, MESSAGE_MAX_CHARS);
    let failure = Failure { class, message };
    match with_retries(shared, || shared.queue.fail(lease, &failure)).await {
        Ok(outcome) => {
            tracing::info!(decision = ?outcome.decision, attempts = outcome.attempts, "attempt failed");
            Outcome::Failed(outcome.decision)
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not record the failure; leaving it to the lease");
            Outcome::Lost
        }
    }
}

async fn release(shared: &Shared, lease: &Lease) -> Outcome {
    match with_retries(shared, || shared.queue.release(lease)).await {
        Ok(()) => Outcome::Released,
        Err(e) => {
            tracing::warn!(error = %e, "could not release the task; its lease will lapse");
            Outcome::Lost
        }
    }
}
