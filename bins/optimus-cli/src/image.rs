//! `build-image`: builds a language's image through the Docker Engine API, with
//! `dockerfiles/` as the context so that every image gets the same `runner.sh` and
//! launcher, and is labelled with what it carries ([`optimus_common::image`]).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use bollard::query_parameters::BuildImageOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;
use optimus_common::{fingerprint, image, LanguageConfig, LanguageRegistry};

/// Image label holding a hash of the Dockerfile and runner the image was built from.
const HASH_LABEL: &str = "optimus.build-hash";

/// The repository root: the registry lives in `<root>/config/`.
pub fn repo_root(config: &Path) -> PathBuf {
    let dir = config.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf()
}

pub async fn build(config: &Path, names: Option<&str>, all: bool, no_cache: bool) -> anyhow::Result<()> {
    let registry = LanguageRegistry::load(config)?;
    let langs: Vec<&LanguageConfig> = if all {
        registry.languages().iter().collect()
    } else {
        let names = names.unwrap_or_default().split(',').map(str::trim).filter(|n| !n.is_empty());
        names.map(|n| registry.get(n)).collect::<Result<_, _>>()?
    };
    let docker = Docker::connect_with_defaults()
        .context("cannot connect to Docker")?
        .negotiate_version()
        .await
        .context("cannot reach the Docker engine (is it running? is DOCKER_HOST right?)")?;
    let root = repo_root(config);
    let mut versions = Vec::new();
    for lang in langs {
        build_one(&docker, &root, lang, no_cache).await?;
        versions.push((lang.name.clone(), image_version(&docker, &lang.image).await?));
    }
    // The registry shows the version the image itself reports, not a typed one.
    let mut registry = LanguageRegistry::load(config)?;
    let mut changed = false;
    for (name, version) in versions {
        if registry.set_version(&name, &version)? {
            println!("{name}: version {version}");
            changed = true;
        }
    }
    if changed {
        registry.save()?;
    }
    Ok(())
}

/// What the image wrote to /opt/optimus/version when it was built (its runtime's
/// own `--version`), read by running it once.
async fn image_version(docker: &Docker, image: &str) -> anyhow::Result<String> {
    use bollard::models::{ContainerCreateBody, HostConfig};
    use bollard::query_parameters::{LogsOptionsBuilder, RemoveContainerOptionsBuilder};
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(vec!["cat".into(), "/opt/optimus/version".into()]),
        network_disabled: Some(true),
        host_config: Some(HostConfig { network_mode: Some("none".into()), ..Default::default() }),
        ..Default::default()
    };
    let id = docker
        .create_container(None::<bollard::query_parameters::CreateContainerOptions>, body)
        .await
        .with_context(|| format!("cannot run {image} to read its version"))?
        .id;
    let read = async {
        docker.start_container(&id, None::<bollard::query_parameters::StartContainerOptions>).await?;
        let mut logs = docker.logs(&id, Some(LogsOptionsBuilder::new().follow(true).stdout(true).build()));
        let mut out = String::new();
        while let Some(chunk) = logs.next().await {
            out.push_str(&chunk?.to_string());
        }
        Ok::<_, bollard::errors::Error>(out)
    };
    let out = read.await;
    let _ = docker.remove_container(&id, Some(RemoveContainerOptionsBuilder::new().force(true).build())).await;
    let version = out.with_context(|| format!("cannot read the version of {image}"))?.trim().to_string();
    Ok(if version.is_empty() { "unknown".into() } else { version })
}

