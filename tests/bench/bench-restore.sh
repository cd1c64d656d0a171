#!/bin/bash
# bench-restore.sh: times the restores of vmrp (full beside, --instant, QuickRollback,
# full in place) against virtnbdrestore plus virsh define and start (issue 4, item 5)
#
# Usage: tests/bench/bench-restore.sh [BUILD_DIR]    (as root, by hand; not run by CI)
#
# Two identical VMs (TCG), each with a 4 GiB qcow2 data disk vdb that holds 1.5 GiB of
# random data, prepared on the host before the first boot. Both tools back up the whole
# VM (vda and vdb) once: a vmrp full point of A, a virtnbdbackup full backup of B. Each
# round times, until the restored VM runs:
#   - vmrp rp-restore --name NEW --power-on (a full copy, beside A);
#   - vmrp rp-restore --name NEW --instant (overlays over the point's images);
#   - virtnbdrestore -c of B's backup into a new folder, virsh define, virsh start;
#   - A's guest overwrites about REWRITE_MIB/4 of vdb, then vmrp rp-restore
#     --quick-rollback --power-on; the same after REWRITE_MIB (a rollback clears the
#     point's bitmaps: the second writes back what changed since the first);
#   - A's guest overwrites REWRITE_MIB, then a full in-place restore of the point
#     (--power-on --shutdown-timeout 0). It drops A's checkpoints: the next round starts
#     from a new full point (not timed).
# The restored VMs are removed (not timed) as soon as they run. The page cache is dropped
# before every timed step. The table gives medians over the rounds (RSS: the maximum).
#
# Environment: BENCH_ROUNDS (3), BENCH_DATA_MIB (1536), BENCH_REWRITE_MIB (200),
# BENCH_DISK_SIZE (4G), BENCH_KEEP=1 keeps the work folder (the VMs are always removed).
# Ratios are medians of the ratios within each round. Exit status 0 when every target of
# the issue is met, 1 otherwise.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -euo pipefail

BENCH=bench-restore
# shellcheck source=tests/bench/bench-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
VM_A=${PREFIX}vmrp
VM_B=${PREFIX}vnb
REWRITE_MIB=$((REWRITE_MIB - REWRITE_MIB % 8))         # written in 8 equal pieces
SMALL_MIB=$((REWRITE_MIB / 4 - REWRITE_MIB / 4 % 8))    # about a quarter, the same way
[ "$SMALL_MIB" -ge 8 ] || { echo "bench-restore: BENCH_REWRITE_MIB must be at least 32" >&2; exit 1; }
bench_setup "$@" -- virtnbdbackup virtnbdrestore
# its table has GNU time's RSS only: nothing polls beside the steps (bench-lib.sh)
BENCH_POLL=0

mkdir -p "$WORK/state" "$WORK/vnb-state" "$WORK/repo-vmrp" "$WORK/restored"
chown libvirt-qemu "$WORK/state" "$WORK/vnb-state"
chmod 0700 "$WORK/state" "$WORK/vnb-state"
chmod 0755 "$WORK/restored"
VMRP_CMD=(env VMRP_REPO="$WORK/repo-vmrp" VMRP_STATE_DIR="$WORK/state" "$VMRP" -c "$URI")
# shellcheck disable=SC2034 # read through namerefs
declare -A WB=()

# A restored VM goes (not timed): powered off, undefined, its disks deleted.
drop_vm() {
    "$TESTVM" remove "$1"
    rm -rf "${WORK:?}/restored/"*
}

# A new full point of VM A: POINT.
POINT=
new_point() {
    local start
    "$GUEST" -c "$URI" "$VM_A" wait 300 >/dev/null
    start=$(now_ms)
    POINT=$("${VMRP_CMD[@]}" --json rp-create "$VM_A" --full 2>"$WORK/point.err" |
        jq -r .id) || { cat "$WORK/point.err" >&2; die "rp-create of $VM_A failed"; }
    log "vmrp full point $POINT of $VM_A: $(($(now_ms) - start)) ms"
}

# --- virtnbdrestore, virsh define, virsh start as one step ---------------------------
# virtnbdrestore 1.9.15 -c points the last disk only at the restored file (fixed
# upstream in virtnbdbackup PR #232): the other disks' paths are set here, in the step.
cat >"$WORK/vnb-restore.sh" <<'EOF'
#!/bin/bash
set -euo pipefail
uri=$1 backup=$2 out=$3 name=$4 olddir=$5
virtnbdrestore -U "$uri" -i "$backup" -o "$out" -c -N "$name" -n -f "$out.sock" \
    -L "$out.log"
config=$(ls "$out"/vmconfig*.xml)
sed -i "s|\([\"']\)$olddir/|\1$out/|g" "$config"
virsh -q -c "$uri" define "$config" >/dev/null
virsh -q -c "$uri" start "$name" >/dev/null
EOF

# --- the run -------------------------------------------------------------------------
prepare_image
log "creating $VM_A and $VM_B"
create_vm "$VM_A"
create_vm "$VM_B"
"$GUEST" -c "$URI" "$VM_B" wait 300 >/dev/null
new_point
start=$(now_ms)
virtnbdbackup -U "$URI" -d "$VM_B" -l full -n -o "$WORK/backup-vnb" \
    -S "$WORK/vnb-state" -f "$WORK/vnb-state/nbd.sock" >"$WORK/vnb-backup.log" 2>&1 ||
    { tail -n 20 "$WORK/vnb-backup.log" >&2; die "virtnbdbackup failed"; }
log "virtnbdbackup full backup of $VM_B: $(($(now_ms) - start)) ms"

