//! `add-lang`, `remove-lang`, `list-langs`: edits of the language registry.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{bail, Context};
use clap::Args;
use optimus_common::{LanguageConfig, LanguageRegistry};

use crate::image;

#[derive(Args)]
pub struct AddLang {
    /// Name users submit jobs with (a-z, 0-9, '_', '-').
    #[arg(long)]
    name: String,
    /// Source file extension, without the dot.
    #[arg(long)]
    ext: String,
    /// Runtime version, shown by `list-langs` and `GET /languages`.
    #[arg(long)]
    version: String,
    /// Default memory limit per test, in MB.
    #[arg(long, default_value_t = 256)]
    memory: u32,
    /// CPU cores a job's container may use.
    #[arg(long, default_value_t = 1.0)]
    cpu: f64,
    /// Debian packages the image installs (default: the language's name).
    #[arg(long)]
    packages: Option<String>,
    /// Shell command that compiles `main.<ext>` in the work directory (compiled languages).
    #[arg(long)]
    compile_cmd: Option<String>,
    /// Shell command that runs the program, e.g. "ruby main.rb" (default: runner.sh's recipe for the name).
    #[arg(long)]
    run_cmd: Option<String>,
    /// Another name requests may use (Piston's aliases); repeat for several.
    #[arg(long = "alias")]
    aliases: Vec<String>,
    /// A Judge0 language id that means this language (for Judge0 clients); repeat for several.
    #[arg(long = "judge0-id")]
    judge0_ids: Vec<u32>,
    /// The name Judge0 clients see; `{version}` becomes the version's x.y.z.
    #[arg(long)]
    judge0_name: Option<String>,
    /// Write the entry and the Dockerfile, but do not build the image.
    #[arg(long)]
    skip_docker: bool,
}

pub async fn add(config: &Path, args: AddLang) -> anyhow::Result<()> {
    let mut registry = LanguageRegistry::load(config)?;
    if registry.find(&args.name).is_some() {
        bail!(
            "language '{}' already exists in {}; remove it first with: optimus-cli remove-lang --name {}",
            args.name,
            config.display(),
            args.name
        );
    }
    let mut lang = LanguageConfig::new(&args.name, &args.ext, &args.version);
    lang.memory_limit_mb = args.memory;
    lang.cpu_limit = args.cpu;
    lang.compiled = args.compile_cmd.is_some();
    lang.compile_command = args.compile_cmd;
    lang.run_command = args.run_cmd;
    lang.aliases = args.aliases;
    lang.judge0_ids = args.judge0_ids;
    lang.judge0_name = args.judge0_name;
    registry.add(lang.clone())?;

    let root = image::repo_root(config);
    let dockerfile = root.join(&lang.dockerfile);
    if dockerfile.exists() {
        println!("keeping the existing {}", dockerfile.display());
    } else {
        let packages = args.packages.unwrap_or_else(|| args.name.clone());
        std::fs::create_dir_all(dockerfile.parent().expect("dockerfiles/<name>/Dockerfile has a parent"))
            .with_context(|| format!("cannot create the directory of {}", dockerfile.display()))?;
        std::fs::write(&dockerfile, dockerfile_template(&lang.name, &packages))
            .with_context(|| format!("cannot write {}", dockerfile.display()))?;
        println!("wrote {}", dockerfile.display());
    }
    registry.save()?;
    println!("added '{}' to {}", lang.name, config.display());
    if args.skip_docker {
        println!("image not built (--skip-docker); build it with: optimus-cli build-image --name {}", lang.name);
        return Ok(());
    }
    image::build(config, Some(&lang.name), false, false).await
}

/// The Dockerfile `add-lang` writes: the base sandbox image and the language's
/// Debian packages. The sandbox's layout is the base image's, and build-image
/// ends the image with the shared runner and launcher.
fn dockerfile_template(name: &str, packages: &str) -> String {
    format!(
        "# {name} jobs. Written by `optimus-cli add-lang`; edit freely.\n\
         FROM {base}\n\
         RUN apt-get update \\\n \
         && apt-get install -y --no-install-recommends {packages} \\\n \
         && rm -rf /var/lib/apt/lists/* /usr/share/doc /usr/share/man\n\
         RUN (dpkg-query -W -f '${{Version}}\\n' {first} 2>/dev/null || echo unknown) > /opt/optimus/version\n",
        base = optimus_common::image::BASE_IMAGE,
        first = packages.split_whitespace().next().unwrap_or(name),
    )
}

pub fn remove(config: &Path, name: &str, yes: bool) -> anyhow::Result<()> {
    let mut registry = LanguageRegistry::load(config)?;
    registry.get(name)?;
    if !yes {
        print!("remove language '{name}' from {}? [y/N] ", config.display());
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            bail!("not removed (answer 'y', or pass --yes)");
        }
    }
    let lang = registry.remove(name)?;
    registry.save()?;
    println!("removed '{name}' from {}; {} and the image {} are kept", config.display(), lang.dockerfile, lang.image);
    Ok(())
}

pub fn list(config: &Path) -> anyhow::Result<()> {
    let registry = LanguageRegistry::load(config)?;
    let header = ["NAME", "VERSION", "EXT", "COMPILED", "MEMORY", "CPU", "TIMEOUT", "IMAGE", "ALIASES", "JUDGE0"];
    let rows: Vec<[String; 10]> = registry
        .languages()
        .iter()
        .map(|l| {
            [
                l.name.clone(),
                l.version.clone(),
                l.extension.clone(),
                if l.compiled { "yes" } else { "no" }.to_string(),
                format!("{} MB", l.memory_limit_mb),
                format!("{}", l.cpu_limit),
                format!("{} ms", l.time_limit_ms),
                l.image.clone(),
                l.aliases.join(","),
                l.judge0_ids.iter().map(u32::to_string).collect::<Vec<_>>().join(","),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].len()).chain([header[i].len()]).max().unwrap_or(0))
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    Ok(())
}
