//! `TrackedVideos` on SQLite: the YouTube records some sighting other than a statistics
//! refresh found, filtered by when that sighting was, the record's channel and the schedule
//! whose task it was, in id order with keyset paging. All of its SQL is here.

use async_trait::async_trait;
use rusqlite::params;

use prismq_domain::ports::{
    check_page_limit, prefix_upper_bound, ScheduleStore, TrackedFilter, TrackedVideos,
    REFRESH_SOURCE,
};
use prismq_domain::PortError;

use crate::error::map_err;
use crate::SqliteStore;

/// One page of tracked ids. `?1` after, `?2` seen since (ms), `?3` channel id, `?4`/`?5` the
/// schedule's key range, `?6` the refresh's source, `?7` limit; a NULL turns its condition
/// off. The records are walked in id order through the unique (platform, source_id) key;
/// the sighting conditions hold for one sighting, its task found through the queue's
/// primary key and its key compared with the range `[prefix, bound)`.
const TRACKED_IDS_SQL: &str = "SELECT r.source_id FROM results r \
    WHERE r.platform = 'youtube' \
    AND (?1 IS NULL OR r.source_id > ?1) \
    AND (?3 IS NULL OR r.channel_id = ?3) \
    AND EXISTS (SELECT 1 FROM result_sightings s WHERE s.result_id = r.id AND s.source <> ?6 \
        AND (?2 IS NULL OR s.seen_at >= ?2) \
        AND (?4 IS NULL OR EXISTS (SELECT 1 FROM task_queue t WHERE t.id = s.task_id \
            AND t.idempotency_key >= ?4 AND (?5 IS NULL OR t.idempotency_key < ?5)))) \
    ORDER BY r.source_id LIMIT ?7";

#[async_trait]
impl TrackedVideos for SqliteStore {
    async fn tracked_ids(
        &self,
        filter: &TrackedFilter,
        after: Option<String>,
        limit: u32,
    ) -> Result<Vec<String>, PortError> {
        check_page_limit(limit)?;
        let prefix = match &filter.schedule {
            Some(name) => Some(self.get_schedule(name).await?.key_prefix()),
            None => None,
        };
        let bound = prefix.as_deref().and_then(prefix_upper_bound);
        let since = filter.seen_since.map(|t| t.as_millisecond());
        let channel = filter.channel_id.clone();
        self.blocking(move |store| {
            store.read(|conn| {
                let mut stmt = conn.prepare_cached(TRACKED_IDS_SQL).map_err(map_err)?;
                let rows = stmt
                    .query_map(
                        params![
                            after,
                            since,
                            channel,
                            prefix,
                            bound,
                            REFRESH_SOURCE,
                            i64::from(limit)
                        ],
                        |r| r.get::<_, String>(0),
                    )
                    .map_err(map_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
            })
        })
        .await
    }
}
