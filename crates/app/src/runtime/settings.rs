//! What a run needs to know: the worker settings (from `[worker]` configuration, or built
//! directly in tests) and the run's mode.

use std::time::Duration;

use prismq_domain::{ClaimingStrategy, TaskId, TaskType, WorkerId};

use super::gate::BreakerSettings;
use crate::config::{Prefetch, WorkerConfig};

/// How the loops behave; see `[worker]` in `docs/configuration.md` for each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSettings {
    /// Concurrent loops (at least 1).
    pub concurrency: usize,
    /// Claim order.
    pub strategy: ClaimingStrategy,
    /// The task types to claim; empty means every registered type.
    pub task_types: Vec<TaskType>,
    /// The region served.
    pub region: Option<String>,
    /// Claim this task and no other (`prismq collect`); `None` for a normal worker.
    pub only_task: Option<TaskId>,
    /// Lease length; renewed every third of it.
    pub lease: Duration,
    /// Heartbeat interval.
    pub heartbeat_interval: Duration,
    /// First idle wait.
    pub idle_backoff_min: Duration,
    /// Longest idle wait.
    pub idle_backoff_max: Duration,
    /// A handler's time limit.
    pub handler_timeout: Duration,
    /// How long in-flight handlers may finish after shutdown is asked.
    pub shutdown_grace: Duration,
    /// How many tasks each loop may claim in one step and keep ahead.
    pub prefetch: Prefetch,
    /// The host name in worker ids and the registry.
    pub hostname: String,
    /// The process id in worker ids and the registry.
    pub pid: u32,
    /// When a task type's circuit breaker opens and for how long (not configurable: the
    /// defaults, 5 failures and 30 s doubling to 5 min; tests set their own).
    pub breaker: BreakerSettings,
}

impl WorkerSettings {
    /// Settings from configuration, with this machine's host name and this process's id.
    pub fn from_config(c: &WorkerConfig) -> Self {
        WorkerSettings {
            concurrency: c.concurrency.max(1),
            strategy: c.strategy,
            task_types: c.task_types.clone(),
            region: c.region.clone(),
            only_task: None,
            lease: c.lease,
            heartbeat_interval: c.heartbeat_interval,
            idle_backoff_min: c.idle_backoff_min,
            idle_backoff_max: c.idle_backoff_max,
            handler_timeout: c.handler_timeout,
            shutdown_grace: c.shutdown_grace,
            prefetch: c.prefetch,
            hostname: hostname(),
            pid: std::process::id(),
            breaker: BreakerSettings::default(),
        }
    }

    /// The id of loop `index`: `hostname-pid-index`.
    ///
    /// # Errors
    /// The id is refused (a host name with control characters); the message says why.
    pub fn worker_id(&self, index: usize) -> Result<WorkerId, String> {
        WorkerId::new(format!("{}-{}-{index}", self.hostname, self.pid)).map_err(|e| e.to_string())
    }

    /// How often the lease is renewed: a third of its length.
    pub fn renew_every(&self) -> Duration {
        (self.lease / 3).max(Duration::from_millis(1))
    }
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings::from_config(&WorkerConfig::default())
    }
}

/// When a run ends (besides the shutdown signal, which always ends it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Stop when no eligible task is left: a loop exits when its claim returns nothing while
    /// no loop is claiming or holding a task. A loop counts as busy from the moment it asks
    /// for a task until that task's outcome is written. Tasks that become eligible later
    /// (retries with a backoff, deferrals, delayed tasks) and tasks of types the gate holds
    /// back (circuit breaker open, quota spent) are left queued.
    pub drain: bool,
    /// Claim at most this many tasks in this run (over all loops), then stop once they are
    /// finished.
    pub max_tasks: Option<u64>,
}

/// The async runtime's worker threads for a process running `concurrency` loops: one a
/// loop, up to the machine's cores. A thread with no loop to run only costs: each time a
/// loop's task wakes, tokio wakes an idle thread too (a system call and a context switch),
/// which measured 10–15 % of a one-loop drain's CPU (`docs/performance.md`).
pub fn async_threads(concurrency: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    concurrency.clamp(1, cores)
}

/// This machine's host name, at most 64 bytes, without the domain; `localhost` if unknown.
pub fn hostname() -> String {
    let from_env = ["HOSTNAME", "COMPUTERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok());
    let from_file = || {
        ["/proc/sys/kernel/hostname", "/etc/hostname"]
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
    };
    let raw = from_env.or_else(from_file).unwrap_or_default();
    let name: String = raw
        .trim()
        .split('.')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(64)
        .collect();
    if name.is_empty() {
        "localhost".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_ids_and_renewal() {
        let mut s = WorkerSettings {
            hostname: "box".into(),
            pid: 42,
            ..WorkerSettings::default()
        };
        assert_eq!(s.worker_id(3).unwrap().as_str(), "box-42-3");
        s.lease = Duration::from_secs(60);
        assert_eq!(s.renew_every(), Duration::from_secs(20));
        assert!(!hostname().is_empty());
    }
}

#[cfg(test)]
mod threads_tests {
    use super::async_threads;

    #[test]
    fn one_thread_a_loop_up_to_the_cores() {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        assert_eq!(async_threads(0), 1);
        assert_eq!(async_threads(1), 1);
        assert_eq!(async_threads(cores), cores);
        assert_eq!(async_threads(cores + 7), cores);
    }
}
