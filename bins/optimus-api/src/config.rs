//! The API's own settings, read from the environment once at start. Each field
//! says its variable and its default; [`ApiConfig::default`] is exactly the defaults.

use std::time::Duration;

use optimus_common::settings::{env_or, SettingsError};

pub use crate::compat::judge0::callbacks::{CallbackPorts, CallbackTargets};

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// `API_HOST`, default `127.0.0.1`: anyone who reaches the port can run code, so
    /// listening on other interfaces is a choice to make, not a default.
    pub host: String,
    /// `API_PORT`, default 8080.
    pub port: u16,
    /// `OPTIMUS_AUTH`, `required` or `anonymous`: whether every request needs an
    /// API key. Default: `anonymous` on a loopback address, `required` on any
    /// other (`OPTIMUS_ALLOW_ANONYMOUS=1`, the older flag, means `anonymous`).
    /// Decided here, once: never from what Redis holds, so a flushed key set
    /// refuses everyone instead of opening the API.
    pub auth: Auth,
    /// `OPTIMUS_ALLOWED_HOSTS`, default none: in anonymous mode, the host names
    /// (besides `localhost`, IP literals and `API_HOST`) requests may name in
    /// `Host`; any other is refused (DNS rebinding).
    pub allowed_hosts: Vec<String>,
    /// `OPTIMUS_ALLOWED_ORIGINS`, default none: in anonymous mode, the web origins
    /// (`https://app.example.com`) besides the API's own that may send requests;
    /// a request from any other page is refused (cross-site requests).
    pub allowed_origins: Vec<String>,
    /// `OPTIMUS_REQUEST_TIMEOUT_SECS`, default 30: a request (its body included) that
    /// takes longer gets 408, so slow clients cannot hold connections.
    pub request_timeout: Duration,
    /// The bounds on connections:
    /// - `OPTIMUS_MAX_CONNECTIONS`, default 50000 (or the open-file limit less 256,
    ///   if lower): open at once; one past it is closed on accept.
    /// - `OPTIMUS_MAX_CONNECTIONS_PER_PEER`, default 1000 (0: none; set 0 behind a
    ///   proxy): open at once from one address.
    /// - `OPTIMUS_FIRST_BYTE_TIMEOUT_SECS`, default 10: a new connection that sends
    ///   nothing for this long is closed (HTTP/1 and HTTP/2 alike).
    /// - `OPTIMUS_HEADER_TIMEOUT_SECS`, default 10: a request whose headers do not
    ///   arrive within this is closed (HTTP/1).
    /// - `OPTIMUS_IDLE_TIMEOUT_SECS`, default 60: a connection with no request in
    ///   flight for this long is closed.
    pub connections: crate::conn::ConnLimits,
    /// `OPTIMUS_MAX_STREAMS_PER_KEY`, default 1000: live event streams one key (or
    /// all anonymous callers together) may have open; 429 past it.
    pub max_streams_per_key: usize,
    /// `OPTIMUS_REDIS_MEMORY_HIGH_PERCENT`, default 90: a new job is refused (503)
    /// when Redis would use this share of its `maxmemory` or more with it: checked
    /// in the enqueue script, so a burst cannot pass it.
    pub redis_memory_high_percent: u8,
    /// What anonymous callers together may hold: `OPTIMUS_ANONYMOUS_MAX_QUEUED`
    /// (jobs queued or running, default 1000) and `OPTIMUS_ANONYMOUS_MAX_BYTES`
    /// (bytes in Redis, default 256 MiB); 0 is no bound.
    pub anonymous_quota: optimus_common::Quota,
    /// `OPTIMUS_CALLBACK_TARGETS`, default `public`: where Judge0 `callback_url`s
    /// may point: `public` addresses only, `any` (loopback and private networks
    /// too), or `off` (callbacks refused).
    pub callback_targets: CallbackTargets,
    /// `OPTIMUS_CALLBACK_PORTS`, default `80,443`: the ports callbacks may go to
    /// (a comma-separated list, or `any`).
    pub callback_ports: CallbackPorts,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            host: "127.0.0.1".into(),
            port: 8080,
            auth: Auth::Anonymous,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            request_timeout: Duration::from_secs(30),
            connections: crate::conn::ConnLimits::default(),
            max_streams_per_key: 1000,
            redis_memory_high_percent: 90,
            anonymous_quota: optimus_common::Quota::DEFAULT,
            callback_targets: CallbackTargets::Public,
            callback_ports: CallbackPorts::default(),
        }
    }
}

