//! The container lifecycle: create a hardened container of a language's image,
//! with a sandbox uid of its own, start it, remove it (a guard, so it happens on
//! every path out), and sweep the ones a killed worker left. The only code that
//! creates or removes containers.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, ContainerUpdateBody, HostConfig, HostConfigLogConfig, Mount, MountTypeEnum,
    MountVolumeOptions, ResourcesUlimits,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveContainerOptions, RemoveContainerOptionsBuilder, RemoveVolumeOptions, StartContainerOptions,
};
use bollard::Docker;
use optimus_common::{image, LanguageConfig};
use optimus_protocol::{SANDBOX_UID, SANDBOX_UID_ENV, SANDBOX_USERS};
use tokio::time::Instant;

use super::session::Channel;
use super::{SandboxError, STALL_GRACE};

/// The container's init: the launcher, which reaps orphans and ignores stop signals.
pub(super) const INIT: &str = "/opt/optimus/launcher";
/// Labels that mark a container as Optimus's, for the sweep.
const LABEL_SANDBOX: &str = "optimus.sandbox";
const LABEL_LANGUAGE: &str = "optimus.language";
const LABEL_WORKER: &str = "optimus.worker";
/// Which deployment (which Redis) a container belongs to: only that deployment's
/// workers know whether its owner is alive.
const LABEL_DEPLOYMENT: &str = "optimus.deployment";
/// The sandbox uid the container's programs run as.
pub(super) const LABEL_UID: &str = "optimus.uid";

/// How many times a create looks for a uid no other container holds before it
/// gives up (another worker took the same one at the same moment each time).
const UID_ATTEMPTS: usize = 8;

/// The runner and launcher run as the container's root with these capabilities
/// only: to become the sandbox user, to kill what it leaves, and to run above the
/// program's priority (so a tree of spinning processes cannot starve the launcher
/// that must kill it). Everything the program runs drops them with its uid;
/// `no-new-privileges` keeps them dropped.
const CAPABILITIES: [&str; 4] = ["SETUID", "SETGID", "KILL", "SYS_NICE"];

pub(super) fn mb(n: i64) -> i64 {
    n * 1024 * 1024
}

/// How to make one container.
pub(super) struct Spec<'a> {
    pub language: &'a LanguageConfig,
    pub name: String,
    pub labels: Vec<(&'static str, String)>,
    pub worker: &'a str,
    pub deployment: &'a str,
    /// Memory (and memory+swap) limit, bytes.
    pub memory: i64,
    /// The volume whose copy of the image's `/usr` is mounted, read-only, as
    /// `/usr` (see `image::FUSE_STORAGE`).
    pub usr_volume: Option<&'a str>,
}

/// A started container that is force-removed when dropped, whatever happened.
pub(super) struct Lease {
    docker: Docker,
    pub id: String,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let docker = self.docker.clone();
        let id = std::mem::take(&mut self.id);
        if id.is_empty() {
            return;
        }
        // Removal must not wait for the caller (a cancel answers at once), and
        // force-removal kills whatever still runs inside. An engine that does not
        // answer is tried again for a minute.
        tokio::spawn(async move {
            for attempt in 0..60 {
                match docker.remove_container(&id, Some(force_remove())).await {
                    Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => return,
                    Err(bollard::errors::Error::DockerResponseServerError { .. }) if attempt > 0 => return,
                    Err(e) if attempt == 59 => {
                        tracing::warn!(container = %id, error = %e, "could not remove sandbox container");
                    }
                    Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            }
        });
    }
}

pub(super) fn force_remove() -> RemoveContainerOptions {
    RemoveContainerOptionsBuilder::new().force(true).v(true).build()
}

impl Lease {
    /// Removes the container now, waiting for the engine.
    pub async fn remove(mut self) {
        let id = std::mem::take(&mut self.id);
        if let Err(e) = self.docker.remove_container(&id, Some(force_remove())).await {
            tracing::warn!(container = %id, error = %e, "could not remove sandbox container");
        }
    }

