//! Keys: none, malformed, unknown and revoked keys are 401; a key without the scope is 403;
//! over its rate 429 with `Retry-After`; the last use is recorded once.

use prismq_domain::ports::Scope;

use crate::support::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_bad_and_revoked_keys_are_401_and_scopes_403() {
    let s = Server::start().await;
    let none = s.send("/v1/stats", s.client.get(s.url("/v1/stats"))).await;
    assert_eq!((none.status, none.code()), (401, "unauthorized"));
    assert!(none.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Authorization: Bearer"));
    let basic = s
        .send(
            "/v1/stats",
            s.client
                .get(s.url("/v1/stats"))
                .header("authorization", "Basic dXNlcjpwdw=="),
        )
        .await;
    assert_eq!(basic.status, 401);
    let unknown = s
        .get(&prismq_server::secret::generate(), "/v1/stats", "/v1/stats")
        .await;
    assert_eq!(unknown.status, 401);
    let malformed = s.get("pqk_short", "/v1/stats", "/v1/stats").await;
    assert_eq!(malformed.status, 401);
    assert!(!malformed.text.contains("pqk_short"));

    let read = s.key(&[Scope::Read], 100).await;
    assert_eq!(s.get(&read, "/v1/stats", "/v1/stats").await.status, 200);
    let denied = s
        .post(
            &read,
            "/v1/tasks",
            "/v1/tasks",
            r#"{"type":"keyword_search","params":{"query":"rust"}}"#,
        )
        .await;
    assert_eq!((denied.status, denied.code()), (403, "forbidden"));
    assert!(denied.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("enqueue"));
    assert_eq!(s.task_count().await, 0, "nothing written");
    let enq = s.key(&[Scope::Enqueue], 100).await;
    assert_eq!(s.get(&enq, "/v1/stats", "/v1/stats").await.status, 403);
    assert_eq!(
        s.post(&enq, "/v1/tasks/{id}/cancel", "/v1/tasks/1/cancel", "")
            .await
            .status,
        403,
        "cancel needs admin"
    );

    let listed = s.app.keys.list().await.unwrap();
    let read_key = listed.iter().find(|k| k.scopes == [Scope::Read]).unwrap();
    assert!(read_key.last_used_at.is_some(), "last use recorded");
    s.app.keys.revoke(read_key.id).await.unwrap();
    assert_eq!(s.get(&read, "/v1/stats", "/v1/stats").await.status, 401);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_rate_is_429_with_retry_after_per_key() {
    let s = Server::start().await;
    let slow = s.key(&[Scope::Read], 2).await;
    let other = s.key(&[Scope::Read], 2).await;
    assert_eq!(s.get(&slow, "/v1/stats", "/v1/stats").await.status, 200);
    assert_eq!(s.get(&slow, "/v1/stats", "/v1/stats").await.status, 200);
    let limited = s.get(&slow, "/v1/stats", "/v1/stats").await;
    assert_eq!((limited.status, limited.code()), (429, "rate_limited"));
    let wait: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    assert_eq!(
        s.get(&other, "/v1/stats", "/v1/stats").await.status,
        200,
        "another key has its own bucket"
    );
    s.stop().await;
}
