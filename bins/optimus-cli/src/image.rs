//! `build-image`: builds the base sandbox image, then each language's image FROM
//! it, through the Docker Engine API. Every language image ends with the same
//! seal (`dockerfiles/base/seal.Dockerfile`: the one `runner.sh` and launcher) and
//! is labelled with what it carries ([`optimus_common::image`]).

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
    let base_hash = build_base(&docker, &root, no_cache).await?;
    let mut versions = Vec::new();
    for lang in langs {
        build_one(&docker, &root, lang, &base_hash, no_cache).await?;
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

/// The base sandbox image, built from [`image::BASE_DOCKERFILE`] unless it is
/// there already from the same file; returns its build hash, which every language
/// image's hash includes (a new base rebuilds them).
async fn build_base(docker: &Docker, root: &Path, no_cache: bool) -> anyhow::Result<String> {
    let path = root.join(image::BASE_DOCKERFILE);
    let dockerfile = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let uid = optimus_protocol::SANDBOX_UID.to_string();
    let users = optimus_protocol::SANDBOX_USERS.to_string();
    let hash = fingerprint(&[&dockerfile, uid.as_bytes(), users.as_bytes()]);
    check_base(docker, &String::from_utf8_lossy(&dockerfile)).await?;
    let build = Build {
        name: "base",
        tag: image::BASE_IMAGE,
        dockerfile,
        files: Vec::new(),
        dirs: Vec::new(),
        labels: HashMap::from([(HASH_LABEL, hash.clone())]),
        args: HashMap::from([("SANDBOX_UID", uid), ("SANDBOX_USERS", users)]),
    };
    build.run(docker, &hash, no_cache).await?;
    Ok(hash)
}

async fn build_one(
    docker: &Docker,
    root: &Path,
    lang: &LanguageConfig,
    base_hash: &str,
    no_cache: bool,
) -> anyhow::Result<()> {
    let dockerfile_path = root.join(&lang.dockerfile);
    let context_dir = root.join("dockerfiles");
    let runner_path = context_dir.join("runner.sh");
    let seal_path = root.join(image::SEAL_DOCKERFILE);
    let read = |path: &Path| std::fs::read(path).with_context(|| format!("cannot read {}", path.display()));
    let own = read(&dockerfile_path)?;
    let (runner, seal) = (read(&runner_path)?, read(&seal_path)?);
    let launcher_path = root.join(image::LAUNCHER_PATH);
    let launcher = std::fs::read(&launcher_path).with_context(|| {
        format!("cannot read {}; build it first with scripts/build-launcher.sh", launcher_path.display())
    })?;
    let hash = fingerprint(&[&own, &seal, &runner, &launcher, base_hash.as_bytes()]);
    let own_text = String::from_utf8_lossy(&own);
    if !own_text.lines().any(|l| l.trim() == format!("FROM {}", image::BASE_IMAGE)) {
        println!(
            "{}: {} is not FROM {}; it must lay out the sandbox itself",
            lang.name,
            lang.dockerfile,
            image::BASE_IMAGE
        );
    }
    check_base(docker, &own_text).await?;

    // The context: runner.sh, the launcher and this language's directory, nothing
    // else; the Dockerfile built is the language's own, then the seal.
    let relative = dockerfile_path
        .strip_prefix(&context_dir)
        .with_context(|| format!("{} must be inside {}", dockerfile_path.display(), context_dir.display()))?
        .to_path_buf();
    let lang_dir = relative.parent().unwrap_or(Path::new("")).to_path_buf();
    let files =
        vec![(PathBuf::from("runner.sh"), runner_path), (PathBuf::from("launcher/optimus-launcher"), launcher_path)];
    // The language's whole directory, as its Dockerfile may COPY from it.
    let dirs = if lang_dir.as_os_str().is_empty() {
        Vec::new()
    } else {
        vec![(lang_dir.clone(), context_dir.join(&lang_dir))]
    };
    let mut dockerfile = own;
    dockerfile.extend_from_slice(b"\n");
    dockerfile.extend_from_slice(&seal);
    let build = Build {
        name: &lang.name,
        tag: &lang.image,
        dockerfile,
        files,
        dirs,
        labels: HashMap::from([
            (HASH_LABEL, hash.clone()),
            ("optimus.language", lang.name.clone()),
            (image::LABEL_RUNNER, image::runner_fingerprint(&runner)),
            (image::LABEL_PROTOCOL, optimus_protocol::VERSION.to_string()),
        ]),
        args: HashMap::new(),
    };
    build.run(docker, &hash, no_cache).await
}

/// One image build through the Engine API.
struct Build<'a> {
    /// What the progress lines call it.
    name: &'a str,
    tag: &'a str,
    dockerfile: Vec<u8>,
    /// The context beside the Dockerfile: (path in the context, file on disk).
    files: Vec<(PathBuf, PathBuf)>,
    /// Directories beside the Dockerfile, whole: (path in the context, directory on disk).
    dirs: Vec<(PathBuf, PathBuf)>,
    labels: HashMap<&'static str, String>,
    args: HashMap<&'static str, String>,
}

/// Where the Dockerfile built goes in the context (no file of dockerfiles/ has this name).
const CONTEXT_DOCKERFILE: &str = "optimus-build.Dockerfile";

impl Build<'_> {
    /// Builds, unless an image of this tag was built from inputs of this `hash`.
    async fn run(self, docker: &Docker, hash: &str, no_cache: bool) -> anyhow::Result<()> {
        if !no_cache {
            if let Ok(existing) = docker.inspect_image(self.tag).await {
                let built_from = existing.config.and_then(|c| c.labels).and_then(|l| l.get(HASH_LABEL).cloned());
                if built_from.as_deref() == Some(hash) {
                    println!("{}: {} is up to date; skipped", self.name, self.tag);
                    return Ok(());
                }
            }
        }
        let mut tar = tar::Builder::new(Vec::new());
        for (name, path) in &self.files {
            tar.append_path_with_name(path, name)?;
        }
        for (name, path) in &self.dirs {
            tar.append_dir_all(name, path)?;
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(self.dockerfile.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, CONTEXT_DOCKERFILE, self.dockerfile.as_slice())?;
        let context = tar.into_inner()?;
        let labels: HashMap<&str, &str> = self.labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let args: HashMap<&str, &str> = self.args.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let options = BuildImageOptionsBuilder::new()
            .dockerfile(CONTEXT_DOCKERFILE)
            .t(self.tag)
            .rm(true)
            .forcerm(true)
            .nocache(no_cache)
            .labels(&labels)
            .buildargs(&args)
            .build();
        println!("{}: building {}", self.name, self.tag);
        let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
        let mut stdout = std::io::stdout();
        while let Some(item) = stream.next().await {
            let info = item.with_context(|| format!("building {} failed", self.tag))?;
            if let Some(err) = info.error {
                bail!("building {} failed: {}", self.tag, err.trim());
            }
            if let Some(line) = info.stream {
                write!(stdout, "  {}", line.replace('\n', "\n  ").trim_end_matches(' '))?;
            }
            stdout.flush()?;
        }
        println!("{}: built {}", self.name, self.tag);
        Ok(())
    }
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
