//! The worker runtime: N concurrent worker loops in one process that claim tasks, run their
//! handlers under leases, and record the outcome — and never lose a task on the way.
//!
//! - [`Runtime::run`] (in [`supervisor`]) checks the set-up, starts the loops and waits for
//!   them; it returns a [`RunReport`].
//! - Each loop ([`worker_loop`]) registers itself in the worker registry as
//!   `hostname-pid-index`, heartbeats on its own interval, and loops: claim with the
//!   configured strategy and filter; when nothing is eligible, wait with [`backoff`]; on a
//!   claim, mark the task running, renew its lease every third of its length while the
//!   handler runs under its timeout, save the items, and complete — or fail with the error's
//!   class. With `worker.prefetch` above 1, or `auto` (the default) on a queue that claims
//!   and completes several tasks in one transaction, a loop keeps tasks ahead instead
//!   (`runtime::ahead`): claimed in one step, their completions written together with the
//!   next claims; with `auto`, as many as its recent tasks ran in 10 ms.
//!
//! Outcomes, by what the handler did:
//!
//! | handler | the task |
//! | --- | --- |
//! | `Ok(result)` | items saved (with the task id), then `complete` with a JSON summary |
//! | `Err(e)` | `e.partial` (items fetched before the failure) saved with the task id and noted in the task's log, then `fail` with `e.class` as is (retry, free deferral or dead letter by the queue's policy); a failed save is logged and never stops the `fail` |
//! | panicked | `fail` as `Retryable` with the panic message: a panic may be a transient bug trigger, and the attempt limit still dead-letters a handler that always panics |
//! | ran past `handler_timeout` | its cancel signal is raised and it gets 1 s to return: the `partial` items of the error it returns are saved as above (it is aborted if it does not return), and the attempt fails as `Retryable`; a success returned in that second completes the task |
//! | its lease was lost | cancel signal raised, the handler stopped, its result discarded |
//! | still running when the shutdown grace ends | cancel signal raised, 1 s to return its `partial` items (saved as above), lease released (no attempt used) |
//!
//! Before each claim a loop asks the process's [`gate`] which types it may claim: a type
//! whose runs keep failing transiently (its circuit breaker is open) or whose quota bucket
//! is spent is left out of the claim filter (and, with nothing left, the loop idles), and
//! every heartbeat carries the types held back and why.
//!
//! Transient store errors
//! ([`PortError::is_transient`](prismq_domain::PortError::is_transient)) are retried with
//! backoff and never end a loop; other errors from `claim` or `register` end the run with
//! [`RuntimeError`].

mod ahead;
mod attempt;
pub mod backoff;
pub mod gate;
mod handovers;
mod pace;
#[cfg(test)]
mod partial_tests;
mod report;
mod scheduler;
pub use scheduler::FIRE_BATCH;
mod settings;
mod shared;
pub mod supervisor;
pub mod worker_loop;

pub use backoff::Backoff;
pub use gate::BreakerSettings;
pub use report::{RunReport, RuntimeError};
pub use settings::{async_threads, hostname, RunOptions, WorkerSettings};
pub use supervisor::Runtime;
