//! optimus-cli on a temporary copy of the registry: add, list, remove, refusals.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct Repo {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Repo {
    /// A scratch repository: the shipped registry and Dockerfiles, copied.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        std::fs::create_dir_all(root.join("config")).unwrap();
        std::fs::copy(source.join("config/languages.json"), root.join("config/languages.json")).unwrap();
        std::fs::create_dir_all(root.join("dockerfiles")).unwrap();
        std::fs::copy(source.join("dockerfiles/runner.sh"), root.join("dockerfiles/runner.sh")).unwrap();
        std::fs::create_dir_all(root.join("dockerfiles/base")).unwrap();
        for file in [optimus_common::image::BASE_DOCKERFILE, optimus_common::image::SEAL_DOCKERFILE] {
            std::fs::copy(source.join(file), root.join(file)).unwrap();
        }
        // The static launcher that prepare.sh builds, as an image build needs it.
        let launcher = optimus_common::image::LAUNCHER_PATH;
        std::fs::create_dir_all(root.join(launcher).parent().unwrap()).unwrap();
        std::fs::copy(source.join(launcher), root.join(launcher))
            .expect("the launcher is built by scripts/build-launcher.sh (scripts/prepare.sh runs it)");
        Repo { _dir: dir, root }
    }

    fn config(&self) -> PathBuf {
        self.root.join("config/languages.json")
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_optimus-cli"))
            .arg("--config")
            .arg(self.config())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn add_list_remove() {
    let repo = Repo::new();
    let out = repo.cli(&[
        "add-lang",
        "--name",
        "ruby",
        "--ext",
        "rb",
        "--version",
        "3.1",
        "--memory",
        "128",
        "--cpu",
        "0.5",
        "--run-cmd",
        "ruby main.rb",
        "--alias",
        "rb",
        "--judge0-id",
        "72",
        "--judge0-name",
        "Ruby ({version})",
        "--skip-docker",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    let registry = optimus_common::LanguageRegistry::load(repo.config()).unwrap();
    let ruby = registry.get("ruby").unwrap();
    assert_eq!((ruby.memory_limit_mb, ruby.cpu_limit, ruby.source_file.as_str()), (128, 0.5, "main.rb"));
    assert_eq!(ruby.run_command.as_deref(), Some("ruby main.rb"));
    assert!(!ruby.compiled);
    assert_eq!((ruby.aliases.clone(), ruby.judge0_ids.clone()), (vec!["rb".to_string()], vec![72]));
    assert_eq!(ruby.judge0_display_name(), "Ruby (3.1.0)");
    assert_eq!(registry.find_judge0(72).unwrap().name, "ruby");
    let dockerfile = std::fs::read_to_string(repo.root.join("dockerfiles/ruby/Dockerfile")).unwrap();
    assert!(
        dockerfile.contains(&format!("FROM {}", optimus_common::image::BASE_IMAGE))
            && dockerfile.contains("install -y --no-install-recommends ruby")
            && !dockerfile.contains("useradd")
    );

    let out = repo.cli(&["list-langs"]);
    let table = stdout(&out);
    assert!(out.status.success());
    let rows: Vec<&str> = table.lines().collect();
    assert!(rows[0].starts_with("NAME"), "{table}");
    assert_eq!(rows.len(), 10, "{table}");
    assert!(
        rows[9].starts_with("ruby")
            && rows[9].contains("128 MB")
            && rows[9].contains(" rb ")
            && rows[9].ends_with(" 72"),
        "{table}"
    );

    let out = repo.cli(&["remove-lang", "--name", "ruby", "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let registry = optimus_common::LanguageRegistry::load(repo.config()).unwrap();
    assert!(registry.find("ruby").is_none());
    assert_eq!(registry.names(), "python, java, rust, c, cpp, go, javascript, bash");
}

#[test]
fn a_duplicate_is_refused_and_the_registry_left_alone() {
    let repo = Repo::new();
    let before = std::fs::read_to_string(repo.config()).unwrap();
    let out = repo.cli(&["add-lang", "--name", "python", "--ext", "py", "--version", "3", "--skip-docker"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("'python' already exists") && err.lines().count() == 1, "{err}");
    assert_eq!(std::fs::read_to_string(repo.config()).unwrap(), before);
}

#[test]
fn remove_asks_first_and_refuses_without_yes() {
    let repo = Repo::new();
    let out = repo.cli(&["remove-lang", "--name", "java"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not removed"), "{}", stderr(&out));
    assert!(optimus_common::LanguageRegistry::load(repo.config()).unwrap().find("java").is_some());
}

#[test]
fn errors_are_one_line_and_exit_1() {
    let repo = Repo::new();
    for args in [
        vec!["remove-lang", "--name", "cobol", "--yes"],
        vec!["build-image", "--name", "cobol"],
        vec!["add-lang", "--name", "Bad Name", "--ext", "x", "--version", "1", "--skip-docker"],
    ] {
        let out = repo.cli(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{err}");
    }
    std::fs::write(repo.config(), "{ not json").unwrap();
    let out = repo.cli(&["list-langs"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("languages.json"), "{}", stderr(&out));
}

/// A language the runner has no recipe for, added from flags alone, judges jobs:
/// the image is built, and its run command comes from the registry.
#[tokio::test(flavor = "multi_thread")]
async fn a_language_added_from_flags_runs_jobs() {
    let repo = Repo::new();
    let out = repo.cli(&[
        "add-lang",
        "--name",
        "lua",
        "--ext",
        "lua",
        "--version",
        "5.4",
        "--packages",
        "lua5.4",
        "--run-cmd",
        "lua5.4 main.lua",
    ]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let registry = optimus_common::LanguageRegistry::load(repo.config()).unwrap();
    let lua = registry.get("lua").unwrap().clone();
    assert!(lua.version.starts_with("5.4"), "version read from the image: {}", lua.version);

    let redis = optimus_common::testkit::RedisServer::start();
    let settings = redis.settings();
    let store = optimus_common::Store::connect(&settings).await.unwrap();
    let config = optimus_worker::WorkerConfig {
        language: lua.clone(),
        registry: std::sync::Arc::new(registry.clone()),
        concurrency: 1,
        settings,
        drain_timeout: std::time::Duration::from_secs(5),
        pool: optimus_worker::PoolConfig::for_language(&lua, 1),
        host_slots: optimus_worker::HostSlots::open(
            std::env::temp_dir().join("optimus-test-slots"),
            optimus_worker::HostSlots::default_budget(),
        )
        .unwrap(),
        docker_socket: None,
        compile_cache: None,
    };
    let worker = optimus_worker::Worker::start(config).await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(worker.run(shutdown.clone()));

    let tests: Vec<serde_json::Value> = (1..=3)
        .map(|i| serde_json::json!({"id": i, "input": format!("{i} {}\n", i * 10), "expected_output": format!("{}\n", i * 11), "weight": 1}))
        .collect();
    // Straight into the store, as the API would after validation; the judging options take their defaults.
    let spec: optimus_common::JobSpec = serde_json::from_value(serde_json::json!({
        "language": "lua",
        "source_code": "local a, b = io.read('n', 'n')\nprint(math.tointeger(a + b))\n",
        "test_cases": tests,
        "timeout_ms": 2000,
        "memory_limit_mb": 64,
    }))
    .unwrap();
    let id = uuid::Uuid::new_v4();
    let queued = store.enqueue(id, &spec, &lua, &optimus_common::store::Caller::Anonymous).await.unwrap();
    assert_eq!(queued, optimus_common::store::EnqueueOutcome::Queued);
    let start = std::time::Instant::now();
    let job = loop {
        let job = store.get(id, &optimus_common::store::Caller::Anonymous).await.unwrap().unwrap();
        if job.status.is_terminal() {
            break job;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(60), "job still {:?}", job.status);
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    };
    let result = job.result.expect("a completed job has a result");
    assert_eq!(result.overall_status, Some(optimus_common::Verdict::Accepted), "{result:?}");
    assert_eq!(result.passed_tests, 3);
    shutdown.cancel();
    running.await.unwrap().unwrap();
}

/// The shipped deploy/k8s manifests are what `deploy k8s` writes from the shipped
/// registry; a language added makes them stale until they are written again.
#[test]
fn the_k8s_manifests_follow_the_registry() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let check = Command::new(env!("CARGO_BIN_EXE_optimus-cli"))
        .arg("--config")
        .arg(source.join("config/languages.json"))
        .args(["deploy", "k8s", "--check", "--out"])
        .arg(source.join("deploy/k8s"))
        .output()
        .unwrap();
    assert!(check.status.success(), "the shipped manifests are stale: {}", stderr(&check));

    let repo = Repo::new();
    let out = repo.root.join("deploy/k8s");
    std::fs::create_dir_all(&out).unwrap();
    for name in ["workers.yaml", "keda.yaml"] {
        std::fs::copy(source.join("deploy/k8s").join(name), out.join(name)).unwrap();
    }
    let out = out.display().to_string();
    let added = repo.cli(&["add-lang", "--name", "ruby", "--ext", "rb", "--version", "3.1", "--skip-docker"]);
    assert!(added.status.success(), "{}", stderr(&added));
    let stale = repo.cli(&["deploy", "k8s", "--check", "--out", &out]);
    assert_eq!(stale.status.code(), Some(1));
    assert!(stderr(&stale).contains("run `optimus-cli deploy k8s`"), "{}", stderr(&stale));
    let written = repo.cli(&["deploy", "k8s", "--out", &out]);
    assert!(written.status.success(), "{}", stderr(&written));
    let keda = std::fs::read_to_string(Path::new(&out).join("keda.yaml")).unwrap();
    assert!(keda.contains("listName: optimus:queue:ruby"), "{keda}");
    assert!(repo.cli(&["deploy", "k8s", "--check", "--out", &out]).status.success());
}

/// The sandbox's layout is written once, in dockerfiles/base/: every shipped
/// language image is FROM the base image, and none lays out the sandbox again
/// (its user and uid, its mount points, the runner, the launcher).
#[test]
fn every_language_image_is_the_base_plus_its_packages() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let registry = optimus_common::LanguageRegistry::load(root.join("config/languages.json")).unwrap();
    let from_base = format!("FROM {}", optimus_common::image::BASE_IMAGE);
    for lang in registry.languages() {
        let text = std::fs::read_to_string(root.join(&lang.dockerfile)).unwrap();
        let text: String = text.lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect();
        let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
        assert_eq!(froms, [from_base.as_str()], "{}", lang.dockerfile);
        let uid = optimus_protocol::SANDBOX_UID.to_string();
        for layout in ["useradd", uid.as_str(), "/judge", "runner.sh", "optimus-launcher", "WORKDIR"] {
            assert!(!text.contains(layout), "{} lays out the sandbox again ({layout})", lang.dockerfile);
        }
    }
    let base = std::fs::read_to_string(root.join(optimus_common::image::BASE_DOCKERFILE)).unwrap();
    assert!(base.contains("install -d -m 0700 /judge") && base.contains("useradd --uid \"$SANDBOX_UID\""));
}
