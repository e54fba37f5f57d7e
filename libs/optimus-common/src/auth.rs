//! API keys. A key is 32 random bytes, shown once when it is made; Redis keeps only
//! its SHA-256, so a copy of the database lets no one in. A key's hash is a secret
//! of high entropy, so a fast hash is the right one (no password stretching needed).
//!
//! Authentication is on as soon as one key exists (revoked ones count: revoking the
//! last key must not open the API to everyone).
//!
//! The keys' storage is [`crate::store::api_keys`]; this module holds what a key
//! and a caller are.

use sha2::{Digest, Sha256};

/// Who submits or reads a job: nobody in particular (authentication is off), or
/// the holder of an API key, with that key's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    Key { id: String, rate_per_min: u32, quota: Quota, weight: u32 },
}

impl Caller {
    /// The key's id; empty for anonymous callers.
    pub fn key_id(&self) -> &str {
        match self {
            Caller::Anonymous => "",
            Caller::Key { id, .. } => id,
        }
    }

    /// How many turns the caller's jobs get in fair share for another owner's one
    /// (1 for anonymous callers, who share one turn).
    pub fn weight(&self) -> u32 {
        match self {
            Caller::Anonymous => 1,
            Caller::Key { weight, .. } => (*weight).clamp(1, MAX_WEIGHT),
        }
    }

    /// The key's quota; anonymous callers share the one the API is configured with.
    pub fn quota(&self) -> Option<Quota> {
        match self {
            Caller::Anonymous => None,
            Caller::Key { quota, .. } => Some(*quota),
        }
    }
}

/// What one owner (a key, or all anonymous callers together) may hold in the store
/// at once; 0 is no bound. Checked and reserved in the enqueue script, in the same
/// step that stores the job, so a burst of submissions cannot pass it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Jobs queued or running.
    pub max_active: u32,
    /// Bytes its jobs keep in Redis: a waiting job's record (spec included), a
    /// finished one's record, result and events until they expire.
    pub max_bytes: u64,
}

impl Quota {
    /// No bound at all.
    pub const NONE: Quota = Quota { max_active: 0, max_bytes: 0 };
    /// What `optimus-cli keys add` gives a key that names no quota, and what
    /// anonymous callers share unless configured otherwise: 1,000 jobs, 256 MiB.
    pub const DEFAULT: Quota = Quota { max_active: 1000, max_bytes: 256 * 1024 * 1024 };
}

/// What is stored about a key (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// A short public id, shown by `keys list` and used to revoke; the owner of its jobs.
    pub id: String,
    pub name: String,
    /// Jobs it may submit per minute (0: no limit).
    pub rate_per_min: u32,
    /// Jobs it may have queued or running at once (0: no limit).
    pub max_queued: u32,
    /// Bytes its jobs may keep in Redis at once (0: no limit).
    pub max_bytes: u64,
    /// Its turns in fair share between keys (1 to [`MAX_WEIGHT`]): a key of weight
    /// 3 gets three jobs taken for another's one while both have jobs waiting.
    pub weight: u32,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl ApiKey {
    pub fn caller(&self) -> Caller {
        Caller::Key {
            id: self.id.clone(),
            rate_per_min: self.rate_per_min,
            quota: Quota { max_active: self.max_queued, max_bytes: self.max_bytes },
            weight: self.weight,
        }
    }
}

/// The largest fair-share weight a key may have.
pub const MAX_WEIGHT: u32 = 100;

/// The prefix every key starts with, so that a leaked one is recognisable.
pub const KEY_PREFIX: &str = "opt_";

pub(crate) fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_hash_is_sha256_hex() {
        assert_eq!(super::hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
