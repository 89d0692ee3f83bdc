#!/bin/bash
# make bench, with networking: a 3-container pod's up -d + down on the default CNI
# network and with --network none, beside podman's pod on its bridge network and with
# --network none, in one run. All of it inside a network and mount namespace of the
# benchmark's own (its bridge, NAT rules and IPAM files die with it): the machine's
# own network is never touched.
#
# usage: bench/network.sh BIN_DIR
set -euo pipefail
bindir=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/podman.sh
. "$here/podman.sh"
# shellcheck source=bench/host.sh
. "$here/host.sh"
if [ -z "${BENCH_NETNS:-}" ]; then
    exec env BENCH_NETNS=1 unshare --net --mount --propagation private -- "$0" "$@"
fi
mount -t tmpfs -o mode=0755 bench /var/lib
ip link set lo up
runs=${BENCH_LAUNCHER_RUNS:-20}
work=$(mktemp -d)
cgparent=launcher-netbench-$$
run_dir "$work/root"
export LAUNCHER_ROOT=$work/root LAUNCHER_DATA_ROOT=$work/data LAUNCHER_CGROUP_PARENT=$cgparent LAUNCHER_CNI_CONF_DIR=$work/net.d
unset LAUNCHER_NETWORK
L=("$bindir/launcher")
cleanup() {
    for p in $(ls "$work/root" 2>/dev/null); do "${L[@]}" down "$p" --grace-period 0 >/dev/null 2>&1 || true; done
    rmdir "$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)/$cgparent" 2>/dev/null || true
    umount "$work/root"
    rm -rf "$work"
}
trap cleanup EXIT
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; print m}'; }
us() { echo $(( ($2 - $1) / 1000 )); }
fmt() { awk -v us="$1" 'BEGIN { printf "%.1f", us / 1000 }'; }

# launcher: up -d (all 3 running) + down, per network.
declare -A took
for net in default none; do
    flag=()
    [ "$net" = none ] && flag=(--network none)
    all=()
    for i in $(seq "$runs"); do
        now t0
        "${L[@]}" up -d "${flag[@]}" --name "n$i" -c a='sleep 600' -c b='sleep 600' -c c='sleep 600' >/dev/null
        "${L[@]}" down "n$i" --grace-period 0 >/dev/null
        now t1
        all+=("$(us "$t0" "$t1")")
    done
    took[$net]=$(printf '%s\n' "${all[@]}" | median)
done

# The floor: the plugins a pod without published ports or bandwidth annotations needs
# (those of the list without capabilities: the bridge, which the launcher has built in
# for its own list: this is what the built-in replaces), by hand: ADD in order chaining
# prevResult against a bare network namespace; then, as the launcher does once the
# pod's processes are gone, the namespace let go and DEL in reverse with the result
# and no namespace (the JSON is spliced by bash: nothing but the plugins is timed).
python3 - "$work/net.d/90-launcher.conflist" "$work/floor" <<'PY'
import json, os, sys
lst = json.load(open(sys.argv[1]))
os.makedirs(sys.argv[2])
for i, p in enumerate(q for q in lst["plugins"] if "capabilities" not in q):
    p = dict(p, name=lst["name"], cniVersion=lst["cniVersion"])
    open(f"{sys.argv[2]}/{i}-{p['type']}", "w").write(json.dumps(p))
PY
prev=""
add() {  # NETNS ID
    local f conf
    export CNI_NETNS=$1 CNI_CONTAINERID=$2 CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni \
        CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=$2"
    prev=""
    for f in $(ls "$work/floor"); do
        conf=$(<"$work/floor/$f")
        [ -z "$prev" ] || conf="${conf%\}},\"prevResult\":$prev}"
        prev=$(CNI_COMMAND=ADD "/usr/lib/cni/${f#*-}" <<<"$conf")
    done
}
del() {
    local f conf
    for f in $(ls -r "$work/floor"); do
        conf=$(<"$work/floor/$f")
        CNI_NETNS="" CNI_COMMAND=DEL "/usr/lib/cni/${f#*-}" <<<"${conf%\}},\"prevResult\":$prev}" >/dev/null
    done
}
floor=()
for i in $(seq "$runs"); do
    unshare --net sleep 600 &
    holder=$!
    until [ "$(readlink /proc/$holder/ns/net)" != "$(readlink /proc/self/ns/net)" ]; do sleep 0.01; done
    now t0
    add "/proc/$holder/ns/net" "floor$i"
    now t1
    kill "$holder"; wait "$holder" 2>/dev/null || true
    now t2
    del
    now t3
    floor+=("$(( $(us "$t0" "$t1") + $(us "$t2" "$t3") ))")
done
took[floor]=$(printf '%s\n' "${floor[@]}" | median)

# podman: pod create + 3 run + pod rm, on its bridge network and with none.
store=$work/podman
podman_store "$store"
declare -A ptook pwhy
for net in bridge none; do
    prun=()
    for i in $(seq "${BENCH_PODMAN_RUNS:-5}"); do
        t=$(podman_pod "nb$i" "$net" 2>"$work/why") || { pwhy[$net]=$(cat "$work/why"); break; }
        prun+=("$t")
    done
    [ ${#prun[@]} -eq 0 ] || ptook[$net]=$(printf '%s\n' "${prun[@]}" | median)
done
podman_release "$store"

echo
echo "with networking: 3-container pod up -d + down, median of $runs runs (podman: of ${BENCH_PODMAN_RUNS:-5})"
printf '%-52s %10s %10s\n' "" "ms" "podman/this"
for pair in "default|bridge" "none|none"; do
    mine=${pair%|*} theirs=${pair#*|}
    printf '%-52s %10s\n' "launcher up -d + down, --network $mine" "$(fmt "${took[$mine]}")"
    if [ -n "${ptook[$theirs]:-}" ]; then
        printf '%-52s %10s %10s\n' "podman pod create + 3 run + pod rm, --network $theirs" "$(fmt "${ptook[$theirs]}")" \
            "$(awk -v p="${ptook[$theirs]}" -v l="${took[$mine]}" 'BEGIN { printf "%.1fx", p / l }')"
    else
        printf '%-52s %10s   %s\n' "podman pod create + 3 run + pod rm, --network $theirs" "n/a" "cannot run here: ${pwhy[$theirs]:-?}"
    fi
done
echo
printf '%-52s %10s\n' "floor: the pod's plugins run by hand, ADD + DEL" "$(fmt "${took[floor]}")"
printf '%-52s %10s %10s\n' "launcher, default network / (floor + none)" "" \
    "$(awk -v d="${took[default]}" -v f="${took[floor]}" -v n="${took[none]}" 'BEGIN { printf "%.2fx", d / (f + n) }')"
goal() { awk -v v="$1" -v max="$2" 'BEGIN { print (v <= max) ? "met" : "MISSED" }'; }
echo "goals:"
if [ -n "${ptook[bridge]:-}" ]; then
    x=$(awk -v p="${ptook[bridge]}" -v l="${took[default]}" 'BEGIN { print p / l }')
    printf '  %-56s %7.1fx  %s\n' "networked pod at least 20x faster than podman's bridge" "$x" "$(goal 20 "$x")"
fi
y=$(awk -v d="${took[default]}" -v f="${took[floor]}" -v n="${took[none]}" 'BEGIN { print d / (f + n) }')
printf '  %-56s %7.2fx  %s\n' "default network within 1.3x of (its plugins + none)" "$y" "$(goal "$y" 1.3)"
