//! The handlers on the yt-dlp backend, against a fake `yt-dlp` script written into a temp
//! dir: it records its arguments, prints fixture JSON per requested video, writes chosen
//! stderr lines, exits with chosen codes, and can sleep past the time limit.
#![cfg(unix)]

mod support;

use prismq_domain::ErrorClass;
use prismq_plugins::{Backend, YoutubeConfig};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use support::Harness;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/ytdlp/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// What the fake does.
#[derive(Default)]
struct Scenario {
    /// Listing (`-J`) stdout fixture; `None` prints nothing.
    listing: Option<Value>,
    listing_stderr: &'static str,
    listing_code: i32,
    /// Extra stderr on detail runs (before the per-video lines).
    details_stderr: &'static str,
    details_code: Option<i32>,
    sleep_secs: u32,
    stderr_flood_bytes: usize,
    /// A detail run asking for this id fails with the bot check (exit 1).
    blocked_id: &'static str,
    /// More `-j` objects the detail runs know, besides the four built in.
    extra_videos: Vec<Value>,
}

struct Fake {
    dir: tempfile::TempDir,
}

impl Fake {
    fn new(s: Scenario) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        if let Some(listing) = &s.listing {
            std::fs::write(d.join("listing.json"), listing.to_string()).unwrap();
        }
        // Per-video JSON, one line each, as `-j` prints them.
        let full = fixture("video_full");
        let mut videos = vec![full.clone()];
        let mut live = full.clone();
        live["id"] = json!("pQ7vGf3x2Lk");
        live["title"] = json!("Live: Google Developer Keynote");
        live["live_status"] = json!("was_live");
        live["duration"] = json!(5412);
        live["timestamp"] = json!(1_700_000_000);
        videos.push(live);
        let mut short = full.clone();
        short["id"] = json!("rTw3pGhYsLM");
        short["media_type"] = json!("short");
        short["like_count"] = Value::Null;
        short["duration"] = json!(58);
        videos.push(short);
        let mut surf = full;
        surf["id"] = json!("b_q5GhinG10");
        surf["title"] = json!("BEST SURF TRIP OF MY LIFE!");
        videos.push(surf);
        videos.extend(s.extra_videos.iter().cloned());
        for v in videos {
            let id = v["id"].as_str().unwrap().to_string();
            std::fs::write(d.join(format!("v_{id}.json")), v.to_string()).unwrap();
        }
        std::fs::write(d.join("listing_stderr.txt"), s.listing_stderr).unwrap();
        std::fs::write(d.join("details_stderr.txt"), s.details_stderr).unwrap();
        let dq = d.display();
        let flood = if s.stderr_flood_bytes > 0 {
            format!(
                "head -c {} /dev/zero | tr '\\0' 'x' >&2",
                s.stderr_flood_bytes
            )
        } else {
            String::new()
        };
        let sleep = if s.sleep_secs > 0 {
            format!("exec sleep {}", s.sleep_secs)
        } else {
            String::new()
        };
        let details_code = s
            .details_code
            .map(|c| format!("rc={c}"))
            .unwrap_or_default();
        let script = format!(
            r#"#!/bin/sh
echo $$ > '{dq}/pid'
for a in "$@"; do printf '%s\n' "$a" >> '{dq}/args.log'; done
echo '----' >> '{dq}/args.log'
echo 'WARNING: [youtube] No supported JavaScript runtime could be found.' >&2
{flood}
{sleep}
case " $* " in
  *" -J "*)
    cat '{dq}/listing_stderr.txt' >&2
    [ -f '{dq}/listing.json' ] && cat '{dq}/listing.json'
    exit {listing_code} ;;
esac
cat '{dq}/details_stderr.txt' >&2
rc=0
for a in "$@"; do
  case "$a" in
    https://www.youtube.com/watch\?v=*)
      id="${{a#*v=}}"
      if [ "$id" = '{blocked}' ]; then
        echo "ERROR: [youtube] $id: Sign in to confirm you’re not a bot. Use --cookies-from-browser or --cookies for the authentication." >&2
        exit 1; fi
      if [ -f "{dq}/v_$id.json" ]; then cat "{dq}/v_$id.json"; echo; else
        echo "ERROR: [youtube] $id: Video unavailable. This video has been removed by the uploader" >&2; rc=1; fi ;;
  esac
done
{details_code}
exit $rc
"#,
            listing_code = s.listing_code,
            blocked = if s.blocked_id.is_empty() {
                "-"
            } else {
                s.blocked_id
            },
        );
        let path = d.join("yt-dlp");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Fake { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("yt-dlp")
    }

    /// Each run's arguments.
    fn runs(&self) -> Vec<Vec<String>> {
        let text = std::fs::read_to_string(self.dir.path().join("args.log")).unwrap_or_default();
        text.split("----\n")
            .filter(|r| !r.is_empty())
            .map(|r| r.lines().map(str::to_string).collect())
            .collect()
    }

    fn harness(&self, timeout_secs: u64) -> Harness {
        Harness::new(YoutubeConfig {
            backend: Backend::Ytdlp,
            ytdlp_path: self.path(),
            ytdlp_timeout_secs: timeout_secs,
            ..YoutubeConfig::default()
        })
    }
}

