//! The Redis key schema. Every key Optimus uses is built here and nowhere else.
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `optimus:queue:<language>` | list | ids of queued jobs (pushed left, popped right) |
//! | `optimus:job:<id>` | hash | the job record: spec, status, timestamps, attempts |
//! | `optimus:result:<id>` | string | the job's [`crate::JobResult`] as JSON |
//! | `optimus:cancel:<id>` | string | present while a cancel of a running job is pending |
//! | `optimus:processing:<worker>` | list | ids a worker has taken and not yet finished |
//! | `optimus:workers:<language>` | set | ids of workers that serve a language |
//! | `optimus:alive:<worker>` | string | a worker's heartbeat; expires when it stops beating |
//! | `optimus:retry:<language>` | sorted set | ids of jobs waiting to be retried, scored by due time (ms) |
//! | `optimus:dead:<language>` | list | ids of jobs that failed after their attempts (the dead letters) |
//! | `optimus:apikeys` | hash | API key id -> the key's hash; any entry turns authentication on |
//! | `optimus:apikey:<hash>` | hash | one API key: id, name, limits, created_at, revoked_at |
//! | `optimus:owner:<key id>:active` | set | ids of that key's jobs that are queued or running |
//! | `optimus:owner:<key id>:rate` | string | that key's rate limiter state (GCRA's next allowed time, ms) |
//! | `optimus:events:<id>` | stream | the job's events, in order (`type` and JSON `data` per entry); expires with the job |
//! | `optimus:jobs:recent` | sorted set | the newest job ids, scored by creation time (ms); the last 10,000 |
//! | `optimus:origin:<id>` | string | how a job came in through a compatible API (a Judge0 submission's own fields), as JSON; expires with the job |
//! | `optimus:callbacks` | sorted set | ids of jobs whose callback is still to be delivered, scored by when to look next (ms) |
//! | `optimus:stats` | hash | counters that outlive any one process (`callbacks_delivered`, `callbacks_failed`) |

use uuid::Uuid;

const PREFIX: &str = "optimus";

/// The queue of one language, as `queue_name` in the registry spells it by default.
pub fn queue(language: &str) -> String {
    format!("{PREFIX}:queue:{language}")
}

/// The prefix of every job record key; the Lua scripts append a job id to it.
pub fn job_prefix() -> String {
    format!("{PREFIX}:job:")
}

pub fn job(id: Uuid) -> String {
    format!("{}{id}", job_prefix())
}

pub fn result(id: Uuid) -> String {
    format!("{PREFIX}:result:{id}")
}

pub fn cancel(id: Uuid) -> String {
    format!("{PREFIX}:cancel:{id}")
}

pub fn processing(worker: &str) -> String {
    format!("{PREFIX}:processing:{worker}")
}

pub fn workers(language: &str) -> String {
    format!("{PREFIX}:workers:{language}")
}

pub fn alive(worker: &str) -> String {
    format!("{PREFIX}:alive:{worker}")
}

pub fn retry(language: &str) -> String {
    format!("{PREFIX}:retry:{language}")
}

pub fn dead(language: &str) -> String {
    format!("{PREFIX}:dead:{language}")
}

pub fn api_keys() -> String {
    format!("{PREFIX}:apikeys")
}

/// `hash`: the hex SHA-256 of the key; the key itself is never stored.
pub fn api_key(hash: &str) -> String {
    format!("{PREFIX}:apikey:{hash}")
}

pub fn owner_active(key_id: &str) -> String {
    format!("{PREFIX}:owner:{key_id}:active")
}

pub fn owner_rate(key_id: &str) -> String {
    format!("{PREFIX}:owner:{key_id}:rate")
}

pub fn events(id: Uuid) -> String {
    format!("{PREFIX}:events:{id}")
}

/// The prefix of every event stream key; the Lua scripts append a job id to it.
pub fn events_prefix() -> String {
    format!("{PREFIX}:events:")
}

pub fn recent_jobs() -> String {
    format!("{PREFIX}:jobs:recent")
}

pub fn origin(id: Uuid) -> String {
    format!("{PREFIX}:origin:{id}")
}

pub fn callbacks() -> String {
    format!("{PREFIX}:callbacks")
}

pub fn stats() -> String {
    format!("{PREFIX}:stats")
}
