#!/bin/bash
# bench-chain.sh: times vmrp's full point and increment against virtnbdbackup and against
# qemu-img convert of the same NBD export (issues 3 and 9)
#
# Usage: tests/bench/bench-chain.sh [--disk-size SIZE] [--data MIB] [--rewrite MIB]
#                                   [--rounds N] [--consistency application|crash]
#                                   [--also BUILD_DIR2] [BUILD_DIR]
#                                   (as root, by hand; not run by CI)
#
# Two identical VMs (TCG), each with a qcow2 data disk vdb (--disk-size, default 4G) that
# holds --data MiB of random data (default 1536), prepared on the host before the first
# boot. Each round (--rounds, default 3):
#   - VM A: qemu-img convert of a pull-mode backup's NBD export of vdb (the reference),
#     the same with -t none (O_DIRECT), then a vmrp full point;
#   - VM B: a virtnbdbackup full backup;
#   - both guests overwrite --rewrite MiB of vdb (default 200; dd from /dev/urandom at 8
#     spread offsets);
#   - a vmrp increment of A, a virtnbdbackup increment of B;
#   - a vmrp increment of A with nothing changed (its fixed cost).
# --also BUILD_DIR2 adds, in each round after vmrp's full point, two full points of A taken
# by BUILD_DIR2's vmrp and one more by this vmrp (A B B A): a change measured side by
# side, e.g. the cost of the data digests with a build that takes none.
# Both tools back up vdb only (vmrp --exclude-disk vda, virtnbdbackup -i vdb), with the
# same consistency: application (the default) freezes through the guest agent (which
# virtnbdbackup always does when one answers); with crash, vmrp takes crash-consistent
# points and virtnbdbackup is told to freeze a mount point that does not exist (-F), so
# that its freeze fails and it goes on without one (it has no option to skip it).
# The page cache is dropped before every timed step. The table gives medians over the
# rounds (peak RSS: the maximum; "tree": vmrp and its children together). The memory
# figures that are polled (VmHWM, "tree") come from one more round at the end whose
# times are not counted: polling every 50 ms takes CPU from the step it watches.
#
# Environment: BENCH_KEEP=1 keeps the work folder (the VMs are always removed);
# BENCH_ROUNDS, BENCH_DATA_MIB, BENCH_REWRITE_MIB, BENCH_DISK_SIZE as the options.
# Ratios are medians of the ratios within each round (the steps compared ran minutes
# apart at most, under the same host load). Exit status 0 when every target of issue 9
# is met, 1 otherwise.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -euo pipefail

CONSISTENCY=application
ALSO=
ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --disk-size) export BENCH_DISK_SIZE=${2:?--disk-size needs a size}; shift ;;
        --data) export BENCH_DATA_MIB=${2:?--data needs MiB}; shift ;;
        --rewrite) export BENCH_REWRITE_MIB=${2:?--rewrite needs MiB}; shift ;;
        --rounds) export BENCH_ROUNDS=${2:?--rounds needs a number}; shift ;;
        --consistency) CONSISTENCY=${2:?--consistency needs application or crash}; shift ;;
        --also) ALSO=${2:?--also needs a build folder}; shift ;;
        -h | --help) sed -n '2,/^# SPDX/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "bench-chain: unknown option $1" >&2; exit 2 ;;
        *) ARGS+=("$1") ;;
    esac
    shift
done
case "$CONSISTENCY" in application | crash) ;; *)
    echo "bench-chain: --consistency must be application or crash" >&2; exit 2 ;;
esac
set -- "${ARGS[@]}"
if [ -n "$ALSO" ]; then
    [ -x "$ALSO/plugin/vmrp" ] || { echo "bench-chain: no $ALSO/plugin/vmrp" >&2; exit 2; }
    ALSO_VMRP=$(cd "$ALSO" && pwd)/plugin/vmrp
fi