fn after_double_dash(run: &[String]) -> Vec<String> {
    let i = run.iter().position(|a| a == "--").expect("a -- separator");
    run[i + 1..].to_vec()
}

#[tokio::test]
async fn channel_listing_then_details() {
    let fake = Fake::new(Scenario {
        listing: Some(fixture("channel_videos_flat")),
        ..Scenario::default()
    });
    let h = fake.harness(30);
    let r = h
        .run(
            "channel_scrape",
            json!({"channel_url": "GoogleDevelopers", "top_n": 2}),
        )
        .await
        .unwrap();
    let ids: Vec<&str> = r.items.iter().map(|i| i.source_id.as_str()).collect();
    assert_eq!(ids, ["Kq9MZLmFMHQ", "pQ7vGf3x2Lk"]);
    assert_eq!(r.items[0].source, "youtube_channel");
    assert_eq!(r.items[0].metrics.likes, Some(1520));
    assert_eq!(r.items[0].extra["category_id"], json!("28"));
    assert_eq!(r.items[1].extra["live_status"], json!("was_live"));
    assert_eq!(r.items[0].extra["backend"], json!("ytdlp"));
    let runs = fake.runs();
    assert_eq!(runs.len(), 2);
    assert!(runs[0].starts_with(&["--flat-playlist".into(), "-J".into()]));
    assert!(runs[0].windows(2).any(|w| w == ["-I", ":2"]));
    assert_eq!(
        after_double_dash(&runs[0]),
        ["https://www.youtube.com/@GoogleDevelopers/videos"]
    );
    assert!(
        runs[1].contains(&"-j".to_string()) && runs[1].contains(&"--skip-download".to_string())
    );
    assert_eq!(
        after_double_dash(&runs[1]),
        [
            "https://www.youtube.com/watch?v=Kq9MZLmFMHQ",
            "https://www.youtube.com/watch?v=pQ7vGf3x2Lk"
        ]
    );
}

#[tokio::test]
async fn max_age_days_filters_on_the_details() {
    let fake = Fake::new(Scenario {
        listing: Some(fixture("channel_videos_flat")),
        ..Scenario::default()
    });
    let h = fake.harness(30);
    let r = h
        .run(
            "channel_scrape",
            json!({"channel_url": "@GoogleDevelopers", "max_age_days": 30}),
        )
        .await
        .unwrap();
    let ids: Vec<&str> = r.items.iter().map(|i| i.source_id.as_str()).collect();
    assert_eq!(
        ids,
        ["Kq9MZLmFMHQ"],
        "the 2023 live stream is older than 30 days"
    );
}

#[tokio::test]
async fn an_unavailable_video_is_skipped_and_the_rest_kept() {
    let fake = Fake::new(Scenario::default());
    let h = fake.harness(30);
    let r = h
        .run("api_scrape", json!({"videos": ["Kq9MZLmFMHQ", "dQw4w9WgXcZ", "https://www.youtube.com/shorts/rTw3pGhYsLM"]}))
        .await
        .unwrap();
    let ids: Vec<&str> = r.items.iter().map(|i| i.source_id.as_str()).collect();
    assert_eq!(ids, ["Kq9MZLmFMHQ", "rTw3pGhYsLM"]);
    assert_eq!(r.counters["skipped_unavailable"], 1);
    assert_eq!(r.items[1].metrics.likes, None);
    assert_eq!(
        r.items[1].url.as_deref(),
        Some("https://www.youtube.com/shorts/rTw3pGhYsLM")
    );
    assert_eq!(r.items[0].source, "youtube_api");
}

