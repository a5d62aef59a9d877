#!/usr/bin/env bash
# Write a small two-layer OCI image layout to $1 (tag "latest"), using only coreutils, tar
# and gzip, so the demo needs no registry on the internet.
set -euo pipefail
out=${1:?usage: make-demo-image.sh DIR}
rm -rf "$out" && mkdir -p "$out/blobs/sha256"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
blob() { local d; d=$(sha256sum "$1" | cut -d' ' -f1); cp "$1" "$out/blobs/sha256/$d"; echo "$d"; }
size() { stat -c %s "$1"; }
layers=""; diffs=""
for i in 1 2; do
  mkdir -p "$work/l$i"
  echo "hello from portcullis layer $i" > "$work/l$i/hello-$i.txt"
  head -c $((i * 300000)) /dev/urandom > "$work/l$i/random-$i.bin"
  tar -C "$work/l$i" -cf "$work/l$i.tar" .
  diffs="$diffs${diffs:+,}\"sha256:$(sha256sum "$work/l$i.tar" | cut -d' ' -f1)\""
  gzip -n -c "$work/l$i.tar" > "$work/l$i.tar.gz"
  d=$(blob "$work/l$i.tar.gz")
  layers="$layers${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$d\",\"size\":$(size "$work/l$i.tar.gz")}"
done
printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["cat","/hello-1.txt"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$diffs" > "$work/config.json"
c=$(blob "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
  "$c" "$(size "$work/config.json")" "$layers" > "$work/manifest.json"
m=$(blob "$work/manifest.json")
echo '{"imageLayoutVersion":"1.0.0"}' > "$out/oci-layout"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
  "$m" "$(size "$work/manifest.json")" > "$out/index.json"
echo "sha256:$m"
