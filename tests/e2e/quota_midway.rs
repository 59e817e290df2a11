//! Quota exhausted midway, through the app: the real composition (the YouTube plugin as the
//! app wires it, a SQLite file, the worker runtime) on a fake clock, against a loopback
//! stand-in for the Data API that answers a 120-video channel and then, from its sixth
//! request on, the 403 `quotaExceeded`. The first run defers the task to midnight Pacific
//! time with the 100 videos it fetched saved; once the clock passes the reset (and the
//! stand-in's quota is back), a second run completes the task, and the results hold one
//! row per video.
//!
//! The binary runs on the system clock, so this scenario uses the app in-process: moving a
//! fake clock past the reset is the only way to see the second half without waiting a day.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use prismq_app::{App, Config, Ports, RunOptions, PLUGINS};
use prismq_app::{PluginContext, PluginRegistry};
use prismq_domain::ports::{Clock, ResultQuery, TaskEvent};
use prismq_domain::{NewTask, TaskStatus, TaskType, Timestamp};
use prismq_storage_sqlite::SqliteStore;
use prismq_testkit::FakeClock;

const KEY: &str = "AIzaE2eQuotaMidwayKey0123456789abcdefgh";
const CHANNEL: &str = "UCbig120channelAAAAAAAAA";
const VIDEOS: usize = 120;
const DRAIN: RunOptions = RunOptions {
    drain: true,
    max_tasks: None,
};

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/plugins/tests/fixtures/data_api")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn video_id(n: usize) -> String {
    format!("bigc{n:07}")
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// The Data API stand-in: the channel, its uploads playlist in pages of `maxResults`
/// (tokens `P<offset>`), and `videos.list` by id; every request after `quota_left` is spent
/// gets the 403 `quotaExceeded` body of the reference.
struct StandIn {
    base_url: String,
    /// Requests still answered normally; `None`: unlimited.
    quota_left: Arc<Mutex<Option<usize>>>,
    /// Endpoints requested, in order.
    seen: Arc<Mutex<Vec<String>>>,
}

impl StandIn {
    fn start(quota_left: Option<usize>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().unwrap().port();
        let s = StandIn {
            base_url: format!("http://127.0.0.1:{port}/youtube/v3"),
            quota_left: Arc::new(Mutex::new(quota_left)),
            seen: Arc::new(Mutex::new(Vec::new())),
        };
        let (quota, seen) = (s.quota_left.clone(), s.seen.clone());
        std::thread::spawn(move || {
            let template = fixture("videos_by_id")["items"][0].clone();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut first = String::new();
                let _ = reader.read_line(&mut first);
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if line == "\r\n" => break,
                        Ok(_) => {}
                    }
                }
                let target = first.split_whitespace().nth(1).unwrap_or("").to_owned();
                let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                let q: HashMap<String, String> = query
                    .split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (decode(k), decode(v)))
                    .collect();
                let endpoint = path.trim_start_matches("/youtube/v3/").to_owned();
                seen.lock().unwrap().push(endpoint.clone());
                let spent = {
                    let mut left = quota.lock().unwrap();
                    match left.as_mut() {
                        Some(0) => true,
                        Some(n) => {
                            *n -= 1;
                            false
                        }
                        None => false,
                    }
                };
                let (code, body) = if q.get("key").map(String::as_str) != Some(KEY) {
                    (403, fixture("error_missing_key"))
                } else if spent {
                    (403, fixture("error_quota_exceeded"))
                } else {
                    answer(&endpoint, &q, &template)
                };
                let body = body.to_string();
                let reason = if code == 200 { "OK" } else { "Forbidden" };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {code} {reason}\r\ncontent-type: application/json; charset=UTF-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        s
    }

    fn set_quota_left(&self, left: Option<usize>) {
        *self.quota_left.lock().unwrap() = left;
    }

    /// Requests per endpoint so far, and then forgets them.
    fn take_counts(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for e in self.seen.lock().unwrap().drain(..) {
            *m.entry(e).or_default() += 1;
        }
        m
    }
}

