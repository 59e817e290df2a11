//! The remote workers' endpoints (`/v1/work/…`, scope `work`), each answer checked against
//! the OpenAPI document: the whole lifecycle, fencing by the lease (409 `lease_lost` in the
//! API's error shape), items and log entries fenced the same way, the claim's long poll,
//! batches of claims and of completions, and refusals (no key, no scope, bad input).

use std::time::Duration;

use serde_json::{json, Value};

use prismq_domain::ports::Scope;
use prismq_domain::{ContentItem, NewTask, TaskId, TaskStatus, TaskType};

use crate::support::{Answer, Server};

async fn add(s: &Server) -> TaskId {
    let t = NewTask::new(
        TaskType::new("keyword_search").unwrap(),
        json!({"query": "x"}),
    );
    s.app.queue.enqueue(t).await.unwrap().id
}

async fn post(s: &Server, key: &str, route: &str, body: Value) -> Answer {
    s.post(key, route, route, &body.to_string()).await
}

fn claim_body(wait_ms: u64) -> Value {
    json!({"worker": "remote-1-0", "strategy": "fifo", "lease_ms": 60_000, "wait_ms": wait_ms})
}

/// The error shape every refusal has.
fn assert_error(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{}", a.text);
    assert_eq!(a.code(), code, "{}", a.text);
    let e = a.json["error"].as_object().unwrap();
    for k in ["code", "message", "field", "accepted"] {
        assert!(e.contains_key(k), "no {k} in {}", a.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_attempt_runs_its_whole_lifecycle_fenced_by_its_lease() {
    lifecycle(Server::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_attempt_runs_its_whole_lifecycle_on_postgresql() {
    lifecycle(Server::start_postgres().await).await;
}

async fn lifecycle(s: Server) {
    let work = s.key(&[Scope::Work], 10_000).await;
    let info = json!({"id": "remote-1-0", "hostname": "far", "pid": 1, "capabilities": ["keyword_search"], "strategy": "fifo"});
    assert_eq!(
        post(&s, &work, "/v1/work/workers/register", info)
            .await
            .status,
        204
    );
    let beat = json!({"worker": "remote-1-0", "beat": {"current_task": null, "tasks_done": 0, "tasks_failed": 0, "held": []}});
    assert_eq!(
        post(&s, &work, "/v1/work/workers/heartbeat", beat)
            .await
            .status,
        204
    );
    let ghost = json!({"worker": "ghost", "beat": {"tasks_done": 0, "tasks_failed": 0}});
    assert_error(
        &post(&s, &work, "/v1/work/workers/heartbeat", ghost).await,
        404,
        "not_found",
    );

    let empty = post(&s, &work, "/v1/work/claim", claim_body(0)).await;
    assert_eq!(empty.status, 200, "{}", empty.text);
    assert_eq!(empty.json["claimed"], Value::Null);

    let id = add(&s).await;
    let c = post(&s, &work, "/v1/work/claim", claim_body(0)).await;
    assert_eq!(c.status, 200, "{}", c.text);
    assert_eq!(c.json["claimed"]["task"]["id"], id.0);
    assert_eq!(c.json["claimed"]["task"]["status"], "running");
    let lease = c.json["claimed"]["lease"].clone();

    let renewed = post(
        &s,
        &work,
        "/v1/work/renew",
        json!({"lease": lease, "lease_ms": 90_000}),
    )
    .await;
    assert_eq!(renewed.status, 200, "{}", renewed.text);
    let lease = renewed.json["lease"].clone();

    let item =
        serde_json::to_value(ContentItem::new("youtube_api", "dQw4w9WgXcQ", "A video")).unwrap();
    let saved = post(
        &s,
        &work,
        "/v1/work/items",
        json!({"lease": lease, "items": [item]}),
    )
    .await;
    assert_eq!(saved.status, 200, "{}", saved.text);
    assert_eq!(saved.json["saved"]["inserted"], 1);
    let note = json!({"lease": lease, "entry": {"level": "info", "event": "progress", "message": "page 1\u{1b}[2J", "details": null}});
    assert_eq!(post(&s, &work, "/v1/work/log", note).await.status, 204);

    let done = post(
        &s,
        &work,
        "/v1/work/complete",
        json!({"lease": lease, "summary": {"found": 2}, "items": [item]}),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.json["saved"]["unchanged"], 1);
    let task = s.app.queue.get(id).await.unwrap();
    assert_eq!(task.status, TaskStatus::Completed);
    assert_eq!(task.summary.unwrap()["found"], 2);
    let log = s.app.logs.list(id).await.unwrap();
    let note = log
        .iter()
        .find(|r| r.message.starts_with("page 1"))
        .expect("the note");
    assert!(!note.message.contains('\u{1b}'), "{log:?}");

    // Every later write of the finished attempt is refused, and changes nothing.
    for route in ["/v1/work/complete", "/v1/work/start", "/v1/work/release"] {
        assert_error(
            &post(&s, &work, route, json!({"lease": lease})).await,
            409,
            "lease_lost",
        );
    }
    let failure = json!({"class": {"class": "retryable"}, "message": "late"});
    assert_error(
        &post(
            &s,
            &work,
            "/v1/work/fail",
            json!({"lease": lease, "failure": failure}),
        )
        .await,
        409,
        "lease_lost",
    );
    assert_error(
        &post(
            &s,
            &work,
            "/v1/work/renew",
            json!({"lease": lease, "lease_ms": 1000}),
        )
        .await,
        409,
        "lease_lost",
    );
    assert_error(
        &post(
            &s,
            &work,
            "/v1/work/items",
            json!({"lease": lease, "items": [item]}),
        )
        .await,
        409,
        "lease_lost",
    );
    let late = json!({"lease": lease, "entry": {"level": "info", "event": "progress", "message": "late", "details": null}});
    assert_error(
        &post(&s, &work, "/v1/work/log", late).await,
        409,
        "lease_lost",
    );
    assert_eq!(
        s.app.queue.get(id).await.unwrap().status,
        TaskStatus::Completed
    );

    // fail and release of live attempts.
    let second = add(&s).await;
    let c = post(
        &s,
        &work,
        "/v1/work/claim",
        json!({"worker": "remote-1-0", "strategy": "lifo", "lease_ms": 60_000, "start": false}),
    )
    .await;
    assert_eq!(c.json["claimed"]["task"]["status"], "claimed");
    let lease = c.json["claimed"]["lease"].clone();
    assert_eq!(
        post(&s, &work, "/v1/work/start", json!({"lease": lease}))
            .await
            .status,
        204
    );
    let failed = post(
        &s,
        &work,
        "/v1/work/fail",
        json!({"lease": lease, "failure": {"class": {"class": "permanent"}, "message": "gone"}}),
    )
    .await;
    assert_eq!(failed.status, 200, "{}", failed.text);
    assert_eq!(failed.json["outcome"]["decision"], "dead_letter");
    assert_eq!(
        s.app.queue.get(second).await.unwrap().status,
        TaskStatus::Failed
    );
    let third = add(&s).await;
    let c = post(&s, &work, "/v1/work/claim", claim_body(0)).await;
    let lease = c.json["claimed"]["lease"].clone();
    assert_eq!(
        post(&s, &work, "/v1/work/release", json!({"lease": lease}))
            .await
            .status,
        204
    );
    let t = s.app.queue.get(third).await.unwrap();
    assert_eq!((t.status, t.attempts), (TaskStatus::Queued, 0));

    assert_eq!(
        post(
            &s,
            &work,
            "/v1/work/workers/deregister",
            json!({"worker": "remote-1-0"})
        )
        .await
        .status,
        204
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_and_schedules_for_remote_workers() {
    let s = Server::start().await;
    let work = s.key(&[Scope::Work], 10_000).await;
    let end = "2099-01-01T00:00:00Z";
    let grant = post(
        &s,
        &work,
        "/v1/work/quota/consume",
        json!({"bucket": "yt", "units": 7, "limit": 10, "window_end": end}),
    )
    .await;
    assert_eq!(grant.status, 200, "{}", grant.text);
    assert_eq!(grant.json["decision"], json!({"granted": {"remaining": 3}}));
    let over = post(
        &s,
        &work,
        "/v1/work/quota/consume",
        json!({"bucket": "yt", "units": 7, "limit": 10, "window_end": end}),
    )
    .await;
    assert!(
        over.json["decision"]["exhausted"].is_object(),
        "{}",
        over.text
    );
    assert_eq!(
        post(
            &s,
            &work,
            "/v1/work/quota/exhausted",
            json!({"bucket": "other", "until": end})
        )
        .await
        .status,
        204
    );
    let usage = s.get(&work, "/v1/work/quota", "/v1/work/quota").await;
    assert_eq!(usage.status, 200, "{}", usage.text);
    assert_eq!(usage.json["quota"][1]["bucket"], "yt");
    assert_eq!(usage.json["quota"][1]["used"], 7);
    let bad = post(
        &s,
        &work,
        "/v1/work/quota/consume",
        json!({"bucket": "", "units": 1, "limit": 1, "window_end": end}),
    )
    .await;
    assert_error(&bad, 422, "invalid");
    assert_eq!(bad.json["error"]["field"], "bucket");

    let fired = post(
        &s,
        &work,
        "/v1/work/schedules/fire",
        json!({"task_types": ["keyword_search"], "limit": 10}),
    )
    .await;
    assert_eq!(fired.status, 200, "{}", fired.text);
    assert_eq!(fired.json["fired"], json!([]));
    let bad = post(
        &s,
        &work,
        "/v1/work/schedules/fire",
        json!({"task_types": [], "limit": 0}),
    )
    .await;
    assert_error(&bad, 422, "invalid");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_endpoints_need_the_work_scope_and_accepted_input() {
    let s = Server::start().await;
    let read = s.key(&[Scope::Read, Scope::Enqueue], 1000).await;
    let work = s.key(&[Scope::Work], 1000).await;
    let lease =
        json!({"task_id": 1, "token": 5, "worker": "w", "expires_at": "2026-01-01T00:00:00Z"});
    for (route, body) in [
        ("/v1/work/claim", claim_body(0)),
        ("/v1/work/complete", json!({"lease": lease})),
        (
            "/v1/work/workers/register",
            json!({"id": "w", "hostname": "h", "pid": 1, "capabilities": [], "strategy": "fifo"}),
        ),
    ] {
        assert_error(
            &post(&s, &read, route, body.clone()).await,
            403,
            "forbidden",
        );
        let anonymous = s
            .send(route, s.client.post(s.url(route)).body(body.to_string()))
            .await;
        assert_error(&anonymous, 401, "unauthorized");
    }
    let zero = post(
        &s,
        &work,
        "/v1/work/claim",
        json!({"worker": "w", "strategy": "fifo", "lease_ms": 0}),
    )
    .await;
    assert_error(&zero, 422, "invalid");
    assert_eq!(zero.json["error"]["field"], "lease_ms");
    let strategy = post(
        &s,
        &work,
        "/v1/work/claim",
        json!({"worker": "w", "strategy": "best", "lease_ms": 10}),
    )
    .await;
    assert_error(&strategy, 422, "invalid");
    let unknown = post(
        &s,
        &work,
        "/v1/work/release",
        json!({"lease": lease, "extra": 1}),
    )
    .await;
    assert_error(&unknown, 422, "invalid");
    let malformed = s
        .post(&work, "/v1/work/fail", "/v1/work/fail", "{\"lease\":")
        .await;
    assert_error(&malformed, 422, "invalid");
    assert_eq!(s.task_count().await, 0);
    s.stop().await;
}

/// A waiting claim answers with a task enqueued while it waits, and a waiting claim ends
/// when the server stops (its graceful shutdown does not wait out the poll).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_waits_for_a_task_and_ends_when_the_server_stops() {
    long_poll(Server::start().await).await;
}

/// On PostgreSQL the waiting claim is woken by the store's LISTEN/NOTIFY notices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_waits_for_a_task_and_ends_when_the_server_stops_on_postgresql() {
    long_poll(Server::start_postgres().await).await;
}

async fn long_poll(s: Server) {
    let s = std::sync::Arc::new(s);
    let work = s.key(&[Scope::Work], 1000).await;
    let waiting = {
        let (s, work) = (s.clone(), work.clone());
        tokio::spawn(async move { post(&s, &work, "/v1/work/claim", claim_body(20_000)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let id = add(&s).await;
    let got = waiting.await.unwrap();
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.json["claimed"]["task"]["id"], id.0);

    let waiting = {
        let req = s
            .client
            .post(s.url("/v1/work/claim"))
            .bearer_auth(&work)
            .body(claim_body(20_000).to_string());
        tokio::spawn(async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = std::sync::Arc::into_inner(s).expect("only the test holds the server now");
    let stopping = tokio::spawn(s.stop());
    let (status, text) = waiting.await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"claimed": null})
    );
    stopping.await.unwrap();
}

/// A key revoked while its claim waits — on another server sharing the database, as
/// `prismq keys revoke` does it — ends the claim with 401 at its next look, and the task
/// enqueued after the revocation is not handed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_while_its_claim_waits_gets_401_and_no_task() {
    let s = Server::start().await;
    let work = s.key(&[Scope::Work], 1000).await;
    let id = s
        .app
        .keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|k| work.starts_with(&k.prefix))
        .unwrap()
        .id;
    // A second server on the same SQLite file, with a store of its own.
    let other = prismq_app::App::open(s.app.config.clone()).unwrap();
    let mut options = prismq_server::ServerOptions::new("127.0.0.1:0".parse().unwrap());
    options.request_timeout = Duration::from_secs(30);
    let stop = tokio_util::sync::CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let serving = tokio::spawn(prismq_server::serve(
        other,
        options,
        stop.clone(),
        move |a| {
            let _ = tx.send(a);
        },
    ));
    let addr = rx.await.unwrap();
    let claim_at = format!("http://{addr}/v1/work/claim");
    let waiting = {
        let req = s
            .client
            .post(&claim_at)
            .bearer_auth(&work)
            .body(claim_body(20_000).to_string());
        tokio::spawn(async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    // Revoked once the claim is waiting: it has looked at least once and found nothing
    // (the other server's metrics say so).
    let read = s.key(&[Scope::Read], 1000).await;
    let mut waited = false;
    for _ in 0..200 {
        let m = s
            .client
            .get(format!("http://{addr}/metrics"))
            .bearer_auth(&read)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if m.contains(r#"prismq_claims_total{result="empty"}"#) {
            waited = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(waited, "the claim never started waiting");
    s.app.keys.revoke(id).await.unwrap();
    let task = add(&s).await;
    let (status, text) = waiting.await.unwrap();
    assert_eq!(status, 401, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["code"], "unauthorized", "{text}");
    let t = s.app.queue.get(task).await.unwrap();
    assert_eq!(t.status, TaskStatus::Queued);
    assert_eq!(t.attempts, 0);
    // Both servers refuse the key from then on.
    let again = s
        .client
        .post(&claim_at)
        .bearer_auth(&work)
        .body(claim_body(0).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 401);
    assert_error(
        &post(&s, &work, "/v1/work/claim", claim_body(0)).await,
        401,
        "unauthorized",
    );
    stop.cancel();
    serving.await.unwrap().unwrap();
    s.stop().await;
}

/// What a remote worker's handlers read: the tracked videos (`refresh_stats`) and a
/// channel's baselines (before a follow-up), scope `work`, bounded input.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracked_videos_and_baselines_for_remote_handlers() {
    let s = Server::start().await;
    let work = s.key(&[Scope::Work], 1000).await;
    let read = s.key(&[Scope::Read], 1000).await;
    s.app
        .results
        .save(
            None,
            &[
                ContentItem::new("youtube_api", "dQw4w9WgXcQ", "A video"),
                ContentItem::new("youtube_keyword", "aaaaaaaaaaa", "Another"),
            ],
        )
        .await
        .unwrap();
    let page = post(
        &s,
        &work,
        "/v1/work/tracked",
        json!({"filter": {}, "limit": 1}),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(page.json["ids"], json!(["aaaaaaaaaaa"]));
    let next = post(
        &s,
        &work,
        "/v1/work/tracked",
        json!({"filter": {}, "after": "aaaaaaaaaaa", "limit": 10}),
    )
    .await;
    assert_eq!(next.json["ids"], json!(["dQw4w9WgXcQ"]), "{}", next.text);
    let bad = post(&s, &work, "/v1/work/tracked", json!({"limit": 0})).await;
    assert_error(&bad, 422, "invalid");
    assert_eq!(bad.json["error"]["field"], "limit", "{}", bad.text);
    let long = post(
        &s,
        &work,
        "/v1/work/tracked",
        json!({"after": "x".repeat(300), "limit": 10}),
    )
    .await;
    assert_error(&long, 422, "invalid");
    assert_eq!(long.json["error"]["field"], "after", "{}", long.text);
    assert_error(
        &post(
            &s,
            &work,
            "/v1/work/tracked",
            json!({"filter": {"schedule": "nope"}, "limit": 10}),
        )
        .await,
        404,
        "not_found",
    );
    let misspelt = post(
        &s,
        &work,
        "/v1/work/tracked",
        json!({"filter": {"chanel_id": "UC"}, "limit": 10}),
    )
    .await;
    assert_error(&misspelt, 422, "invalid");
    assert!(misspelt.text.contains("chanel_id"), "{}", misspelt.text);
    assert_error(
        &post(&s, &read, "/v1/work/tracked", json!({"limit": 10})).await,
        403,
        "forbidden",
    );

    let b = post(
        &s,
        &work,
        "/v1/work/baselines",
        json!({"channel": "UCX6OQ3DkcsbYNE6H8uQQuVA"}),
    )
    .await;
    assert_eq!(b.status, 200, "{}", b.text);
    assert_eq!(b.json, json!({"baselines": []}));
    assert_error(
        &post(
            &s,
            &work,
            "/v1/work/baselines",
            json!({"channel": "UC\u{7}x"}),
        )
        .await,
        422,
        "invalid",
    );
    assert_error(
        &post(
            &s,
            &work,
            "/v1/work/baselines",
            json!({"channel": "UC", "x": 1}),
        )
        .await,
        422,
        "invalid",
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_of_claims_and_completions_answer_each_task_as_alone() {
    batches(Server::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_of_claims_and_completions_on_postgresql() {
    batches(Server::start_postgres().await).await;
}

/// `POST /v1/work/claims` takes up to `max` tasks in claim order, each started under its own
/// lease; `POST /v1/work/completions` completes them in one step, a stale lease failing
/// only its own completion (409 `lease_lost`, as alone); an empty queue answers no tasks.
async fn batches(s: Server) {
    let work = s.key(&[Scope::Work], 10_000).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(add(&s).await.0);
    }
    let mut body = claim_body(0);
    body["max"] = json!(3);
    body.as_object_mut().unwrap().remove("start");
    let a = post(&s, &work, "/v1/work/claims", body.clone()).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let claimed = a.json["claimed"].as_array().unwrap().clone();
    let got: Vec<i64> = claimed
        .iter()
        .map(|c| c["task"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, ids[..3].to_vec(), "FIFO order");
    let tokens: std::collections::HashSet<i64> = claimed
        .iter()
        .map(|c| c["lease"]["token"].as_i64().unwrap())
        .collect();
    assert_eq!(tokens.len(), 3, "a lease each");
    for c in &claimed {
        assert_eq!(c["task"]["status"], "running");
        assert_eq!(c["lease"]["task_id"], c["task"]["id"]);
    }
    let mut stale = claimed[1]["lease"].clone();
    stale["token"] = json!(stale["token"].as_i64().unwrap() ^ 1);
    let done = post(
        &s,
        &work,
        "/v1/work/completions",
        json!({"completions": [
            {"lease": claimed[0]["lease"], "summary": {"n": 1}},
            {"lease": stale},
            {"lease": claimed[2]["lease"], "summary": null},
        ]}),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.text);
    let results = done.json["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["completed"], true);
    assert_eq!(results[1]["completed"], false);
    assert_eq!(results[1]["status"], 409);
    assert_eq!(results[1]["error"]["code"], "lease_lost");
    assert_eq!(results[2]["completed"], true);
    let status = |id: i64| {
        let q = s.app.queue.clone();
        async move { q.get(TaskId(id)).await.unwrap().status }
    };
    assert_eq!(status(ids[0]).await, TaskStatus::Completed);
    assert_eq!(
        status(ids[1]).await,
        TaskStatus::Running,
        "the stale lease changed nothing"
    );
    assert_eq!(status(ids[2]).await, TaskStatus::Completed);
    let summary = s.app.queue.get(TaskId(ids[0])).await.unwrap().summary;
    assert_eq!(summary, Some(json!({"n": 1})));
    // The rest, and then nothing (at once with wait_ms 0).
    body["max"] = json!(256);
    let rest = post(&s, &work, "/v1/work/claims", body.clone()).await;
    let rest: Vec<i64> = rest.json["claimed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["task"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(rest, ids[3..].to_vec());
    let none = post(&s, &work, "/v1/work/claims", body).await;
    assert_eq!(none.status, 200, "{}", none.text);
    assert_eq!(none.json, json!({"claimed": []}));
    s.stop().await;
}

/// A batch asks at most 256 tasks or completions and at least one; anything else is refused
/// naming the field and what it accepts, and nothing is claimed or written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_refuse_sizes_out_of_range_and_need_the_work_scope() {
    let s = Server::start().await;
    let id = add(&s).await;
    let work = s.key(&[Scope::Work], 10_000).await;
    let read = s.key(&[Scope::Read], 10_000).await;
    for max in [json!(0), json!(257), json!(-1), json!("8")] {
        let mut body = claim_body(0);
        body["max"] = max.clone();
        body.as_object_mut().unwrap().remove("start");
        let a = post(&s, &work, "/v1/work/claims", body).await;
        assert_error(&a, 422, "invalid");
        if max.is_u64() {
            assert_eq!(a.json["error"]["field"], "max", "{}", a.text);
            assert_eq!(a.json["error"]["accepted"], "1 to 256", "{}", a.text);
        }
    }
    let lease =
        json!({"task_id": id.0, "token": 5, "worker": "w", "expires_at": "2026-01-01T00:00:00Z"});
    let many: Vec<Value> = (0..257).map(|_| json!({"lease": lease})).collect();
    for completions in [json!([]), json!(many)] {
        let a = post(
            &s,
            &work,
            "/v1/work/completions",
            json!({ "completions": completions }),
        )
        .await;
        assert_error(&a, 422, "invalid");
        assert_eq!(a.json["error"]["field"], "completions", "{}", a.text);
    }
    let extra = post(
        &s,
        &work,
        "/v1/work/completions",
        json!({"completions": [{"lease": lease, "items": []}]}),
    )
    .await;
    assert_error(&extra, 422, "invalid");
    let mut body = claim_body(0);
    body["max"] = json!(2);
    body.as_object_mut().unwrap().remove("start");
    assert_error(
        &post(&s, &read, "/v1/work/claims", body).await,
        403,
        "forbidden",
    );
    assert_error(
        &post(
            &s,
            &read,
            "/v1/work/completions",
            json!({"completions": [{"lease": lease}]}),
        )
        .await,
        403,
        "forbidden",
    );
    assert_eq!(
        s.app.queue.get(id).await.unwrap().status,
        TaskStatus::Queued,
        "nothing claimed"
    );
    s.stop().await;
}
