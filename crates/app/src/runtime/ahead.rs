//! A worker loop that keeps tasks ahead (`worker.prefetch` above 1): it claims up to that
//! many tasks in one step, runs them one after another, and writes their completions
//! together with the claims of the next ones, one transaction on SQLite, so the commit and
//! the pages the tasks share are paid once a batch instead of once a task.
//!
//! What holding tasks costs, and how it is bounded:
//! - A held task waits claimed, marked running and hidden from other workers until its loop
//!   gets to it; a task of higher priority enqueued meanwhile comes after the held ones.
//! - A held task that waited a third of its lease has its lease renewed before it starts.
//! - A completion waits at most [`HELD_COMPLETIONS_WAIT`](super::attempt::HELD_COMPLETIONS_WAIT) for the next ones: past it, the
//!   completions waiting are written while the next task's handler runs, so a long task
//!   never keeps finished ones shown running.
//! - Each held task's type is asked of the gate again before it runs: a breaker that opened
//!   meanwhile has the task released unrun (no attempt used), as shutdown has every held
//!   task. A half-open type's probe is claimed alone.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::time::Instant;
use tracing::Instrument;

use prismq_domain::ports::{ClaimRequest, ClaimedTask};
use prismq_domain::{PortError, WorkerId};

use super::attempt::{self, Ended, Outcome, Pending};
use super::backoff::Backoff;
use super::gate::Admission;
use super::pace::{idle, record, LoopResult, Wake};
use super::report::{RunReport, RuntimeError};
use super::shared::{BeatState, Shared};

/// A task claimed ahead, waiting for its loop.
struct Held {
    claimed: ClaimedTask,
    /// The admission it was claimed under, asked again before it runs.
    admission: Arc<Admission>,
    /// Already decided at the claim (a probe's claim): hand it back unrun.
    hand_back: Option<bool>,
    /// When it was claimed (its lease's start).
    at: Instant,
}

/// Whether this loop is counted in [`Shared::busy`] (holding tasks, completions or a claim).
struct Busy<'a> {
    shared: &'a Shared,
    counted: bool,
}

