//! `ApiKeyStore` for `MemoryStore`: keys with their hashes, by id.

use std::collections::BTreeMap;

use async_trait::async_trait;
use prismq_domain::ports::keys::scopes_to_text;
use prismq_domain::ports::{ApiKey, ApiKeyId, ApiKeyStore, KeyHash, NewApiKey, PresentedKey};
use prismq_domain::{PortError, Timestamp};

use super::MemoryStore;

/// Every key and its hash, by id.
#[derive(Debug, Default, Clone)]
pub(super) struct Keys {
    last_id: i64,
    by_id: BTreeMap<ApiKeyId, (ApiKey, KeyHash)>,
}

#[async_trait]
impl ApiKeyStore for MemoryStore {
    async fn create(&self, key: NewApiKey) -> Result<ApiKey, PortError> {
        key.validate()?;
        let now = self.now();
        let mut st = self.state();
        let keys = &mut st.api_keys;
        if keys.by_id.values().any(|(_, h)| h.matches(&key.hash)) {
            return Err(PortError::Duplicate(format!(
                "an API key with prefix {} already exists",
                key.prefix
            )));
        }
        keys.last_id += 1;
        let stored = ApiKey {
            id: ApiKeyId(keys.last_id),
            name: key.name,
            prefix: key.prefix,
            scopes: prismq_domain::ports::keys::scopes_from_text(&scopes_to_text(&key.scopes))?,
            rate_limit: key.rate_limit,
            active: true,
            created_at: now,
            last_used_at: None,
        };
        keys.by_id.insert(stored.id, (stored.clone(), key.hash));
        Ok(stored)
    }

    async fn list(&self) -> Result<Vec<ApiKey>, PortError> {
        Ok(self
            .state()
            .api_keys
            .by_id
            .values()
            .map(|(k, _)| k.clone())
            .collect())
    }

    async fn revoke(&self, id: ApiKeyId) -> Result<ApiKey, PortError> {
        let mut st = self.state();
        let (k, _) = st
            .api_keys
            .by_id
            .get_mut(&id)
            .ok_or_else(|| PortError::NotFound(format!("API key {id}")))?;
        k.active = false;
        Ok(k.clone())
    }

    async fn verify(&self, presented: &PresentedKey) -> Result<Option<ApiKey>, PortError> {
        let st = self.state();
        Ok(st
            .api_keys
            .by_id
            .values()
            .filter(|(k, _)| k.prefix == presented.prefix)
            .find(|(k, h)| h.matches(&presented.hash) && k.active)
            .map(|(k, _)| k.clone()))
    }

    async fn touch(&self, id: ApiKeyId, at: Timestamp) -> Result<(), PortError> {
        let at = crate::clock::truncate_to_millis(at);
        let mut st = self.state();
        let (k, _) = st
            .api_keys
            .by_id
            .get_mut(&id)
            .ok_or_else(|| PortError::NotFound(format!("API key {id}")))?;
        k.last_used_at = Some(k.last_used_at.map_or(at, |t| t.max(at)));
        Ok(())
    }
}
