//! Partial progress: when quota, an error or cancellation (the runtime's time limit or
//! shutdown) stops a handler midway, the error keeps its class and carries the items of
//! every page fetched before it, built exactly as a full run builds them (so the retry
//! updates the same rows). Quota stops are driven both by
//! the local ledger and by the stand-in's 403 `quotaExceeded` after n requests.

mod support;

use prismq_domain::ports::QuotaLedger;
use prismq_domain::{ContentItem, ErrorClass, Timestamp};
use prismq_testkit::handler::check_task_error;
use serde_json::json;
use support::fake_api::{counts, FakeApi};
use support::{config, Harness};

const GENERAL: &str = "youtube_data_api.general";
const SEARCH: &str = "youtube_data_api.search";

/// Midnight PST after the harness's start time (2026-11-20T12:00Z).
fn next_midnight() -> Timestamp {
    "2026-11-21T08:00:00Z".parse().unwrap()
}

fn ids(items: &[ContentItem]) -> Vec<&str> {
    items.iter().map(|i| i.source_id.as_str()).collect()
}

/// The items of a full, unlimited run of the same task against the same data.
async fn full_run(base: &str, task_type: &str, params: serde_json::Value) -> Vec<ContentItem> {
    Harness::new(config(base, "K"))
        .run(task_type, params)
        .await
        .expect("the unlimited run succeeds")
        .items
}

#[tokio::test]
async fn a_120_video_channel_whose_local_quota_runs_out_after_the_second_page_keeps_100() {
    let (server, base) = FakeApi::start().await;
    let mut cfg = config(&base, "K");
    // channels, page 1, its batch, page 2, its batch: the third page is refused locally.
    cfg.quota.general_daily_units = 5;
    let h = Harness::new(cfg);
    let params = json!({"channel_url": "@Big120", "top_n": 120});
    let e = h.run("channel_scrape", params.clone()).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::RetryableAfter(next_midnight()), "{e}");
    check_task_error(&e);
    let c = counts(&server).await;
    assert_eq!((c["channels"], c["playlistItems"], c["videos"]), (1, 2, 2));
    assert_eq!(h.store.used(GENERAL).await.unwrap(), 5);
    assert_eq!(e.partial.len(), 100);
    assert_eq!(e.partial[0].source_id, "bigc0000000");
    assert_eq!(e.partial[99].source_id, "bigc0000099");
    assert!(e.partial.iter().all(|i| i.source == "youtube_channel"
        && i.extra["channel_query"] == json!("@Big120")
        && i.extra["backend"] == json!("data_api")));

    let full = full_run(&base, "channel_scrape", params).await;
    assert_eq!(full.len(), 120);
    assert_eq!(
        e.partial,
        full[..100],
        "partial items are built like a full run's"
    );
}

#[tokio::test]
async fn a_403_quota_exceeded_on_the_third_page_defers_with_the_pages_before_it() {
    let (server, base) = FakeApi::start().await;
    // Five answers (channels, page 1, batch 1, page 2, batch 2), then 403 quotaExceeded.
    let h = Harness::new(config(&base, "QUOTAAFTER5"));
    let e = h
        .run(
            "channel_scrape",
            json!({"channel_url": "@Big120", "top_n": 120}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::RetryableAfter(next_midnight()), "{e}");
    assert!(e.message.contains("quota"), "{e}");
    check_task_error(&e);
    assert_eq!(
        ids(&e.partial),
        (0..100).map(|n| format!("bigc{n:07}")).collect::<Vec<_>>()
    );
    let c = counts(&server).await;
    assert_eq!((c["channels"], c["playlistItems"], c["videos"]), (1, 3, 2));
    // The refused request was charged too, and the bucket is now marked spent.
    assert_eq!(h.store.used(GENERAL).await.unwrap(), 6);
    let again = h
        .run("channel_scrape", json!({"channel_url": "@Big120"}))
        .await
        .unwrap_err();
    assert!(again.partial.is_empty(), "refused before any request");
    assert_eq!(
        counts(&server).await["channels"],
        1,
        "no request once spent"
    );
}

#[tokio::test]
async fn a_search_stopped_midway_keeps_its_first_results_with_their_ranks() {
    let (server, base) = FakeApi::start().await;
    // search page 1, its batch, search page 2; the second batch gets 403 quotaExceeded.
    let h = Harness::new(config(&base, "QUOTAAFTER3"));
    let params = json!({"query": "surf trip", "top_n": 120});
    let e = h.run("keyword_search", params.clone()).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::RetryableAfter(next_midnight()), "{e}");
    check_task_error(&e);
    assert_eq!(e.partial.len(), 50);
    let ranks: Vec<u64> = e
        .partial
        .iter()
        .map(|i| i.extra["search_rank"].as_u64().unwrap())
        .collect();
    assert_eq!(ranks, (1..=50).collect::<Vec<_>>());
    let c = counts(&server).await;
    assert_eq!((c["search"], c["videos"]), (2, 2));
    assert_eq!(h.store.used(SEARCH).await.unwrap(), 2);
    let full = full_run(&base, "keyword_search", params).await;
    assert_eq!(e.partial, full[..50]);
}

