//! Obligations of `TaskLog`: append, list in written order, `NotFound` for unknown tasks,
//! and the queue writing one lifecycle event per change.

use std::time::Duration;

use prismq_domain::ports::{Failure, LogLevel, NewLogEntry, TaskEvent};
use prismq_domain::{ClaimingStrategy, ErrorClass, TaskId};
use serde_json::json;

use super::support::{assert_not_found, setup};
use super::{ContractEnv, Subject};
use crate::fixtures::new_task;

fn note(message: &str, n: i64) -> NewLogEntry {
    NewLogEntry {
        level: LogLevel::Info,
        event: TaskEvent::Progress,
        message: message.into(),
        details: json!({ "n": n }),
    }
}

/// append stamps the entry with the store's clock; list returns entries oldest first with
/// every field as written.
pub async fn append_and_list_in_written_order(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let id = s.add(new_task("a")).await;
    let t0 = clock.now();
    clock.advance(Duration::from_secs(1));
    s.logs.append(id, note("page 1", 1)).await.unwrap();
    clock.advance(Duration::from_secs(1));
    let mut warn = note("page 2 slow", 2);
    warn.level = LogLevel::Warn;
    s.logs.append(id, warn).await.unwrap();
    let got = s.logs.list(id).await.unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(
        (got[0].event, got[0].at, got[0].task_id),
        (TaskEvent::Enqueued, t0, id)
    );
    assert_eq!(got[1].message, "page 1");
    assert_eq!(got[1].details, json!({"n": 1}));
    assert_eq!(
        (got[1].level, got[1].event),
        (LogLevel::Info, TaskEvent::Progress)
    );
    assert_eq!(got[2].message, "page 2 slow");
    assert_eq!(got[2].level, LogLevel::Warn);
    assert_eq!(got[2].at, clock.now());
    assert!(got[1].at < got[2].at);
    assert!(got.iter().all(|r| r.task_id == id));
}

/// append to an unknown task is `NotFound` and writes nothing.
pub async fn append_to_unknown_task_is_not_found(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    let id = s.add(new_task("a")).await;
    let ghost = TaskId(id.0 + 100);
    assert_not_found(s.logs.append(ghost, note("x", 0)).await);
    assert_not_found(s.logs.list(ghost).await);
    assert_eq!(s.events(id).await, vec![TaskEvent::Enqueued]);
}

/// list of an unknown task is `NotFound`.
pub async fn list_of_unknown_task_is_not_found(factory: impl Fn(ContractEnv) -> Subject) {
    let (_, s) = setup(factory);
    assert_not_found(s.logs.list(TaskId(1)).await);
}

/// A full life writes exactly one event per change, in order, and refused writes none.
pub async fn lifecycle_writes_one_event_per_change(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    let id = s.add(new_task("a").max_attempts(2)).await;
    let c = s.claim(ClaimingStrategy::Fifo).await.unwrap();
    s.queue.start(&c.lease).await.unwrap();
    s.queue.release(&c.lease).await.unwrap();
    let c = s.claim(ClaimingStrategy::Fifo).await.unwrap();
    s.queue.start(&c.lease).await.unwrap();
    let until = clock.now();
    let retry_after = Failure {
        class: ErrorClass::RetryableAfter(until),
        message: "quota".into(),
    };
    s.queue.fail(&c.lease, &retry_after).await.unwrap();
    let c = s.claim(ClaimingStrategy::Fifo).await.unwrap();
    let retryable = Failure {
        class: ErrorClass::Retryable,
        message: "flaky".into(),
    };
    s.queue.fail(&c.lease, &retryable).await.unwrap();
    // A refused write adds nothing.
    let _ = s.queue.complete(&c.lease, None).await;
    clock.advance(Duration::from_secs(5));
    let c = s.claim(ClaimingStrategy::Fifo).await.unwrap();
    s.queue.start(&c.lease).await.unwrap();
    s.queue.fail(&c.lease, &retryable).await.unwrap();
    s.queue.retry(id).await.unwrap();
    s.queue.cancel(id).await.unwrap();
    use TaskEvent::*;
    assert_eq!(
        s.events(id).await,
        vec![
            Enqueued, Claimed, Started, Released, Claimed, Started, Deferred, Claimed, Retried,
            Claimed, Started, Failed, Requeued, Cancelled
        ]
    );
}
