# Sourced by the benchmarks: podman as this machine runs it, in a store of the
# benchmark's own, and the pod every benchmark times against the launcher's.

# podman_store DIR: sets P (the podman command line) and CONTAINERS_CONF for a store
# under DIR, with what podman needs here: cgroupfs, runc, and the ulimits the machine
# allows (it refuses raising nofile/nproc past these); loads the pause image. Its run
# root and temporary files are on a tmpfs, as under /run on a host (bench/host.sh).
podman_store() {
    local store=$1
    mkdir -p "$store"
    run_dir "$store/run"
    cat > "$store/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
CONF
    export CONTAINERS_CONF=$store/containers.conf
    P=(podman --root "$store/root" --runroot "$store/run/root" --tmpdir "$store/run/tmp" --storage-driver vfs --events-backend none)
    "${P[@]}" load -q -i "$(dirname "${BASH_SOURCE[0]}")/../build/pause-image.tar" >/dev/null 2>&1 || true
}

# podman_pod NAME NETWORK: pod create + 3 containers run + pod rm; prints the
# microseconds it took, or, failing, podman's last line of error on stderr.
podman_pod() {
    local t0 t1 out
    now t0
    if out=$("${P[@]}" pod create --name "$1" --infra-image localhost/pause:0.1.0 --network "$2" 2>&1) &&
       out=$(for c in a b c; do "${P[@]}" run -d --pod "$1" localhost/pause:0.1.0 || exit 1; done 2>&1) &&
       out=$("${P[@]}" pod rm -f "$1" 2>&1); then
        now t1
        echo $(( (t1 - t0) / 1000 ))
    else
        echo "$out" | tail -n 1 >&2
        "${P[@]}" pod rm -f "$1" >/dev/null 2>&1 || true
        return 1
    fi
}

# podman_release DIR: unmounts and removes the store.
podman_release() {
    grep "$1" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount 2>/dev/null || true
    rm -rf "$1"
}
