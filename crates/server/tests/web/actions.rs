//! The dashboard's actions and lists over plain HTTP: scopes, dead letters (retry all,
//! purge after confirmation), schedules (pause, resume, run now), workers, task filters
//! and keyset paging, and the quota table.

use std::time::Duration;

use serde_json::json;

use prismq_domain::ports::{ClaimFilter, ClaimRequest, Failure, Scope, WorkerInfo};
use prismq_domain::schedule::{Cadence, NewSchedule};
use prismq_domain::task::WorkerId;
use prismq_domain::{ClaimingStrategy, ErrorClass, NewTask, TaskStatus, TaskType};

use crate::http::{get, post, sign_in};
use crate::support::Server;

fn keyword(query: &str) -> NewTask {
    NewTask::new(
        TaskType::new("keyword_search").unwrap(),
        json!({ "query": query }),
    )
}

async fn fail_next(s: &Server) {
    let c = s
        .app
        .queue
        .claim(&ClaimRequest {
            worker: WorkerId::new("w").unwrap(),
            filter: ClaimFilter::default(),
            strategy: ClaimingStrategy::Fifo,
            lease_for: Duration::from_secs(60),
        })
        .await
        .unwrap()
        .unwrap();
    s.app
        .queue
        .fail(
            &c.lease,
            &Failure {
                class: ErrorClass::Permanent,
                message: "permanent".into(),
            },
        )
        .await
        .unwrap();
}

async fn statuses(s: &Server) -> Vec<TaskStatus> {
    let mut all = s
        .app
        .queue
        .list(&prismq_domain::ports::TaskFilter::default())
        .await
        .unwrap();
    all.sort_by_key(|t| t.id.0);
    all.iter().map(|t| t.status).collect()
}

#[tokio::test]
async fn a_read_key_sees_no_action_and_is_refused_one() {
    let s = Server::start().await;
    let id = s.app.enqueue(keyword("a")).await.unwrap().id;
    let reader = s.key(&[Scope::Read], 600).await;
    let me = sign_in(&s, &reader).await;
    let page = get(&s, &format!("/tasks/{}", id.0), &me.cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("/cancel"), "no cancel button for a read key");
    assert!(!get(&s, "/", &me.cookie)
        .await
        .text()
        .await
        .unwrap()
        .contains("href=\"/enqueue\""));
    let r = post(
        &s,
        &format!("/tasks/{}/cancel", id.0),
        &me.cookie,
        &format!("csrf={}", me.csrf),
    )
    .await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("lacks the admin scope"));
    assert_eq!(get(&s, "/enqueue", &me.cookie).await.status(), 403);
    assert_eq!(statuses(&s).await, [TaskStatus::Queued], "nothing changed");
    s.stop().await;
}

