//! Connections: how many may be open, how long one may stay silent or idle, and
//! the loop that accepts and serves them until shutdown.
//!
//! - A cap on open connections, in total and per peer address; one past either
//!   is closed as soon as it is accepted (so the listen backlog never fills).
//! - A deadline for a new connection's first bytes, whatever protocol it will
//!   speak: it is waited for before hyper sees the connection (hyper's own header
//!   timeout covers HTTP/1 only, and its protocol detection has none), so a
//!   connection that sends nothing costs a descriptor and a small task for the
//!   deadline at most.
//! - An idle deadline: a connection with no request in flight (a streaming
//!   answer, such as SSE, is in flight until its last byte) for that long is
//!   closed gracefully, HTTP/1 keep-alive and HTTP/2 alike; HTTP/2 pings find a
//!   dead peer in the middle of a long answer.
//! - On shutdown, every connection is told to finish its requests in flight.

use std::convert::Infallible;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::Router;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::limits::{Held, Tally};

/// The bounds on connections ([`crate::ApiConfig`] reads them).
#[derive(Debug, Clone)]
pub struct ConnLimits {
    pub max_total: usize,
    /// 0: no cap per peer (behind a proxy, every connection has its address).
    pub max_per_peer: usize,
    pub first_byte: Duration,
    pub header_read: Duration,
    pub idle: Duration,
    pub h2_keep_alive: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_total: 50_000,
            max_per_peer: 1_000,
            first_byte: Duration::from_secs(10),
            header_read: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            h2_keep_alive: Duration::from_secs(30),
        }
    }
}

/// How often a connection checks whether it has been idle too long.
const IDLE_CHECK: Duration = Duration::from_secs(1);
/// How long an idle connection told to close may take to close: an HTTP/2 peer
/// that never acknowledges the GOAWAY's ping is cut off after it.
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Open connections now, per peer; shared with `/metrics`.
pub type Census = Tally<Peer>;

/// Who a connection's cap per peer counts it against: its IPv4 address, or its
/// IPv6 address's /64 (one host is usually given a whole /64, so per address
/// it could open as many connections as it likes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer(IpAddr);

impl Peer {
    fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Peer(IpAddr::V4(v4)),
                None => Peer(IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !(u128::MAX >> 64)))),
            },
            v4 => Peer(v4),
        }
    }
}

/// One connection's places (in total and for its peer), given back when it closes.
struct Admitted {
    _peer: Held<Peer>,
    _slot: OwnedSemaphorePermit,
}

/// A place for a connection from `ip`, or `None` past a cap.
fn admit(census: &Arc<Census>, slots: &Arc<Semaphore>, limits: &ConnLimits, ip: IpAddr) -> Option<Admitted> {
    let slot = slots.clone().try_acquire_owned().ok()?;
    let per_peer = (limits.max_per_peer > 0).then_some(limits.max_per_peer);
    let peer = census.take(Peer::of(ip), per_peer)?;
    Some(Admitted { _peer: peer, _slot: slot })
}

/// Whether a connection has requests in flight, and since when it has none.
struct Activity {
    in_flight: AtomicUsize,
    /// Milliseconds from `born` when the last request ended.
    last_end_ms: AtomicU64,
    born: Instant,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Activity { in_flight: AtomicUsize::new(0), last_end_ms: AtomicU64::new(0), born: Instant::now() })
    }

    fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = Duration::from_millis(self.last_end_ms.load(Ordering::Acquire));
        Some(self.born.elapsed().saturating_sub(since))
    }
}

