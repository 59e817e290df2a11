//! `MemoryStore`: every storage port held in one process's memory, for app and plugin tests
//! and as the reference implementation the contract suite is checked against.

mod admin;
mod claims;
mod dump;
mod keys;
mod lifecycle;
mod load;
mod logs;
mod queue;
mod quota;
mod results;
mod schedules;
mod tracked;
mod workers;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use jiff::SignedDuration;
use prismq_domain::ports::{Clock, LogLevel, LogRecord, TaskEvent};
use prismq_domain::task::DEFAULT_MAX_PARAMS_BYTES;
use prismq_domain::{RetryPolicy, Task, TaskId, Timestamp, WorkerId};
use serde_json::Value;

pub use admin::MEMORY_ENGINE;

use crate::clock::truncate_to_millis;

/// Every port (`TaskQueue`, `WorkerRegistry`, `TaskLog`, `ResultStore`, `QuotaLedger`,
/// `ApiKeyStore`) in
/// memory behind one mutex: correct for one process, gone when the last clone is dropped.
/// Clones share the same state. It also answers `SchemaAdmin` as a store without a schema
/// (no migrations, always current) and `Upkeep` with "not supported" throughout (see
/// `memory/admin.rs`), and dumps and loads its state as the neutral rows of `db copy`
/// (`Dump` and `Load`, see `memory/dump.rs` and `memory/load.rs`).
#[derive(Debug, Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
    max_params_bytes: usize,
    state: Mutex<State>,
}

/// Everything the store holds.
#[derive(Debug, Default, Clone)]
struct State {
    /// The last task id handed out (ids are never reused, even after a purge).
    last_id: i64,
    tasks: BTreeMap<TaskId, Task>,
    /// When the current attempt of a task started (`start`); a new claim and an attempt
    /// handed back (retried, deferred, released) clear it, as the SQL adapters' `started_at`.
    started: HashMap<TaskId, Timestamp>,
    /// Idempotency key → task.
    keys: HashMap<String, TaskId>,
    logs: HashMap<TaskId, Vec<LogRecord>>,
    workers: BTreeMap<WorkerId, workers::WorkerEntry>,
    results: BTreeMap<(String, String), results::ResultEntry>,
    /// The last result, metric snapshot and sighting ids handed out (what a dump calls
    /// them; never reused).
    last_result_id: i64,
    last_metric_id: i64,
    last_sighting_id: i64,
    /// Each channel's baselines, as the last save of its results computed them.
    baselines: BTreeMap<String, Vec<prismq_domain::ports::ChannelBaseline>>,
    quota: HashMap<String, quota::Bucket>,
    /// Schedules by name, and the last schedule id handed out.
    schedules: BTreeMap<String, prismq_domain::schedule::Schedule>,
    last_schedule_id: i64,
    api_keys: keys::Keys,
}

impl State {
    /// Appends a lifecycle event to `task`'s log.
    fn log(
        &mut self,
        task: TaskId,
        at: Timestamp,
        level: LogLevel,
        event: TaskEvent,
        message: String,
    ) {
        self.logs.entry(task).or_default().push(LogRecord {
            task_id: task,
            at,
            level,
            event,
            message,
            details: Value::Null,
        });
    }
}

impl MemoryStore {
    /// An empty store reading time from `clock` and applying `retry` to failed attempts.
    /// Params are limited to 1 MiB; see [`MemoryStore::with_max_params_bytes`].
    pub fn new(clock: Arc<dyn Clock>, retry: RetryPolicy) -> Self {
        MemoryStore {
            inner: Arc::new(Inner {
                clock,
                retry,
                max_params_bytes: DEFAULT_MAX_PARAMS_BYTES,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// An empty store like [`MemoryStore::new`] that refuses params larger than `max` bytes.
    pub fn with_max_params_bytes(clock: Arc<dyn Clock>, retry: RetryPolicy, max: usize) -> Self {
        MemoryStore {
            inner: Arc::new(Inner {
                clock,
                retry,
                max_params_bytes: max,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// The store's clock reading, millisecond-aligned like a storage adapter's.
    fn now(&self) -> Timestamp {
        truncate_to_millis(self.inner.clock.now())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every mutation completes or panics before touching state; a poisoned lock still
        // guards consistent data.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// `t + d`, saturating at [`Timestamp::MAX`].
fn add(t: Timestamp, d: Duration) -> Timestamp {
    let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    t.checked_add(SignedDuration::from_millis(ms))
        .unwrap_or(Timestamp::MAX)
}

/// True when a filter is absent (`None`) or `pred` accepts its value.
fn passes<T>(filter: Option<T>, pred: impl FnOnce(T) -> bool) -> bool {
    match filter {
        None => true,
        Some(v) => pred(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::new_task;
    use crate::FakeClock;
    use prismq_domain::ports::TaskQueue;
    use prismq_domain::PortError;
    use serde_json::json;

    #[tokio::test]
    async fn params_limit_is_configurable_and_clones_share_state() {
        let clock = Arc::new(FakeClock::default());
        let store = MemoryStore::with_max_params_bytes(clock, RetryPolicy::default(), 16);
        let other = store.clone();
        let mut big = new_task("a");
        big.params = json!({"x": "0123456789"});
        let err = store.enqueue(big).await.unwrap_err();
        assert!(
            matches!(err, PortError::Invalid(ref v) if v.field == "params"),
            "{err}"
        );
        let id = store.enqueue(new_task("a")).await.unwrap().id;
        assert_eq!(other.get(id).await.unwrap().id, id);
    }
}
