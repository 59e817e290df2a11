//! `TrackedVideos` for `MemoryStore`: the reference the contract suite holds the SQL
//! adapters to, a plain walk over every stored item.

use std::collections::BTreeSet;

use async_trait::async_trait;
use prismq_domain::ports::{
    check_page_limit, ResultStore, ScheduleStore, TrackedFilter, TrackedVideos, REFRESH_SOURCE,
    TRACKED_SOURCE_PREFIX,
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
        let keys: Vec<(String, String)> = self
            .state()
            .results
            .keys()
            .filter(|(source, _)| {
                source.starts_with(TRACKED_SOURCE_PREFIX) && source != REFRESH_SOURCE
            })
            .cloned()
            .collect();
        let mut ids = BTreeSet::new();
        for (source, id) in keys {
            if after.as_ref().is_some_and(|a| id <= *a) || ids.contains(&id) {
                continue;
            }
            let stored = self.get(&source, &id).await?;
            let seen = filter
                .seen_since
                .is_none_or(|since| stored.last_seen_at >= since);
            let channel = filter
                .channel_id
                .as_ref()
                .is_none_or(|c| stored.item.channel_id.as_ref() == Some(c));
            let scheduled = match &prefix {
                None => true,
                Some(p) => stored.last_task_id.is_some_and(|t| {
                    self.state()
                        .tasks
                        .get(&t)
                        .and_then(|task| task.idempotency_key.as_deref())
                        .is_some_and(|k| k.starts_with(p.as_str()))
                }),
            };
            if seen && channel && scheduled {
                ids.insert(id);
            }
        }
        Ok(ids.into_iter().take(limit as usize).collect())
    }
}