    /// Sets the memory limit (and memory+swap) of the running container.
    pub async fn set_memory(&self, bytes: i64) -> Result<(), SandboxError> {
        let limit = ContainerUpdateBody { memory: Some(bytes), memory_swap: Some(bytes), ..Default::default() };
        self.docker.update_container(&self.id, limit).await?;
        Ok(())
    }
}

/// The sandbox uids held by the sandbox containers on this engine (of every
/// deployment and language: they share the kernel), with the ids of their holders.
/// A container from before uids were per container holds the first one.
async fn uids_in_use(docker: &Docker, only: Option<u32>) -> Result<Vec<(u32, String)>, SandboxError> {
    let mut labels = vec![format!("{LABEL_SANDBOX}=1")];
    labels.extend(only.map(|uid| format!("{LABEL_UID}={uid}")));
    let filters = HashMap::from([("label", labels)]);
    let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    let held = docker.list_containers(Some(options)).await?.into_iter().filter_map(|c| {
        let labels = c.labels.unwrap_or_default();
        if labels.get(LABEL_SANDBOX).map(String::as_str) != Some("1") {
            return None;
        }
        let uid = labels.get(LABEL_UID).and_then(|u| optimus_protocol::sandbox_uid(u)).unwrap_or(SANDBOX_UID);
        Some((uid, c.id.unwrap_or_default()))
    });
    Ok(held.filter(|(uid, _)| only.is_none_or(|o| o == *uid)).collect())
}

/// A sandbox uid that none of `taken` is, picked at random (so that two workers
/// choosing at once rarely collide); `None` when every one is taken.
fn pick_uid(taken: &[(u32, String)]) -> Option<u32> {
    let taken: std::collections::HashSet<u32> = taken.iter().map(|(uid, _)| *uid).collect();
    let start = (uuid::Uuid::new_v4().as_u128() % u128::from(SANDBOX_USERS)) as u32;
    (0..SANDBOX_USERS).map(|i| SANDBOX_UID + (start + i) % SANDBOX_USERS).find(|uid| !taken.contains(uid))
}

/// Creates and starts a container whose programs run as a sandbox uid that no
/// other container on the engine holds, attached to its init's stream; it is
/// removed when the returned lease drops.
///
/// The uid is claimed by the container's label: a worker lists the uids in use,
/// creates its container with a free one, then lists that uid's holders again.
/// Of two containers created with the same uid at once, the one whose worker
/// listed last sees the other, so at least one of them gives its uid up and tries
/// another; a uid is never held by two started containers.
pub(super) async fn create(docker: &Docker, spec: Spec<'_>) -> Result<(Lease, Channel), SandboxError> {
    for _ in 0..UID_ATTEMPTS {
        let Some(uid) = pick_uid(&uids_in_use(docker, None).await?) else {
            return Err(SandboxError::NoUid(SANDBOX_USERS));
        };
        let lease = create_as(docker, &spec, uid).await?;
        if uids_in_use(docker, Some(uid)).await?.iter().all(|(_, id)| *id == lease.id) {
            let channel = Channel::attach(docker, &lease.id).await?;
            docker.start_container(&lease.id, None::<StartContainerOptions>).await?;
            return Ok((lease, channel));
        }
        lease.remove().await;
    }
    Err(SandboxError::NoUid(SANDBOX_USERS))
}

