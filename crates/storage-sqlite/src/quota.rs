//! The quota ledger: per-bucket usage within a window, shared by every process on the file.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

use prismq_domain::ports::{QuotaDecision, QuotaLedger, QuotaUsage};
use prismq_domain::{PortError, Timestamp};

use crate::codec::ts;
use crate::error::map_err;
use crate::SqliteStore;

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl SqliteStore {
    fn consume_blocking(
        &self,
        bucket: &str,
        units: u64,
        limit: u64,
        window_end: Timestamp,
    ) -> Result<QuotaDecision, PortError> {
        let now = self.now_ms();
        self.write(|tx| {
            let row: Option<(i64, i64, Option<i64>)> = tx
                .prepare_cached("SELECT window_end, used, exhausted_until FROM quota_usage WHERE bucket = ?1")
                .and_then(|mut s| s.query_row([bucket], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional())
                .map_err(map_err)?;
            let (end, used, exhausted) = match row {
                Some((end, used, ex)) if end > now => (end, to_u64(used), ex),
                Some((_, _, ex)) => (window_end.as_millisecond(), 0, ex),
                None => (window_end.as_millisecond(), 0, None),
            };
            if let Some(until) = exhausted.filter(|&u| u > now) {
                return Ok(QuotaDecision::Exhausted { until: ts(0, until).map_err(map_err)? });
            }
            if used.saturating_add(units) > limit {
                tx.prepare_cached(
                    "INSERT INTO quota_usage (bucket, window_end, used, exhausted_until) VALUES (?1, ?2, ?3, NULL)
                     ON CONFLICT (bucket) DO UPDATE SET window_end = excluded.window_end, used = excluded.used",
                )
                .and_then(|mut s| s.execute(params![bucket, end, to_i64(used)]))
                .map_err(map_err)?;
                return Ok(QuotaDecision::Exhausted { until: ts(0, end).map_err(map_err)? });
            }
            let used = used + units;
            tx.prepare_cached(
                "INSERT INTO quota_usage (bucket, window_end, used, exhausted_until) VALUES (?1, ?2, ?3, NULL)
                 ON CONFLICT (bucket) DO UPDATE SET window_end = excluded.window_end, used = excluded.used,
                   exhausted_until = CASE WHEN exhausted_until > ?4 THEN exhausted_until END",
            )
            .and_then(|mut s| s.execute(params![bucket, end, to_i64(used), now]))
            .map_err(map_err)?;
            Ok(QuotaDecision::Granted { remaining: limit - used })
        })
    }

    fn mark_exhausted_blocking(&self, bucket: &str, until: Timestamp) -> Result<(), PortError> {
        let until = until.as_millisecond();
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO quota_usage (bucket, window_end, used, exhausted_until) VALUES (?1, ?2, 0, ?2)
                 ON CONFLICT (bucket) DO UPDATE SET exhausted_until = excluded.exhausted_until",
            )
            .and_then(|mut s| s.execute(params![bucket, until]))
            .map_err(map_err)?;
            Ok(())
        })
    }

    fn usage_blocking(&self) -> Result<Vec<QuotaUsage>, PortError> {
        let now = self.now_ms();
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT bucket, window_end, used, exhausted_until FROM quota_usage ORDER BY bucket")
                .map_err(map_err)?;
            let rows = stmt
                .query_map([], |r| {
                    let window_end: i64 = r.get(1)?;
                    let exhausted: Option<i64> = r.get(3)?;
                    Ok(QuotaUsage {
                        bucket: r.get(0)?,
                        used: if window_end > now { to_u64(r.get(2)?) } else { 0 },
                        window_end: ts(1, window_end)?,
                        exhausted_until: exhausted.filter(|&u| u > now).map(|u| ts(3, u)).transpose()?,
                    })
                })
                .map_err(map_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
        })
    }

    fn used_blocking(&self, bucket: &str) -> Result<u64, PortError> {
        let now = self.now_ms();
        self.read(|conn| {
            let used: Option<i64> = conn
                .prepare_cached(
                    "SELECT used FROM quota_usage WHERE bucket = ?1 AND window_end > ?2",
                )
                .and_then(|mut s| s.query_row(params![bucket, now], |r| r.get(0)).optional())
                .map_err(map_err)?;
            Ok(used.map_or(0, to_u64))
        })
    }
}

#[async_trait]
impl QuotaLedger for SqliteStore {
    async fn try_consume(
        &self,
        bucket: &str,
        units: u64,
        limit: u64,
        window_end: Timestamp,
    ) -> Result<QuotaDecision, PortError> {
        let bucket = bucket.to_owned();
        self.blocking(move |s| s.consume_blocking(&bucket, units, limit, window_end))
            .await
    }

    async fn mark_exhausted(&self, bucket: &str, until: Timestamp) -> Result<(), PortError> {
        let bucket = bucket.to_owned();
        self.blocking(move |s| s.mark_exhausted_blocking(&bucket, until))
            .await
    }

    async fn used(&self, bucket: &str) -> Result<u64, PortError> {
        let bucket = bucket.to_owned();
        self.blocking(move |s| s.used_blocking(&bucket)).await
    }

    async fn usage(&self) -> Result<Vec<QuotaUsage>, PortError> {
        self.blocking(|s| s.usage_blocking()).await
    }
}
