//! The four handlers against a real HTTP stand-in for the Data API on loopback: paging,
//! quota accounting, every error class, quota deferral without network, the size cap and
//! the timeout.

mod support;

use prismq_domain::ports::QuotaLedger;
use prismq_domain::{ErrorClass, Timestamp};
use prismq_plugins::youtube::source::api_error::{classify, Classified};
use prismq_plugins::youtube::source::{Bucket, SourceError};
use prismq_plugins::youtube::trending::TrendingHandler;
use prismq_plugins::YoutubeConfig;
use serde_json::json;
use support::fake_api::{counts, queries, FakeApi};
use support::{config, Harness};

const GENERAL: &str = "youtube_data_api.general";
const SEARCH: &str = "youtube_data_api.search";

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// Midnight PST after the harness's start time (2026-11-20T12:00Z).
fn next_midnight() -> Timestamp {
    ts("2026-11-21T08:00:00Z")
}

async fn harness(key: &str) -> (wiremock::MockServer, Harness) {
    let (server, base) = FakeApi::start().await;
    (server, Harness::new(config(&base, key)))
}

#[tokio::test]
async fn a_120_video_channel_costs_seven_units() {
    let (server, h) = harness("K").await;
    let r = h
        .run(
            "channel_scrape",
            json!({"channel_url": "@Big120", "top_n": 120}),
        )
        .await
        .unwrap();
    assert_eq!(r.items.len(), 120);
    assert!(r.items.iter().all(|i| i.source == "youtube_channel"));
    let ids: Vec<&str> = r.items.iter().map(|i| i.source_id.as_str()).collect();
    assert_eq!(ids[0], "bigc0000000");
    assert_eq!(ids[119], "bigc0000119");
    let c = counts(&server).await;
    assert_eq!((c["channels"], c["playlistItems"], c["videos"]), (1, 3, 3));
    assert_eq!(h.store.used(GENERAL).await.unwrap(), 7);
    assert_eq!(r.counters["videos"], 120);
    assert_eq!(r.counters[&format!("quota_units.{GENERAL}")], 7);
    // Tokens passed back exactly; ids batched ≤ 50 without maxResults.
    let pages = queries(&server, "playlistItems").await;
    assert_eq!(pages[0].get("pageToken"), None);
    assert_eq!(pages[1]["pageToken"], "CDIQAA");
    assert_eq!(pages[2]["pageToken"], "CGQQAA");
    // The default choice is long-form videos: the UULF… playlist, at the same cost.
    assert_eq!(pages[0]["playlistId"], "UULFbig120channelAAAAAAAAA");
    let batches: Vec<usize> = queries(&server, "videos")
        .await
        .iter()
        .map(|q| q["id"].split(',').count())
        .collect();
    assert_eq!(batches, [50, 50, 20]);
}

#[tokio::test]
async fn channel_items_from_the_fixtures() {
    let (_server, h) = harness("K").await;
    let r = h
        .run(
            "channel_scrape",
            json!({"channel_url": "https://www.youtube.com/@GoogleDevelopers/videos", "top_n": 2}),
        )
        .await
        .unwrap();
    insta::assert_json_snapshot!("channel_google_developers_top2", r.items);
}

#[tokio::test]
async fn deleted_entries_are_skipped_and_top_n_still_met() {
    let (server, h) = harness("K").await;
    let r = h
        .run(
            "channel_scrape",
            json!({"channel_url": "UC_x5XG1OV2P6uZZ5FSM9Ttw", "top_n": 5, "tab": "all"}),
        )
        .await
        .unwrap();
    let ids: Vec<&str> = r.items.iter().map(|i| i.source_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "Kq9MZLmFMHQ",
            "rTw3pGhYsLM",
            "goog0000000",
            "goog0000001",
            "goog0000002"
        ]
    );
    // All uploads: the UU… playlist tells nothing about Shorts, so nothing is said (the
    // 58-second rTw3pGhYsLM is not guessed a Short from its duration).
    assert!(r.items.iter().all(|i| !i.extra.contains_key("is_short")));
    assert_eq!(
        r.items[1].url.as_deref(),
        Some("https://www.youtube.com/watch?v=rTw3pGhYsLM")
    );
    assert_eq!(
        queries(&server, "playlistItems").await[0]["playlistId"],
        "UU_x5XG1OV2P6uZZ5FSM9Ttw"
    );
    let q = queries(&server, "channels").await;
    assert_eq!(q[0]["id"], "UC_x5XG1OV2P6uZZ5FSM9Ttw");
    assert!(!q[0].contains_key("forHandle"));
}

