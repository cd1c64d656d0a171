#!/bin/bash
# QuickRollback: an in-place restore that writes back only the blocks that
# changed since the point, found from the point's checkpoint bitmaps.  The
# disks then equal the point bit for bit, fewer bytes than the disks hold
# were written, the checkpoints newer than the point are gone, the next
# rollback writes back only what changed since the last one, and the next
# rp-create is correct.  This is also the CI-runner reset: prepared VM,
# point, a job changes the VM, rollback.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
. "$(dirname "$0")/lib.sh"

vm=$(new_vm qr --workload --disks 2)
virsh_() { virsh -q -c "$VMRP_URI" "$@"; }
in_guest() { guest "$vm" exec -- /bin/sh -c "$1" >/dev/null; }
disk_path() { virsh_ domblklist "$vm" | awk -v t="$1" '$1 == t {print $2}'; }

exact_point "$vm" prepared
check "the prepared VM's point (full)"
in_guest 'dd if=/dev/urandom of=/dev/vdb bs=1M seek=4 count=8 conv=fsync 2>/dev/null'
exact_point "$vm" later
check "a later point (increment)"
# the CI job: changes everywhere
in_guest 'dd if=/dev/urandom of=/dev/vdb bs=1M seek=20 count=4 conv=fsync 2>/dev/null;
          dd if=/dev/urandom of=/data/job bs=1M count=2 conv=fsync 2>/dev/null'
virsh_ destroy "$vm" >/dev/null
check "the VM stops (cleanly: QEMU stores its bitmaps)"

prepared=$(point_of prepared)
start=$(date +%s.%N)
vmrp --json rp-restore "$prepared" --quick-rollback >"$WORK/qr.json" 2>"$WORK/qr.err"
check "rp-restore --quick-rollback to the prepared point"
end=$(date +%s.%N)
comment "$WORK/qr.json" "$WORK/qr.err"
written=$(jq .bytes_written "$WORK/qr.json")
disks=$(jq .bytes_disks "$WORK/qr.json")
[ "$written" -gt 0 ] && [ "$written" -lt $((disks / 4)) ]
check "it wrote back $written of $disks bytes"
for t in vda vdb; do
  qemu-img compare -q "$WORK/ref/prepared-$t.raw" "$(disk_path $t)"
  check "disk $t equals the point bit for bit"
done
[ "$(virsh_ domstate "$vm")" = "shut off" ]
check "a domain that was off stays off"
! virsh_ checkpoint-list "$vm" --name | grep -q "$(point_of later)"
check "the checkpoint newer than the point is gone"
echo "# quick rollback: $(awk "BEGIN {print $end - $start}") s"
vmrp --json rp-restore "$prepared" --quick-rollback >"$WORK/qr-again.json" 2>/dev/null &&
  [ "$(jq .bytes_written "$WORK/qr-again.json")" = 0 ]
check "a second rollback with nothing changed since writes nothing back"

# the next point is correct: the chain goes on from what the disks hold
virsh_ start "$vm" >/dev/null && guest "$vm" wait 120 >/dev/null
check "the rolled back VM boots"
in_guest 'dd if=/dev/urandom of=/dev/vdb bs=1M seek=30 count=1 conv=fsync 2>/dev/null'
exact_point "$vm" next && restores_exact next
check "the next point is exact"
comment "$WORK/ref/next.out"

# while running: rolled back, started again
in_guest 'dd if=/dev/urandom of=/dev/vdb bs=1M seek=40 count=2 conv=fsync 2>/dev/null'
vmrp rp-restore "$(point_of next)" --quick-rollback >"$WORK/qr2.out" 2>&1
check "a rollback of a running VM"
comment "$WORK/qr2.out"
[ "$(virsh_ domstate "$vm")" = running ] && guest "$vm" wait 120 >/dev/null
check "it runs again and its agent answers"

# the time against a full in-place restore of the same point
start=$(date +%s.%N)
vmrp rp-restore "$(point_of next)" --shutdown-timeout 0 >/dev/null 2>&1
check "a full in-place restore of the same point, for the comparison"
end=$(date +%s.%N)
echo "# full in-place restore: $(awk "BEGIN {print $end - $start}") s"

# refused, nothing changed, when the point's checkpoint is gone
before=$(state_snapshot)
expect_error "$WORK/gone" vmrp rp-restore "$(point_of later)" --quick-rollback &&
  grep -q "without --quick-rollback" "$WORK/gone"
check "a point whose checkpoint is gone: refused, with the way out"
[ "$before" = "$(state_snapshot)" ]
check "and nothing changed"
