#!/bin/bash
# testvm.sh: create, start, drive and remove the tiny vmrp test VMs
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
URI=${VMRP_URI:-qemu:///system}
TESTDIR=${VMRP_TESTVM_DIR:-/var/lib/libvirt/images/vmrp-test}
BASE=${VMRP_GUEST_DIR:-$TESTDIR/base}
PROG=testvm

usage() {
    cat <<EOF
usage: testvm.sh COMMAND ...   (as root; libvirt URI \$VMRP_URI, default qemu:///system)

  create NAME [--no-agent] [--no-channel] [--no-nic] [--type qemu|kvm] [--disks N]
              [--disk-size SIZE] [--raw] [--workload] [--memory MiB] [--start]
        define a persistent domain; disks in $TESTDIR/NAME/:
        vda.qcow2 (copy of the ext4 data disk, /data in the guest), vdb.qcow2... blank
        --raw         the blank disks are raw files (vdb.raw...): no persistent bitmaps
        --no-agent    agent channel present, agent not started (vmrp.agent=0)
        --no-channel  no agent channel at all
  start NAME                   start the domain
  wait-agent NAME [TIMEOUT]    wait until guest-ping answers (default 90 s)
  wait-ready NAME [TIMEOUT]    wait until the console log says "vmrp-guest: ready" (90 s)
  exec NAME PROGRAM [ARG...]   guest-exec PROGRAM, print its stdout/stderr, exit with its status
  destroy NAME                 power off (no error if not running)
  remove NAME                  destroy, undefine (with checkpoint/snapshot metadata), delete
                               its directory; no error if it does not exist
  cleanup PREFIX               remove every domain named PREFIX* and its directory
                               (PREFIX at least 4 characters)
EOF
}

die() {
    echo "$PROG: $*" >&2
    exit 1
}

virsh_() {
    virsh -q -c "$URI" "$@"
}

# A domain name we create: a letter first, then [A-Za-z0-9._-]; never a UUID or an id.
check_name() {
    local name=$1
    [[ $name =~ ^[A-Za-z][A-Za-z0-9._-]*$ ]] || die "invalid domain name '$name'"
    [[ ! $name =~ ^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$ ]] ||
        die "invalid domain name '$name' (looks like a UUID)"
    [ "$name" != base ] || die "'base' is reserved for the guest image"
}

# True when a domain with exactly this name exists.
domain_exists() {
    local n
    while IFS= read -r n; do
        [ "$n" = "$1" ] && return 0
    done < <(virsh_ list --all --name)
    return 1
}

domain_state() {
    virsh_ domstate -- "$1" 2>/dev/null || true
}

escape_json() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    printf '%s' "$s"
}

cmd_create() {
    [ $# -ge 1 ] || die "create: NAME missing"
    local name=$1
    shift
    check_name "$name"
    local agent=1 channel=1 nic=1 type=qemu disks=1 disk_size=64M workload=0 raw=0
    local memory=256 start=0
    while [ $# -gt 0 ]; do
        case "$1" in
            --no-agent) agent=0 ;;
            --no-channel) channel=0 agent=0 ;;
            --no-nic) nic=0 ;;
            --type) type=${2:?--type needs qemu or kvm}; shift ;;
            --disks) disks=${2:?--disks needs a number}; shift ;;
            --disk-size) disk_size=${2:?--disk-size needs a size}; shift ;;
            --raw) raw=1 ;;
            --workload) workload=1 ;;
            --memory) memory=${2:?--memory needs MiB}; shift ;;
            --start) start=1 ;;
            *) die "create: unknown option '$1'" ;;
        esac
        shift
    done
    case "$type" in qemu | kvm) ;; *) die "create: --type must be qemu or kvm" ;; esac
    if ! [[ $disks =~ ^[0-9]+$ ]] || [ "$disks" -lt 1 ] || [ "$disks" -gt 20 ]; then
        die "create: --disks must be 1..20"
    fi
    [[ $memory =~ ^[0-9]+$ ]] || die "create: --memory must be a number of MiB"

    domain_exists "$name" && die "create: domain '$name' already exists"
    "$HERE/build-guest.sh" "$BASE"

    local dir=$TESTDIR/$name
    rm -rf "$dir"
    mkdir -p "$dir"
    chmod 0755 "$TESTDIR" "$dir"

    local disks_xml="" i target fmt letters=abcdefghijklmnopqrstuvwxyz
    for ((i = 0; i < disks; i++)); do
        target=vd${letters:i:1}
        fmt=qcow2
        if [ "$i" -eq 0 ]; then
            cp "$BASE/data.qcow2" "$dir/$target.qcow2"
        else
            [ "$raw" -eq 0 ] || fmt=raw
            qemu-img create -q -f "$fmt" "$dir/$target.$fmt" "$disk_size"
        fi
        chmod 0644 "$dir/$target.$fmt"
        disks_xml+="    <disk type='file' device='disk'>
      <driver name='qemu' type='$fmt'/>
      <source file='$dir/$target.$fmt'/>
      <target dev='$target' bus='virtio'/>
    </disk>
