//! `videoCategories.list` and `trending_scrape`'s category check against the stand-in: a
//! known category by name or id runs and names every item's category; one the region lacks,
//! or one that is not assignable, is a permanent error listing what exists, sent no chart
//! request; each task costs one extra unit. The stand-in itself answers like the API:
//! the fixture's exact shape, and 400s for malformed requests.

mod support;

use prismq_domain::ports::QuotaLedger;
use prismq_domain::ErrorClass;
use prismq_testkit::handler::check_task_error;
use serde_json::{json, Value};
use support::fake_api::{counts, queries, FakeApi};
use support::{config, Harness};

const GENERAL: &str = "youtube_data_api.general";

async fn harness(key: &str) -> (wiremock::MockServer, Harness) {
    let (server, base) = FakeApi::start().await;
    (server, Harness::new(config(&base, key)))
}

#[tokio::test]
async fn a_known_category_runs_and_items_carry_its_title() {
    for category in [json!("music"), json!("10"), json!(10)] {
        let (server, h) = harness("K").await;
        let r = h
            .run(
                "trending_scrape",
                json!({"region": "us", "category": category, "top_n": 5}),
            )
            .await
            .unwrap();
        assert_eq!(r.items.len(), 5, "{category}");
        for (i, item) in r.items.iter().enumerate() {
            assert_eq!(item.extra["trending_category"], json!("10"));
            assert_eq!(item.extra["trending_category_title"], json!("Music"));
            assert_eq!(item.extra["trending_rank"], json!(i + 1));
        }
        // Each item's own category, named from the region's list next to its id.
        assert_eq!(r.items[0].extra["category_id"], json!("10"));
        assert_eq!(r.items[0].extra["category"], json!("Music"));
        assert_eq!(r.items[1].extra["category_id"], json!("28"));
        assert_eq!(r.items[1].extra["category"], json!("Science & Technology"));
        assert!(r.summary.contains("category 10 Music"), "{}", r.summary);

        // One videoCategories request (part=snippet, regionCode, no id), then one page.
        let c = counts(&server).await;
        assert_eq!((c["videoCategories"], c["videos"]), (1, 1), "{category}");
        let q = &queries(&server, "videoCategories").await[0];
        assert_eq!(q["part"], "snippet");
        assert_eq!(q["regionCode"], "US");
        assert!(!q.contains_key("id") && !q.contains_key("hl"), "{q:?}");
        assert_eq!(h.store.used(GENERAL).await.unwrap(), 2);
        assert_eq!(r.counters["requests.videoCategories"], 1);
        assert_eq!(r.counters["requests.videos"], 1);
        assert_eq!(r.counters[&format!("quota_units.{GENERAL}")], 2);
    }
}

#[tokio::test]
async fn the_whole_chart_costs_one_unit_and_still_names_each_items_category() {
    let (server, h) = harness("K").await;
    for params in [json!({"top_n": 3}), json!({"top_n": 3, "category": "all"})] {
        let r = h.run("trending_scrape", params).await.unwrap();
        assert_eq!(r.items[0].extra["trending_category"], json!("0"));
        assert_eq!(
            r.items[0].extra["trending_category_title"],
            json!("All categories")
        );
        // Titles from the built-in US list: no videoCategories.list call.
        assert_eq!(r.items[0].extra["category"], json!("Music"));
        assert_eq!(r.items[2].extra["category"], json!("Science & Technology"));
        assert_eq!(r.counters[&format!("quota_units.{GENERAL}")], 1);
        assert!(!r.counters.contains_key("requests.videoCategories"));
    }
    let c = counts(&server).await;
    assert_eq!((c.get("videoCategories"), c["videos"]), (None, 2));
    assert_eq!(h.store.used(GENERAL).await.unwrap(), 2);
}

