//! YouTube Data API quota: the cost table, the midnight-Pacific reset (daylight saving
//! included), and the gate that charges the shared [`QuotaLedger`] before every request.

use prismq_domain::ports::{Clock, QuotaDecision, QuotaLedger};
use prismq_domain::Timestamp;
use serde::Deserialize;
use std::fmt;
use std::sync::Arc;

use super::SourceError;

/// A daily quota bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    /// The 10,000-unit pool shared by every method without its own bucket.
    General,
    /// `search.list`'s own bucket (100 calls a day since June 2026).
    Search,
    /// `videos:batchGetStats`'s bucket: 1 unit a call, from its own 10,000-unit daily
    /// bucket as the revision history's digest has it (the method page gives the price only;
    /// see `docs/tracking.md`).
    Stats,
}

impl Bucket {
    /// The bucket's name in the ledger.
    pub fn ledger_name(self) -> &'static str {
        match self {
            Bucket::General => "youtube_data_api.general",
            Bucket::Search => "youtube_data_api.search",
            Bucket::Stats => "youtube_data_api.stats",
        }
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Bucket::General => "daily unit",
            Bucket::Search => "daily search",
            Bucket::Stats => "daily batchGetStats",
        })
    }
}

/// What one call of a method costs, and from which bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cost {
    /// The bucket charged.
    pub bucket: Bucket,
    /// Units per call (per page).
    pub units: u64,
}

/// The cost of each method the client calls. Defaults are today's published prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CostTable {
    /// `channels.list`.
    pub channels: Cost,
    /// `playlistItems.list`.
    pub playlist_items: Cost,
    /// `videos.list`.
    pub videos: Cost,
    /// `search.list`.
    pub search: Cost,
    /// `videoCategories.list` (one call per `trending_scrape` task).
    pub video_categories: Cost,
    /// `videos:batchGetStats` (`refresh_stats` with `method: batch_get_stats`).
    pub batch_get_stats: Cost,
}

impl Default for CostTable {
    fn default() -> Self {
        let general = Cost {
            bucket: Bucket::General,
            units: 1,
        };
        CostTable {
            channels: general,
            playlist_items: general,
            videos: general,
            video_categories: general,
            search: Cost {
                bucket: Bucket::Search,
                units: 1,
            },
            batch_get_stats: Cost {
                bucket: Bucket::Stats,
                units: 1,
            },
        }
    }
}

/// Daily limits and prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaConfig {
    /// Units a day in the general bucket (10,000).
    pub general_daily_units: u64,
    /// Units a day in the search bucket (100 calls).
    pub search_daily_units: u64,
    /// Units a day in the batchGetStats bucket (10,000).
    pub stats_daily_units: u64,
    /// Prices.
    pub costs: CostTable,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            general_daily_units: 10_000,
            search_daily_units: 100,
            stats_daily_units: 10_000,
            costs: CostTable::default(),
        }
    }
}

impl QuotaConfig {
    /// The daily limit of `bucket`.
    pub fn limit(&self, bucket: Bucket) -> u64 {
        match bucket {
            Bucket::General => self.general_daily_units,
            Bucket::Search => self.search_daily_units,
            Bucket::Stats => self.stats_daily_units,
        }
    }
}

/// The time zone whose midnight resets YouTube quotas.
pub const QUOTA_TIME_ZONE: &str = "America/Los_Angeles";

/// The first midnight in America/Los_Angeles strictly after `now`: 07:00 UTC while daylight
/// saving time is in force, 08:00 UTC otherwise.
pub fn next_reset(now: Timestamp) -> Timestamp {
    // The bundled tz database always has this zone; the fallback (UTC-8, standard time) is
    // only reachable if it somehow did not, and errs by at most an hour towards later.
    let Ok(tz) = jiff::tz::TimeZone::get(QUOTA_TIME_ZONE) else {
        return fixed_offset_reset(now);
    };
    let local = now.to_zoned(tz.clone());
    local
        .date()
        .tomorrow()
        .and_then(|d| d.to_zoned(tz))
        .map(|z| z.timestamp())
        .unwrap_or_else(|_| fixed_offset_reset(now))
}

fn fixed_offset_reset(now: Timestamp) -> Timestamp {
    const DAY: i64 = 86_400;
    const OFFSET: i64 = 8 * 3_600;
    let local_day = (now.as_second() - OFFSET).div_euclid(DAY);
    Timestamp::from_second((local_day + 1) * DAY + OFFSET).unwrap_or(now)
}

/// Charges the shared ledger before each request and records exhaustion the API reports.
#[derive(Clone)]
pub struct QuotaGate {
    ledger: Arc<dyn QuotaLedger>,
    clock: Arc<dyn Clock>,
    config: QuotaConfig,
}

