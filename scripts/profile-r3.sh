#!/usr/bin/env bash
# System calls per replicated publish: a 3-node natsd JetStream cluster on loopback, a file
# stream with `num_replicas: 3`, a fixed number of publishes (`natsd bench --msgs`), and
# `strace -c` on every node counting fsync/fdatasync (and, with SYSCALLS, others). Counts
# per message do not depend on what else runs on the host, unlike the rates, so before/after
# figures of a change compare on a busy machine.
#
#   scripts/profile-r3.sh                                   # js-pub-async, 20,000 messages
#   SCENARIO=js-pub-sync MSGS=2000 scripts/profile-r3.sh    # one at a time
#   SYSCALLS=fsync,fdatasync,write,sendto,recvfrom,epoll_wait scripts/profile-r3.sh
#   SYSCALLS=none scripts/profile-r3.sh                     # no strace: context switches only
#   NATSD=target/release/natsd scripts/profile-r3.sh        # skip the build
#
# Prints the bench line, then per node the counted calls, fsyncs (fsync + fdatasync) and
# context switches (all threads; strace itself adds some) per 1,000 messages. Node 0 is where the client connects; the stream leader is whichever node the
# cluster picked. The outputs (server logs, strace summaries) stay in $OUT.
set -euo pipefail

cd "$(dirname "$0")/.."
SCENARIO=${SCENARIO:-js-pub-async}
MSGS=${MSGS:-20000}
SIZE=${SIZE:-128}
SYSCALLS=${SYSCALLS:-fsync,fdatasync}
PORT=${PORT:-24800}
OUT=${OUT:-target/profile-r3/$(date +%Y%m%d-%H%M%S)-$SCENARIO}
mkdir -p "$OUT"
command -v strace >/dev/null || { echo "strace is needed" >&2; exit 1; }

if [ -z "${NATSD:-}" ]; then
    cargo build --release -p natsd >&2
    NATSD=target/release/natsd
fi

PIDS=()
STRACES=()
cleanup() {
    # Only the processes this script started.
    local p
    for p in "${STRACES[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${STRACES[@]}" "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$OUT"/store-*
}
trap cleanup EXIT INT TERM

wait_port() {
    for _ in $(seq 1 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2
    return 1
}

for i in 0 1 2; do
    routes=
    for j in 0 1 2; do
        [ "$j" -eq "$i" ] || routes="${routes:+$routes,}nats://127.0.0.1:$((PORT + 100 + j))"
    done
    mkdir -p "$OUT/store-$i"
    "$NATSD" -a 127.0.0.1 -p "$((PORT + i))" -m "$((PORT + 200 + i))" -n "r3n$i" \
        --cluster_name r3 --cluster "nats://127.0.0.1:$((PORT + 100 + i))" --routes "$routes" \
        -js -sd "$OUT/store-$i" >"$OUT/node$i.log" 2>&1 &
    PIDS+=($!)
done
for i in 0 1 2; do wait_port "$((PORT + i))"; done
for i in 0 1 2; do
    for _ in $(seq 1 300); do
        curl -s "http://127.0.0.1:$((PORT + 200 + i))/routez" | grep -Eq '"num_routes": ?2' &&
            curl -s "http://127.0.0.1:$((PORT + 200 + i))/healthz" | grep -Eq '"status": ?"ok"' && break
        sleep 0.1
    done
done

# Every thread of each node; threads started later (blocking fsync threads) are followed.
for i in 0 1 2; do
    [ "$SYSCALLS" = none ] && break
    tids=()
    for t in /proc/"${PIDS[$i]}"/task/*; do tids+=(-p "${t##*/}"); done
    strace -f -c -e trace="$SYSCALLS" -o "$OUT/strace-$i.txt" "${tids[@]}" 2>/dev/null &
    STRACES+=($!)
done
sleep 1 # strace attaches before the load starts

# Context switches of every thread of a node so far (threads that exited meanwhile are lost,
# so the figure is a floor).
switches() {
    cat /proc/"$1"/task/*/status 2>/dev/null |
        awk '/^(non)?voluntary_ctxt_switches/ { n += $2 } END { print n + 0 }'
}
csw0=()
for i in 0 1 2; do csw0+=("$(switches "${PIDS[$i]}")"); done

"$NATSD" bench --url "nats://127.0.0.1:$PORT" --replicas 3 --storage file --size "$SIZE" \
    --msgs "$MSGS" --duration 600 --timeout 900 "$SCENARIO" | tee "$OUT/bench.txt"
csw1=()
for i in 0 1 2; do csw1+=("$(switches "${PIDS[$i]}")"); done
for p in "${STRACES[@]}"; do kill -INT "$p" 2>/dev/null || true; done
for p in "${STRACES[@]}"; do wait "$p" 2>/dev/null || true; done
STRACES=()

msgs=$(grep -m1 '^{' "$OUT/bench.txt" | grep -oE '"msgs":[0-9.]+' | head -1 | cut -d: -f2 | cut -d. -f1)
msgs=${msgs:-$MSGS}
for i in 0 1 2; do
    echo "--- node $i"
    awk -v c="$((csw1[i] - csw0[i]))" -v m="$msgs" -v s="$SYSCALLS" \
        'BEGIN { printf "  context switches per 1000 msgs%s: %.0f\n", s == "none" ? "" : " (strace adds its own)", c * 1000 / m }'
    [ "$SYSCALLS" = none ] && continue
    # strace -c rows: % time, seconds, usecs/call, calls, [errors,] syscall.
    awk '$1 ~ /^[0-9.]+$/ && $NF != "total" { print "  " $NF ": " $4 }' "$OUT/strace-$i.txt"
    awk -v m="$msgs" '$NF == "fsync" || $NF == "fdatasync" { n += $4 }
        END { printf "  fsyncs per 1000 msgs: %.1f\n", n * 1000 / m }' "$OUT/strace-$i.txt"
done
