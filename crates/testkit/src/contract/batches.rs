//! Obligations of a batch save as a whole: a batch leaves exactly what saving its items one
//! call at a time leaves, whatever it mixes (new, changed, unchanged and repeated videos,
//! with and without a channel, seen again under the same task).

use std::collections::BTreeSet;
use std::time::Duration;

use prismq_domain::{ContentItem, SaveReport, TaskId, Timestamp};

use super::{contract_retry_policy, ContractEnv, Subject};
use crate::clock::FakeClock;
use crate::fixtures::{content_item, scored_channel};

/// Everything a reader can see of the records `keys` and of channel `UCx`'s baselines.
async fn visible(s: &Subject, keys: &BTreeSet<(String, String)>) -> Vec<String> {
    let mut out = Vec::new();
    for (platform, source_id) in keys {
        let r = s.results.get(platform, source_id).await.unwrap();
        let h = s.results.history(platform, source_id).await.unwrap();
        let seen = s.results.sightings(platform, source_id, 100).await.unwrap();
        out.push(format!("{platform}/{source_id}:\n{r:?}\n{h:?}\n{seen:?}"));
    }
    out.push(format!("{:?}", s.results.baselines("UCx").await.unwrap()));
    out.push(format!("{}", s.results.count(None).await.unwrap()));
    out
}

/// The second batch: the channel's videos with views moved (v00 keeps its views, so is
/// unchanged; v12 and v13 are at 7 and 30 days of age), two new uploads, v03 twice, a video
/// without a channel changed and one unchanged.
fn second_batch(now: Timestamp) -> Vec<ContentItem> {
    let mut batch = scored_channel(now, 50);
    for i in 14..16 {
        let mut v = scored_channel(now, 0)[1].clone();
        v.source_id = format!("v{i:02}");
        v.metrics.views = Some(500 * i);
        batch.push(v);
    }
    let mut again = batch[3].clone();
    again.metrics.views = Some(99_000);
    again.rank = Some(40);
    batch.push(again);
    batch.push(content_item("youtube_api", "loose1", 77));
    batch.push(content_item("youtube_api", "loose2", 5));
    batch
}

/// Two stores on one clock, one saving each batch in one call and the other item by item,
/// end with the same reports, records, histories, sightings, growth, baselines and scores:
/// a batch is the same as its items saved one after the other in its order (a video twice
/// in a batch is saved over its first occurrence; the same task seeing a video again moves
/// its sighting).
pub async fn a_batch_leaves_what_its_items_saved_one_at_a_time_leave(
    factory: impl Fn(ContractEnv) -> Subject,
) {
    let clock = std::sync::Arc::new(FakeClock::default());
    let env = || ContractEnv {
        clock: clock.clone(),
        retry: contract_retry_policy(),
    };
    let (batched, single) = (factory(env()), factory(env()));
    let now = clock.now();
    let mut first = scored_channel(now, 0);
    first.push(content_item("youtube_api", "loose1", 7));
    first.push(content_item("youtube_api", "loose2", 5));
    let second = second_batch(now);
    let keys: BTreeSet<(String, String)> = first
        .iter()
        .chain(&second)
        .map(|i| (i.platform.clone(), i.source_id.clone()))
        .collect();

    let mut reports = (SaveReport::default(), SaveReport::default());
    let rounds = [
        (&first, None),
        (&second, Some(TaskId(7))),
        (&second, Some(TaskId(7))),
    ];
    for (batch, task) in rounds {
        reports
            .0
            .merge(batched.results.save(task, batch).await.unwrap());
        for item in batch {
            reports.1.merge(
                single
                    .results
                    .save(task, std::slice::from_ref(item))
                    .await
                    .unwrap(),
            );
        }
        clock.advance(Duration::from_secs(3_600));
    }

    assert_eq!(reports.0, reports.1, "the save reports");
    assert_eq!(
        reports.0.inserted, 18,
        "16 uploads, 2 new, 2 without a channel"
    );
    assert_eq!(
        reports.0.inserted + reports.0.updated + reports.0.unchanged,
        16 + 19 + 19
    );
    let (a, b) = (
        visible(&batched, &keys).await,
        visible(&single, &keys).await,
    );
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }
    let scored = batched.results.get("youtube", "v05").await.unwrap();
    assert!(
        scored.outlier.is_some(),
        "the channel is scored: {scored:?}"
    );
    let v03 = batched
        .results
        .sightings("youtube", "v03", 100)
        .await
        .unwrap();
    assert_eq!(
        v03.iter().filter(|s| s.task_id == Some(TaskId(7))).count(),
        1,
        "one sighting by task 7, moved by each occurrence: {v03:?}"
    );
}
