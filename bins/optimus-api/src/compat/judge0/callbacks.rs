//! Judge0's `callback_url`: when a submission's job ends, its default fields
//! (base64-encoded, as Judge0 sends them) are PUT to the URL.
//!
//! The callbacks owed are in Redis ([`optimus_common::store::callbacks`]), so a callback is
//! never lost with the API process that took the submission: every API process
//! runs [`deliver_forever`], which takes due callbacks for a lease, looks again
//! later at those whose job is still running, and tries the others
//! [`MAX_TRIES`] times. Each failure is logged; delivered and given-up callbacks
//! are counted in Redis and shown by `/health`.
//!
//! A callback URL is where the API server sends a request on a stranger's
//! behalf, so by default ([`CallbackTargets::Public`]) it may point only at
//! globally reachable addresses ([`super::address`]), checked on the address
//! actually connected to (the name is resolved once and the connection pinned to
//! that address, so DNS cannot be switched between check and use; no proxy is
//! used, even one the environment names, since a proxy would resolve the name
//! again), and only on the allowed ports (`OPTIMUS_CALLBACK_PORTS`, 80 and 443).

use std::net::SocketAddr;
use std::time::Duration;

use optimus_common::Store;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::address::is_public;
use super::view::{self, Submission, DEFAULT_FIELDS};
use crate::AppState;

/// Tries per callback, and the timeout of each (Judge0's defaults).
pub const MAX_TRIES: u32 = 3;
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// How long a process owns a callback it took before another may take it.
const LEASE: Duration = Duration::from_secs(60);
/// How soon a callback whose job still runs is looked at again.
const RECHECK: Duration = Duration::from_millis(300);
const TICK: Duration = Duration::from_millis(200);
const PER_TICK: usize = 32;

/// Where callbacks may go: `OPTIMUS_CALLBACK_TARGETS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackTargets {
    /// `off`: `callback_url` is refused (422).
    Off,
    /// `public` (the default): only public internet addresses.
    Public,
    /// `any`: any address, loopback and private networks included (tests, or a
    /// receiver on the same private network).
    Any,
}

impl CallbackTargets {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(CallbackTargets::Off),
            "public" => Some(CallbackTargets::Public),
            "any" => Some(CallbackTargets::Any),
            _ => None,
        }
    }

    pub fn enabled(self) -> bool {
        self != CallbackTargets::Off
    }
}

/// The ports callbacks may go to: `OPTIMUS_CALLBACK_PORTS`, a comma-separated
/// list (default `80,443`), or `any`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackPorts(Option<Vec<u16>>);

impl Default for CallbackPorts {
    fn default() -> Self {
        CallbackPorts(Some(vec![80, 443]))
    }
}

impl CallbackPorts {
    pub const ANY: CallbackPorts = CallbackPorts(None);

    pub fn parse(s: &str) -> Option<Self> {
        if s.trim() == "any" {
            return Some(CallbackPorts::ANY);
        }
        let ports =
            s.split(',').map(|p| p.trim().parse::<u16>().ok().filter(|p| *p > 0)).collect::<Option<Vec<_>>>()?;
        (!ports.is_empty()).then_some(CallbackPorts(Some(ports)))
    }

    fn allows(&self, port: u16) -> bool {
        self.0.as_ref().is_none_or(|ports| ports.contains(&port))
    }

    fn list(&self) -> String {
        match &self.0 {
            None => "any".into(),
            Some(ports) => ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", "),
        }
    }
}

/// A callback URL's shape: http or https with a host, on an allowed port.
pub fn check_url(raw: &str, ports: &CallbackPorts) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| format!("is not a valid URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http or https URL with a host".into());
    }
    let port = url.port_or_known_default().unwrap_or(0);
    if !ports.allows(port) {
        return Err(format!("is on port {port}; callbacks may go to ports {} (OPTIMUS_CALLBACK_PORTS)", ports.list()));
    }
    Ok(url)
}

/// Resolves the URL's host once and picks an address the policy allows.
async fn target(url: &reqwest::Url, targets: CallbackTargets) -> Result<SocketAddr, String> {
    let host = url.host_str().ok_or("no host")?;
    let port = url.port_or_known_default().ok_or("no port")?;
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let allowed = addrs.iter().find(|a| targets == CallbackTargets::Any || is_public(a.ip()));
    allowed.copied().ok_or_else(|| {
        format!("{host} resolves to no public address ({addrs:?}); OPTIMUS_CALLBACK_TARGETS=any allows others")
    })
}