#[tokio::test]
async fn a_channel_with_fewer_videos_than_top_n_returns_them_all() {
    let (_server, h) = harness("K").await;
    let r = h
        .run(
            "channel_scrape",
            json!({"channel_url": "@GoogleDevelopers", "top_n": 500}),
        )
        .await
        .unwrap();
    // Nine long-form videos (the Short and the deleted entry are not in UULF…).
    assert_eq!(r.items.len(), 9);
}

#[tokio::test]
async fn max_age_days_stops_paging_at_the_cutoff() {
    let (server, h) = harness("K").await;
    let r = h
        .run(
            "channel_scrape",
            json!({"channel_url": "@Big120", "top_n": 100, "max_age_days": 10}),
        )
        .await
        .unwrap();
    // Published 2026-11-18T12:00Z minus n days; the cutoff is 2026-11-10T12:00Z.
    assert_eq!(r.items.len(), 9);
    let c = counts(&server).await;
    assert_eq!((c["playlistItems"], c["videos"]), (1, 1));
}

#[tokio::test]
async fn unknown_channels_are_permanent_not_found() {
    let (server, h) = harness("K").await;
    for channel in ["@NoSuchChannelHere", "@NotFoundErr", "@GhostChannel"] {
        let e = h
            .run(
                "channel_scrape",
                json!({"channel_url": channel, "tab": "all"}),
            )
            .await
            .unwrap_err();
        assert_eq!(e.class, ErrorClass::Permanent, "{channel}: {e}");
        assert!(e.message.contains("not found"), "{e}");
    }
    let c = counts(&server).await;
    // The ghost channel resolves, then its uploads playlist answers 404 playlistNotFound.
    assert_eq!((c["channels"], c["playlistItems"]), (3, 1));
}

#[tokio::test]
async fn shorts_tab_reads_the_uush_playlist() {
    let (server, h) = harness("K").await;
    let r = h
        .run(
            "channel_scrape",
            json!({"channel_url": "@GoogleDevelopers", "tab": "shorts"}),
        )
        .await
        .unwrap();
    assert_eq!(r.items.len(), 1);
    assert_eq!(r.items[0].source_id, "rTw3pGhYsLM");
    assert_eq!(
        r.items[0].url.as_deref(),
        Some("https://www.youtube.com/shorts/rTw3pGhYsLM")
    );
    assert_eq!(
        queries(&server, "playlistItems").await[0]["playlistId"],
        "UUSH_x5XG1OV2P6uZZ5FSM9Ttw"
    );
    let r = h
        .run(
            "channel_scrape",
            json!({"channel_url": "@Big120", "tab": "shorts"}),
        )
        .await
        .unwrap();
    assert!(r.items.is_empty());
    assert!(r.summary.contains("no Shorts playlist"), "{}", r.summary);
    // Listed from UUSH…: known to be a Short, so its URL is the /shorts/ one.
    let (_server, h) = harness("K").await;
    let r = h
        .run(
            "channel_scrape",
            json!({"channel_url": "@GoogleDevelopers", "top_n": 3}),
        )
        .await
        .unwrap();
    assert!(r.items.iter().all(|i| i.extra["is_short"] == json!(false)));
    assert!(r
        .items
        .iter()
        .all(|i| i.url.as_deref().unwrap().contains("watch?v=")));
}

#[tokio::test]
async fn trending_pages_to_top_n() {
    let (server, h) = harness("K").await;
    let r = h
        .run(
            "trending_scrape",
            json!({"country": "us", "category": "all", "top_n": 120}),
        )
        .await
        .unwrap();
    assert_eq!(r.items.len(), 120);
    assert_eq!(r.items[0].source_id, "V41Iou1O0uQ");
    assert_eq!(r.items[0].source, "youtube_trending");
    assert_eq!(r.items[0].extra["trending_rank"], json!(1));
    assert_eq!(r.items[0].extra["trending_region"], json!("US"));
    assert_eq!(r.items[0].metrics.views, Some(2_463_185));
    let q = queries(&server, "videos").await;
    let sizes: Vec<&str> = q.iter().map(|q| q["maxResults"].as_str()).collect();
    assert_eq!(sizes, ["50", "50", "20"]);
    assert_eq!(q[1]["pageToken"], "CDIQAA");
    assert_eq!(
        (
            q[0]["chart"].as_str(),
            q[0]["regionCode"].as_str(),
            q[0]["videoCategoryId"].as_str()
        ),
        ("mostPopular", "US", "0")
    );
    let r = h
        .run("trending_scrape", json!({"top_n": 200}))
        .await
        .unwrap();
    assert_eq!(r.items.len(), 151, "the chart has 151 entries");
}

