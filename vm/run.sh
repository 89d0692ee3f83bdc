#!/bin/sh
# make vm-test: boots Debian's cloud kernel under qemu (software emulation) with a
# busybox initramfs holding the static binaries and the static test binaries, runs
# the integration tests there with cgroup v2 controllers, and parses the verdict.
#
# usage: vm/run.sh BIN_DIR TEST_BIN...
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bindir=$1; shift
work=${VM_WORK:-$here/../build/vm}
timeout_s=${VM_TIMEOUT:-1500}

kernel=${VM_KERNEL:-$(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n 1)}
[ -n "$kernel" ] && [ -r "$kernel" ] || {
    echo "vm-test: no cloud kernel in /boot: run 'make deps' (linux-image-cloud-amd64)" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || {
    echo "vm-test: qemu-system-x86_64 missing: run 'make deps'" >&2; exit 1; }
[ $# -gt 0 ] || [ "${VM_RUN:-}" = demo ] || { echo "vm-test: no test binaries given" >&2; exit 1; }

rm -rf "$work"
root=$work/root
mkdir -p "$root/bin" "$root/opt/pod/bin" "$root/opt/pod/tests" "$root/proc" "$root/sys" \
         "$root/dev" "$root/tmp" "$root/run" "$root/etc" "$root/root"
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp "${VM_INIT:-$here/init}" "$root/init"  # VM_INIT: a different init, for debugging
cp "$bindir/pause" "$root/opt/pod/bin/"
for b in launcher probe-target; do [ ! -e "$bindir/$b" ] || cp "$bindir/$b" "$root/opt/pod/bin/"; done
for t in "$@"; do
    file "$t" | grep -q 'statically linked' || { echo "vm-test: $t is not static" >&2; exit 1; }
    cp "$t" "$root/opt/pod/tests/"
done
# Real runtime tools for the image test, with the shared libraries they load.
for tool in crun umoci; do
    path=$(command -v "$tool") || { echo "vm-test: $tool missing: run 'make deps'" >&2; exit 1; }
    mkdir -p "$root/usr/bin" && cp "$path" "$root/usr/bin/$tool"
    for lib in $(ldd "$path" | grep -o '/[^ ]*'); do
        mkdir -p "$root$(dirname "$lib")" && cp -L "$lib" "$root$lib"
    done
done
# Networking for the network tests: the CNI plugins they use, the tools the plugins
# and tests run (iproute2's ip and tc, iptables with its extensions), all with their
# shared libraries, and the kernel modules for veth, bridge, nf_tables/xtables and
# traffic control (the cloud kernel has them as modules), with their dependencies.
copy_with_libs() {  # FILE DEST_DIR
    mkdir -p "$2" && cp -L "$1" "$2/"
    for lib in $(ldd "$1" | grep -o '/[^ ]*'); do
        [ -e "$root$lib" ] || { mkdir -p "$root$(dirname "$lib")" && cp -L "$lib" "$root$lib"; }
    done
}
for p in bridge host-local portmap bandwidth loopback; do
    [ -x "/usr/lib/cni/$p" ] || { echo "vm-test: /usr/lib/cni/$p missing: run 'make deps'" >&2; exit 1; }
    copy_with_libs "/usr/lib/cni/$p" "$root/usr/lib/cni"
done
# systemd and systemctl, for the README's unit run by a real systemd (systemd.rs), and
# util-linux's unshare (busybox's has no cgroup namespace) and nsenter to reach it.
copy_with_libs "$(readlink -f /lib/systemd/systemd)" "$root/lib/systemd"
for tool in systemctl unshare nsenter; do
    copy_with_libs "$(command -v "$tool")" "$root/usr/bin"
done
# containerd with its runc shim and ctr, for the pause image under the CRI (cri.rs).
for tool in containerd containerd-shim-runc-v2 ctr; do
    path=$(command -v "$tool") || { echo "vm-test: $tool missing: run 'make deps'" >&2; exit 1; }
    copy_with_libs "$path" "$root/usr/bin"
done
for tool in ip tc xtables-nft-multi; do
    path=$(command -v "$tool") || { echo "vm-test: $tool missing: run 'make deps'" >&2; exit 1; }
    copy_with_libs "$path" "$root/usr/sbin"
done
for name in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    ln -sf xtables-nft-multi "$root/usr/sbin/$name"
done
xt=/usr/lib/x86_64-linux-gnu/xtables
mkdir -p "$root$xt" && cp "$xt"/*.so "$root$xt/"
for so in "$root$xt"/*.so; do
    for lib in $(ldd "$so" | grep -o '/[^ ]*'); do
        [ -e "$root$lib" ] || { mkdir -p "$root$(dirname "$lib")" && cp -L "$lib" "$root$lib"; }
    done
done
kver=$(basename "$kernel" | sed 's/^vmlinuz-//')
mods="overlay veth bridge br_netfilter ifb sch_tbf sch_ingress cls_u32 act_mirred nf_tables nft_compat
      nft_nat nft_chain_nat nft_masq nf_nat xt_addrtype xt_comment xt_multiport xt_mark xt_MASQUERADE xt_nat
      xt_conntrack xt_tcpudp iptable_nat iptable_filter iptable_mangle ip6table_nat
      ip6table_filter ip6table_mangle"
for m in $mods; do
    modprobe -S "$kver" --show-depends "$m" 2>/dev/null | awk '$1 == "insmod" {print $2}'
done | sort -u | while read -r ko; do
    mkdir -p "$root$(dirname "$ko")" && cp "$ko" "$root$ko"
done
cp /lib/modules/"$kver"/modules.* "$root/lib/modules/$kver/"
echo "$mods" | tr -s ' \n' ' ' > "$root/etc/pod-modules"
mkdir -p "$root/var/lib"
[ -z "${VM_IMAGE:-}" ] || cp "$VM_IMAGE" "$root/opt/pod/pause-image.tar"
cp "$here/../scripts/demo.sh" "$root/opt/pod/demo.sh"
cp "$here/smoke" "$root/opt/pod/smoke"
cp "$here/../README.md" "$root/opt/pod/README.md"
# Mount points: the CI recipe's image has the binaries in /usr/local/bin and writes
# /etc/cni (nested.rs).
mkdir -p "$root/usr/local/bin" "$root/etc/cni"
echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"
echo "root:x:0:" > "$root/etc/group"
# A node's files that containerd copies into a hostNetwork sandbox (cri.rs).
echo "127.0.0.1 localhost" > "$root/etc/hosts"
echo "# no resolver in the test VM" > "$root/etc/resolv.conf"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.gz"

log=$work/console.log
# KVM where this machine offers it (a run takes minutes instead of a quarter hour),
# else software emulation. A PVM host (kvm_pvm: a KVM for nested machines, as on
# this project's build machines) runs only guests built for it; Debian's kernel
# hangs there after "Probing EDD", so it gets software emulation too.
if [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ] && [ -z "${VM_NO_KVM:-}" ]; then
    accel="-accel kvm -cpu host"
else
    accel="-accel tcg -cpu max"
fi
echo "vm-test: ${accel#-accel }: booting $(basename "$kernel") with $(du -h "$work/initrd.gz" | cut -f1) initramfs (log: $log)"
set +e
timeout --foreground -k 10 "$timeout_s" qemu-system-x86_64 $accel -smp 2 -m 2048 \
    -kernel "$kernel" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 rdinit=/init panic=-1 quiet loglevel=3 pod.filter=${VM_FILTER:-} pod.run=${VM_RUN:-tests}" \
    -display none -serial "file:$log" -monitor none -no-reboot < /dev/null
rc=$?
set -e
cat "$log" | tr -d '\r' | grep -v '^$' || true
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    echo "vm-test: FAIL: the VM did not finish within ${timeout_s}s" >&2; exit 1
fi
if tr -d '\r' < "$log" | grep -qx 'VM-TEST-RESULT: PASS'; then
    echo "vm-test: PASS"
else
    echo "vm-test: FAIL (see $log)" >&2; exit 1
fi
