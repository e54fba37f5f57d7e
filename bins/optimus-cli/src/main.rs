//! `optimus-cli`: manages the language registry and the language images.
//!
//! - `add-lang`, `remove-lang`, `list-langs` edit `config/languages.json` ([`langs`]).
//! - `build-image` builds a language's image through the Docker Engine API ([`image`]).
//! - `keys add|list|revoke` manage the API keys ([`keys`]), and `jobs dead|retry|purge-dead`
//!   the dead-letter lists ([`jobs`]), in the Redis at `REDIS_URL`.
//! - `deploy k8s` writes the per-language Kubernetes manifests from the registry ([`deploy`]).
//!
//! Every failure ends with one line on stderr and exit code 1.

mod deploy;
mod image;
mod jobs;
mod keys;
mod langs;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "optimus-cli", about = "Manage Optimus: languages and their images, API keys, dead-lettered jobs")]
struct Cli {
    /// The language registry to edit.
    #[arg(long, global = true, env = "OPTIMUS_LANGUAGES", default_value = "config/languages.json")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Add a language: its registry entry, its Dockerfile, and (unless --skip-docker) its image.
    AddLang(langs::AddLang),
    /// Remove a language's registry entry (its Dockerfile and image are kept).
    RemoveLang {
        #[arg(long)]
        name: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// List the configured languages.
    ListLangs,
    /// Build a language's image (skipped when one built from the same Dockerfile and runner exists).
    BuildImage {
        /// The language, or several separated by commas.
        #[arg(long, required_unless_present = "all")]
        name: Option<String>,
        /// Build every configured language.
        #[arg(long)]
        all: bool,
        /// Rebuild every layer, even when an up-to-date image exists.
        #[arg(long)]
        no_cache: bool,
    },
    /// Manage API keys.
    #[command(subcommand)]
    Keys(keys::Keys),
    /// Inspect and retry jobs that failed after all their attempts.
    #[command(subcommand)]
    Jobs(jobs::Jobs),
    /// Write deployment manifests that follow from the registry.
    #[command(subcommand)]
    Deploy(Deploy),
}

#[derive(Subcommand)]
enum Deploy {
    /// deploy/k8s/workers.yaml and keda.yaml: a worker Deployment and a KEDA ScaledObject per language.
    K8s {
        /// Where the manifests go.
        #[arg(long, default_value = "deploy/k8s")]
        out: PathBuf,
        /// Only check that the files there are current (exit 1 if not).
        #[arg(long)]
        check: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::AddLang(args) => langs::add(&cli.config, args).await,
        Command::RemoveLang { name, yes } => langs::remove(&cli.config, &name, yes),
        Command::ListLangs => langs::list(&cli.config),
        Command::BuildImage { name, all, no_cache } => image::build(&cli.config, name.as_deref(), all, no_cache).await,
        Command::Keys(command) => keys::run(command).await,
        Command::Jobs(command) => jobs::run(&cli.config, command).await,
        Command::Deploy(Deploy::K8s { out, check }) => deploy::k8s(&cli.config, &out, check),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
