//! Every endpoint with a key that may use it, each answer checked against the OpenAPI
//! document (see `support::conforms`).

use std::time::Duration;

use serde_json::{json, Value};

use prismq_domain::ports::{ClaimFilter, ClaimRequest, Failure, Scope};
use prismq_domain::task::WorkerId;
use prismq_domain::{ClaimingStrategy, ContentItem, ErrorClass, TaskId};

use crate::support::Server;

/// Claims the next task and fails it permanently: a dead letter.
async fn dead_letter(s: &Server) -> TaskId {
    let c = s
        .app
        .queue
        .claim(&ClaimRequest {
            worker: WorkerId::new("w1").unwrap(),
            filter: ClaimFilter::default(),
            strategy: ClaimingStrategy::Fifo,
            lease_for: Duration::from_secs(60),
        })
        .await
        .unwrap()
        .expect("a task to claim");
    s.app
        .queue
        .fail(
            &c.lease,
            &Failure {
                class: ErrorClass::Permanent,
                message: "gone".into(),
            },
        )
        .await
        .unwrap();
    c.task.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_enqueue_list_show_cancel_retry() {
    tasks_flow(Server::start().await).await;
}

/// The same on PostgreSQL: keys, enqueue, paging, show, cancel through the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_enqueue_list_show_cancel_retry_on_postgresql() {
    tasks_flow(Server::start_postgres().await).await;
}

