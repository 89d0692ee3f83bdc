#!/bin/bash
# make bench: pause beside the inits people use for the same job, in one run.
# Figures, then ratio = peer / pause (above 1.0: pause is smaller or faster).
#
# usage: bench/run.sh BIN_DIR
set -euo pipefail
bindir=$1
runs=${BENCH_RUNS:-5}
orphans=${BENCH_ORPHANS:-10000}

# name | command started as PID 1 of a new PID namespace
inits=(
    "pause|$bindir/pause"
    "catatonit -P|$(command -v catatonit) -P"
    "tini-static|$(command -v tini-static) -s -- sleep 100000"
    "dumb-init|$(command -v dumb-init) sleep 100000"
)

median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; print m}'; }

started=()
cleanup() { for p in "${started[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

declare -A size rss reap
for entry in "${inits[@]}"; do
    name=${entry%%|*} cmd=${entry#*|}
    exe=${cmd%% *}
    size[$name]=$(stat -L -c %s "$exe")
    unshare --fork --pid --kill-child $cmd &
    outer=$!
    started+=("$outer")
    init=""
    for _ in $(seq 200); do
        init=$(cat "/proc/$outer/task/$outer/children" 2>/dev/null | awk '{print $1}')
        [ -n "$init" ] && [ "$(readlink "/proc/$init/exe")" != "$(readlink -f /usr/bin/unshare)" ] && break
        sleep 0.01
    done
    sleep 0.2 # let a dynamically linked peer finish loading before its RSS is read
    rss[$name]=$(awk '/^VmRSS/ {print $2}' "/proc/$init/status")
    reap[$name]=$(for _ in $(seq "$runs"); do "$bindir/reap-bench" "$init" "$orphans"; done | median)
    kill -KILL "$outer"
    wait "$outer" 2>/dev/null || true
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", a / b }'; }
echo
echo "pause vs. peers ($(uname -r), $(nproc) cores; reap: median of $runs runs)"
printf '%-14s %12s %8s %10s %8s %16s %8s\n' init "size (B)" ratio "RSS (KiB)" ratio "reap ${orphans} (ms)" ratio
for entry in "${inits[@]}"; do
    name=${entry%%|*}
    printf '%-14s %12s %8s %10s %8s %16s %8s\n' "$name" \
        "${size[$name]}" "$(ratio "${size[$name]}" "${size[pause]}")" \
        "${rss[$name]}" "$(ratio "${rss[$name]}" "${rss[pause]}")" \
        "${reap[$name]}" "$(ratio "${reap[$name]}" "${reap[pause]}")"
done
