//! `QuotaLedger` for `MemoryStore`: per-bucket usage in a window, plus an exhaustion mark.

use async_trait::async_trait;
use prismq_domain::ports::{QuotaDecision, QuotaLedger, QuotaUsage};
use prismq_domain::{PortError, Timestamp};

use super::MemoryStore;
use crate::clock::truncate_to_millis;

/// One bucket's counters.
#[derive(Debug, Clone, Default)]
pub(super) struct Bucket {
    /// The current window's end; `None` before the first charge.
    pub(super) window_end: Option<Timestamp>,
    pub(super) used: u64,
    pub(super) exhausted_until: Option<Timestamp>,
}

impl Bucket {
    /// Units used in a window still open at `now`.
    fn used_at(&self, now: Timestamp) -> u64 {
        match self.window_end {
            Some(end) if end > now => self.used,
            _ => 0,
        }
    }
}

#[async_trait]
impl QuotaLedger for MemoryStore {
    async fn try_consume(
        &self,
        bucket: &str,
        units: u64,
        limit: u64,
        window_end: Timestamp,
    ) -> Result<QuotaDecision, PortError> {
        let now = self.now();
        let mut st = self.state();
        let b = st.quota.entry(bucket.to_owned()).or_default();
        let end = match b.window_end {
            Some(end) if end > now => end,
            _ => {
                let end = truncate_to_millis(window_end);
                b.window_end = Some(end);
                b.used = 0;
                end
            }
        };
        if let Some(until) = b.exhausted_until.filter(|&u| u > now) {
            return Ok(QuotaDecision::Exhausted { until });
        }
        match b.used.checked_add(units) {
            Some(total) if total <= limit => {
                b.used = total;
                Ok(QuotaDecision::Granted {
                    remaining: limit - total,
                })
            }
            _ => Ok(QuotaDecision::Exhausted { until: end }),
        }
    }

    async fn mark_exhausted(&self, bucket: &str, until: Timestamp) -> Result<(), PortError> {
        let mut st = self.state();
        st.quota
            .entry(bucket.to_owned())
            .or_default()
            .exhausted_until = Some(truncate_to_millis(until));
        Ok(())
    }

    async fn used(&self, bucket: &str) -> Result<u64, PortError> {
        let now = self.now();
        Ok(self.state().quota.get(bucket).map_or(0, |b| b.used_at(now)))
    }

    async fn usage(&self) -> Result<Vec<QuotaUsage>, PortError> {
        let now = self.now();
        let st = self.state();
        let mut out: Vec<QuotaUsage> = st
            .quota
            .iter()
            .map(|(name, b)| QuotaUsage {
                bucket: name.clone(),
                used: b.used_at(now),
                window_end: b.window_end.or(b.exhausted_until).unwrap_or(now),
                exhausted_until: b.exhausted_until.filter(|&u| u > now),
            })
            .collect();
        out.sort_by(|a, b| a.bucket.cmp(&b.bucket));
        Ok(out)
    }
}
