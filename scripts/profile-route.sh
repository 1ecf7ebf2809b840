#!/usr/bin/env bash
# Instruction profile of the receiving side of a route: a 2-node natsd cluster on loopback, a
# publisher on node A, a subscriber on node B, a fixed message count, node B under
# `valgrind --tool=callgrind`. Instruction counts do not depend on what else runs on the host,
# so before/after figures of a change can be compared on a busy machine.
#
#   scripts/profile-route.sh                 # 300000 messages of 16 bytes (pubsub)
#   MSGS=100000 SIZE=128 SCENARIO=queue scripts/profile-route.sh
#   NATSD=target/release/natsd scripts/profile-route.sh   # skip the build
#   OPEN=1 scripts/profile-route.sh          # open-loop publisher (`bench --open-loop`)
#   NODE=a scripts/profile-route.sh          # profile the publishing node instead
#
# Prints the total instructions of node B, the inclusive share of the route parser
# (`RouteParser::parse`) and both per message, then the top of `callgrind_annotate`.
# The callgrind output stays in $OUT (default: a new directory under target/).
set -euo pipefail

cd "$(dirname "$0")/.."
MSGS=${MSGS:-300000}
SIZE=${SIZE:-16}
SCENARIO=${SCENARIO:-pubsub}
OPEN=${OPEN:-0}
BASE=${BASE:-24500}
OUT=${OUT:-target/profile-route/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"

if [ -z "${NATSD:-}" ]; then
    # The release profile keeps line tables (debug = 1), which callgrind_annotate needs.
    cargo build --profile release -p natsd
    NATSD=target/release/natsd
fi

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

wait_routes() { # monitoring port
    for _ in $(seq 1 600); do
        curl -s "http://127.0.0.1:$1/routez" | grep -Eq '"num_routes": ?1' && return 0
        sleep 0.1
    done
    echo "no route on monitoring port $1" >&2
    return 1
}

A_PORT=$BASE B_PORT=$((BASE + 1))
A_CLUSTER=$((BASE + 10)) B_CLUSTER=$((BASE + 11))
A_HTTP=$((BASE + 20)) B_HTTP=$((BASE + 21))

# NODE=a profiles the publishing node instead (its client reader and the route's writer).
VG_A=() VG_B=(valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out")
if [ "${NODE:-b}" = a ]; then
    VG_A=("${VG_B[@]}") VG_B=()
fi
"${VG_A[@]}" "$NATSD" -a 127.0.0.1 -p "$A_PORT" -m "$A_HTTP" -n prof-a --cluster_name prof \
    --cluster "nats://127.0.0.1:$A_CLUSTER" >"$OUT/node-a.log" 2>&1 &
A_PID=$!
PIDS+=("$A_PID")
"${VG_B[@]}" "$NATSD" -a 127.0.0.1 -p "$B_PORT" -m "$B_HTTP" -n prof-b --cluster_name prof \
    --cluster "nats://127.0.0.1:$B_CLUSTER" --routes "nats://127.0.0.1:$A_CLUSTER" \
    >"$OUT/node-b.log" 2>&1 &
VG=$!
PIDS+=("$VG")
[ "${NODE:-b}" = a ] && VG=$A_PID
wait_routes "$A_HTTP"
wait_routes "$B_HTTP"

# A fixed count: the time budget is far above what the count needs, even under valgrind.
open_loop=()
[ "$OPEN" = 1 ] && open_loop=(--open-loop)
"$NATSD" bench --url "nats://127.0.0.1:$A_PORT" --sub-url "nats://127.0.0.1:$B_PORT" \
    --msgs "$MSGS" --size "$SIZE" --duration 600 --timeout 900 "${open_loop[@]}" "$SCENARIO" |
    tee "$OUT/bench.json"

# Stop the profiled node first so that callgrind writes its profile, then the other.
kill -TERM "$VG"
wait "$VG" 2>/dev/null || true
cleanup
PIDS=()

callgrind_annotate --inclusive=yes "$OUT/callgrind.out" >"$OUT/inclusive.txt"
callgrind_annotate "$OUT/callgrind.out" >"$OUT/self.txt"
total=$(grep -m1 -E '^[0-9,]+ .*PROGRAM TOTALS' "$OUT/inclusive.txt" | awk '{gsub(",", "", $1); print $1}')
parse=$(grep -m1 -E 'RouteParser>::parse\b|RouteParser::parse\b' "$OUT/inclusive.txt" | awk '{gsub(",", "", $1); print $1}')
echo "node ${NODE:-b}: ${total} instructions, $((total / MSGS)) per message"
if [ -n "$parse" ]; then
    echo "route parser (inclusive): ${parse} instructions, $((parse / MSGS)) per message," \
        "$((parse * 100 / total))% of node ${NODE:-b}"
fi
echo "--- top functions by self cost ($OUT/self.txt) ---"
sed -n '1,60p' "$OUT/self.txt" | grep -E '^ *[0-9,]+ ' | head -30
