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
#   BENCH_GROUPS="pub pubsub fanout queue reqrep;--open-loop pub pubsub fanout queue;idle-conns;subs"
#                       scenario groups separated by ';'; each group runs against a freshly
#                       started server, so the RSS scenarios start from a clean process;
#                       empty skips them. A group may carry `natsd bench` flags: the
#                       `--open-loop` group runs the throughput scenarios with unthrottled
#                       publishers (scenario names end in `_open`; `msgs lost` rows count what
#                       never reached a subscriber)
#   PIN_SERVER=0 PIN_CLIENT=1
#                       CPU lists for `taskset -c`: servers on one, the bench client on the
#                       other, so neither steals the other's core; empty runs unpinned
#   BENCH_ARGS=         extra `natsd bench` flags (e.g. "--conns 2000")
#   NATS_SERVER=/usr/sbin/nats-server
#   PORT_NATSD=14222 PORT_GO=14223
#   OUT=target/bench/<timestamp>   where results.jsonl, bench.log, server logs and report.md go
#   NO_BUILD=1          use the existing target/release/natsd
#   NATSD_BIN=path      use this natsd binary instead (no build; e.g. a debug build for a smoke run)
#   CLUSTER_GROUP="pubsub queue;--open-loop pubsub queue"
#                       cross-node scenarios (groups separated by ';', as BENCH_GROUPS): each server kind runs as a 3-node cluster
#                       (routes on PORT+1000..), publishers on node 1, subscribers on node 2;
#                       reported in their own table. Empty skips them.
#   LEAF_GROUP="pubsub queue;--open-loop pubsub queue"
#                       across a leaf link (groups separated by ';', as BENCH_GROUPS): each
#                       server kind as a hub and a leaf dialing it (leaf port PORT+1030,
#                       clients on PORT+30 (hub) and PORT+31 (leaf)); each direction of
#                       LEAF_DIRS in its own table. Empty skips them.
#   LEAF_DIRS="up down" up: publishers on the leaf, subscribers on the hub; down: the reverse
#   GATEWAY_GROUP="pubsub queue reqrep;--open-loop pubsub queue"
#                       across a gateway (groups separated by ';', as BENCH_GROUPS): each server
#                       kind as a super-cluster of two one-server clusters, A naming B in its
#                       `gateways` (gateway ports PORT+1040 (A) and PORT+1041 (B), clients on
#                       PORT+40 and PORT+41); each direction of GATEWAY_DIRS in its own table
#                       (reqrep: requesters on one side, the responder on the other). Empty
#                       skips them.
#   GATEWAY_DIRS="ab"   ab: publishers (requesters) in A, subscribers (responder) in B; ba: the
#                       reverse
#   JS_GROUP="js-pub-sync js-pub-async js-consume kv-put kv-get"
#                       JetStream scenarios, reported in their own table; each round starts, in
#                       a fresh store dir: natsd (default: synced before every PubAck),
#                       nats-server (default: lazy, synced every 2 min) and nats-server with
#                       `jetstream { sync_interval: always }`. Empty skips them.
#   JS_STORE_BASE=$OUT  where the fresh store dirs go (keep it on the disk you mean to measure:
#                       a tmpfs /tmp makes fsync free)
#   NATS_SERVER_SYNC=$NATS_SERVER
#                       the binary for the sync_interval run; the option arrived after 2.9.10,
#                       which rejects it: that run is then skipped (say which binary supports it)
#   JS_SYNC_MOUNT=auto  when no nats-server takes `sync_interval: always`, emulate it (root
#                       only): nats-server runs on an ext4 image mounted `-o sync`, where every
#                       write reaches the disk before it returns (label nats-server-syncmount).
#                       0 skips the emulation.
#   JS_R3=              1 adds replicated JetStream (off by default): each server kind as a
#                       3-node cluster on loopback (server names, a cluster name, JetStream with
#                       a store dir per node under JS_STORE_BASE, every node routed to the
#                       others; natsd syncs before every PubAck, nats-server as it defaults),
#                       the bench client on node 0 with a file stream of `num_replicas: 3`:
#                       publishing with 256 PubAcks outstanding, and one at a time (p50/p99).
#                       A server that will not create the stream is reported n/a, with its
#                       error under the table.
#   JS_R3_GROUP="js-pub-async js-pub-sync"
#                       the scenarios of that section (run with `--replicas 3 --storage file`)
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3}
BENCH_GROUPS=${BENCH_GROUPS-"pub pubsub fanout queue reqrep;--open-loop pub pubsub fanout queue;idle-conns;subs"}
PIN_SERVER=${PIN_SERVER-0}
PIN_CLIENT=${PIN_CLIENT-1}
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

