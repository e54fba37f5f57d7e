//! API keys in Redis: only each key's hash is stored ([`crate::auth`] says why).

use std::collections::HashMap;

use chrono::{SecondsFormat, Utc};
use redis::AsyncCommands;
use uuid::Uuid;

use super::{Store, StoreError};
use crate::auth::{hash, ApiKey, Quota, KEY_PREFIX, MAX_WEIGHT};
use crate::keys;

/// Why a key could not be added or revoked.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("a key named '{0}' exists already; names must be unique")]
    NameTaken(String),
    #[error("no key has the id or name '{0}'; `optimus-cli keys list` shows them")]
    NoSuchKey(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn redis_err(e: redis::RedisError) -> KeyError {
    KeyError::Store(StoreError::Redis(e))
}

fn from_fields(fields: HashMap<String, String>) -> Option<ApiKey> {
    Some(ApiKey {
        id: fields.get("id")?.clone(),
        name: fields.get("name").cloned().unwrap_or_default(),
        rate_per_min: fields.get("rate_per_min").and_then(|v| v.parse().ok()).unwrap_or(0),
        max_queued: fields.get("max_queued").and_then(|v| v.parse().ok()).unwrap_or(0),
        // A key made before byte quotas has none.
        max_bytes: fields.get("max_bytes").and_then(|v| v.parse().ok()).unwrap_or(0),
        weight: fields.get("weight").and_then(|v| v.parse().ok()).unwrap_or(1),
        created_at: fields.get("created_at").cloned().unwrap_or_default(),
        revoked_at: fields.get("revoked_at").cloned(),
    })
}

impl Store {
    /// Makes a key; returns what is stored and the key itself, which exists nowhere else.
    pub async fn add_key(&self, name: &str, rate_per_min: u32, quota: Quota) -> Result<(ApiKey, String), KeyError> {
        self.add_weighted_key(name, rate_per_min, quota, 1).await
    }

    /// [`add_key`](Self::add_key) with a fair-share weight (1 to [`MAX_WEIGHT`]).
    pub async fn add_weighted_key(
        &self,
        name: &str,
        rate_per_min: u32,
        quota: Quota,
        weight: u32,
    ) -> Result<(ApiKey, String), KeyError> {
        let weight = weight.clamp(1, MAX_WEIGHT);
        if self.list_keys().await?.iter().any(|k| k.name == name) {
            return Err(KeyError::NameTaken(name.to_string()));
        }
        // Two v4 UUIDs: 244 bits from the operating system's random source.
        let secret = format!("{KEY_PREFIX}{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
        let key = ApiKey {
            id: Uuid::new_v4().simple().to_string()[..12].to_string(),
            name: name.to_string(),
            rate_per_min,
            max_queued: quota.max_active,
            max_bytes: quota.max_bytes,
            weight,
            created_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
            revoked_at: None,
        };
        let digest = hash(&secret);
        let mut conn = self.conn();
        let _: () = redis::pipe()
            .atomic()
            .hset_multiple(
                keys::api_key(&digest),
                &[
                    ("id", key.id.clone()),
                    ("name", key.name.clone()),
                    ("rate_per_min", rate_per_min.to_string()),
                    ("max_queued", quota.max_active.to_string()),
                    ("max_bytes", quota.max_bytes.to_string()),
                    ("weight", weight.to_string()),
                    ("created_at", key.created_at.clone()),
                ],
            )
            .hset(keys::api_keys(), &key.id, &digest)
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        Ok((key, secret))
    }

    /// Whether any key exists (for the API's warning at start; whether requests
    /// need one is its configuration, never this).
    pub async fn any_key(&self) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let n: usize = conn.hlen(keys::api_keys()).await?;
        Ok(n > 0)
    }

    /// The key whose secret this is, revoked or not; `None` for no key at all.
    pub async fn find_key(&self, secret: &str) -> Result<Option<ApiKey>, StoreError> {
        let mut conn = self.conn();
        let fields: HashMap<String, String> = conn.hgetall(keys::api_key(&hash(secret))).await?;
        Ok(from_fields(fields))
    }

    /// Every key, oldest first.
    pub async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let mut conn = self.conn();
        let ids: HashMap<String, String> = conn.hgetall(keys::api_keys()).await?;
        let mut list = Vec::new();
        for digest in ids.values() {
            let fields: HashMap<String, String> = conn.hgetall(keys::api_key(digest)).await?;
            list.extend(from_fields(fields));
        }
        list.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.name.cmp(&b.name)));
        Ok(list)
    }

    /// Revokes the key with this id or name: it is refused from now on (403), and
    /// still counts as configured. Revoking twice keeps the first time.
    pub async fn revoke_key(&self, id_or_name: &str) -> Result<ApiKey, KeyError> {
        let key = self
            .list_keys()
            .await?
            .into_iter()
            .find(|k| k.id == id_or_name || k.name == id_or_name)
            .ok_or_else(|| KeyError::NoSuchKey(id_or_name.to_string()))?;
        if key.revoked_at.is_some() {
            return Ok(key);
        }
        let mut conn = self.conn();
        let digest: String = conn.hget(keys::api_keys(), &key.id).await.map_err(redis_err)?;
        let at = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let _: () = conn.hset(keys::api_key(&digest), "revoked_at", &at).await.map_err(redis_err)?;
        Ok(ApiKey { revoked_at: Some(at), ..key })
    }
}
