#!/usr/bin/env bash
# Side-by-side benchmarks of natsd and the Go nats-server on loopback.
#
# Builds natsd in release, then for each round starts natsd and nats-server one after the other
# (the order alternates between rounds, so neither always runs on a warmer machine), runs every
# `natsd bench` scenario against each, stops the server it started, and finally prints a
# Markdown table: per scenario the median across rounds, the min–max spread, and the ratio
# natsd / nats-server.
#
# Environment (all optional):
#   ROUNDS=3            rounds per server
#   DURATION=3          seconds per throughput/latency scenario
#   BENCH_GROUPS="pub pubsub fanout queue reqrep;idle-conns;subs"
#                       scenario groups separated by ';'; each group runs against a freshly
#                       started server, so the RSS scenarios start from a clean process
#   BENCH_ARGS=         extra `natsd bench` flags (e.g. "--conns 2000")
#   NATS_SERVER=/usr/sbin/nats-server
#   PORT_NATSD=14222 PORT_GO=14223
#   OUT=target/bench/<timestamp>   where results.jsonl, bench.log, server logs and report.md go
#   NO_BUILD=1          use the existing target/release/natsd
#   CLUSTER_GROUP="pubsub queue"
#                       cross-node scenarios: each server kind runs as a 3-node cluster
#                       (routes on PORT+1000..), publishers on node 1, subscribers on node 2;
#                       reported in their own table. Empty skips them.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3}
BENCH_GROUPS=${BENCH_GROUPS:-"pub pubsub fanout queue reqrep;idle-conns;subs"}
BENCH_ARGS=${BENCH_ARGS:-}
NATS_SERVER=${NATS_SERVER:-/usr/sbin/nats-server}
PORT_NATSD=${PORT_NATSD:-14222}
PORT_GO=${PORT_GO:-14223}

cd "$(dirname "$0")/.."
OUT=${OUT:-target/bench/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"

[ -x "$NATS_SERVER" ] || { echo "nats-server not found at $NATS_SERVER (apt-get install nats-server)" >&2; exit 1; }

# idle-conns opens 5,000 sockets: the bench and both servers inherit this limit.
want=20000
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then want=$hard; fi
ulimit -n "$want" || echo "warning: could not raise ulimit -n to $want (now $(ulimit -n))" >&2

if [ -z "${NO_BUILD:-}" ]; then
    cargo build --release -p natsd >&2
fi
NATSD=target/release/natsd

SERVER_PID=
CLUSTER_PIDS=()
cleanup() {
    # Only ever the servers this script started.
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    local p
    for p in "${CLUSTER_PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
}
trap cleanup EXIT INT TERM

wait_port() {
    local port=$1 i
    for i in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "server on port $port did not come up" >&2
    return 1
}

stop_server() {
    local i
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for i in $(seq 1 50); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$SERVER_PID" 2>/dev/null && kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

run_one() {
    local label=$1 round=$2 scenarios=$3 bin port
    if [ "$label" = natsd ]; then bin=$NATSD; port=$PORT_NATSD; else bin=$NATS_SERVER; port=$PORT_GO; fi
    "$bin" -a 127.0.0.1 -p "$port" >>"$OUT/$label-$round.log" 2>&1 &
    SERVER_PID=$!
    wait_port "$port"
    echo "== round $round: $label (pid $SERVER_PID): $scenarios" >&2
    # shellcheck disable=SC2086 # word splitting of scenarios and BENCH_ARGS is intended
    "$NATSD" bench --url "nats://127.0.0.1:$port" --label "$label" --round "$round" \
        --server-pid "$SERVER_PID" --duration "$DURATION" $BENCH_ARGS $scenarios \
        >>"$RESULTS" 2> >(tee -a "$OUT/bench.log" >&2) || echo "warning: some $label scenarios failed" >&2
    stop_server
}

start=$(date +%s)
load0=$(cut -d" " -f1-3 /proc/loadavg)
for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) -eq 1 ]; then order="natsd nats-server"; else order="nats-server natsd"; fi
    for label in $order; do
        IFS=';' read -ra groups <<<"$BENCH_GROUPS"
        for g in "${groups[@]}"; do run_one "$label" "$round" "$g"; done
    done
