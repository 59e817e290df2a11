//! The quota ledger: per-bucket usage within a window, shared by every process on the
//! database. A charge locks the bucket's row, so racing callers never both get the last units.

use async_trait::async_trait;

use prismq_domain::ports::{QuotaDecision, QuotaLedger, QuotaUsage};
use prismq_domain::{PortError, Timestamp};

use crate::codec::{get, ts};
use crate::error::map_err;
use crate::{in_tx, PostgresStore};

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[async_trait]
impl QuotaLedger for PostgresStore {
    async fn try_consume(
        &self,
        bucket: &str,
        units: u64,
        limit: u64,
        window_end: Timestamp,
    ) -> Result<QuotaDecision, PortError> {
        let now = self.now_ms();
        let fresh_end = window_end.as_millisecond();
        in_tx!(self, |tx| {
            async {
            // A bucket never used is a row at zero in the caller's window; then lock it.
            tx.execute(
                "INSERT INTO quota_usage (bucket, window_end, used, exhausted_until) VALUES ($1, $2, 0, NULL)
                 ON CONFLICT (bucket) DO NOTHING",
                &[&bucket, &fresh_end],
            )
            .await
            .map_err(map_err)?;
            let row = tx
                .query_one(
                    "SELECT window_end, used, exhausted_until FROM quota_usage WHERE bucket = $1 FOR UPDATE",
                    &[&bucket],
                )
                .await
                .map_err(map_err)?;
            let (end, used, exhausted): (i64, i64, Option<i64>) = (get(&row, 0)?, get(&row, 1)?, get(&row, 2)?);
            let (end, used) = if end > now { (end, to_u64(used)) } else { (fresh_end, 0) };
            if let Some(until) = exhausted.filter(|&u| u > now) {
                return Ok(QuotaDecision::Exhausted { until: ts(until)? });
            }
            if used.saturating_add(units) > limit {
                tx.execute(
                    "UPDATE quota_usage SET window_end = $2, used = $3 WHERE bucket = $1",
                    &[&bucket, &end, &to_i64(used)],
                )
                .await
                .map_err(map_err)?;
                return Ok(QuotaDecision::Exhausted { until: ts(end)? });
            }
            let used = used + units;
            tx.execute(
                "UPDATE quota_usage SET window_end = $2, used = $3,
                   exhausted_until = CASE WHEN exhausted_until > $4 THEN exhausted_until END
                 WHERE bucket = $1",
                &[&bucket, &end, &to_i64(used), &now],
            )
            .await
            .map_err(map_err)?;
            Ok(QuotaDecision::Granted { remaining: limit - used })
        }
        .await
        })
    }

    async fn mark_exhausted(&self, bucket: &str, until: Timestamp) -> Result<(), PortError> {
        let until = until.as_millisecond();
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO quota_usage (bucket, window_end, used, exhausted_until) VALUES ($1, $2, 0, $2)
                 ON CONFLICT (bucket) DO UPDATE SET exhausted_until = excluded.exhausted_until",
                &[&bucket, &until],
            )
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn usage(&self) -> Result<Vec<QuotaUsage>, PortError> {
        let now = self.now_ms();
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT bucket, window_end, used, exhausted_until FROM quota_usage ORDER BY bucket",
                &[],
            )
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let window_end: i64 = get(r, 1)?;
                let exhausted: Option<i64> = get(r, 3)?;
                Ok(QuotaUsage {
                    bucket: get(r, 0)?,
                    used: if window_end > now {
                        to_u64(get(r, 2)?)
                    } else {
                        0
                    },
                    window_end: ts(window_end)?,
                    exhausted_until: exhausted.filter(|&u| u > now).map(ts).transpose()?,
                })
            })
            .collect()
    }

    async fn used(&self, bucket: &str) -> Result<u64, PortError> {
        let now = self.now_ms();
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT used FROM quota_usage WHERE bucket = $1 AND window_end > $2",
                &[&bucket, &now],
            )
            .await
            .map_err(map_err)?;
        Ok(match row {
            Some(r) => to_u64(get(&r, 0)?),
            None => 0,
        })
    }
}
