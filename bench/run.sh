#!/bin/bash
# make bench: pause beside the inits people use for the same job, in one run.
# Figures, then ratio = peer / pause (above 1.0: pause is smaller or faster).
#
# usage: bench/run.sh BIN_DIR
set -euo pipefail
bindir=$1
# shellcheck source=bench/podman.sh
. "$(dirname "$0")/podman.sh"
# shellcheck source=bench/host.sh
. "$(dirname "$0")/host.sh"
own_mount_namespace "$0" "$@"
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

# ---- launcher: a 3-container pod up (all running) and down ----
# BENCH_BASELINE=DIR (a launcher and its pause, e.g. built from an older commit) is
# measured in the same runs, interleaved, and printed beside this one.
launchers=("this|$bindir/launcher")
[ -z "${BENCH_BASELINE:-}" ] || launchers+=("baseline|$BENCH_BASELINE/launcher")
# The state on a tmpfs, as /run/launcher is on a host (bench/host.sh).
root=$(mktemp -d)
run_dir "$root"
# Logs and volumes in a directory of the benchmark's own, not /var/lib/launcher.
export LAUNCHER_DATA_ROOT=$(mktemp -d)
cgparent=launcher-bench-$$
# Pods with only their loopback here; the networked figures further down run in a
# network namespace of the benchmark's own, never on the machine's network.
export LAUNCHER_NETWORK=none
runs_l=${BENCH_LAUNCHER_RUNS:-30}
cleanup_launcher() {
    for entry in "${launchers[@]}"; do
        for p in $(ls "$root" 2>/dev/null); do "${entry#*|}" --root "$root" --cgroup-parent "$cgparent" down "$p" --grace-period 0 >/dev/null 2>&1 || true; done
    done
    umount "$root"
    rm -rf "$root" "$LAUNCHER_DATA_ROOT"
    rmdir "$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)/$cgparent" 2>/dev/null || true
}
trap 'cleanup; cleanup_launcher' EXIT
ms() { echo $(( ($2 - $1) / 1000 )); } # ns -> us

floor=()
declare -A up down sup_rss
for i in $(seq "$runs_l"); do
    now t0; unshare -fpniu --mount-proc true; now t1
    floor+=("$(ms "$t0" "$t1")")
    for entry in "${launchers[@]}"; do
        label=${entry%%|*} L=("${entry#*|}" --root "$root" --cgroup-parent "$cgparent")
        now t0
        "${L[@]}" up -d --name "b$i" -c a='sleep 600' -c b='sleep 600' -c c='sleep 600' >/dev/null
        now t1
        if [ "$i" = 1 ]; then
            sup=$("${L[@]}" status "b$i" | sed -n 's/.*"launcher\/supervisor-pid": "\([0-9]*\)".*/\1/p')
            sup_rss[$label]=$(awk '/^VmRSS/ {print $2}' "/proc/$sup/status")
        fi
        "${L[@]}" down "b$i" --grace-period 0 >/dev/null
        now t2
        up[$label]+=" $(ms "$t0" "$t1")" down[$label]+=" $(ms "$t1" "$t2")"
    done
done
med() { printf '%s\n' "$@" | median; }
f=$(med "${floor[@]}")
fmt() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'; }

# podman: pod create + 3 containers + rm, when this machine can run it.
podman_ms="" podman_why=""
if command -v podman >/dev/null; then
    store=$(mktemp -d)
    podman_store "$store"
    if ! podman_ms=$(podman_pod bench none 2>"$store/why"); then
        podman_ms="" podman_why=$(cat "$store/why")
    fi
    podman_release "$store"
else
    podman_why="podman is not installed"
fi

echo
echo "launcher: 3-container pod, median of $runs_l runs (ratio = figure / floor)"
printf '%-44s %10s %8s\n' "" "ms" ratio
printf '%-44s %10s %8s\n' "floor: unshare -fpniu --mount-proc true" "$(fmt "$f")" "1.0x"
for entry in "${launchers[@]}"; do
    label=${entry%%|*} tag=""
    [ "$label" = this ] || tag=" [$label]"
    # shellcheck disable=SC2086 # word splitting of the list of figures is meant
    u=$(med ${up[$label]}) d=$(med ${down[$label]})
    [ "$label" = this ] && this_ud=$(awk -v u="$u" -v d="$d" 'BEGIN { print u + d }')
    printf '%-44s %10s %8s\n' "launcher up -d (until all 3 run)$tag" "$(fmt "$u")" "$(ratio "$u" "$f")"
    printf '%-44s %10s %8s\n' "launcher down$tag" "$(fmt "$d")" "$(ratio "$d" "$f")"
done
if [ -n "$podman_ms" ]; then
    printf '%-44s %10s %8s   (launcher up+down is %s faster)\n' "podman pod create + 3 run + pod rm" "$(fmt "$podman_ms")" "$(ratio "$podman_ms" "$f")" "$(ratio "$podman_ms" "$this_ud")"
else
    printf '%-44s %10s   %s\n' "podman pod create + 3 run + pod rm" "n/a" "cannot run here: $podman_why"
fi
for entry in "${launchers[@]}"; do
    label=${entry%%|*}
    echo "supervisor resident set [$label]: ${sup_rss[$label]} KiB (budget 2048 KiB)"
done

# The goals of issue 25, met or missed, in this run.
goal() { awk -v v="$1" -v max="$2" 'BEGIN { print (v <= max) ? "met" : "MISSED" }'; }
u=$(med ${up[this]})
echo
echo "goals:"
printf '  %-56s %8s  %s\n' "launcher up -d within 2x the floor" "$(ratio "$u" "$f")" "$(goal "$(awk -v u="$u" -v f="$f" 'BEGIN { print u / f }')" 2)"
if [ -n "$podman_ms" ]; then
    faster=$(awk -v p="$podman_ms" -v t="$this_ud" 'BEGIN { print p / t }')
    printf '  %-56s %8s  %s\n' "up+down at least 100x faster than podman (no network)" "$(ratio "$podman_ms" "$this_ud")" "$(goal 100 "$faster")"
fi

# Where one more up -d and down of the same pod spend their time (LAUNCHER_TIMINGS).
echo
L=("$bindir/launcher" --root "$root" --cgroup-parent "$cgparent")
LAUNCHER_TIMINGS=1 "${L[@]}" up -d --name phases -c a='sleep 600' -c b='sleep 600' -c c='sleep 600' 2>&1 >/dev/null
LAUNCHER_TIMINGS=1 "${L[@]}" down phases --grace-period 0 2>&1 >/dev/null
