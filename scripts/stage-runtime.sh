#!/bin/sh
# Stages fedns's runtime into DEST: the built code, the batched UDP addon when it was built, the
# embedded default configuration and the production dependencies, nothing else. The Dockerfile's final stage is exactly this directory,
# and test/deploy/image.test.ts serves from it, so the image and its test cannot drift.
# Run from the repository root after `npm run build`.
set -eu
dest=${1:?usage: scripts/stage-runtime.sh DEST}
for built in dist/src/cli.js dist/vendor/kube-config.js; do
  [ -f "$built" ] || { echo "stage-runtime: $built not found: run npm run build first" >&2; exit 1; }
done
mkdir -p "$dest/dist" "$dest/config"
cp package.json package-lock.json "$dest/"
cp -R dist/src "$dest/dist/src"
# The kubeconfig reader (scripts/bundle-kube-config.mjs), which package.json's "#kube-config" names.
cp -R dist/vendor "$dest/dist/vendor"
cp -R config/fedns.yaml config/demo "$dest/config/"
# The addon where dist/src/server/udp-batch.js looks for it; without it, fedns uses node:dgram.
addon=native/build/Release/fedns_udp.node
if [ -f "$addon" ]; then
  mkdir -p "$dest/$(dirname "$addon")"
  cp "$addon" "$dest/$addon"
fi
# No dev dependencies, no install scripts, no source maps' sources needed at run time.
(cd "$dest" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
