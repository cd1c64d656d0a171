#!/bin/bash
# A raw disk has no persistent bitmaps: vmrp copies it whole at every point,
# and the manifest says so, while the qcow2 disk of the same domain goes on
# with increments; every point restores bit for bit, beside and in place
# (where the raw disk comes back raw); QuickRollback, which needs the
# bitmaps, is refused with the way out before anything changes.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
. "$(dirname "$0")/lib.sh"

vm=$(new_vm raw --disks 2 --raw)
virsh_() { virsh -q -c "$VMRP_URI" "$@"; }
in_guest() { guest "$vm" exec -- /bin/sh -c "$1" >/dev/null; }
disk_path() { virsh_ domblklist "$vm" | awk -v t="$1" '$1 == t {print $2}'; }
copy_of() { point_field "$(point_of "$1")" ".disks[] | select(.target == \"$2\") | .copy"; }

[ "$(qemu-img info -U --output=json "$(disk_path vdb)" | jq -r .format)" = raw ]
check "the domain's vdb is a raw file"
in_guest 'dd if=/dev/urandom of=/dev/vdb bs=1M seek=2 count=4 conv=fsync 2>/dev/null'
exact_point "$vm" first
check "a first point"
[ "$(copy_of first vdb)" = "whole disk" ] && [ "$(copy_of first vda)" = "whole disk" ]
check "it holds both disks whole"

in_guest 'dd if=/dev/urandom of=/dev/vdb bs=1M seek=20 count=2 conv=fsync 2>/dev/null;
          echo second >/data/second; sync'
exact_point "$vm" second
check "a second point"
[ "$(point_field "$(point_of second)" .kind)" = incremental ] &&
  [ "$(copy_of second vda)" = "changes since the parent point" ] &&
  [ "$(copy_of second vdb)" = "whole disk" ]
check "an increment of the qcow2 disk, the raw disk whole again"

restores_exact first
check "the first point restores bit for bit beside the domain"
restores_exact second
check "the second point restores bit for bit beside the domain"

before=$(state_snapshot)
expect_error "$WORK/qr" vmrp rp-restore "$(point_of first)" --quick-rollback &&
  grep -q "vdb is raw, not qcow2" "$WORK/qr" && grep -q "without --quick-rollback" "$WORK/qr"
check "QuickRollback is refused for a raw disk, with the way out"
[ "$before" = "$(state_snapshot)" ] && [ "$(virsh_ domstate "$vm")" = running ]
check "and nothing changed"

vmrp rp-restore "$(point_of first)" --shutdown-timeout 0 >"$WORK/inplace.out" 2>&1
check "the first point restored in place"
comment "$WORK/inplace.out"
[ "$(qemu-img info --output=json "$(disk_path vdb)" | jq -r .format)" = raw ] &&
  virsh_ dumpxml "$vm" | grep -q "type='raw'"
check "its vdb is a raw file again, and the domain says raw"
for t in vda vdb; do
  qemu-img compare -q "$WORK/ref/first-$t.raw" "$(disk_path $t)"
  check "disk $t equals the first point bit for bit"
done
