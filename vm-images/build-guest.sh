#!/bin/bash
# build-guest.sh: build the tiny vmrp test guest (Debian kernel, busybox initramfs, ext4 disk)
#
# Usage: build-guest.sh [OUTDIR]     (as root; default /var/lib/libvirt/images/vmrp-test/base)
#        VMRP_REBUILD=1 build-guest.sh   rebuild even when the outputs are up to date
#
# Outputs in OUTDIR (world-readable, QEMU runs as libvirt-qemu):
#   vmlinuz          the kernel of the package linux-image-amd64 depends on
#   initrd.img       gzip cpio: busybox-static, virtio/ext4 modules, qemu-ga, guest/ scripts
#   data.qcow2       64 MiB ext4 (holds hello.txt), mounted by the guest at /data
#   kernel-version   the kernel release the two above belong to
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUTDIR=${1:-/var/lib/libvirt/images/vmrp-test/base}
OUTPUTS="vmlinuz initrd.img data.qcow2 kernel-version"
DATA_SIZE_MIB=64

# In dependency order; crc32c_generic before ext4 (ext4 needs crc32c through the
# crypto API, which modules.dep does not name). Built-in ones are skipped.
MODULES="virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
virtio_blk virtio_console crc16 mbcache jbd2 crc32c_generic libcrc32c ext4"

die() {
    echo "build-guest: $*" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root"
for tool in apt-get apt-cache dpkg-deb cpio gzip mkfs.ext4 qemu-img ldd modinfo flock; do
    command -v "$tool" >/dev/null || die "$tool not found (run prepare-host.sh)"
done
QEMU_GA=$(command -v qemu-ga || true)
[ -n "$QEMU_GA" ] || QEMU_GA=/usr/sbin/qemu-ga
[ -x "$QEMU_GA" ] || die "qemu-ga not found (run prepare-host.sh)"
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found (install busybox-static)"

mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)

up_to_date() {
    local out recipe
    for out in $OUTPUTS; do
        [ -s "$OUTDIR/$out" ] || return 1
        for recipe in "$HERE/build-guest.sh" "$HERE"/guest/*; do
            [ "$OUTDIR/$out" -nt "$recipe" ] || return 1
        done
    done
}

exec 9>"$OUTDIR/.lock"
flock 9
if [ "${VMRP_REBUILD:-0}" != 1 ] && up_to_date; then
    exit 0
fi

WORK=$(mktemp -d /tmp/vmrp-guest.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK" # apt-get download as _apt needs to write here

# --- kernel and modules, without installing them on the host
kernel_package() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }'
}
KPKG=$(kernel_package)
if [ -z "$KPKG" ]; then
    apt-get update >/dev/null 2>&1 || die "apt-get update failed"
    KPKG=$(kernel_package)
fi
[ -n "$KPKG" ] || die "apt-cache depends linux-image-amd64 names no linux-image package"

mkdir "$WORK/deb" "$WORK/kernel"
(cd "$WORK/deb" && apt-get download "$KPKG" >"$WORK/download.log" 2>&1) ||
    { cat "$WORK/download.log" >&2; die "apt-get download $KPKG failed"; }
dpkg-deb -x "$WORK"/deb/*.deb "$WORK/kernel"
rm -rf "$WORK/deb"
KVER=$(basename "$(ls -d "$WORK"/kernel/lib/modules/*/)")
KIMG="$WORK/kernel/boot/vmlinuz-$KVER"
[ -f "$KIMG" ] || die "$KPKG holds no /boot/vmlinuz-$KVER"
MODDIR="$WORK/kernel/lib/modules/$KVER"

# --- initramfs tree
ROOT="$WORK/root"
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,etc/qemu,proc,sys,dev,run,tmp,data,root}
mkdir -p "$ROOT"/lib/modules "$ROOT"/var
ln -s ../run "$ROOT/var/run"
ln -s /proc/mounts "$ROOT/etc/mtab"

cp "$BUSYBOX" "$ROOT/bin/busybox"
for applet in $("$BUSYBOX" --list); do
    # a link named busybox over the binary itself would make a loop
    [ "$applet" = busybox ] && continue
    [ -e "$ROOT/bin/$applet" ] || ln -s busybox "$ROOT/bin/$applet"
