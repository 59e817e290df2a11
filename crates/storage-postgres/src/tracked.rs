//! `TrackedVideos` on PostgreSQL: the YouTube records some sighting other than a
//! statistics refresh found, filtered by when that sighting was, the record's channel and
//! the schedule whose task it was, in bytewise id order (`COLLATE "C"`, as SQLite and the
//! in-memory store compare) with keyset paging. All of its SQL is here.

use async_trait::async_trait;

use prismq_domain::ports::{
    check_page_limit, prefix_upper_bound, ScheduleStore, TrackedFilter, TrackedVideos,
    REFRESH_SOURCE,
};
use prismq_domain::PortError;

use crate::codec::get;
use crate::error::map_err;
use crate::PostgresStore;

/// One page of tracked ids; a NULL parameter turns its condition off. The sighting
/// conditions hold for one sighting, its task found through the queue's primary key and
/// its key compared with the range `[$4, $5)`.
const TRACKED_IDS: &str = "SELECT r.source_id COLLATE \"C\" AS id FROM results r \
    WHERE r.platform = 'youtube' \
    AND ($1::text IS NULL OR r.source_id COLLATE \"C\" > $1::text) \
    AND ($3::text IS NULL OR r.channel_id = $3::text) \
    AND EXISTS (SELECT 1 FROM result_sightings s WHERE s.result_id = r.id AND s.source <> $6 \
        AND ($2::bigint IS NULL OR s.seen_at >= $2::bigint) \
        AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM task_queue t WHERE t.id = s.task_id \
            AND t.idempotency_key COLLATE \"C\" >= $4::text \
            AND ($5::text IS NULL OR t.idempotency_key COLLATE \"C\" < $5::text)))) \
    ORDER BY id LIMIT $7";

#[async_trait]
impl TrackedVideos for PostgresStore {
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
        let c = self.client().await?;
        let rows = c
            .query(
                TRACKED_IDS,
                &[
                    &after,
                    &since,
                    &filter.channel_id,
                    &prefix,
                    &bound,
                    &REFRESH_SOURCE,
                    &i64::from(limit),
                ],
            )
            .await
            .map_err(map_err)?;
        rows.iter().map(|r| get::<String>(r, 0)).collect()
    }
}
