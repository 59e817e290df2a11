//! `TrackedVideos` on SQLite: the distinct video ids of table `results` under the tracked
//! sources, filtered by when they were seen, their channel and the schedule whose task last
//! saved them, in id order with keyset paging. All of its SQL is here, so the results
//! table's redesign (one record per video) changes only this file.

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
/// off. A schedule's tasks are found through the row's `last_task_id` (the queue's primary
/// key), their keys compared with the range `[prefix, bound)`.
const TRACKED_IDS_SQL: &str = "SELECT DISTINCT r.source_id FROM results r \
    WHERE r.source LIKE 'youtube\\_%' ESCAPE '\\' AND r.source <> ?6 \
    AND (?1 IS NULL OR r.source_id > ?1) \
    AND (?2 IS NULL OR r.last_seen_at >= ?2) \
    AND (?3 IS NULL OR r.channel_id = ?3) \
    AND (?4 IS NULL OR EXISTS (SELECT 1 FROM task_queue t WHERE t.id = r.last_task_id \
        AND t.idempotency_key >= ?4 AND (?5 IS NULL OR t.idempotency_key < ?5))) \
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