"
    done
    local nic_xml="" channel_xml=""
    if [ "$nic" -eq 1 ]; then
        nic_xml="    <interface type='user'>
      <model type='virtio'/>
    </interface>
"
    fi
    if [ "$channel" -eq 1 ]; then
        channel_xml="    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
"
    fi

    cat >"$dir/domain.xml" <<EOF
<domain type='$type'>
  <name>$name</name>
  <memory unit='MiB'>$memory</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$BASE/vmlinuz</kernel>
    <initrd>$BASE/initrd.img</initrd>
    <cmdline>console=ttyS0 quiet vmrp.workload=$workload vmrp.agent=$agent</cmdline>
  </os>
  <features>
    <acpi/>
  </features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
$disks_xml$nic_xml    <serial type='pty'>
      <log file='$dir/console.log' append='off'/>
      <target port='0'/>
    </serial>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
$channel_xml  </devices>
</domain>
EOF
    virsh_ define "$dir/domain.xml" >/dev/null || die "create: virsh define failed"
    if [ "$start" -eq 1 ]; then
        cmd_start "$name"
    fi
}

cmd_start() {
    [ $# -eq 1 ] || die "start: NAME missing"
    check_name "$1"
    virsh_ start -- "$1" >/dev/null || die "start: virsh start $1 failed"
}

cmd_wait_agent() {
    [ $# -ge 1 ] || die "wait-agent: NAME missing"
    local name=$1 timeout=${2:-90}
    check_name "$name"
    [[ $timeout =~ ^[0-9]+$ ]] || die "wait-agent: TIMEOUT must be seconds"
    domain_exists "$name" || die "wait-agent: no domain '$name'"
    local start now
    start=$(date +%s%N)
    while :; do
        if virsh_ qemu-agent-command "$name" '{"execute":"guest-ping"}' --timeout 5 \
            >/dev/null 2>&1; then
            now=$(date +%s%N)
            echo "$name: agent answered after $(((now - start) / 1000000)) ms"
            return 0
        fi
        now=$(date +%s%N)
        if [ $(((now - start) / 1000000000)) -ge "$timeout" ]; then
            die "wait-agent: no answer to guest-ping from '$name' within ${timeout}s" \
                "(state: $(domain_state "$name"))"
        fi
        case "$(domain_state "$name")" in
            running | paused) ;;
            *) die "wait-agent: domain '$name' is not running ($(domain_state "$name"))" ;;
        esac
        sleep 0.5
    done
}