#[tokio::test]
async fn an_unavailable_chart_is_an_empty_success() {
    let (_server, h) = harness("K").await;
    // Nonprofits & Activism (29) and Travel & Events (19) are assignable in US, but the
    // stand-in keeps no chart for them (the 400 and the 404 variants).
    for category in ["nonprofits", "19"] {
        let r = h
            .run("trending_scrape", json!({"category": category}))
            .await
            .unwrap();
        assert!(r.items.is_empty(), "{category}");
        assert!(r.summary.contains("no most-popular chart"), "{}", r.summary);
    }
}

#[tokio::test]
async fn trending_without_the_api_fails_permanently_saying_why() {
    let handler = TrendingHandler::new(None);
    let task = support::task("trending_scrape", json!({}), support::start_time());
    let store = prismq_testkit::MemoryStore::new(
        std::sync::Arc::new(prismq_testkit::FakeClock::new(support::start_time())),
        prismq_domain::RetryPolicy::default(),
    );
    let ctx = prismq_domain::TaskContext::new(
        task.id,
        prismq_domain::CancelSignal::new(),
        std::sync::Arc::new(store),
    );
    use prismq_domain::TaskHandler;
    let e = handler.handle(&task, &ctx).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent);
    assert!(
        e.message.contains("July 2025") && e.message.contains("youtube.api_key"),
        "{e}"
    );
}

#[tokio::test]
async fn keyword_search_ranks_and_decodes() {
    let (server, h) = harness("K").await;
    let r = h
        .run(
            "keyword_search",
            json!({"query": "surf trip", "top_n": 60, "sort_by": "views", "published_within": "week",
                   "duration": "short", "region": "us", "language": "en"}),
        )
        .await
        .unwrap();
    assert_eq!(r.items.len(), 60);
    assert_eq!(r.items[0].title, "BEST SURF TRIP OF MY LIFE!");
    assert_eq!(
        r.items[1].title,
        "Best Day Of The Year & a Secret Reef – Uluwatu"
    );
    assert_eq!(r.items[0].source, "youtube_keyword");
    for (i, item) in r.items.iter().enumerate() {
        assert_eq!(item.extra["search_rank"], json!(i + 1));
        assert_eq!(item.extra["search_query"], json!("surf trip"));
    }
    let c = counts(&server).await;
    assert_eq!((c["search"], c["videos"]), (2, 2));
    assert_eq!(h.store.used(SEARCH).await.unwrap(), 2);
    assert_eq!(h.store.used(GENERAL).await.unwrap(), 2);
    let q = &queries(&server, "search").await[0];
    assert_eq!(q["type"], "video");
    assert_eq!(q["order"], "viewCount");
    assert_eq!(q["publishedAfter"], "2026-11-13T12:00:00Z");
    assert_eq!(q["videoDuration"], "short");
    assert_eq!(q["regionCode"], "US");
    assert_eq!(q["relevanceLanguage"], "en");
    assert_eq!(q["q"], "surf trip");
}

#[tokio::test]
async fn keyword_search_with_no_results_is_empty() {
    let (_server, h) = harness("K").await;
    let r = h
        .run("keyword_search", json!({"query": "nothing matches"}))
        .await
        .unwrap();
    assert!(r.items.is_empty());
}