/// Creates (does not start) a container whose programs run as `uid`.
async fn create_as(docker: &Docker, spec: &Spec<'_>, uid: u32) -> Result<Lease, SandboxError> {
    let lang = spec.language;
    let mut labels = HashMap::from([
        (LABEL_SANDBOX.to_string(), "1".to_string()),
        (LABEL_LANGUAGE.to_string(), lang.name.clone()),
        (LABEL_WORKER.to_string(), spec.worker.to_string()),
        (LABEL_DEPLOYMENT.to_string(), spec.deployment.to_string()),
        (LABEL_UID.to_string(), uid.to_string()),
    ]);
    labels.extend(spec.labels.iter().map(|(k, v)| (k.to_string(), v.clone())));
    // What is written to a tmpfs is charged to the memory limit anyway; the sizes
    // only keep one place from taking all of it, and the inode caps bound what a
    // wipe has to remove. /judge holds a job's inputs: the API's caps allow 100 MiB.
    let tmpfs = HashMap::from([
        ("/judge".to_string(), "rw,noexec,nosuid,nodev,size=256m,mode=0700".to_string()),
        ("/box".to_string(), "rw,exec,nosuid,nodev,size=256m,mode=0755".to_string()),
        ("/work".to_string(), format!("rw,exec,nosuid,nodev,size=256m,nr_inodes=65536,uid={uid},gid={uid},mode=0755")),
        ("/tmp".to_string(), "rw,exec,nosuid,nodev,size=64m,nr_inodes=65536,mode=1777".to_string()),
    ]);
    let ulimit = |name: &str, n: i64| ResourcesUlimits { name: Some(name.into()), soft: Some(n), hard: Some(n) };
    // System V IPC outlives processes: segments go with their last user, and there
    // are no semaphore sets (SEMMNI, the last of kernel.sem, is 0) and no message
    // queues, so no test can leave data for a later one there; the launcher's wipe
    // checks /proc/sysvipc as well.
    let sysctls = HashMap::from([
        ("kernel.shm_rmid_forced".to_string(), "1".to_string()),
        ("kernel.msgmni".to_string(), "0".to_string()),
        ("kernel.sem".to_string(), "0 0 0 0".to_string()),
    ]);
    let host = HostConfig {
        memory: Some(spec.memory),
        memory_swap: Some(spec.memory),
        memory_swappiness: Some(0),
        nano_cpus: Some((lang.cpu_limit * 1e9) as i64),
        pids_limit: Some(lang.pids_limit),
        readonly_rootfs: Some(true),
        tmpfs: Some(tmpfs),
        cap_drop: Some(vec!["ALL".into()]),
        cap_add: Some(CAPABILITIES.iter().map(|c| c.to_string()).collect()),
        security_opt: Some(vec!["no-new-privileges".into()]),
        network_mode: Some("none".into()),
        ipc_mode: Some("private".into()),
        sysctls: Some(sysctls),
        log_config: Some(HostConfigLogConfig { typ: Some("none".into()), config: None }),
        ulimits: Some(vec![ulimit("nofile", 1024), ulimit("core", 0)]),
        mounts: spec.usr_volume.map(|volume| vec![usr_mount(volume, "/usr", true)]),
        ..Default::default()
    };
    let body = ContainerCreateBody {
        image: Some(lang.image.clone()),
        // Init serves the worker's sessions on its stdin, which stays open
        // between attaches; no TTY, so every byte passes as sent.
        cmd: Some(vec![INIT.into(), "init".into()]),
        open_stdin: Some(true),
        stdin_once: Some(false),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        user: Some("0:0".into()),
        working_dir: Some("/".into()),
        env: Some(vec!["LANG=C.UTF-8".into(), format!("{SANDBOX_UID_ENV}={uid}")]),
        labels: Some(labels),
        network_disabled: Some(true),
        host_config: Some(host),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::new().name(&spec.name).build();
    let created = match docker.create_container(Some(options.clone()), body.clone()).await {
        // A container of this name left by an earlier attempt (perhaps still
        // being removed): make sure it is gone, then create ours.
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, .. }) => {
            remove_and_wait(docker, &spec.name).await?;
            docker.create_container(Some(options), body).await?
        }
        other => other?,
    };
    Ok(Lease { docker: docker.clone(), id: created.id })
}

/// `volume` at `target`; the engine never copies anything into it by itself.
fn usr_mount(volume: &str, target: &str, read_only: bool) -> Mount {
    Mount {
        target: Some(target.into()),
        source: Some(volume.into()),
        typ: Some(MountTypeEnum::VOLUME),
        read_only: Some(read_only),
        volume_options: Some(MountVolumeOptions { no_copy: Some(true), ..Default::default() }),
        ..Default::default()
    }
}

