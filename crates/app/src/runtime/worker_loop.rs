//! One worker loop: register, heartbeat on its own interval, claim → run → record until the
//! run ends, deregister.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use tokio::time::{interval_at, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use prismq_domain::ports::{ClaimRequest, ClaimedTask, Heartbeat, WorkerInfo};
use prismq_domain::{PortError, WorkerId};

use super::attempt::{self, Ended};
use super::backoff::Backoff;
use super::gate::Admission;
use super::pace::{idle, record, LoopResult, Wake};
use super::report::{RunReport, RuntimeError};
use super::shared::{BeatState, Shared};

/// Runs loop `id` to its end.
pub(crate) async fn run(shared: Arc<Shared>, id: WorkerId) -> LoopResult {
    let info = WorkerInfo {
        id: id.clone(),
        hostname: shared.settings.hostname.clone(),
        pid: shared.settings.pid,
        capabilities: shared.capabilities.clone(),
        strategy: shared.settings.strategy,
    };
    let mut backoff = Backoff::new(
        shared.settings.idle_backoff_min,
        shared.settings.idle_backoff_max,
    );
    match register(&shared, &info, &mut backoff).await {
        Ok(true) => {}
        Ok(false) => return Ok(RunReport::default()),
        Err(e) => return Err((RunReport::default(), e)),
    }
    tracing::info!(worker = %id, "worker loop started");
    let state: BeatState = Arc::default();
    let beat_stop = CancellationToken::new();
    let beats = tokio::spawn(heartbeats(
        shared.clone(),
        info.clone(),
        state.clone(),
        beat_stop.clone(),
    ));
    backoff.reset();
    // A one-task run (`prismq collect`) takes its task alone.
    let ahead = super::ahead::Ahead::of(shared.settings.prefetch, shared.queue.claims_in_batches());
    let result = if let (Some(ahead), None) = (ahead, shared.settings.only_task) {
        super::ahead::work(&shared, &id, &state, &mut backoff, ahead).await
    } else {
        work(&shared, &id, &state, &mut backoff).await
    };
    beat_stop.cancel();
    let _ = beats.await;
    // The final counters: without this beat the registry keeps those of the last periodic
    // one (a run shorter than the interval showed none at all).
    let last = beat_of(&shared, &state);
    if let Err(e) =
        attempt::with_retries(&shared, || shared.workers.heartbeat(&id, last.clone())).await
    {
        tracing::warn!(worker = %id, error = %e, "could not write the final counters");
    }
    if let Err(e) = attempt::with_retries(&shared, || shared.workers.deregister(&id)).await {
        tracing::warn!(worker = %id, error = %e, "could not deregister; the worker will show as stale");
    }
    tracing::info!(worker = %id, "worker loop stopped");
    result
}

/// Registers, retrying transient errors until it works or the run is stopped (`false`).
async fn register(
    shared: &Shared,
    info: &WorkerInfo,
    backoff: &mut Backoff,
) -> Result<bool, RuntimeError> {
    loop {
        match shared.workers.register(info).await {
            Ok(()) => return Ok(true),
            Err(e) if e.is_transient() => {
                tracing::warn!(worker = %info.id, error = %e, "register failed; retrying");
                if !idle(shared, backoff, &mut None).await {
                    return Ok(false);
                }
            }
            Err(source) => {
                return Err(RuntimeError::Port {
                    worker: info.id.clone(),
                    operation: "register",
                    source,
                })
            }
        }
    }
}