#[tokio::test]
async fn dead_letters_retry_all_and_purge_only_after_confirmation() {
    let s = Server::start().await;
    for q in ["a", "b", "c"] {
        s.app.enqueue(keyword(q)).await.unwrap();
        fail_next(&s).await;
    }
    let admin = s.key(&[Scope::Admin], 600).await;
    let me = sign_in(&s, &admin).await;
    let list = get(&s, "/dead-letters", &me.cookie)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        list.matches("action=\"/tasks/").count(),
        3,
        "a retry button per dead letter"
    );
    let r = post(
        &s,
        "/dead-letters/retry",
        &me.cookie,
        &format!("csrf={}", me.csrf),
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(statuses(&s).await, [TaskStatus::Queued; 3]);

    for _ in 0..3 {
        fail_next(&s).await;
    }
    // Without confirm: a page that asks, nothing deleted.
    let ask = post(
        &s,
        "/dead-letters/purge",
        &me.cookie,
        &format!("csrf={}&older_than=0s", me.csrf),
    )
    .await;
    assert_eq!(ask.status(), 200);
    let html = ask.text().await.unwrap();
    assert!(
        html.contains("cannot be undone") && html.contains("name=\"confirm\" value=\"yes\""),
        "{html}"
    );
    assert_eq!(statuses(&s).await.len(), 3);
    let bad = post(
        &s,
        "/dead-letters/purge",
        &me.cookie,
        &format!("csrf={}&older_than=soon&confirm=yes", me.csrf),
    )
    .await;
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains("is not a duration"));
    let without = post(
        &s,
        "/dead-letters/purge",
        &me.cookie,
        "older_than=0s&confirm=yes",
    )
    .await;
    assert_eq!(
        without.status(),
        403,
        "the confirmation form needs its token too"
    );
    assert_eq!(statuses(&s).await.len(), 3);
    let done = post(
        &s,
        "/dead-letters/purge",
        &me.cookie,
        &format!("csrf={}&older_than=0s&confirm=yes", me.csrf),
    )
    .await;
    assert_eq!(done.status(), 303);
    assert!(statuses(&s).await.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn schedules_pause_resume_and_run_now() {
    let s = Server::start().await;
    s.app
        .add_schedule(NewSchedule::new(
            "nightly-rust",
            TaskType::new("keyword_search").unwrap(),
            json!({ "query": "rust" }),
            Cadence::EverySecs(3600),
        ))
        .await
        .unwrap();
    let admin = s.key(&[Scope::Admin], 600).await;
    let me = sign_in(&s, &admin).await;
    let page = get(&s, "/schedules", &me.cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("nightly-rust") && page.contains("/schedules/nightly-rust/pause"));
    let csrf = format!("csrf={}", me.csrf);
    assert_eq!(
        post(&s, "/schedules/nightly-rust/pause", &me.cookie, &csrf)
            .await
            .status(),
        303
    );
    assert!(
        s.app
            .schedules
            .get_schedule("nightly-rust")
            .await
            .unwrap()
            .paused
    );
    assert!(get(&s, "/schedules", &me.cookie)
        .await
        .text()
        .await
        .unwrap()
        .contains("/schedules/nightly-rust/resume"));
    assert_eq!(
        post(&s, "/schedules/nightly-rust/resume", &me.cookie, &csrf)
            .await
            .status(),
        303
    );
    assert!(
        !s.app
            .schedules
            .get_schedule("nightly-rust")
            .await
            .unwrap()
            .paused
    );
    let run = post(&s, "/schedules/nightly-rust/run", &me.cookie, &csrf).await;
    assert_eq!(run.status(), 303);
    assert!(run.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/tasks/"));
    assert_eq!(s.task_count().await, 1);
    let unknown = post(&s, "/schedules/nope/pause", &me.cookie, &csrf).await;
    assert_eq!(unknown.status(), 404);
    let odd = post(&s, "/schedules/nightly-rust/explode", &me.cookie, &csrf).await;
    assert_eq!(odd.status(), 404);
    s.stop().await;
}

#[tokio::test]
async fn workers_tasks_filters_paging_and_quota_show() {
    let s = Server::start().await;
    for i in 0..120 {
        s.app
            .enqueue(keyword(&format!("needle-{}", i % 7 == 0)))
            .await
            .unwrap();
    }
    s.app
        .workers
        .register(&WorkerInfo {
            id: WorkerId::new("w-<b>1</b>").unwrap(),
            hostname: "host-a".into(),
            pid: 42,
            capabilities: vec![TaskType::new("keyword_search").unwrap()],
            strategy: ClaimingStrategy::Lifo,
        })
        .await
        .unwrap();
    let reset = s.app.clock.now() + jiff::SignedDuration::from_hours(5);
    s.app
        .quota
        .try_consume("youtube_data_api.general", 25, 10_000, reset)
        .await
        .unwrap();
    let reader = s.key(&[Scope::Read], 600).await;
    let me = sign_in(&s, &reader).await;

    let w = get(&s, "/workers", &me.cookie).await.text().await.unwrap();
    assert!(
        !w.contains("<b>1")
            && w.contains("w-&#60;b&#62;1&#60;/b&#62;")
            && w.contains("host-a (pid 42)")
            && w.contains("lifo"),
        "{w}"
    );

    let o = get(&s, "/", &me.cookie).await.text().await.unwrap();
    assert!(
        o.contains("data-live=\"quota.youtube_data_api.general.used\">25<"),
        "{o}"
    );
    assert!(o.contains("data-live=\"quota.youtube_data_api.general.limit\">10,000<"));
    assert!(o.contains("data-live=\"quota.youtube_data_api.general.left\">9,975<"));
    assert!(o.contains("data-live=\"workers.active\">1<"));
    assert!(o.contains("data-live=\"count.keyword_search.queued\" data-live-zero>120<"));

    // Keyset paging: 50, 50, 20, newest first, no task twice.
    let mut seen = Vec::new();
    let mut path = "/tasks?status=queued".to_owned();
    for _ in 0..10 {
        let html = get(&s, &path, &me.cookie).await.text().await.unwrap();
        let ids: Vec<i64> = html
            .split("<a href=\"/tasks/")
            .skip(1)
            .filter_map(|p| p.split('"').next()?.parse().ok())
            .collect();
        seen.extend(ids);
        match html
            .split("rel=\"next\"")
            .next()
            .and_then(|h| h.rsplit("href=\"/tasks?").next())
        {
            Some(q) if html.contains("rel=\"next\"") => {
                path = format!(
                    "/tasks?{}",
                    q.split('"')
                        .next()
                        .unwrap()
                        .replace("&#38;", "&")
                        .replace("&amp;", "&")
                );
            }
            _ => break,
        }
    }
    assert_eq!(seen.len(), 120, "{seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first, each once"
    );

    // Text filter: the 18 tasks whose query says true.
    let html = get(&s, "/tasks?q=needle-true", &me.cookie)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(html.matches("<a href=\"/tasks/").count(), 18, "{html}");
    let none = get(&s, "/tasks?status=failed", &me.cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(none.contains("No tasks match."));
    let bad = get(&s, "/tasks?status=lost", &me.cookie).await;
    assert_eq!(bad.status(), 422);
    assert!(
        bad.text().await.unwrap().contains("queued"),
        "the refusal lists the statuses"
    );
    s.stop().await;
}

/// The ids a task list shows, in order, and its "Older" link.
fn listed(html: &str) -> (Vec<i64>, Option<String>) {
    let ids = html
        .split("<a href=\"/tasks/")
        .skip(1)
        .filter_map(|p| p.split('"').next()?.parse().ok())
        .collect();
    let next = html
        .split("href=\"/tasks?")
        .nth(1)
        .and_then(|p| p.split('"').next())
        .filter(|p| p.contains("before="))
        .map(|p| format!("/tasks?{}", p.replace("&#38;", "&")));
    (ids, next)
}

#[tokio::test]
async fn a_rare_status_pages_through_the_finished_index_and_an_empty_one_reads_nothing() {
    let s = Server::start().await;
    for i in 0..130 {
        s.app.enqueue(keyword(&format!("t{i}"))).await.unwrap();
    }
    // The oldest 60 are cancelled: few (read through the finished-time index) and far from
    // the newest ids (a walk down from the newest would pass every other task first).
    for id in 1..=60 {
        s.app.queue.cancel(prismq_domain::TaskId(id)).await.unwrap();
    }
    let reader = s.key(&[Scope::Read], 600).await;
    let me = sign_in(&s, &reader).await;
    let mut seen = Vec::new();
    let mut path = Some("/tasks?status=cancelled&type=keyword_search".to_owned());
    while let Some(p) = path {
        let html = get(&s, &p, &me.cookie).await.text().await.unwrap();
        let (ids, next) = listed(&html);
        assert!(ids.len() <= 50);
        seen.extend(ids);
        path = next;
    }
    assert_eq!(
        seen,
        (1..=60).rev().collect::<Vec<i64>>(),
        "newest first, each once"
    );
    // No running task: nothing to list, and the page says so.
    let html = get(&s, "/tasks?status=running", &me.cookie)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(listed(&html), (Vec::new(), None));
    // The queued ones are unaffected: the newest 50 of the 70 left.
    let html = get(&s, "/tasks?status=queued", &me.cookie)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(listed(&html).0, (81..=130).rev().collect::<Vec<i64>>());
    s.stop().await;
}
