//! A channel task's content choice (long-form videos, Shorts, past streams, all uploads)
//! on both backends: the Data API stand-in (the `UULF…`, `UUSH…`, `UULV…` and `UU…`
//! playlists) and the fake yt-dlp (the `/videos`, `/shorts` and `/streams` tabs and the
//! `UU…` playlist) serve the same channel (`tests/fixtures/channel_tabs.json`), and return
//! the same videos in the same order for the same choice, with `is_short` only where the
//! playlist, tab or yt-dlp's `media_type` says it.
#![cfg(unix)]

mod support;

#[path = "../../../tests/e2e/fake_ytdlp.rs"]
mod fake_ytdlp;

use prismq_domain::ports::QuotaLedger;
use prismq_domain::ContentItem;
use prismq_plugins::{Backend, YoutubeConfig};
use serde_json::{json, Value};
use support::fake_api::{channel_tabs_model, counts, queries, FakeApi, TABS_ID};
use support::{config, Harness};

/// The model's upload ids of `kind` (`None`: all), newest first.
fn model_ids(kind: Option<&str>) -> Vec<String> {
    channel_tabs_model()["uploads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| kind.is_none_or(|k| u["kind"] == k))
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect()
}

fn ids(items: &[ContentItem]) -> Vec<String> {
    items.iter().map(|i| i.source_id.clone()).collect()
}

fn shorts(items: &[ContentItem]) -> Vec<Option<bool>> {
    items
        .iter()
        .map(|i| i.extra.get("is_short").and_then(Value::as_bool))
        .collect()
}

fn ytdlp(fake: &fake_ytdlp::FakeYtdlp) -> Harness {
    Harness::new(YoutubeConfig {
        backend: Backend::Ytdlp,
        ytdlp_path: fake.path(),
        ..YoutubeConfig::default()
    })
}

#[tokio::test]
async fn both_backends_return_the_same_set_for_every_choice() {
    let (_server, base) = FakeApi::start().await;
    let api = Harness::new(config(&base, "K"));
    let fake = fake_ytdlp::FakeYtdlp::new(0);
    let yt = ytdlp(&fake);
    for (tab, kind) in [
        ("videos", Some("long")),
        ("shorts", Some("short")),
        ("streams", Some("stream")),
        ("all", None),
    ] {
        for channel in ["@TabsDemo", TABS_ID] {
            let params = json!({"channel_url": channel, "tab": tab, "top_n": 50});
            let a = api.run("channel_scrape", params.clone()).await.unwrap();
            let y = yt.run("channel_scrape", params).await.unwrap();
            let want = model_ids(kind);
            assert!(!want.is_empty());
            assert_eq!(ids(&a.items), want, "data_api {tab} {channel}");
            assert_eq!(ids(&y.items), want, "ytdlp {tab} {channel}");
            for (n, item) in a.items.iter().chain(&y.items).enumerate() {
                assert_eq!(item.extra["tab"], json!(tab));
                let rank = n % want.len() + 1;
                assert_eq!(item.extra["upload_rank"], json!(rank), "{tab} {item:?}");
            }
            match kind {
                // The playlist or tab tells: every item says so, on both backends.
                Some(k) => {
                    let s = Some(k == "short");
                    assert!(shorts(&a.items).iter().all(|x| *x == s), "{tab}");
                    assert!(shorts(&y.items).iter().all(|x| *x == s), "{tab}");
                }
                None => {
                    // UU… says nothing per video on the API: absent, never guessed from
                    // the duration. yt-dlp's media_type knows each one.
                    assert!(shorts(&a.items).iter().all(Option::is_none), "{a:?}");
                    let want: Vec<Option<bool>> = channel_tabs_model()["uploads"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|u| Some(u["kind"] == "short"))
                        .collect();
                    assert_eq!(shorts(&y.items), want);
                }
            }
        }
    }
}

#[tokio::test]
async fn the_data_api_reads_the_choices_playlist_at_the_same_cost_per_page() {
    let (server, base) = FakeApi::start().await;
    let api = Harness::new(config(&base, "K"));
    for tab in ["videos", "shorts", "streams", "all"] {
        api.run(
            "channel_scrape",
            json!({"channel_url": "@TabsDemo", "tab": tab, "top_n": 3}),
        )
        .await
        .unwrap();
    }
    let playlists: Vec<String> = queries(&server, "playlistItems")
        .await
        .iter()
        .map(|q| q["playlistId"].clone())
        .collect();
    let suffix = &TABS_ID[2..];
    assert_eq!(
        playlists,
        [
            format!("UULF{suffix}"),
            format!("UUSH{suffix}"),
            format!("UULV{suffix}"),
            format!("UU{suffix}"),
        ]
    );
    // 1 channels + 1 playlistItems page + 1 videos batch per task: 3 units, as before.
    let c = counts(&server).await;
    assert_eq!((c["channels"], c["playlistItems"], c["videos"]), (4, 4, 4));
    assert_eq!(
        api.store.used("youtube_data_api.general").await.unwrap(),
        12
    );
}

#[tokio::test]
async fn ytdlp_lists_the_choices_tab_or_the_uploads_playlist() {
    let fake = fake_ytdlp::FakeYtdlp::new(0);
    let yt = ytdlp(&fake);
    for tab in ["videos", "shorts", "streams", "all"] {
        yt.run(
            "channel_scrape",
            json!({"channel_url": "@TabsDemo", "tab": tab, "top_n": 2}),
        )
        .await
        .unwrap();
    }
    yt.run(
        "channel_scrape",
        json!({"channel_url": TABS_ID, "tab": "all", "top_n": 2}),
    )
    .await
    .unwrap();
    let listed: Vec<String> = fake
        .runs()
        .into_iter()
        .filter(|r| r.iter().any(|a| a == "-J"))
        .map(|r| r.last().cloned().unwrap())
        .collect();
    let uu = format!("https://www.youtube.com/playlist?list=UU{}", &TABS_ID[2..]);
    assert_eq!(
        listed,
        [
            "https://www.youtube.com/@TabsDemo/videos".to_owned(),
            "https://www.youtube.com/@TabsDemo/shorts".to_owned(),
            "https://www.youtube.com/@TabsDemo/streams".to_owned(),
            // All uploads by handle: the channel page first (-I 0: its id only), then UU….
            "https://www.youtube.com/@TabsDemo".to_owned(),
            uu.clone(),
            // By id: the playlist at once.
            uu,
        ]
    );
}

#[tokio::test]
async fn a_tab_in_the_channel_url_chooses_and_another_is_refused() {
    let (_server, base) = FakeApi::start().await;
    let api = Harness::new(config(&base, "K"));
    let r = api
        .run(
            "channel_scrape",
            json!({"channel_url": "https://www.youtube.com/@TabsDemo/shorts"}),
        )
        .await
        .unwrap();
    assert_eq!(ids(&r.items), model_ids(Some("short")));
    let r = api
        .run(
            "channel_scrape",
            json!({"channel_url": format!("https://www.youtube.com/channel/{TABS_ID}/streams")}),
        )
        .await
        .unwrap();
    assert_eq!(ids(&r.items), model_ids(Some("stream")));
    let handler = api.handler("channel_scrape");
    for (params, field, says) in [
        (
            json!({"channel_url": "https://www.youtube.com/@TabsDemo/featured"}),
            "channel_url",
            "/featured",
        ),
        (
            json!({"channel_url": "https://www.youtube.com/@TabsDemo/community"}),
            "channel_url",
            "/community",
        ),
        (
            json!({"channel_url": "https://www.youtube.com/@TabsDemo/shorts", "tab": "videos"}),
            "tab",
            "ends in /shorts",
        ),
    ] {
        let e = handler.validate(params.as_object().unwrap()).unwrap_err();
        assert_eq!(e.field, field, "{e}");
        assert!(e.problem.contains(says), "{e}");
        assert!(
            e.accepted.contains("/videos, /shorts or /streams") || field == "tab",
            "{e}"
        );
    }
}

#[tokio::test]
async fn a_channel_without_the_choice_is_an_empty_answer() {
    let (_server, base) = FakeApi::start().await;
    let api = Harness::new(config(&base, "K"));
    // Big120 has long-form uploads only: no UULV… playlist (404). yt-dlp's missing tab is
    // the same empty answer (tests/ytdlp.rs).
    let r = api
        .run(
            "channel_scrape",
            json!({"channel_url": "@Big120", "tab": "streams"}),
        )
        .await
        .unwrap();
    assert!(r.items.is_empty());
    assert!(
        r.summary.contains("no past live streams playlist"),
        "{}",
        r.summary
    );
}
