//! What a save writes: it never assigns an indexed column of `results` the value the column
//! already holds. SQLite deletes and re-inserts a row's entry in every index on a column an
//! UPDATE assigns, whatever the value, and in a large file each such entry is a page of its
//! own written at commit; so a save that rewrites unchanged keys costs pages for nothing.
//! Checked with triggers that fire on exactly such assignments (`UPDATE OF` fires when the
//! column is in the SET list, changed or not), over saves that change views, growth,
//! formats, tasks and nothing at all, and a rescore.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use prismq_domain::task::TaskId;
use prismq_domain::{ContentItem, Timestamp};
use prismq_storage_sqlite::{SqliteOptions, SqliteStore};
use prismq_testkit::clock::FakeClock;
use rusqlite::Connection;
use serde_json::json;

/// Every column of `results` that some index has as a key column.
fn indexed_columns(conn: &Connection) -> Vec<String> {
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM pragma_index_list('results')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut columns = Vec::new();
    for index in indexes {
        let mut stmt = conn
            .prepare("SELECT name FROM pragma_index_info(?1) WHERE name IS NOT NULL")
            .unwrap();
        for c in stmt.query_map([&index], |r| r.get::<_, String>(0)).unwrap() {
            columns.push(c.unwrap());
        }
    }
    columns.sort();
    columns.dedup();
    columns
}

/// Logs into `same_value_writes` every assignment of an indexed column to the value it held.
fn watch(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE same_value_writes (col TEXT NOT NULL, result_id INTEGER NOT NULL)",
    )
    .unwrap();
    let columns = indexed_columns(&conn);
    for c in [
        "views",
        "published_at",
        "outlier_score",
        "growth_1h",
        "channel_id",
    ] {
        assert!(
            columns.iter().any(|x| x == c),
            "{c} is indexed: {columns:?}"
        );
    }
    for c in &columns {
        conn.execute_batch(&format!(
            "CREATE TRIGGER same_{c} AFTER UPDATE OF {c} ON results WHEN OLD.{c} IS NEW.{c}
             BEGIN INSERT INTO same_value_writes (col, result_id) VALUES ('{c}', NEW.id); END"
        ))
        .unwrap();
    }
    conn
}

fn same_value_writes(conn: &Connection) -> Vec<(String, i64)> {
    conn.prepare("SELECT col, count(*) FROM same_value_writes GROUP BY col ORDER BY col")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A channel's uploads, one every three days back from yesterday (so some are old enough
/// for 7- and 30-day views), every fourth a Short, views scaled by `round`.
fn channel(now: Timestamp, round: i64, short_flip: bool) -> Vec<ContentItem> {
    (0..24_i64)
        .map(|i| {
            let mut item = ContentItem::new("youtube_channel", format!("v{i:02}"), "video");
            item.channel_id = Some("UCwatch".into());
            item.published_at = Timestamp::from_second(now.as_second() - 86_400 * (1 + 3 * i)).ok();
            item.metrics.views = Some(1_000 + 100 * i + round * (10 + i));
            item.metrics.likes = Some(10 + round);
            let short = i % 4 == 0;
            item.extra
                .insert("is_short".into(), json!(short != (short_flip && i == 4)));
            item
        })
        .collect()
}

#[test]
fn a_save_never_assigns_an_indexed_column_the_value_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let clock = Arc::new(FakeClock::default());
    let store = SqliteStore::open(SqliteOptions::new(&path), clock.clone()).unwrap();
    let start = clock.now();
    store
        .save_blocking(Some(TaskId(1)), &channel(start, 0, false))
        .unwrap();
    let watch = watch(&path);

    // Views changed two hours later (growth moves, the baseline moves, scores move), by the
    // same task and then another; saved unchanged by a third task and outside any task;
    // only likes changed; a format changed; then the whole channel rescored.
    let hour = Duration::from_secs(3_600);
    clock.advance(2 * hour);
    let first = store
        .save_blocking(Some(TaskId(1)), &channel(start, 1, false))
        .unwrap();
    assert_eq!(first.updated, 24);
    clock.advance(2 * hour);
    store
        .save_blocking(Some(TaskId(2)), &channel(start, 2, false))
        .unwrap();
    clock.advance(hour);
    let same = store
        .save_blocking(Some(TaskId(3)), &channel(start, 2, false))
        .unwrap();
    assert_eq!(same.unchanged, 24);
    clock.advance(hour);
    store
        .save_blocking(None, &channel(start, 2, false))
        .unwrap();
    clock.advance(hour);
    let mut likes = channel(start, 2, false);
    for item in &mut likes {
        item.metrics.likes = item.metrics.likes.map(|l| l + 1);
    }
    store.save_blocking(None, &likes).unwrap();
    clock.advance(hour);
    let mut flipped = channel(start, 2, true);
    for item in &mut flipped {
        item.metrics.likes = item.metrics.likes.map(|l| l + 1);
    }
    store.save_blocking(Some(TaskId(4)), &flipped).unwrap();
    clock.advance(hour);
    store.rescore_blocking(Some("UCwatch")).unwrap();

    // The saves did move the indexed values they had to.
    let moved: (i64, i64, i64) = watch
        .query_row(
            "SELECT count(*) FILTER (WHERE growth_1h IS NOT NULL),
                    count(*) FILTER (WHERE outlier_score IS NOT NULL),
                    count(*) FILTER (WHERE views_7d IS NOT NULL)
             FROM results",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(moved.0, 24, "every video has a growth");
    assert!(
        moved.1 > 0 && moved.2 > 0,
        "scores and 7-day views: {moved:?}"
    );
    assert_eq!(same_value_writes(&watch), Vec::<(String, i64)>::new());

    // The triggers do see an assignment of a value a column already holds.
    watch
        .execute_batch(
            "UPDATE results SET views = views, published_at = published_at WHERE source_id = 'v03'",
        )
        .unwrap();
    assert_eq!(
        same_value_writes(&watch),
        vec![("published_at".to_owned(), 1), ("views".to_owned(), 1)]
    );
}