async fn work(
    shared: &Shared,
    id: &WorkerId,
    state: &BeatState,
    backoff: &mut Backoff,
) -> LoopResult {
    let base = shared.claim_request(id);
    let mut report = RunReport::default();
    let mut wake: Wake = shared.notifier.as_ref().map(|n| n.subscribe());
    // A claim made with the last completion (one step on SQLite and PostgreSQL), with the
    // admission and the reservations it was made under: the loop is still counted busy for it.
    let mut chained: Option<(Admission, ClaimAnswer)> = None;
    while !shared.stop.is_cancelled() || chained.is_some() {
        let (admission, claimed) = match chained.take() {
            Some(next) => next,
            None => {
                if let Some(scheduler) = &shared.scheduler {
                    if scheduler.tick().await > 0 {
                        backoff.reset();
                    }
                }
                match reserve(shared, &base).await {
                    Reserved::Claim(admission, request) => {
                        // Claimed and marked running in one step (one transaction on
                        // SQLite, one statement on PostgreSQL).
                        let claimed = shared.queue.claim_and_start(&request).await;
                        (admission, claimed)
                    }
                    Reserved::Held => {
                        // Held types are not eligible: a draining run ends as for tasks
                        // waiting out a backoff, leaving them queued.
                        if shared.options.drain && shared.busy.load(Ordering::SeqCst) == 0 {
                            tracing::debug!(worker = %id, "drained: every type is held back and no loop busy");
                            break;
                        }
                        if !idle(shared, backoff, &mut wake).await {
                            break;
                        }
                        continue;
                    }
                    Reserved::Spent => break, // max_tasks reached
                }
            }
        };
        let hand_back = shared.gate.claimed(
            &admission,
            claimed
                .as_ref()
                .ok()
                .and_then(Option::as_ref)
                .map(|c| (c.task.id, &c.task.task_type)),
        );
        match claimed {
            Ok(Some(c)) => {
                backoff.reset();
                report.claimed += 1;
                let span = attempt::task_span(&c.task, id);
                let (task_id, task_type) = (c.task.id, c.task.task_type.clone());
                let (ended, verdict) = attempt::run(shared, c, state, hand_back, None)
                    .instrument(span.clone())
                    .await;
                shared.gate.record(&task_type, task_id, verdict);
                let outcome = match ended {
                    Ended::Settled(outcome) => outcome,
                    Ended::Succeeded(finish) => {
                        let next = if shared.stop.is_cancelled()
                            || !shared.queue.completes_and_claims_at_once()
                        {
                            None
                        } else {
                            // Schedules fire between tasks here too, or a loop that always
                            // finds work would never let them.
                            if let Some(scheduler) = &shared.scheduler {
                                scheduler.tick().await;
                            }
                            match reserve(shared, &base).await {
                                Reserved::Claim(admission, request) => Some((admission, request)),
                                Reserved::Held | Reserved::Spent => None,
                            }
                        };
                        match next {
                            None => finish.complete(shared).instrument(span).await,
                            Some((admission, request)) => {
                                let (outcome, claimed) = finish
                                    .complete_and_claim(shared, &request)
                                    .instrument(span)
                                    .await;
                                match claimed {
                                    Some(claimed) => chained = Some((admission, claimed)),
                                    None => {
                                        // Not completed, so nothing was claimed either.
                                        shared.gate.claimed(&admission, None);
                                        shared.return_claim();
                                        shared.busy.fetch_sub(1, Ordering::SeqCst);
                                    }
                                }
                                outcome
                            }
                        }
                    }
                };
                record(&mut report, state, outcome);
                // This task's share; a chained claim holds its own.
                shared.busy.fetch_sub(1, Ordering::SeqCst);
            }
            Ok(None) => {
                shared.return_claim();
                let others_busy = shared.busy.fetch_sub(1, Ordering::SeqCst) - 1;
                if shared.options.drain && others_busy == 0 {
                    tracing::debug!(worker = %id, "drained: nothing eligible and no loop busy");
                    break;
                }
                if !idle(shared, backoff, &mut wake).await {
                    break;
                }
            }
            Err(e) if e.is_transient() => {
                shared.return_claim();
                shared.busy.fetch_sub(1, Ordering::SeqCst);
                tracing::warn!(worker = %id, error = %e, "claim failed; retrying after a backoff");
                if !idle(shared, backoff, &mut wake).await {
                    break;
                }
            }
            Err(source) => {
                shared.return_claim();
                shared.busy.fetch_sub(1, Ordering::SeqCst);
                let e = RuntimeError::Port {
                    worker: id.clone(),
                    operation: "claim",
                    source,
                };
                return Err((report, e));
            }
        }
    }
    Ok(report)
}

/// A claim's answer.
type ClaimAnswer = Result<Option<ClaimedTask>, PortError>;

/// What a loop may do next (see [`reserve`]).
enum Reserved {
    /// Claim with this request; the admission's reservations and one of `max_tasks` are
    /// held, and the loop is counted busy.
    Claim(Admission, ClaimRequest),
    /// Every type the loop serves is held back now (breaker open, quota spent).
    Held,
    /// `max_tasks` is reached.
    Spent,
}

/// Asks the gate which types may be claimed now (never an empty filter, which would mean
/// every type) and reserves one of `max_tasks` for the claim.
async fn reserve(shared: &Shared, base: &ClaimRequest) -> Reserved {
    let admission = shared.gate.admit(&shared.capabilities).await;
    if admission.types.is_empty() {
        return Reserved::Held;
    }
    if !shared.reserve_claim() {
        shared.gate.claimed(&admission, None);
        return Reserved::Spent;
    }
    shared.busy.fetch_add(1, Ordering::SeqCst);
    let mut request = base.clone();
    request.filter.task_types.clone_from(&admission.types);
    Reserved::Claim(admission, request)
}

/// The loop's state as a heartbeat, with the types its process holds back now.
fn beat_of(shared: &Shared, state: &BeatState) -> Heartbeat {
    let mut beat = state.lock().unwrap_or_else(PoisonError::into_inner).clone();
    beat.held = shared.gate.held(&shared.capabilities);
    beat
}

/// Sends a heartbeat every `heartbeat_interval` (the first one interval after registering,
/// which counts as one) until `stop`. A worker the registry forgot (pruned) registers again.
async fn heartbeats(
    shared: Arc<Shared>,
    info: WorkerInfo,
    state: BeatState,
    stop: CancellationToken,
) {
    let every = shared.settings.heartbeat_interval;
    let mut tick = interval_at(Instant::now() + every, every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let beat = beat_of(&shared, &state);
        match shared.workers.heartbeat(&info.id, beat).await {
            Ok(()) => {}
            Err(PortError::NotFound(_)) => {
                tracing::warn!(worker = %info.id, "the registry forgot this worker; registering again");
                if let Err(e) = shared.workers.register(&info).await {
                    tracing::warn!(worker = %info.id, error = %e, "re-register failed");
                }
            }
            Err(e) => tracing::warn!(worker = %info.id, error = %e, "heartbeat failed"),
        }
    }
}