#[tokio::test]
async fn a_category_the_region_lacks_is_permanent_and_lists_what_it_has() {
    let (server, h) = harness("K").await;
    let e = h
        .run("trending_scrape", json!({"country": "gb", "category": "3"}))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent, "{e}");
    check_task_error(&e);
    assert!(
        e.message.contains("category 3 does not exist in region GB"),
        "{e}"
    );
    assert!(
        e.message.contains("10 Music") && e.message.contains("20 Gaming"),
        "lists the valid ids and titles: {e}"
    );
    assert!(
        e.message.contains("29 Nonprofits & Activism") && !e.message.contains("Trailers"),
        "all 15 assignable ones, and only those: {e}"
    );
    assert!(e.message.len() < 500, "{} chars: {e}", e.message.len());
    let c = counts(&server).await;
    assert_eq!((c["videoCategories"], c.get("videos")), (1, None));
    assert_eq!(h.store.used(GENERAL).await.unwrap(), 1);
}

#[tokio::test]
async fn an_unassignable_category_is_permanent_and_says_why() {
    let (server, h) = harness("K").await;
    let e = h
        .run("trending_scrape", json!({"category": 44}))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent, "{e}");
    assert!(
        e.message
            .contains("category 44 (Trailers) exists in region US but is not assignable"),
        "{e}"
    );
    assert_eq!(counts(&server).await.get("videos"), None);
}

#[tokio::test]
async fn a_spent_quota_on_the_category_call_defers_without_a_chart_request() {
    let (server, h) = harness("QUOTA").await;
    let e = h
        .run("trending_scrape", json!({"category": "gaming"}))
        .await
        .unwrap_err();
    assert!(matches!(e.class, ErrorClass::RetryableAfter(_)), "{e}");
    let c = counts(&server).await;
    assert_eq!((c["videoCategories"], c.get("videos")), (1, None));
}

async fn get(server: &wiremock::MockServer, query: &str) -> (u16, Value) {
    let url = format!("{}/youtube/v3/videoCategories?{query}", server.uri());
    let resp = reqwest::get(url).await.unwrap();
    let status = resp.status().as_u16();
    (
        status,
        serde_json::from_str(&resp.text().await.unwrap()).unwrap(),
    )
}

#[tokio::test]
async fn the_stand_in_answers_like_the_api() {
    let (server, _base) = FakeApi::start().await;
    let (status, body) = get(&server, "part=snippet&regionCode=US&key=K").await;
    assert_eq!(status, 200);
    assert_eq!(body["kind"], "youtube#videoCategoryListResponse");
    assert!(body.get("pageInfo").is_none(), "the real answer has none");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 32);
    assert_eq!(
        items
            .iter()
            .filter(|c| c["snippet"]["assignable"] == json!(true))
            .count(),
        15
    );
    for c in items {
        assert_eq!(c["kind"], "youtube#videoCategory");
        assert!(c["etag"].as_str().is_some_and(|e| e.len() == 27), "{c}");
        assert_eq!(c["snippet"]["channelId"], "UCBR8-60-B28hp2BmDPdntcQ");
    }
    assert_eq!(items[0]["id"], "1");
    assert_eq!(items[0]["snippet"]["title"], "Film & Animation");

    let (status, body) = get(&server, "part=snippet&id=10,44&key=K").await;
    assert_eq!(status, 200);
    let titles: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["snippet"]["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Music", "Trailers"]);

    // Malformed requests: no filter, both filters, no part, an unknown part, no key.
    for (query, code, reason) in [
        ("part=snippet&key=K", 400, "badRequest"),
        ("part=snippet&regionCode=US&id=10&key=K", 400, "badRequest"),
        ("regionCode=US&key=K", 400, "badRequest"),
        (
            "part=contentDetails&regionCode=US&key=K",
            400,
            "unknownPart",
        ),
        ("part=snippet&regionCode=US", 403, "forbidden"),
    ] {
        let (status, body) = get(&server, query).await;
        assert_eq!(status, code, "{query}: {body}");
        assert_eq!(body["error"]["errors"][0]["reason"], reason, "{query}");
    }
    assert_eq!(counts(&server).await["videoCategories"], 7);
}
