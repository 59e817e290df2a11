//! The API keys of `prismq serve`: hashes, prefixes, scopes and rate limits in `api_keys`.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, Row};

use prismq_domain::ports::keys::{scopes_from_text, scopes_to_text};
use prismq_domain::ports::{ApiKey, ApiKeyId, ApiKeyStore, KeyHash, NewApiKey, PresentedKey};
use prismq_domain::{PortError, Timestamp};

use crate::codec::ts;
use crate::error::map_err;
use crate::SqliteStore;

const COLUMNS: &str =
    "id, name, prefix, scopes, rate_limit, active, created_at, last_used_at, key_hash";

/// A key row (in [`COLUMNS`] order) and its stored hash.
fn key_from_row(r: &Row<'_>) -> rusqlite::Result<(ApiKey, String)> {
    let scopes: String = r.get(3)?;
    let last: Option<i64> = r.get(7)?;
    Ok((
        ApiKey {
            id: ApiKeyId(r.get(0)?),
            name: r.get(1)?,
            prefix: r.get(2)?,
            scopes: scopes_from_text(&scopes).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    3,
                    rusqlite::types::Type::Text,
                    e.to_string().into(),
                )
            })?,
            rate_limit: u32::try_from(r.get::<_, i64>(4)?).unwrap_or(u32::MAX),
            active: r.get::<_, i64>(5)? != 0,
            created_at: ts(6, r.get(6)?)?,
            last_used_at: last.map(|v| ts(7, v)).transpose()?,
        },
        r.get(8)?,
    ))
}

impl SqliteStore {
    fn key_by_id(conn: &rusqlite::Connection, id: ApiKeyId) -> Result<ApiKey, PortError> {
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM api_keys WHERE id = ?1"))
            .and_then(|mut s| s.query_row([id.0], key_from_row).optional())
            .map_err(map_err)?
            .map(|(k, _)| k)
            .ok_or_else(|| PortError::NotFound(format!("API key {id}")))
    }

    fn create_key_blocking(&self, key: &NewApiKey) -> Result<ApiKey, PortError> {
        key.validate()?;
        let now = self.now_ms();
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO api_keys (name, prefix, key_hash, scopes, rate_limit, active, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    key.name,
                    key.prefix,
                    key.hash.to_hex(),
                    scopes_to_text(&key.scopes),
                    i64::from(key.rate_limit),
                    now
                ])
            })
            .map_err(|e| match map_err(e) {
                PortError::Duplicate(_) => PortError::Duplicate(format!(
                    "an API key with prefix {} already exists",
                    key.prefix
                )),
                other => other,
            })?;
            SqliteStore::key_by_id(tx, ApiKeyId(tx.last_insert_rowid()))
        })
    }

    fn list_keys_blocking(&self) -> Result<Vec<ApiKey>, PortError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!("SELECT {COLUMNS} FROM api_keys ORDER BY id"))
                .map_err(map_err)?;
            let rows = stmt.query_map([], key_from_row).map_err(map_err)?;
            rows.map(|r| r.map(|(k, _)| k))
                .collect::<Result<Vec<_>, _>>()
                .map_err(map_err)
        })
    }

    fn revoke_key_blocking(&self, id: ApiKeyId) -> Result<ApiKey, PortError> {
        self.write(|tx| {
            tx.prepare_cached("UPDATE api_keys SET active = 0 WHERE id = ?1")
                .and_then(|mut s| s.execute([id.0]))
                .map_err(map_err)?;
            SqliteStore::key_by_id(tx, id)
        })
    }

    fn verify_key_blocking(&self, presented: &PresentedKey) -> Result<Option<ApiKey>, PortError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM api_keys WHERE prefix = ?1 ORDER BY id"
                ))
                .map_err(map_err)?;
            let rows = stmt
                .query_map([&presented.prefix], key_from_row)
                .map_err(map_err)?;
            let mut found = None;
            for row in rows {
                let (key, hash) = row.map_err(map_err)?;
                let stored = KeyHash::from_hex(&hash)
                    .map_err(|e| PortError::Corrupt(format!("api_keys row {}: {e}", key.id)))?;
                if stored.matches(&presented.hash) && key.active {
                    found = Some(key);
                }
            }
            Ok(found)
        })
    }

    fn touch_key_blocking(&self, id: ApiKeyId, at: Timestamp) -> Result<(), PortError> {
        let at = at.as_millisecond();
        self.write(|tx| {
            let n = tx
                .prepare_cached(
                    "UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, ?2), ?2) WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![id.0, at]))
                .map_err(map_err)?;
            if n == 0 {
                return Err(PortError::NotFound(format!("API key {id}")));
            }
            Ok(())
        })
    }
}

#[async_trait]
impl ApiKeyStore for SqliteStore {
    async fn create(&self, key: NewApiKey) -> Result<ApiKey, PortError> {
        self.blocking(move |s| s.create_key_blocking(&key)).await
    }

    async fn list(&self) -> Result<Vec<ApiKey>, PortError> {
        self.blocking(|s| s.list_keys_blocking()).await
    }

    async fn revoke(&self, id: ApiKeyId) -> Result<ApiKey, PortError> {
        self.blocking(move |s| s.revoke_key_blocking(id)).await
    }

    async fn verify(&self, presented: &PresentedKey) -> Result<Option<ApiKey>, PortError> {
        let presented = presented.clone();
        self.blocking(move |s| s.verify_key_blocking(&presented))
            .await
    }

    async fn touch(&self, id: ApiKeyId, at: Timestamp) -> Result<(), PortError> {
        self.blocking(move |s| s.touch_key_blocking(id, at)).await
    }
}
