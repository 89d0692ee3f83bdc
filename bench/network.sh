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
if [ -z "${BENCH_NETNS:-}" ]; then
    exec env BENCH_NETNS=1 unshare --net --mount --propagation private -- "$0" "$@"
fi
mount -t tmpfs -o mode=0755 bench /var/lib
ip link set lo up
runs=${BENCH_LAUNCHER_RUNS:-20}
work=$(mktemp -d)
cgparent=launcher-netbench-$$
export LAUNCHER_ROOT=$work/root LAUNCHER_CGROUP_PARENT=$cgparent LAUNCHER_CNI_CONF_DIR=$work/net.d
unset LAUNCHER_NETWORK
L=("$bindir/launcher")
cleanup() {
    for p in $(ls "$work/root" 2>/dev/null); do "${L[@]}" down "$p" --grace-period 0 >/dev/null 2>&1 || true; done
    rmdir "$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)/$cgparent" 2>/dev/null || true
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
        t0=$(date +%s%N)
        "${L[@]}" up -d "${flag[@]}" --name "n$i" -c a='sleep 600' -c b='sleep 600' -c c='sleep 600' >/dev/null
        "${L[@]}" down "n$i" --grace-period 0 >/dev/null
        all+=("$(us "$t0" "$(date +%s%N)")")
    done
    took[$net]=$(printf '%s\n' "${all[@]}" | median)
done

# podman: pod create + 3 run + pod rm, on its bridge network and with none.
store=$work/podman
mkdir -p "$store"
cat > "$store/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
EOF
export CONTAINERS_CONF=$store/containers.conf
P=(podman --root "$store/root" --runroot "$store/run" --tmpdir "$store/tmp" --storage-driver vfs --events-backend none)
"${P[@]}" load -q -i "$here/../build/pause-image.tar" >/dev/null 2>&1 || true
declare -A ptook pwhy
for net in bridge none; do
    prun=()
    for i in 1 2 3; do
        t0=$(date +%s%N)
        if out=$("${P[@]}" pod create --name "nb$i" --infra-image localhost/pause:0.1.0 --network "$net" 2>&1) &&
           out=$(for c in a b c; do "${P[@]}" run -d --pod "nb$i" localhost/pause:0.1.0 || exit 1; done 2>&1) &&
           out=$("${P[@]}" pod rm -f "nb$i" 2>&1); then
            prun+=("$(us "$t0" "$(date +%s%N)")")
        else
            pwhy[$net]=$(echo "$out" | tail -n 1)
            "${P[@]}" pod rm -f "nb$i" >/dev/null 2>&1 || true
            break
        fi
    done
    [ ${#prun[@]} -eq 0 ] || ptook[$net]=$(printf '%s\n' "${prun[@]}" | median)
done
grep "$store" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount 2>/dev/null || true

echo
echo "with networking: 3-container pod up -d + down, median of $runs runs (podman: of 3)"
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