/// Takes due callbacks and delivers them until `shutdown`.
pub async fn deliver_forever(state: AppState, shutdown: CancellationToken) {
    if !state.api.callback_targets.enabled() {
        return;
    }
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(PER_TICK));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(TICK) => {}
        }
        let free = limit.available_permits();
        if free == 0 {
            continue;
        }
        let due = match state.store.take_due_callbacks(LEASE, free).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the callbacks owed");
                continue;
            }
        };
        for id in due {
            let permit = limit.clone().acquire_owned().await.expect("never closed");
            let state = state.clone();
            tokio::spawn(async move {
                if let Err(e) = settle(&state, id).await {
                    tracing::warn!(job = %id, error = %e, "callback left for a later try");
                }
                drop(permit);
            });
        }
    }
}

async fn settle(state: &AppState, id: Uuid) -> Result<(), optimus_common::StoreError> {
    let store: &Store = &state.store;
    let Some(record) = store.get_unowned(id).await? else {
        tracing::warn!(job = %id, "callback dropped: the job has expired");
        return store.callback_settled(id, false).await;
    };
    if !record.status.is_terminal() {
        return store.callback_later(id, RECHECK).await;
    }
    let origin = store.origin(id, None).await?.flatten();
    let Some(sub) = origin.and_then(|o| serde_json::from_str::<Submission>(&o).ok()) else {
        tracing::warn!(job = %id, "callback dropped: the job has no Judge0 origin");
        return store.callback_settled(id, false).await;
    };
    let Some(url) = sub.callback_url.clone() else { return store.callback_settled(id, false).await };
    let name = state.registry.find(&record.language).map(|l| l.judge0_display_name()).unwrap_or_default();
    let body = view::render(&record, None, &sub, &name, &DEFAULT_FIELDS, true).to_string();
    let mut delivered = false;
    for attempt in 1..=MAX_TRIES {
        match put(&url, &body, state.api.callback_targets, &state.api.callback_ports).await {
            Ok(status) => {
                tracing::info!(job = %id, %url, status, attempt, "callback delivered");
                delivered = true;
                break;
            }
            Err(why) => {
                tracing::warn!(job = %id, %url, attempt, error = %why, "callback failed");
                if attempt < MAX_TRIES {
                    tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
                }
            }
        }
    }
    if !delivered {
        tracing::error!(job = %id, %url, tries = MAX_TRIES, "callback given up");
    }
    store.callback_settled(id, delivered).await
}

/// One PUT; an answer below 400 is a delivery, any other is tried again (Judge0
/// stops at any answer, so a receiver that was briefly down lost the result).
async fn put(raw: &str, body: &str, targets: CallbackTargets, ports: &CallbackPorts) -> Result<u16, String> {
    let url = check_url(raw, ports)?;
    let addr = target(&url, targets).await?;
    let client = reqwest::Client::builder()
        // A proxy would resolve the name itself, past the check of the pinned address.
        .no_proxy()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .resolve(url.host_str().unwrap_or_default(), addr)
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .put(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    if status >= 400 {
        return Err(format!("the receiver answered {status}"));
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http_with_a_host() {
        let ports = CallbackPorts::default();
        assert!(check_url("http://example.com/cb", &ports).is_ok());
        assert!(check_url("https://example.com/cb", &ports).is_ok());
        assert!(check_url("ftp://example.com/", &ports).is_err());
        assert!(check_url("file:///etc/passwd", &ports).is_err());
        assert!(check_url("not a url", &ports).is_err());
    }

    #[test]
    fn only_allowed_ports_are_called() {
        let ports = CallbackPorts::default();
        // Redis, an admin port, SSH: a callback is no way to reach them.
        for url in ["http://example.com:6379/", "https://example.com:8443/cb", "http://example.com:22/"] {
            let why = check_url(url, &ports).unwrap_err();
            assert!(why.contains("80, 443"), "{why}");
        }
        let custom = CallbackPorts::parse("8443, 443").unwrap();
        assert!(check_url("https://example.com:8443/cb", &custom).is_ok());
        assert!(check_url("http://example.com/cb", &custom).is_err());
        assert!(check_url("http://example.com:6379/", &CallbackPorts::ANY).is_ok());
        assert_eq!(CallbackPorts::parse("0"), None);
        assert_eq!(CallbackPorts::parse(""), None);
    }
}
