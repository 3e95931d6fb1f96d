#!/bin/sh
# Runs the test suite (`npm test`, with the environment given) beside busy loops that keep the
# machine's cores occupied, as a shared CI runner can be: a test that passes only on a quiet
# machine (it reads a state before the work that makes it has finished) fails here first.
# usage: sh scripts/test-under-load.sh [busy-loops=2] [vitest arguments...]
set -u
cd "$(dirname "$0")/.."
loops=${1:-2}
[ $# -gt 0 ] && shift
pids=""
stop_loops() { [ -n "$pids" ] && kill $pids 2>/dev/null; }
# The loops stop with the script, however it ends; its status is npm test's.
trap stop_loops EXIT
trap 'exit 130' INT TERM
i=0
while [ "$i" -lt "$loops" ]; do
  sh -c 'while :; do :; done' &
  pids="$pids $!"
  i=$((i + 1))
done
echo "=== tests beside $loops busy loop(s)"
npm test -- "$@"