/// How a `/usr` volume is filled, by a container of the image with the volume
/// at /fill: by one filler at a time (`mkdir` of the lock is atomic), which
/// first clears what a filler that died left, copies, and only then marks the
/// volume whole; another filler meanwhile waits for the mark. A lock older than
/// ten minutes is a dead filler's, and is broken. Containers mount the volume
/// only once their worker's filler ended 0, with the mark there.
const FILL_USR: &str = r#"done=/fill/.optimus-usr-complete
for i in $(seq 900); do
  [ -e "$done" ] && exit 0
  if mkdir /fill/.optimus-usr-lock 2>/dev/null; then
    find /fill -mindepth 1 -maxdepth 1 ! -name .optimus-usr-lock -exec rm -rf {} +
    cp -a /usr/. /fill/ && touch "$done"
    ok=$?
    rmdir /fill/.optimus-usr-lock
    exit $ok
  fi
  find /fill/.optimus-usr-lock -maxdepth 0 -mmin +10 -exec rmdir {} \; 2>/dev/null
  sleep 1
done
exit 1"#;

/// How long a worker waits for its `/usr` volume at start (a filler waits up
/// to 15 minutes for another): past it, it goes on without the volume.
const FILL_FOR: Duration = Duration::from_secs(1000);

/// Makes sure `volume` holds a whole copy of `image`'s `/usr` (a container of
/// the image copies it, once), and removes the `/usr` volumes of earlier builds
/// of the image that no container mounts any more.
///
/// A second, empty volume (`<volume>-whole`) says that the fill is done, so
/// that a worker starting beside a filled volume needs no container to know it.
pub(super) async fn fill_usr_volume(docker: &Docker, image: &str, volume: &str) -> Result<(), SandboxError> {
    let whole = format!("{volume}-whole");
    let exists = |name: String| async move { docker.inspect_volume(&name).await.is_ok() };
    if !(exists(volume.to_string()).await && exists(whole.clone()).await) {
        fill(docker, image, volume).await?;
        docker.create_volume(usr_volume_options(&whole, image)).await?;
    }
    remove_old_usr_volumes(docker, image, &[volume, &whole]).await;
    Ok(())
}

/// Fills `volume` by a container of `image` ([`FILL_USR`]).
async fn fill(docker: &Docker, image: &str, volume: &str) -> Result<(), SandboxError> {
    docker.create_volume(usr_volume_options(volume, image)).await?;
    let body = ContainerCreateBody {
        image: Some(image.into()),
        cmd: Some(vec!["/bin/sh".into(), "-c".into(), FILL_USR.into()]),
        user: Some("0:0".into()),
        network_disabled: Some(true),
        labels: Some(HashMap::from([(LABEL_SANDBOX.to_string(), "0".to_string())])),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            mounts: Some(vec![usr_mount(volume, "/fill", false)]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = docker.create_container(None::<bollard::query_parameters::CreateContainerOptions>, body).await?.id;
    let filled = async {
        docker.start_container(&id, None::<StartContainerOptions>).await?;
        let mut wait = docker.wait_container(&id, None::<bollard::query_parameters::WaitContainerOptions>);
        use futures_util::StreamExt;
        match wait.next().await {
            Some(Ok(w)) if w.status_code == 0 => Ok(()),
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. }))
            | Some(Ok(bollard::models::ContainerWaitResponse { status_code: code, .. })) => {
                Err(SandboxError::Runner(format!("filling the /usr volume {volume} ended with {code}")))
            }
            Some(Err(e)) => Err(e.into()),
            None => Err(SandboxError::Runner(format!("filling the /usr volume {volume}: no exit status"))),
        }
    };
    let result = tokio::time::timeout(FILL_FOR, filled).await;
    let _ = docker.remove_container(&id, Some(force_remove())).await;
    result.map_err(|_| SandboxError::Stalled(FILL_FOR))?
}