if [ -n "${NATSD_BIN:-}" ]; then
    NATSD=$NATSD_BIN
else
    if [ -z "${NO_BUILD:-}" ]; then
        cargo build --release -p natsd >&2
    fi
    NATSD=target/release/natsd
fi

# Server and client on separate cores (taskset), when asked for and possible.
SRV_PIN=()
CLI_PIN=()
if command -v taskset >/dev/null; then
    if [ -n "$PIN_SERVER" ]; then SRV_PIN=(taskset -c "$PIN_SERVER"); fi
    if [ -n "$PIN_CLIENT" ]; then CLI_PIN=(taskset -c "$PIN_CLIENT"); fi
fi

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
    "${SRV_PIN[@]}" "$bin" -a 127.0.0.1 -p "$port" >>"$OUT/$label-$round.log" 2>&1 &
    SERVER_PID=$!
    wait_port "$port"
    echo "== round $round: $label (pid $SERVER_PID): $scenarios" >&2
    # shellcheck disable=SC2086 # word splitting of scenarios and BENCH_ARGS is intended
    "${CLI_PIN[@]}" "$NATSD" bench --url "nats://127.0.0.1:$port" --label "$label" --round "$round" \
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

CLUSTER_GROUP=${CLUSTER_GROUP-"pubsub queue;--open-loop pubsub queue"}
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
        "${SRV_PIN[@]}" "$bin" -a 127.0.0.1 -p "$port" -m "$hport" -n "bench$i" --cluster_name bench \
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
    local g groups
    IFS=';' read -ra groups <<<"$CLUSTER_GROUP"
    for g in "${groups[@]}"; do
        # shellcheck disable=SC2086 # word splitting of the group and BENCH_ARGS is intended
        "${CLI_PIN[@]}" "$NATSD" bench --url "nats://127.0.0.1:$((base + 10))" --sub-url "nats://127.0.0.1:$((base + 11))" \
            --label "$label" --round "$round" --duration "$DURATION" $BENCH_ARGS $g \
            >>"$CLUSTER_RESULTS" 2> >(tee -a "$OUT/bench.log" >&2) || echo "warning: some $label cluster scenarios failed" >&2
    done
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

LEAF_GROUP=${LEAF_GROUP-"pubsub queue;--open-loop pubsub queue"}
LEAF_DIRS=${LEAF_DIRS-"up down"}
for dir in $LEAF_DIRS; do : >"$OUT/leaf-$dir-results.jsonl"; done