#[tokio::test]
async fn a_missing_channel_is_permanent() {
    let fake = Fake::new(Scenario {
        listing_stderr: "ERROR: [youtube:tab] @nosuchhandle12345: Unable to download webpage: HTTP Error 404: Not Found (caused by <HTTPError 404: Not Found>)\n",
        listing_code: 1,
        ..Scenario::default()
    });
    let e = fake
        .harness(30)
        .run(
            "channel_scrape",
            json!({"channel_url": "@nosuchhandle12345"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent, "{e}");
    assert!(e.message.contains("@nosuchhandle12345"), "{e}");
}

#[tokio::test]
async fn a_missing_shorts_tab_is_an_empty_success() {
    let fake = Fake::new(Scenario {
        listing_stderr: "ERROR: [youtube:tab] UC_x5XG1OV2P6uZZ5FSM9Ttw: This channel does not have a shorts tab\n",
        listing_code: 1,
        ..Scenario::default()
    });
    let r = fake
        .harness(30)
        .run(
            "channel_scrape",
            json!({"channel_url": "UC_x5XG1OV2P6uZZ5FSM9Ttw", "tab": "shorts"}),
        )
        .await
        .unwrap();
    assert!(r.items.is_empty());
    assert_eq!(
        after_double_dash(&fake.runs()[0]),
        ["https://www.youtube.com/channel/UC_x5XG1OV2P6uZZ5FSM9Ttw/shorts"]
    );
}

#[tokio::test]
async fn the_bot_check_and_429_are_retryable() {
    for line in [
        "ERROR: [youtube] tpUr8xVxj-w: Sign in to confirm you\u{2019}re not a bot. Use --cookies-from-browser or --cookies for the authentication.\n",
        "ERROR: [youtube:tab] @GoogleDevelopers: Unable to download API page: HTTP Error 429: Too Many Requests (caused by <HTTPError 429: Too Many Requests>)\n",
    ] {
        let fake = Fake::new(Scenario {
            listing: Some(fixture("channel_videos_flat")),
            details_stderr: line,
            details_code: Some(1),
            ..Scenario::default()
        });
        let e = fake
            .harness(30)
            .run("channel_scrape", json!({"channel_url": "@GoogleDevelopers"}))
            .await
            .unwrap_err();
        assert_eq!(e.class, ErrorClass::Retryable, "{e}");
    }
}

#[tokio::test]
async fn bad_usage_and_a_missing_binary_are_permanent() {
    let fake = Fake::new(Scenario {
        listing_stderr:
            "Usage: yt-dlp [OPTIONS] URL [URL...]\n\nyt-dlp: error: no such option: --bogus\n",
        listing_code: 2,
        ..Scenario::default()
    });
    let e = fake
        .harness(30)
        .run("keyword_search", json!({"query": "surf trip"}))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent, "{e}");
    assert!(e.message.contains("exit 2"), "{e}");

    let h = Harness::new(YoutubeConfig {
        backend: Backend::Ytdlp,
        ytdlp_path: Path::new("/nonexistent/yt-dlp").to_path_buf(),
        ..YoutubeConfig::default()
    });
    let e = h
        .run("api_scrape", json!({"videos": ["Kq9MZLmFMHQ"]}))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent, "{e}");
    assert!(e.message.contains("youtube.ytdlp_path"), "{e}");
}

#[tokio::test]
async fn search_ranks_and_option_like_queries_stay_arguments() {
    let fake = Fake::new(Scenario {
        listing: Some(fixture("search_flat")),
        ..Scenario::default()
    });
    let h = fake.harness(30);
    let r = h
        .run(
            "keyword_search",
            json!({"query": "--exec=touch /tmp/pwned", "top_n": 10}),
        )
        .await
        .unwrap();
    assert_eq!(r.items.len(), 1);
    assert_eq!(r.items[0].extra["search_rank"], json!(1));
    assert_eq!(r.items[0].source, "youtube_keyword");
    assert_eq!(
        after_double_dash(&fake.runs()[0]),
        ["ytsearch10:--exec=touch /tmp/pwned"]
    );

    let r = h
        .run(
            "keyword_search",
            json!({"query": "surf trip", "sort_by": "views", "top_n": 5}),
        )
        .await
        .unwrap();
    assert_eq!(r.items.len(), 1);
    assert_eq!(
        after_double_dash(&fake.runs()[2]),
        ["https://www.youtube.com/results?search_query=surf+trip&sp=CAMSAhAB"]
    );
}

