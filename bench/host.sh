# Sourced by the benchmarks: the file systems a pod's runtime has on a host.
#
# The launcher's state root is /run/launcher, podman's run root /run/containers: on a
# host that boots with systemd /run is a tmpfs, and so they are here, in a mount
# namespace of the benchmark's own (the mounts go with it). This machine's own /run
# is a directory of its ext4 root, where each status update's rename(2) over the old
# file starts a write-back (ext4's auto_da_alloc): a cost no host with a tmpfs /run
# pays. Data (logs, volumes) stays on the disk, as /var/lib is.

# now VAR: sets VAR to the time in ns, from bash's own clock (EPOCHREALTIME, whose
# decimal mark is the locale's): `$(date +%s%N)` forks and execs inside the interval
# it measures, ~1 ms here, which every figure would carry, the floor's included.
now() { printf -v "$1" '%s000' "${EPOCHREALTIME/[.,]/}"; }

# own_mount_namespace SCRIPT ARGS...: runs the script again, once, in a mount
# namespace of its own.
own_mount_namespace() {
    [ -n "${BENCH_MOUNTNS:-}" ] || exec env BENCH_MOUNTNS=1 unshare --mount --propagation private -- "$@"
}

# run_dir DIR: makes DIR a tmpfs, as /run is (in the namespace of own_mount_namespace);
# `umount DIR` before removing it.
run_dir() {
    mkdir -p "$1"
    mount -t tmpfs -o mode=0755 bench-run "$1"
}
