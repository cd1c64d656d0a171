#!/bin/bash
# bench-chain.sh: times vmrp's full point and increment against virtnbdbackup and against
# qemu-img convert of the same NBD export (issue 3, item 9)
#
# Usage: tests/bench/bench-chain.sh [BUILD_DIR]    (as root, by hand; not run by CI)
#
# Two identical VMs (TCG), each with a 4 GiB qcow2 data disk vdb that holds 1.5 GiB of
# random data, prepared on the host before the first boot. Each round:
#   - VM A: qemu-img convert of a pull-mode backup's NBD export of vdb (the reference
#     limit), then a vmrp full point;
#   - VM B: a virtnbdbackup full backup;
#   - both guests overwrite 200 MiB of vdb (dd from /dev/urandom at 8 spread offsets);
#   - a vmrp increment of A, a virtnbdbackup increment of B.
# Both tools back up vdb only (vmrp --exclude-disk vda, virtnbdbackup -i vdb), with the
# same consistency: virtnbdbackup always freezes through the guest agent when one
# answers, so vmrp runs with --consistency application. The page cache is dropped
# before every timed step. The table gives medians over the rounds (peak RSS: the
# maximum).
#
# Environment: BENCH_ROUNDS (3), BENCH_DATA_MIB (1536), BENCH_REWRITE_MIB (200),
# BENCH_DISK_SIZE (4G), BENCH_KEEP=1 keeps the work folder (the VMs are always removed).
# Ratios are medians of the ratios within each round (the steps compared ran minutes
# apart at most, under the same host load). Exit status 0 when every target of the
# issue is met, 1 otherwise.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
VMRP=$BUILD/plugin/vmrp
GUEST=$BUILD/tests/tools/vmrp-guest
TESTVM=$SRC/vm-images/testvm.sh
URI=${VMRP_URI:-qemu:///system}
TESTDIR=${VMRP_TESTVM_DIR:-/var/lib/libvirt/images/vmrp-test}

ROUNDS=${BENCH_ROUNDS:-3}
DATA_MIB=${BENCH_DATA_MIB:-1536}
REWRITE_MIB=${BENCH_REWRITE_MIB:-200}
DISK_SIZE=${BENCH_DISK_SIZE:-4G}
PREFIX=vmrpbench-$$-
VM_A=${PREFIX}vmrp
VM_B=${PREFIX}vnb
WORK=
REF_JOB=

die() {
    echo "bench-chain: $*" >&2
    exit 1
}

log() {
    echo "bench-chain: $*" >&2
}

cleanup() {
    local rc=$?
    set +e
    [ -z "$REF_JOB" ] || virsh -q -c "$URI" domjobabort "$VM_A" >/dev/null 2>&1
    "$TESTVM" cleanup "$PREFIX" >/dev/null 2>&1
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        if [ "${BENCH_KEEP:-0}" = 1 ]; then
            log "work folder kept: $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
    exit "$rc"
}

[ "$(id -u)" -eq 0 ] || die "must run as root"
for prog in "$VMRP" "$GUEST"; do
    [ -x "$prog" ] || die "$prog missing: build first (meson setup BUILD && ninja -C BUILD)"
done
for prog in virtnbdbackup qemu-img jq virsh numfmt /usr/bin/time /usr/bin/python3; do
    command -v "$prog" >/dev/null || die "$prog missing: run vm-images/prepare-host.sh"
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive number"
DISK_MIB=$(($(numfmt --from=iec "$DISK_SIZE") / 1048576))
if [ "$DATA_MIB" -ge "$DISK_MIB" ] || [ "$REWRITE_MIB" -lt 8 ]; then
    die "BENCH_DATA_MIB must be below the disk size, BENCH_REWRITE_MIB at least 8"
fi
trap cleanup EXIT
trap 'exit 130' INT TERM

# QEMU (libvirt-qemu) writes the sockets and scratch files: every parent is searchable.
WORK=$(mktemp -d /var/tmp/vmrpbench.XXXXXX)
chmod 0711 "$WORK"
mkdir -p "$WORK/state" "$WORK/ref" "$WORK/vnb-state" "$WORK/repo-vmrp"
chown libvirt-qemu "$WORK/state" "$WORK/ref" "$WORK/vnb-state"
chmod 0700 "$WORK/state" "$WORK/ref" "$WORK/vnb-state"

# per step and round ("vfull,2"); read through namerefs in median and maximum
# shellcheck disable=SC2034
declare -A T=() HWM=() RSS=() FREEZE=() BYTES=()

now_ms() {
    echo $(($(date +%s%N) / 1000000))
}

# Allocated bytes under a path.
du_bytes() {
    du -s --block-size=1 "$@" | awk '{ s += $1 } END { printf "%.0f\n", s }'
}

# run_timed KEY CMD...: runs CMD under GNU time with cold caches. T[KEY] is the wall
# time in ms, RSS[KEY] GNU time's maximum RSS in KiB (CMD and the children it reaped),
# HWM[KEY] the peak RSS of CMD's process alone (VmHWM, polled from /proc).
run_timed() {
    local key=$1 start end pid child hwm=0 v rc=0
    shift
    sync
    echo 3 >/proc/sys/vm/drop_caches
    start=$(now_ms)
    /usr/bin/time -v -o "$WORK/time-$key" "$@" >"$WORK/out-$key" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        child=$(pgrep -P "$pid" | head -n 1 || true)
        if [ -n "$child" ]; then
            v=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$child/status" \
                2>/dev/null || true)
            if [ -n "$v" ] && [ "$v" -gt "$hwm" ]; then
                hwm=$v
            fi
        fi
        sleep 0.05
    done
    wait "$pid" || rc=$?
    end=$(now_ms)
    if [ "$rc" -ne 0 ]; then
        tail -n 20 "$WORK/out-$key" >&2
        die "$key failed (exit $rc)"
    fi
    T[$key]=$((end - start))
    # shellcheck disable=SC2034
    RSS[$key]=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$WORK/time-$key")
    # shellcheck disable=SC2034
    HWM[$key]=$hwm
}

# --- the VMs -------------------------------------------------------------------------
# DATA_MIB of random data in 6 regions spread over the disk; the rest never written.
prepare_image() {
    local raw=$WORK/data.raw nreg=6 i
    truncate -s "$DISK_SIZE" "$raw"
    for ((i = 0; i < nreg; i++)); do
        dd if=/dev/urandom of="$raw" bs=1M seek=$((i * DISK_MIB / nreg)) \
            count=$((DATA_MIB / nreg)) conv=notrunc status=none
    done
    qemu-img convert -q -f raw -O qcow2 -o compat=1.1 "$raw" "$WORK/data.qcow2"
    rm -f "$raw"
}

# A VM whose vdb is a copy of the prepared image, started.
create_vm() {
    local name=$1
    "$TESTVM" create "$name" --disks 2 --disk-size "$DISK_SIZE" >/dev/null
    cp --sparse=always "$WORK/data.qcow2" "$TESTDIR/$name/vdb.qcow2"
    chmod 0644 "$TESTDIR/$name/vdb.qcow2"
    "$TESTVM" start "$name"
}

# The guest overwrites REWRITE_MIB of vdb with random data: 8 pieces spread over the 6
# regions that hold data, so that every full point copies the same DATA_MIB.
rewrite() {
    local name=$1 round=$2 script="" i piece=$((REWRITE_MIB / 8)) seek
    for ((i = 0; i < 8; i++)); do
        seek=$(((i % 6) * DISK_MIB / 6 + (i / 6) * DATA_MIB / 12 + round * 3))
        script+="dd if=/dev/urandom of=/dev/vdb bs=1M count=$piece seek=$seek"
        script+=" conv=notrunc,fsync 2>/dev/null || exit 1; "
    done
    "$GUEST" -c "$URI" "$name" exec --timeout 900 -- /bin/sh -c "${script}sync"
}

# --- the reference: qemu-img convert of libvirt's pull-mode export -------------------
reference() {
    local key=$1 sock=$WORK/ref/nbd.sock
    cat >"$WORK/ref-backup.xml" <<EOF
<domainbackup mode='pull'>
  <server transport='unix' socket='$sock'/>
  <disks>
    <disk name='vda' backup='no'/>
    <disk name='vdb' backup='yes' type='file' backupmode='full'>
      <scratch file='$WORK/ref/vdb.scratch'/>
    </disk>
  </disks>
</domainbackup>
EOF
    virsh -q -c "$URI" backup-begin "$VM_A" "$WORK/ref-backup.xml" >/dev/null
    REF_JOB=1
    rm -f "$WORK/ref-out.qcow2"
    run_timed "$key" qemu-img convert -O qcow2 "nbd+unix:///vdb?socket=$sock" \
        "$WORK/ref-out.qcow2"
    virsh -q -c "$URI" domjobabort "$VM_A" >/dev/null
    REF_JOB=
    BYTES[$key]=$(du_bytes "$WORK/ref-out.qcow2")
    rm -f "$WORK/ref-out.qcow2"
}

# --- vmrp ----------------------------------------------------------------------------
vmrp_point() {
    local key=$1 before manifest
    shift
    before=$(du_bytes "$WORK/repo-vmrp")
    run_timed "$key" env VMRP_REPO="$WORK/repo-vmrp" VMRP_STATE_DIR="$WORK/state" \
        "$VMRP" -c "$URI" rp-create "$VM_A" --consistency application \
        --exclude-disk vda "$@"
    BYTES[$key]=$(($(du_bytes "$WORK/repo-vmrp") - before))
    # shellcheck disable=SC2012 # point ids are [0-9a-f-]
    manifest=$(ls -t "$WORK"/repo-vmrp/collections/*/points/*/point.json | head -n 1)
    [ "$(jq -r .consistency.achieved "$manifest")" = application ] ||
        die "$key: the vmrp point is not application-consistent ($manifest)"
    FREEZE[$key]=$(jq -r .consistency.freeze_ms "$manifest")
}

# --- virtnbdbackup -------------------------------------------------------------------
# Runs virtnbdbackup in a wrapper that notes when its fsFreeze started and its fsThaw
# ended (its own log has whole seconds only); the same process, the same work.
cat >"$WORK/vnb-wrap.py" <<'EOF'
import runpy, sys, time
import libvirt

log = open(sys.argv[1], "a")

def timed(name):
    orig = getattr(libvirt.virDomain, name)
    def call(self, *args, **kwargs):
        start = time.monotonic()
        try:
            return orig(self, *args, **kwargs)
        finally:
            log.write("%s %.6f %.6f\n" % (name, start, time.monotonic()))
            log.flush()
    setattr(libvirt.virDomain, name, call)

timed("fsFreeze")
timed("fsThaw")
sys.argv = ["/usr/bin/virtnbdbackup"] + sys.argv[2:]
runpy.run_path("/usr/bin/virtnbdbackup", run_name="__main__")
EOF

vnb_backup() {
    local key=$1 level=$2 dir=$3 before
    before=0
    [ ! -d "$dir" ] || before=$(du_bytes "$dir")
    run_timed "$key" /usr/bin/python3 "$WORK/vnb-wrap.py" "$WORK/freeze-$key" \
        -U "$URI" -d "$VM_B" -l "$level" -i vdb -n -o "$dir" \
        -S "$WORK/vnb-state" -f "$WORK/vnb-state/nbd.sock"
    # shellcheck disable=SC2034
    BYTES[$key]=$(($(du_bytes "$dir") - before))
    FREEZE[$key]=$(awk '$1 == "fsFreeze" { f = $2 } $1 == "fsThaw" { t = $3 }
        END { if (f && t) printf "%d", (t - f) * 1000; else print "none" }' \
        "$WORK/freeze-$key" 2>/dev/null || echo none)
    [ "${FREEZE[$key]}" != none ] || die "$key: virtnbdbackup did not freeze the guest"
}

# --- the run -------------------------------------------------------------------------
log "$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
log "preparing a $DISK_SIZE image holding $DATA_MIB MiB of random data"
prepare_image
log "creating $VM_A and $VM_B"
create_vm "$VM_A"
create_vm "$VM_B"
"$GUEST" -c "$URI" "$VM_A" wait 120 >/dev/null
"$GUEST" -c "$URI" "$VM_B" wait 120 >/dev/null

for ((r = 1; r <= ROUNDS; r++)); do
    reference "ref,$r"
    vmrp_point "vfull,$r" --full
    vnb_backup "nfull,$r" full "$WORK/repo-vnb-$r"
    rewrite "$VM_A" "$r"
    rewrite "$VM_B" "$r"
    vmrp_point "vinc,$r"
    vnb_backup "ninc,$r" inc "$WORK/repo-vnb-$r"
    log "round $r: qemu-img ${T[ref,$r]} ms; vmrp full ${T[vfull,$r]}," \
        "inc ${T[vinc,$r]} ms; virtnbdbackup full ${T[nfull,$r]}, inc ${T[ninc,$r]} ms" \
        "(load $(cut -d' ' -f1 /proc/loadavg))"
done

# --- the table -----------------------------------------------------------------------
# median ARRAY STEP: the median over the rounds (the lower one of an even count).
median() {
    local -n arr=$1
    local r
    for ((r = 1; r <= ROUNDS; r++)); do
        echo "${arr[$2,$r]}"
    done | sort -n | sed -n "$(((ROUNDS + 1) / 2))p"
}
maximum() {
    local -n arr=$1
    local r
    for ((r = 1; r <= ROUNDS; r++)); do
        echo "${arr[$2,$r]}"
    done | sort -n | tail -n 1
}
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
}
mib() {
    awk -v k="$1" -v d="$2" 'BEGIN { printf "%.1f", k / d }'
}

# ratios A B: the median over the rounds of T[A,r] / T[B,r]
ratios() {
    local r
    for ((r = 1; r <= ROUNDS; r++)); do
        ratio "${T[$1,$r]}" "${T[$2,$r]}"
        echo
    done | sort -n | sed -n "$(((ROUNDS + 1) / 2))p"
}

declare -A MT=()
for s in ref vfull nfull vinc ninc; do
    MT[$s]=$(median T "$s")
done

echo
echo "vmrp bench-chain: $DISK_SIZE qcow2 disk with $DATA_MIB MiB of random data, the guest"
echo "rewrites $REWRITE_MIB MiB between full and increment; TCG guests; $(nproc) CPUs;" \
    "medians of $ROUNDS rounds" \
    "(RSS: maximum)"
echo "consistency: application (guest agent fsfreeze) for vmrp and virtnbdbackup"
echo
printf '%-22s %8s %9s %8s %9s %9s %8s %9s\n' step "time s" "/qemu-img" "/vnb" \
    "RSS MiB" "+child" "freeze" "repo MiB"
row() {
    local s=$1 label=$2 peer=$3 hwm freeze
    hwm=$(maximum HWM "$s")
    freeze=$([ "$s" = ref ] && echo - || echo "$(median FREEZE "$s") ms")
    printf '%-22s %8s %9s %8s %9s %9s %8s %9s\n' "$label" \
        "$(mib "${MT[$s]}" 1000)" "$(ratios "$s" ref)" \
        "$([ -n "$peer" ] && ratios "$s" "$peer" || echo -)" \
        "$([ "$hwm" -gt 0 ] && mib "$hwm" 1024 || echo -)" \
        "$(mib "$(maximum RSS "$s")" 1024)" "$freeze" \
        "$(mib "$(median BYTES "$s")" 1048576)"
}
row ref "qemu-img convert (ref)" ""
row vfull "vmrp full" nfull
row nfull "virtnbdbackup full" ""
row vinc "vmrp increment" ninc
row ninc "virtnbdbackup inc" ""
echo
echo "RSS: peak of the process itself (VmHWM); +child: GNU time's maximum, which also"
echo "covers the children it reaped (vmrp's qemu-nbd writer). repo: bytes allocated by"
echo "the step (virtnbdbackup also saves the kernel and initrd, 12 MiB, at each backup)."
echo

ok=1
target() {
    local what=$1 cond=$2
    if awk "BEGIN { exit !($cond) }"; then
        echo "target met:    $what"
    else
        echo "target missed: $what"
        ok=0
    fi
}
peak=$(printf '%s\n' "$(maximum HWM vfull)" "$(maximum HWM vinc)" | sort -n | tail -n 1)
r_full_ref=$(ratios vfull ref)
r_full_vnb=$(ratios nfull vfull)
r_inc_vnb=$(ratios ninc vinc)
target "full within 1.3x of qemu-img convert (${r_full_ref}x)" "$r_full_ref <= 1.3"
target "full at least 2x faster than virtnbdbackup (${r_full_vnb}x)" "$r_full_vnb >= 2"
target "increment at least 2x faster than virtnbdbackup's (${r_inc_vnb}x)" "$r_inc_vnb >= 2"
target "peak RSS of vmrp under 64 MiB ($(mib "$peak" 1024) MiB)" "$peak < 65536"
[ "$ok" = 1 ]
