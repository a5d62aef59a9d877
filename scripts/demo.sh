#!/usr/bin/env bash
# Start the embedded default: upstream docker-registry + embedded OpenShift API + gateway.
# Everything listens on loopback; state lives in .run/. Ctrl-C stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --quiet
mkdir -p .run/registry
REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="$PWD/.run/registry" \
  docker-registry serve conf/registry.yml > .run/registry.log 2>&1 &
registry=$!
trap 'kill $registry 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -fsS http://127.0.0.1:5001/v2/ >/dev/null 2>&1 && break
  kill -0 $registry 2>/dev/null || { cat .run/registry.log; exit 1; }
  sleep 0.1
done
scripts/make-demo-image.sh .run/demo-image >/dev/null
cat <<MSG

portcullis: gateway on http://127.0.0.1:5000, upstream registry on 127.0.0.1:5001 (log: .run/registry.log)
Push and pull with the demo token (see conf/policy.toml for the others):

  skopeo copy --insecure-policy --dest-tls-verify=false --dest-creds developer:demo-developer-token \\
      oci:.run/demo-image:latest docker://127.0.0.1:5000/demo/hello:latest
  skopeo copy --insecure-policy --src-tls-verify=false --src-creds developer:demo-developer-token \\
      docker://127.0.0.1:5000/demo/hello:latest oci:/tmp/hello:latest

MSG
target/release/portcullis serve --config conf/portcullis.toml
