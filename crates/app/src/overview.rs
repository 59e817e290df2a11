//! The queue at a glance, as `prismq stats` and the dashboard's overview show it: counts by
//! type and status, recent throughput and failure rate, the oldest eligible task, workers by
//! health, stored results, and each quota bucket's use against its configured daily limit.

use serde::Serialize;

use prismq_domain::ports::{QueueStats, QuotaUsage, WorkerHealth, WorkerRecord};
use prismq_domain::{PortError, TaskStatus, Timestamp};

use crate::wiring::App;

/// Everything the overview shows, read together.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overview {
    /// When it was read (the app's clock).
    pub at: Timestamp,
    /// Counts by type and status, oldest eligible task, recent finishes.
    pub stats: QueueStats,
    /// Stored results across every source.
    pub results: u64,
    /// Registered worker loops (stale: silent for three heartbeat intervals).
    pub workers: Vec<WorkerRecord>,
    /// Every quota bucket's use in its window, as the ledger holds it.
    pub quota: Vec<QuotaUsage>,
}

/// One quota bucket with its configured daily limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuotaLine {
    /// The bucket's ledger name.
    pub bucket: String,
    /// Units used in the current window.
    pub used: u64,
    /// The configured daily limit, when the bucket is one this build configures.
    pub limit: Option<u64>,
    /// `limit - used` (0 when spent or marked exhausted).
    pub left: Option<u64>,
    /// When the window resets.
    pub reset: Timestamp,
    /// Marked exhausted until this instant (the API said so).
    pub exhausted_until: Option<Timestamp>,
}

/// The worker health states in display order.
pub const HEALTH_ORDER: [WorkerHealth; 3] = [
    WorkerHealth::Active,
    WorkerHealth::Stale,
    WorkerHealth::Stopped,
];

/// A health state's name.
pub fn health_name(h: WorkerHealth) -> &'static str {
    match h {
        WorkerHealth::Active => "active",
        WorkerHealth::Stale => "stale",
        WorkerHealth::Stopped => "stopped",
    }
}

impl App {
    /// Reads the overview.
    ///
    /// # Errors
    /// The store's error.
    pub async fn overview(&self) -> Result<Overview, PortError> {
        let stale_after = self.config.worker.heartbeat_interval * 3;
        Ok(Overview {
            at: self.clock.now(),
            stats: self.queue.stats().await?,
            results: self.results.count(None).await?,
            workers: self.workers.list(stale_after).await?,
            quota: self.quota.usage().await?,
        })
    }

    /// The configured daily limit of a quota bucket, by its ledger name (as the plugins
    /// declare it, [`crate::wiring::quota_limits`]).
    pub fn quota_limit(&self, bucket: &str) -> Option<u64> {
        crate::wiring::quota_limits(&self.config, self.clock.now())
            .into_iter()
            .find(|l| l.bucket == bucket)
            .map(|l| l.limit)
    }

    /// The overview's quota buckets with their limits.
    pub fn quota_lines(&self, overview: &Overview) -> Vec<QuotaLine> {
        overview
            .quota
            .iter()
            .map(|q| {
                let limit = self.quota_limit(&q.bucket);
                let spent = q.exhausted_until.is_some_and(|u| u > overview.at);
                QuotaLine {
                    bucket: q.bucket.clone(),
                    used: q.used,
                    limit,
                    left: limit.map(|l| if spent { 0 } else { l.saturating_sub(q.used) }),
                    reset: q.window_end,
                    exhausted_until: q.exhausted_until,
                }
            })
            .collect()
    }
}

impl Overview {
    /// How many workers are in each health state, in [`HEALTH_ORDER`].
    pub fn workers_by_health(&self) -> [(WorkerHealth, usize); 3] {
        HEALTH_ORDER.map(|h| (h, self.workers.iter().filter(|w| w.health == h).count()))
    }

    /// The task types present, sorted, without repeats.
    pub fn task_types(&self) -> Vec<String> {
        let mut types: Vec<String> = self
            .stats
            .counts
            .iter()
            .map(|c| c.task_type.to_string())
            .collect();
        types.sort();
        types.dedup();
        types
    }

    /// Tasks of `task_type` (every type for `None`) in `status`.
    pub fn count(&self, task_type: Option<&str>, status: TaskStatus) -> u64 {
        self.stats
            .counts
            .iter()
            .filter(|c| c.status == status && task_type.is_none_or(|t| c.task_type.as_str() == t))
            .map(|c| c.count)
            .sum()
    }

    /// How long the oldest eligible task has waited, in whole seconds (none when none waits).
    pub fn oldest_wait_secs(&self) -> Option<i64> {
        self.stats
            .oldest_eligible
            .map(|at| self.at.duration_since(at).as_secs().max(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prismq_domain::ports::StatusCount;
    use prismq_domain::TaskType;

    fn overview(counts: Vec<StatusCount>) -> Overview {
        Overview {
            at: Timestamp::from_second(1_000).unwrap(),
            stats: QueueStats {
                counts,
                oldest_eligible: Some(Timestamp::from_second(940).unwrap()),
                recent: Default::default(),
            },
            results: 0,
            workers: Vec::new(),
            quota: Vec::new(),
        }
    }

    #[test]
    fn counts_add_up_by_type_and_status() {
        let c = |t: &str, s, n| StatusCount {
            task_type: TaskType::new(t).unwrap(),
            status: s,
            count: n,
        };
        let o = overview(vec![
            c("b_type", TaskStatus::Queued, 3),
            c("a_type", TaskStatus::Queued, 2),
            c("a_type", TaskStatus::Failed, 1),
        ]);
        assert_eq!(o.task_types(), ["a_type", "b_type"]);
        assert_eq!(o.count(None, TaskStatus::Queued), 5);
        assert_eq!(o.count(Some("a_type"), TaskStatus::Queued), 2);
        assert_eq!(o.count(Some("b_type"), TaskStatus::Failed), 0);
        assert_eq!(o.oldest_wait_secs(), Some(60));
    }
}
