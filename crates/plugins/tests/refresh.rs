//! `refresh_stats` against the Data API stand-in on loopback, reading its tracked videos
//! from a real SQLite file: 50 ids per call with either method, each filter, the quota each
//! method charges and in which bucket, a stop midway that keeps what was fetched, and the
//! refreshed items saved as new metric snapshots.

mod support;

use prismq_domain::ports::{Clock, ResultStore, ScheduleStore, TrackedVideos};
use prismq_domain::schedule::{Cadence, NewSchedule};
use prismq_domain::PluginContext;
use prismq_domain::{
    CancelSignal, ContentItem, ErrorClass, TaskContext, TaskError, TaskHandler, TaskId, TaskResult,
    TaskType,
};
use prismq_plugins::register;
use prismq_storage_sqlite::{SqliteOptions, SqliteStore};
use prismq_testkit::FakeClock;
use serde_json::{json, Value};
use std::sync::Arc;
use support::fake_api::{self, FakeApi, BIG_ID, GOOGLE_ID};
use support::{config, start_time, task, Handlers};

struct Setup {
    store: SqliteStore,
    clock: Arc<FakeClock>,
    handler: Arc<dyn TaskHandler>,
    _dir: tempfile::TempDir,
}

fn setup(base: &str, key: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FakeClock::new(start_time()));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let store = SqliteStore::open(
        SqliteOptions::new(dir.path().join("q.db")),
        dyn_clock.clone(),
    )
    .expect("open SQLite");
    let mut handlers = Handlers::default();
    register(
        &mut handlers,
        config(base, key),
        PluginContext {
            quota: Arc::new(store.clone()),
            clock: dyn_clock,
            tracked: Arc::new(store.clone()),
        },
    )
    .expect("register");
    let handler = handlers.0["refresh_stats"].clone();
    Setup {
        store,
        clock,
        handler,
        _dir: dir,
    }
}

impl Setup {
    async fn run(&self, params: Value) -> Result<TaskResult, TaskError> {
        self.handler
            .validate(params.as_object().unwrap())
            .expect("params validate");
        let t = task("refresh_stats", params, self.clock.now());
        let ctx = TaskContext::new(t.id, CancelSignal::new(), Arc::new(self.store.clone()));
        self.handler.handle(&t, &ctx).await
    }

    /// Saves `ids` as a collecting task would have: source `source`, 1 view each.
    async fn track(&self, task: Option<TaskId>, source: &str, channel: &str, ids: &[String]) {
        let items: Vec<ContentItem> = ids
            .iter()
            .map(|id| {
                let mut item = ContentItem::new(source, id.clone(), format!("stored {id}"));
                item.channel_id = Some(channel.into());
                item.metrics.views = Some(1);
                item
            })
            .collect();
        self.store.save(task, &items).await.expect("save");
    }

    async fn used(&self, bucket: &str) -> u64 {
        prismq_domain::ports::QuotaLedger::used(&self.store, bucket)
            .await
            .unwrap()
    }
}

/// The 120 generated uploads of the stand-in's big channel, as it names them.
fn big_ids() -> Vec<String> {
    (0..120).map(|n| format!("bigc{n:07}")).collect()
}

fn ids_of(r: &TaskResult) -> Vec<String> {
    r.items.iter().map(|i| i.source_id.clone()).collect()
}

#[tokio::test]
async fn a_channels_videos_are_refreshed_with_videos_list_50_ids_a_call() {
    let (server, base) = FakeApi::start().await;
    let s = setup(&base, "k");
    s.track(None, "youtube_channel", BIG_ID, &big_ids()).await;
    s.track(
        None,
        "youtube_keyword",
        GOOGLE_ID,
        &["Kq9MZLmFMHQ".to_string()],
    )
    .await;
    let r = s.run(json!({"channel_id": BIG_ID})).await.unwrap();
    assert_eq!(
        ids_of(&r),
        big_ids(),
        "every video of the channel, in id order"
    );
    assert!(r.items.iter().all(|i| i.source == "youtube_refresh"));
    let first = &r.items[0];
    assert_eq!(first.metrics.views, Some(1000), "the stand-in's count");
    assert!(
        first.title.starts_with("Big video"),
        "videos.list has details"
    );
    assert_eq!(first.extra["method"], json!("list"));
    assert_eq!(
        fake_api::counts(&server).await["videos"],
        3,
        "120 ids: 50 + 50 + 20"
    );
    let sent = fake_api::queries(&server, "videos").await;
    assert!(sent.iter().all(|q| q["id"].split(',').count() <= 50));
    assert!(sent[0]["part"].contains("statistics"));
    assert_eq!(s.used("youtube_data_api.general").await, 3);
    assert_eq!(r.counters["tracked"], 120);
    assert_eq!(r.counters["videos"], 120);
    assert!(r.summary.contains("120 tracked"), "{}", r.summary);

    // Saved, the refresh is the video's next observation: one record, one history, and a
    // sighting of the refresh beside the collecting task's.
    let before = s.store.get("youtube", "bigc0000001").await.unwrap();
    assert_eq!(before.item.metrics.views, Some(1));
    s.store.save(Some(TaskId(99)), &r.items).await.unwrap();
    let fresh = s.store.get("youtube", "bigc0000001").await.unwrap();
    assert_eq!(fresh.item.metrics.views, Some(1007));
    assert_eq!(fresh.item.source, "youtube_refresh");
    let views: Vec<_> = s
        .store
        .history("youtube", "bigc0000001")
        .await
        .unwrap()
        .iter()
        .map(|h| h.metrics.views)
        .collect();
    assert_eq!(views, vec![Some(1), Some(1007)]);
    let seen = s
        .store
        .sightings("youtube", "bigc0000001", 10)
        .await
        .unwrap();
    assert_eq!(seen[0].source, "youtube_refresh");
    assert!(seen.len() >= 2, "{seen:?}");
    // A refresh's own rows never make a video tracked: the same refresh finds the same set.
    let again = s.run(json!({"channel_id": BIG_ID})).await.unwrap();
    assert_eq!(again.items.len(), 120);
}

