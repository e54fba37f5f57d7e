//! A job's progress, told as it happens: the `compiled` event once the program
//! compiled (or did not), and one `test` event per test as soon as it is judged,
//! on the job's event stream (which the API serves as Server-Sent Events). The
//! queued, running and terminal events are written by the store's scripts, in the
//! same step as the state they announce.
//!
//! Events are a view: if one cannot be written (Redis away a moment), the job goes
//! on and its result is stored as ever; the event is logged as lost.

use optimus_common::{Store, TestResult};
use serde_json::{json, Value};
use tracing::warn;
use uuid::Uuid;

use crate::budget;

pub struct Progress {
    store: Store,
    id: Uuid,
    /// Which attempt these events belong to: a reader that sees a second
    /// attempt's tests knows the first one's were superseded.
    attempt: u32,
    /// The share of the job's output budget each event may carry: the compile
    /// event and each test event take one share each, so that all of a job's
    /// events together store at most one budget beside its record.
    share: usize,
}

impl Progress {
    pub fn new(store: Store, id: Uuid, attempt: u32, output_budget: usize, tests: usize) -> Self {
        Progress { store, id, attempt, share: output_budget / (tests + 1) }
    }

    async fn send(&self, kind: &str, data: Value) {
        if let Err(e) = self.store.append_event(self.id, kind, &data).await {
            warn!(error = %e, kind, "a progress event could not be written");
        }
    }

    pub async fn compiled(&self, ok: bool, output: Option<&str>) {
        let output = output.map(|o| {
            let mut shown = o.to_string();
            budget::fit_text(&mut shown, self.share);
            shown
        });
        self.send("compiled", json!({ "attempt": self.attempt, "ok": ok, "compile_output": output })).await;
    }

    /// Test `index`, judged: the object `test_results` will hold, its outputs cut
    /// to this test's share of the job's output budget.
    pub async fn test(&self, index: usize, result: &TestResult) {
        let mut shown = result.clone();
        budget::fit_test(&mut shown, self.share);
        let mut data = serde_json::to_value(&shown).expect("a test result serializes");
        data["attempt"] = json!(self.attempt);
        data["index"] = json!(index);
        self.send("test", data).await;
    }
}
