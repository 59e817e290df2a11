//! What a save recomputes on a real PostgreSQL server (needs
//! `source scripts/services/postgres.sh`): a video saved unchanged, far from the ages its
//! values are read at (7 and 30 days), does not have its outlier values recomputed, while a
//! changed one, or an unchanged one at such an age, does. A trigger counts the statements
//! that write a video's values (they name `views_7d`; no other statement of a save does).
//! And a record another transaction inserts while a save of it runs is updated by the save,
//! not inserted twice nor lost.

mod common;

use prismq_domain::ports::ResultStore;
use prismq_domain::{ContentItem, Timestamp};
use serde_json::json;

const VIDEOS: i64 = 20;

/// Channel `UCskip`'s uploads, 40 days old and more (one a day) at `now` (seconds), views
/// offset by `bump`. With `week_old`, the first one is 7 days old instead. `now` is fixed
/// for the whole test, so a save repeated a second later is still unchanged.
fn channel(now: i64, bump: i64, week_old: bool) -> Vec<ContentItem> {
    (0..VIDEOS)
        .map(|i| {
            let mut item = ContentItem::new("youtube_channel", format!("skip{i:02}"), "video");
            item.channel_id = Some("UCskip".into());
            let age_days = if week_old && i == 0 { 7 } else { 40 + i };
            item.published_at = Timestamp::from_second(now - 86_400 * age_days).ok();
            item.metrics.views = Some(10_000 + 100 * i + bump);
            item.extra.insert("is_short".into(), json!(false));
            item
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_save_recomputes_only_the_values_it_can_move() {
    let schema = common::fresh_schema("save_skip");
    let store = common::store_in(&schema);
    let now = Timestamp::now().as_second();
    let channel = |bump, week_old| channel(now, bump, week_old);
    store.save(None, &channel(0, false)).await.unwrap();
    let client = store.connection().await.unwrap();
    client
        .batch_execute(&format!(
            "CREATE TABLE \"{schema}\".value_writes (n bigint NOT NULL);
             INSERT INTO \"{schema}\".value_writes VALUES (0);
             CREATE FUNCTION \"{schema}\".count_value_write() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN UPDATE \"{schema}\".value_writes SET n = n + 1; RETURN NULL; END $$;
             CREATE TRIGGER count_value_write AFTER UPDATE OF views_7d ON \"{schema}\".results
             FOR EACH ROW EXECUTE FUNCTION \"{schema}\".count_value_write();"
        ))
        .await
        .unwrap();
    let writes = || async {
        let row = client
            .query_one(&format!("SELECT n FROM \"{schema}\".value_writes"), &[])
            .await
            .unwrap();
        let n: i64 = row.get(0);
        client
            .execute(&format!("UPDATE \"{schema}\".value_writes SET n = 0"), &[])
            .await
            .unwrap();
        n
    };
    let scores = || async {
        let mut out = Vec::new();
        for item in channel(0, false) {
            let r = store.get(&item.platform, &item.source_id).await.unwrap();
            out.push(r.outlier);
        }
        out
    };
    let before = scores().await;
    assert!(
        before.iter().all(Option::is_some),
        "every video of the channel is scored: {before:?}"
    );

    // Saved again unchanged: no video's values can move, none is recomputed, and the
    // scores stay as they were.
    let report = store.save(None, &channel(0, false)).await.unwrap();
    assert_eq!(report.unchanged, VIDEOS as u64);
    assert_eq!(writes().await, 0, "an unchanged save recomputed values");
    assert_eq!(scores().await, before);

    // Changed views: every saved video is recomputed.
    store.save(None, &channel(1, false)).await.unwrap();
    assert_eq!(writes().await, VIDEOS);

    // One video republished 7 days ago: that one changed and alone is recomputed. Saved
    // unchanged again, it still is, as its latest observation can be its views at 7 days
    // of age; the others are not.
    store.save(None, &channel(1, true)).await.unwrap();
    assert_eq!(writes().await, 1);
    let report = store.save(None, &channel(1, true)).await.unwrap();
    assert_eq!(report.unchanged, VIDEOS as u64);
    assert_eq!(writes().await, 1);
}

/// A save locks the records that exist first and inserts the others; a record another
/// transaction inserted in between (not committed when the save looked, so not found) makes
/// the save's insert wait for it and do nothing: the save then locks that record and saves
/// over it, as it does any known record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_inserted_by_another_transaction_meanwhile_is_saved_over() {
    let schema = common::fresh_schema("save_race");
    let store = common::store_in(&schema);
    // The schema exists once the store has run a statement.
    store
        .save(None, &[ContentItem::new("youtube_search", "other", "x")])
        .await
        .unwrap();

    let other = store.connection().await.unwrap();
    other
        .batch_execute(&format!(
            "BEGIN;
             INSERT INTO \"{schema}\".results (platform, source_id, title, views, first_seen_at,
               last_seen_at, first_metrics_at, metrics_at, last_source)
             VALUES ('youtube', 'raced', 'theirs', 5, 1, 1, 1, 1, 'youtube_search');"
        ))
        .await
        .unwrap();

    let mut item = ContentItem::new("youtube_search", "raced", "ours");
    item.metrics.views = Some(7);
    let saving = tokio::spawn({
        let store = store.clone();
        let item = item.clone();
        async move { store.save(None, &[item]).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !saving.is_finished(),
        "the save's insert waits for the transaction that inserted the same record"
    );
    other.batch_execute("COMMIT").await.unwrap();

    let report = saving
        .await
        .unwrap()
        .expect("the save succeeds once the other commits");
    assert_eq!((report.inserted, report.updated), (0, 1), "{report:?}");
    let saved = store.get("youtube", "raced").await.unwrap();
    assert_eq!(saved.item.title, "ours");
    assert_eq!(saved.item.metrics.views, Some(7));
    let rows: i64 = other
        .query_one(
            &format!("SELECT count(*) FROM \"{schema}\".results WHERE source_id = 'raced'"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
}