impl ApiConfig {
    pub fn from_env() -> Result<Self, SettingsError> {
        let d = ApiConfig::default();
        let c = d.connections.clone();
        let secs = "a whole number of seconds";
        let percent: u8 = env_or("OPTIMUS_REDIS_MEMORY_HIGH_PERCENT", d.redis_memory_high_percent, "a percentage")?;
        if !(1..=100).contains(&percent) {
            return Err(SettingsError {
                name: "OPTIMUS_REDIS_MEMORY_HIGH_PERCENT",
                value: percent.to_string(),
                expected: "a percentage from 1 to 100",
            });
        }
        let targets: String = env_or("OPTIMUS_CALLBACK_TARGETS", "public".into(), "public, any or off")?;
        let callback_targets = CallbackTargets::parse(&targets).ok_or(SettingsError {
            name: "OPTIMUS_CALLBACK_TARGETS",
            value: targets.clone(),
            expected: "public, any or off",
        })?;
        let ports: String = env_or("OPTIMUS_CALLBACK_PORTS", "80,443".into(), "ports, comma-separated, or any")?;
        let callback_ports = CallbackPorts::parse(&ports).ok_or(SettingsError {
            name: "OPTIMUS_CALLBACK_PORTS",
            value: ports.clone(),
            expected: "port numbers (1 to 65535), comma-separated, or any",
        })?;
        let host: String = env_or("API_HOST", d.host, "a host name or IP address")?;
        let legacy_anonymous = env_or::<String>("OPTIMUS_ALLOW_ANONYMOUS", "0".into(), "0 or 1")? == "1";
        let auth: String = env_or("OPTIMUS_AUTH", String::new(), "required or anonymous")?;
        let auth = match auth.as_str() {
            "required" => Auth::Required,
            "anonymous" => Auth::Anonymous,
            "" if legacy_anonymous || is_loopback(&host) => Auth::Anonymous,
            "" => Auth::Required,
            _ => {
                return Err(SettingsError { name: "OPTIMUS_AUTH", value: auth, expected: "required or anonymous" });
            }
        };
        let list = |name: &'static str| -> Result<Vec<String>, SettingsError> {
            let raw: String = env_or(name, String::new(), "a comma-separated list")?;
            Ok(raw
                .split(',')
                .map(|v| v.trim().trim_end_matches('/').to_ascii_lowercase())
                .filter(|v| !v.is_empty())
                .collect())
        };
        Ok(ApiConfig {
            host,
            auth,
            allowed_hosts: list("OPTIMUS_ALLOWED_HOSTS")?,
            allowed_origins: list("OPTIMUS_ALLOWED_ORIGINS")?,
            port: env_or("API_PORT", d.port, "a port number")?,
            request_timeout: Duration::from_secs(env_or("OPTIMUS_REQUEST_TIMEOUT_SECS", 30, secs)?),
            connections: crate::conn::ConnLimits {
                max_total: env_or("OPTIMUS_MAX_CONNECTIONS", c.max_total, "a whole number")?.min(open_file_room()),
                max_per_peer: env_or("OPTIMUS_MAX_CONNECTIONS_PER_PEER", c.max_per_peer, "a whole number")?,
                first_byte: Duration::from_secs(env_or("OPTIMUS_FIRST_BYTE_TIMEOUT_SECS", 10, secs)?),
                header_read: Duration::from_secs(env_or("OPTIMUS_HEADER_TIMEOUT_SECS", 10, secs)?),
                idle: Duration::from_secs(env_or("OPTIMUS_IDLE_TIMEOUT_SECS", 60, secs)?),
                ..c
            },
            max_streams_per_key: env_or("OPTIMUS_MAX_STREAMS_PER_KEY", d.max_streams_per_key, "a whole number")?,
            redis_memory_high_percent: percent,
            anonymous_quota: optimus_common::Quota {
                max_active: env_or("OPTIMUS_ANONYMOUS_MAX_QUEUED", d.anonymous_quota.max_active, "a whole number")?,
                max_bytes: env_or("OPTIMUS_ANONYMOUS_MAX_BYTES", d.anonymous_quota.max_bytes, "a number of bytes")?,
            },
            callback_targets,
            callback_ports,
        })
    }

    /// Whether the API listens on the loopback interface only.
    pub fn is_loopback(&self) -> bool {
        is_loopback(&self.host)
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether requests need an API key (`OPTIMUS_AUTH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Every route but the open ones needs a valid key; with no key made yet,
    /// every such request is refused.
    Required,
    /// Requests without a key are anonymous (a key, if sent, is still checked and
    /// used). Cross-site requests and foreign `Host` names are refused.
    Anonymous,
}

/// Descriptors this process may open, less a reserve for Redis, logs and the
/// like: connections past it would fail on accept, so the cap stays under it.
fn open_file_room() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|soft| soft.parse::<usize>().ok())
        .map_or(usize::MAX, |soft| soft.saturating_sub(256).max(1))
}