# A hub and a leaf of one kind linked by `leafnodes` (config files under $OUT: neither
# server has command-line flags for leaf nodes); waits for the link through the hub's
# /leafz, then runs LEAF_GROUP in each direction of LEAF_DIRS.
run_leaf() {
    local label=$1 round=$2 bin base lport hub leaf dir pub sub g groups
    if [ "$label" = natsd ]; then bin=$NATSD; base=$PORT_NATSD; else bin=$NATS_SERVER; base=$PORT_GO; fi
    lport=$((base + 1030)); hub=$((base + 30)); leaf=$((base + 31))
    printf 'server_name: benchhub\nleafnodes { listen: "127.0.0.1:%d" }\n' "$lport" >"$OUT/leaf-hub.conf"
    printf 'server_name: benchleaf\nleafnodes { reconnect: 1, remotes: [ { url: "nats://127.0.0.1:%d" } ] }\n' \
        "$lport" >"$OUT/leaf-leaf.conf"
    CLUSTER_PIDS=()
    "${SRV_PIN[@]}" "$bin" -c "$OUT/leaf-hub.conf" -a 127.0.0.1 -p "$hub" -m "$((base + 2030))" \
        >>"$OUT/$label-leaf-$round.log" 2>&1 &
    CLUSTER_PIDS+=($!)
    wait_port "$hub"
    "${SRV_PIN[@]}" "$bin" -c "$OUT/leaf-leaf.conf" -a 127.0.0.1 -p "$leaf" \
        >>"$OUT/$label-leaf-$round.log" 2>&1 &
    CLUSTER_PIDS+=($!)
    wait_port "$leaf"
    for _ in $(seq 1 100); do
        curl -s "http://127.0.0.1:$((base + 2030))/leafz" | grep -Eq '"leafnodes": ?1' && break
        sleep 0.1
    done
    for dir in $LEAF_DIRS; do
        if [ "$dir" = up ]; then pub=$leaf; sub=$hub; else pub=$hub; sub=$leaf; fi
        echo "== round $round: $label hub and leaf, $dir: $LEAF_GROUP" >&2
        IFS=';' read -ra groups <<<"$LEAF_GROUP"
        for g in "${groups[@]}"; do
            # shellcheck disable=SC2086 # word splitting of the group and BENCH_ARGS is intended
            "${CLI_PIN[@]}" "$NATSD" bench --url "nats://127.0.0.1:$pub" --sub-url "nats://127.0.0.1:$sub" \
                --label "$label" --round "$round" --duration "$DURATION" $BENCH_ARGS $g \
                >>"$OUT/leaf-$dir-results.jsonl" 2> >(tee -a "$OUT/bench.log" >&2) ||
                echo "warning: some $label leaf scenarios failed" >&2
        done
    done
    for i in "${CLUSTER_PIDS[@]}"; do
        kill -TERM "$i" 2>/dev/null || true
        wait "$i" 2>/dev/null || true
    done
    CLUSTER_PIDS=()
}

if [ -n "$LEAF_GROUP" ] && [ -n "$LEAF_DIRS" ]; then
    for round in $(seq 1 "$ROUNDS"); do
        if [ $((round % 2)) -eq 1 ]; then order="natsd nats-server"; else order="nats-server natsd"; fi
        for label in $order; do run_leaf "$label" "$round"; done
    done
fi

GATEWAY_GROUP=${GATEWAY_GROUP-"pubsub queue reqrep;--open-loop pubsub queue"}
GATEWAY_DIRS=${GATEWAY_DIRS-"ab"}
for dir in $GATEWAY_DIRS; do : >"$OUT/gateway-$dir-results.jsonl"; done

