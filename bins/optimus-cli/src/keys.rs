//! `keys add|list|revoke`: the API keys, kept (as hashes) in the Redis at `REDIS_URL`.

use anyhow::Context;
use clap::Subcommand;
use optimus_common::{Quota, Settings, Store};

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
        /// Jobs it may have queued or running at once (default 1000; 0: no limit).
        #[arg(long, default_value_t = Quota::DEFAULT.max_active)]
        max_queued: u32,
        /// Bytes its jobs may keep in Redis at once: specs while they wait, results
        /// until they expire; e.g. 268435456, 256MiB or 1GiB (default 256MiB; 0: no limit).
        #[arg(long, value_parser = parse_bytes, default_value = "256MiB")]
        max_bytes: u64,
        /// Its turns in fair share: while several keys have jobs waiting in a
        /// language, this one gets this many taken for another's one (1 to 100).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
        weight: u32,
    },
    /// List the keys (never the keys themselves).
    List,
    /// Revoke a key by id or name: its requests get 403 from now on.
    Revoke {
        /// The key's id (as `keys list` shows) or name.
        key: String,
    },
}

fn parse_bytes(raw: &str) -> Result<u64, String> {
    let raw = raw.trim();
    let (digits, unit) = match raw.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => raw.split_at(at),
        None => (raw, ""),
    };
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(format!("'{raw}' is not a size: give bytes, or a number with KiB, MiB or GiB")),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("'{raw}' is not a size: give bytes, or a number with KiB, MiB or GiB"))
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

fn limit(n: impl Into<u64>) -> String {
    let n: u64 = n.into();
    if n == 0 {
        "-".into()
    } else {
        n.to_string()
    }
}

pub async fn run(command: Keys) -> anyhow::Result<()> {
    let store = connect().await?;
    match command {
        Keys::Add { name, rate, max_queued, max_bytes, weight } => {
            let quota = Quota { max_active: max_queued, max_bytes };
            let (key, secret) = store.add_weighted_key(&name, rate.unwrap_or(0), quota, weight).await?;
            println!("{secret}");
            eprintln!(
                "key '{}' (id {}) made: rate {}/min, max queued {}, max bytes {}, weight {}. It is shown only \
                 now; the API stores its hash.",
                key.name,
                key.id,
                limit(key.rate_per_min),
                limit(key.max_queued),
                limit(key.max_bytes),
                key.weight
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
            println!(
                "{:<14} {:<20} {:>9} {:>10} {:>12} {:>6}  {:<20}  REVOKED",
                "ID", "NAME", "RATE/MIN", "MAX QUEUED", "MAX BYTES", "WEIGHT", "CREATED"
            );
            for k in keys {
                println!(
                    "{:<14} {:<20} {:>9} {:>10} {:>12} {:>6}  {:<20}  {}",
                    k.id,
                    k.name,
                    limit(k.rate_per_min),
                    limit(k.max_queued),
                    limit(k.max_bytes),
                    k.weight,
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

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes_are_bytes_or_binary_units() {
        assert_eq!(parse_bytes("1024"), Ok(1024));
        assert_eq!(parse_bytes("256MiB"), Ok(256 << 20));
        assert_eq!(parse_bytes("2 GiB"), Ok(2 << 30));
        assert_eq!(parse_bytes("0"), Ok(0));
        assert!(parse_bytes("12MB").is_err() && parse_bytes("MiB").is_err() && parse_bytes("-1").is_err());
        assert!(parse_bytes("99999999999GiB").is_err());
    }
}
