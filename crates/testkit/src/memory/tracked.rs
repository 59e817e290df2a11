//! `TrackedVideos` for `MemoryStore`: the reference the contract suite holds the SQL
//! adapters to, a plain walk over every stored item.

use std::collections::BTreeSet;

use async_trait::async_trait;
use prismq_domain::ports::{
    check_page_limit, ResultStore, ScheduleStore, TrackedFilter, TrackedVideos, REFRESH_SOURCE,
    TRACKED_PLATFORM,
};
use prismq_domain::PortError;

use super::MemoryStore;

#[async_trait]
impl TrackedVideos for MemoryStore {
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
        let ids: Vec<String> = self
            .state()
            .results
            .keys()
            .filter(|(platform, id)| {
                platform == TRACKED_PLATFORM && after.as_ref().is_none_or(|a| id > a)
            })
            .map(|(_, id)| id.clone())
            .collect();
        let mut out = BTreeSet::new();
        for id in ids {
            let stored = self.get(TRACKED_PLATFORM, &id).await?;
            if filter
                .channel_id
                .as_ref()
                .is_some_and(|c| stored.item.channel_id.as_ref() != Some(c))
            {
                continue;
            }
            let sightings = self
                .sightings(TRACKED_PLATFORM, &id, prismq_domain::ports::MAX_PAGE_LIMIT)
                .await?;
            let found = sightings.iter().any(|s| {
                let seen = filter.seen_since.is_none_or(|since| s.seen_at >= since);
                let scheduled = match &prefix {
                    None => true,
                    Some(p) => s.task_id.is_some_and(|t| {
                        self.state()
                            .tasks
                            .get(&t)
                            .and_then(|task| task.idempotency_key.as_deref())
                            .is_some_and(|k| k.starts_with(p.as_str()))
                    }),
                };
                s.source != REFRESH_SOURCE && seen && scheduled
            });
            if found {
                out.insert(id);
            }
        }
        Ok(out.into_iter().take(limit as usize).collect())
    }
}