# Two one-server clusters of one kind, A and B, joined by gateways (config files under $OUT);
# waits until each has its outbound connection to the other (/gatewayz), then runs
# GATEWAY_GROUP in each direction of GATEWAY_DIRS. Interest crossing the gateway is awaited
# by `natsd bench` itself (its --sub-url warm-up).
run_gateway() {
    local label=$1 round=$2 bin base a b dir pub sub g groups
    if [ "$label" = natsd ]; then bin=$NATSD; base=$PORT_NATSD; else bin=$NATS_SERVER; base=$PORT_GO; fi
    a=$((base + 40)); b=$((base + 41))
    printf 'server_name: bencha\ngateway { name: A, listen: "127.0.0.1:%d", gateways: [ { name: B, url: "nats://127.0.0.1:%d" } ] }\n' \
        "$((base + 1040))" "$((base + 1041))" >"$OUT/gateway-a.conf"
    printf 'server_name: benchb\ngateway { name: B, listen: "127.0.0.1:%d" }\n' "$((base + 1041))" >"$OUT/gateway-b.conf"
    CLUSTER_PIDS=()
    "${SRV_PIN[@]}" "$bin" -c "$OUT/gateway-b.conf" -a 127.0.0.1 -p "$b" -m "$((base + 2041))" \
        >>"$OUT/$label-gateway-$round.log" 2>&1 &
    CLUSTER_PIDS+=($!)
    wait_port "$b"
    "${SRV_PIN[@]}" "$bin" -c "$OUT/gateway-a.conf" -a 127.0.0.1 -p "$a" -m "$((base + 2040))" \
        >>"$OUT/$label-gateway-$round.log" 2>&1 &
    CLUSTER_PIDS+=($!)
    wait_port "$a"
    # The gateways are dialed a second after start, and B dials back once A reached it.
    for _ in $(seq 1 300); do
        curl -s "http://127.0.0.1:$((base + 2040))/gatewayz" | tr -d ' \n' | grep -q '"outbound_gateways":{"B"' &&
            curl -s "http://127.0.0.1:$((base + 2041))/gatewayz" | tr -d ' \n' | grep -q '"outbound_gateways":{"A"' &&
            break
        sleep 0.1
    done
    for dir in $GATEWAY_DIRS; do
        if [ "$dir" = ab ]; then pub=$a; sub=$b; else pub=$b; sub=$a; fi
        echo "== round $round: $label clusters A and B, $dir: $GATEWAY_GROUP" >&2
        IFS=';' read -ra groups <<<"$GATEWAY_GROUP"
        for g in "${groups[@]}"; do
            # shellcheck disable=SC2086 # word splitting of the group and BENCH_ARGS is intended
            "${CLI_PIN[@]}" "$NATSD" bench --url "nats://127.0.0.1:$pub" --sub-url "nats://127.0.0.1:$sub" \
                --label "$label" --round "$round" --duration "$DURATION" $BENCH_ARGS $g \
                >>"$OUT/gateway-$dir-results.jsonl" 2> >(tee -a "$OUT/bench.log" >&2) ||
                echo "warning: some $label gateway scenarios failed" >&2
        done
    done
    for i in "${CLUSTER_PIDS[@]}"; do
        kill -TERM "$i" 2>/dev/null || true
        wait "$i" 2>/dev/null || true
    done
    CLUSTER_PIDS=()
}

if [ -n "$GATEWAY_GROUP" ] && [ -n "$GATEWAY_DIRS" ]; then
    for round in $(seq 1 "$ROUNDS"); do
        if [ $((round % 2)) -eq 1 ]; then order="natsd nats-server"; else order="nats-server natsd"; fi
        for label in $order; do run_gateway "$label" "$round"; done
    done
fi

JS_GROUP=${JS_GROUP-"js-pub-sync js-pub-async js-consume kv-put kv-get"}
JS_RESULTS="$OUT/js-results.jsonl"
JS_STORE_BASE=${JS_STORE_BASE:-$OUT}
NATS_SERVER_SYNC=${NATS_SERVER_SYNC:-$NATS_SERVER}
: >"$JS_RESULTS"
JS_LABELS="natsd nats-server"
JS_SYNC_NOTE=
if [ -n "$JS_GROUP" ]; then
    probe=$(mktemp -d "$JS_STORE_BASE/js-probe.XXXXXX")
    printf 'jetstream { store_dir: "%s", sync_interval: always }\n' "$probe/sd" >"$probe/sync.conf"
    if "$NATS_SERVER_SYNC" -c "$probe/sync.conf" -t >"$probe/t.log" 2>&1; then
        JS_LABELS="natsd nats-server nats-server-sync"
    else
        JS_SYNC_NOTE="$("$NATS_SERVER_SYNC" --version 2>&1 | head -1) rejects \`sync_interval: always\` ($(head -1 "$probe/t.log")): no synced nats-server run; set NATS_SERVER_SYNC to a nats-server that has the option"
        echo "note: $JS_SYNC_NOTE" >&2
    fi
    rm -rf "$probe"