#[tokio::test]
async fn api_scrape_keeps_order_and_drops_unknown_ids() {
    let (server, h) = harness("K").await;
    let r = h
        .run(
            "api_scrape",
            json!({"videos": ["https://youtu.be/rTw3pGhYsLM", "zzzzNotThe1", "https://www.youtube.com/watch?v=Kq9MZLmFMHQ"]}),
        )
        .await
        .unwrap();
    let ids: Vec<&str> = r.items.iter().map(|i| i.source_id.as_str()).collect();
    assert_eq!(ids, ["rTw3pGhYsLM", "Kq9MZLmFMHQ"]);
    assert_eq!(r.counters["not_found"], 1);
    assert_eq!(r.items[0].source, "youtube_api");
    assert_eq!(r.items[0].metrics.likes, None, "likes hidden on the Short");
    assert_eq!(r.items[1].duration_secs, Some(754));
    assert_eq!(counts(&server).await["videos"], 1);
    let ids: Vec<String> = (0..120).map(|n| format!("bigc{n:07}")).collect();
    let r = h.run("api_scrape", json!({"videos": ids})).await.unwrap();
    assert_eq!(r.items.len(), 120);
    assert_eq!(counts(&server).await["videos"], 4);
}

#[tokio::test]
async fn key_and_access_errors_are_permanent_with_a_fix() {
    for (key, needle) in [
        ("BAD", "youtube.api_key"),
        ("LEGACYBAD", "youtube.api_key"),
        ("DISABLED", "enable it"),
        ("FORBIDDEN", "restrictions"),
    ] {
        let (server, h) = harness(key).await;
        let e = h
            .run("api_scrape", json!({"videos": ["Kq9MZLmFMHQ"]}))
            .await
            .unwrap_err();
        assert_eq!(e.class, ErrorClass::Permanent, "{key}");
        assert!(e.message.contains(needle), "{key}: {e}");
        assert!(
            !e.message.contains(key) || key == "BAD",
            "{key} leaked: {e}"
        );
        assert_eq!(counts(&server).await["videos"], 1);
    }
}

#[tokio::test]
async fn a_backend_error_is_retried_within_the_attempt() {
    let (server, h) = harness("FLAKY").await;
    let r = h
        .run("api_scrape", json!({"videos": ["Kq9MZLmFMHQ"]}))
        .await
        .unwrap();
    assert_eq!(r.items.len(), 1);
    assert_eq!(
        counts(&server).await["videos"],
        2,
        "one 500, then the answer"
    );
}

#[tokio::test]
async fn quota_exceeded_defers_to_midnight_pacific_and_then_sends_nothing() {
    let (server, h) = harness("QUOTA").await;
    let e = h
        .run("api_scrape", json!({"videos": ["Kq9MZLmFMHQ"]}))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::RetryableAfter(next_midnight()), "{e}");
    assert_eq!(counts(&server).await["videos"], 1);
    let e = h
        .run("channel_scrape", json!({"channel_url": "@Big120"}))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::RetryableAfter(next_midnight()));
    let c = counts(&server).await;
    assert_eq!(
        (c.get("channels"), c["videos"]),
        (None, 1),
        "no request once the bucket is spent"
    );
    // The search bucket is separate.
    assert_eq!(h.store.used(SEARCH).await.unwrap(), 0);
}

#[tokio::test]
async fn the_quota_reset_follows_daylight_saving() {
    for (now, reset) in [
        ("2026-11-01T06:59:59Z", "2026-11-01T07:00:00Z"),
        ("2026-11-01T07:00:00Z", "2026-11-02T08:00:00Z"),
        ("2026-03-08T07:59:59Z", "2026-03-08T08:00:00Z"),
        ("2026-03-08T08:00:00Z", "2026-03-09T07:00:00Z"),
    ] {
        let (_server, base) = FakeApi::start().await;
        let h = Harness::at(config(&base, "QUOTA"), ts(now));
        let e = h
            .run("api_scrape", json!({"videos": ["Kq9MZLmFMHQ"]}))
            .await
            .unwrap_err();
        assert_eq!(e.class, ErrorClass::RetryableAfter(ts(reset)), "at {now}");
    }
}

#[tokio::test]
async fn the_search_bucket_429_defers_search_only() {
    let (server, h) = harness("SEARCHCAP").await;
    let e = h
        .run("keyword_search", json!({"query": "surf trip"}))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::RetryableAfter(next_midnight()), "{e}");
    assert!(e.message.contains("search"), "{e}");
    let e = h
        .run("keyword_search", json!({"query": "surf trip"}))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::RetryableAfter(next_midnight()));
    assert_eq!(
        counts(&server).await["search"],
        1,
        "no second search request"
    );
    // Other methods still work: the general bucket is untouched by the search cap.
    let r = h
        .run("api_scrape", json!({"videos": ["Kq9MZLmFMHQ"]}))
        .await
        .unwrap();
    assert_eq!(r.items.len(), 1);
}