BENCH=bench-chain
# shellcheck source=tests/bench/bench-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
VM_A=${PREFIX}vmrp
VM_B=${PREFIX}vnb
REF_JOB=

abort_reference() {
    [ -z "$REF_JOB" ] || virsh -q -c "$URI" domjobabort "$VM_A" >/dev/null 2>&1
}
BENCH_CLEANUP=abort_reference
bench_setup "$@" -- virtnbdbackup /usr/bin/python3 strace

mkdir -p "$WORK/state" "$WORK/ref" "$WORK/vnb-state" "$WORK/repo-vmrp"
chown libvirt-qemu "$WORK/state" "$WORK/ref" "$WORK/vnb-state"
chmod 0700 "$WORK/state" "$WORK/ref" "$WORK/vnb-state"
# shellcheck disable=SC2034 # read through namerefs
declare -A FREEZE=()

# --- the reference: qemu-img convert of libvirt's pull-mode export -------------------
# reference KEY [qemu-img options]: one timed qemu-img convert of the export
reference() {
    local key=$1 sock=$WORK/ref/nbd.sock
    shift
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
    run_timed "$key" qemu-img convert "$@" -O qcow2 "nbd+unix:///vdb?socket=$sock" \
        "$WORK/ref-out.qcow2"
    virsh -q -c "$URI" domjobabort "$VM_A" >/dev/null
    REF_JOB=
    BYTES[$key]=$(du_bytes "$WORK/ref-out.qcow2")
    rm -f "$WORK/ref-out.qcow2"
}