async fn tasks_flow(s: Server) {
    let admin = s.key(&[Scope::Admin], 1000).await;

    let types = s.get(&admin, "/v1/types", "/v1/types").await;
    assert_eq!(types.status, 200);
    let names: Vec<&str> = types.json["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["type"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"keyword_search"), "{names:?}");
    let keyword = types.json["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == "keyword_search")
        .unwrap();
    let schema = &keyword["params_schema"];
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["required"], json!(["query"]));
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["properties"]["top_n"]["maximum"], 500);

    let one = r#"{"type":"keyword_search","params":{"query":"rust"},"priority":7}"#;
    let a = s
        .send(
            "/v1/tasks",
            s.client
                .post(s.url("/v1/tasks"))
                .bearer_auth(&admin)
                .header("idempotency-key", "k1")
                .body(one),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.json["duplicate"], false);
    let id = a.json["id"].as_i64().unwrap();
    let again = s
        .send(
            "/v1/tasks",
            s.client
                .post(s.url("/v1/tasks"))
                .bearer_auth(&admin)
                .header("idempotency-key", "k1")
                .body(one),
        )
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json, json!({ "id": id, "duplicate": true }));

    let batch = s
        .send(
            "/v1/tasks/batch",
            s.client
                .post(s.url("/v1/tasks/batch"))
                .bearer_auth(&admin)
                .header("idempotency-key", "b1")
                .body(r#"[{"type":"keyword_search","params":{"query":"a"}},{"type":"channel_scrape","params":{"channel_url":"@veritasium"}}]"#),
        )
        .await;
    assert_eq!(batch.status, 201, "{}", batch.text);
    assert_eq!(batch.json["tasks"].as_array().unwrap().len(), 2);
    let replay = s
        .send(
            "/v1/tasks/batch",
            s.client
                .post(s.url("/v1/tasks/batch"))
                .bearer_auth(&admin)
                .header("idempotency-key", "b1")
                .body(r#"[{"type":"keyword_search","params":{"query":"a"}},{"type":"channel_scrape","params":{"channel_url":"@veritasium"}}]"#),
        )
        .await;
    assert_eq!(replay.status, 201);
    assert!(replay.json["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["duplicate"] == true));
    let nd = s
        .send(
            "/v1/tasks/batch",
            s.client
                .post(s.url("/v1/tasks/batch"))
                .bearer_auth(&admin)
                .header("content-type", "application/x-ndjson")
                .body("{\"type\":\"keyword_search\",\"params\":{\"query\":\"b\"}}\n\n{\"type\":\"keyword_search\",\"params\":{\"query\":\"c\"}}\n"),
        )
        .await;
    assert_eq!(nd.status, 201, "{}", nd.text);
    assert_eq!(s.task_count().await, 5);
    let mut all: Vec<i64> = [&batch, &nd]
        .iter()
        .flat_map(|a| a.json["tasks"].as_array().unwrap().clone())
        .map(|t| t["id"].as_i64().unwrap())
        .chain([id])
        .collect();
    all.sort_unstable_by(|a, b| b.cmp(a));

    // Keyset paging, newest first.
    let p1 = s.get(&admin, "/v1/tasks", "/v1/tasks?limit=3").await;
    assert_eq!(p1.status, 200);
    let ids: Vec<i64> = p1.json["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, all[..3]);
    assert_eq!(p1.json["next_before"], all[2]);
    let p2 = s
        .get(
            &admin,
            "/v1/tasks",
            &format!("/v1/tasks?limit=3&before={}", all[2]),
        )
        .await;
    assert_eq!(p2.json["tasks"].as_array().unwrap().len(), 2);
    assert_eq!(p2.json["next_before"], Value::Null);
    let filtered = s
        .get(
            &admin,
            "/v1/tasks",
            "/v1/tasks?type=channel_scrape&status=queued",
        )
        .await;
    assert_eq!(filtered.json["tasks"].as_array().unwrap().len(), 1);

    let show = s
        .get(&admin, "/v1/tasks/{id}", &format!("/v1/tasks/{id}"))
        .await;
    assert_eq!(show.status, 200);
    assert_eq!(show.json["task"]["id"], id);
    assert_eq!(show.json["task"]["priority"], 7);
    assert_eq!(show.json["log"][0]["event"], "enqueued");
    let missing = s.get(&admin, "/v1/tasks/{id}", "/v1/tasks/999").await;
    assert_eq!((missing.status, missing.code()), (404, "not_found"));

    let c = s
        .post(
            &admin,
            "/v1/tasks/{id}/cancel",
            &format!("/v1/tasks/{id}/cancel"),
            "",
        )
        .await;
    assert_eq!(c.status, 200);
    assert_eq!(c.json["task"]["status"], "cancelled");
    let c2 = s
        .post(
            &admin,
            "/v1/tasks/{id}/cancel",
            &format!("/v1/tasks/{id}/cancel"),
            "",
        )
        .await;
    assert_eq!((c2.status, c2.code()), (409, "invalid_state"));
    let r = s
        .post(
            &admin,
            "/v1/tasks/{id}/retry",
            &format!("/v1/tasks/{id}/retry"),
            "",
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "invalid_state"), "{}", r.text);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_list_retry_and_purge() {
    let s = Server::start().await;
    let admin = s.key(&[Scope::Admin], 1000).await;
    for q in ["a", "b"] {
        s.post(
            &admin,
            "/v1/tasks",
            "/v1/tasks",
            &format!(r#"{{"type":"keyword_search","params":{{"query":"{q}"}}}}"#),
        )
        .await;
    }
    let first = dead_letter(&s).await;
    let list = s.get(&admin, "/v1/dlq", "/v1/dlq").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.json["tasks"][0]["id"], first.0);
    assert_eq!(list.json["tasks"].as_array().unwrap().len(), 1);

    // One id that is not failed: nothing is retried.
    let bad = s
        .post(
            &admin,
            "/v1/dlq/retry",
            "/v1/dlq/retry",
            &format!(r#"{{"ids":[{}, 2]}}"#, first.0),
        )
        .await;
    assert_eq!((bad.status, bad.code()), (409, "invalid_state"));
    assert_eq!(
        s.get(&admin, "/v1/dlq", "/v1/dlq").await.json["tasks"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let ok = s
        .post(
            &admin,
            "/v1/dlq/retry",
            "/v1/dlq/retry",
            &format!(r#"{{"ids":[{}]}}"#, first.0),
        )
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json["retried"], json!([first.0]));

    dead_letter(&s).await;
    let purge = s
        .post(
            &admin,
            "/v1/dlq/purge",
            "/v1/dlq/purge",
            r#"{"older_than":"1d"}"#,
        )
        .await;
    assert_eq!(purge.status, 200);
    assert_eq!(purge.json["purged"], 0, "failed just now");
    let purge = s
        .post(
            &admin,
            "/v1/dlq/purge",
            "/v1/dlq/purge",
            r#"{"older_than":"0s"}"#,
        )
        .await;
    assert_eq!(purge.json["purged"], 1);
    let all = s
        .post(&admin, "/v1/dlq/retry", "/v1/dlq/retry", r#"{"all":true}"#)
        .await;
    assert_eq!(all.json["retried"], json!([]));
    let bad = s
        .post(
            &admin,
            "/v1/dlq/purge",
            "/v1/dlq/purge",
            r#"{"older_than":"soon"}"#,
        )
        .await;
    assert_eq!(
        (bad.status, bad.json["error"]["field"].as_str()),
        (422, Some("older_than"))
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_stats_workers_metrics_and_openapi() {
    let s = Server::start().await;
    let read = s.key(&[Scope::Read], 1000).await;
    let mut item = ContentItem::new("youtube_api", "dQw4w9WgXcQ", "A video");
    item.metrics.views = Some(42);
    s.app.results.save(None, &[item]).await.unwrap();

    let list = s.get(&read, "/v1/results", "/v1/results?limit=1").await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.json["results"][0]["item"]["source_id"], "dQw4w9WgXcQ");
    let after = list.json["next_after"]
        .as_str()
        .expect("a full page has a cursor");
    let next = s
        .get(
            &read,
            "/v1/results",
            &format!("/v1/results?limit=1&after={after}"),
        )
        .await;
    assert_eq!(next.status, 200, "{}", next.text);
    assert_eq!(next.json["results"], json!([]));
    assert!(
        next.json["next_after"].is_null(),
        "the last page: {}",
        next.text
    );
    for forged in ["not-a-cursor", "eyJ2YWx1ZSI6MX0", &"A".repeat(2_000)] {
        let bad = s
            .get(&read, "/v1/results", &format!("/v1/results?after={forged}"))
            .await;
        assert_eq!((bad.status, bad.code()), (422, "invalid"), "{}", bad.text);
        assert_eq!(bad.json["error"]["field"], "after");
    }
    let none = s
        .get(&read, "/v1/results", "/v1/results?source=youtube_channel")
        .await;
    assert_eq!(none.json["results"], json!([]));
    let bad = s.get(&read, "/v1/results", "/v1/results?order=best").await;
    assert_eq!((bad.status, bad.code()), (422, "invalid"));
    let growth = s
        .get(
            &read,
            "/v1/results",
            "/v1/results?order=growth&window=7d&channel=UCnone&new_since=1d",
        )
        .await;
    assert_eq!((growth.status, &growth.json["results"]), (200, &json!([])));
    let by_task = s.get(&read, "/v1/results", "/v1/results?task=1").await;
    assert_eq!(by_task.json["results"], json!([]), "saved by no task");
    for (url, field) in [
        ("/v1/results?window=2h", "window"),
        ("/v1/results?task=0", "task"),
        ("/v1/results?new_since=yesterday-ish", "new_since"),
    ] {
        let bad = s.get(&read, "/v1/results", url).await;
        assert_eq!(
            (bad.status, bad.json["error"]["field"].as_str()),
            (422, Some(field)),
            "{url}: {}",
            bad.text
        );
        assert!(bad.json["error"]["accepted"].is_string(), "{url}");
    }
    let show = s
        .get(&read, "/v1/results/{source_id}", "/v1/results/dQw4w9WgXcQ")
        .await;
    assert_eq!(show.status, 200);
    assert!(show.json["results"][0]["history"].is_array());
    assert_eq!(
        show.json["results"][0]["result"]["item"]["title"],
        "A video"
    );
    let missing = s
        .get(&read, "/v1/results/{source_id}", "/v1/results/nothing")
        .await;
    assert_eq!(missing.status, 404);

    let stats = s.get(&read, "/v1/stats", "/v1/stats").await;
    assert_eq!(stats.status, 200);
    assert!(stats.json["stats"]["counts"].is_array());
    let workers = s
        .get(&read, "/v1/workers", "/v1/workers?stale_after=1m")
        .await;
    assert_eq!(workers.status, 200);
    assert_eq!(workers.json["workers"], json!([]));

    s.post(
        &s.key(&[Scope::Enqueue], 10).await,
        "/v1/tasks",
        "/v1/tasks",
        r#"{"type":"keyword_search","params":{"query":"x"}}"#,
    )
    .await;
    let metrics = s.get(&read, "/metrics", "/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .text
            .contains(r#"prismq_queue_tasks{status="queued",type="keyword_search"} 1"#),
        "{}",
        metrics.text
    );
    assert!(
        metrics.text.contains(
            r#"prismq_http_requests_total{method="GET",route="/v1/stats",status="200"} 1"#
        ),
        "{}",
        metrics.text
    );
    assert!(metrics
        .text
        .contains("prismq_http_request_duration_seconds_bucket"));

    // The document itself: OpenAPI 3.1, every route, served without a key.
    let served = s
        .send("/v1/openapi.json", s.client.get(s.url("/v1/openapi.json")))
        .await;
    assert_eq!(served.status, 200);
    assert_eq!(served.json, s.spec);
    assert!(s.spec["openapi"].as_str().unwrap().starts_with("3.1"));
    for p in [
        "/v1/types",
        "/v1/stats",
        "/v1/workers",
        "/v1/tasks",
        "/v1/tasks/batch",
        "/v1/tasks/{id}",
        "/v1/tasks/{id}/cancel",
        "/v1/tasks/{id}/retry",
        "/v1/dlq",
        "/v1/dlq/retry",
        "/v1/dlq/purge",
        "/v1/results",
        "/v1/results/{source_id}",
        "/v1/export/results",
        "/v1/schedules",
        "/v1/schedules/{name}",
        "/v1/schedules/{name}/run",
        "/metrics",
        "/v1/openapi.json",
    ] {
        assert!(s.spec["paths"][p].is_object(), "{p} missing");
    }
    let unknown = s.client.get(s.url("/v2/nothing")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    s.stop().await;
}