#[tokio::test]
async fn short_term_throttling_retries() {
    let (_server, h) = harness("THROTTLE").await;
    let e = h
        .run("api_scrape", json!({"videos": ["Kq9MZLmFMHQ"]}))
        .await
        .unwrap_err();
    let after = support::start_time()
        .checked_add(jiff::SignedDuration::from_secs(120))
        .unwrap();
    assert_eq!(
        e.class,
        ErrorClass::RetryableAfter(after),
        "Retry-After honoured: {e}"
    );
    let (_server, h) = harness("THROTTLE403").await;
    let e = h
        .run("api_scrape", json!({"videos": ["Kq9MZLmFMHQ"]}))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Retryable, "{e}");
}

#[tokio::test]
async fn a_spent_local_budget_defers_midway_without_a_request() {
    let (server, base) = FakeApi::start().await;
    let mut cfg = config(&base, "K");
    cfg.quota.general_daily_units = 4;
    let h = Harness::new(cfg);
    let e = h
        .run(
            "channel_scrape",
            json!({"channel_url": "@Big120", "top_n": 120}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::RetryableAfter(next_midnight()), "{e}");
    let c = counts(&server).await;
    // channels, playlistItems page 1, its videos batch, page 2; its batch is refused locally.
    assert_eq!((c["channels"], c["playlistItems"], c["videos"]), (1, 2, 1));
    assert_eq!(h.store.used(GENERAL).await.unwrap(), 4);
    assert_eq!(e.partial.len(), 50, "the first batch is kept");
    // Our own count spent the bucket: it is marked, so workers stop claiming its types.
    let marked = |h: &Harness, bucket: &'static str| {
        let store = h.store.clone();
        async move {
            store
                .usage()
                .await
                .unwrap()
                .into_iter()
                .find(|u| u.bucket == bucket)
                .and_then(|u| u.exhausted_until)
        }
    };
    assert_eq!(marked(&h, GENERAL).await, Some(next_midnight()));

    let mut cfg = config(&base, "K");
    cfg.quota.search_daily_units = 1;
    let h = Harness::new(cfg);
    h.run("keyword_search", json!({"query": "surf trip", "top_n": 5}))
        .await
        .unwrap();
    let e = h
        .run("keyword_search", json!({"query": "surf trip", "top_n": 5}))
        .await
        .unwrap_err();
    assert!(matches!(e.class, ErrorClass::RetryableAfter(_)));
    assert_eq!(counts(&server).await["search"], 1);
    assert_eq!(marked(&h, SEARCH).await, Some(next_midnight()));
    assert_eq!(marked(&h, GENERAL).await, None);
}

#[tokio::test]
async fn a_charge_larger_than_what_is_left_marks_nothing() {
    let (_server, base) = FakeApi::start().await;
    let mut cfg = config(&base, "K");
    cfg.quota.general_daily_units = 4;
    cfg.quota.costs.channels.units = 5;
    let h = Harness::new(cfg);
    let e = h
        .run(
            "channel_scrape",
            json!({"channel_url": "@Big120", "top_n": 5}),
        )
        .await
        .unwrap_err();
    assert!(matches!(e.class, ErrorClass::RetryableAfter(_)), "{e}");
    let general = h.store.usage().await.unwrap();
    assert!(
        general.iter().all(|u| u.exhausted_until.is_none()),
        "4 units are left for cheaper calls: {general:?}"
    );
}

#[tokio::test]
async fn each_handler_declares_the_buckets_it_charges() {
    let (_server, base) = FakeApi::start().await;
    let h = Harness::new(config(&base, "K"));
    let buckets = |h: &Harness, t: &str| h.handler(t).quota_buckets();
    assert_eq!(buckets(&h, "channel_scrape"), vec![GENERAL]);
    assert_eq!(buckets(&h, "keyword_search"), vec![SEARCH, GENERAL]);
    assert_eq!(buckets(&h, "api_scrape"), vec![GENERAL]);
    assert_eq!(buckets(&h, "trending_scrape"), vec![GENERAL]);
    // A cost table that files videos.list under the search bucket moves it there.
    let mut cfg = config(&base, "K");
    cfg.quota.costs.videos.bucket = Bucket::Search;
    let h = Harness::new(cfg);
    assert_eq!(buckets(&h, "api_scrape"), vec![SEARCH]);
    assert_eq!(buckets(&h, "channel_scrape"), vec![GENERAL, SEARCH]);
    // yt-dlp charges no quota; trending still uses the API with a key, and nothing without.
    let mut cfg = config(&base, "K");
    cfg.backend = prismq_plugins::Backend::Ytdlp;
    let h = Harness::new(cfg);
    for t in ["channel_scrape", "keyword_search", "api_scrape"] {
        assert!(buckets(&h, t).is_empty(), "{t}");
    }
    assert_eq!(buckets(&h, "trending_scrape"), vec![GENERAL]);
    let mut cfg = config(&base, "K");
    cfg.backend = prismq_plugins::Backend::Ytdlp;
    cfg.api_key = None;
    let h = Harness::new(cfg);
    assert!(buckets(&h, "trending_scrape").is_empty());
}