done
elapsed=$(( $(date +%s) - start ))

CLUSTER_GROUP=${CLUSTER_GROUP-"pubsub queue"}
CLUSTER_RESULTS="$OUT/cluster-results.jsonl"
: >"$CLUSTER_RESULTS"

# Three nodes of one kind: node 0 is the seed route of the others; waits for the full mesh
# through /routez on each node's monitoring port.
run_cluster() {
    local label=$1 round=$2 bin base i port cport hport routes
    if [ "$label" = natsd ]; then bin=$NATSD; base=$PORT_NATSD; else bin=$NATS_SERVER; base=$PORT_GO; fi
    CLUSTER_PIDS=()
    for i in 0 1 2; do
        port=$((base + 10 + i)); cport=$((base + 1000 + i)); hport=$((base + 2000 + i))
        routes=()
        [ "$i" -gt 0 ] && routes=(--routes "nats://127.0.0.1:$((base + 1000))")
        "$bin" -a 127.0.0.1 -p "$port" -m "$hport" -n "bench$i" --cluster_name bench \
            --cluster "nats://127.0.0.1:$cport" "${routes[@]}" \
            >>"$OUT/$label-cluster-$round.log" 2>&1 &
        CLUSTER_PIDS+=($!)
        wait_port "$port"
    done
    for i in 0 1 2; do
        hport=$((base + 2000 + i))
        for _ in $(seq 1 100); do
            curl -s "http://127.0.0.1:$hport/routez" | grep -Eq '"num_routes": ?2' && break
            sleep 0.1
        done
    done
    echo "== round $round: $label 3-node cluster: $CLUSTER_GROUP" >&2
    # shellcheck disable=SC2086 # word splitting of the groups and BENCH_ARGS is intended
    "$NATSD" bench --url "nats://127.0.0.1:$((base + 10))" --sub-url "nats://127.0.0.1:$((base + 11))" \
        --label "$label" --round "$round" --duration "$DURATION" $BENCH_ARGS $CLUSTER_GROUP \
        >>"$CLUSTER_RESULTS" 2> >(tee -a "$OUT/bench.log" >&2) || echo "warning: some $label cluster scenarios failed" >&2
    for i in "${CLUSTER_PIDS[@]}"; do
        kill -TERM "$i" 2>/dev/null || true
        wait "$i" 2>/dev/null || true
    done
    CLUSTER_PIDS=()
}

if [ -n "$CLUSTER_GROUP" ]; then
    for round in $(seq 1 "$ROUNDS"); do
        if [ $((round % 2)) -eq 1 ]; then order="natsd nats-server"; else order="nats-server natsd"; fi
        for label in $order; do run_cluster "$label" "$round"; done
    done
fi

{
    echo "### natsd vs nats-server ($(date -u +%Y-%m-%d))"
    echo
    echo "- host: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr)"
    echo "- natsd $(git rev-parse --short HEAD 2>/dev/null || echo '?') (release build) vs $("$NATS_SERVER" --version 2>&1 | head -1)"
    echo "- load average before/after: $load0 / $(cut -d" " -f1-3 /proc/loadavg) (other jobs share this host)"
    echo "- $ROUNDS rounds, servers started alternately on loopback (a fresh server for each of: $BENCH_GROUPS), ${DURATION}s per scenario; bench client on the same host (\`natsd bench\`, 2 threads); ${elapsed}s in total"
    echo "- median across rounds (min–max); ratio = natsd / nats-server (per-round ratios min–max); ↑ higher is better, ↓ lower is better"
    echo
    "$NATSD" bench report "$RESULTS"
    if [ -s "$CLUSTER_RESULTS" ]; then
        echo
        echo "#### Across a route: 3-node clusters, publisher on node 1, subscribers on node 2"
        echo
        "$NATSD" bench report "$CLUSTER_RESULTS"
    fi
} | tee "$OUT/report.md"
