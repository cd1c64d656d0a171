#!/bin/bash
# An application-consistent point of a running guest under load, restored
# as a new VM with --power-on: the new VM boots with the data the guest's
# freeze hook saw at the point, on both disks, beside the untouched original.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
. "$(dirname "$0")/lib.sh"

vm=$(new_vm src --workload --disks 2)
# a pattern on the blank second disk, written from inside the guest
guest "$vm" exec -- /bin/sh -c \
  'dd if=/dev/urandom of=/dev/vdb bs=1M seek=8 count=4 conv=fsync 2>/dev/null &&
   dd if=/dev/vdb bs=1M skip=8 count=4 2>/dev/null | md5sum' >"$WORK/vdb.md5"
check "wrote a pattern on the second disk"
sleep 3   # let the workload write records

vmrp rp-create "$vm" >"$WORK/create.out" 2>"$WORK/create.err"
check "rp-create of a running guest under load"
comment "$WORK/create.out" "$WORK/create.err"
point=$(vmrp --json rp-list "$vm" | jq -r '.[-1].id')
[ -n "$point" ] && [ "$point" != null ] || bail "no point listed"

[ "$(point_field "$point" .consistency.achieved)" = application ]
check "the point is application-consistent"
[ "$(point_field "$point" .state)" = Succeeded ]
check "the point's state is Succeeded"
freeze_ms=$(point_field "$point" .consistency.freeze_ms)
[ "$freeze_ms" -ge 0 ] && [ "$freeze_ms" -lt 10000 ]
check "the freeze window is recorded ($freeze_ms ms)"
[ -n "$(virsh -q -c "$VMRP_URI" checkpoint-list "$vm" --name | grep "^vmrp-$point$")" ]
check "the point's checkpoint exists in libvirt"

guest "$vm" cat /run/fsfreeze.log >"$WORK/hook.log"
comment "$WORK/hook.log"
grep -q '^freeze ' "$WORK/hook.log" && grep -q '^thaw ' "$WORK/hook.log"
check "the guest's freeze hook ran for freeze and thaw"
records=$(sed -n 's/^freeze .* records=\([0-9]*\) .*/\1/p' "$WORK/hook.log" | tail -1)
md5=$(sed -n 's/^freeze .* md5=\([0-9a-f]*\)$/\1/p' "$WORK/hook.log" | tail -1)
[ -n "$records" ] && [ "$records" -gt 0 ]
check "the workload had written $records records at the point"
[ "$(guest "$vm" freeze-status)" = thawed ]
check "the guest is thawed"

new="$TEST_ID-restored"
vmrp rp-restore "$point" --name "$new" --power-on >"$WORK/restore.out" 2>"$WORK/restore.err"
check "rp-restore --name --power-on"
comment "$WORK/restore.out" "$WORK/restore.err"
[ "$(virsh -q -c "$VMRP_URI" domstate "$new")" = running ]
check "the restored VM is running"
guest "$new" wait 120 >/dev/null
check "the restored VM boots to its guest agent"

# the restored guest's workload goes on appending: its first $records records
# are the point's
got_md5=$(guest "$new" exec -- /bin/sh -c "head -n $records /data/records | md5sum" | cut -d' ' -f1)
[ "$got_md5" = "$md5" ]
check "the restored VM's records are bit for bit those at the point ($got_md5)"
guest "$new" exec -- /usr/bin/vmrp-verify-records | comment
check "every restored record's checksum is right"
guest "$new" exec -- /bin/sh -c 'dd if=/dev/vdb bs=1M skip=8 count=4 2>/dev/null | md5sum' \
  >"$WORK/vdb.restored.md5"
cmp -s "$WORK/vdb.md5" "$WORK/vdb.restored.md5"
check "the second disk's data is restored"

[ "$(virsh -q -c "$VMRP_URI" domuuid "$vm")" != "$(virsh -q -c "$VMRP_URI" domuuid "$new")" ]
check "the restored VM has a new UUID"
mac_of() { virsh -q -c "$VMRP_URI" domiflist "$1" | awk '{print $5}'; }
[ -n "$(mac_of "$new")" ] && [ "$(mac_of "$vm")" != "$(mac_of "$new")" ]
check "the restored VM has a new MAC address"
! virsh -q -c "$VMRP_URI" domblklist "$new" | awk '{print $2}' | \
  grep -Fxf <(virsh -q -c "$VMRP_URI" domblklist "$vm" | awk '{print $2}')
check "the restored VM has disk files of its own"
[ -z "$(virsh -q -c "$VMRP_URI" checkpoint-list "$new" --name)" ]
check "the restored VM has no checkpoints"

[ "$(virsh -q -c "$VMRP_URI" domstate "$vm")" = running ]
check "the original is still running"
now=$(guest "$vm" exec -- /bin/sh -c 'wc -l </data/records' | tr -d ' ')
[ "$now" -gt "$records" ]
check "the original's workload went on ($now records)"

# the point's image, read without vmrp or a guest, holds exactly the file
# the freeze hook saw
img=$(ls "$VMRP_REPO"/collections/*/points/"$point"/vda.qcow2)
qemu-img convert -O raw "$img" "$WORK/vda.raw" &&
  [ "$(debugfs -R 'cat /records' "$WORK/vda.raw" 2>/dev/null | md5sum | cut -d' ' -f1)" = "$md5" ]
check "the point's image holds /data/records exactly as at the freeze (debugfs)"
rm -f "$WORK/vda.raw"

# the point's image is exactly what the restore wrote
vmrp --json rp-restore "$point" --name "$new-2" >"$WORK/restore2.json"
check "a second restore of the same point, powered off"
qemu-img compare -q "$img" "$(jq -r '.disks[0]' "$WORK/restore2.json" | cut -d= -f2-)"
check "the restored disk equals the point's image (qemu-img compare)"