cmd_wait_ready() {
    [ $# -ge 1 ] || die "wait-ready: NAME missing"
    local name=$1 timeout=${2:-90}
    check_name "$name"
    local log=$TESTDIR/$name/console.log i
    for ((i = 0; i < timeout * 5; i++)); do
        if [ -f "$log" ] && grep -q 'vmrp-guest: ready' "$log"; then
            return 0
        fi
        sleep 0.2
    done
    die "wait-ready: '$name' did not print 'vmrp-guest: ready' within ${timeout}s ($log)"
}

# Extract a scalar JSON member from a flat agent reply (no nested objects needed).
json_member() {
    sed -n "s/.*\"$1\":\(\"[^\"]*\"\|[^,}]*\).*/\1/p" | tr -d '"'
}

cmd_exec() {
    [ $# -ge 2 ] || die "exec: NAME PROGRAM missing"
    local name=$1 path=$2 args="" a reply pid status exited code i
    shift 2
    check_name "$name"
    for a in "$@"; do
        args+="${args:+,}\"$(escape_json "$a")\""
    done
    reply=$(virsh_ qemu-agent-command "$name" --timeout 10 \
        "{\"execute\":\"guest-exec\",\"arguments\":{\"path\":\"$(escape_json "$path")\",\"arg\":[$args],\"capture-output\":true}}") ||
        die "exec: guest-exec $path failed"
    pid=$(json_member pid <<<"$reply")
    [ -n "$pid" ] || die "exec: no pid in guest-exec reply: $reply"
    for ((i = 0; i < 600; i++)); do
        status=$(virsh_ qemu-agent-command "$name" --timeout 10 \
            "{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":$pid}}") ||
            die "exec: guest-exec-status failed"
        exited=$(json_member exited <<<"$status")
        if [ "$exited" = true ]; then
            json_member out-data <<<"$status" | base64 -d
            json_member err-data <<<"$status" | base64 -d >&2
            code=$(json_member exitcode <<<"$status")
            return "${code:-1}"
        fi
        sleep 0.1
    done
    die "exec: $path did not exit within 60s"
}

cmd_destroy() {
    [ $# -eq 1 ] || die "destroy: NAME missing"
    check_name "$1"
    domain_exists "$1" || return 0
    case "$(domain_state "$1")" in
        "shut off" | "") return 0 ;;
    esac
    virsh_ destroy -- "$1" >/dev/null 2>&1 || true
    [ "$(domain_state "$1")" = "shut off" ] || die "destroy: '$1' is still $(domain_state "$1")"
}

cmd_remove() {
    [ $# -eq 1 ] || die "remove: NAME missing"
    local name=$1
    check_name "$name"
    if domain_exists "$name"; then
        cmd_destroy "$name"
        virsh_ undefine --checkpoints-metadata --snapshots-metadata --managed-save \
            -- "$name" >/dev/null || die "remove: virsh undefine $name failed"
    fi
    rm -rf "${TESTDIR:?}/$name"
}

cmd_cleanup() {
    [ $# -eq 1 ] || die "cleanup: PREFIX missing"
    local prefix=$1 n d
    [ "${#prefix}" -ge 4 ] || die "cleanup: PREFIX '$prefix' is shorter than 4 characters"
    [[ $prefix =~ ^[A-Za-z][A-Za-z0-9._-]*$ ]] || die "cleanup: invalid PREFIX '$prefix'"
    local names=()
    while IFS= read -r n; do
        [ -n "$n" ] && [[ $n == "$prefix"* ]] && names+=("$n")
    done < <(virsh_ list --all --name)
    for n in "${names[@]}"; do
        cmd_remove "$n"
    done
    for d in "$TESTDIR/$prefix"*; do
        [ -d "$d" ] || continue
        n=${d##*/}
        [ "$n" != base ] || continue
        [[ $n =~ ^[A-Za-z][A-Za-z0-9._-]*$ ]] || continue
        rm -rf "${TESTDIR:?}/$n"
    done
}

[ $# -ge 1 ] || { usage >&2; exit 2; }
cmd=$1
shift
case "$cmd" in
    -h | --help | help) usage; exit 0 ;;
esac
[ "$(id -u)" -eq 0 ] || die "must run as root"
case "$cmd" in
    create) cmd_create "$@" ;;
    start) cmd_start "$@" ;;
    wait-agent) cmd_wait_agent "$@" ;;
    wait-ready) cmd_wait_ready "$@" ;;
    exec) cmd_exec "$@" ;;
    destroy) cmd_destroy "$@" ;;
    remove) cmd_remove "$@" ;;
    cleanup) cmd_cleanup "$@" ;;
    *) usage >&2; exit 2 ;;
esac
