//! Instants at the edges on the real server: the latest and earliest instants the domain
//! accepts (`prismq_domain::time_range`) round-trip through enqueue, get, list, cancel; one
//! beyond is refused with nothing written; and a row holding the last millisecond a timestamp
//! can hold (as an older release could write) still reads back.

mod common;

use prismq_domain::ports::{TaskFilter, TaskQueue};
use prismq_domain::task::{NewTask, TaskType};
use prismq_domain::time_range::{EARLIEST, LATEST, RANGE};
use prismq_domain::{PortError, TaskStatus, Timestamp};
use serde_json::json;

fn task() -> NewTask {
    NewTask::new(TaskType::new("edge").unwrap(), json!({}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_accepted_range_round_trips_and_nothing_beyond_it_is_written() {
    let store = common::store_in(&common::fresh_schema("times"));

    let latest = store.enqueue(task().run_after(LATEST)).await.unwrap().id;
    let earliest = store.enqueue(task().run_after(EARLIEST)).await.unwrap().id;
    assert_eq!(store.get(latest).await.unwrap().run_after, LATEST);
    assert_eq!(store.get(earliest).await.unwrap().run_after, EARLIEST);
    let listed = store.list(&TaskFilter::default()).await.unwrap();
    let run_after: Vec<(i64, Timestamp)> = listed.iter().map(|t| (t.id.0, t.run_after)).collect();
    assert_eq!(
        run_after,
        vec![(earliest.0, EARLIEST), (latest.0, LATEST)],
        "newest first"
    );
    let cancelled = store.cancel(latest).await.unwrap();
    assert_eq!(
        (cancelled.status, cancelled.run_after),
        (TaskStatus::Cancelled, LATEST)
    );

    let beyond = LATEST
        .checked_add(jiff::SignedDuration::from_millis(1))
        .unwrap();
    for at in [
        beyond,
        Timestamp::MAX,
        "1999-12-31T23:59:59Z".parse().unwrap(),
    ] {
        match store.enqueue(task().run_after(at)).await {
            Err(PortError::Invalid(e)) => {
                assert_eq!(e.field, "run_after");
                assert!(e.problem.contains(RANGE), "{e}");
            }
            other => panic!("{at}: expected a refusal, got {other:?}"),
        }
        match store
            .enqueue_batch(vec![task(), task().run_after(at)])
            .await
        {
            Err(PortError::Invalid(e)) => assert_eq!(e.field, "tasks[1].run_after"),
            other => panic!("{at}: expected a refusal of the batch, got {other:?}"),
        }
    }
    assert_eq!(store.list(&TaskFilter::default()).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_at_the_last_millisecond_a_timestamp_holds_reads_back() {
    let store = common::store_in(&common::fresh_schema("times_edge"));
    let id = store.enqueue(task()).await.unwrap().id;
    // What `--delay 1000000000h` stored before the range existed: Timestamp::MAX in ms.
    let edge = Timestamp::MAX.as_millisecond();
    let conn = store.connection().await.unwrap();
    let n = conn
        .execute(
            "UPDATE task_queue SET run_after = $1, lease_expires_at = $1 WHERE id = $2",
            &[&edge, &id.0],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    drop(conn);
    let t = store.get(id).await.unwrap();
    assert_eq!(t.run_after.as_millisecond(), edge);
    assert_eq!(t.run_after.to_string(), "9999-12-30T22:00:00.999Z");
    assert_eq!(store.list(&TaskFilter::default()).await.unwrap().len(), 1);
    assert_eq!(
        store.cancel(id).await.unwrap().status,
        TaskStatus::Cancelled
    );
}
