#!/usr/bin/env bash
# fedns against Knot DNS (one UDP worker) on the same data, measured in the same run by
# ../shared/bench/peers.sh: queries/s, server CPU time per query, and both as ratios to Knot.
# usage: BENCH_DIR=/tmp/fedns-bench benchmarks/throughput.sh [peers.sh options, e.g. -l 10 -r 3]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PEERS="${PEERS_SH:-$ROOT/../shared/bench/peers.sh}"
export BENCH_DIR="${BENCH_DIR:-${TMPDIR:-/tmp}/fedns-bench}"
PORT=5320
mkdir -p "$BENCH_DIR"
[ -f "$ROOT/dist/src/cli.js" ] || (cd "$ROOT" && npx tsc -p tsconfig.json)
# peers.sh writes data.json on its first run; make sure it exists before converting it.
[ -f "$BENCH_DIR/data.json" ] || (cd "$BENCH_DIR" && bash "$PEERS" -l 1 -w 0 -r 1 knot-1 >/dev/null)
CONFIG=$(node "$ROOT/benchmarks/bench-data.mjs" "$BENCH_DIR" "$PORT")
# Same answers as Knot for the benchmark's names (A, SRV with additional A, NXDOMAIN).
node "$ROOT/dist/src/cli.js" check --config "$CONFIG" | head -2
export EXTRA_CMD="node $ROOT/dist/src/cli.js serve --config $CONFIG" EXTRA_PORT=$PORT EXTRA_THREADS="1 (event loop)"
bash "$PEERS" "$@" knot-1 node-raw extra | tee "$BENCH_DIR/fedns-throughput.txt"
echo
# The medians table (after "== medians"): server threads(2 words) QPS lat lost xKnot cpu% us/query xKnot ...
# node-raw is a minimal Node 20 dgram server replaying precomputed answers: fedns against it shows
# what is fedns's own cost and what is Node's.
awk '/^== medians/{m=1}
  m && $1=="node-raw"{rq=$5; ru=$10}
  m && $1=="extra"{printf "fedns: %s queries/s (%s x Knot), %s us CPU per query (%s x Knot)\n", $5, $8, $10, $11; fq=$5; fu=$10}
  END{if (rq && fq) printf "fedns vs the raw node:dgram anchor: %.2f x its queries/s, %.2f x its CPU per query\n", fq/rq, fu/ru}' "$BENCH_DIR/fedns-throughput.txt"