#[tokio::test]
async fn the_request_timeout_is_retryable() {
    let (server, base) = FakeApi::start().await;
    let cfg = YoutubeConfig {
        request_timeout_secs: 1,
        ..config(&base, "SLOW")
    };
    let h = Harness::new(cfg);
    let started = std::time::Instant::now();
    let e = h
        .run("channel_scrape", json!({"channel_url": "@Big120"}))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Retryable, "{e}");
    assert!(e.message.contains("timed out"), "{e}");
    // Three tries of at most the 1 s timeout each, 0.75-1.5 s of backoff between them.
    assert_eq!(counts(&server).await["channels"], 3);
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_millis(5_500), "{took:?}");
}

#[tokio::test]
async fn the_response_size_cap_is_enforced() {
    let (_server, base) = FakeApi::start().await;
    let cfg = YoutubeConfig {
        max_response_bytes: 65_536,
        ..config(&base, "HUGE")
    };
    let h = Harness::new(cfg);
    let e = h
        .run("api_scrape", json!({"videos": ["Kq9MZLmFMHQ"]}))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent, "{e}");
    assert!(e.message.contains("65536-byte cap"), "{e}");
}

#[tokio::test]
async fn network_errors_are_retryable_and_never_show_the_key() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let h = Harness::new(config(
        &format!("http://127.0.0.1:{port}/youtube/v3/"),
        "SECRETKEY123",
    ));
    let e = h
        .run("api_scrape", json!({"videos": ["Kq9MZLmFMHQ"]}))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Retryable, "{e}");
    assert!(!e.message.contains("SECRETKEY123"), "{e}");
}

