//! `/v1/schedules`: add, list, show, pause, resume, run now and remove over HTTP, with the
//! CLI's checks and messages; refusals write nothing; scopes.

use serde_json::json;

use prismq_domain::ports::Scope;

use crate::support::Server;

const ADD: &str = "/v1/schedules";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_is_added_listed_paused_resumed_run_and_removed() {
    schedules_flow(Server::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_is_added_listed_paused_resumed_run_and_removed_on_postgresql() {
    schedules_flow(Server::start_postgres().await).await;
}

async fn schedules_flow(s: Server) {
    let admin = s.key(&[Scope::Admin], 1000).await;
    let read = s.key(&[Scope::Read], 1000).await;
    let added = s
        .post(
            &admin,
            ADD,
            ADD,
            r#"{"name":"rust-daily","type":"keyword_search","params":{"query":"rust"},"priority":7,"cron":"0 6 * * *","tz":"Europe/Prague","jitter":"5m"}"#,
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.text);
    let sched = &added.json["schedule"];
    assert_eq!(sched["name"], "rust-daily");
    assert_eq!(sched["priority"], 7);
    assert_eq!(sched["time_zone"], "Europe/Prague");
    assert_eq!(sched["jitter_secs"], 300);
    assert_eq!(sched["cadence"], json!({"cron": "0 6 * * *"}));

    let again = s
        .post(
            &admin,
            ADD,
            ADD,
            r#"{"name":"rust-daily","type":"keyword_search","params":{"query":"go"},"every":"1d"}"#,
        )
        .await;
    assert_eq!(
        (again.status, again.code()),
        (409, "duplicate"),
        "{}",
        again.text
    );

    let list = s.get(&read, "/v1/schedules", "/v1/schedules").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.json["schedules"].as_array().unwrap().len(), 1);
    assert!(list.json["schedules"][0]["error"].is_null());
    let show = s
        .get(&read, "/v1/schedules/{name}", "/v1/schedules/rust-daily")
        .await;
    assert_eq!(show.json["schedule"]["params"], json!({"query": "rust"}));

    let paused = s
        .post(
            &admin,
            "/v1/schedules/{name}/pause",
            "/v1/schedules/rust-daily/pause",
            "",
        )
        .await;
    assert_eq!(paused.status, 200, "{}", paused.text);
    assert_eq!(paused.json["schedule"]["paused"], true);
    let resumed = s
        .post(
            &admin,
            "/v1/schedules/{name}/resume",
            "/v1/schedules/rust-daily/resume",
            "",
        )
        .await;
    assert_eq!(resumed.json["schedule"]["paused"], false);

    assert_eq!(s.task_count().await, 0);
    let run = s
        .post(
            &admin,
            "/v1/schedules/{name}/run",
            "/v1/schedules/rust-daily/run",
            "",
        )
        .await;
    assert_eq!(run.status, 201, "{}", run.text);
    assert_eq!(s.task_count().await, 1, "run now enqueues one task");
    let task = s
        .get(
            &read,
            "/v1/tasks/{id}",
            &format!("/v1/tasks/{}", run.json["id"]),
        )
        .await;
    assert_eq!(task.json["task"]["params"], json!({"query": "rust"}));
    assert_eq!(task.json["task"]["priority"], 7);

    let removed = s
        .send(
            "/v1/schedules/{name}",
            s.client
                .delete(s.url("/v1/schedules/rust-daily"))
                .bearer_auth(&admin),
        )
        .await;
    assert_eq!(removed.status, 200, "{}", removed.text);
    let gone = s
        .get(&read, "/v1/schedules/{name}", "/v1/schedules/rust-daily")
        .await;
    assert_eq!(gone.status, 404);
    assert_eq!(s.task_count().await, 1, "the enqueued task stays");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_schedules_name_the_field_and_write_nothing() {
    let s = Server::start().await;
    let admin = s.key(&[Scope::Admin], 1000).await;
    for (body, field) in [
        (
            r#"{"name":"a","type":"keyword_search","params":{"query":"x"}}"#,
            "every",
        ),
        (
            r#"{"name":"a","type":"keyword_search","params":{"query":"x"},"every":"1h","cron":"0 * * * *"}"#,
            "cron",
        ),
        (
            r#"{"name":"a","type":"keyword_search","params":{"query":"x"},"every":"10s"}"#,
            "every",
        ),
        (
            r#"{"name":"a","type":"keyword_search","params":{"query":"x"},"cron":"* * *"}"#,
            "cron",
        ),
        (
            r#"{"name":"a","type":"keyword_search","params":{"query":"x"},"cron":"0 6 * * *","tz":"Mars/Olympus"}"#,
            "tz",
        ),
        (
            r#"{"name":"a","type":"keyword_search","params":{"query":"x"},"every":"1h","jitter":"2h"}"#,
            "jitter",
        ),
        (
            r#"{"name":"bad name!","type":"keyword_search","params":{"query":"x"},"every":"1h"}"#,
            "name",
        ),
        (
            r#"{"name":"a","type":"keyword_search","params":{},"every":"1h"}"#,
            "params.query",
        ),
        (r#"{"name":"a","type":"no_such_type","every":"1h"}"#, "type"),
        (
            r#"{"name":"a","type":"keyword_search","params":{"query":"x"},"every":"1h","priority":11}"#,
            "priority",
        ),
        (
            r#"{"name":"a","type":"keyword_search","every":"1h","colour":"red"}"#,
            "colour",
        ),
    ] {
        let bad = s.post(&admin, ADD, ADD, body).await;
        assert_eq!(bad.status, 422, "{body}: {}", bad.text);
        assert_eq!(
            bad.json["error"]["field"].as_str(),
            Some(field),
            "{body}: {}",
            bad.text
        );
        assert!(bad.json["error"]["accepted"].is_string(), "{body}");
    }
    let read = s.key(&[Scope::Read], 1000).await;
    let list = s.get(&read, "/v1/schedules", "/v1/schedules").await;
    assert_eq!(list.json["schedules"], json!([]), "nothing written");
    for (route, path) in [
        ("/v1/schedules/{name}/pause", "/v1/schedules/nobody/pause"),
        ("/v1/schedules/{name}/run", "/v1/schedules/nobody/run"),
    ] {
        let missing = s.post(&admin, route, path, "").await;
        assert_eq!(missing.status, 404, "{path}: {}", missing.text);
    }
    // Reading is not managing.
    let denied = s
        .post(
            &read,
            ADD,
            ADD,
            r#"{"name":"a","type":"keyword_search","params":{"query":"x"},"every":"1h"}"#,
        )
        .await;
    assert_eq!(denied.status, 403);
    let enqueue = s.key(&[Scope::Enqueue], 1000).await;
    let denied = s.get(&enqueue, "/v1/schedules", "/v1/schedules").await;
    assert_eq!(denied.status, 403);
    s.stop().await;
}
