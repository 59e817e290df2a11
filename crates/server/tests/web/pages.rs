//! The dashboard in a real headless Chromium: sign-in, the live overview while tasks are
//! drained, cancel and retry, the enqueue form with a refused field, a video's chart, and
//! hostile text that must show as text and run nothing. Screenshots at 375 and 1440 px go
//! to `target/web-screenshots/`.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::json;

use prismq_domain::content::Metrics;
use prismq_domain::ports::{ClaimFilter, ClaimRequest, Failure, Scope};
use prismq_domain::task::WorkerId;
use prismq_domain::{ClaimingStrategy, ContentItem, ErrorClass, NewTask, TaskId, TaskType};

use crate::browser::Browser;
use crate::fixtures::hostile_titles;
use crate::support::Server;

fn keyword(query: &str) -> NewTask {
    NewTask::new(
        TaskType::new("keyword_search").unwrap(),
        json!({ "query": query }),
    )
}

fn claim_request() -> ClaimRequest {
    ClaimRequest {
        worker: WorkerId::new("browser-test").unwrap(),
        filter: ClaimFilter::default(),
        strategy: ClaimingStrategy::Fifo,
        lease_for: Duration::from_secs(60),
    }
}

/// Claims and completes the next task, as a worker would; its id.
async fn run_one(s: &Server) -> Option<TaskId> {
    let c = s.app.queue.claim(&claim_request()).await.unwrap()?;
    s.app.queue.start(&c.lease).await.unwrap();
    s.app.queue.complete(&c.lease, None).await.unwrap();
    Some(c.task.id)
}

/// Enqueues a task, claims it and fails it permanently: a dead letter.
async fn dead_letter(s: &Server) -> TaskId {
    s.app.enqueue(keyword("doomed")).await.unwrap();
    let c = s.app.queue.claim(&claim_request()).await.unwrap().unwrap();
    s.app
        .queue
        .fail(
            &c.lease,
            &Failure {
                class: ErrorClass::Permanent,
                message: "the channel is gone".into(),
            },
        )
        .await
        .unwrap();
    c.task.id
}

