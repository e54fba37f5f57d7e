//! What a language image must carry for a worker to use it: the runner and the
//! report format the worker was built for. `optimus-cli build-image` stamps both
//! on the image as labels; the worker checks them before it serves a job.
//!
//! How every image is made is written once, in `dockerfiles/base/`: the base
//! sandbox image ([`BASE_IMAGE`], from [`BASE_DOCKERFILE`]: the sandbox user, the
//! mount points and their modes) that each language's Dockerfile starts `FROM`,
//! and [`SEAL_DOCKERFILE`] (the runner and the launcher), which build-image
//! appends to each.

/// Label: fingerprint of the `runner.sh` the image holds.
pub const LABEL_RUNNER: &str = "optimus.runner";
/// Label: the report format version its launcher writes.
pub const LABEL_PROTOCOL: &str = "optimus.protocol";

/// The image every language image is built `FROM`.
pub const BASE_IMAGE: &str = "optimus-base:latest";
/// What [`BASE_IMAGE`] is built from, relative to the repository root.
pub const BASE_DOCKERFILE: &str = "dockerfiles/base/Dockerfile";
/// The lines every language image ends with, relative to the repository root.
pub const SEAL_DOCKERFILE: &str = "dockerfiles/base/seal.Dockerfile";

/// The runner this build of Optimus was made with.
pub const RUNNER_SH: &[u8] = include_bytes!("../../../dockerfiles/runner.sh");

/// Where `scripts/build-launcher.sh` puts the static launcher, relative to the
/// repository root; the image build copies it from there.
pub const LAUNCHER_PATH: &str = "dockerfiles/launcher/optimus-launcher";

/// The engine storage driver whose image files are served by a user-space
/// daemon: every open, stat and (for any user but the files' owner, root) ACL
/// check of an image file is a round trip to it. On such an engine a sandbox
/// container's `/usr` is mounted, read-only, from a volume holding a copy of
/// the image's own `/usr` ([`usr_volume`]), which the kernel serves.
pub const FUSE_STORAGE: &str = "fuse-overlayfs";
/// Label on a `/usr` volume: the image (by name) it was filled from.
pub const LABEL_USR_OF: &str = "optimus.usr-of";

/// The name of the `/usr` volume of the image with this id (`sha256:<hex>`):
/// a rebuilt image gets a new one.
pub fn usr_volume(image_id: &str) -> String {
    let hex = image_id.strip_prefix("sha256:").unwrap_or(image_id);
    format!("optimus-usr-{}", &hex[..hex.len().min(16)])
}

/// The value of [`LABEL_RUNNER`] for a runner's bytes.
pub fn runner_fingerprint(runner: &[u8]) -> String {
    crate::fingerprint(&[runner])
}

/// Why an image with these labels cannot serve this worker, if it cannot.
pub fn mismatch(runner: Option<&str>, protocol: Option<&str>) -> Option<String> {
    let expected = runner_fingerprint(RUNNER_SH);
    let version = optimus_protocol::VERSION.to_string();
    if runner != Some(expected.as_str()) {
        return Some(format!(
            "it holds another runner.sh (label {LABEL_RUNNER}={}, expected {expected})",
            runner.unwrap_or("none")
        ));
    }
    if protocol != Some(version.as_str()) {
        return Some(format!(
            "its launcher speaks report format {} and this worker reads {version}",
            protocol.unwrap_or("none")
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_runner_and_protocol_match() {
        let runner = runner_fingerprint(RUNNER_SH);
        let version = optimus_protocol::VERSION.to_string();
        assert_eq!(mismatch(Some(&runner), Some(&version)), None);
        assert!(mismatch(Some("0000"), Some(&version)).unwrap().contains("another runner.sh"));
        assert!(mismatch(Some(&runner), Some("1")).unwrap().contains("report format 1"));
        assert!(mismatch(None, None).is_some());
    }
}
