#!/usr/bin/env bash
# fedns against Knot DNS (one UDP worker) on the same data, measured by ../shared/bench/peers.sh:
# queries/s, server CPU time per query, and both as ratios to Knot and to the raw node:dgram server.
# fedns runs once per variant, each in a peers.sh run of its own beside the anchors, so every ratio
# compares figures of the same run. Variants (MODE):
#   paths (default): the two UDP paths, udp.batch on (the native recvmmsg/sendmmsg addon) and off
#     (node:dgram), beside Knot and the raw server.
#   policy: the traffic-policy query path, `policy: all` against `policy: nearest` on the same names,
#     dnsperf sending from 127.0.0.2 (dnsperf -a), a client network of the one member cluster: the
#     client is identified on every query and gets its cluster's addresses, which are every address,
#     so both variants send the same answers and the difference is the cost of the policy path.
#     Beside Knot only; prints nearest's queries/s as a ratio to all's (target: at least 0.90).
# usage: BENCH_DIR=/tmp/fedns-bench [MODE=policy] benchmarks/throughput.sh [peers.sh options, e.g. -l 10 -r 3]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PEERS="${PEERS_SH:-$ROOT/../shared/bench/peers.sh}"
export BENCH_DIR="${BENCH_DIR:-${TMPDIR:-/tmp}/fedns-bench}"
PORT=5320
MODE="${MODE:-paths}"
case "$MODE" in
  paths) variants=(batched dgram); anchors=(knot-1 node-raw) ;;
  policy) variants=(all nearest); anchors=(knot-1); export DNSPERF_EXTRA="${DNSPERF_EXTRA:-} -a 127.0.0.2" ;;
  *) echo "MODE must be paths or policy" >&2; exit 2 ;;
esac
mkdir -p "$BENCH_DIR"
[ -f "$ROOT/dist/src/cli.js" ] || (cd "$ROOT" && npm run build)
# peers.sh writes data.json on its first run; make sure it exists before converting it.
[ -f "$BENCH_DIR/data.json" ] || (cd "$BENCH_DIR" && bash "$PEERS" -l 1 -w 0 -r 1 knot-1 >/dev/null)
CONFIG=$(node "$ROOT/benchmarks/bench-data.mjs" "$BENCH_DIR" "$PORT")
summary=()
qps=()
for v in "${variants[@]}"; do
  cfg="${CONFIG%.yaml}-$v.yaml"
  case "$v" in
    batched) extra="udp: { batch: on }" ;;
    dgram) extra="udp: { batch: off }" ;;
    *) extra="policy: $v" ;;
  esac
  { cat "$CONFIG"; echo "$extra"; } > "$cfg"
  # Same answers as Knot for the benchmark's names (A, SRV with additional A, NXDOMAIN); udp.batch
  # on fails here, not in the middle of the run, when the addon is not built.
  node "$ROOT/dist/src/cli.js" check --config "$cfg" | grep -E '^  (zone|udp) '
  export EXTRA_CMD="node $ROOT/dist/src/cli.js serve --config $cfg" EXTRA_PORT=$PORT EXTRA_THREADS="1 (event loop)"
  out="$BENCH_DIR/fedns-throughput-$v.txt"
  echo "=== fedns, $MODE: $v"
  bash "$PEERS" "$@" "${anchors[@]}" extra | tee "$out"
  echo
  # The medians table (after "== medians"): server, threads (2 words for Knot, 3 for the Node
  # servers), QPS, lat, lost, xKnot, cpu%, us/query, xKnot, ...
  # node-raw is a minimal Node 20 dgram server replaying precomputed answers: fedns against it
  # shows what is fedns's own cost and what is Node's.
  summary+=("$(awk -v v="$v" '/^== medians/{m=1}
    m && $1=="knot-1"{kq=$4; ku=$9}
    m && $1=="node-raw"{rq=$5; ru=$10}
    m && $1=="extra"{fq=$5; fu=$10; fk=$8; fku=$11}
    END{printf "fedns %-7s: %s queries/s (%s x Knot", v, fq, fk
      if (rq) printf ", %.2f x raw dgram", fq/rq
      printf "), %s us CPU per query (%s x Knot", fu, fku
      if (ru) printf ", %.2f x raw dgram", fu/ru
      printf "); Knot %s q/s at %s us", kq, ku}' "$out")")
  qps+=("$(awk '/^== medians/{m=1} m && $1=="extra"{print $5 " " $8}' "$out")")
done
echo "== $MODE (each against the anchors of its own run)"
printf '%s\n' "${summary[@]}"
if [ "$MODE" = policy ]; then
  # Two ratios: of the queries/s, and of the queries/s as fractions of Knot's in each run (which
  # takes out a machine that was busier during one run than the other).
  printf '%s\n' "${qps[@]}" | awk 'NR==1{aq=$1; ak=$2} NR==2{nq=$1; nk=$2}
    END{printf "nearest / all: %.2f x the queries/s (%.2f x as fractions of Knot); target >= 0.90\n", (aq ? nq/aq : 0), (ak ? nk/ak : 0)}'
fi
