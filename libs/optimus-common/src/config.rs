//! The language registry: `config/languages.json`, one entry per language.
//!
//! Loaded once at start by the API, the worker and the CLI through
//! [`LanguageRegistry::load`], which checks every entry so that nothing downstream
//! has to. Errors name the file, the language and the field.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::keys;

/// One language: where its image comes from, how its programs are built and run,
/// and the limits a job gets when it does not ask for its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanguageConfig {
    /// The name users put in `"language"`; also the runner's recipe name.
    pub name: String,
    /// The runtime's version, for `GET /languages` and `list-langs`.
    pub version: String,
    /// Docker image the worker runs this language's jobs in.
    pub image: String,
    /// Dockerfile that builds `image`, relative to the repository root.
    pub dockerfile: String,
    /// File extension of a source file, without the dot.
    pub extension: String,
    /// Name the submitted source is saved as (Java needs `Main.java`).
    pub source_file: String,
    /// Whether the language has a compile step; the worker then compiles once per job.
    #[serde(default)]
    pub compiled: bool,
    /// Shell command that compiles `source_file` in the work directory; `None` uses
    /// the recipe for `name` in `dockerfiles/runner.sh`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compile_command: Option<String>,
    /// Shell command that runs the program (stdin is the test input); `None` uses
    /// the recipe for `name` in `dockerfiles/runner.sh`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_command: Option<String>,
    /// Older registries named the language's Redis queue here. The queue is now
    /// always [`keys::queue`] of the name (the key schema has one owner): an entry
    /// that still carries the field loads if it names that queue, and is refused
    /// otherwise. Never written back.
    #[serde(default, rename = "queue", skip_serializing)]
    legacy_queue: Option<String>,
    /// Default memory limit of one test, in MiB (default 256).
    #[serde(default = "default_memory_mb")]
    pub memory_limit_mb: u32,
    /// CPU cores a job's container may use (default 1.0).
    #[serde(default = "default_cpu")]
    pub cpu_limit: f64,
    /// Default CPU-time limit of one test, in ms (default 5000; `timeout_ms` in the
    /// file); [`crate::limits`] derives its wall-clock cap.
    #[serde(default = "default_timeout_ms", rename = "timeout_ms")]
    pub time_limit_ms: u64,
    /// Limit of the compile step, in ms of CPU time and of wall-clock time alike
    /// (default 30000).
    #[serde(default = "default_compile_timeout_ms")]
    pub compile_timeout_ms: u64,
    /// Memory the compile step may use, in MiB (default 1024): compilers need more
    /// than the programs they build.
    #[serde(default = "default_compile_memory_mb")]
    pub compile_memory_mb: u32,
    /// Most processes and threads a job's container may hold (default 128).
    #[serde(default = "default_pids")]
    pub pids_limit: i64,
    /// Jobs one worker of this language runs at once (default 2).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Queued jobs past which `POST /jobs` answers 503 (default 1000).
    #[serde(default = "default_queue_depth")]
    pub max_queue_depth: usize,
    /// Containers a worker keeps started and waiting for jobs (default: the
    /// worker's concurrency + 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_size: Option<usize>,
    /// Other names a request may use for this language (Piston's aliases such as
    /// `py` or `c++`); unique across the registry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// The runtime Piston names beside the language (`node`, `gcc`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Judge0 language ids that mean this language (CE 1.13.1's where it has one);
    /// unique across the registry. None: Judge0 clients cannot use the language.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub judge0_ids: Vec<u32>,
    /// The name Judge0 clients see, with `{version}` replaced by [`Self::semver`]
    /// (default: `"<name> ({version})"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge0_name: Option<String>,
}

fn default_memory_mb() -> u32 {
    256
}
fn default_cpu() -> f64 {
    1.0
}
fn default_timeout_ms() -> u64 {
    5000
}
fn default_compile_timeout_ms() -> u64 {
    30_000
}
fn default_compile_memory_mb() -> u32 {
    1024
}
fn default_pids() -> i64 {
    128
}
fn default_concurrency() -> usize {
    2
}
fn default_queue_depth() -> usize {
    1000
}

impl LanguageConfig {
    /// A new entry with the defaults above, as `optimus-cli add-lang` creates it.
    pub fn new(name: &str, extension: &str, version: &str) -> Self {
        LanguageConfig {
            name: name.to_string(),
            version: version.to_string(),
            image: format!("optimus-{name}:latest"),
            dockerfile: format!("dockerfiles/{name}/Dockerfile"),
            extension: extension.to_string(),
            source_file: format!("main.{extension}"),
            compiled: false,
            compile_command: None,
            run_command: None,
            legacy_queue: None,
            memory_limit_mb: default_memory_mb(),
            cpu_limit: default_cpu(),
            time_limit_ms: default_timeout_ms(),
            compile_timeout_ms: default_compile_timeout_ms(),
            compile_memory_mb: default_compile_memory_mb(),
            pids_limit: default_pids(),
            concurrency: default_concurrency(),
            max_queue_depth: default_queue_depth(),
            pool_size: None,
            aliases: Vec::new(),
            runtime: None,
            judge0_ids: Vec::new(),
            judge0_name: None,
        }
    }

