#!/bin/sh
# make deb: a Debian package of the static binaries, their man pages and completions,
# installable with `apt install ./pod-launcher_VERSION_amd64.deb`. Needs only dpkg-deb.
#
# usage: scripts/deb.sh BIN_DIR OUT_DIR    (prints the package's path)
set -eu
[ $# -eq 2 ] || { echo "usage: $0 BIN_DIR OUT_DIR" >&2; exit 2; }
bin=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
version=$("$bin/launcher" --version | cut -d' ' -f2)
package=pod-launcher
deb=$out/${package}_${version}_amd64.deb
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"

ZSH_COMPLETIONS=share/zsh/vendor-completions "$here/install.sh" install "$bin" "$stage" /usr >/dev/null
# Debian policy: man pages compressed, a copyright file, nothing executable but programs.
gzip -9n "$stage"/usr/share/man/man1/*.1
install -d "$stage/usr/share/doc/$package"
cat > "$stage/usr/share/doc/$package/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: $package
License: Apache-2.0

Files: *
Copyright: the pod runtime's authors
License: Apache-2.0
 On Debian systems, the complete text of the Apache License, Version 2.0 can be
 found in /usr/share/common-licenses/Apache-2.0.
EOF
chmod 0644 "$stage/usr/share/doc/$package/copyright"

install -d "$stage/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<EOF
Package: $package
Version: $version
Architecture: amd64
Maintainer: pod runtime maintainers <maintainers@users.noreply.github.com>
Installed-Size: $size
Section: admin
Priority: optional
Recommends: containernetworking-plugins, iptables
Suggests: bash-completion
Description: pods of processes on one machine, as Kubernetes runs them
 launcher starts a pod of the host's own programs (no images) in the namespaces
 that pause holds, with cgroup v2 limits, a read-only view of the host's files
 under a writable layer per container, volumes, probes, hooks and a CNI network,
 and supervises it as the kubelet does. It reads Kubernetes Pod manifests.
 .
 pause is also the entrypoint of a pod's infra (sandbox) container for runc,
 crun, podman and containerd. Both programs are static.
EOF

mkdir -p "$out"
# Same files, same package: file times are the commit's, not the build's.
find "$stage" -exec touch -h -d "@${SOURCE_DATE_EPOCH:-0}" {} +
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
