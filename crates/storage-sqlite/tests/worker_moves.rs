//! `queue_counts` stays exact through every transition a worker makes (the status trigger
//! counts them; a write path that bypassed it would show here): claims with and without a start, a
//! start, completions of started and unstarted attempts, a completion with the next claim and
//! a batch of them, a retry, a deferral, a dead letter, a release, a stale lease (nothing
//! counted), a lapsed lease taken back from `claimed` and from `running`, and one
//! dead-lettered for its lapses. After each step the kept counts are compared with the rows.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use prismq_domain::lease::MAX_LAPSES;
use prismq_domain::ports::{ClaimFilter, ClaimRequest, Failure, Handover, TaskQueue};
use prismq_domain::task::{NewTask, TaskType, WorkerId};
use prismq_domain::{ClaimingStrategy, ErrorClass, TaskStatus};
use prismq_storage_sqlite::{SqliteOptions, SqliteStore};
use prismq_testkit::FakeClock;
use serde_json::json;

type Counts = BTreeMap<(String, String), i64>;

fn counts(store: &SqliteStore, sql: &str) -> Counts {
    store
        .with_connection(|c| {
            let mut s = c.prepare(sql).unwrap();
            let rows = s
                .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
                .unwrap();
            Ok(rows.map(Result::unwrap).collect())
        })
        .unwrap()
}

/// The kept counts equal the rows' after `step`.
#[track_caller]
fn exact(store: &SqliteStore, step: &str) {
    let kept = counts(
        store,
        "SELECT type, status, n FROM queue_counts WHERE n <> 0",
    );
    let real = counts(
        store,
        "SELECT type, status, count(*) FROM task_queue GROUP BY 1, 2",
    );
    assert_eq!(kept, real, "queue_counts after {step}");
}

fn request(worker: &str) -> ClaimRequest {
    ClaimRequest {
        worker: WorkerId::new(worker).unwrap(),
        filter: ClaimFilter::default(),
        strategy: ClaimingStrategy::Fifo,
        lease_for: Duration::from_secs(60),
    }
}

fn failure(class: ErrorClass) -> Failure {
    Failure {
        class,
        message: "no".into(),
    }
}

#[tokio::test]
async fn every_worker_transition_keeps_the_counts_exact() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FakeClock::default());
    let store =
        SqliteStore::open(SqliteOptions::new(dir.path().join("q.db")), clock.clone()).unwrap();
    for i in 0..30 {
        let t = if i % 3 == 0 { "b" } else { "a" };
        store
            .enqueue(NewTask::new(TaskType::new(t).unwrap(), json!({ "i": i })))
            .await
            .unwrap();
    }
    exact(&store, "enqueue");
    let w = request("w");

    let claimed = store.claim(&w).await.unwrap().unwrap();
    exact(&store, "a claim without a start");
    store.start(&claimed.lease).await.unwrap();
    exact(&store, "a start");
    store.complete(&claimed.lease, None).await.unwrap();
    exact(&store, "a completion");

    let unstarted = store.claim(&w).await.unwrap().unwrap();
    store.complete(&unstarted.lease, None).await.unwrap();
    exact(&store, "the completion of an attempt never started");
    assert!(store.complete(&unstarted.lease, None).await.is_err());
    exact(&store, "a completion with a stale lease");

    let running = store.claim_and_start(&w).await.unwrap().unwrap();
    exact(&store, "claim_and_start");
    let next = store
        .complete_and_claim(&running.lease, None, &w)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    exact(&store, "complete_and_claim");

    let others: Vec<_> = [
        store.claim_and_start(&request("x")).await,
        store.claim(&request("y")).await,
    ]
    .into_iter()
    .map(|c| c.unwrap().unwrap())
    .collect();
    let items: Vec<Handover> = [&next, &others[0], &others[1]]
        .iter()
        .enumerate()
        .map(|(i, c)| Handover {
            lease: c.lease.clone(),
            summary: None,
            next: (i != 1).then(|| request(c.lease.worker.as_str())),
        })
        .collect();
    let answers = store.complete_and_claim_many(&items).await.unwrap();
    exact(&store, "a batch of completions, two with their next claim");
    let held: Vec<_> = answers
        .into_iter()
        .filter_map(|a| a.unwrap().unwrap())
        .collect();
    assert_eq!(held.len(), 2);

    store
        .fail(&held[0].lease, &failure(ErrorClass::Retryable))
        .await
        .unwrap();
    exact(&store, "a failure retried");
    store
        .fail(&held[1].lease, &failure(ErrorClass::Permanent))
        .await
        .unwrap();
    exact(&store, "a dead letter");
    let deferred = store.claim(&w).await.unwrap().unwrap();
    let later = clock
        .now()
        .checked_add(jiff::SignedDuration::from_secs(600))
        .unwrap();
    store
        .fail(&deferred.lease, &failure(ErrorClass::RetryableAfter(later)))
        .await
        .unwrap();
    exact(&store, "a deferral");
    let released = store.claim_and_start(&w).await.unwrap().unwrap();
    store.release(&released.lease).await.unwrap();
    exact(&store, "a release");

    // Lapsed leases, one claimed and one running, taken back by the next claims.
    let lapsing_claimed = store.claim(&request("l1")).await.unwrap().unwrap();
    let lapsing_running = store
        .claim_and_start(&request("l2"))
        .await
        .unwrap()
        .unwrap();
    clock.advance(Duration::from_secs(61));
    let rescued: Vec<_> = [store.claim_and_start(&w).await, store.claim(&w).await]
        .into_iter()
        .map(|c| c.unwrap().unwrap())
        .collect();
    assert_eq!(
        rescued
            .iter()
            .map(|c| c.task.id)
            .collect::<std::collections::BTreeSet<_>>(),
        [lapsing_claimed.task.id, lapsing_running.task.id].into(),
        "both lapsed tasks taken back first"
    );
    exact(&store, "lapsed leases taken back");
    for c in &rescued {
        store.complete(&c.lease, None).await.unwrap();
    }
    exact(&store, "the lapsed tasks completed");

    // One that lapses until it is dead-lettered on the way to a claim.
    let mut lease = store.claim_and_start(&request("z")).await.unwrap().unwrap();
    for _ in 1..MAX_LAPSES {
        clock.advance(Duration::from_secs(3_600));
        lease = store
            .claim_and_start(&ClaimRequest {
                filter: ClaimFilter {
                    only: Some(lease.task.id),
                    ..ClaimFilter::default()
                },
                ..request("z")
            })
            .await
            .unwrap()
            .unwrap();
    }
    clock.advance(Duration::from_secs(3_600));
    store.claim(&w).await.unwrap();
    assert_eq!(
        store.get(lease.task.id).await.unwrap().status,
        TaskStatus::Failed
    );
    exact(&store, "a lease dead-lettered for its lapses");
}
