//! mockall mocks of the two ports the timing tests script. `prismq-domain`'s `mocks` feature
//! generates `MockTaskQueue` and friends inside private modules without re-exporting them,
//! so they cannot be named from here; these are the same mocks declared with `mock!`.

use async_trait::async_trait;
use serde_json::Value;
use std::time::Duration;

use prismq_domain::ports::{
    ClaimRequest, ClaimedTask, Enqueued, FailOutcome, Failure, Heartbeat, QueueStats, TaskFilter,
    TaskQueue, WorkerInfo, WorkerRecord, WorkerRegistry,
};
use prismq_domain::{Lease, NewTask, PortError, Task, TaskId, TaskStatus, Timestamp, WorkerId};

mockall::mock! {
    pub TaskQueue {}

    #[async_trait]
    impl TaskQueue for TaskQueue {
        async fn enqueue(&self, task: NewTask) -> Result<Enqueued, PortError>;
        async fn enqueue_batch(&self, tasks: Vec<NewTask>) -> Result<Vec<Enqueued>, PortError>;
        async fn claim(&self, request: &ClaimRequest) -> Result<Option<ClaimedTask>, PortError>;
        async fn renew_lease(&self, lease: &Lease, lease_for: Duration) -> Result<Lease, PortError>;
        async fn start(&self, lease: &Lease) -> Result<(), PortError>;
        async fn complete(&self, lease: &Lease, summary: Option<Value>) -> Result<(), PortError>;
        async fn fail(&self, lease: &Lease, failure: &Failure) -> Result<FailOutcome, PortError>;
        async fn release(&self, lease: &Lease) -> Result<(), PortError>;
        async fn cancel(&self, id: TaskId) -> Result<Task, PortError>;
        async fn retry(&self, id: TaskId) -> Result<Task, PortError>;
        async fn get(&self, id: TaskId) -> Result<Task, PortError>;
        async fn list(&self, filter: &TaskFilter) -> Result<Vec<Task>, PortError>;
        async fn purge(&self, status: TaskStatus, before: Timestamp, limit: u32) -> Result<u64, PortError>;
        async fn stats(&self) -> Result<QueueStats, PortError>;
    }
}

mockall::mock! {
    pub WorkerRegistry {}

    #[async_trait]
    impl WorkerRegistry for WorkerRegistry {
        async fn register(&self, info: &WorkerInfo) -> Result<(), PortError>;
        async fn heartbeat(&self, id: &WorkerId, beat: Heartbeat) -> Result<(), PortError>;
        async fn deregister(&self, id: &WorkerId) -> Result<(), PortError>;
        async fn list(&self, stale_after: Duration) -> Result<Vec<WorkerRecord>, PortError>;
        async fn prune(&self, stale_after: Duration) -> Result<u64, PortError>;
    }
}
