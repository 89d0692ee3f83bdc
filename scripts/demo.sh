#!/bin/sh
# make demo: a real pod. Two containers talk over the pod's own 127.0.0.1, the pod
# runs under a memory and a pids limit, then status, exec, logs and down.
# POSIX sh: the same script runs on the host and inside the test VM (busybox).
#
# usage: scripts/demo.sh BIN_DIR
set -eu
bin=$1
L="$bin/launcher"
say() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "pause $("$bin/pause" --version | cut -d' ' -f2): $(wc -c < "$bin/pause") bytes, static"
www=$(mktemp -d)
echo "hello from the pod's web server" > "$www/index.html"
trap '"$L" down demo --grace-period 0 >/dev/null 2>&1 || true; rm -rf "$www"' EXIT

say "start a pod: a web server and a client on the pod's localhost, 64Mi of memory, 64 pids"
run "$L" up -d --name demo --memory 64Mi --pids 64 \
    -c "web=busybox httpd -f -p 127.0.0.1:8080 -h $www" \
    -c "client=sh -c 'until busybox wget -qO- http://127.0.0.1:8080/; do sleep 0.2; done; sleep 3600'"
i=0
until "$L" logs demo -c client | grep -q hello; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "the client got no answer" >&2; exit 1; }; sleep 0.1
done

say "pods"
run "$L" ps -o wide
say "the client's log (it fetched the page over 127.0.0.1 inside the pod)"
run "$L" logs demo -c client
say "inside the pod: hostname, and ps shows only the pod's processes (pause is PID 1)"
run "$L" exec demo -- sh -c 'hostname; ps'
cg=$("$L" status demo | sed -n 's/.*"launcher\/cgroup": "\(.*\)".*/\1/p')
say "the limits, written to the pod's cgroup $cg"
echo "memory.max = $(cat "$cg/memory.max")   pids.max = $(cat "$cg/pids.max")"
say "status, as a Kubernetes Pod (abridged)"
"$L" status demo -o yaml | sed -n '/^status:/,$p' | head -n 24
say "down: SIGTERM, grace period, then everything is gone"
run "$L" down demo
run "$L" ps
[ ! -e "$cg" ] && echo "cgroup $cg removed"
trap 'rm -rf "$www"' EXIT
