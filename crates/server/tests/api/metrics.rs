//! `/metrics` on a real server: the claims, completions, failures and retries made through
//! the `/v1/work` endpoints are counted with their claim latency and task duration, and the
//! quota used per bucket is read from the store at each scrape.

use serde_json::{json, Value};

use prismq_domain::ports::{QuotaDecision, Scope};
use prismq_domain::{NewTask, TaskType, Timestamp};

use crate::support::Server;

/// The value of the sample line `name{labels}` in a text exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

async fn post(s: &Server, key: &str, route: &str, body: Value) -> Value {
    let a = s.post(key, route, route, &body.to_string()).await;
    assert!(a.status < 300, "{route}: {} {}", a.status, a.text);
    a.json
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_outcomes_and_quota_through_the_server_are_counted() {
    let s = Server::start().await;
    let work = s.key(&[Scope::Work], 10_000).await;
    let read = s.key(&[Scope::Read], 10_000).await;
    for q in ["a", "b", "c"] {
        let mut t = NewTask::new(
            TaskType::new("keyword_search").unwrap(),
            json!({ "query": q }),
        );
        t.max_attempts = Some(2);
        s.app.queue.enqueue(t).await.unwrap();
    }
    let claim = json!({"worker": "m-1-0", "strategy": "fifo", "lease_ms": 60_000, "wait_ms": 0});
    // Completed; retried (a retryable failure with an attempt left); dead-lettered (a
    // permanent one); released; then an empty claim.
    let lease = |c: &Value| c["claimed"]["lease"].clone();
    let c = post(&s, &work, "/v1/work/claim", claim.clone()).await;
    post(
        &s,
        &work,
        "/v1/work/complete",
        json!({"lease": lease(&c), "summary": null}),
    )
    .await;
    let c = post(&s, &work, "/v1/work/claim", claim.clone()).await;
    let retryable = json!({"lease": lease(&c), "failure": {"class": {"class": "retryable"}, "message": "HTTP 500"}});
    let f = post(&s, &work, "/v1/work/fail", retryable).await;
    assert!(f["outcome"]["decision"]["retry_at"].is_string(), "{f}");
    let c = post(&s, &work, "/v1/work/claim", claim.clone()).await;
    let permanent = json!({"lease": lease(&c), "failure": {"class": {"class": "permanent"}, "message": "gone"}});
    let f = post(&s, &work, "/v1/work/fail", permanent).await;
    assert_eq!(f["outcome"]["decision"], "dead_letter", "{f}");
    let mut c = Value::Null;
    for _ in 0..200 {
        // The retried task comes back after its backoff (a second or two).
        c = post(&s, &work, "/v1/work/claim", claim.clone()).await;
        if !c["claimed"].is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!c["claimed"].is_null(), "the retried task came back");
    post(&s, &work, "/v1/work/release", json!({"lease": lease(&c)})).await;
    let stale = post(&s, &work, "/v1/work/claim", claim.clone()).await;
    let stale_lease = lease(&stale);
    post(
        &s,
        &work,
        "/v1/work/release",
        json!({"lease": stale_lease.clone()}),
    )
    .await;
    // A lost lease: the attempt was already released.
    let lost = s
        .post(
            &work,
            "/v1/work/complete",
            "/v1/work/complete",
            &json!({"lease": stale_lease}).to_string(),
        )
        .await;
    assert_eq!(lost.status, 409, "{}", lost.text);

    let window_end =
        Timestamp::from_millisecond(s.app.clock.now().as_millisecond() + 3_600_000).unwrap();
    let granted = s
        .app
        .quota
        .try_consume("youtube_data_api", 7, 10_000, window_end)
        .await
        .unwrap();
    assert!(
        matches!(granted, QuotaDecision::Granted { .. }),
        "{granted:?}"
    );

    let m = s.get(&read, "/metrics", "/metrics").await;
    assert_eq!(m.status, 200);
    let t = &m.text;
    let at = |series: &str| sample(t, series).unwrap_or_else(|| panic!("no {series} in {t}"));
    assert_eq!(at(r#"prismq_claims_total{result="task"}"#), 5.0);
    assert!(at(r#"prismq_claims_total{result="empty"}"#) >= 1.0);
    assert_eq!(
        at(r#"prismq_claim_duration_seconds_count{result="task"}"#),
        5.0
    );
    assert_eq!(at(r#"prismq_attempts_total{outcome="completed"}"#), 1.0);
    assert_eq!(at(r#"prismq_attempts_total{outcome="retried"}"#), 1.0);
    assert_eq!(at(r#"prismq_attempts_total{outcome="dead_lettered"}"#), 1.0);
    assert_eq!(at(r#"prismq_attempts_total{outcome="released"}"#), 2.0);
    assert_eq!(at(r#"prismq_attempts_total{outcome="lease_lost"}"#), 1.0);
    assert_eq!(
        at(r#"prismq_task_duration_seconds_count{outcome="completed"}"#),
        1.0
    );
    assert_eq!(
        at(r#"prismq_task_duration_seconds_count{outcome="retried"}"#),
        1.0
    );
    assert_eq!(
        at(r#"prismq_task_duration_seconds_count{outcome="dead_lettered"}"#),
        1.0
    );
    assert_eq!(at(r#"prismq_quota_used{bucket="youtube_data_api"}"#), 7.0);
    assert_eq!(
        at(r#"prismq_queue_tasks{status="completed",type="keyword_search"}"#),
        1.0
    );
    assert_eq!(
        at(r#"prismq_queue_tasks{status="failed",type="keyword_search"}"#),
        1.0
    );
    s.stop().await;
}