/// A request in flight; it ends when its answer's body is done or dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        a.last_end_ms.store(a.born.elapsed().as_millis() as u64, Ordering::Release);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An answer's body that keeps its request in flight until it is sent.
struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl HttpBody for Tracked {
    type Data = <Body as HttpBody>::Data;
    type Error = <Body as HttpBody>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Accepts connections on `listener` and serves `router` on each, within
/// `limits`, until `shutdown`; then lets requests in flight finish (for 30 s at
/// most).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    census: Arc<Census>,
    shutdown: CancellationToken,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.h2_keep_alive)
        .keep_alive_timeout(Duration::from_secs(10));
    let slots = Arc::new(Semaphore::new(limits.max_total.clamp(1, Semaphore::MAX_PERMITS)));
    let tracker = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                // Out of descriptors and the like: pass, and accept the next one.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let Some(admitted) = admit(&census, &slots, &limits, peer.ip()) else {
            // Dropped at once: closed, and its descriptor freed.
            continue;
        };
        let (builder, router, limits, shutdown) = (builder.clone(), router.clone(), limits.clone(), shutdown.clone());
        tracker.spawn(async move {
            let _admitted = admitted;
            one(stream, builder, router, &limits, shutdown).await;
        });
    }
    tracker.close();
    // Requests in flight finish; a client that keeps a connection open is not waited for long.
    let _ = tokio::time::timeout(Duration::from_secs(30), tracker.wait()).await;
}

/// Serves one connection.
async fn one(
    stream: TcpStream,
    builder: Builder<TokioExecutor>,
    router: Router,
    limits: &ConnLimits,
    shutdown: CancellationToken,
) {
    let mut first = [0u8; 1];
    match tokio::time::timeout(limits.first_byte, stream.peek(&mut first)).await {
        Ok(Ok(n)) if n > 0 => {}
        // Silent past the deadline, closed, or failed: nothing to serve.
        _ => return,
    }
    let activity = Activity::new();
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let in_flight = InFlight::begin(&activity);
            let router = router.clone();
            async move {
                let answer = router.oneshot(req.map(Body::new)).await.unwrap_or_else(|e: Infallible| match e {});
                Ok::<_, Infallible>(answer.map(|body| Body::new(Tracked { body, _in_flight: in_flight })))
            }
        })
    };
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut check = tokio::time::interval(IDLE_CHECK);
    let mut closing = false;
    // Set once an idle connection is told to close: past it, it is dropped.
    let cut_off = tokio::time::sleep(Duration::MAX);
    tokio::pin!(cut_off);
    let mut cutting = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = shutdown.cancelled(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = check.tick(), if !closing => {
                if activity.idle_for().is_some_and(|idle| idle >= limits.idle) {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                    cutting = true;
                    cut_off.as_mut().reset(tokio::time::Instant::now() + IDLE_CLOSE_GRACE);
                }
            }
            _ = &mut cut_off, if cutting => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_in_total_and_per_peer() {
        let census = Arc::new(Census::default());
        let limits = ConnLimits { max_total: 3, max_per_peer: 2, ..ConnLimits::default() };
        let slots = Arc::new(Semaphore::new(limits.max_total));
        let (a, b, c): (IpAddr, IpAddr, IpAddr) =
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap(), "10.0.0.3".parse().unwrap());
        let a1 = admit(&census, &slots, &limits, a).unwrap();
        let _a2 = admit(&census, &slots, &limits, a).unwrap();
        assert!(admit(&census, &slots, &limits, a).is_none(), "a third from one peer");
        let _b1 = admit(&census, &slots, &limits, b).unwrap();
        assert!(admit(&census, &slots, &limits, c).is_none(), "a fourth in all");
        assert_eq!(census.total(), 3);
        drop(a1);
        assert_eq!(census.total(), 2);
        assert!(admit(&census, &slots, &limits, c).is_some(), "a place freed is free");
    }

    #[test]
    fn an_ipv6_host_is_one_peer_for_its_whole_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(Peer::of(ip("2001:db8:1:2::1")), Peer::of(ip("2001:db8:1:2:ffff::9")));
        assert_ne!(Peer::of(ip("2001:db8:1:2::1")), Peer::of(ip("2001:db8:1:3::1")));
        assert_eq!(Peer::of(ip("::ffff:10.0.0.1")), Peer::of(ip("10.0.0.1")));
    }
}
