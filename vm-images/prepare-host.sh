#!/bin/bash
# prepare-host.sh: install what vmrp needs to build and test, start libvirt without systemd
#
# Usage: prepare-host.sh            (as root; idempotent, one line per action taken)
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -euo pipefail

# Every Debian package the project needs to build, test and build the test guest
# (valgrind, clang and its libFuzzer runtime: the quality gates of tests/run.sh;
# virtnbdbackup and time: tests/bench/bench-chain.sh; libguestfs-dev: file-list and
# file-restore, gdisk: their test's partitioned disk; ovmf, swtpm and swtpm-tools:
# tests/integration/test-uefi-tpm.sh; xxhash: xxhsum, test-verify's own check of
# the digests).
PACKAGES="meson ninja-build pkg-config gcc libc6-dev
libvirt-dev libjson-c-dev libglib2.0-dev libnbd-dev libxml2-dev libcunit1-dev libssl-dev libxxhash-dev
libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils qemu-block-extra
libnbd-bin nbdkit busybox-static cpio gzip xz-utils zstd kmod qemu-guest-agent e2fsprogs
coreutils findutils ca-certificates jq gnutls-bin
valgrind clang libclang-rt-14-dev
virtnbdbackup time
libguestfs-dev gdisk
ovmf swtpm swtpm-tools
libssh-dev openssh-server openssh-client rsync xxhash"

URI=qemu:///system
WAIT_SECONDS=${VMRP_LIBVIRT_WAIT:-120}

die() {
    echo "prepare-host: $*" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root"

missing_packages() {
    local pkg status
    for pkg in $PACKAGES; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
        [ "$status" = installed ] || echo "$pkg"
    done
}

install_packages() {
    local missing
    missing=$(missing_packages | tr '\n' ' ')
    [ -n "${missing// /}" ] || return 0
    echo "prepare-host: installing ${missing% }"
    local log
    log=$(mktemp)
    # shellcheck disable=SC2086 # word splitting of the package list is intended
    if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
            --no-install-recommends $missing; } >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        rm -f "$log"
        die "apt-get install failed"
    fi
    rm -f "$log"
    missing=$(missing_packages | tr '\n' ' ')
    [ -z "${missing// /}" ] || die "still missing after install: $missing"
}

# Without udev, /dev/kvm stays root:root 0600. QEMU (libvirt-qemu, group kvm) then cannot
# use it while libvirt's capability probe (as root) can: libvirt finds its cached QEMU
# capabilities outdated at every lookup and re-probes QEMU (~7 s each, a minute per
# `virsh define`). Give /dev/kvm the owner and mode udev would.
fix_kvm_node() {
    [ -c /dev/kvm ] || return 0
    getent group kvm >/dev/null || return 0
    if [ "$(stat -c %G:%a /dev/kvm)" != kvm:660 ]; then
        echo "prepare-host: chgrp kvm /dev/kvm; chmod 0660 /dev/kvm"
        chgrp kvm /dev/kvm
        chmod 0660 /dev/kvm
    fi
}

# libvirtd looks for hooks when it starts: the tests' hook dispatcher must be
# there before.  It runs /run/vmrp-test-hook (a test's own, while it exists)
# and always exits 0, so it never fails another VM's start.
HOOK=/etc/libvirt/hooks/qemu.d/vmrp-tests
install_test_hook() {
    [ -x "$HOOK" ] && return 0
    echo "prepare-host: installing the tests' libvirt hook dispatcher $HOOK"
    mkdir -p "$(dirname "$HOOK")"
    cat >"$HOOK" <<'EOS'
#!/bin/sh
# vmrp's integration tests: hand the event to the running test's hook, if any
[ -x /run/vmrp-test-hook ] && /run/vmrp-test-hook "$@"
exit 0
EOS
    chmod 0755 "$HOOK"
    if daemon_running libvirtd; then
        echo "prepare-host: restarting libvirtd so that it sees the hook (running VMs stay)"
        kill "$(cat /run/libvirtd.pid)"
        for _ in $(seq 50); do daemon_running libvirtd || break; sleep 0.2; done
    fi
}