async fn pwned(b: &Browser) -> serde_json::Value {
    b.client
        .execute(
            "return window.__pwned === undefined ? null : window.__pwned;",
            vec![],
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_shows_the_overview_with_live_updates_at_both_widths() {
    let s = Server::start().await;
    let key = s.key(&[Scope::Admin], 600).await;
    s.app.enqueue(keyword("labels")).await.unwrap();
    for width in [375, 1440] {
        let b = Browser::start(width).await;
        b.sign_in_by_keyboard(&s, &key).await;
        // live.js ran under the CSP and the stream answered.
        b.wait_for_text("#live-status", "live").await;
        assert!(!b.overflows().await, "the overview fits {width} px");
        b.screenshot(&format!("overview-{width}")).await;
        // A key's secret is never in the page.
        assert!(!b.client.source().await.unwrap().contains(&key));
        // Every control of every page has a label, and no page scrolls sideways.
        for path in [
            "/",
            "/tasks",
            "/tasks/1",
            "/dead-letters",
            "/workers",
            "/schedules",
            "/enqueue",
            "/ideas",
        ] {
            b.open(&s, path).await;
            assert_eq!(b.unlabelled().await, Vec::<String>::new(), "{path}");
            assert!(!b.overflows().await, "{path} fits {width} px");
        }
        b.close().await;
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_counts_change_while_tasks_are_drained() {
    let s = Server::start().await;
    let key = s.key(&[Scope::Read], 600).await;
    for i in 0..4 {
        s.app.enqueue(keyword(&format!("q{i}"))).await.unwrap();
    }
    // A dead letter and some quota, so the screenshot shows every section.
    dead_letter(&s).await;
    let reset = s.app.clock.now() + jiff::SignedDuration::from_hours(7);
    s.app
        .quota
        .try_consume("youtube_data_api.general", 312, 10_000, reset)
        .await
        .unwrap();
    let b = Browser::start(1440).await;
    b.sign_in(&s, &key).await;
    let queued = "[data-live='count.keyword_search.queued']";
    let completed = "[data-live='count.keyword_search.completed']";
    assert_eq!(b.text(queued).await, "4");
    assert_eq!(b.text(completed).await, "0");
    b.wait_for_text("#live-status", "live").await;
    b.screenshot("overview-busy-1440").await;
    // Drain through the ports while the page stays open: the numbers change without a reload.
    let mut ran = 0;
    while run_one(&s).await.is_some() {
        ran += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(ran, 4);
    assert_eq!(b.text("[data-live='dead_letters']").await, "1");
    b.wait_for_text(completed, "4").await;
    b.wait_for_text(queued, "0").await;
    b.wait_for_text("[data-live='recent.minute']", "4").await;
    b.close().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_a_dead_letter_and_see_it_run_then_cancel_a_queued_task() {
    let s = Server::start().await;
    let admin = s.key(&[Scope::Admin], 600).await;
    let dead = dead_letter(&s).await;
    let b = Browser::start(1440).await;
    b.sign_in(&s, &admin).await;
    b.open(&s, "/dead-letters").await;
    b.wait_for_text("main table", "the channel is gone").await;
    b.screenshot("dead-letters-1440").await;
    b.click(&format!("form[action='/tasks/{}/retry'] button", dead.0))
        .await;
    b.wait_for_text("h1", &format!("Task {}", dead.0)).await;
    assert_eq!(b.text("main p .status").await, "queued");
    assert_eq!(run_one(&s).await, Some(dead), "the retried task runs");
    b.client.refresh().await.unwrap();
    b.wait_for_text("main p .status", "completed").await;
    b.wait_for_text("#log", "completed").await;

    let queued = s.app.enqueue(keyword("cancel me")).await.unwrap().id;
    b.open(&s, &format!("/tasks/{}", queued.0)).await;
    b.click("#cancel").await;
    b.wait_for_text("main p .status", "cancelled").await;
    assert_eq!(
        s.app.queue.get(queued).await.unwrap().status,
        prismq_domain::TaskStatus::Cancelled
    );
    b.close().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_from_the_form_with_a_refused_field_and_its_message() {
    let s = Server::start().await;
    let key = s.key(&[Scope::Read, Scope::Enqueue], 600).await;
    let expected = s
        .app
        .registry
        .validate(&NewTask::new(
            TaskType::new("keyword_search").unwrap(),
            json!({ "query": "rust tutorials", "top_n": 9999 }),
        ))
        .unwrap_err()
        .to_string();
    for width in [375, 1440] {
        let before = s.task_count().await;
        let b = Browser::start(width).await;
        b.sign_in(&s, &key).await;
        b.open(&s, "/enqueue").await;
        // Choose the type with the plain GET form (no script needed).
        b.client
            .find(Locator::Css("#type-choice option[value='keyword_search']"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        b.click("#choose").await;
        b.wait_for_text("#params-legend", "keyword_search").await;
        assert_eq!(b.unlabelled().await, Vec::<String>::new());
        assert_eq!(
            b.text("label[for='p-query']").await,
            "query (required)",
            "required is marked"
        );
        assert_eq!(b.text("#p-query-help").await, "what to search for");
        let fill = |id: &'static str, v: &'static str| {
            let c = b.client.clone();
            async move {
                let el = c.find(Locator::Id(id)).await.unwrap();
                el.clear().await.unwrap();
                el.send_keys(v).await.unwrap();
            }
        };
        fill("p-query", "rust tutorials").await;
        fill("p-top_n", "9999").await;
        b.client
            .find(Locator::Css("#p-sort_by option[value='date']"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        b.click("#enqueue").await;
        let shown = b.wait_for_text("#p-top_n-error", "top_n").await;
        assert_eq!(shown, expected, "the CLI's message, next to the field");
        let attr = |id: &'static str, name: &'static str| {
            let c = b.client.clone();
            async move {
                c.find(Locator::Id(id))
                    .await
                    .unwrap()
                    .prop(name)
                    .await
                    .unwrap()
                    .unwrap_or_default()
            }
        };
        assert_eq!(attr("p-top_n", "ariaInvalid").await, "true");
        assert_eq!(attr("p-query", "value").await, "rust tutorials", "kept");
        assert_eq!(attr("p-top_n", "value").await, "9999", "kept");
        assert_eq!(attr("p-sort_by", "value").await, "date", "kept");
        assert_eq!(s.task_count().await, before, "nothing was written");
        assert!(!b.overflows().await, "the form fits {width} px");
        b.screenshot(&format!("enqueue-refused-{width}")).await;
        fill("p-top_n", "20").await;
        b.click("#enqueue").await;
        b.wait_for_text("h1", "Task ").await;
        b.wait_for_text("#params", "rust tutorials").await;
        let params = b.text("#params").await;
        assert!(
            params.contains("\"top_n\": 20") && params.contains("\"sort_by\": \"date\""),
            "{params}"
        );
        assert_eq!(s.task_count().await, before + 1);
        b.close().await;
    }
    assert_eq!(s.task_count().await, 2);
    s.stop().await;
}

fn video(id: &str, title: &str, views: i64) -> ContentItem {
    let mut v = ContentItem::new("youtube_keyword", id, title);
    v.channel = Some(format!("{title} channel"));
    v.url = Some(format!("javascript:window.__pwned='{id}'"));
    v.description = Some(format!("{title}\nsecond line <b>not bold</b>"));
    v.metrics = Metrics {
        views: Some(views),
        likes: Some(views / 20),
        comments: Some(views / 100),
    };
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_shows_its_chart_and_hostile_titles_show_as_text() {
    let s = Server::start().await;
    let key = s.key(&[Scope::Read], 600).await;
    let titles = hostile_titles();
    // Three captures each, so the chart has a line.
    for round in 1..=3 {
        let items: Vec<ContentItem> = titles
            .iter()
            .enumerate()
            .map(|(i, t)| video(&format!("vid{i:08}"), t, 1_000 * round * (i as i64 + 1)))
            .collect();
        s.app.results.save(None, &items).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    // A task whose parameters are hostile too.
    let t = s
        .app
        .enqueue(keyword("<script>window.__pwned='params'</script>"))
        .await
        .unwrap()
        .id;
    for width in [375, 1440] {
        let b = Browser::start(width).await;
        b.sign_in(&s, &key).await;
        b.open(&s, "/ideas?order=views").await;
        let table = b.text("#ideas").await;
        assert!(
            table.contains("<script>window.__pwned = 1</script>"),
            "{table}"
        );
        assert!(table.contains("\"><img src=x onerror=\"window.__pwned=2\">"));
        assert!(table.contains("it's \"quoted\" & <b>bold</b>"));
        assert!(
            b.client.find(Locator::Css("#ideas img")).await.is_err(),
            "no element came from a title"
        );
        assert!(!b.overflows().await, "the ideas list fits {width} px");
        b.screenshot(&format!("ideas-{width}")).await;
        for (i, title) in titles.iter().enumerate() {
            b.open(&s, &format!("/ideas/youtube/vid{i:08}")).await;
            let h1 = b.text("h1").await;
            if title.len() < 200 && !title.contains('\u{202e}') {
                assert_eq!(&h1, title, "the title is the heading, as text");
            } else {
                assert!(
                    h1.chars().count() <= 200,
                    "long or bidi titles are bounded and cleaned"
                );
                assert!(!h1.contains('\u{202e}'));
            }
            // The chart is an image that loaded.
            let loaded = b
                .client
                .execute(
                    "const i = document.getElementById('chart'); return i.complete && i.naturalWidth > 0;",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(loaded, json!(true), "the chart of {i} loaded");
            assert_eq!(
                b.client
                    .find(Locator::Css("#history tbody"))
                    .await
                    .unwrap()
                    .find_all(Locator::Css("tr"))
                    .await
                    .unwrap()
                    .len(),
                3
            );
            // A javascript: URL is text, never a link.
            assert!(b
                .client
                .find(Locator::Css("a[href^='javascript']"))
                .await
                .is_err());
            assert!(!b.overflows().await, "video {i} fits {width} px");
            if i == 3 {
                b.screenshot(&format!("video-{width}")).await;
            }
        }
        b.open(&s, &format!("/tasks/{}", t.0)).await;
        b.wait_for_text("#params", "<script>window.__pwned='params'</script>")
            .await;
        assert_eq!(pwned(&b).await, serde_json::Value::Null, "nothing ran");
        b.close().await;
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_a_schedule_from_the_form_with_a_refused_field() {
    let s = Server::start().await;
    let admin = s.key(&[Scope::Admin], 600).await;
    let expected = prismq_domain::schedule::Cadence::every("10s")
        .unwrap_err()
        .to_string();
    for width in [375, 1440] {
        let b = Browser::start(width).await;
        b.sign_in(&s, &admin).await;
        b.open(&s, "/schedules").await;
        b.click("#add-schedule").await;
        b.wait_for_text("h1", "Add a schedule").await;
        b.client
            .find(Locator::Css("#type-choice option[value='channel_scrape']"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        b.click("#choose").await;
        b.wait_for_text("#params-legend", "channel_scrape").await;
        assert_eq!(b.unlabelled().await, Vec::<String>::new());
        let name = format!("veritasium-{width}");
        let fill = |id: &'static str, v: String| {
            let c = b.client.clone();
            async move {
                let el = c.find(Locator::Id(id)).await.unwrap();
                el.clear().await.unwrap();
                el.send_keys(&v).await.unwrap();
            }
        };
        fill("name", name.clone()).await;
        fill("every", "10s".into()).await;
        fill("p-channel_url", "@veritasium".into()).await;
        b.click("#add").await;
        let shown = b.wait_for_text("#every-error", "every").await;
        assert_eq!(shown, expected, "the CLI's message, next to the field");
        assert!(
            s.app.schedule_views().await.unwrap().len() < 2,
            "nothing written"
        );
        assert!(!b.overflows().await, "the form fits {width} px");
        b.screenshot(&format!("schedule-add-refused-{width}")).await;
        fill("every", "6h".into()).await;
        b.click("#add").await;
        b.wait_for_text("h1", "Schedules").await;
        b.wait_for_text("main table", &name).await;
        b.close().await;
    }
    assert_eq!(s.app.schedule_views().await.unwrap().len(), 2);
    s.stop().await;
}
