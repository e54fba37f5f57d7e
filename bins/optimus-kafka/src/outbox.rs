//! The producer of results. What the bridge's name is owed
//! (`optimus:kafka:<name>:outbox`) holds every job its bridges queued, until its
//! answer is acknowledged; the script that ends a job puts it due at once. Any
//! bridge of the name takes due entries for a [`LEASE`], renders each ended job in
//! the shape, produces it with the idempotent producer and, once the broker has
//! acknowledged it, settles it. A bridge that dies between the two leaves the
//! entry to be produced again when its lease runs out: at least once, the same
//! bytes each time (the answer is rendered from the stored job alone).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::intake::Sender;
use crate::shape::Echo;
use crate::Bridge;

/// How long a bridge owns a result it took before another bridge may take it:
/// longer than a send may take to be acknowledged or given up (its
/// `message.timeout.ms`, 15 s).
pub const LEASE: Duration = Duration::from_secs(30);
/// How soon a job still running is looked at again. Its end puts it due at once,
/// so this look only ever finds what no end announced (a job lost with its data).
const RECHECK: Duration = Duration::from_secs(60);
/// A result whose send failed (the broker is away) is tried again this soon.
const RETRY: Duration = Duration::from_secs(1);
/// How often due results are looked for, and how many are sent at once.
const TICK: Duration = Duration::from_millis(20);
const IN_FLIGHT: usize = 64;

/// Produces what is owed until `shutdown`; the sends in flight then finish (or
/// their leases run out for another bridge).
pub async fn run(bridge: Arc<Bridge>, producer: Sender, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut last_count = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(TICK) => {}
        }
        if last_count.elapsed() >= Duration::from_secs(1) {
            last_count = tokio::time::Instant::now();
            if let Ok(n) = bridge.store.owed_count(&bridge.notify).await {
                bridge.metrics.owed.set(n as i64);
            }
        }
        let free = slots.available_permits();
        if free == 0 {
            continue;
        }
        let due = match bridge.store.take_due(&bridge.notify, LEASE, free).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the results owed");
                continue;
            }
        };
        for id in due {
            let permit = slots.clone().acquire_owned().await.expect("never closed");
            let (bridge, producer) = (bridge.clone(), producer.clone());
            tokio::spawn(async move {
                if let Err(e) = deliver(&bridge, &producer, id).await {
                    tracing::warn!(job = %id, error = %e, "result left for a later try");
                }
                drop(permit);
            });
        }
    }
    // What is in flight finishes before the process ends.
    let _ = slots.acquire_many(IN_FLIGHT as u32).await;
}

async fn deliver(bridge: &Bridge, producer: &Sender, id: Uuid) -> Result<(), optimus_common::StoreError> {
    let store = &bridge.store;
    let Some(record) = store.get_unowned(id).await? else {
        tracing::error!(job = %id, "result dropped: the job has expired");
        store.owed_settled(&bridge.notify, id).await?;
        return Ok(());
    };
    if !record.status.is_terminal() {
        return store.look_later(&bridge.notify, id, RECHECK).await;
    }
    let echo = store.origin(id, None).await?.flatten().and_then(|o| serde_json::from_str::<Echo>(&o).ok());
    let answer = match echo.ok_or_else(|| format!("job {id} has no Kafka origin")) {
        Ok(echo) => bridge.topics.result(&record, &echo),
        Err(e) => Err(e),
    };
    let answer = match answer {
        Ok(answer) => answer,
        Err(why) => {
            tracing::error!(job = %id, error = %why, "result dropped");
            store.owed_settled(&bridge.notify, id).await?;
            return Ok(());
        }
    };
    match producer.send(&answer, None).await {
        Ok(()) => {
            bridge.metrics.produced.with_label_values(&[&answer.topic]).inc();
            if store.owed_settled(&bridge.notify, id).await? {
                tracing::info!(job = %id, topic = %answer.topic, key = %answer.key, status = record.status.as_str(),
                    "result produced");
            }
            Ok(())
        }
        Err(e) => {
            tracing::warn!(job = %id, topic = %answer.topic, error = %e, "result not acknowledged; trying again");
            store.look_later(&bridge.notify, id, RETRY).await
        }
    }
}
