//! Containers: removed after every job, swept after a killed worker; a worker
//! without its image refuses to start.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{CreateContainerOptionsBuilder, ListContainersOptionsBuilder};
use bollard::Docker;
use optimus_common::testkit::RedisServer;
use optimus_common::LanguageRegistry;
use optimus_worker::{Worker, WorkerConfig};
use serde_json::json;

use crate::helpers::{expect, job, stack, stack_on};

async fn docker() -> Docker {
    Docker::connect_with_defaults().unwrap().negotiate_version().await.unwrap()
}

async fn containers_with(label: &str) -> Vec<String> {
    let filters = HashMap::from([("label", vec![label.to_string()])]);
    let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    docker().await.list_containers(Some(options)).await.unwrap().into_iter().filter_map(|c| c.id).collect()
}

pub async fn containers_of(job_id: &str) -> Vec<String> {
    containers_with(&format!("optimus.job={job_id}")).await
}

async fn eventually_none(label: &str) {
    let start = Instant::now();
    while !containers_with(label).await.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "containers labelled {label} remain");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_job_leaves_no_container() {
    let mut stack = stack(&["python"]).await;
    let ok = stack.run(&job("python", "print(1)", json!([{ "input": "" }]))).await;
    expect(&ok, "accepted");
    eventually_none(&format!("optimus.job={}", ok["job_id"].as_str().unwrap())).await;
    let crashed = stack.run(&job("python", "import os\nos.kill(os.getpid(), 11)", json!([{ "input": "" }]))).await;
    assert_eq!(expect(&crashed, "runtime_error")["test_results"][0]["signal"], 11);
    eventually_none(&format!("optimus.job={}", crashed["job_id"].as_str().unwrap())).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_of_a_killed_worker_are_swept_at_start() {
    let docker = docker().await;
    let redis = RedisServer::start();
    let deployment = optimus_common::fingerprint(&[redis.url().as_bytes()]);
    // An orphan of this deployment, and a container of another deployment (another
    // Redis) whose worker this deployment cannot see: only the first may go.
    for (deployment, worker) in
        [(deployment.as_str(), "python-killed-long-ago"), ("elsewhere", "python-of-another-deployment")]
    {
        let labels = HashMap::from([
            ("optimus.deployment".to_string(), deployment.to_string()),
            ("optimus.sandbox".to_string(), "1".to_string()),
            ("optimus.language".to_string(), "python".to_string()),
            ("optimus.worker".to_string(), worker.to_string()),
        ]);
        let body = ContainerCreateBody {
            image: Some("optimus-python:latest".into()),
            cmd: Some(vec!["sleep".into(), "600".into()]),
            labels: Some(labels),
            ..Default::default()
        };
        let name = format!("optimus-orphan-{}", uuid::Uuid::new_v4());
        docker.create_container(Some(CreateContainerOptionsBuilder::new().name(&name).build()), body).await.unwrap();
    }
    assert_eq!(containers_with("optimus.worker=python-killed-long-ago").await.len(), 1);

    let mut stack = stack_on(redis, &["python"]).await;
    // The sweep runs before the worker takes its first job.
    expect(&stack.run(&job("python", "print(1)", json!([{ "input": "" }]))).await, "accepted");
    assert!(containers_with("optimus.worker=python-killed-long-ago").await.is_empty());
    let other = containers_with("optimus.worker=python-of-another-deployment").await;
    assert_eq!(other.len(), 1, "another deployment's container must be left alone");
    docker
        .remove_container(
            &other[0],
            Some(bollard::query_parameters::RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await
        .unwrap();
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_without_its_image_refuses_to_start() {
    let redis = RedisServer::start();
    let settings = redis.settings();
    let registry = LanguageRegistry::load(&settings.languages_file).unwrap();
    let mut language = registry.get("python").unwrap().clone();
    language.image = "optimus-no-such-image:latest".into();
    let config = WorkerConfig {
        language,
        registry: Arc::new(registry),
        concurrency: 1,
        settings,
        drain_timeout: Duration::from_secs(1),
    };
    let err = Worker::start(config).await.err().expect("must refuse").to_string();
    assert!(
        err.contains("optimus-no-such-image:latest") && err.contains("optimus-cli build-image --name python"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_drains_the_running_job() {
    let mut stack = stack(&["python"]).await;
    let id = stack.submit(&job("python", "import time\ntime.sleep(1)\nprint('done')", json!([{ "input": "" }]))).await;
    stack.wait_for(&id, |s| s == "running").await;
    let store = stack.store.clone();
    stack.stop().await;
    let finished = store.get(id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(finished.status, optimus_common::JobStatus::Completed);
    assert_eq!(finished.result.unwrap().overall_status, Some(optimus_common::Verdict::Accepted));
}
