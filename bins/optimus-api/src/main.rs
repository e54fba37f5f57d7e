//! `optimus-api`: reads its configuration, connects to Redis and serves
//! [`optimus_api::app`] on `API_HOST:API_PORT` until SIGINT or SIGTERM. Beyond the
//! loopback interface, keys are required unless `OPTIMUS_AUTH=anonymous` says otherwise.

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

    let store = Store::connect_waiting(&settings, optimus_common::store::STARTUP_PATIENCE)
        .await
        .with_context(|| format!("cannot reach Redis at {}", settings.redis_url))?;
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
    optimus_common::sync::cancel_on_signal(shutdown.clone(), "shutting down: finishing requests in flight");
    let state = AppState::new(store, registry, settings, api);
    optimus_api::run(listener, state, shutdown).await?;
    tracing::info!("optimus-api stopped");
    // The spans still buffered are exported before the process ends.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    Ok(())
}
