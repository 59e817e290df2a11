//! The API keys of `prismq serve`: hashes, prefixes, scopes and rate limits in `api_keys`.

use async_trait::async_trait;
use tokio_postgres::Row;

use prismq_domain::ports::keys::{scopes_from_text, scopes_to_text};
use prismq_domain::ports::{ApiKey, ApiKeyId, ApiKeyStore, KeyHash, NewApiKey, PresentedKey};
use prismq_domain::{PortError, Timestamp};

use crate::codec::{get, ts, ts_opt};
use crate::error::map_err;
use crate::PostgresStore;

const COLUMNS: &str =
    "id, name, prefix, scopes, rate_limit, active, created_at, last_used_at, key_hash";

/// A key row (in [`COLUMNS`] order) and its stored hash.
fn key_from_row(r: &Row) -> Result<(ApiKey, String), PortError> {
    let scopes: String = get(r, 3)?;
    let id = ApiKeyId(get(r, 0)?);
    Ok((
        ApiKey {
            id,
            name: get(r, 1)?,
            prefix: get(r, 2)?,
            scopes: scopes_from_text(&scopes)
                .map_err(|e| PortError::Corrupt(format!("api_keys row {id}: {e}")))?,
            rate_limit: u32::try_from(get::<i64>(r, 4)?).unwrap_or(u32::MAX),
            active: get(r, 5)?,
            created_at: ts(get(r, 6)?)?,
            last_used_at: ts_opt(get(r, 7)?)?,
        },
        get(r, 8)?,
    ))
}

#[async_trait]
impl ApiKeyStore for PostgresStore {
    async fn create(&self, key: NewApiKey) -> Result<ApiKey, PortError> {
        key.validate()?;
        let now = self.now_ms();
        let client = self.client().await?;
        let row = client
            .query_one(
                &format!(
                    "INSERT INTO api_keys (name, prefix, key_hash, scopes, rate_limit, active, created_at)
                     VALUES ($1, $2, $3, $4, $5, TRUE, $6) RETURNING {COLUMNS}"
                ),
                &[
                    &key.name,
                    &key.prefix,
                    &key.hash.to_hex(),
                    &scopes_to_text(&key.scopes),
                    &i64::from(key.rate_limit),
                    &now,
                ],
            )
            .await
            .map_err(|e| match map_err(e) {
                PortError::Duplicate(_) => PortError::Duplicate(format!(
                    "an API key with prefix {} already exists",
                    key.prefix
                )),
                other => other,
            })?;
        Ok(key_from_row(&row)?.0)
    }

    async fn list(&self) -> Result<Vec<ApiKey>, PortError> {
        let client = self.client().await?;
        let rows = client
            .query(&format!("SELECT {COLUMNS} FROM api_keys ORDER BY id"), &[])
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| key_from_row(r).map(|(k, _)| k))
            .collect()
    }

    async fn revoke(&self, id: ApiKeyId) -> Result<ApiKey, PortError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("UPDATE api_keys SET active = FALSE WHERE id = $1 RETURNING {COLUMNS}"),
                &[&id.0],
            )
            .await
            .map_err(map_err)?
            .ok_or_else(|| PortError::NotFound(format!("API key {id}")))?;
        Ok(key_from_row(&row)?.0)
    }

    async fn verify(&self, presented: &PresentedKey) -> Result<Option<ApiKey>, PortError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!("SELECT {COLUMNS} FROM api_keys WHERE prefix = $1 ORDER BY id"),
                &[&presented.prefix],
            )
            .await
            .map_err(map_err)?;
        let mut found = None;
        for r in &rows {
            let (key, hash) = key_from_row(r)?;
            let stored = KeyHash::from_hex(&hash)
                .map_err(|e| PortError::Corrupt(format!("api_keys row {}: {e}", key.id)))?;
            if stored.matches(&presented.hash) && key.active {
                found = Some(key);
            }
        }
        Ok(found)
    }

    async fn touch(&self, id: ApiKeyId, at: Timestamp) -> Result<(), PortError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE api_keys SET last_used_at = GREATEST(COALESCE(last_used_at, $2), $2) WHERE id = $1",
                &[&id.0, &at.as_millisecond()],
            )
            .await
            .map_err(map_err)?;
        if n == 0 {
            return Err(PortError::NotFound(format!("API key {id}")));
        }
        Ok(())
    }
}
