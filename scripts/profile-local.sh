#!/usr/bin/env bash
# Cost per delivered message of one natsd on loopback, for a fixed message count: instructions
# (`valgrind --tool=callgrind`) or context switches and CPU time (`perf stat`, software events
# only, so it also works where hardware counters are not exposed). Neither figure depends much
# on what else runs on the host, so before/after figures of a change can be compared on a busy
# machine, unlike wall-clock rates.
#
#   scripts/profile-local.sh                               # open-loop fan-out 1->8, 16 B, callgrind
#   SCENARIO=reqrep REQUESTERS=16 MSGS=20000 scripts/profile-local.sh
#   TOOL=perf SCENARIO=fanout OPEN=0 scripts/profile-local.sh
#   NATSD=target/release/natsd scripts/profile-local.sh    # skip the build
#   TOOL=perf PIN_SERVER=0 PIN_CLIENT=1 scripts/profile-local.sh  # pinned, as bench.sh runs
#
# SCENARIO is a `natsd bench` scenario (pubsub, fanout, queue, reqrep); OPEN=1 runs it
# open-loop. MSGS is what the publisher sends (reqrep: the number of requests). Prints the
# totals and per delivered message (reqrep: per request), then, for callgrind, the top of
# `callgrind_annotate`. The outputs stay in $OUT (default: a new directory under target/).
set -euo pipefail

cd "$(dirname "$0")/.."
TOOL=${TOOL:-callgrind}
SCENARIO=${SCENARIO:-fanout}
OPEN=${OPEN:-1}
MSGS=${MSGS:-200000}
SIZE=${SIZE:-16}
REQUESTERS=${REQUESTERS:-1}
PORT=${PORT:-24700}
OUT=${OUT:-target/profile-local/$(date +%Y%m%d-%H%M%S)-$SCENARIO}
mkdir -p "$OUT"

if [ -z "${NATSD:-}" ]; then
    # The release profile keeps line tables (debug = 1), which callgrind_annotate needs.
    cargo build --profile release -p natsd
    NATSD=target/release/natsd
fi
BENCH=${BENCH:-$NATSD}
# Cores for the server and the bench client (`taskset`); empty runs unpinned. Pinning matters
# for open-loop runs: with the server on one core its reader and writers take turns.
SRV_PIN=() CLI_PIN=()
[ -n "${PIN_SERVER:-}" ] && SRV_PIN=(taskset -c "$PIN_SERVER")
[ -n "${PIN_CLIENT:-}" ] && CLI_PIN=(taskset -c "$PIN_CLIENT")

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

wait_port() {
    for _ in $(seq 1 600); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2
    return 1
}

case "$TOOL" in
callgrind)
    "${SRV_PIN[@]}" valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" \
        "$NATSD" -a 127.0.0.1 -p "$PORT" >"$OUT/server.log" 2>&1 &
    SERVER=$!
    ;;
perf)
    "${SRV_PIN[@]}" "$NATSD" -a 127.0.0.1 -p "$PORT" >"$OUT/server.log" 2>&1 &
    SERVER=$!
    ;;
*)
    echo "TOOL is callgrind or perf" >&2
    exit 2
    ;;
esac
PIDS+=("$SERVER")
wait_port "$PORT"

args=(--url "nats://127.0.0.1:$PORT" --msgs "$MSGS" --size "$SIZE" --duration 600 --timeout 900)
[ "$OPEN" = 1 ] && [ "$SCENARIO" != reqrep ] && args+=(--open-loop)
[ "$SCENARIO" = reqrep ] && args+=(--requesters "$REQUESTERS")

if [ "$TOOL" = perf ]; then
    perf stat -e context-switches,cpu-migrations,task-clock -x, -o "$OUT/perf.txt" \
        -p "$SERVER" &
    PERF=$!
    sleep 0.5 # perf attaches to every thread before the load starts
    read -r -a st0 < <(cut -d' ' -f14,15 "/proc/$SERVER/stat")
fi
"${CLI_PIN[@]}" "$BENCH" bench "${args[@]}" "$SCENARIO" | tee "$OUT/bench.txt"
# Delivered messages (reqrep: requests), from the JSON line.
delivered=$(grep -m1 '^{' "$OUT/bench.txt" | grep -oE '"(msgs|reqs)":[0-9.]+' | head -1 |
    cut -d: -f2 | cut -d. -f1)

if [ "$TOOL" = perf ]; then
    read -r -a st1 < <(cut -d' ' -f14,15 "/proc/$SERVER/stat")
    kill -INT "$PERF"
    wait "$PERF" 2>/dev/null || true
    tick=$(getconf CLK_TCK)
    echo "server: user $(((st1[0] - st0[0]) * 1000 / tick)) ms, system $(((st1[1] - st0[1]) * 1000 / tick)) ms"
    cs=$(grep ',context-switches,' "$OUT/perf.txt" | cut -d, -f1)
    ms=$(grep ',task-clock,' "$OUT/perf.txt" | cut -d, -f1)
    echo "server: ${cs} context switches, ${ms} ms CPU for ${delivered} delivered"
    awk -v c="$cs" -v m="$ms" -v d="$delivered" 'BEGIN {
        printf "per 1000 delivered: %.2f context switches, %.1f us CPU\n", c * 1000 / d, m * 1e6 / d }'
    exit 0
fi

# Stop the server so that callgrind writes its profile.
kill -TERM "$SERVER"
wait "$SERVER" 2>/dev/null || true
PIDS=()
callgrind_annotate --inclusive=yes "$OUT/callgrind.out" >"$OUT/inclusive.txt"
callgrind_annotate "$OUT/callgrind.out" >"$OUT/self.txt"
total=$(grep -m1 -E '^[0-9,]+ .*PROGRAM TOTALS' "$OUT/inclusive.txt" | awk '{gsub(",", "", $1); print $1}')
echo "server: ${total} instructions for ${delivered} delivered, $((total / delivered)) per delivered"
echo "--- top functions by self cost ($OUT/self.txt) ---"
sed -n '1,60p' "$OUT/self.txt" | grep -E '^ *[0-9,]+ ' | head -30
