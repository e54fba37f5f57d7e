//! Who is calling, decided by configuration ([`Auth`], `OPTIMUS_AUTH`), never by
//! what Redis holds.
//!
//! - `required`: every route but those of `OPEN_PATHS` (health, metrics, the
//!   API's description and the web page's files) needs `Authorization: Bearer
//!   <key>` (or `X-Auth-Token: <key>`, as Judge0 clients send it): 401 without a
//!   known key, 403 with a revoked one. With no key made yet, that is every
//!   request: a flushed or failed-over key set closes the API, it never opens it.
//! - `anonymous`: a request without a key is anonymous (one with a key is checked
//!   and is that key's). Since anyone who reaches the port may then run code, a
//!   web page must not be able to make a visitor's browser do it: a request whose
//!   `Origin` is not the API's own (or one of `OPTIMUS_ALLOWED_ORIGINS`) is
//!   refused, and so is one whose `Host` is a name the API does not answer to
//!   (DNS rebinding turns a hostile name into a local address; IP literals,
//!   `localhost`, `API_HOST` and `OPTIMUS_ALLOWED_HOSTS` are its names). Form
//!   bodies (which a page may send cross-site without asking) therefore arrive
//!   only from allowed origins, or from clients that are not browsers.
//!
//! The [`Caller`] is put in the request for the handlers.

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, HOST, ORIGIN};
use axum::middleware::Next;
use axum::response::Response;
use optimus_common::store::Caller;

use crate::config::{ApiConfig, Auth};
use crate::error::ApiError;
use crate::AppState;

/// The routes anyone may call: load balancers and probes hold no key, and the
/// web page holds no data (it asks for a key and sends it with every call).
/// `/metrics` is the operator's, scraped by Prometheus, which holds no user key;
/// like `/health` it shows counts, never a job.
/// The API's description and its page are public too.
pub(crate) const OPEN_PATHS: [&str; 7] =
    ["/health", "/metrics", "/openapi.json", "/docs", "/", "/static/app.js", "/static/app.css"];

fn presented_key(req: &Request) -> Option<&str> {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    header(AUTHORIZATION.as_str())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .or_else(|| header("x-auth-token"))
        .filter(|k| !k.is_empty())
}

pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Result<Response, ApiError> {
    // The open routes hold no job and run nothing, and probes and scrapers name
    // the API by whatever name their network gives it (`api:8080`): they pass.
    if OPEN_PATHS.contains(&req.uri().path()) {
        return Ok(next.run(req).await);
    }
    if state.api.auth == Auth::Anonymous {
        same_site(&req, &state.api)?;
    }
    let caller = match presented_key(&req) {
        Some(secret) => match state.store.find_key(secret).await? {
            None => return Err(ApiError::Unauthenticated { presented: true }),
            Some(key) if key.revoked_at.is_some() => return Err(ApiError::KeyRevoked { name: key.name }),
            Some(key) => key.caller(),
        },
        None if state.api.auth == Auth::Required => return Err(ApiError::Unauthenticated { presented: false }),
        None => Caller::Anonymous,
    };
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

/// The host a request names (`Host`, or HTTP/2's `:authority`), port and case dropped.
fn named_host(req: &Request) -> Option<String> {
    let authority = req
        .headers()
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))?;
    Some(host_of(&authority))
}

/// `host[:port]` or `[v6]:port` without its port, lower-case.
fn host_of(authority: &str) -> String {
    let authority = authority.trim().to_ascii_lowercase();
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("").to_string();
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host.to_string(),
        _ => authority,
    }
}

/// Whether the API answers to `host`: an IP literal (a browser that asks for one
/// is on that address, not a rebound name), `localhost`, `API_HOST`, or a name
/// the operator listed.
fn answers_to(host: &str, api: &ApiConfig) -> bool {
    host.parse::<std::net::IpAddr>().is_ok()
        || host == "localhost"
        || host.ends_with(".localhost")
        || host == api.host.to_ascii_lowercase()
        || api.allowed_hosts.iter().any(|h| h == host)
}

/// Refuses, in anonymous mode, a request that a browser sent for another site's
/// page, or that names a host the API is not.
fn same_site(req: &Request, api: &ApiConfig) -> Result<(), ApiError> {
    let host = named_host(req);
    if let Some(host) = &host {
        if !answers_to(host, api) {
            return Err(ApiError::ForeignHost { host: host.clone() });
        }
    }
    let Some(origin) = req.headers().get(ORIGIN) else { return Ok(()) };
    let origin = origin.to_str().unwrap_or("").trim().trim_end_matches('/').to_ascii_lowercase();
    if api.allowed_origins.contains(&origin) {
        return Ok(());
    }
    // The API's own page: the origin names the host and port the request is for.
    let own = req.headers().get(HOST).and_then(|v| v.to_str().ok()).map(|h| h.trim().to_ascii_lowercase());
    let origin_authority = origin.split_once("://").map(|(_, rest)| rest.to_string());
    if own.is_some() && origin_authority == own {
        return Ok(());
    }
    Err(ApiError::CrossOrigin { origin })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request {
        let mut builder = axum::http::Request::builder().uri("/jobs");
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(axum::body::Body::empty()).unwrap()
    }

    fn allowed(headers: &[(&str, &str)]) -> bool {
        let api = ApiConfig { allowed_origins: vec!["https://course.example.org".into()], ..ApiConfig::default() };
        same_site(&request(headers), &api).is_ok()
    }

    #[test]
    fn hosts_the_api_answers_to() {
        assert!(allowed(&[("host", "127.0.0.1:8080")]));
        assert!(allowed(&[("host", "localhost:8080")]));
        assert!(allowed(&[("host", "[::1]:8080")]));
        assert!(allowed(&[("host", "10.0.0.5")]));
        assert!(allowed(&[]), "no Host: not a browser");
        // A rebound name: the attacker's domain, now resolving to 127.0.0.1.
        assert!(!allowed(&[("host", "rebind.attacker.example:8080")]));
        assert_eq!(host_of("Example.COM:80"), "example.com");
    }

    #[test]
    fn origins_the_api_accepts() {
        assert!(allowed(&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080")]), "its own page");
        assert!(allowed(&[("host", "127.0.0.1:8080"), ("origin", "https://course.example.org")]), "listed");
        assert!(!allowed(&[("host", "127.0.0.1:8080"), ("origin", "https://evil.example")]));
        assert!(!allowed(&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:9999")]), "another port");
        assert!(!allowed(&[("host", "127.0.0.1:8080"), ("origin", "null")]), "a sandboxed page");
    }
}
