//! Small builders for tests: tasks, content items, worker ids and instants.

use std::time::Duration;

use jiff::SignedDuration;
use prismq_domain::ports::{ClaimFilter, ClaimRequest, WorkerInfo};
use prismq_domain::{ClaimingStrategy, ContentItem, NewTask, TaskType, Timestamp, WorkerId};
use serde_json::{json, Map};

/// A task of type `task_type` with empty params and every other field at its default.
///
/// # Panics
/// If `task_type` is not a valid task type name (a bug in the test).
pub fn new_task(task_type: &str) -> NewTask {
    NewTask::new(task_type_of(task_type), json!({}))
}

/// `name` as a [`TaskType`].
///
/// # Panics
/// If `name` is not a valid task type name (a bug in the test).
pub fn task_type_of(name: &str) -> TaskType {
    TaskType::new(name).expect("fixture task type must be valid")
}

/// An item from `source` with id `source_id`, a title, and `views` views (other metrics absent).
pub fn content_item(source: &str, source_id: &str, views: i64) -> ContentItem {
    let mut item = ContentItem::new(source, source_id, format!("video {source_id}"));
    item.metrics.views = Some(views);
    item.url = Some(format!("https://example.invalid/{source_id}"));
    item.extra = Map::new();
    item
}

/// `id` as a [`WorkerId`].
///
/// # Panics
/// If `id` is not a valid worker id (a bug in the test).
pub fn worker_id(id: &str) -> WorkerId {
    WorkerId::new(id).expect("fixture worker id must be valid")
}

/// What worker `id` registers with: host `host-a`, pid 4242, every task type, LIFO.
pub fn worker_info(id: &str) -> WorkerInfo {
    WorkerInfo {
        id: worker_id(id),
        hostname: "host-a".into(),
        pid: 4242,
        capabilities: vec![task_type_of("channel_scrape")],
        strategy: ClaimingStrategy::Lifo,
    }
}

/// A claim by `worker` with `strategy`, any type, no region, and a 30-second lease.
pub fn claim_request(worker: &str, strategy: ClaimingStrategy) -> ClaimRequest {
    ClaimRequest {
        worker: worker_id(worker),
        filter: ClaimFilter::default(),
        strategy,
        lease_for: Duration::from_secs(30),
    }
}

/// `t` moved by `secs` seconds (negative: earlier).
///
/// # Panics
/// If the result is out of range (a bug in the test).
pub fn plus_secs(t: Timestamp, secs: i64) -> Timestamp {
    t.checked_add(SignedDuration::from_secs(secs))
        .expect("fixture instant in range")
}

/// `t` moved by `ms` milliseconds (negative: earlier).
///
/// # Panics
/// If the result is out of range (a bug in the test).
pub fn plus_millis(t: Timestamp, ms: i64) -> Timestamp {
    t.checked_add(SignedDuration::from_millis(ms))
        .expect("fixture instant in range")
}

/// `n` long-form videos `v00000`… of 40 channels (`UC00`…`UC39`), each with `views(i)`,
/// published 40 days and `i` hours before `now` (every tenth without a publish date):
/// old enough to be scored against their channel on total views. The listing fixture of
/// the keyset plan tests, saved twice (views changed) so growth exists too.
pub fn ranked_videos(
    n: i64,
    now: Timestamp,
    views: impl Fn(i64) -> Option<i64>,
) -> Vec<ContentItem> {
    (0..n)
        .map(|i| {
            let mut it = ContentItem::new("youtube_channel", format!("v{i:05}"), "t");
            it.channel_id = Some(format!("UC{:02}", i % 40));
            it.metrics.views = views(i);
            it.published_at = (i % 10 != 0).then(|| {
                now.checked_sub(SignedDuration::from_hours(24 * 40 + i))
                    .expect("a publish time within range")
            });
            it.extra.insert("is_short".into(), json!(false));
            it
        })
        .collect()
}

/// A deterministic spread of views for benchmarks: mostly 5,000–15,000, one in fifty ten
/// times that.
pub fn spread_views(seed: u64) -> i64 {
    let x = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    let base = 5_000 + (x >> 33) % 10_000;
    let views = if (x >> 20) % 50 == 0 { base * 10 } else { base };
    i64::try_from(views).unwrap_or(i64::MAX)
}

/// Channel `c`'s `videos` uploads as a channel scrape saves them, for benchmarks: one a day
/// going back from 8 days before `now` (seconds), every tenth a Short, views from
/// [`spread_views`] plus `round` (so each round changes every video's metrics).
pub fn channel_scrape(c: usize, videos: usize, round: u64, now: i64) -> Vec<ContentItem> {
    (0..videos)
        .map(|i| {
            let mut item =
                ContentItem::new("youtube_channel", format!("c{c:05}v{i:03}"), "bench video");
            item.channel_id = Some(format!("UCbench{c:05}"));
            item.channel = Some(format!("Bench channel {c}"));
            let age_days = 8 + i64::try_from(i).unwrap_or(i64::MAX);
            item.published_at = Timestamp::from_second(now - 86_400 * age_days).ok();
            let seed = u64::try_from(c * videos + i).unwrap_or(u64::MAX);
            item.metrics.views =
                Some(spread_views(seed) + i64::try_from(round).unwrap_or(i64::MAX));
            item.extra.insert("is_short".into(), json!(i % 10 == 0));
            item
        })
        .collect()
}

/// Fourteen uploads of one channel (`UCx`) with every field a save keeps filled: twelve 40
/// days old before `now` (a sample to score against) and two at 7 and 30 days of age, views
/// `1,000 × (i + 1) + bump × i`. Two saves with different `bump`s give each video a history.
pub fn scored_channel(now: Timestamp, bump: i64) -> Vec<ContentItem> {
    (0..14)
        .map(|i| {
            let mut v = ContentItem::new("youtube_channel", format!("v{i:02}"), "t");
            v.channel_id = Some("UCx".into());
            v.channel = Some("Channel X".into());
            v.description = Some(format!("about {i}"));
            v.url = Some(format!("https://example.invalid/v{i:02}"));
            v.duration_secs = Some(600 + i);
            let age_days = match i {
                12 => 7,
                13 => 30,
                _ => 40,
            };
            v.published_at = Some(plus_secs(now, -age_days * 86_400 - i * 60));
            v.metrics.views = Some(1_000 * (i + 1) + bump * i);
            v.metrics.likes = Some(10 * i);
            v.metrics.comments = Some(i);
            v.rank = u32::try_from(i + 1).ok();
            v.tags = vec!["x".into()];
            v.extra.insert("is_short".into(), json!(false));
            v
        })
        .collect()
}