fi
# The emulation: a small ext4 image on the same disk, mounted with every write synchronous.
JS_SYNC_MOUNT=${JS_SYNC_MOUNT:-auto}
SYNC_MNT=
if [ -n "$JS_GROUP" ] && [ "$JS_LABELS" = "natsd nats-server" ] && [ "$JS_SYNC_MOUNT" != 0 ] && [ "$(id -u)" = 0 ]; then
    SYNC_MNT=$(mktemp -d "$JS_STORE_BASE/js-syncmount.XXXXXX")
    if truncate -s 4G "$SYNC_MNT.img" && mkfs.ext4 -q -F "$SYNC_MNT.img" &&
        mount -o loop,sync "$SYNC_MNT.img" "$SYNC_MNT"; then
        trap 'umount "$SYNC_MNT" 2>/dev/null; rm -rf "$SYNC_MNT" "$SYNC_MNT.img"' EXIT
        JS_LABELS="natsd nats-server nats-server-syncmount"
        JS_SYNC_NOTE="${JS_SYNC_NOTE:+$JS_SYNC_NOTE; }nats-server-syncmount emulates \`sync_interval: always\` by running nats-server on an ext4 image mounted \`-o sync\` (each write is on disk before it returns)"
    else
        echo "note: could not mount a sync ext4 image; no sync emulation" >&2
        rm -rf "$SYNC_MNT" "$SYNC_MNT.img"
        SYNC_MNT=
    fi
fi

# One JetStream server in a fresh store dir, the JetStream scenarios against it, then the
# server and its store are removed.
run_js() {
    local label=$1 round=$2 bin=$NATS_SERVER port=$PORT_GO store args
    store=$(mktemp -d "$JS_STORE_BASE/js-$label-$round.XXXXXX")
    args=(-a 127.0.0.1 -p "$port" -js -sd "$store")
    case $label in
        natsd) bin=$NATSD; port=$PORT_NATSD; args=(-a 127.0.0.1 -p "$port" -js -sd "$store") ;;
        nats-server-sync)
            bin=$NATS_SERVER_SYNC
            printf 'jetstream { store_dir: "%s", sync_interval: always }\n' "$store" >"$store.conf"
            args=(-a 127.0.0.1 -p "$port" -c "$store.conf") ;;
        nats-server-syncmount)
            rm -rf "$store"
            store=$(mktemp -d "$SYNC_MNT/js-$round.XXXXXX")
            args=(-a 127.0.0.1 -p "$port" -js -sd "$store") ;;
    esac
    "${SRV_PIN[@]}" "$bin" "${args[@]}" >>"$OUT/$label-js-$round.log" 2>&1 &
    SERVER_PID=$!
    wait_port "$port"
    echo "== round $round: $label JetStream (pid $SERVER_PID, store $store): $JS_GROUP" >&2
    # shellcheck disable=SC2086 # word splitting of the group and BENCH_ARGS is intended
    "${CLI_PIN[@]}" "$NATSD" bench --url "nats://127.0.0.1:$port" --label "$label" --round "$round" \
        --server-pid "$SERVER_PID" --duration "$DURATION" $BENCH_ARGS $JS_GROUP \
        >>"$JS_RESULTS" 2> >(tee -a "$OUT/bench.log" >&2) || echo "warning: some $label JetStream scenarios failed" >&2
    stop_server
    rm -rf "$store" "$store.conf"
}

