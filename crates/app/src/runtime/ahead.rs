//! A worker loop that keeps tasks ahead (`worker.prefetch` above 1, or `auto` on a queue
//! that claims and completes a batch in one step): it claims up to that many tasks in
//! one step, runs them one after another, and writes their completions
//! together with the claims of the next ones, so the commit (and on SQLite the pages the
//! tasks share) is paid once a batch instead of once a task: one transaction on SQLite, one
//! statement for the completions and one for the claims on PostgreSQL, one request for each
//! for a remote worker.
//!
//! With `auto` a loop holds as many tasks as its recent ones ran in [`HOLD_FOR`] (at least
//! one, at most [`AUTO_PREFETCH`]), starting with one: slow tasks are still taken one at a
//! time, and only tasks that take a few milliseconds or less are claimed together.
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
use std::time::Duration;

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
use crate::config::{Prefetch, AUTO_PREFETCH};

/// With `worker.prefetch = "auto"`, a loop holds as many tasks as its recent ones ran in
/// this long.
pub(crate) const HOLD_FOR: Duration = Duration::from_millis(10);

/// How many tasks a loop claims at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Ahead {
    /// Up to this many, whatever the tasks take (`worker.prefetch` a number above 1).
    Fixed(usize),
    /// As many as the recent tasks ran in [`HOLD_FOR`], at least one and at most `limit`
    /// (`auto`); `mean` is their recent run time, `None` before the first.
    Measured {
        limit: usize,
        mean: Option<Duration>,
    },
}

impl Ahead {
    /// The loop for `prefetch` on a queue that does (`in_one_step`,
    /// [`TaskQueue::claims_in_batches`](prismq_domain::ports::TaskQueue::claims_in_batches))
    /// or does not claim and complete a batch in one step; `None` for one task at a time.
    pub(crate) fn of(prefetch: Prefetch, in_one_step: bool) -> Option<Self> {
        match prefetch {
            Prefetch::AtMost(n) if n > 1 => Some(Ahead::Fixed(n)),
            Prefetch::AtMost(_) => None,
            Prefetch::Auto if in_one_step => Some(Ahead::Measured {
                limit: AUTO_PREFETCH,
                mean: None,
            }),
            Prefetch::Auto => None,
        }
    }

    /// How many tasks to claim next.
    fn want(&self) -> usize {
        match *self {
            Ahead::Fixed(n) => n,
            Ahead::Measured { mean: None, .. } => 1,
            Ahead::Measured {
                limit,
                mean: Some(m),
            } => {
                let fit = HOLD_FOR.as_nanos() / m.as_nanos().max(1);
                usize::try_from(fit).unwrap_or(usize::MAX).clamp(1, limit)
            }
        }
    }

    /// One more task ran in `took` (an exponentially weighted mean, a quarter to the newest).
    fn ran(&mut self, took: Duration) {
        if let Ahead::Measured { mean, .. } = self {
            *mean = Some(match *mean {
                None => took,
                Some(m) => m * 3 / 4 + took / 4,
            });
        }
    }
}

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
    mut ahead: Ahead,
) -> LoopResult {
    let base = shared.claim_request(id);
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
            let started = Instant::now();
            run_held(shared, id, state, next, &mut pending, &mut report).await;
            ahead.ran(started.elapsed());
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
            let want = if admission.probe.is_some() {
                1
            } else {
                ahead.want()
            };
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
    let span = attempt::task_span(&c.task, id);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_holds_tasks_ahead_only_on_a_queue_that_claims_them_in_one_step() {
        assert_eq!(
            Ahead::of(Prefetch::Auto, true),
            Some(Ahead::Measured {
                limit: AUTO_PREFETCH,
                mean: None
            })
        );
        assert_eq!(Ahead::of(Prefetch::Auto, false), None);
        assert_eq!(Ahead::of(Prefetch::AtMost(1), true), None);
        assert_eq!(Ahead::of(Prefetch::AtMost(8), false), Some(Ahead::Fixed(8)));
    }

    #[test]
    fn auto_starts_with_one_and_holds_what_its_recent_tasks_ran_in_hold_for() {
        let mut a = Ahead::of(Prefetch::Auto, true).unwrap();
        assert_eq!(a.want(), 1, "nothing measured yet: one task");
        a.ran(Duration::from_micros(20));
        assert_eq!(a.want(), AUTO_PREFETCH, "quick tasks: as many as allowed");
        // Slow tasks bring it down within a few (the mean gives the newest a quarter).
        for _ in 0..12 {
            a.ran(Duration::from_millis(50));
        }
        assert_eq!(a.want(), 1, "tasks slower than HOLD_FOR: one at a time");
        for _ in 0..100 {
            a.ran(Duration::from_millis(2));
        }
        assert_eq!(a.want(), 5, "2 ms tasks: five fit in 10 ms");
        let mut fixed = Ahead::Fixed(8);
        fixed.ran(Duration::from_secs(1));
        assert_eq!(fixed.want(), 8, "a number is held whatever the tasks take");
    }
}