impl Busy<'_> {
    fn hold(&mut self) {
        if !self.counted {
            self.shared.busy.fetch_add(1, Ordering::SeqCst);
            self.counted = true;
        }
    }

    /// Stops counting this loop: how many other loops are busy.
    fn release(&mut self) -> usize {
        if self.counted {
            self.counted = false;
            self.shared.busy.fetch_sub(1, Ordering::SeqCst) - 1
        } else {
            self.shared.busy.load(Ordering::SeqCst)
        }
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

/// Runs the loop until the run ends (see the module documentation).
pub(crate) async fn work(
    shared: &Shared,
    id: &WorkerId,
    state: &BeatState,
    backoff: &mut Backoff,
) -> LoopResult {
    let base = shared.claim_request(id);
    let ahead = shared.settings.prefetch.max(1);
    let mut report = RunReport::default();
    let mut wake: Wake = shared.notifier.as_ref().map(|n| n.subscribe());
    let mut held: VecDeque<Held> = VecDeque::new();
    let mut pending = Pending::default();
    let mut busy = Busy {
        shared,
        counted: false,
    };
    loop {
        for outcome in pending.take_settled() {
            record(&mut report, state, outcome);
        }
        // Schedules fire between tasks, held ones too, or a loop working through long
        // tasks held ahead would keep them waiting for the whole batch.
        if let (Some(scheduler), false) = (&shared.scheduler, shared.stop.is_cancelled()) {
            if scheduler.tick().await > 0 {
                backoff.reset();
            }
        }
        if let Some(next) = held.pop_front() {
            run_held(shared, id, state, next, &mut pending, &mut report).await;
            continue;
        }
        // Nothing held: what waits is written now, with the claims of the next tasks.
        if shared.stop.is_cancelled() {
            if pending.is_empty() {
                break;
            }
            let _ = pending.write(shared, None).await;
            continue;
        }
        let admission = shared.gate.admit(&shared.capabilities).await;
        let granted = if admission.types.is_empty() {
            0
        } else {
            // A half-open type's probe is one task.
            let want = if admission.probe.is_some() { 1 } else { ahead };
            shared.reserve_claims(want)
        };
        if granted == 0 {
            shared.gate.claimed(&admission, None);
            if !pending.is_empty() {
                let _ = pending.write(shared, None).await;
                continue;
            }
            if !admission.types.is_empty() {
                break; // max_tasks reached
            }
            // Every type held back: as for tasks waiting out a backoff.
            let others_busy = busy.release();
            if shared.options.drain && others_busy == 0 {
                tracing::debug!(worker = %id, "drained: every type is held back and no loop busy");
                break;
            }
            if !idle(shared, backoff, &mut wake).await {
                break;
            }
            continue;
        }
        busy.hold();
        let mut request = base.clone();
        request.filter.task_types.clone_from(&admission.types);
        let answer = claim(shared, &mut pending, &request, granted).await;
        let claimed = match answer {
            Ok(c) => c,
            Err(e) => {
                shared.return_claims(granted);
                shared.gate.claimed(&admission, None);
                busy.release();
                if !e.is_transient() {
                    let e = RuntimeError::Port {
                        worker: id.clone(),
                        operation: "claim",
                        source: e,
                    };
                    for outcome in pending.take_settled() {
                        record(&mut report, state, outcome);
                    }
                    return Err((report, e));
                }
                tracing::warn!(worker = %id, error = %e, "claim failed; retrying after a backoff");
                if !idle(shared, backoff, &mut wake).await {
                    break;
                }
                continue;
            }
        };
        shared.return_claims(granted - claimed.len());
        if claimed.is_empty() {
            shared.gate.claimed(&admission, None);
            let others_busy = busy.release();
            if shared.options.drain && others_busy == 0 {
                tracing::debug!(worker = %id, "drained: nothing eligible and no loop busy");
                break;
            }
            if !idle(shared, backoff, &mut wake).await {
                break;
            }
            continue;
        }
        backoff.reset();
        report.claimed += claimed.len() as u64;
        let at = Instant::now();
        let probe = admission.probe.is_some();
        let admission = Arc::new(admission);
        for c in claimed {
            let hand_back = probe.then(|| {
                shared
                    .gate
                    .claimed(&admission, Some((c.task.id, &c.task.task_type)))
            });
            held.push_back(Held {
                claimed: c,
                admission: Arc::clone(&admission),
                hand_back,
                at,
            });
        }
    }
    for outcome in pending.take_settled() {
        record(&mut report, state, outcome);
    }
    Ok(report)
}

/// Claims up to `n` tasks: with the completions waiting when there are any (one claim an
/// item, one step), topped up alone when they were fewer and the queue did not run dry.
async fn claim(
    shared: &Shared,
    pending: &mut Pending,
    request: &ClaimRequest,
    n: usize,
) -> Result<Vec<ClaimedTask>, PortError> {
    if pending.is_empty() {
        return shared.queue.claim_and_start_many(request, n).await;
    }
    let asked = pending.len().min(n);
    let mut claimed = pending.write(shared, Some((request, n))).await?;
    if claimed.len() == asked && asked < n {
        match shared.queue.claim_and_start_many(request, n - asked).await {
            Ok(more) => claimed.extend(more),
            // What was claimed stands; the error shows again at the next claim if it lasts.
            Err(e) => tracing::warn!(error = %e, "claiming the rest of a batch failed"),
        }
    }
    Ok(claimed)
}

/// Runs one held task: asks the gate again, renews a lease that waited a third of its
/// length, runs the attempt, and leaves a success's completion waiting in `pending`.
async fn run_held(
    shared: &Shared,
    id: &WorkerId,
    state: &BeatState,
    held: Held,
    pending: &mut Pending,
    report: &mut RunReport,
) {
    let Held {
        claimed: mut c,
        admission,
        hand_back,
        at,
    } = held;
    let hand_back = hand_back.unwrap_or_else(|| {
        shared
            .gate
            .claimed(&admission, Some((c.task.id, &c.task.task_type)))
    });
    let span = tracing::info_span!(
        "task",
        task_id = c.task.id.0,
        task_type = %c.task.task_type,
        attempt = c.task.attempts,
        worker = %id,
    );
    let waited = at.elapsed();
    if !hand_back && !shared.stop.is_cancelled() && waited >= shared.settings.renew_every() {
        match shared
            .queue
            .renew_lease(&c.lease, shared.settings.lease)
            .await
        {
            Ok(lease) => c.lease = lease,
            Err(e) if e.is_transient() => {
                tracing::warn!(parent: &span, error = %e, "renewing a held task's lease failed; running it on the lease it has");
            }
            Err(e) => {
                tracing::warn!(parent: &span, error = %e, waited_ms = waited.as_millis(), "a held task's lease was lost before it started");
                record(report, state, Outcome::Lost);
                return;
            }
        }
    }
    let (task_id, task_type) = (c.task.id, c.task.task_type.clone());
    let (ended, verdict) = attempt::run(shared, c, state, hand_back, Some(pending))
        .instrument(span.clone())
        .await;
    shared.gate.record(&task_type, task_id, verdict);
    match ended {
        Ended::Settled(outcome) => record(report, state, outcome),
        Ended::Succeeded(finish) => pending.push(finish, span),
    }
}