# --- vmrp ----------------------------------------------------------------------------
vmrp_point() {
    local key=$1 before manifest vmrp=$VMRP
    shift
    if [ "${1:-}" = --vmrp ]; then
        vmrp=$2
        shift 2
    fi
    before=$(du_bytes "$WORK/repo-vmrp")
    run_timed "$key" env VMRP_REPO="$WORK/repo-vmrp" VMRP_STATE_DIR="$WORK/state" \
        "$vmrp" -c "$URI" rp-create "$VM_A" --consistency "$CONSISTENCY" \
        --exclude-disk vda "$@"
    BYTES[$key]=$(($(du_bytes "$WORK/repo-vmrp") - before))
    # sed, not head: head may leave before ls has written all, and ls dies of SIGPIPE
    # shellcheck disable=SC2012 # point ids are [0-9a-f-]
    manifest=$(ls -t "$WORK"/repo-vmrp/collections/*/points/*/point.json | sed -n 1p)
    [ "$(jq -r .consistency.achieved "$manifest")" = "$CONSISTENCY" ] ||
        die "$key: the vmrp point is not $CONSISTENCY-consistent ($manifest)"
    FREEZE[$key]=$(jq -r '.consistency.freeze_ms // 0' "$manifest")
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
    local nofreeze=()
    [ "$CONSISTENCY" = application ] || nofreeze=(-F /vmrp-bench-no-such-mountpoint)
    run_timed "$key" /usr/bin/python3 "$WORK/vnb-wrap.py" "$WORK/freeze-$key" \
        -U "$URI" -d "$VM_B" -l "$level" -i vdb -n -o "$dir" \
        -S "$WORK/vnb-state" -f "$WORK/vnb-state/nbd.sock" "${nofreeze[@]}"
    # shellcheck disable=SC2034
    BYTES[$key]=$(($(du_bytes "$dir") - before))
    FREEZE[$key]=$(awk '$1 == "fsFreeze" { f = $2 } $1 == "fsThaw" { t = $3 }
        END { if (f && t) printf "%d", (t - f) * 1000; else print "none" }' \
        "$WORK/freeze-$key" 2>/dev/null || echo none)
    if [ "$CONSISTENCY" = application ]; then
        [ "${FREEZE[$key]}" != none ] || die "$key: virtnbdbackup did not freeze the guest"
    else
        # its freeze of a mount point that does not exist freezes nothing
        ! grep -Eq 'Freezed \[[1-9]' "$WORK/err-$key" "$WORK/out-$key" ||
            die "$key: virtnbdbackup froze the guest"
        FREEZE[$key]=0
    fi
}

# --- the run -------------------------------------------------------------------------
# Does the reference write its output to disk? Counted, not assumed: the fsync family
# of calls qemu-img convert makes on its output file.
head -c 16M /dev/urandom >"$WORK/small.raw"
strace -f -qq -e trace=fdatasync,fsync,sync_file_range -o "$WORK/strace-ref" \
    qemu-img convert -O qcow2 "$WORK/small.raw" "$WORK/small.qcow2"
REF_SYNCS=$(grep -cE 'fdatasync|fsync' "$WORK/strace-ref" || true)
rm -f "$WORK/small.raw" "$WORK/small.qcow2"
log "qemu-img convert -O qcow2 makes $REF_SYNCS fsync/fdatasync calls (strace -f)"

prepare_image
log "creating $VM_A and $VM_B ($CONSISTENCY consistency)"
create_vm "$VM_A"
create_vm "$VM_B"
"$GUEST" -c "$URI" "$VM_A" wait 120 >/dev/null
"$GUEST" -c "$URI" "$VM_B" wait 120 >/dev/null

MEM_ROUNDS=1
for ((r = 1; r <= ROUNDS + MEM_ROUNDS; r++)); do
    BENCH_POLL=$([ "$r" -le "$ROUNDS" ] && echo 0 || echo 1)
    reference "ref,$r"
    reference "refd,$r" -t none
    vmrp_point "vfull,$r" --full
    if [ -n "$ALSO" ]; then
        # this build, the other twice, this one again: the order's effect cancels
        vmrp_point "afull,$r" --vmrp "$ALSO_VMRP" --full
        vmrp_point "afull2,$r" --vmrp "$ALSO_VMRP" --full
        vmrp_point "vfull2,$r" --full
        T[vpair,$r]=$((T[vfull,$r] + T[vfull2,$r]))
        T[apair,$r]=$((T[afull,$r] + T[afull2,$r]))
        CPU[vpair,$r]=$((CPU[vfull,$r] + CPU[vfull2,$r]))
        CPU[apair,$r]=$((CPU[afull,$r] + CPU[afull2,$r]))
    fi
    vnb_backup "nfull,$r" full "$WORK/repo-vnb-$r"
    rewrite "$VM_A" "$REWRITE_MIB" "$r"
    rewrite "$VM_B" "$REWRITE_MIB" "$r"
    vmrp_point "vinc,$r"
    vnb_backup "ninc,$r" inc "$WORK/repo-vnb-$r"
    vmrp_point "vnoop,$r"
    also=${ALSO:+"; $ALSO full ${T[afull,$r]}, ${T[afull2,$r]} ms, vmrp full ${T[vfull2,$r]} ms"}
    log "round $r$([ "$BENCH_POLL" = 0 ] || echo ' (memory; not counted)'):" \
        "qemu-img ${T[ref,$r]}, -t none ${T[refd,$r]} ms; vmrp full ${T[vfull,$r]}," \
        "inc ${T[vinc,$r]} ms, unchanged inc ${T[vnoop,$r]} ms; virtnbdbackup full" \
        "${T[nfull,$r]}, inc ${T[ninc,$r]} ms$also" \
        "(load $(cut -d' ' -f1 /proc/loadavg))"
done

# --- the table -----------------------------------------------------------------------
declare -A MT=()
for s in ref refd vfull nfull vinc ninc vnoop ${ALSO:+afull}; do
    MT[$s]=$(median T "$s")
done

echo
echo "vmrp bench-chain: $DISK_SIZE qcow2 disk with $DATA_MIB MiB of random data, the guest"
echo "rewrites $REWRITE_MIB MiB between full and increment; TCG guests; $(nproc) CPUs;" \
    "medians of $ROUNDS rounds" \
    "(RSS: maximum; VmHWM and tree polled in one more round)"
echo "consistency: $CONSISTENCY for vmrp and virtnbdbackup"
echo
printf '%-22s %7s %6s %9s %6s %8s %7s %8s %7s %8s\n' step "time s" "cpu s" "/qemu-img" \
    "/vnb" "RSS MiB" "+child" "tree MiB" "freeze" "repo MiB"
row() {
    local s=$1 label=$2 peer=$3 hwm freeze
    hwm=$(maximum HWM "$s")
    freeze=$([ "${s#ref}" != "$s" ] && echo - || echo "$(median FREEZE "$s") ms")
    printf '%-22s %7s %6s %9s %6s %8s %7s %8s %7s %8s\n' "$label" \
        "$(mib "${MT[$s]}" 1000)" "$(mib "$(median CPU "$s")" 1000)" "$(ratios "$s" ref)" \
        "$([ -n "$peer" ] && ratios "$s" "$peer" || echo -)" \
        "$([ "$hwm" -gt 0 ] && mib "$hwm" 1024 || echo -)" \
        "$(mib "$(maximum RSS "$s")" 1024)" "$(mib "$(maximum TREE "$s")" 1024)" "$freeze" \
        "$(mib "$(median BYTES "$s")" 1048576)"
}
row ref "qemu-img convert (ref)" ""
row refd "qemu-img -t none" ""
row vfull "vmrp full" nfull
[ -z "$ALSO" ] || row afull "vmrp full (--also)" nfull
row nfull "virtnbdbackup full" ""
row vinc "vmrp increment" ninc
row ninc "virtnbdbackup inc" ""
row vnoop "vmrp inc, no change" ""
echo
echo "cpu: user + system time of the step and the children it reaped (GNU time; the"
echo "guest's QEMU, which serves the export, is not counted for any of them)."
echo "RSS: peak of the process itself (VmHWM); +child: GNU time's maximum, which also"
echo "covers the children it reaped (qemu-img, qemu-nbd); tree: the peak of vmrp and"
echo "all its children at the same time, summed. repo: bytes allocated by the step"
echo "(virtnbdbackup also saves the kernel and initrd, 12 MiB, at each backup)."
echo "qemu-img convert (ref) flushes its output at the end ($REF_SYNCS fsync/fdatasync"
echo "calls on a 16 MiB convert, strace -f): the same durability as vmrp's points."
[ -z "$ALSO" ] ||
    echo "vmrp full (--also): by $ALSO_VMRP; vmrp full / it, A B B A: $(ratios vpair apair)x" \
        "(CPU time: $(awk -v a="$(median CPU vpair)" -v b="$(median CPU apair)" \
            'BEGIN { printf "%+d ms", (a - b) / 2 }') a point)"
echo

peak=$(printf '%s\n' "$(maximum TREE vfull)" "$(maximum TREE vinc)" "$(maximum TREE vnoop)" |
    sort -n | tail -n 1)
r_full_ref=$(ratios vfull ref)
r_full_refd=$(ratios vfull refd)
r_full_vnb=$(ratios nfull vfull)
r_inc_vnb=$(ratios ninc vinc)
target "full within 1.15x of qemu-img convert (${r_full_ref}x; of -t none: ${r_full_refd}x)" \
    "$r_full_ref <= 1.15"
target "full at least 2.5x faster than virtnbdbackup (${r_full_vnb}x)" "$r_full_vnb >= 2.5"
target "increment at least 4x faster than virtnbdbackup's (${r_inc_vnb}x)" "$r_inc_vnb >= 4"
target "increment with nothing changed under 0.3 s ($(mib "${MT[vnoop]}" 1000) s)" \
    "${MT[vnoop]} < 300"
target "peak RSS of vmrp and its children under 96 MiB ($(mib "$peak" 1024) MiB)" \
    "$peak < 98304"
[ "$BENCH_OK" = 1 ]
