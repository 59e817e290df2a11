//! Obligations of `TrackedVideos`: which stored videos a statistics refresh visits — the
//! tracked sources only, each id once, every filter condition on one row, keyset pages in id
//! order, the schedule filter through the key of the task that last saved a row.

use prismq_domain::ports::{TrackedFilter, REFRESH_SOURCE};
use prismq_domain::schedule::{Cadence, NewSchedule};
use prismq_domain::TaskId;
use serde_json::json;

use super::support::{assert_not_found, invalid_field, setup};
use super::{ContractEnv, Subject};
use crate::fixtures::{content_item, new_task, plus_secs, task_type_of};

/// Saves one item of `source` with id `id`, of channel `channel` (if any), by `task`.
async fn save(s: &Subject, task: Option<TaskId>, source: &str, id: &str, channel: Option<&str>) {
    let mut item = content_item(source, id, 100);
    item.channel_id = channel.map(str::to_owned);
    s.results.save(task, &[item]).await.expect("save");
}

async fn ids(s: &Subject, filter: &TrackedFilter, after: Option<&str>, limit: u32) -> Vec<String> {
    s.tracked
        .tracked_ids(filter, after.map(str::to_owned), limit)
        .await
        .expect("tracked_ids")
}

/// Each tracked id once, ascending; other sources and the refresh's own items left out.
pub async fn tracked_lists_each_youtube_id_once_in_order(factory: impl Fn(ContractEnv) -> Subject) {
    let (_clock, s) = setup(factory);
    save(&s, None, "youtube_keyword", "ccccccccccc", None).await;
    save(&s, None, "youtube_channel", "aaaaaaaaaaa", None).await;
    save(&s, None, "youtube_api", "aaaaaaaaaaa", None).await;
    save(&s, None, "youtube_trending", "Bbbbbbbbbbb", None).await;
    save(&s, None, "blog_feed", "00000000000", None).await;
    save(&s, None, "youtubex", "01111111111", None).await;
    save(&s, None, REFRESH_SOURCE, "zzzzzzzzzzz", None).await;
    let all = ids(&s, &TrackedFilter::default(), None, 100).await;
    assert_eq!(
        all,
        ["Bbbbbbbbbbb", "aaaaaaaaaaa", "ccccccccccc"],
        "bytewise order"
    );
}

/// `after` and `limit` page through the ids without repeats or gaps.
pub async fn tracked_pages_with_keyset_after(factory: impl Fn(ContractEnv) -> Subject) {
    let (_clock, s) = setup(factory);
    let all: Vec<String> = (0..7).map(|i| format!("video{i:06}")).collect();
    for id in all.iter().rev() {
        save(&s, None, "youtube_channel", id, None).await;
        save(&s, None, "youtube_keyword", id, None).await;
    }
    let f = TrackedFilter::default();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = ids(&s, &f, after.as_deref(), 3).await;
        assert!(page.len() <= 3);
        let Some(last) = page.last().cloned() else {
            break;
        };
        seen.extend(page);
        after = Some(last);
    }
    assert_eq!(seen, all);
    assert!(ids(&s, &f, Some("video000006"), 3).await.is_empty());
    assert_eq!(ids(&s, &f, Some("video000003x"), 10).await, all[4..]);
}

/// `seen_since` holds for a sighting and `channel_id` for the record (the latest channel a
/// sighting gave).
pub async fn tracked_filters_by_seen_since_and_channel(factory: impl Fn(ContractEnv) -> Subject) {
    let (clock, s) = setup(factory);
    save(&s, None, "youtube_channel", "old-of-a000", Some("UCa")).await;
    save(&s, None, "youtube_channel", "old-of-b000", Some("UCb")).await;
    clock.advance(std::time::Duration::from_secs(86_400));
    let since = clock.now();
    save(&s, None, "youtube_keyword", "new-of-a000", Some("UCa")).await;
    // Seen again now, giving another channel: the record is of that channel now.
    save(&s, None, "youtube_api", "old-of-b000", Some("UCc")).await;
    let recent = TrackedFilter {
        seen_since: Some(since),
        ..TrackedFilter::default()
    };
    assert_eq!(
        ids(&s, &recent, None, 10).await,
        ["new-of-a000", "old-of-b000"]
    );
    let of_a = TrackedFilter {
        channel_id: Some("UCa".into()),
        ..TrackedFilter::default()
    };
    assert_eq!(
        ids(&s, &of_a, None, 10).await,
        ["new-of-a000", "old-of-a000"]
    );
    let recent_of_b = TrackedFilter {
        seen_since: Some(since),
        channel_id: Some("UCb".into()),
        schedule: None,
    };
    assert!(
        ids(&s, &recent_of_b, None, 10).await.is_empty(),
        "the video is of UCc now"
    );
    let later = TrackedFilter {
        seen_since: Some(plus_secs(since, 1)),
        ..TrackedFilter::default()
    };
    assert!(ids(&s, &later, None, 10).await.is_empty());
}

/// `schedule` keeps the videos a task the schedule enqueued found; an unknown schedule is
/// `NotFound`.
pub async fn tracked_filters_by_schedule(factory: impl Fn(ContractEnv) -> Subject) {
    let (_clock, s) = setup(factory);
    let every = Cadence::every("1h").expect("1h");
    for name in ["track-a", "track-b"] {
        s.schedules
            .add_schedule(NewSchedule::new(
                name,
                task_type_of("channel_scrape"),
                json!({"channel_url": name}),
                every.clone(),
            ))
            .await
            .expect("add schedule");
    }
    let by_a = s
        .schedules
        .run_schedule_now("track-a")
        .await
        .expect("run-now")
        .id;
    let by_b = s
        .schedules
        .run_schedule_now("track-b")
        .await
        .expect("run-now")
        .id;
    let manual = s.add(new_task("channel_scrape")).await;
    save(&s, Some(by_a), "youtube_channel", "from-a00000", None).await;
    save(&s, Some(by_a), "youtube_channel", "moved-to-b0", None).await;
    save(&s, Some(by_b), "youtube_channel", "moved-to-b0", None).await;
    save(&s, Some(by_b), "youtube_channel", "from-b00000", None).await;
    save(&s, Some(manual), "youtube_keyword", "manual00000", None).await;
    save(&s, Some(by_a), "youtube_keyword", "manual00000", None).await;
    save(&s, None, "youtube_api", "no-task0000", None).await;
    let of = |name: &str| TrackedFilter {
        schedule: Some(name.into()),
        ..TrackedFilter::default()
    };
    // Every video a task of the schedule found, even one a later task found again.
    assert_eq!(
        ids(&s, &of("track-a"), None, 10).await,
        ["from-a00000", "manual00000", "moved-to-b0"]
    );
    assert_eq!(
        ids(&s, &of("track-b"), None, 10).await,
        ["from-b00000", "moved-to-b0"]
    );
    assert_not_found(
        s.tracked
            .tracked_ids(&of("no-such-schedule"), None, 10)
            .await,
    );
}

/// A limit outside 1–10,000 is `Invalid` on `limit`.
pub async fn tracked_refuses_limit_out_of_range(factory: impl Fn(ContractEnv) -> Subject) {
    let (_clock, s) = setup(factory);
    let f = TrackedFilter::default();
    assert_eq!(
        invalid_field(s.tracked.tracked_ids(&f, None, 0).await),
        "limit"
    );
    assert_eq!(
        invalid_field(s.tracked.tracked_ids(&f, None, 10_001).await),
        "limit"
    );
}