#[test]
fn every_error_fixture_is_classified() {
    let at = ts("2026-11-20T12:00:00Z");
    let load = |name: &str| {
        std::fs::read(format!(
            "{}/tests/fixtures/data_api/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let cases: Vec<(&str, u16, Bucket, Classified)> = vec![
        (
            "error_quota_exceeded",
            403,
            Bucket::General,
            Classified::QuotaExhausted(Bucket::General),
        ),
        (
            "error_search_bucket_429",
            429,
            Bucket::Search,
            Classified::QuotaExhausted(Bucket::Search),
        ),
        (
            "error_search_bucket_429",
            429,
            Bucket::General,
            Classified::QuotaExhausted(Bucket::Search),
        ),
        (
            "error_rate_limit_429",
            429,
            Bucket::General,
            Classified::Error(SourceError::RateLimited { retry_at: Some(at) }),
        ),
        (
            "error_api_key_invalid",
            400,
            Bucket::General,
            Classified::Error(SourceError::KeyInvalid),
        ),
        (
            "error_key_invalid_legacy",
            400,
            Bucket::General,
            Classified::Error(SourceError::KeyInvalid),
        ),
        (
            "error_missing_key",
            403,
            Bucket::General,
            Classified::Error(SourceError::Forbidden {
                reason: "forbidden".into(),
            }),
        ),
        (
            "error_access_not_configured",
            403,
            Bucket::General,
            Classified::Error(SourceError::ApiDisabled),
        ),
        (
            "error_forbidden",
            403,
            Bucket::General,
            Classified::Error(SourceError::Forbidden {
                reason: "forbidden".into(),
            }),
        ),
        (
            "error_playlist_not_found",
            404,
            Bucket::General,
            Classified::Error(SourceError::NotFound {
                what: "playlistNotFound".into(),
            }),
        ),
        (
            "error_channel_not_found",
            404,
            Bucket::General,
            Classified::Error(SourceError::NotFound {
                what: "channelNotFound".into(),
            }),
        ),
        (
            "error_video_chart_not_found",
            400,
            Bucket::General,
            Classified::ChartUnavailable,
        ),
        (
            "error_video_chart_not_found",
            404,
            Bucket::General,
            Classified::ChartUnavailable,
        ),
        (
            "error_invalid_parameter",
            400,
            Bucket::Search,
            Classified::Error(SourceError::BadRequest {
                status: 400,
                reason: "invalidParameter".into(),
                location: Some("order".into()),
            }),
        ),
        (
            "error_bad_request_generic",
            400,
            Bucket::Search,
            Classified::Error(SourceError::BadRequest {
                status: 400,
                reason: "badRequest".into(),
                location: None,
            }),
        ),
        (
            "error_unknown_part",
            400,
            Bucket::General,
            Classified::Error(SourceError::BadRequest {
                status: 400,
                reason: "unknownPart".into(),
                location: Some("part".into()),
            }),
        ),
        (
            "error_backend",
            500,
            Bucket::General,
            Classified::Error(SourceError::Transient { status: 500 }),
        ),
    ];
    for (name, status, bucket, want) in cases {
        let retry = if name == "error_rate_limit_429" {
            Some(at)
        } else {
            None
        };
        assert_eq!(classify(status, &load(name), bucket, retry), want, "{name}");
    }
    // Bodies that are not JSON (a proxy's HTML page) are classified by status alone.
    assert_eq!(
        classify(503, b"<html>", Bucket::General, None),
        Classified::Error(SourceError::Transient { status: 503 })
    );
    assert_eq!(
        classify(429, b"", Bucket::General, None),
        Classified::Error(SourceError::RateLimited { retry_at: None })
    );
}

/// Baselines on demand: a trending or search task asked for them returns one
/// `channel_scrape` follow-up per distinct channel (at most 25), on the tab of the video's
/// format, keyed per channel, tab and day, each one the channel handler accepts; none when
/// not asked, and the task's `baselines` parameter wins over the configuration.
#[tokio::test]
async fn baselines_on_demand_ask_for_each_channels_uploads_once() {
    let (_server, h) = harness("K").await;
    let r = h
        .run("trending_scrape", json!({"top_n": 20, "baselines": true}))
        .await
        .unwrap();
    let channels: std::collections::BTreeSet<&str> = r
        .items
        .iter()
        .filter_map(|i| i.channel_id.as_deref())
        .collect();
    assert!(!channels.is_empty());
    assert_eq!(r.follow_ups.len(), channels.len().min(25));
    let channel_handler = h.handler("channel_scrape");
    for f in &r.follow_ups {
        let c = f.unless_channel_has_baseline.as_deref().unwrap();
        assert!(channels.contains(c), "{c}");
        assert_eq!(f.task.task_type.as_str(), "channel_scrape");
        assert_eq!(f.task.params["top_n"], 50);
        assert_eq!(f.task.params["tab"], "videos");
        assert_eq!(
            f.task.idempotency_key.as_deref(),
            Some(format!("baseline:{c}:videos:2026-11-20").as_str())
        );
        channel_handler
            .validate(f.task.params.as_object().unwrap())
            .expect("the follow-up's params are valid");
    }
    let none = h
        .run("trending_scrape", json!({"top_n": 20}))
        .await
        .unwrap();
    assert!(none.follow_ups.is_empty(), "off by default");
    let searched = h
        .run(
            "keyword_search",
            json!({"query": "surf trip", "top_n": 50, "baselines": "true"}),
        )
        .await
        .unwrap();
    assert!(!searched.follow_ups.is_empty());
    assert!(searched.follow_ups.len() <= 25);

    let (_server2, base) = FakeApi::start().await;
    let mut on = config(&base, "K");
    on.baselines_on_demand = true;
    let h = Harness::new(on);
    let r = h.run("trending_scrape", json!({"top_n": 5})).await.unwrap();
    assert!(
        !r.follow_ups.is_empty(),
        "[youtube] baselines_on_demand = true"
    );
    let r = h
        .run("trending_scrape", json!({"top_n": 5, "baselines": false}))
        .await
        .unwrap();
    assert!(r.follow_ups.is_empty(), "the task's parameter wins");
    let e = h
        .handler("trending_scrape")
        .validate(json!({"baselines": "yes"}).as_object().unwrap())
        .unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.accepted.as_str()),
        ("baselines", "true or false")
    );
}
