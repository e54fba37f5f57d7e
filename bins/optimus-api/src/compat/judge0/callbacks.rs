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
//! behalf, so by default ([`CallbackTargets::Public`]) it may not point at
//! loopback, private, link-local or other non-public addresses, checked on the
//! address actually connected to (the name is resolved once and the connection
//! pinned to that address, so DNS cannot be switched between check and use).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use optimus_common::Store;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

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

/// A callback URL's shape: http or https with a host.
pub fn check_url(raw: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| format!("is not a valid URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http or https URL with a host".into());
    }
    Ok(url)
}

/// Whether an address is on the public internet.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let segments = v6.segments();
            let first = segments[0];
            // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let v4 = std::net::Ipv4Addr::new(
                    (segments[6] >> 8) as u8,
                    segments[6] as u8,
                    (segments[7] >> 8) as u8,
                    segments[7] as u8,
                );
                return is_public(IpAddr::V4(v4));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80) // link local
        }
    }
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
        match put(&url, &body, state.api.callback_targets).await {
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
async fn put(raw: &str, body: &str, targets: CallbackTargets) -> Result<u16, String> {
    let url = check_url(raw)?;
    let addr = target(&url, targets).await?;
    let client = reqwest::Client::builder()
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
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["1.1.1.1", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn urls_must_be_http_with_a_host() {
        assert!(check_url("http://example.com/cb").is_ok());
        assert!(check_url("https://example.com:8443/cb").is_ok());
        assert!(check_url("ftp://example.com/").is_err());
        assert!(check_url("file:///etc/passwd").is_err());
        assert!(check_url("not a url").is_err());
    }
}