async fn build_one(docker: &Docker, root: &Path, lang: &LanguageConfig, no_cache: bool) -> anyhow::Result<()> {
    let dockerfile_path = root.join(&lang.dockerfile);
    let context_dir = root.join("dockerfiles");
    let runner_path = context_dir.join("runner.sh");
    let dockerfile =
        std::fs::read(&dockerfile_path).with_context(|| format!("cannot read {}", dockerfile_path.display()))?;
    let runner = std::fs::read(&runner_path).with_context(|| format!("cannot read {}", runner_path.display()))?;
    let launcher_path = root.join(image::LAUNCHER_PATH);
    let launcher = std::fs::read(&launcher_path).with_context(|| {
        format!("cannot read {}; build it first with scripts/build-launcher.sh", launcher_path.display())
    })?;
    let hash = fingerprint(&[&dockerfile, &runner, &launcher]);

    if !no_cache {
        if let Ok(existing) = docker.inspect_image(&lang.image).await {
            let built_from = existing.config.and_then(|c| c.labels).and_then(|l| l.get(HASH_LABEL).cloned());
            if built_from.as_deref() == Some(hash.as_str()) {
                println!("{}: {} is up to date; skipped", lang.name, lang.image);
                return Ok(());
            }
        }
    }
    check_base(docker, &String::from_utf8_lossy(&dockerfile)).await?;

    // The context: runner.sh, the launcher and this language's directory, nothing else.
    let relative = dockerfile_path
        .strip_prefix(&context_dir)
        .with_context(|| format!("{} must be inside {}", dockerfile_path.display(), context_dir.display()))?
        .to_path_buf();
    let lang_dir = relative.parent().unwrap_or(Path::new("")).to_path_buf();
    let mut tar = tar::Builder::new(Vec::new());
    tar.append_path_with_name(&runner_path, "runner.sh")?;
    tar.append_path_with_name(&launcher_path, "launcher/optimus-launcher")?;
    if lang_dir.as_os_str().is_empty() {
        tar.append_path_with_name(&dockerfile_path, &relative)?;
    } else {
        tar.append_dir_all(&lang_dir, context_dir.join(&lang_dir))?;
    }
    let context = tar.into_inner()?;

    let runner_label = image::runner_fingerprint(&runner);
    let protocol = optimus_protocol::VERSION.to_string();
    let labels = HashMap::from([
        (HASH_LABEL, hash.as_str()),
        ("optimus.language", lang.name.as_str()),
        (image::LABEL_RUNNER, runner_label.as_str()),
        (image::LABEL_PROTOCOL, protocol.as_str()),
    ]);
    let options = BuildImageOptionsBuilder::new()
        .dockerfile(&relative.to_string_lossy())
        .t(&lang.image)
        .rm(true)
        .forcerm(true)
        .nocache(no_cache)
        .labels(&labels)
        .build();
    println!("{}: building {} from {}", lang.name, lang.image, lang.dockerfile);
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    let mut stdout = std::io::stdout();
    while let Some(item) = stream.next().await {
        let info = item.with_context(|| format!("building {} failed", lang.image))?;
        if let Some(err) = info.error {
            bail!("building {} failed: {}", lang.image, err.trim());
        }
        if let Some(line) = info.stream {
            write!(stdout, "  {}", line.replace('\n', "\n  ").trim_end_matches(' '))?;
        }
        stdout.flush()?;
    }
    println!("{}: built {}", lang.name, lang.image);
    Ok(())
}

/// A missing base image would make Docker try a registry; say how to make it instead.
async fn check_base(docker: &Docker, dockerfile: &str) -> anyhow::Result<()> {
    let base = dockerfile.lines().find_map(|l| {
        l.trim().strip_prefix("FROM ").map(|rest| rest.split_whitespace().next().unwrap_or("").to_string())
    });
    if let Some(base) = base {
        if docker.inspect_image(&base).await.is_err() {
            bail!("base image {base} is not in the Docker engine; create it with: scripts/base-image.sh {base}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_the_parent_of_the_config_directory() {
        assert_eq!(repo_root(Path::new("config/languages.json")), PathBuf::from("."));
        assert_eq!(repo_root(Path::new("/a/b/config/l.json")), PathBuf::from("/a/b"));
    }
}