if [ -n "$JS_GROUP" ]; then
    for round in $(seq 1 "$ROUNDS"); do
        # Rotate the start order so no server always runs first.
        read -ra labels <<<"$JS_LABELS"
        n=${#labels[@]}
        for i in $(seq 0 $((n - 1))); do run_js "${labels[$(((i + round - 1) % n))]}" "$round"; done
    done
fi

# The issue's targets: windowed file-backed publishing, natsd (synced before each PubAck) at
# least as fast as lazy nats-server, and twice nats-server synced always.
js_targets() {
    local row r
    row=$(grep -m1 '^| js_pub_async_file_[0-9]*B_w[0-9]* | msgs/s' "$1" || true)
    [ -n "$row" ] || return 0
    mapfile -t r < <(grep -o '[*][*][0-9.]*[*][*]' <<<"$row" | tr -d '*')
    verdict() { awk -v x="$1" -v t="$2" 'BEGIN { print (x + 0 >= t ? "met" : "NOT met") }'; }
    echo
    echo "Targets (js_pub_async_file, ratio of medians):"
    if [ -n "${r[0]:-}" ]; then echo "- natsd / nats-server ≥ 1.0: ${r[0]} ($(verdict "${r[0]}" 1.0))"; fi
    local synced=nats-server-sync
    if grep -q 'nats-server-syncmount' "$1"; then synced="nats-server-syncmount (\`-o sync\` emulation)"; fi
    if [ -n "${r[1]:-}" ]; then
        echo "- natsd / $synced ≥ 2.0: ${r[1]} ($(verdict "${r[1]}" 2.0))"
    else
        echo "- natsd / nats-server-sync ≥ 2.0: not measured (no nats-server with sync_interval)"
    fi
}

JS_R3=${JS_R3:-}
JS_R3_GROUP=${JS_R3_GROUP-"js-pub-async js-pub-sync"}
R3_RESULTS="$OUT/r3-results.jsonl"
: >"$R3_RESULTS"

# Three JetStream nodes of one kind, each routed to the other two (nats-server's clustered
# JetStream wants configured routes on every node), then the replicated scenarios against
# node 0, then the nodes and their stores are removed.
run_r3() {
    local label=$1 round=$2 bin base i j port cport hport routes stores=() status
    if [ "$label" = natsd ]; then bin=$NATSD; base=$PORT_NATSD; else bin=$NATS_SERVER; base=$PORT_GO; fi
    CLUSTER_PIDS=()
    for i in 0 1 2; do
        port=$((base + 20 + i)); cport=$((base + 1020 + i)); hport=$((base + 2020 + i))
        routes=
        for j in 0 1 2; do
            [ "$j" -eq "$i" ] || routes="${routes:+$routes,}nats://127.0.0.1:$((base + 1020 + j))"
        done
        stores+=("$(mktemp -d "$JS_STORE_BASE/r3-$label-$round-$i.XXXXXX")")
        "${SRV_PIN[@]}" "$bin" -a 127.0.0.1 -p "$port" -m "$hport" -n "r3n$i" --cluster_name r3 \
            --cluster "nats://127.0.0.1:$cport" --routes "$routes" -js -sd "${stores[$i]}" \
            >>"$OUT/$label-r3-$round.log" 2>&1 &
        CLUSTER_PIDS+=($!)
    done
    for i in 0 1 2; do wait_port "$((base + 20 + i))"; done
    # Ready once every node is routed to the other two and /healthz says ok (for nats-server:
    # a meta leader is known); a cluster that never gets there is measured anyway, and the
    # stream create says what is wrong.
    for i in 0 1 2; do
        hport=$((base + 2020 + i))
        for _ in $(seq 1 300); do
            status=$(curl -s "http://127.0.0.1:$hport/healthz" || true)
            curl -s "http://127.0.0.1:$hport/routez" | grep -Eq '"num_routes": ?2' &&
                grep -Eq '"status": ?"ok"' <<<"$status" && break
            sleep 0.1
        done
        grep -Eq '"status": ?"ok"' <<<"$status" ||
            echo "note: $label r3n$i not healthy after 30 s: $status" >&2
    done
    echo "== round $round: $label 3-node JetStream cluster, R3 file stream: $JS_R3_GROUP" >&2
    # shellcheck disable=SC2086 # word splitting of the group and BENCH_ARGS is intended
    "${CLI_PIN[@]}" "$NATSD" bench --url "nats://127.0.0.1:$((base + 20))" --label "$label" --round "$round" \
        --duration "$DURATION" --replicas 3 --storage file $BENCH_ARGS $JS_R3_GROUP \
        >>"$R3_RESULTS" 2> >(tee -a "$OUT/bench.log" >&2) || echo "warning: some $label R3 scenarios failed or were refused" >&2
    for i in "${CLUSTER_PIDS[@]}"; do
        kill -TERM "$i" 2>/dev/null || true
        wait "$i" 2>/dev/null || true
    done
    CLUSTER_PIDS=()
    rm -rf "${stores[@]}"
}

if [ -n "$JS_R3" ] && [ "$JS_R3" != 0 ] && [ -n "$JS_R3_GROUP" ]; then
    for round in $(seq 1 "$ROUNDS"); do
        if [ $((round % 2)) -eq 1 ]; then order="natsd nats-server"; else order="nats-server natsd"; fi
        for label in $order; do run_r3 "$label" "$round"; done
    done
fi

{
    echo "### natsd vs nats-server ($(date -u +%Y-%m-%d))"
    echo
    echo "- host: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr)"
    echo "- natsd $(git rev-parse --short HEAD 2>/dev/null || echo '?') ($([ -n "${NATSD_BIN:-}" ] && echo "$NATSD_BIN" || echo "release build")) vs $("$NATS_SERVER" --version 2>&1 | head -1)"
    echo "- load average before/after: $load0 / $(cut -d" " -f1-3 /proc/loadavg) (other jobs share this host)"
    echo "- $ROUNDS rounds, servers started alternately on loopback (a fresh server for each of: $BENCH_GROUPS), ${DURATION}s per scenario; bench client on the same host (\`natsd bench\`, 2 threads); ${elapsed}s in total"
    echo "- CPU pinning: servers ${SRV_PIN[*]:-unpinned}, bench client ${CLI_PIN[*]:-unpinned}"
    echo "- \`_open\` scenarios: unthrottled publishers (\`--open-loop\`: frames written as fast as the socket takes them); \`msgs lost\` = published but never received by a subscriber"
    echo "- median across rounds (min–max); ratio = natsd / nats-server (per-round ratios min–max); ↑ higher is better, ↓ lower is better"
    echo
    if [ -s "$RESULTS" ]; then "$NATSD" bench report "$RESULTS"; fi
    if [ -s "$CLUSTER_RESULTS" ]; then
        echo
        echo "#### Across a route: 3-node clusters, publisher on node 1, subscribers on node 2"
        echo
        "$NATSD" bench report "$CLUSTER_RESULTS"
    fi
    for dir in $LEAF_DIRS; do
        if [ -s "$OUT/leaf-$dir-results.jsonl" ]; then
            echo
            if [ "$dir" = up ]; then
                echo "#### Across a leaf link, up: publisher on the leaf, subscribers on the hub (target: natsd ≥ 1.5× nats-server)"
            else
                echo "#### Across a leaf link, down: publisher on the hub, subscribers on the leaf (target: natsd ≥ 1.5× nats-server)"
            fi
            echo
            "$NATSD" bench report "$OUT/leaf-$dir-results.jsonl"
        fi
    done
    for dir in $GATEWAY_DIRS; do
        if [ -s "$OUT/gateway-$dir-results.jsonl" ]; then
            echo
            if [ "$dir" = ab ]; then
                echo "#### Across a gateway, A to B: publisher (requester) in cluster A, subscribers (responder) in cluster B (target: natsd ≥ 1.5× nats-server)"
            else
                echo "#### Across a gateway, B to A: publisher (requester) in cluster B, subscribers (responder) in cluster A (target: natsd ≥ 1.5× nats-server)"
            fi
            echo
            "$NATSD" bench report "$OUT/gateway-$dir-results.jsonl"
        fi
    done
    if [ -s "$JS_RESULTS" ]; then
        echo
        echo "#### JetStream: file and memory streams, fresh store per server (store under $JS_STORE_BASE)"
        echo
        echo "natsd syncs before every PubAck (its default); nats-server by default acknowledges at once and syncs every 2 min${JS_SYNC_NOTE:+; $JS_SYNC_NOTE}."
        echo
        "$NATSD" bench report "$JS_RESULTS" | tee "$OUT/js-report.md"
        js_targets "$OUT/js-report.md"
    fi
    if [ -s "$R3_RESULTS" ]; then
        echo
        echo "#### JetStream R3: 3-node clusters, a file stream with \`num_replicas: 3\`, client on node 0 (store under $JS_STORE_BASE)"
        echo
        echo "natsd syncs before every PubAck; nats-server acknowledges once a quorum of its replicas holds the message (each syncs lazily, every 2 min)."
        echo
        "$NATSD" bench report "$R3_RESULTS"
    fi
} | tee "$OUT/report.md"
