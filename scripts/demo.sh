#!/bin/bash
# make demo: pause as PID 1 of a new PID namespace reaping an orphan.
set -euo pipefail
bindir=$1
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "pause $("$bindir/pause" --version | cut -d' ' -f2): $(stat -c %s "$bindir/pause") bytes, $(file -b "$bindir/pause" | cut -d, -f1,5)"
unshare --fork --pid --kill-child "$bindir/pause" &
outer=$!
trap 'kill -KILL $outer 2>/dev/null || true' EXIT
for _ in $(seq 100); do pause=$(cat /proc/$outer/task/$outer/children 2>/dev/null | awk '{print $1}'); [ -n "$pause" ] && [ "$(readlink /proc/$pause/exe)" = "$(readlink -f "$bindir/pause")" ] && break; sleep 0.01; done
say "pause is host PID $pause, PID $(awk '/^NSpid/ {print $3}' /proc/$pause/status) in its namespace, $(awk '/^VmRSS/ {print $2, $3}' /proc/$pause/status) resident"

say "a shell in the pod leaves an orphan behind (sleep 1) and exits"
orphan=$(nsenter -t "$pause" -p sh -c 'sleep 1 >/dev/null 2>&1 & echo $!')
host=$(grep -l "^NSpid:.*[[:space:]]$orphan\$" /proc/[0-9]*/status 2>/dev/null | head -1 | cut -d/ -f3)
echo "orphan: PID $orphan in the pod (host $host), parent now: $(awk '/^PPid/ {print $2}' /proc/$host/status) (pause)"
[ -n "$host" ] || { echo "orphan not found" >&2; exit 1; }
while [ -e /proc/$host ] && [ "$(awk '{print $3}' /proc/$host/stat 2>/dev/null)" != Z ]; do sleep 0.05; done
for _ in $(seq 100); do [ -e /proc/$host ] || break; sleep 0.01; done
[ -n "$host" ] && [ -e /proc/$host ] && echo "orphan is still a zombie: FAIL" || echo "orphan exited and was reaped: no zombie left"

say "kill 1 from inside the pod is ignored"
nsenter -t "$pause" -p sh -c 'kill -TERM 1'
sleep 0.2
echo "pause state: $(awk '{print $3}' /proc/$pause/stat) (still up)"

say "SIGTERM from outside: pause exits 0"
kill -TERM "$pause"
wait $outer && echo "exit status: $?"
