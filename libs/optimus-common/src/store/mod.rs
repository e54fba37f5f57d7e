//! Every Redis operation of Optimus. Keys come from [`crate::keys`]; operations
//! that touch more than one key run as Lua scripts (`src/lua/*.lua`, each with
//! every key it touches in `KEYS`) so that no crash can leave half of one.
//!
//! # Layout
//! - this file: the [`Store`] handle, its connection and its scripts.
//! - `conn`: the connection that survives a Redis restart.
//! - [`jobs`]: a job's life: enqueue, claim, cancel, finish, its record.
//! - [`workers`]: the reliable pop, worker registration, heartbeats, and the
//!   recovery of a dead worker's jobs.
//! - [`retries`]: hand-backs, backoff, the retry set and the dead letters.
//! - [`views`]: what is read and never written: job lists, event streams, depths,
//!   Redis's memory.
//! - [`api_keys`]: API keys, stored as hashes.
//! - [`callbacks`]: the callbacks owed when compatible-API jobs end.
//!
//! The reliable pop: a worker moves a job id from its language's queue to its own
//! processing list (`BLMOVE`), and [`Store::finish`] removes it only together with
//! the result. A worker's heartbeat key expires when it dies; any worker of the same
//! language then gives the dead one's jobs back to the queue ([`Store::recover_dead_workers`]).
//!
//! Retries: a job handed back with its attempt counted waits in its language's retry
//! set for an exponential backoff with jitter ([`Store::promote_due`] moves it back
//! to the queue when due); after its last attempt it ends `failed` and its id goes on
//! its language's dead-letter list ([`Store::dead_letters`], [`Store::revive`]).

pub mod api_keys;
pub mod callbacks;
mod conn;
pub mod jobs;
pub mod retries;
pub mod views;
pub mod workers;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use redis::aio::ConnectionManagerConfig;
use redis::Script;
use uuid::Uuid;

pub use self::api_keys::KeyError;
pub use self::jobs::{
    Admission, CancelOutcome, Claimed, EnqueueOutcome, JobRef, Provenance, HOLD_OVERHEAD, LEDGER_RECLAIM,
};
pub use self::retries::{Backoff, DeadLetter, RequeueOutcome, ReviveOutcome};
pub use self::views::{
    EventReader, JobEvent, JobPage, JobSummary, ListCursor, MemoryUse, ResultSummary, LIST_SCAN_MAX, RECENT_JOBS_KEPT,
};
pub use self::workers::Popper;
pub use crate::auth::{Caller, Quota};
pub use crate::job::{Notify, Origin};
use crate::settings::Settings;
use conn::Reconnecting;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("job {id} is stored but unreadable: {why}")]
    Corrupt { id: Uuid, why: String },
}

/// One script's source, written once: [`Scripts`] runs it, [`SCRIPTS`] lists it.
/// Each starts with `prelude.lua`: the owners' ledger and the fair-share order, which several keep.
macro_rules! lua {
    ($($name:ident => $file:literal),* $(,)?) => {
        /// The Lua scripts, each loaded once and run by its hash.
        struct Scripts {
            $($name: Script,)*
        }

        impl Scripts {
            fn new() -> Self {
                Scripts { $($name: Script::new(SCRIPTS.iter().find(|(f, _)| *f == $file).expect("listed").1),)* }
            }
        }

        /// Every script's source as it runs, by file name (for the tests that read them).
        pub const SCRIPTS: &[(&str, &str)] =
            &[$(($file, concat!(include_str!("../lua/prelude.lua"), include_str!(concat!("../lua/", $file)))),)*];
    };
}

lua! {
    enqueue => "enqueue.lua",
    cancel => "cancel.lua",
    claim => "claim.lua",
    finish => "finish.lua",
    requeue => "requeue.lua",
    due => "due.lua",
    promote => "promote.lua",
    revive => "revive.lua",
    take_callbacks => "take_callbacks.lua",
    fair => "fair.lua",
}

/// A handle on the job store; cheap to clone, reconnects by itself.
#[derive(Clone)]
pub struct Store {
    client: redis::Client,
    conn: Reconnecting,
    scripts: std::sync::Arc<Scripts>,
    ttl_secs: u64,
    max_attempts: u32,
    heartbeat_timeout_secs: u64,
    backoff: Backoff,
}

/// How long a starting binary waits for Redis before it gives up.
pub const STARTUP_PATIENCE: Duration = Duration::from_secs(30);

impl Store {
    /// [`Store::connect`], tried once a second for up to `patience`: Redis may
    /// come up a moment after the process that needs it (setup and Compose start
    /// them together). The last error is returned once patience runs out.
    pub async fn connect_waiting(settings: &Settings, patience: Duration) -> Result<Self, StoreError> {
        let start = std::time::Instant::now();
        loop {
            match Store::connect(settings).await {
                Ok(store) => return Ok(store),
                Err(e) if start.elapsed() + Duration::from_secs(1) > patience => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, url = %settings.redis_url, "redis not reachable yet");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Connects to `settings.redis_url`. Fails if Redis cannot be reached now;
    /// afterwards, a lost connection is re-made on the next command.
    pub async fn connect(settings: &Settings) -> Result<Self, StoreError> {
        let client = redis::Client::open(settings.redis_url.as_str())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(5))
            .set_number_of_retries(2)
            .set_max_delay(500);
        let conn = Reconnecting::new(client.get_connection_manager_with_config(config).await?);
        Ok(Store {
            client,
            conn,
            scripts: std::sync::Arc::new(Scripts::new()),
            ttl_secs: settings.job_ttl_secs,
            max_attempts: settings.max_attempts,
            heartbeat_timeout_secs: settings.heartbeat_timeout_secs,
            backoff: Backoff {
                base: Duration::from_millis(settings.retry_base_ms),
                cap: Duration::from_millis(settings.retry_max_ms),
            },
        })
    }

    /// The shared connection, for one command or pipeline.
    fn conn(&self) -> Reconnecting {
        self.conn.clone()
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }
}

/// Now, as the job record's timestamps spell it.
fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_time(id: Uuid, fields: &HashMap<&str, String>, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    fields
        .get(name)
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| StoreError::Corrupt { id, why: format!("{name}: {e}") })
        })
        .transpose()
}

/// A record's timestamp, where it is one.
fn parse_stamp(stamp: Option<String>) -> Option<DateTime<Utc>> {
    stamp.and_then(|c| DateTime::parse_from_rfc3339(&c).ok()).map(|t| t.with_timezone(&Utc))
}