impl fmt::Debug for QuotaGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuotaGate")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl QuotaGate {
    /// A gate over `ledger` with `config`'s limits and prices.
    pub fn new(ledger: Arc<dyn QuotaLedger>, clock: Arc<dyn Clock>, config: QuotaConfig) -> Self {
        QuotaGate {
            ledger,
            clock,
            config,
        }
    }

    /// The next reset instant from the clock's now.
    pub fn next_reset(&self) -> Timestamp {
        next_reset(self.clock.now())
    }

    /// The current instant.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Charges `cost` before a request is sent.
    ///
    /// # Errors
    /// `QuotaExhausted` when the bucket has no room (nothing is charged and nothing should
    /// be sent), `Ledger` when the ledger fails.
    pub async fn charge(&self, cost: Cost) -> Result<(), SourceError> {
        let limit = self.config.limit(cost.bucket);
        let window_end = self.next_reset();
        match self
            .ledger
            .try_consume(cost.bucket.ledger_name(), cost.units, limit, window_end)
            .await
            .map_err(SourceError::Ledger)?
        {
            QuotaDecision::Granted { .. } => Ok(()),
            QuotaDecision::Exhausted { until } => {
                self.mark_if_spent(cost.bucket, limit, until).await;
                Err(SourceError::QuotaExhausted {
                    bucket: cost.bucket,
                    until,
                })
            }
        }
    }

    /// Our own count refused a charge: when nothing at all is left in the bucket (used ≥
    /// limit), marks it exhausted until the window's end too, so the worker runtime, which
    /// reads only the marks, stops claiming the types that charge it. A charge refused only
    /// because it is larger than what is left marks nothing (smaller calls still fit).
    async fn mark_if_spent(&self, bucket: Bucket, limit: u64, until: Timestamp) {
        let name = bucket.ledger_name();
        let spent = match self.ledger.used(name).await {
            Ok(used) => used >= limit,
            Err(e) => {
                tracing::warn!(error = %e, bucket = name, "could not read the quota bucket's usage");
                return;
            }
        };
        if spent {
            if let Err(e) = self.ledger.mark_exhausted(name, until).await {
                tracing::warn!(error = %e, bucket = name, "could not mark the quota bucket exhausted");
            }
        }
    }

    /// Marks `bucket` spent until the next reset (the API said so) and returns the error
    /// to report.
    pub async fn exhausted(&self, bucket: Bucket) -> SourceError {
        let until = self.next_reset();
        if let Err(e) = self
            .ledger
            .mark_exhausted(bucket.ledger_name(), until)
            .await
        {
            tracing::warn!(error = %e, bucket = bucket.ledger_name(), "could not mark the quota bucket exhausted");
        }
        SourceError::QuotaExhausted { bucket, until }
    }

    /// The configured prices.
    pub fn costs(&self) -> &CostTable {
        &self.config.costs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn resets_around_the_2026_daylight_saving_changes() {
        // Autumn: PDT ends 2026-11-01 09:00 UTC.
        assert_eq!(
            next_reset(ts("2026-11-01T06:59:59Z")),
            ts("2026-11-01T07:00:00Z")
        );
        assert_eq!(
            next_reset(ts("2026-11-01T07:00:00Z")),
            ts("2026-11-02T08:00:00Z")
        );
        assert_eq!(
            next_reset(ts("2026-11-02T07:59:59Z")),
            ts("2026-11-02T08:00:00Z")
        );
        assert_eq!(
            next_reset(ts("2026-11-02T08:00:00Z")),
            ts("2026-11-03T08:00:00Z")
        );
        // Spring: PDT starts 2026-03-08 10:00 UTC.
        assert_eq!(
            next_reset(ts("2026-03-08T07:59:59Z")),
            ts("2026-03-08T08:00:00Z")
        );
        assert_eq!(
            next_reset(ts("2026-03-08T08:00:00Z")),
            ts("2026-03-09T07:00:00Z")
        );
        assert_eq!(
            next_reset(ts("2026-03-09T06:59:59Z")),
            ts("2026-03-09T07:00:00Z")
        );
        assert_eq!(
            next_reset(ts("2026-03-09T07:00:00Z")),
            ts("2026-03-10T07:00:00Z")
        );
        // The observed 429's window_start_time (midnight PDT, 2026-09-25).
        assert_eq!(
            next_reset(ts("2026-09-24T12:00:00Z")),
            Timestamp::from_second(1_790_319_600).unwrap()
        );
    }

    #[test]
    fn fallback_is_standard_time_midnight() {
        assert_eq!(
            fixed_offset_reset(ts("2026-01-10T07:59:59Z")),
            ts("2026-01-10T08:00:00Z")
        );
        assert_eq!(
            fixed_offset_reset(ts("2026-01-10T08:00:00Z")),
            ts("2026-01-11T08:00:00Z")
        );
    }
}
