//! A batch save on a real PostgreSQL server (needs `source scripts/services/postgres.sh`):
//! it writes nothing when any of its statements fails, and the statements it sends do not
//! grow with its items (counted by statement-level triggers). That a batch leaves what its
//! items saved one call at a time leave is a contract obligation
//! (`batches::a_batch_leaves_what_its_items_saved_one_at_a_time_leave`), held on every
//! engine.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use prismq_domain::ports::{Clock, ResultStore};
use prismq_domain::task::TaskId;
use prismq_domain::{ContentItem, Timestamp};
use prismq_storage_postgres::{PostgresOptions, PostgresStore};
use prismq_testkit::clock::FakeClock;
use prismq_testkit::fixtures::{content_item, scored_channel};

fn store(schema: &str, clock: &Arc<FakeClock>) -> PostgresStore {
    let mut o = PostgresOptions::new(common::url()).with_schema(schema);
    o.pool_size = 4;
    PostgresStore::connect_lazy(o, Arc::clone(clock) as Arc<dyn Clock>).expect("store")
}

/// Everything a reader can see of the records `keys` and of channel `UCx`'s baselines.
async fn state(s: &PostgresStore, keys: &BTreeSet<(String, String)>) -> Vec<String> {
    let mut out = Vec::new();
    for (platform, source_id) in keys {
        let r = s.get(platform, source_id).await.unwrap();
        let h = s.history(platform, source_id).await.unwrap();
        let seen = s.sightings(platform, source_id, 100).await.unwrap();
        out.push(format!("{r:?}\n{h:?}\n{seen:?}"));
    }
    out.push(format!("{:?}", s.baselines("UCx").await.unwrap()));
    out.push(format!("{}", s.count(None).await.unwrap()));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_last_statement_fails_writes_nothing() {
    let clock = Arc::new(FakeClock::new(
        Timestamp::from_second(1_800_000_000).unwrap(),
    ));
    let schema = common::fresh_schema("batch_fail");
    let s = store(&schema, &clock);
    let now = clock.now();
    s.save(None, &scored_channel(now, 0)).await.unwrap();
    let keys: BTreeSet<(String, String)> = scored_channel(now, 0)
        .iter()
        .map(|i| ("youtube".to_owned(), i.source_id.clone()))
        .chain([("youtube".to_owned(), "v05".to_owned())])
        .collect();
    let before = state(&s, &keys).await;
    clock.advance(Duration::from_secs(3_600));

    // Valid items (the store's checks pass), but the server refuses a NUL in a title. It
    // is in v05's second occurrence, saved after everything else of the batch was written.
    let mut batch = scored_channel(now, 50);
    batch.push(content_item("youtube_api", "new1", 3));
    let mut bad = batch[5].clone();
    bad.title = "a\0b".into();
    batch.push(bad);
    assert!(s.save(Some(TaskId(3)), &batch).await.is_err());

    assert_eq!(state(&s, &keys).await, before);
    assert!(s.get("youtube", "new1").await.is_err());
    let client = s.connection().await.unwrap();
    for table in ["result_metrics", "result_sightings"] {
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM \"{schema}\".{table}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 14, "{table}: only the first save's rows");
    }
}

/// Channel `UCn<n>`'s `n` uploads, 40 days old and more, views offset by `bump`.
fn uploads(now: Timestamp, n: i64, bump: i64) -> Vec<ContentItem> {
    (0..n)
        .map(|i| {
            let mut v = scored_channel(now, 0)[1].clone();
            v.source_id = format!("n{n}v{i:04}");
            v.channel_id = Some(format!("UCn{n}"));
            v.published_at = Timestamp::from_second(now.as_second() - 86_400 * (40 + i)).ok();
            v.metrics.views = Some(1_000 + 10 * i + bump);
            v
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_sends_as_many_statements_for_200_videos_as_for_20() {
    let clock = Arc::new(FakeClock::new(
        Timestamp::from_second(1_800_000_000).unwrap(),
    ));
    let schema = common::fresh_schema("batch_statements");
    let s = store(&schema, &clock);
    let now = clock.now();
    s.count(None).await.unwrap();
    let client = s.connection().await.unwrap();
    // One count per statement that writes one of the save's tables (statement-level
    // triggers fire once per statement, whatever the number of rows).
    let mut sql = format!(
        "CREATE TABLE \"{schema}\".statements (n bigint NOT NULL);
         INSERT INTO \"{schema}\".statements VALUES (0);
         CREATE FUNCTION \"{schema}\".count_statement() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN UPDATE \"{schema}\".statements SET n = n + 1; RETURN NULL; END $$;"
    );
    for table in [
        "results",
        "result_metrics",
        "result_sightings",
        "channel_baselines",
    ] {
        sql.push_str(&format!(
            "CREATE TRIGGER count_statement AFTER INSERT OR UPDATE OR DELETE ON \"{schema}\".{table}
             FOR EACH STATEMENT EXECUTE FUNCTION \"{schema}\".count_statement();"
        ));
    }
    client.batch_execute(&sql).await.unwrap();
    let statements = || async {
        let n: i64 = client
            .query_one(&format!("SELECT n FROM \"{schema}\".statements"), &[])
            .await
            .unwrap()
            .get(0);
        client
            .execute(&format!("UPDATE \"{schema}\".statements SET n = 0"), &[])
            .await
            .unwrap();
        n
    };

    let mut counts = Vec::new();
    for n in [20, 200] {
        let all = uploads(now, n, 0);
        s.save(None, &all[..n as usize / 2]).await.unwrap();
        statements().await;
        // Half of them changed, half new; then all of them saved unchanged.
        s.save(Some(TaskId(1)), &uploads(now, n, 1)).await.unwrap();
        let changed = statements().await;
        s.save(Some(TaskId(1)), &uploads(now, n, 1)).await.unwrap();
        let unchanged = statements().await;
        counts.push((changed, unchanged));
    }
    assert_eq!(counts[0], counts[1], "(changed, unchanged) for 20 then 200");
    assert!(counts[1].0 <= 12, "{counts:?}");
}

/// Everything `rescore` may rewrite: each record's format, values and score, and the
/// baselines.
async fn scores(s: &PostgresStore, keys: &BTreeSet<(String, String)>) -> Vec<String> {
    let client = s.connection().await.unwrap();
    let mut out = Vec::new();
    for (platform, source_id) in keys {
        let r = s.get(platform, source_id).await.unwrap();
        let values = client
            .query_one(
                "SELECT views_7d, views_30d FROM results WHERE platform = $1 AND source_id = $2",
                &[platform, source_id],
            )
            .await
            .unwrap();
        let values: (Option<i64>, Option<i64>) = (values.get(0), values.get(1));
        out.push(format!(
            "{platform}/{source_id}: {:?} {values:?} {:?}",
            r.format, r.outlier
        ));
    }
    for channel in ["UCx", "UCy"] {
        out.push(format!("{:?}", s.baselines(channel).await.unwrap()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_leaves_the_values_and_scores_a_full_rescore_computes() {
    let clock = Arc::new(FakeClock::new(
        Timestamp::from_second(1_800_000_000).unwrap(),
    ));
    let schema = common::fresh_schema("batch_rescore");
    let s = store(&schema, &clock);
    let now = clock.now();

    // Channel UCx, with v03 also on a second platform; channel UCy's uploads y00–y11,
    // 40 days old, a sample of their own.
    let mut first = scored_channel(now, 0);
    let mut elsewhere = first[3].clone();
    elsewhere.source = "vimeo_channel".into();
    elsewhere.platform = "vimeo".into();
    elsewhere.metrics.views = Some(123_456);
    first.push(elsewhere);
    let mut other_channel: Vec<ContentItem> = scored_channel(now, 0)[..12]
        .iter()
        .map(|v| {
            let mut v = v.clone();
            v.source_id = v.source_id.replace('v', "y");
            v.channel_id = Some("UCy".into());
            v
        })
        .collect();
    first.append(&mut other_channel.clone());
    // v60 reaches 7 days of age between the two saves, nearer the second: its views at
    // 7 days are the second save's.
    let mut turning = scored_channel(now, 0)[4].clone();
    turning.source_id = "v60".into();
    turning.published_at =
        Some(Timestamp::from_second(now.as_second() - 7 * 86_400 + 3_000).unwrap());
    first.push(turning.clone());
    s.save(None, &first).await.unwrap();
    let keys: BTreeSet<(String, String)> = first
        .iter()
        .map(|i| (i.platform.clone(), i.source_id.clone()))
        .collect();
    clock.advance(Duration::from_secs(3_600));

    // Views moved on UCx but for v03 (its other platform's row not in the batch); y05
    // moved to UCx; one new upload on each; a Short on UCy changed.
    let mut second = scored_channel(now, 200);
    second[3].metrics.views = first[3].metrics.views;
    other_channel[5].channel_id = Some("UCx".into());
    other_channel[5].metrics.views = Some(400_000);
    other_channel[7]
        .extra
        .insert("is_short".into(), true.into());
    second.extend(other_channel);
    let mut new_x = scored_channel(now, 0)[2].clone();
    new_x.source_id = "v50".into();
    new_x.metrics.views = Some(77_777);
    let mut new_y = new_x.clone();
    new_y.source_id = "y50".into();
    new_y.channel_id = Some("UCy".into());
    second.push(new_x);
    second.push(new_y);
    turning.metrics.views = Some(9_999);
    second.push(turning);
    s.save(Some(TaskId(9)), &second).await.unwrap();
    let keys: BTreeSet<(String, String)> = keys
        .into_iter()
        .chain(
            second
                .iter()
                .map(|i| (i.platform.clone(), i.source_id.clone())),
        )
        .collect();

    let saved = scores(&s, &keys).await;
    let client = s.connection().await.unwrap();
    let at_7d: Option<i64> = client
        .query_one(
            &format!("SELECT views_7d FROM \"{schema}\".results WHERE source_id = 'v60'"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        at_7d,
        Some(9_999),
        "v60's views at 7 days, from the second save"
    );
    assert!(
        saved.iter().filter(|l| l.contains("score:")).count() > 20,
        "most videos are scored: {saved:#?}"
    );
    s.rescore(Some("UCx".into())).await.unwrap();
    s.rescore(Some("UCy".into())).await.unwrap();
    let rescored = scores(&s, &keys).await;
    for (a, b) in saved.iter().zip(&rescored) {
        assert_eq!(a, b, "as saved, then after a full rescore");
    }
}
