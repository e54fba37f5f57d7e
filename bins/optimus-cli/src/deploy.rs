//! `deploy k8s`: the per-language Kubernetes manifests, written from the registry
//! so that they can never disagree with it: one worker Deployment and one KEDA
//! ScaledObject per language, the ScaledObject watching the queue that
//! [`optimus_common::keys::queue`] names (the one owner of the key schema).
//! `--check` compares instead of writing, for CI.

use std::path::Path;

use anyhow::{bail, Context};
use optimus_common::{keys, LanguageConfig, LanguageRegistry};

const WORKERS_HEADER: &str = include_str!("deploy/workers-header.yaml");
const WORKER: &str = include_str!("deploy/worker.yaml");
const KEDA_HEADER: &str = include_str!("deploy/keda-header.yaml");
const SCALED_OBJECT: &str = include_str!("deploy/scaledobject.yaml");

/// One worker per this many waiting jobs, per job a worker runs at once.
const WAITING_PER_SLOT: usize = 2;

fn fill(template: &str, lang: &LanguageConfig) -> String {
    template
        .replace("{language}", &lang.name)
        .replace("{queue}", &keys::queue(&lang.name))
        .replace("{list_length}", &(WAITING_PER_SLOT * lang.concurrency).to_string())
        .replace("{concurrency}", &lang.concurrency.to_string())
}

/// The files of `deploy/k8s` that follow from the registry, by name.
pub fn manifests(registry: &LanguageRegistry) -> [(&'static str, String); 2] {
    let each = |header: &str, template: &str| {
        registry.languages().iter().fold(header.to_string(), |text, lang| text + &fill(template, lang))
    };
    [("workers.yaml", each(WORKERS_HEADER, WORKER)), ("keda.yaml", each(KEDA_HEADER, SCALED_OBJECT))]
}

pub fn k8s(config: &Path, out: &Path, check: bool) -> anyhow::Result<()> {
    let registry = LanguageRegistry::load(config)?;
    let mut stale = Vec::new();
    for (name, text) in manifests(&registry) {
        let path = out.join(name);
        if check {
            let current = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
            if current != text {
                stale.push(path.display().to_string());
            }
        } else {
            std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
            println!("wrote {}", path.display());
        }
    }
    if !stale.is_empty() {
        bail!("{} do not match {}: run `optimus-cli deploy k8s`", stale.join(" and "), config.display());
    }
    if check {
        println!("{} match {}", out.display(), config.display());
    }
    Ok(())
}