fn answer(endpoint: &str, q: &HashMap<String, String>, template: &Value) -> (u16, Value) {
    match endpoint {
        "channels" if q.get("forHandle").map(String::as_str) == Some("@Big120") => {
            let mut body = fixture("channels_google_developers");
            body["items"][0]["id"] = json!(CHANNEL);
            body["items"][0]["contentDetails"]["relatedPlaylists"]["uploads"] =
                json!(format!("UU{}", &CHANNEL[2..]));
            (200, body)
        }
        "playlistItems" => {
            let offset: usize = q
                .get("pageToken")
                .map_or(0, |t| t.trim_start_matches('P').parse().unwrap());
            let max: usize = q["maxResults"].parse().unwrap();
            let end = (offset + max).min(VIDEOS);
            let mut body = fixture("playlist_items_page");
            let item = body["items"][0].clone();
            let items: Vec<Value> = (offset..end)
                .map(|n| {
                    let mut it = item.clone();
                    it["contentDetails"]["videoId"] = json!(video_id(n));
                    it["contentDetails"]["videoPublishedAt"] = json!("2026-11-01T12:00:00Z");
                    it["snippet"]["resourceId"]["videoId"] = json!(video_id(n));
                    it
                })
                .collect();
            body["items"] = json!(items);
            body["pageInfo"] = json!({"totalResults": VIDEOS, "resultsPerPage": max});
            let obj = body.as_object_mut().unwrap();
            obj.remove("nextPageToken");
            if end < VIDEOS {
                obj.insert("nextPageToken".into(), json!(format!("P{end}")));
            }
            (200, body)
        }
        "videos" => {
            let items: Vec<Value> = q["id"]
                .split(',')
                .map(|id| {
                    let n: usize = id.trim_start_matches("bigc").parse().unwrap();
                    let mut v = template.clone();
                    v["id"] = json!(id);
                    v["snippet"]["title"] = json!(format!("Big video {n}"));
                    v["snippet"]["channelId"] = json!(CHANNEL);
                    v["statistics"]["viewCount"] = json!(format!("{}", 1000 + n));
                    v
                })
                .collect();
            let mut body = fixture("videos_by_id");
            body["pageInfo"] = json!({"totalResults": items.len(), "resultsPerPage": items.len()});
            body["items"] = json!(items);
            (200, body)
        }
        _ => (200, fixture("channels_empty")),
    }
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// The app as `App::open` builds it, but on `clock`.
fn app(dir: &Path, api: &StandIn, clock: Arc<FakeClock>) -> App {
    let mut config = Config::default();
    config.database.path = Some(dir.join("queue.db"));
    config.set_plugin_setting("youtube.api_key", KEY).unwrap();
    config
        .set_plugin_setting("youtube.api_base_url", &api.base_url)
        .unwrap();
    let clock: Arc<dyn Clock> = clock;
    let store = SqliteStore::open(
        prismq_app::wiring::sqlite_options(&config).unwrap(),
        clock.clone(),
    )
    .expect("open the queue");
    let ports = Ports::from_store(store);
    let ctx = PluginContext {
        quota: ports.quota.clone(),
        clock: clock.clone(),
        tracked: ports.tracked.clone(),
    };
    let mut registry = PluginRegistry::new();
    for p in PLUGINS {
        p.register(&mut registry, &config.plugin_section(p.name()), &ctx)
            .expect("register the plugins");
    }
    App::from_parts(ports, clock, Arc::new(registry), config)
}

#[test]
fn quota_spent_midway_defers_with_partial_results_then_completes_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    // Five answers: channels, playlist page 1, its videos batch, page 2, its batch.
    let api = StandIn::start(Some(5));
    let clock = Arc::new(FakeClock::new(ts("2026-11-20T12:00:00Z")));
    let reset = ts("2026-11-21T08:00:00Z"); // the next midnight Pacific (PST)
    let app = app(dir.path(), &api, clock.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    rt.block_on(async {
        let task = NewTask::new(
            TaskType::new("channel_scrape").unwrap(),
            json!({"channel_url": "@Big120", "top_n": 120}),
        );
        let id = app.enqueue(task).await.expect("enqueue").id;

        // First run: quota spent on the third playlist page.
        let report = app.work(DRAIN, Default::default()).await.unwrap();
        assert_eq!((report.claimed, report.deferred), (1, 1), "{report:?}");
        let counts = api.take_counts();
        assert_eq!(
            (
                counts["channels"],
                counts["playlistItems"],
                counts["videos"]
            ),
            (1, 3, 2),
            "{counts:?}"
        );
        let task = app.queue.get(id).await.unwrap();
        assert_eq!(task.status, TaskStatus::Queued, "deferred: {task:?}");
        assert_eq!(task.run_after, reset);
        assert_eq!(task.attempts, 0, "a deferral uses no attempt");
        assert!(
            task.last_error
                .as_deref()
                .is_some_and(|e| e.contains("quota")),
            "{task:?}"
        );
        assert_eq!(app.results.count(None).await.unwrap(), 100);
        for n in [0, 99] {
            let r = app.results.get("youtube", &video_id(n)).await.unwrap();
            assert_eq!(r.last_task_id, Some(id), "video {n}");
        }
        assert!(
            app.results.get("youtube", &video_id(100)).await.is_err(),
            "the third batch was never fetched"
        );
        let log = app.logs.list(id).await.unwrap();
        let saved = log
            .iter()
            .position(|r| {
                r.event == TaskEvent::Progress && r.message.contains("saved 100 partial items")
            })
            .unwrap_or_else(|| panic!("a note about the partial items: {log:?}"));
        let deferred = log
            .iter()
            .rposition(|r| r.event == TaskEvent::Deferred)
            .expect("deferred");
        assert!(saved < deferred, "saved before the deferral: {log:?}");

        // Before the reset, nothing is eligible and nothing is sent.
        let report = app.work(DRAIN, Default::default()).await.unwrap();
        assert_eq!(report.claimed, 0);
        assert!(api.take_counts().is_empty());

        // After the reset: YouTube's quota is back and the ledger's window is new.
        clock.set(Timestamp::from_second(reset.as_second() + 1).unwrap());
        api.set_quota_left(None);
        let report = app.work(DRAIN, Default::default()).await.unwrap();
        assert_eq!((report.claimed, report.completed), (1, 1), "{report:?}");
        let counts = api.take_counts();
        assert_eq!(
            (
                counts["channels"],
                counts["playlistItems"],
                counts["videos"]
            ),
            (1, 3, 3),
            "{counts:?}"
        );
        let task = app.queue.get(id).await.unwrap();
        assert_eq!(task.status, TaskStatus::Completed, "{task:?}");
        let summary = task.summary.expect("a summary");
        assert_eq!(summary["saved"]["inserted"], json!(20), "{summary}");
        assert_eq!(
            summary["saved"]["updated"].as_u64().unwrap()
                + summary["saved"]["unchanged"].as_u64().unwrap(),
            100,
            "{summary}"
        );

        // One row per video: no duplicates from the partial save.
        assert_eq!(app.results.count(None).await.unwrap(), 120);
        let all = app
            .results
            .query(&ResultQuery {
                limit: 1000,
                ..ResultQuery::default()
            })
            .await
            .unwrap();
        let mut ids: Vec<&str> = all.iter().map(|r| r.item.source_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 120);
    });
}
