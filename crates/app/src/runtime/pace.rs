//! What a worker loop does between tasks, whether it takes them one at a time
//! ([`super::worker_loop`]) or keeps some ahead ([`super::ahead`]): the idle wait, and the
//! counting of an outcome in the run's report and the loop's heartbeat.

use prismq_domain::ports::WorkSubscription;
use prismq_domain::RetryDecision;

use super::attempt::Outcome;
use super::backoff::Backoff;
use super::report::{RunReport, RuntimeError};
use super::shared::{update, BeatState, Shared};

/// How a loop's run ended: its report, with the error that ended it early.
pub(super) type LoopResult = Result<RunReport, (RunReport, RuntimeError)>;

/// Waits the next backoff delay — cut short by a work notice when the store pushes them
/// (`wake`) — ; false if the run was stopped meanwhile.
pub(super) async fn idle(shared: &Shared, backoff: &mut Backoff, wake: &mut Wake) -> bool {
    let delay = backoff.next_delay();
    let wait = async {
        match wake {
            Some(sub) => {
                if sub.wait(delay).await {
                    // New work: claim now, and start the backoff over if it was taken.
                    backoff.reset();
                }
            }
            None => tokio::time::sleep(delay).await,
        }
    };
    tokio::select! {
        () = wait => true,
        () = shared.stop.cancelled() => false,
    }
}

/// This loop's subscription to work notices, when the store pushes them.
pub(super) type Wake = Option<Box<dyn WorkSubscription>>;

/// Counts `outcome` in the run's report and in the loop's heartbeat state (no task now).
pub(super) fn record(report: &mut RunReport, state: &BeatState, outcome: Outcome) {
    let mut failed_attempt = false;
    match outcome {
        Outcome::Completed => report.completed += 1,
        Outcome::Failed(decision) => {
            failed_attempt = true;
            match decision {
                RetryDecision::RetryAt(_) => report.retried += 1,
                RetryDecision::Defer(_) => report.deferred += 1,
                RetryDecision::DeadLetter => report.failed += 1,
            }
        }
        Outcome::Released => report.released += 1,
        Outcome::Lost => report.lost += 1,
    }
    update(state, |b| {
        b.current_task = None;
        if matches!(outcome, Outcome::Completed) {
            b.tasks_done += 1;
        }
        if failed_attempt {
            b.tasks_failed += 1;
        }
    });
}
