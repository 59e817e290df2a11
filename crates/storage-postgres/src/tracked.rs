//! `TrackedVideos` on PostgreSQL: the distinct video ids of table `results` under the
//! tracked sources, filtered by when they were seen, their channel and the schedule whose
//! task last saved them, in bytewise id order (`COLLATE "C"`, as SQLite and the in-memory
//! store compare) with keyset paging. All of its SQL is here, so the results table's
//! redesign (one record per video) changes only this file.

use async_trait::async_trait;

use prismq_domain::ports::{
    check_page_limit, prefix_upper_bound, ScheduleStore, TrackedFilter, TrackedVideos,
    REFRESH_SOURCE,
};
use prismq_domain::PortError;

use crate::codec::get;
use crate::error::map_err;
use crate::PostgresStore;

/// One page of tracked ids; a NULL parameter turns its condition off. A schedule's tasks
/// are found through the row's `last_task_id` (the queue's primary key), their keys
/// compared with the range `[$4, $5)`.
const TRACKED_IDS: &str = "SELECT DISTINCT r.source_id COLLATE \"C\" AS id FROM results r \
    WHERE r.source LIKE 'youtube\\_%' AND r.source <> $6 \
    AND ($1::text IS NULL OR r.source_id COLLATE \"C\" > $1::text) \
    AND ($2::bigint IS NULL OR r.last_seen_at >= $2::bigint) \
    AND ($3::text IS NULL OR r.channel_id = $3::text) \
    AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM task_queue t WHERE t.id = r.last_task_id \
        AND t.idempotency_key COLLATE \"C\" >= $4::text \
        AND ($5::text IS NULL OR t.idempotency_key COLLATE \"C\" < $5::text))) \
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