#[tokio::test]
async fn batch_get_stats_charges_its_own_bucket_and_carries_counters_only() {
    let (server, base) = FakeApi::start().await;
    let s = setup(&base, "k");
    s.track(None, "youtube_channel", BIG_ID, &big_ids()).await;
    let r = s
        .run(json!({"all": true, "method": "batch_get_stats"}))
        .await
        .unwrap();
    assert_eq!(r.items.len(), 120);
    let counts = fake_api::counts(&server).await;
    assert_eq!(counts["videos:batchGetStats"], 3);
    assert!(!counts.contains_key("videos"), "{counts:?}");
    assert_eq!(s.used("youtube_data_api.stats").await, 3);
    assert_eq!(s.used("youtube_data_api.general").await, 0);
    let v = &r.items[2];
    assert_eq!(v.metrics.views, Some(1014));
    assert!(v.published_at.is_some() && v.duration_secs.is_some());
    assert_eq!(v.title, "", "batchGetStats has no title");
    assert_eq!(v.channel_id, None);
    assert_eq!(v.extra["method"], json!("batch_get_stats"));
    assert!(s
        .handler
        .quota_buckets()
        .contains(&"youtube_data_api.stats".to_string()));
}

#[tokio::test]
async fn seen_within_counts_back_from_now() {
    let (_server, base) = FakeApi::start().await;
    let s = setup(&base, "k");
    let ids = big_ids();
    s.track(None, "youtube_channel", BIG_ID, &ids).await;
    s.clock.advance(std::time::Duration::from_secs(8 * 86_400));
    s.track(None, "youtube_trending", BIG_ID, &ids[10..15])
        .await;
    let r = s.run(json!({"seen_within": "7d"})).await.unwrap();
    assert_eq!(ids_of(&r), ids[10..15]);
    let r = s.run(json!({"seen_within": "9d"})).await.unwrap();
    assert_eq!(r.items.len(), 120);
}

#[tokio::test]
async fn a_schedules_finds_are_refreshed_and_an_unknown_schedule_is_permanent() {
    let (_server, base) = FakeApi::start().await;
    let s = setup(&base, "k");
    s.store
        .add_schedule(NewSchedule::new(
            "track-big",
            TaskType::new("channel_scrape").unwrap(),
            json!({"channel_url": BIG_ID}),
            Cadence::every("6h").unwrap(),
        ))
        .await
        .unwrap();
    let by_schedule = s.store.run_schedule_now("track-big").await.unwrap().id;
    let ids = big_ids();
    s.track(Some(by_schedule), "youtube_channel", BIG_ID, &ids[..60])
        .await;
    s.track(None, "youtube_keyword", BIG_ID, &ids[60..]).await;
    let r = s.run(json!({"schedule": "track-big"})).await.unwrap();
    assert_eq!(ids_of(&r), ids[..60]);
    let e = s.run(json!({"schedule": "gone"})).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent);
    assert!(e.message.contains("gone"), "{}", e.message);
    // The port answers the same for the handler and any other reader.
    let tracked: &dyn TrackedVideos = &s.store;
    assert_eq!(
        tracked
            .tracked_ids(
                &prismq_domain::ports::TrackedFilter {
                    schedule: Some("track-big".into()),
                    ..Default::default()
                },
                None,
                10_000
            )
            .await
            .unwrap()
            .len(),
        60
    );
}

#[tokio::test]
async fn a_spent_quota_midway_keeps_the_batches_fetched_and_waits_for_the_reset() {
    let (_server, base) = FakeApi::start().await;
    let s = setup(&base, "QUOTAAFTER1");
    s.track(None, "youtube_channel", BIG_ID, &big_ids()).await;
    let e = s.run(json!({"channel_id": BIG_ID})).await.unwrap_err();
    assert!(
        matches!(e.class, ErrorClass::RetryableAfter(t) if t > s.clock.now()),
        "{:?}",
        e.class
    );
    assert_eq!(e.partial.len(), 50, "the first batch is kept");
    assert!(e.partial.iter().all(|i| i.source == "youtube_refresh"));
}

#[tokio::test]
async fn without_a_key_the_task_says_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(FakeClock::new(start_time()));
    let store =
        SqliteStore::open(SqliteOptions::new(dir.path().join("q.db")), clock.clone()).unwrap();
    let mut handlers = Handlers::default();
    register(
        &mut handlers,
        prismq_plugins::YoutubeConfig {
            backend: prismq_plugins::Backend::Ytdlp,
            ..Default::default()
        },
        PluginContext {
            quota: Arc::new(store.clone()),
            clock: clock.clone(),
            tracked: Arc::new(store.clone()),
        },
    )
    .unwrap();
    let h = handlers.0["refresh_stats"].clone();
    let t = task("refresh_stats", json!({"all": true}), clock.now());
    let ctx = TaskContext::new(t.id, CancelSignal::new(), Arc::new(store.clone()));
    let e = h.handle(&t, &ctx).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent);
    assert!(e.message.contains("youtube.api_key"), "{}", e.message);
    assert!(h.quota_buckets().is_empty());
}
