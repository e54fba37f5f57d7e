//! `optimus-api`: reads its configuration, connects to Redis and serves
//! [`optimus_api::app`] on `API_HOST:API_PORT` until SIGINT or SIGTERM. Beyond the
//! loopback interface, keys are required unless `OPTIMUS_AUTH=anonymous` says otherwise.

use std::time::Duration;

use anyhow::Context;
use optimus_api::config::Auth;
use optimus_api::{ApiConfig, AppState};
use optimus_common::{LanguageRegistry, Settings, Store};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = optimus_common::telemetry::init("optimus-api")?;

    let settings = Settings::from_env()?;
    let api = ApiConfig::from_env()?;
    let registry = LanguageRegistry::load(&settings.languages_file)?;
    let addr = format!("{}:{}", api.host, api.port);

    let store = connect(&settings).await?;
    match api.auth {
        Auth::Required if !store.any_key().await? => tracing::warn!(
            "OPTIMUS_AUTH=required and no API key exists: every request but /health is refused until one is made \
             (optimus-cli keys add --name NAME)"
        ),
        Auth::Anonymous if !api.is_loopback() => tracing::warn!(
            addr = %addr,
            "OPTIMUS_AUTH=anonymous beyond loopback: anyone who reaches this port may run code here"
        ),
        _ => {}
    }
    let listener = tokio::net::TcpListener::bind(&addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    // The bound address, not the asked one: with API_PORT=0 the system picks the port.
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, auth = ?api.auth, languages = %registry.names(), "optimus-api listening");

    let shutdown = CancellationToken::new();
    tokio::spawn(signal_shutdown(shutdown.clone()));
    let state = AppState::new(store, registry, settings, api);
    optimus_api::run(listener, state, shutdown).await?;
    tracing::info!("optimus-api stopped");
    // The spans still buffered are exported before the process ends.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    Ok(())
}

/// Redis may come up a moment after the API (setup starts both): wait for it a while.
async fn connect(settings: &Settings) -> anyhow::Result<Store> {
    let mut last = None;
    for _ in 0..30 {
        match Store::connect(settings).await {
            Ok(store) => return Ok(store),
            Err(e) => {
                tracing::warn!(error = %e, url = %settings.redis_url, "redis not reachable yet");
                last = Some(e);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    Err(last.expect("tried at least once")).with_context(|| format!("cannot reach Redis at {}", settings.redis_url))
}

async fn signal_shutdown(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
    token.cancel();
}
