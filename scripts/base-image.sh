#!/usr/bin/env bash
# Makes sure debian:bookworm-slim, the image the base sandbox image (dockerfiles/base/) and the service image start FROM, exists locally.
#
# Optimus never needs a registry: when `debian:bookworm-slim` is not already in the
# engine and cannot be pulled (an air-gapped host, or a machine with no registry at
# all), the same Debian release is bootstrapped from Debian's package mirror with
# debootstrap and imported under that name. Set DEBIAN_MIRROR to use a local mirror.
#
# Usage: scripts/base-image.sh [image-name]   (default debian:bookworm-slim)
set -euo pipefail

image="${1:-debian:bookworm-slim}"
suite="${DEBIAN_SUITE:-bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image: present"
  exit 0
fi

if [ "${OPTIMUS_TRY_PULL:-1}" = 1 ] && timeout 60 docker pull "$image" >/dev/null 2>&1; then
  echo "base image $image: pulled"
  exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  echo "base image $image: installing debootstrap" >&2
  apt-get install -y -qq debootstrap >/dev/null
fi

root="$(mktemp -d /tmp/optimus-rootfs.XXXXXX)"
trap 'rm -rf "$root"' EXIT
echo "base image $image: bootstrapping $suite from $mirror (a few minutes)"
debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$root.log" 2>&1 || {
  echo "debootstrap failed; last lines of $root.log:" >&2
  tail -n 20 "$root.log" >&2
  exit 1
}
rm -f "$root.log"
# Keep it as slim as the official image: no caches, no docs.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
       "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*
# The official image points apt at the same mirror through deb822 sources.
printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
  "$mirror" "$suite" "$suite" >"$root/etc/apt/sources.list.d/debian.sources"
rm -f "$root/etc/apt/sources.list"
tar -C "$root" -c . | docker import -c 'CMD ["bash"]' - "$image" >/dev/null
echo "base image $image: imported from debootstrap"
