#!/usr/bin/env bash
# fedns against Knot DNS (one UDP worker) on the same data, measured by ../shared/bench/peers.sh:
# queries/s, server CPU time per query, and both as ratios to Knot and to the raw node:dgram server.
# fedns runs twice, once per UDP path (udp.batch: on, the native recvmmsg/sendmmsg addon; off,
# node:dgram), each in a peers.sh run of its own beside Knot and the raw server, so every ratio
# compares figures of the same run.
# usage: BENCH_DIR=/tmp/fedns-bench benchmarks/throughput.sh [peers.sh options, e.g. -l 10 -r 3]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PEERS="${PEERS_SH:-$ROOT/../shared/bench/peers.sh}"
export BENCH_DIR="${BENCH_DIR:-${TMPDIR:-/tmp}/fedns-bench}"
PORT=5320
mkdir -p "$BENCH_DIR"
[ -f "$ROOT/dist/src/cli.js" ] || (cd "$ROOT" && npm run build)
# peers.sh writes data.json on its first run; make sure it exists before converting it.
[ -f "$BENCH_DIR/data.json" ] || (cd "$BENCH_DIR" && bash "$PEERS" -l 1 -w 0 -r 1 knot-1 >/dev/null)
CONFIG=$(node "$ROOT/benchmarks/bench-data.mjs" "$BENCH_DIR" "$PORT")
summary=()
for path in batched dgram; do
  cfg="${CONFIG%.yaml}-$path.yaml"
  batch=$([ "$path" = batched ] && echo on || echo off)
  { cat "$CONFIG"; echo "udp: { batch: $batch }"; } > "$cfg"
  # Same answers as Knot for the benchmark's names (A, SRV with additional A, NXDOMAIN); udp.batch
  # on fails here, not in the middle of the run, when the addon is not built.
  node "$ROOT/dist/src/cli.js" check --config "$cfg" | grep -E '^  (zone|udp) '
  export EXTRA_CMD="node $ROOT/dist/src/cli.js serve --config $cfg" EXTRA_PORT=$PORT EXTRA_THREADS="1 (event loop)"
  out="$BENCH_DIR/fedns-throughput-$path.txt"
  echo "=== fedns, UDP path $path"
  bash "$PEERS" "$@" knot-1 node-raw extra | tee "$out"
  echo
  # The medians table (after "== medians"): server, threads (2 words for Knot, 3 for the Node
  # servers), QPS, lat, lost, xKnot, cpu%, us/query, xKnot, ...
  # node-raw is a minimal Node 20 dgram server replaying precomputed answers: fedns against it
  # shows what is fedns's own cost and what is Node's.
  summary+=("$(awk -v path="$path" '/^== medians/{m=1}
    m && $1=="knot-1"{kq=$4; ku=$9}
    m && $1=="node-raw"{rq=$5; ru=$10}
    m && $1=="extra"{fq=$5; fu=$10; fk=$8; fku=$11}
    END{printf "fedns %-7s: %s queries/s (%s x Knot, %.2f x raw dgram), %s us CPU per query (%s x Knot, %.2f x raw dgram); Knot %s q/s at %s us", path, fq, fk, (rq ? fq/rq : 0), fu, fku, (ru ? fu/ru : 0), kq, ku}' "$out")")
done
echo "== both UDP paths (each against Knot and the raw node:dgram server of its own run)"
printf '%s\n' "${summary[@]}"
