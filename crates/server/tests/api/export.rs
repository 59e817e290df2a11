//! `GET /v1/export/results`: a streamed export of several storage pages, in the listing's
//! order, as NDJSON and as CSV, hostile titles intact, filters and refusals.

use serde_json::Value;

use prismq_domain::ports::Scope;
use prismq_domain::ContentItem;

use crate::support::Server;

/// The route as the OpenAPI document names it.
const ROUTE: &str = "/v1/export/results";

/// More than two of the export's storage pages.
const VIDEOS: usize = 2_345;

async fn seeded() -> Server {
    seed(Server::start().await).await
}

async fn seed(s: Server) -> Server {
    let items: Vec<ContentItem> = (0..VIDEOS)
        .map(|n| {
            let title = match n % 3 {
                0 => format!("<script>alert({n})</script>, \"quoted\""),
                1 => format!("line one\nline two {n}"),
                _ => format!("plain {n}"),
            };
            let mut item = ContentItem::new("youtube_api", format!("vid{n:08}"), title);
            item.metrics.views = Some(n as i64 * 10);
            item
        })
        .collect();
    for chunk in items.chunks(500) {
        s.app.results.save(None, chunk).await.unwrap();
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_export_streams_every_video_in_the_listings_order() {
    ndjson_flow(seeded().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_export_streams_every_video_in_the_listings_order_on_postgresql() {
    ndjson_flow(seed(Server::start_postgres().await).await).await;
}

async fn ndjson_flow(s: Server) {
    let read = s.key(&[Scope::Read], 1000).await;
    // Through the OpenAPI check: the status and content type are the documented ones.
    let r = s
        .send(
            ROUTE,
            s.client
                .get(s.url("/v1/export/results?order=views"))
                .bearer_auth(&read),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/x-ndjson");
    assert!(
        r.headers.get("content-length").is_none(),
        "a streamed body has no length: {:?}",
        r.headers
    );
    let text = r.text;
    let ids: Vec<String> = text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["item"]["source_id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), VIDEOS);
    let mut expected: Vec<String> = (0..VIDEOS).map(|n| format!("vid{n:08}")).collect();
    expected.reverse(); // most views first
    assert_eq!(ids, expected);
    assert!(text.contains(r#""title":"<script>alert(0)</script>, \"quoted\"""#));

    // A filter that selects nothing is an empty body, not an error.
    let none = s
        .client
        .get(s.url("/v1/export/results?source=youtube_channel"))
        .bearer_auth(&read)
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 200);
    assert_eq!(none.text().await.unwrap(), "");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_export_has_the_header_and_one_record_per_video() {
    let s = seeded().await;
    let read = s.key(&[Scope::Read], 1000).await;
    let r = s
        .send(
            ROUTE,
            s.client
                .get(s.url("/v1/export/results?output=csv&order=recent"))
                .bearer_auth(&read),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        r.headers["content-disposition"],
        "attachment; filename=\"prismq-results.csv\""
    );
    let mut reader = csv::Reader::from_reader(r.text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header, prismq_app::export::CSV_HEADER);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), VIDEOS);
    let mut ids: Vec<&str> = rows.iter().map(|r| &r[1]).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), VIDEOS, "every video once");
    let two_lines = rows.iter().find(|r| &r[1] == "vid00000001").unwrap();
    assert_eq!(&two_lines[2], "line one\nline two 1");

    // Only the header when nothing matches.
    let empty = s
        .client
        .get(s.url("/v1/export/results?output=csv&channel=UCnobody"))
        .bearer_auth(&read)
        .send()
        .await
        .unwrap();
    let text = empty.text().await.unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.starts_with("platform,source_id,title,"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_refuses_bad_filters_and_keys_without_read() {
    let s = Server::start().await;
    let read = s.key(&[Scope::Read], 1000).await;
    for (url, field) in [
        ("/v1/export/results?output=xlsx", "output"),
        ("/v1/export/results?window=2h", "window"),
        ("/v1/export/results?min_score=2&max_score=1", "min_score"),
        ("/v1/export/results?task=-4", "task"),
    ] {
        let bad = s.get(&read, "/v1/export/results", url).await;
        assert_eq!(
            (bad.status, bad.json["error"]["field"].as_str()),
            (422, Some(field)),
            "{url}: {}",
            bad.text
        );
        assert!(bad.json["error"]["accepted"].is_string(), "{url}");
    }
    let unknown = s
        .get(&read, "/v1/export/results", "/v1/export/results?limit=5")
        .await;
    assert_eq!(unknown.status, 422, "{}", unknown.text);
    let enqueue_only = s.key(&[Scope::Enqueue], 1000).await;
    let denied = s
        .get(&enqueue_only, "/v1/export/results", "/v1/export/results")
        .await;
    assert_eq!(denied.status, 403);
    let anonymous = s
        .send(
            "/v1/export/results",
            s.client.get(s.url("/v1/export/results")),
        )
        .await;
    assert_eq!(anonymous.status, 401);
    s.stop().await;
}
