//! The gate that holds a worker's slots while the container engine does not answer.

use std::sync::Arc;

use tracing::{info, warn};

use crate::sandbox::Sandbox;

/// Whether the container engine answers. While it does not, slots wait in
/// [`EngineGate::ready`] and one task probes it with backoff, then reopens the gate.
#[derive(Default, Clone)]
pub(super) struct EngineGate(Arc<GateState>);

#[derive(Default)]
struct GateState {
    down: std::sync::atomic::AtomicBool,
    back: tokio::sync::Notify,
}

impl EngineGate {
    pub(super) async fn ready(&self) {
        use std::sync::atomic::Ordering;
        loop {
            let back = self.0.back.notified();
            tokio::pin!(back);
            back.as_mut().enable();
            if !self.0.down.load(Ordering::Acquire) {
                return;
            }
            back.await;
        }
    }

    /// Marks the engine down and starts the one probe, unless one runs already.
    pub(super) fn down(&self, sandbox: Sandbox) {
        use std::sync::atomic::Ordering;
        if self.0.down.swap(true, Ordering::AcqRel) {
            return;
        }
        let gate = self.clone();
        tokio::spawn(async move {
            let mut backoff = optimus_common::sync::Backoff::dependency();
            loop {
                let wait = backoff.next_wait();
                tokio::time::sleep(wait).await;
                if sandbox.engine_answers().await {
                    info!("the container engine answers again; resuming");
                    gate.0.down.store(false, Ordering::Release);
                    gate.0.back.notify_waiters();
                    return;
                }
                warn!(waited_ms = wait.as_millis() as u64, "the container engine still does not answer");
            }
        });
    }
}
