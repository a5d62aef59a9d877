#!/usr/bin/env bash
# Install the Debian packages portcullis builds and tests with, if missing (idempotent).
set -euo pipefail
need=()
pkgs=(cmake curl docker-registry openssl skopeo)  # the list .ci/run installs
# --bench: also nginx, which only the end-to-end benchmark uses (benches/README.md; it is run
# from there, never as a service)
[ "${1:-}" = "--bench" ] && pkgs+=(nginx)
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]})); then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
