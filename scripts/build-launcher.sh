#!/usr/bin/env bash
# Builds optimus-launcher as a static executable and puts it where the language
# images' build context expects it: dockerfiles/launcher/optimus-launcher.
# Static (glibc's own static libc, no NSS use): it runs in any image and on any host.
set -euo pipefail
cd "$(dirname "$0")/.."
target="$(rustc -vV | sed -n 's/^host: //p')"
RUSTFLAGS="-C target-feature=+crt-static -C strip=symbols" \
  cargo build -q --release -p optimus-launcher --target "$target" --target-dir target/launcher
mkdir -p dockerfiles/launcher
install -m 0755 "target/launcher/$target/release/optimus-launcher" dockerfiles/launcher/optimus-launcher.new
mv dockerfiles/launcher/optimus-launcher.new dockerfiles/launcher/optimus-launcher
echo "optimus-launcher: dockerfiles/launcher/optimus-launcher ($(stat -c %s dockerfiles/launcher/optimus-launcher) bytes, static)"
