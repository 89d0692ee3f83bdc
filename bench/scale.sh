#!/bin/bash
# make bench, part 2: a few hundred pods on this machine. 200 pods of 2 containers
# started with `up -d` one after the other and then 8 at a time; `ps` and `status`
# at 200 pods; `down` of all the same way; then what is left (must be nothing).
# Goals (issue 13): 200 pods up in under 10 s, PSS per pod under 512 KiB, `ps` at
# 200 pods under 50 ms, nothing left.
#
# usage: bench/scale.sh BIN_DIR
set -euo pipefail
# shellcheck source=bench/host.sh
. "$(dirname "$0")/host.sh"
own_mount_namespace "$0" "$@"
bindir=$1
pods=${BENCH_PODS:-200}
width=${BENCH_PARALLEL:-8}
launcher=$bindir/launcher
pause=$bindir/pause
# The state on a tmpfs, as /run/launcher is on a host (bench/host.sh).
root=$(mktemp -d)
run_dir "$root"
cgmount=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
cgparent=launcher-scale-$$
# Through the environment, so that the functions xargs runs see them too.
export LAUNCHER_ROOT=$root LAUNCHER_CGROUP_PARENT=$cgparent LAUNCHER_DATA_ROOT=$(mktemp -d)
# Pods with only their loopback: the machine's own network is no benchmark's target.
export LAUNCHER_NETWORK=none
L=("$launcher")

cleanup() {
    for p in $(ls "$root" 2>/dev/null); do "${L[@]}" down "$p" --grace-period 0 >/dev/null 2>&1 || true; done
    umount "$root"
    rm -rf "$root" "$LAUNCHER_DATA_ROOT"
    rmdir "$cgmount/$cgparent" 2>/dev/null || true
}
trap cleanup EXIT

# percentile P of the numbers on stdin (nearest rank)
pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int((p*NR+99)/100); if (i<1) i=1; print a[i]}'; }
ms() { awk -v ns="$1" 'BEGIN { printf "%.1f", ns / 1e6 }'; }
rate() { awk -v n="$1" -v ns="$2" 'BEGIN { printf "%.1f", n / (ns / 1e9) }'; }
goal() { awk -v v="$1" -v max="$2" 'BEGIN { print (v < max) ? "met" : "MISSED" }'; }

# One `up -d` of pod $1, printing its duration in ns.
up_one() {
    local t0 t1
    now t0
    "$launcher" up -d --name "$1" -c a='sleep 600' -c b='sleep 600' >/dev/null
    now t1
    echo $((t1 - t0))
}
down_one() { "$launcher" down "$1" --grace-period 0 >/dev/null; }
export -f up_one down_one now
export launcher

# PSS (KiB) of the pod's supervisor and pause, from smaps_rollup.
pss_of_pod() {
    local status sup pau
    status=$("${L[@]}" status "$1")
    sup=$(sed -n 's/.*"launcher\/supervisor-pid": "\([0-9]*\)".*/\1/p' <<<"$status")
    pau=$(sed -n 's/.*"launcher\/pause-pid": "\([0-9]*\)".*/\1/p' <<<"$status")
    awk '/^Pss:/ {s += $2} END {print s}' "/proc/$sup/smaps_rollup" "/proc/$pau/smaps_rollup"
}

# What is left of the launcher's doing: processes (not zombies), cgroups, mounts, state.
leftovers() {
    local procs=0 exe state
    for d in /proc/[0-9]*; do
        exe=$(readlink "$d/exe" 2>/dev/null) || continue
        state=$(awk '{print $3}' "$d/stat" 2>/dev/null) || continue
        if [ "$state" != Z ] && { [ "$exe" = "$launcher" ] || [ "$exe" = "$pause" ]; }; then
            procs=$((procs + 1))
        fi
    done
    local cgroups mounts files
    cgroups=$(find "$cgmount/$cgparent" -mindepth 1 -type d 2>/dev/null | wc -l)
    mounts=$(grep -c " $root/" /proc/self/mountinfo || true) # below the root's own tmpfs
    files=$(find "$root" -mindepth 1 2>/dev/null | wc -l)
    echo "$procs processes, $cgroups cgroups, $mounts mounts, $files state files"
}

run() { # run LABEL PARALLEL
    local label=$1 par=$2 prefix=$3 t0 t1 t2 ups
    now t0
    if [ "$par" = 1 ]; then
        ups=$(for i in $(seq "$pods"); do up_one "$prefix$i"; done)
    else
        ups=$(seq "$pods" | sed "s/^/$prefix/" | xargs -P "$par" -I{} bash -c 'up_one {}')
    fi
    now t1
    local running
    running=$("${L[@]}" ps | grep -c ' 2/2 .*Running' || true)
    local ps_ns=() s e
    for _ in 1 2 3 4 5; do now s; "${L[@]}" ps >/dev/null; now e; ps_ns+=($((e - s))); done
    now s
    for i in $(seq "$pods"); do "${L[@]}" status "$prefix$i" >/dev/null; done
    now e
    local status_ns=$((e - s))
    local pss_total=0
    for i in $(seq "$pods"); do pss_total=$((pss_total + $(pss_of_pod "$prefix$i"))); done
    now t1b
    if [ "$par" = 1 ]; then
        for i in $(seq "$pods"); do down_one "$prefix$i"; done
    else
        seq "$pods" | sed "s/^/$prefix/" | xargs -P "$par" -I{} bash -c 'down_one {}'
    fi
    now t2
    local up_total=$((t1 - t0)) down_total=$((t2 - t1b))
    local p50 p99 psmed pss_pod
    p50=$(pct 50 <<<"$ups") p99=$(pct 99 <<<"$ups")
    psmed=$(printf '%s\n' "${ps_ns[@]}" | pct 50)
    pss_pod=$((pss_total / pods))
    printf '%-22s %9s %9s %9s %9s %9s %9s %9s %10s\n' "$label" \
        "$(ms "$up_total")" "$(rate "$pods" "$up_total")" "$(ms "$p50")" "$(ms "$p99")" \
        "$(rate "$pods" "$down_total")" "$(ms "$psmed")" "$(ms $((status_ns / pods)))" "$pss_pod"
    echo "  $running of $pods pods Running 2/2 before down; left after: $(leftovers)"
    echo "  goals: 200 up < 10 s $(goal "$up_total" 10000000000), PSS/pod < 512 KiB $(goal "$pss_pod" 512), ps < 50 ms $(goal "$psmed" 50000000)"
}

echo
echo "launcher at scale: $pods pods of 2 containers (sleep), $(nproc) cores, no networking"
printf '%-22s %9s %9s %9s %9s %9s %9s %9s %10s\n' "" "up all ms" "up pod/s" "up p50" "up p99" \
    "down pod/s" "ps ms" "status ms" "PSS/pod KiB"
run "one at a time" 1 s
run "$width at a time" "$width" p