fn usr_volume_options(name: &str, image: &str) -> bollard::models::VolumeCreateOptions {
    bollard::models::VolumeCreateOptions {
        name: Some(name.into()),
        labels: Some(HashMap::from([(image::LABEL_USR_OF.to_string(), image.to_string())])),
        ..Default::default()
    }
}

/// Removes the `/usr` volumes (and their marks) of `image` but `keep`'s: those
/// of its earlier builds, once no container mounts them.
async fn remove_old_usr_volumes(docker: &Docker, image: &str, keep: &[&str]) {
    let filters = HashMap::from([("label", vec![format!("{}={image}", image::LABEL_USR_OF)])]);
    if let Ok(listed) = docker.list_volumes(Some(ListVolumesOptionsBuilder::new().filters(&filters).build())).await {
        for old in listed.volumes.unwrap_or_default() {
            if !keep.contains(&old.name.as_str())
                && old.labels.get(image::LABEL_USR_OF).map(String::as_str) == Some(image)
            {
                // In use (409) by a container of the earlier build: it stays for now.
                if docker.remove_volume(&old.name, None::<RemoveVolumeOptions>).await.is_ok() {
                    tracing::info!(volume = %old.name, "removed the /usr volume of an earlier build");
                }
            }
        }
    }
}

/// Force-removes a container and waits until the engine has let it go.
async fn remove_and_wait(docker: &Docker, name: &str) -> Result<(), SandboxError> {
    use bollard::errors::Error::DockerResponseServerError;
    match docker.remove_container(name, Some(force_remove())).await {
        // 404: already gone; 409: a removal is under way, waited for below.
        Ok(()) | Err(DockerResponseServerError { status_code: 404 | 409, .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let start = Instant::now();
    loop {
        match docker.inspect_container(name, None::<InspectContainerOptions>).await {
            Err(DockerResponseServerError { status_code: 404, .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
            Ok(_) if start.elapsed() > STALL_GRACE => return Err(SandboxError::Stalled(STALL_GRACE)),
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Removes the sandbox containers of this deployment and language whose worker
/// `is_alive` denies: those left by a worker that was killed. Returns how many went.
pub(super) async fn sweep(
    docker: &Docker,
    language: &str,
    deployment: &str,
    me: &str,
    is_alive: impl Fn(&str) -> bool,
) -> Result<usize, SandboxError> {
    let filters =
        HashMap::from([("label", vec![format!("{LABEL_SANDBOX}=1"), format!("{LABEL_LANGUAGE}={language}")])]);
    let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    let mut removed = 0;
    for c in docker.list_containers(Some(options)).await? {
        // The engine's label filter is only a first cut (some engines do not
        // AND several labels): check every label here before removing anything.
        let labels = c.labels.unwrap_or_default();
        let label = |key: &str| labels.get(key).map(String::as_str).unwrap_or("");
        if label(LABEL_SANDBOX) != "1" || label(LABEL_LANGUAGE) != language || label(LABEL_DEPLOYMENT) != deployment {
            continue;
        }
        let owner = label(LABEL_WORKER);
        if owner == me || is_alive(owner) {
            continue;
        }
        if let Some(id) = c.id {
            match docker.remove_container(&id, Some(force_remove())).await {
                Ok(()) => removed += 1,
                // Gone, or being removed already (by its lease's own removal).
                Err(bollard::errors::Error::DockerResponseServerError { status_code: 404 | 409, .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picked_uid_is_free_and_in_range() {
        let all: Vec<(u32, String)> = (SANDBOX_UID..SANDBOX_UID + SANDBOX_USERS).map(|u| (u, String::new())).collect();
        assert_eq!(pick_uid(&all), None);
        let last = SANDBOX_UID + SANDBOX_USERS - 1;
        assert_eq!(pick_uid(&all[..all.len() - 1]), Some(last));
        for _ in 0..100 {
            let uid = pick_uid(&all[1..]).unwrap();
            assert_eq!(uid, SANDBOX_UID);
            let uid = pick_uid(&[]).unwrap();
            assert!(optimus_protocol::sandbox_uid(&uid.to_string()).is_some());
        }
    }
}