/// A search's `/shorts/` URL marks a Short the details did not classify; the details'
/// `media_type` decides otherwise; a duration never does.
#[tokio::test]
async fn search_shorts_come_from_the_listing_url_or_media_type_never_the_duration() {
    let mut no_media_type = fixture("video_full");
    no_media_type["id"] = json!("5FKybfInCw4");
    no_media_type["duration"] = json!(41);
    no_media_type.as_object_mut().unwrap().remove("media_type");
    let mut short_long = fixture("video_full");
    short_long["id"] = json!("dQw4w9WgXcQ");
    short_long["duration"] = json!(95);
    short_long.as_object_mut().unwrap().remove("media_type");
    let mut listing = fixture("search_flat");
    let watch = |id: &str| json!({"_type": "url", "id": id, "url": format!("https://www.youtube.com/watch?v={id}")});
    listing["entries"]
        .as_array_mut()
        .unwrap()
        .extend([watch("rTw3pGhYsLM"), watch("dQw4w9WgXcQ")]);
    let fake = Fake::new(Scenario {
        listing: Some(listing),
        extra_videos: vec![no_media_type, short_long],
        ..Scenario::default()
    });
    let r = fake
        .harness(30)
        .run("keyword_search", json!({"query": "surf trip", "top_n": 4}))
        .await
        .unwrap();
    let got: Vec<(&str, Option<bool>, &str)> = r
        .items
        .iter()
        .map(|i| {
            (
                i.source_id.as_str(),
                i.extra.get("is_short").and_then(Value::as_bool),
                i.url.as_deref().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            // media_type "video".
            (
                "b_q5GhinG10",
                Some(false),
                "https://www.youtube.com/watch?v=b_q5GhinG10"
            ),
            // No media_type, but listed with a /shorts/ URL.
            (
                "5FKybfInCw4",
                Some(true),
                "https://www.youtube.com/shorts/5FKybfInCw4"
            ),
            // media_type "short" though listed with a watch URL.
            (
                "rTw3pGhYsLM",
                Some(true),
                "https://www.youtube.com/shorts/rTw3pGhYsLM"
            ),
            // 95 s, no media_type, a watch URL: unknown.
            (
                "dQw4w9WgXcQ",
                None,
                "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
            ),
        ]
    );
    assert_eq!(r.items[1].extra["search_rank"], json!(2));
    assert_eq!(r.items[0].extra["media_type"], json!("video"));
    assert!(!r.items[1].extra.contains_key("media_type"));
}

#[tokio::test]
async fn trending_without_a_key_explains_what_to_configure() {
    let fake = Fake::new(Scenario::default());
    let e = fake
        .harness(30)
        .run("trending_scrape", json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent);
    assert!(e.message.contains("July 2025"), "{e}");
    assert!(fake.runs().is_empty(), "yt-dlp is never run for trending");
}

#[tokio::test]
async fn the_time_limit_kills_and_reaps_the_child() {
    let fake = Fake::new(Scenario {
        sleep_secs: 30,
        ..Scenario::default()
    });
    let h = fake.harness(1);
    let started = std::time::Instant::now();
    let e = h
        .run("api_scrape", json!({"videos": ["Kq9MZLmFMHQ"]}))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(e.class, ErrorClass::Retryable, "{e}");
    assert!(e.message.contains("timed out"), "{e}");
    let pid = std::fs::read_to_string(fake.dir.path().join("pid")).unwrap();
    let proc_path = format!("/proc/{}", pid.trim());
    if Path::new("/proc/self").exists() {
        assert!(
            !Path::new(&proc_path).exists(),
            "the child {pid} was left behind"
        );
    }
}

#[tokio::test]
async fn a_flood_of_stderr_does_not_stall_the_child() {
    let fake = Fake::new(Scenario {
        listing: Some(fixture("channel_videos_flat")),
        stderr_flood_bytes: 2_000_000,
        ..Scenario::default()
    });
    let r = fake
        .harness(20)
        .run(
            "channel_scrape",
            json!({"channel_url": "@GoogleDevelopers", "top_n": 2}),
        )
        .await
        .unwrap();
    assert_eq!(r.items.len(), 2);
}

#[tokio::test]
async fn a_blocked_detail_batch_keeps_the_batches_before_it() {
    let fake = Fake::new(Scenario {
        blocked_id: "zzzzzzzzzzz",
        ..Scenario::default()
    });
    let h = fake.harness(30);
    // Batch 1: two known videos and 48 unavailable ones (skipped); batch 2 is blocked.
    let mut videos: Vec<String> = vec!["Kq9MZLmFMHQ".into(), "rTw3pGhYsLM".into()];
    videos.extend((0..48).map(|n| format!("gone{n:07}")));
    videos.push("zzzzzzzzzzz".into());
    let e = h
        .run("api_scrape", json!({ "videos": videos }))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Retryable, "{e}");
    assert!(e.message.contains("not a bot"), "{e}");
    prismq_testkit::handler::check_task_error(&e);
    let kept: Vec<&str> = e.partial.iter().map(|i| i.source_id.as_str()).collect();
    assert_eq!(kept, ["Kq9MZLmFMHQ", "rTw3pGhYsLM"]);
    assert!(e
        .partial
        .iter()
        .all(|i| i.source == "youtube_api" && i.extra["backend"] == json!("ytdlp")));
    assert_eq!(fake.runs().len(), 2, "two detail runs");
}
