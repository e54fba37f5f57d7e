//! What the API refuses before it does any work: a body announced larger than the
//! cap (refused on its `Content-Length`, before a byte of it is read; a chunked body
//! is cut off at the cap as it arrives), a body past the budget of bodies being
//! handled at once, a request slower than the timeout, and new jobs while Redis is
//! close to its `maxmemory` (so that it never runs out mid-write and no accepted
//! job is lost to an out-of-memory error).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use axum::middleware::Next;
use axum::response::Response;
use optimus_common::sync::Unpoisoned;

use crate::error::ApiError;
use crate::AppState;

pub async fn body_and_time(State(state): State<AppState>, req: Request, next: Next) -> Result<Response, ApiError> {
    let cap = state.settings.limits.max_body_bytes;
    let announced = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|len| len > cap as u64) {
        return Err(ApiError::body_too_large(cap));
    }
    // A body's bytes are held (and parsed) until its answer is sent: its share of
    // the budget is held as long. One without a length may be as long as the cap.
    let share = match announced {
        Some(len) => len as usize,
        None if req.headers().contains_key(TRANSFER_ENCODING) => cap,
        None => 0,
    };
    let _held = state.bodies.hold(share).await?;
    let limit = state.api.request_timeout;
    tokio::time::timeout(limit, next.run(req)).await.map_err(|_| ApiError::TooSlow { secs: limit.as_secs() })
}

/// How long a body waits for its share of the budget before its request gets 503.
const BODY_BUDGET_WAIT: Duration = Duration::from_secs(2);

/// The bytes of request bodies being handled at once (`OPTIMUS_BODY_BUDGET_BYTES`),
/// so that what the API holds for bodies is bounded whatever many clients send.
pub struct BodyBudget {
    bytes: Arc<tokio::sync::Semaphore>,
    total: usize,
}

impl BodyBudget {
    pub fn new(total: usize) -> Self {
        let total = total.clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        BodyBudget { bytes: Arc::new(tokio::sync::Semaphore::new(total)), total }
    }

    /// Holds `share` bytes of the budget (a body larger than the whole budget
    /// holds all of it), waiting a moment for them; `Busy` if they do not free.
    pub async fn hold(&self, share: usize) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, ApiError> {
        if share == 0 {
            return Ok(None);
        }
        let share = u32::try_from(share.min(self.total)).unwrap_or(u32::MAX);
        match tokio::time::timeout(BODY_BUDGET_WAIT, self.bytes.clone().acquire_many_owned(share)).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            _ => Err(ApiError::Busy),
        }
    }

    /// Bytes of the budget free now.
    pub fn free(&self) -> usize {
        self.bytes.available_permits()
    }
}

/// How many of something each holder has open (connections per peer, event
/// streams per key), each taken up to a cap and given back when its [`Held`]
/// drops.
pub struct Tally<K: Hash + Eq + Clone> {
    open: Mutex<HashMap<K, usize>>,
}

impl<K: Hash + Eq + Clone> Default for Tally<K> {
    fn default() -> Self {
        Tally { open: Mutex::default() }
    }
}

/// One of a holder's places in a [`Tally`].
pub struct Held<K: Hash + Eq + Clone> {
    tally: Arc<Tally<K>>,
    key: K,
}

impl<K: Hash + Eq + Clone> Tally<K> {
    /// A place for `key`, unless it holds `max` already (`None`: no cap).
    pub fn take(self: &Arc<Self>, key: K, max: Option<usize>) -> Option<Held<K>> {
        let mut open = self.open.locked();
        let n = open.entry(key.clone()).or_insert(0);
        if max.is_some_and(|max| *n >= max) {
            if *n == 0 {
                open.remove(&key);
            }
            return None;
        }
        *n += 1;
        Some(Held { tally: self.clone(), key })
    }

    /// Places held now, over every holder.
    pub fn total(&self) -> usize {
        self.open.locked().values().sum()
    }
}

impl<K: Hash + Eq + Clone> Drop for Held<K> {
    fn drop(&mut self) {
        let mut open = self.tally.open.locked();
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Live event streams (`GET /jobs/{id}/events`) open per key (anonymous callers
/// share one count): `OPTIMUS_MAX_STREAMS_PER_KEY`. Each holds a task and a
/// subscription; past the cap a key gets 429 `too_many_streams`.
pub type StreamSlots = Tally<String>;

impl Tally<String> {
    pub fn take_stream(self: &Arc<Self>, key: &str, max: usize) -> Result<Held<String>, ApiError> {
        self.take(key.to_string(), Some(max)).ok_or(ApiError::TooManyStreams { max })
    }
}