    /// The runtime's version as `major.minor.patch`, read from the first dotted
    /// number in [`Self::version`] ("go version go1.19.8 linux/amd64" is 1.19.8,
    /// "Python 3.11" is 3.11.0); `0.0.0` when there is none.
    pub fn semver(&self) -> String {
        let v = self.version.as_bytes();
        let mut i = 0;
        while i < v.len() {
            if v[i].is_ascii_digit() {
                let start = i;
                while i < v.len() && (v[i].is_ascii_digit() || v[i] == b'.') {
                    i += 1;
                }
                let parts: Vec<&str> = self.version[start..i].split('.').filter(|p| !p.is_empty()).take(3).collect();
                if parts.len() >= 2 {
                    let mut full: Vec<&str> = parts;
                    full.resize(3, "0");
                    return full.join(".");
                }
            }
            i += 1;
        }
        "0.0.0".to_string()
    }

    /// The name Judge0 clients see, such as "Python (3.11.2)".
    pub fn judge0_display_name(&self) -> String {
        let template = self.judge0_name.clone().unwrap_or_else(|| format!("{} ({{version}})", self.name));
        template.replace("{version}", &self.semver())
    }

    /// Whether a request's language name means this language.
    pub fn answers_to(&self, name: &str) -> bool {
        self.name == name || self.aliases.iter().any(|a| a == name)
    }

    /// Checks one entry; the message names the field and what it accepts.
    fn validate(&self) -> Result<(), (String, String)> {
        let bad = |field: &str, why: &str| Err((field.to_string(), why.to_string()));
        if !is_valid_name(&self.name) {
            return bad("name", "must be 1-32 characters of a-z, 0-9, '_' or '-'");
        }
        if self.image.trim().is_empty() {
            return bad("image", "must not be empty");
        }
        if self.extension.is_empty() || !self.extension.chars().all(|c| c.is_ascii_alphanumeric()) {
            return bad("extension", "must be letters and digits, without the dot");
        }
        if self.source_file.is_empty() || self.source_file.contains('/') || self.source_file.starts_with('.') {
            return bad("source_file", "must be a plain file name such as main.py");
        }
        if self.legacy_queue.as_ref().is_some_and(|q| *q != keys::queue(&self.name)) {
            return bad(
                "queue",
                &format!("is derived from the name ({}) and cannot be set; remove the field", keys::queue(&self.name)),
            );
        }
        if !(16..=65_536).contains(&self.memory_limit_mb) {
            return bad("memory_limit_mb", "must be between 16 and 65536");
        }
        if !(16..=65_536).contains(&self.compile_memory_mb) {
            return bad("compile_memory_mb", "must be between 16 and 65536");
        }
        if !(self.cpu_limit > 0.0 && self.cpu_limit <= 64.0) {
            return bad("cpu_limit", "must be more than 0 and at most 64 cores");
        }
        if !(1..=600_000).contains(&self.time_limit_ms) {
            return bad("timeout_ms", "must be between 1 and 600000");
        }
        if !(1..=600_000).contains(&self.compile_timeout_ms) {
            return bad("compile_timeout_ms", "must be between 1 and 600000");
        }
        if !(16..=65_536).contains(&self.pids_limit) {
            return bad("pids_limit", "must be between 16 and 65536");
        }
        if !(1..=256).contains(&self.concurrency) {
            return bad("concurrency", "must be between 1 and 256");
        }
        if self.pool_size.is_some_and(|n| n > 64) {
            return bad("pool_size", "must be at most 64");
        }
        if self.max_queue_depth == 0 {
            return bad("max_queue_depth", "must be at least 1");
        }
        if self.compile_command.is_some() && !self.compiled {
            return bad("compiled", "must be true when compile_command is set");
        }
        if self.aliases.iter().any(|a| a.is_empty() || a.len() > 32 || a.chars().any(|c| c.is_whitespace())) {
            return bad("aliases", "must be 1-32 characters without spaces each");
        }
        if self.judge0_ids.contains(&0) {
            return bad("judge0_ids", "must be positive numbers");
        }
        Ok(())
    }
}