done

# Load order: every module after the modules it depends on (modinfo), in list order
# otherwise. Modules not in the package are built in (or absent): nothing to load.
declare -A MOD_DONE=()
MOD_ORDER=()
module_file() {
    find "$MODDIR" \( -name "$1.ko" -o -name "$1.ko.xz" -o -name "$1.ko.zst" \) -print |
        head -n 1
}
add_module() {
    local mod=$1 ko dep
    [ -z "${MOD_DONE[$mod]:-}" ] || return 0
    MOD_DONE[$mod]=1
    ko=$(module_file "$mod")
    [ -n "$ko" ] || return 0
    for dep in $(modinfo -F depends "$ko" | tr ',' ' '); do
        add_module "$dep"
    done
    case "$ko" in
        *.xz) xz -dc "$ko" >"$ROOT/lib/modules/$mod.ko" ;;
        *.zst) zstd -qdc "$ko" >"$ROOT/lib/modules/$mod.ko" ;;
        *) cp "$ko" "$ROOT/lib/modules/$mod.ko" ;;
    esac
    MOD_ORDER+=("$mod")
}
for mod in $MODULES; do
    add_module "$mod"
done
printf '%s\n' "${MOD_ORDER[@]}" >"$ROOT/etc/vmrp-modules"
grep -qx ext4 "$ROOT/etc/vmrp-modules" || grep -q '/ext4\.ko' "$MODDIR/modules.builtin" ||
    die "no ext4 module in $KPKG"

# qemu-ga, its libraries and the dynamic loader, at the paths ldd names
cp "$QEMU_GA" "$ROOT/usr/sbin/qemu-ga"
ln -s ../sbin/qemu-ga "$ROOT/usr/bin/qemu-ga"
for lib in $(ldd "$QEMU_GA" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
    mkdir -p "$ROOT$(dirname "$lib")"
    cp -L "$lib" "$ROOT$lib"
done

install -m 0755 "$HERE/guest/init" "$ROOT/init"
install -m 0755 "$HERE/guest/fsfreeze-hook" "$ROOT/etc/qemu/fsfreeze-hook"
install -m 0755 "$HERE/guest/vmrp-workload" "$ROOT/usr/bin/vmrp-workload"
install -m 0755 "$HERE/guest/vmrp-verify-records" "$ROOT/usr/bin/vmrp-verify-records"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\n' >"$ROOT/etc/group"
echo vmrp-guest >"$ROOT/etc/hostname"
echo "$KVER" >"$ROOT/etc/vmrp-kernel"

(cd "$ROOT" && find . -print0 | LC_ALL=C sort -z |
    cpio --null -o -H newc --owner=0:0 --quiet) | gzip -6 >"$WORK/initrd.img"

# --- data disk: ext4 preloaded with a small directory, as qcow2
mkdir "$WORK/data"
echo "hello from the vmrp test guest" >"$WORK/data/hello.txt"
truncate -s "${DATA_SIZE_MIB}M" "$WORK/data.raw"
# lazy init off: no ext4lazyinit writes behind the tests' back
mkfs.ext4 -q -F -L vmrpdata -E lazy_itable_init=0,lazy_journal_init=0 \
    -d "$WORK/data" "$WORK/data.raw"
qemu-img convert -q -f raw -O qcow2 "$WORK/data.raw" "$WORK/data.qcow2"

# --- publish, world-readable
cp "$KIMG" "$WORK/vmlinuz"
echo "$KVER" >"$WORK/kernel-version"
chmod 0755 "$OUTDIR"
dir=$(dirname "$OUTDIR")
while [ "$dir" != / ]; do
    # QEMU (libvirt-qemu) must be able to traverse down to OUTDIR
    if [ "$(( 0$(stat -c %a "$dir") & 1 ))" -eq 0 ]; then
        echo "build-guest: chmod o+x $dir (QEMU must reach $OUTDIR)"
        chmod o+x "$dir"
    fi
    dir=$(dirname "$dir")
done
for out in $OUTPUTS; do
    install -m 0644 "$WORK/$out" "$OUTDIR/.$out.new"
    mv -f "$OUTDIR/.$out.new" "$OUTDIR/$out"
done
echo "build-guest: built $OUTDIR (kernel $KVER)"
