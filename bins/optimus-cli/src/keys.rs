//! `keys add|list|revoke`: the API keys, kept (as hashes) in the Redis at `REDIS_URL`.

use anyhow::Context;
use clap::Subcommand;
use optimus_common::{Settings, Store};

#[derive(Subcommand)]
pub enum Keys {
    /// Make a key and print it once (only its hash is stored). Once any key exists,
    /// the API refuses requests without one.
    Add {
        /// A name to tell the key apart (unique).
        #[arg(long)]
        name: String,
        /// Jobs it may submit per minute, e.g. 60 or 60/min (default: no limit).
        #[arg(long, value_parser = parse_rate)]
        rate: Option<u32>,
        /// Jobs it may have queued or running at once (default: no limit).
        #[arg(long)]
        max_queued: Option<u32>,
    },
    /// List the keys (never the keys themselves).
    List,
    /// Revoke a key by id or name: its requests get 403 from now on.
    Revoke {
        /// The key's id (as `keys list` shows) or name.
        key: String,
    },
}

fn parse_rate(raw: &str) -> Result<u32, String> {
    let n = raw.trim().strip_suffix("/min").unwrap_or(raw.trim());
    match n.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("'{raw}' is not a rate: give jobs per minute, such as 60 or 60/min")),
    }
}

pub async fn connect() -> anyhow::Result<Store> {
    let settings = Settings::from_env()?;
    Store::connect(&settings)
        .await
        .with_context(|| format!("cannot reach Redis at {} (set REDIS_URL)", settings.redis_url))
}

fn limit(n: u32) -> String {
    if n == 0 {
        "-".into()
    } else {
        n.to_string()
    }
}

pub async fn run(command: Keys) -> anyhow::Result<()> {
    let store = connect().await?;
    match command {
        Keys::Add { name, rate, max_queued } => {
            let (key, secret) = store.add_key(&name, rate.unwrap_or(0), max_queued.unwrap_or(0)).await?;
            println!("{secret}");
            eprintln!(
                "key '{}' (id {}) made: rate {}/min, max queued {}. It is shown only now; the API stores its hash.",
                key.name,
                key.id,
                limit(key.rate_per_min),
                limit(key.max_queued)
            );
            eprintln!(
                "Send it as 'Authorization: Bearer <key>'. An API with OPTIMUS_AUTH=required (the default beyond \
                 loopback) needs one with every request."
            );
        }
        Keys::List => {
            let keys = store.list_keys().await?;
            if keys.is_empty() {
                println!(
                    "no keys: an API with OPTIMUS_AUTH=required refuses every request; one with anonymous accepts them"
                );
                return Ok(());
            }
            println!("{:<14} {:<20} {:>9} {:>10}  {:<20}  REVOKED", "ID", "NAME", "RATE/MIN", "MAX QUEUED", "CREATED");
            for k in keys {
                println!(
                    "{:<14} {:<20} {:>9} {:>10}  {:<20}  {}",
                    k.id,
                    k.name,
                    limit(k.rate_per_min),
                    limit(k.max_queued),
                    k.created_at,
                    k.revoked_at.as_deref().unwrap_or("-")
                );
            }
        }
        Keys::Revoke { key } => {
            let revoked = store.revoke_key(&key).await?;
            println!(
                "key '{}' (id {}) revoked at {}",
                revoked.name,
                revoked.id,
                revoked.revoked_at.as_deref().unwrap_or("?")
            );
        }
    }
    Ok(())
}