/// Language names go into Redis keys, image tags and paths: keep them plain.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// What can go wrong with the registry file. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{} is not a valid language registry: {source}", path.display())]
    Parse { path: PathBuf, source: serde_json::Error },
    #[error("{}: language '{language}': field '{field}' {reason}", path.display())]
    Invalid { path: PathBuf, language: String, field: String, reason: String },
    #[error("{}: language '{language}' is listed twice", path.display())]
    Duplicate { path: PathBuf, language: String },
    #[error("language '{language}' is not configured in {}; configured: {known}", path.display())]
    Unknown { path: PathBuf, language: String, known: String },
}

#[derive(Serialize, Deserialize)]
struct RegistryFile {
    languages: Vec<LanguageConfig>,
}

/// Every configured language, in file order.
#[derive(Debug, Clone)]
pub struct LanguageRegistry {
    path: PathBuf,
    languages: Vec<LanguageConfig>,
}

impl LanguageRegistry {
    /// Reads and checks the registry file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref().to_path_buf();
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
        let file: RegistryFile =
            serde_json::from_str(&text).map_err(|source| ConfigError::Parse { path: path.clone(), source })?;
        let registry = LanguageRegistry { path, languages: Vec::new() };
        file.languages.into_iter().try_fold(registry, |mut r, lang| {
            r.add(lang)?;
            Ok(r)
        })
    }

    /// The file this registry was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn languages(&self) -> &[LanguageConfig] {
        &self.languages
    }

    /// Comma-separated names, for messages that list what is accepted.
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.languages.iter().map(|l| l.name.as_str()).collect();
        names.join(", ")
    }

    pub fn find(&self, name: &str) -> Option<&LanguageConfig> {
        self.languages.iter().find(|l| l.name == name)
    }

    /// The language a name or one of its aliases means.
    pub fn find_alias(&self, name: &str) -> Option<&LanguageConfig> {
        self.languages.iter().find(|l| l.answers_to(name))
    }

    /// The language a Judge0 language id means.
    pub fn find_judge0(&self, id: u32) -> Option<&LanguageConfig> {
        self.languages.iter().find(|l| l.judge0_ids.contains(&id))
    }

    /// Like [`find`](Self::find), with an error that lists the configured languages.
    pub fn get(&self, name: &str) -> Result<&LanguageConfig, ConfigError> {
        self.find(name).ok_or_else(|| ConfigError::Unknown {
            path: self.path.clone(),
            language: name.to_string(),
            known: self.names(),
        })
    }

    /// Adds a checked entry; refuses a name that is already there.
    pub fn add(&mut self, lang: LanguageConfig) -> Result<(), ConfigError> {
        if let Err((field, reason)) = lang.validate() {
            return Err(ConfigError::Invalid { path: self.path.clone(), language: lang.name.clone(), field, reason });
        }
        if self.find(&lang.name).is_some() {
            return Err(ConfigError::Duplicate { path: self.path.clone(), language: lang.name });
        }
        let invalid = |field: &str, reason: String| ConfigError::Invalid {
            path: self.path.clone(),
            language: lang.name.clone(),
            field: field.to_string(),
            reason,
        };
        for other in &self.languages {
            if let Some(alias) = lang.aliases.iter().chain([&lang.name]).find(|a| other.answers_to(a)) {
                return Err(invalid("aliases", format!("'{alias}' already means language '{}'", other.name)));
            }
            if let Some(alias) = other.aliases.iter().find(|a| lang.answers_to(a)) {
                return Err(invalid("aliases", format!("'{alias}' already means language '{}'", other.name)));
            }
            if let Some(id) = lang.judge0_ids.iter().find(|id| other.judge0_ids.contains(id)) {
                return Err(invalid("judge0_ids", format!("{id} already means language '{}'", other.name)));
            }
        }
        self.languages.push(lang);
        Ok(())
    }

    /// Records the version a language's image reports; `Ok(true)` if it changed.
    pub fn set_version(&mut self, name: &str, version: &str) -> Result<bool, ConfigError> {
        self.get(name)?;
        let lang = self.languages.iter_mut().find(|l| l.name == name).expect("found above");
        let changed = lang.version != version;
        lang.version = version.to_string();
        Ok(changed)
    }

    /// Removes an entry and returns it.
    pub fn remove(&mut self, name: &str) -> Result<LanguageConfig, ConfigError> {
        self.get(name)?;
        let index = self.languages.iter().position(|l| l.name == name).expect("found above");
        Ok(self.languages.remove(index))
    }

    /// Writes the registry back to its file (through a temporary file, so a crash
    /// never leaves half a registry).
    pub fn save(&self) -> Result<(), ConfigError> {
        let file = RegistryFile { languages: self.languages.clone() };
        let mut text = serde_json::to_string_pretty(&file).expect("registry serializes");
        text.push('\n');
        let tmp = self.path.with_extension("json.tmp");
        let write_err = |source| ConfigError::Write { path: self.path.clone(), source };
        std::fs::write(&tmp, text).map_err(write_err)?;
        std::fs::rename(&tmp, &self.path).map_err(write_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("languages.json");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn shipped_registry_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/languages.json");
        let reg = LanguageRegistry::load(&path).unwrap();
        for name in ["python", "java", "rust"] {
            assert!(reg.find(name).is_some(), "{name} missing");
        }
    }

    #[test]
    fn semver_is_read_from_whatever_the_runtime_printed() {
        let version = |v: &str| LanguageConfig::new("x", "x", v).semver();
        assert_eq!(version("Python 3.11.2"), "3.11.2");
        assert_eq!(version("go version go1.19.8 linux/amd64"), "1.19.8");
        assert_eq!(version("openjdk version \"17.0.19\" 2026-04-21"), "17.0.19");
        assert_eq!(version("GNU bash, version 5.2.15(1)-release"), "5.2.15");
        assert_eq!(version("v18.20.4"), "18.20.4");
        assert_eq!(version("tool 3.11"), "3.11.0");
        assert_eq!(version("no number"), "0.0.0");
        let mut cpp = LanguageConfig::new("cpp", "cpp", "g++ (Debian 12.2.0-14+deb12u1) 12.2.0");
        cpp.judge0_name = Some("C++ (GCC {version})".into());
        assert_eq!(cpp.judge0_display_name(), "C++ (GCC 12.2.0)");
    }

    #[test]
    fn aliases_and_judge0_ids_mean_one_language_each() {
        let (_dir, path) = write(r#"{"languages": []}"#);
        let mut reg = LanguageRegistry::load(&path).unwrap();
        let mut py = LanguageConfig::new("python", "py", "3.11.2");
        py.aliases = vec!["py".into()];
        py.judge0_ids = vec![71];
        reg.add(py).unwrap();
        let mut clash = LanguageConfig::new("pypy", "py", "7.3.0");
        clash.aliases = vec!["py".into()];
        assert!(reg.add(clash).unwrap_err().to_string().contains("'py' already means language 'python'"));
        let mut named_like_alias = LanguageConfig::new("py", "py", "1.0");
        named_like_alias.judge0_ids = vec![99];
        assert!(reg.add(named_like_alias).is_err());
        let mut same_id = LanguageConfig::new("pypy", "py", "7.3.0");
        same_id.judge0_ids = vec![71];
        assert!(reg.add(same_id).unwrap_err().to_string().contains("71 already means language 'python'"));
        assert_eq!(reg.find_alias("py").unwrap().name, "python");
        assert_eq!(reg.find_judge0(71).unwrap().name, "python");
    }

    #[test]
    fn error_names_file_language_and_field() {
        let mut lang = LanguageConfig::new("go", "go", "1");
        lang.memory_limit_mb = 1;
        let text = serde_json::json!({ "languages": [lang] }).to_string();
        let (_dir, path) = write(&text);
        let err = LanguageRegistry::load(&path).unwrap_err().to_string();
        assert!(err.contains("languages.json"), "{err}");
        assert!(err.contains("'go'"), "{err}");
        assert!(err.contains("memory_limit_mb"), "{err}");
    }

    #[test]
    fn unknown_language_lists_known_ones() {
        let langs = vec![LanguageConfig::new("a", "x", "1"), LanguageConfig::new("b", "y", "1")];
        let (_dir, path) = write(&serde_json::json!({ "languages": langs }).to_string());
        let err = LanguageRegistry::load(&path).unwrap().get("c").unwrap_err().to_string();
        assert!(err.contains("configured: a, b"), "{err}");
    }

    #[test]
    fn a_legacy_queue_field_loads_only_if_it_names_the_derived_queue() {
        let mut entry = serde_json::to_value(LanguageConfig::new("go", "go", "1")).unwrap();
        assert!(entry.get("queue").is_none(), "the queue is never written");
        entry["queue"] = "optimus:queue:go".into();
        let (_dir, path) = write(&serde_json::json!({ "languages": [entry.clone()] }).to_string());
        assert_eq!(LanguageRegistry::load(&path).unwrap().languages()[0].name, "go");
        entry["queue"] = "jobs:go".into();
        let (_dir, path) = write(&serde_json::json!({ "languages": [entry] }).to_string());
        let err = LanguageRegistry::load(&path).unwrap_err().to_string();
        assert!(err.contains("'queue'") && err.contains("optimus:queue:go"), "{err}");
    }

    #[test]
    fn duplicate_is_refused() {
        let langs = vec![LanguageConfig::new("a", "x", "1"), LanguageConfig::new("a", "y", "1")];
        let (_dir, path) = write(&serde_json::json!({ "languages": langs }).to_string());
        let err = LanguageRegistry::load(&path).unwrap_err().to_string();
        assert!(err.contains("listed twice"), "{err}");
    }
}
