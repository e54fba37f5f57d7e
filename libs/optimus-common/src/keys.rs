//! The Redis key schema. Every key Optimus uses is built here and nowhere else:
//! not in the other modules, not in the Lua scripts (each gets every key it
//! touches in `KEYS`, built here), not in the registry, and not in the deployment
//! manifests (`optimus-cli deploy k8s` writes the KEDA queue names from [`queue`]).
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `optimus:queue:<language>` | list | ids of queued jobs in arrival order (pushed left, popped right): what workers block on, and the queue's depth |
//! | `optimus:queue:<language>:order` | sorted set | the same ids, scored by their fair-share tag: the order workers take them in |
//! | `optimus:queue:<language>:tags` | hash | each owner's last fair-share tag, and the language's virtual `clock` |
//! | `optimus:job:<id>` | hash | the job record: spec, status, timestamps, attempts, owner, origin, trace context |
//! | `optimus:result:<id>` | string | the job's [`crate::JobResult`] as JSON |
//! | `optimus:cancel:<id>` | string | present while a cancel of a running job is pending |
//! | `optimus:processing:<worker>` | list | ids a worker has taken and not yet finished |
//! | `optimus:workers:<language>` | set | ids of workers that serve a language |
//! | `optimus:alive:<worker>` | string | a worker's heartbeat; expires when it stops beating |
//! | `optimus:retry:<language>` | sorted set | ids of jobs waiting to be retried, scored by due time (ms) |
//! | `optimus:dead:<language>` | list | ids of jobs that failed after their attempts (the dead letters) |
//! | `optimus:apikeys` | hash | API key id -> the key's hash; any entry turns authentication on |
//! | `optimus:apikey:<hash>` | hash | one API key: id, name, limits, created_at, revoked_at |
//! | `optimus:owner:<key id>:held` | sorted set | that key's jobs that hold store space, scored by when the hold ends (ms; `+inf` while queued or running) |
//! | `optimus:owner:<key id>:bytes` | hash | bytes each of those jobs holds, their sum (`total`) and the key's quota when last checked (`quota`) |
//! | `optimus:anonymous:held` | sorted set | the same for jobs of no one (anonymous callers share one quota) |
//! | `optimus:anonymous:bytes` | hash | the same for jobs of no one |
//! | `optimus:owner:<key id>:rate` | string | that key's rate limiter state (GCRA's next allowed time, ms) |
//! | `optimus:events:<id>` | stream | the job's events, in order (`type` and JSON `data` per entry); expires with the job |
//! | `optimus:owner:<key id>:recent` | sorted set | that key's newest job ids, scored by creation time (ms); the last 10,000 |
//! | `optimus:jobs:recent` | sorted set | the newest ids of jobs of no one (anonymous), scored and kept the same way |
//! | `optimus:callbacks` | sorted set | ids of jobs whose callback is still to be delivered, scored by when to look next (ms) |
//! | `optimus:kafka:<bridge>:outbox` | sorted set | ids of jobs whose result message the Kafka bridges of that name still owe, scored by when to look next (ms; 0 once the job has ended) |
//! | `optimus:stats` | hash | counters that outlive any one process (`callbacks_delivered`, `callbacks_failed`) |
//!
//! A job's keys all follow from three things that never change once it is
//! queued: its id, its language and its owner ([`JobKeys`]), and where word of its
//! end is owed from a fourth (its `notify`). The record keeps the language, the
//! owner and the notify, never the name of another key.

use uuid::Uuid;

const PREFIX: &str = "optimus";

/// The queue of one language.
pub fn queue(language: &str) -> String {
    format!("{PREFIX}:queue:{language}")
}

/// The order a language's queued jobs are taken in: start-time fair queuing
/// between owners ([`crate::store`]'s `fair.lua`).
pub fn queue_order(language: &str) -> String {
    format!("{PREFIX}:queue:{language}:order")
}

/// Each owner's last tag in [`queue_order`], and the virtual clock.
pub fn queue_tags(language: &str) -> String {
    format!("{PREFIX}:queue:{language}:tags")
}

