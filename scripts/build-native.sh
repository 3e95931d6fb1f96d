#!/bin/sh
# Builds the batched UDP addon (native/) with the node-gyp that npm bundles. Never fails: without
# a compiler, python3 or Node.js headers, fedns answers UDP through node:dgram (udp.batch: auto).
# Run by `npm run build`; incremental (make) once configured.
cd "$(dirname "$0")/../native" || exit 0
# npm sets npm_config_node_gyp for its scripts; otherwise look for node-gyp on PATH.
if [ -n "${npm_config_node_gyp:-}" ]; then gyp() { node "$npm_config_node_gyp" "$@"; }; else gyp() { node-gyp "$@"; }; fi
log=build.log
if { [ -f build/Makefile ] || gyp configure >"$log" 2>&1; } && gyp build >>"$log" 2>&1; then
  rm -f "$log"
else
  echo "fedns: native UDP path not built (see native/$log); UDP uses node:dgram" >&2
fi
exit 0