#[tokio::test]
async fn a_chart_stopped_on_its_second_page_keeps_the_first() {
    let (_server, base) = FakeApi::start().await;
    // videoCategories, chart page 1; page 2 gets 403 quotaExceeded.
    let h = Harness::new(config(&base, "QUOTAAFTER2"));
    let params = json!({"category": "music", "top_n": 120});
    let e = h.run("trending_scrape", params.clone()).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::RetryableAfter(next_midnight()), "{e}");
    check_task_error(&e);
    assert_eq!(e.partial.len(), 50);
    assert_eq!(e.partial[0].extra["trending_rank"], json!(1));
    assert_eq!(
        e.partial[0].extra["trending_category_title"],
        json!("Music")
    );
    let full = full_run(&base, "trending_scrape", params).await;
    assert_eq!(e.partial, full[..50]);
}

#[tokio::test]
async fn api_scrape_keeps_the_batches_before_a_failed_one() {
    let (_server, base) = FakeApi::start().await;
    let videos: Vec<String> = (0..60).map(|n| format!("bigc{n:07}")).collect();
    let params = json!({ "videos": videos });
    // A 5xx on the second batch: retryable, with the first batch's 50 items.
    let h = Harness::new(config(&base, "FAILAFTER1"));
    let e = h.run("api_scrape", params.clone()).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Retryable, "{e}");
    check_task_error(&e);
    assert_eq!(ids(&e.partial), videos[..50].to_vec());
    let full = full_run(&base, "api_scrape", params).await;
    assert_eq!(e.partial, full[..50]);
}

#[tokio::test]
async fn an_error_before_any_page_carries_nothing() {
    let (_server, base) = FakeApi::start().await;
    let h = Harness::new(config(&base, "QUOTA"));
    for (task_type, params) in [
        ("channel_scrape", json!({"channel_url": "@Big120"})),
        ("keyword_search", json!({"query": "surf trip"})),
        ("trending_scrape", json!({})),
        ("api_scrape", json!({"videos": ["bigc0000000"]})),
    ] {
        let e = h.run(task_type, params).await.unwrap_err();
        assert!(
            matches!(e.class, ErrorClass::RetryableAfter(_)),
            "{task_type}: {e}"
        );
        assert!(e.partial.is_empty(), "{task_type}: {:?}", ids(&e.partial));
    }
}

#[tokio::test]
async fn a_channel_cancelled_while_its_second_page_hangs_keeps_the_first() {
    let (server, base) = FakeApi::start().await;
    // channels, page 1, its batch answered; page 2 hangs until the cancel.
    let h = Harness::new(config(&base, "HANGAFTER3"));
    let cancel = prismq_domain::CancelSignal::new();
    let params = json!({"channel_url": "@Big120", "top_n": 120});
    let run = h.run_until("channel_scrape", params, cancel.clone());
    let stop = async {
        while counts(&server)
            .await
            .get("playlistItems")
            .copied()
            .unwrap_or(0)
            < 2
        {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        cancel.cancel();
    };
    let started = std::time::Instant::now();
    let (e, ()) = tokio::join!(run, stop);
    let e = e.unwrap_err();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "returned on the cancel, not after the hang"
    );
    assert_eq!(e.class, ErrorClass::Retryable, "{e}");
    check_task_error(&e);
    assert_eq!(e.partial.len(), 50);
    assert_eq!(
        (
            e.partial[0].source_id.as_str(),
            e.partial[49].source_id.as_str()
        ),
        ("bigc0000000", "bigc0000049")
    );
}
