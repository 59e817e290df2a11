//! Helpers shared by the obligations: building a subject, claiming, reading logs, and
//! checking error variants.

use std::sync::Arc;

use prismq_domain::ports::{ClaimedTask, TaskEvent, TaskFilter};
use prismq_domain::{ClaimingStrategy, NewTask, PortError, Task, TaskId, TaskStatus};

use super::{contract_retry_policy, ContractEnv, Subject};
use crate::fixtures::claim_request;
use crate::FakeClock;

/// A fresh subject around a fresh [`FakeClock`] (2026-01-01T00:00:00Z) and the contract's
/// retry policy.
pub(crate) fn setup(factory: impl Fn(ContractEnv) -> Subject) -> (Arc<FakeClock>, Subject) {
    let clock = Arc::new(FakeClock::default());
    let subject = factory(ContractEnv {
        clock: clock.clone(),
        retry: contract_retry_policy(),
    });
    (clock, subject)
}

impl Subject {
    /// Enqueues `task`, expecting a new task, and returns its id.
    pub(crate) async fn add(&self, task: NewTask) -> TaskId {
        let e = self.queue.enqueue(task).await.expect("enqueue");
        assert!(!e.duplicate, "a fresh task must not be a duplicate");
        e.id
    }

    /// Claims as worker `w1` with `strategy`, any type, no region, a 30 s lease.
    pub(crate) async fn claim(&self, strategy: ClaimingStrategy) -> Option<ClaimedTask> {
        self.claim_as("w1", strategy).await
    }

    /// Claims as `worker` with `strategy`, any type, no region, a 30 s lease.
    pub(crate) async fn claim_as(
        &self,
        worker: &str,
        strategy: ClaimingStrategy,
    ) -> Option<ClaimedTask> {
        self.queue
            .claim(&claim_request(worker, strategy))
            .await
            .expect("claim")
    }

    /// Claims with `strategy` until nothing is left, returning the ids in claim order.
    pub(crate) async fn drain(&self, strategy: ClaimingStrategy) -> Vec<TaskId> {
        let mut out = Vec::new();
        while let Some(c) = self.claim(strategy).await {
            out.push(c.task.id);
        }
        out
    }

    /// The task with `id`.
    pub(crate) async fn task(&self, id: TaskId) -> Task {
        self.queue.get(id).await.expect("get")
    }

    /// The events of `id`'s log, oldest first.
    pub(crate) async fn events(&self, id: TaskId) -> Vec<TaskEvent> {
        self.logs
            .list(id)
            .await
            .expect("log list")
            .into_iter()
            .map(|r| r.event)
            .collect()
    }

    /// Every task, newest first.
    pub(crate) async fn all_tasks(&self) -> Vec<Task> {
        self.queue
            .list(&TaskFilter {
                limit: 10_000,
                ..TaskFilter::default()
            })
            .await
            .expect("list")
    }
}

/// The field an `Invalid` error names; panics on any other result.
#[track_caller]
pub(crate) fn invalid_field<T: std::fmt::Debug>(r: Result<T, PortError>) -> String {
    match r {
        Err(PortError::Invalid(v)) => v.field,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// Asserts `r` is `LeaseLost` for `id`.
#[track_caller]
pub(crate) fn assert_lease_lost<T: std::fmt::Debug>(r: Result<T, PortError>, id: TaskId) {
    match r {
        Err(PortError::LeaseLost { task_id }) => assert_eq!(task_id, id.0, "LeaseLost task id"),
        other => panic!("expected LeaseLost on task {id}, got {other:?}"),
    }
}

/// Asserts `r` is `NotFound`.
#[track_caller]
pub(crate) fn assert_not_found<T: std::fmt::Debug>(r: Result<T, PortError>) {
    assert!(
        matches!(r, Err(PortError::NotFound(_))),
        "expected NotFound, got {r:?}"
    );
}

/// Asserts `r` is `InvalidState` for `id` in `status`.
#[track_caller]
pub(crate) fn assert_invalid_state<T: std::fmt::Debug>(
    r: Result<T, PortError>,
    id: TaskId,
    status: TaskStatus,
) {
    match r {
        Err(PortError::InvalidState {
            task_id, status: s, ..
        }) => {
            assert_eq!((task_id, s), (id.0, status), "InvalidState task and status");
        }
        other => panic!("expected InvalidState ({status}) on task {id}, got {other:?}"),
    }
}

impl Subject {
    /// Enqueues a `task_type` task and takes it to `completed`; returns its id.
    pub(crate) async fn completed(&self, task_type: &str) -> TaskId {
        let id = self.add(crate::fixtures::new_task(task_type)).await;
        // LIFO takes the task just enqueued: nothing eligible is newer.
        let c = self.claim(ClaimingStrategy::Lifo).await.expect("claimable");
        assert_eq!(c.task.id, id, "the newest eligible task");
        self.queue.start(&c.lease).await.expect("start");
        self.queue.complete(&c.lease, None).await.expect("complete");
        id
    }

    /// Enqueues a `task_type` task and dead-letters it with a permanent error; returns its id.
    pub(crate) async fn dead_lettered(&self, task_type: &str) -> TaskId {
        let id = self.add(crate::fixtures::new_task(task_type)).await;
        // LIFO takes the task just enqueued: nothing eligible is newer.
        let c = self.claim(ClaimingStrategy::Lifo).await.expect("claimable");
        assert_eq!(c.task.id, id, "the newest eligible task");
        let failure = prismq_domain::ports::Failure {
            class: prismq_domain::ErrorClass::Permanent,
            message: "gone".into(),
        };
        self.queue.fail(&c.lease, &failure).await.expect("fail");
        id
    }

    /// Enqueues a `task_type` task and cancels it; returns its id.
    pub(crate) async fn cancelled(&self, task_type: &str) -> TaskId {
        let id = self.add(crate::fixtures::new_task(task_type)).await;
        self.queue.cancel(id).await.expect("cancel");
        id
    }
}

/// A failure of `class` with a message naming it.
pub(crate) fn failure(class: prismq_domain::ErrorClass) -> prismq_domain::ports::Failure {
    prismq_domain::ports::Failure {
        class,
        message: format!("boom ({class:?})"),
    }
}

impl Subject {
    /// Enqueues one task (with `max_attempts` if given) and claims it FIFO with a 30 s lease.
    pub(crate) async fn one_claimed(&self, max_attempts: Option<u32>) -> ClaimedTask {
        let mut task = crate::fixtures::new_task("a");
        task.max_attempts = max_attempts;
        let id = self.add(task).await;
        let c = self.claim(ClaimingStrategy::Fifo).await.expect("claimable");
        assert_eq!(c.task.id, id);
        c
    }
}