# daemon_running NAME: NAME's pid file names a live NAME process.  /run may be
# on the root file system (no tmpfs here): a machine made from a snapshot of
# another then holds the sockets and pid files of daemons that no longer run,
# so neither a socket nor a pid file alone says that a daemon is there.
daemon_running() {
    local pid
    pid=$(cat "/run/$1.pid" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]
}

# start_daemon NAME SOCKET...: start NAME unless it runs, after removing the
# sockets and pid file a dead one left.  It logs to /var/log/libvirt/NAME.log.
start_daemon() {
    local name=$1
    shift
    daemon_running "$name" && return 0
    echo "prepare-host: starting $name"
    rm -f "/run/$name.pid" "$@"
    mkdir -p /var/log/libvirt
    # the daemon keeps no descriptor of ours (a lock held by whoever ran
    # this script, say, would be held as long as the daemon runs)
    (
        for fd in /proc/self/fd/*; do
            fd=${fd##*/}
            [ "$fd" -gt 2 ] && eval "exec $fd>&-"
        done
        LIBVIRT_LOG_OUTPUTS="3:file:/var/log/libvirt/$name.log" exec "$name" -d
    ) || die "$name -d failed"
}

start_daemons() {
    install_test_hook
    mkdir -p /run/libvirt
    start_daemon virtlogd /run/libvirt/virtlogd-sock /run/libvirt/virtlogd-admin-sock
    start_daemon libvirtd /run/libvirt/libvirt-sock /run/libvirt/libvirt-sock-ro \
        /run/libvirt/libvirt-admin-sock
}

wait_libvirt() {
    local deadline=$((SECONDS + WAIT_SECONDS))
    while ((SECONDS < deadline)); do
        if [ -S /run/libvirt/virtlogd-sock ] &&
            virsh -c "$URI" version >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.5
    done
    daemon_running libvirtd || echo "prepare-host: libvirtd is not running" >&2
    tail -n 20 /var/log/libvirt/libvirtd.log >&2 2>/dev/null || true
    die "libvirtd does not answer on $URI after ${WAIT_SECONDS}s (virsh -c $URI version)"
}

# libguestfs's appliance (file-list, file-restore) is built by supermin from the
# host's kernel, which a container lacks (no /boot kernel, no /lib/modules).  Give
# vmrp one of its own: the kernel and modules of the package linux-image-amd64
# depends on, extracted (not installed) into $APPLIANCE/kernel, which vmrp hands to
# supermin (SUPERMIN_KERNEL, SUPERMIN_MODULES); supermin also needs /lib/modules.
APPLIANCE=${VMRP_APPLIANCE_DIR:-/var/lib/vmrp/appliance}
prepare_appliance() {
    local kver kpkg work
    compgen -G '/boot/vmlinuz-*' >/dev/null && [ -d /lib/modules ] && return 0
    mkdir -p /lib/modules
    [ -s "$APPLIANCE/kernel/version" ] && return 0
    kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
    [ -n "$kpkg" ] || die "apt-cache depends linux-image-amd64 names no linux-image package"
    kver=${kpkg#linux-image-}
    echo "prepare-host: extracting $kpkg into $APPLIANCE/kernel for libguestfs"
    work=$(mktemp -d /tmp/vmrp-appliance.XXXXXX)
    chmod 755 "$work"
    mkdir "$work/deb" "$work/x"
    if ! (cd "$work/deb" && apt-get download "$kpkg" >/dev/null 2>&1); then
        rm -rf "$work"
        die "apt-get download $kpkg failed"
    fi
    dpkg-deb -x "$work"/deb/*.deb "$work/x"
    depmod -b "$work/x" "$kver"
    mkdir -p "$APPLIANCE"
    chmod 0700 "$APPLIANCE"
    rm -rf "$APPLIANCE/kernel"
    mkdir "$work/kernel" "$work/kernel/modules"
    mv "$work/x/boot/vmlinuz-$kver" "$work/kernel/vmlinuz"
    mv "$work/x/lib/modules/$kver" "$work/kernel/modules/$kver"
    echo "$kver" >"$work/kernel/version"
    mv "$work/kernel" "$APPLIANCE/kernel"
    rm -rf "$work"
}

install_packages
prepare_appliance
fix_kvm_node
start_daemons
wait_libvirt
