#!/usr/bin/env bash
# Install the Debian packages portcullis builds and tests with, if missing (idempotent).
set -euo pipefail
need=()
for p in cmake curl docker-registry skopeo; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]})); then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
