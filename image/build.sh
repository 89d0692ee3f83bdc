#!/bin/sh
# make image: an OCI image FROM scratch holding only /pause as its entrypoint,
# built with umoci, written as an oci-archive that `podman load -i` accepts.
#
# usage: image/build.sh PAUSE_BINARY OUT.tar
set -eu
pause=$1 out=$2
version=$("$pause" --version | cut -d' ' -f2)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

layout=$work/oci
umoci init --layout "$layout"
umoci new --image "$layout:$version"
umoci unpack --image "$layout:$version" "$work/bundle" >/dev/null
rm -rf "$work/bundle/rootfs"/*
install -m 0755 "$pause" "$work/bundle/rootfs/pause"
# A fixed mtime keeps the layer digest the same for the same binary.
touch -h -d @0 "$work/bundle/rootfs/pause" "$work/bundle/rootfs"
umoci repack --image "$layout:$version" --history.created 1970-01-01T00:00:00Z \
    --history.created_by "COPY pause /pause" "$work/bundle"
umoci config --image "$layout:$version" \
    --author "pod runtime" --created 1970-01-01T00:00:00Z \
    --architecture amd64 --os linux \
    --config.entrypoint /pause --clear config.cmd \
    --config.stopsignal SIGTERM --config.workingdir / \
    --history.created 1970-01-01T00:00:00Z --history.created_by "ENTRYPOINT [\"/pause\"]" \
    --tag "$version"
umoci gc --layout "$layout"
# umoci tags are bare tags; runtimes name a loaded oci-archive after the ref.name
# annotation, so give it the image's full name.
sed -i "s|\"org.opencontainers.image.ref.name\":\"$version\"|\"org.opencontainers.image.ref.name\":\"localhost/pause:$version\"|" \
    "$layout/index.json"
grep -q "localhost/pause:$version" "$layout/index.json"
mkdir -p "$(dirname "$out")"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$layout" -cf "$out" .
echo "image: $out (pause:$version) $(stat -c %s "$out") bytes"

# Prove it loads the way users load it, into a throwaway store.
store=$work/store
podman --root "$store/root" --runroot "$store/run" --tmpdir "$store/tmp" \
    --storage-driver vfs --events-backend none load -q -i "$out" | grep -qx "Loaded image: localhost/pause:$version" || {
    echo "image: podman load of $out failed" >&2; exit 1; }
echo "image: podman load -i $out -> localhost/pause:$version"