for ((r = 1; r <= ROUNDS; r++)); do
    name=${PREFIX}full-$r
    run_timed "full,$r" "${VMRP_CMD[@]}" rp-restore "$POINT" --name "$name" --power-on \
        --disk-dir "$WORK/restored"
    drop_vm "$name"

    name=${PREFIX}inst-$r
    run_timed "inst,$r" "${VMRP_CMD[@]}" rp-restore "$POINT" --name "$name" --instant \
        --disk-dir "$WORK/restored"
    uuid=$(virsh -q -c "$URI" domuuid "$name")
    drop_vm "$name"
    # the domain is gone: this only ends its use of the repository
    "${VMRP_CMD[@]}" rp-restore --finalize "$uuid" >/dev/null

    name=${PREFIX}vnbr-$r
    run_timed "vnb,$r" bash "$WORK/vnb-restore.sh" "$URI" "$WORK/backup-vnb" \
        "$WORK/restored/vnb" "$name" "$TESTDIR/$VM_B"
    drop_vm "$name"

    for step in qrs qr; do
        mib=$([ "$step" = qrs ] && echo "$SMALL_MIB" || echo "$REWRITE_MIB")
        rewrite "$VM_A" "$mib" "$r"
        run_timed "$step,$r" "${VMRP_CMD[@]}" --json rp-restore "$POINT" --quick-rollback \
            --power-on
        BYTES[$step,$r]=$(jq -r .bytes_written "$WORK/out-$step,$r")
        WB[$step,$r]=$(jq -r .write_back_ms "$WORK/out-$step,$r")
    done

    rewrite "$VM_A" "$REWRITE_MIB" "$r"
    run_timed "inplace,$r" "${VMRP_CMD[@]}" rp-restore "$POINT" --power-on \
        --shutdown-timeout 0
    log "round $r: full ${T[full,$r]}, instant ${T[inst,$r]}, virtnbdrestore" \
        "${T[vnb,$r]}, rollback $SMALL_MIB MiB ${T[qrs,$r]}, $REWRITE_MIB MiB" \
        "${T[qr,$r]}, in place ${T[inplace,$r]} ms (load $(cut -d' ' -f1 /proc/loadavg))"
    [ "$r" -eq "$ROUNDS" ] || new_point
done

# --- the table -----------------------------------------------------------------------
echo
echo "vmrp bench-restore: $DISK_SIZE qcow2 disk vdb with $DATA_MIB MiB of random data and"
echo "the guest's 64 MiB vda, whole-VM backups; TCG guests; $(nproc) CPUs; medians of" \
    "$ROUNDS rounds"
echo "(RSS: maximum); times: until the restored VM runs (the tool returned)"
echo
printf '%-38s %7s %5s %9s %8s %8s %9s\n' step "time s" /vnb /in-place "RSS MiB" \
    "written" "write-back"
row() {
    local s=$1 label=$2 vnb=$3 inplace=$4
    printf '%-38s %7s %5s %9s %8s %8s %9s\n' "$label" "$(mib "$(median T "$s")" 1000)" \
        "$([ "$vnb" = 1 ] && ratios "$s" vnb || echo -)" \
        "$([ "$inplace" = 1 ] && ratios "$s" inplace || echo -)" \
        "$(mib "$(maximum RSS "$s")" 1024)" \
        "$([ -n "${BYTES[$s,1]:-}" ] && mib "$(median BYTES "$s")" 1048576 || echo -)" \
        "$([ -n "${WB[$s,1]:-}" ] && mib "$(median WB "$s")" 1000 || echo -)"
}
row full "vmrp full restore (--power-on)" 1 0
row inst "vmrp --instant" 1 0
row vnb "virtnbdrestore+define+start" 0 0
row qrs "vmrp quick rollback, $SMALL_MIB MiB changed" 0 1
row qr "vmrp quick rollback, $REWRITE_MIB MiB changed" 0 1
row inplace "vmrp full in-place restore" 0 0
echo

qrs_ms=$(median WB qrs)
qr_ms=$(median WB qr)
slope=$(awk -v a="$qrs_ms" -v b="$qr_ms" -v d=$((REWRITE_MIB - SMALL_MIB)) \
    'BEGIN { printf "%.1f", (b - a) / d }')
fixed=$(awk -v a="$qrs_ms" -v s="$slope" -v m="$SMALL_MIB" \
    'BEGIN { printf "%.2f", (a - s * m) / 1000 }')
echo "quick rollback write-back: $slope ms per changed MiB plus $fixed s (from the" \
    "$SMALL_MIB and"
echo "$REWRITE_MIB MiB rollbacks); the rest of its time is the domain's stop and start."
echo "RSS: GNU time's maximum, which covers the children reaped (qemu-nbd, virsh)."
echo "written: the rollback's bytes_written in MiB (both disks; the guest's own writes"
echo "count); write-back: its write_back_ms in s."
echo

r_vnb=$(ratios vnb full)
r_qr=$(ratios qr inplace)
inst_ms=$(median T inst)
w_qr=$(ratio "$(median BYTES qr)" $((REWRITE_MIB * 1048576)))
target "full restore at least 2x faster than virtnbdrestore+define+start (${r_vnb}x)" \
    "$r_vnb >= 2"
target "--instant under 2 s ($(mib "$inst_ms" 1000) s)" "$inst_ms < 2000"
target "quick rollback of $REWRITE_MIB MiB faster than a full in-place restore (${r_qr}x)" \
    "$r_qr < 1"
target "quick rollback writes 1-2x the changed bytes (${w_qr}x)" "$w_qr >= 1 && $w_qr <= 2"
[ "$BENCH_OK" = 1 ]