pub fn job(id: Uuid) -> String {
    format!("{PREFIX}:job:{id}")
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

/// The jobs of one owner (`""`: nobody's) that hold store space, and until when: its
/// ledger, with [`owner_bytes`]. Its `+inf` entries are the owner's active jobs.
pub fn owner_held(owner: &str) -> String {
    ledger(owner, "held")
}

/// The bytes each job of [`owner_held`] holds, and their `total`.
pub fn owner_bytes(owner: &str) -> String {
    ledger(owner, "bytes")
}

/// One part of an owner's ledger; all anonymous callers share one.
fn ledger(owner: &str, part: &str) -> String {
    if owner.is_empty() {
        format!("{PREFIX}:anonymous:{part}")
    } else {
        format!("{PREFIX}:owner:{owner}:{part}")
    }
}

pub fn owner_rate(key_id: &str) -> String {
    format!("{PREFIX}:owner:{key_id}:rate")
}

pub fn events(id: Uuid) -> String {
    format!("{PREFIX}:events:{id}")
}

/// The index of one owner's newest jobs (`""`: nobody's), which `GET /jobs` reads:
/// a caller's list costs what its own jobs cost, whatever others submit.
pub fn recent_jobs(owner: &str) -> String {
    if owner.is_empty() {
        format!("{PREFIX}:jobs:recent")
    } else {
        format!("{PREFIX}:owner:{owner}:recent")
    }
}

pub fn callbacks() -> String {
    format!("{PREFIX}:callbacks")
}

/// What the Kafka bridges named `bridge` ([`is_bridge_name`]) owe: the results to produce.
pub fn kafka_outbox(bridge: &str) -> String {
    format!("{PREFIX}:kafka:{bridge}:outbox")
}

/// A bridge's name goes into a key, so it is kept to what cannot make one key
/// look like another: 1 to 64 of `a-z`, `0-9`, `-` and `_`.
pub fn is_bridge_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

pub fn stats() -> String {
    format!("{PREFIX}:stats")
}

/// Every key of one job, from its id, its language and its owner's key id (`""`:
/// nobody's): what the scripts that move a job between its states get in `KEYS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobKeys {
    pub record: String,
    pub result: String,
    pub cancel: String,
    pub events: String,
    pub queue: String,
    /// The language's fair-share order of queued jobs, and its tags.
    pub order: String,
    pub tags: String,
    pub retry: String,
    pub dead: String,
    /// The owner's ledger: its jobs that hold store space, and their bytes.
    pub held: String,
    pub bytes: String,
    /// The index of the owner's newest jobs (nobody's have one too).
    pub recent: String,
    /// Where word of the job's end is owed ([`crate::job::Notify::owed_set`]), if anywhere.
    pub owed: Option<String>,
}

impl JobKeys {
    pub fn new(id: Uuid, language: &str, owner: &str) -> Self {
        JobKeys {
            record: job(id),
            result: result(id),
            cancel: cancel(id),
            events: events(id),
            queue: queue(language),
            order: queue_order(language),
            tags: queue_tags(language),
            retry: retry(language),
            dead: dead(language),
            held: owner_held(owner),
            bytes: owner_bytes(owner),
            recent: recent_jobs(owner),
            owed: None,
        }
    }

    /// The same, for a job whose end is owed to `notify`.
    pub fn owing(mut self, notify: Option<&crate::job::Notify>) -> Self {
        self.owed = notify.map(crate::job::Notify::owed_set);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jobs_keys_follow_from_its_id_language_and_owner() {
        let id = Uuid::parse_str("6f1c0e9a-3c55-4a53-9d8e-2b7f5f0f9f41").unwrap();
        let keys = JobKeys::new(id, "python", "k1");
        assert_eq!(keys.record, "optimus:job:6f1c0e9a-3c55-4a53-9d8e-2b7f5f0f9f41");
        assert_eq!(keys.events, "optimus:events:6f1c0e9a-3c55-4a53-9d8e-2b7f5f0f9f41");
        assert_eq!((keys.queue.as_str(), keys.retry.as_str()), ("optimus:queue:python", "optimus:retry:python"));
        assert_eq!((keys.dead.as_str(), keys.held.as_str()), ("optimus:dead:python", "optimus:owner:k1:held"));
        assert_eq!(JobKeys::new(id, "python", "").bytes, "optimus:anonymous:bytes");
        assert_eq!(keys.recent, "optimus:owner:k1:recent");
        assert_eq!(JobKeys::new(id, "python", "").recent, "optimus:jobs:recent");
    }

    /// The table in this module's header is the schema: every key function's
    /// pattern is in it, and it lists nothing that no function builds.
    #[test]
    fn the_header_lists_exactly_the_keys_built_here() {
        let source = include_str!("keys.rs");
        let listed: Vec<&str> =
            source.lines().filter_map(|l| l.strip_prefix("//! | `")).filter_map(|l| l.split('`').next()).collect();
        let id = Uuid::nil();
        let built = [
            queue("<language>"),
            queue_order("<language>"),
            queue_tags("<language>"),
            job(id),
            result(id),
            cancel(id),
            processing("<worker>"),
            workers("<language>"),
            alive("<worker>"),
            retry("<language>"),
            dead("<language>"),
            api_keys(),
            api_key("<hash>"),
            owner_held("<key id>"),
            owner_bytes("<key id>"),
            owner_held(""),
            owner_bytes(""),
            owner_rate("<key id>"),
            events(id),
            recent_jobs("<key id>"),
            recent_jobs(""),
            callbacks(),
            kafka_outbox("<bridge>"),
            stats(),
        ];
        let built: Vec<String> = built.iter().map(|k| k.replace(&id.to_string(), "<id>")).collect();
        assert_eq!(listed, built, "the header's table and the key functions disagree");
    }
}
