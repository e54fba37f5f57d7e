//! Live job events for `GET /jobs/{id}/events`. One task per API process (the
//! [`EventHub`]) holds one Redis connection and blocks on `XREAD` over every
//! stream some subscriber watches, handing each new event to its subscribers. So
//! thousands of idle subscribers cost a task and a small channel each, and no
//! Redis connection. A subscriber replays what happened first (a plain range
//! read), then asks the hub for what comes after the last event it saw.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use optimus_common::store::JobEvent;
use optimus_common::Store;
use tokio::sync::mpsc;
use uuid::Uuid;

/// How long one `XREAD` blocks: a new subscriber is first read within this.
const BLOCK: Duration = Duration::from_millis(250);
/// Events a subscriber may have unread before it is dropped as too slow.
const BACKLOG: usize = 256;

struct Watch {
    job: Uuid,
    /// The last event this subscriber has (a stream id; `0-0` for none).
    after: String,
    tx: mpsc::Sender<JobEvent>,
}

#[derive(Default)]
pub struct EventHub {
    new: OnceLock<mpsc::UnboundedSender<Watch>>,
    /// Subscribers now following a job live.
    live: Arc<AtomicUsize>,
}

/// A stream id as its two numbers, for ordering.
fn order(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

impl EventHub {
    /// Events of `job` after `after`, as they are written; the channel closes if
    /// the subscriber falls `BACKLOG` events behind.
    pub fn follow(&self, store: &Store, job: Uuid, after: String) -> mpsc::Receiver<JobEvent> {
        let (tx, rx) = mpsc::channel(BACKLOG);
        let new = self.new.get_or_init(|| {
            let (new_tx, new_rx) = mpsc::unbounded_channel();
            tokio::spawn(supervised(store.clone(), new_rx, self.live.clone()));
            new_tx
        });
        let _ = new.send(Watch { job, after, tx });
        rx
    }

    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }
}

/// The hub's task, started again if it panics: every subscriber of the process
/// depends on it. The watches of the run that panicked are dropped with it, so
/// their streams end and their clients come back with `Last-Event-ID`.
async fn supervised(store: Store, new: mpsc::UnboundedReceiver<Watch>, live: Arc<AtomicUsize>) {
    let mut state = (store, new, live);
    optimus_common::sync::supervise("event hub", &mut state, |(store, new, live)| Box::pin(run(store, new, live)))
        .await;
}

async fn run(store: &Store, new: &mut mpsc::UnboundedReceiver<Watch>, live: &AtomicUsize) {
    let mut watches: HashMap<Uuid, Vec<Watch>> = HashMap::new();
    let mut reader = None;
    loop {
        // Take in new subscribers; with none at all, wait for one.
        if watches.is_empty() {
            match new.recv().await {
                Some(w) => watches.entry(w.job).or_default().push(w),
                None => return,
            }
        }
        while let Ok(w) = new.try_recv() {
            watches.entry(w.job).or_default().push(w);
        }
        watches.retain(|_, subs| {
            subs.retain(|s| !s.tx.is_closed());
            !subs.is_empty()
        });
        live.store(watches.values().map(Vec::len).sum(), Ordering::Relaxed);
        if watches.is_empty() {
            continue;
        }
        if reader.is_none() {
            match store.event_reader().await {
                Ok(r) => reader = Some(r),
                Err(e) => {
                    tracing::warn!(error = %e, "event hub: cannot reach Redis; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            }
        }
        // Per job, read from the earliest event any of its subscribers lacks.
        let from: Vec<(Uuid, String)> = watches
            .iter()
            .map(|(job, subs)| {
                (*job, subs.iter().map(|s| s.after.clone()).min_by_key(|a| order(a)).expect("non-empty"))
            })
            .collect();
        let arrived = match reader.as_mut().expect("set above").read(&from, BLOCK).await {
            Ok(arrived) => arrived,
            Err(e) => {
                tracing::warn!(error = %e, "event hub: read failed; reconnecting");
                reader = None;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        for (job, events) in arrived {
            let Some(subs) = watches.get_mut(&job) else { continue };
            // A subscriber whose channel is full is too slow: it is dropped (its
            // stream ends), and it may come back with Last-Event-ID.
            subs.retain_mut(|sub| {
                for event in &events {
                    if order(&event.id) <= order(&sub.after) {
                        continue;
                    }
                    if sub.tx.try_send(event.clone()).is_err() {
                        return false;
                    }
                    sub.after = event.id.clone();
                }
                true
            });
        }
    }
}
