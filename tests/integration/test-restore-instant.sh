#!/bin/bash
# rp-restore --instant: the restored domain runs at once on overlays whose
# backing files are the point's images (an increment: its whole chain) in
# the root-only repository.  QEMU may read exactly those images, libvirt
# does not chown them, the point and its parents are recorded as in use,
# and --finalize copies the data out and takes all of that back.  Then the
# same in place of the original.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
. "$(dirname "$0")/lib.sh"

virsh_() { virsh -q -c "$VMRP_URI" "$@"; }
disk_of() { virsh_ domblklist "$1" | awk -v t="$2" '$1 == t {print $2}'; }
as_qemu() { runuser -u libvirt-qemu -- "$@" >/dev/null 2>&1; }
hook_field() {  # hook_field records|md5: of the last freeze
  guest "$vm" cat /run/fsfreeze.log | sed -n "s/^freeze .* records=\([0-9]*\) md5=\([0-9a-f]*\)$/\\$1/p" | tail -1
}

vm=$(new_vm src --workload --disks 2)
guest "$vm" exec -- /bin/sh -c \
  'dd if=/dev/urandom of=/dev/vdb bs=1M seek=8 count=4 conv=fsync 2>/dev/null &&
   dd if=/dev/vdb bs=1M skip=8 count=4 2>/dev/null | md5sum' >"$WORK/vdb.md5"
sleep 2
vmrp rp-create "$vm" >/dev/null 2>&1
check "a first (full) point"
p1=$(vmrp --json rp-list "$vm" | jq -r '.[-1].id')
p1_records=$(hook_field 1)
p1_md5=$(hook_field 2)
sleep 3
vmrp rp-create "$vm" >/dev/null 2>&1
check "a second point"
p2=$(vmrp --json rp-list "$vm" | jq -r '.[-1].id')
records=$(hook_field 1)
md5=$(hook_field 2)
[ "$(point_field "$p2" .kind)" = incremental ]
check "the second point is an increment of the first"
sleep 2
vmrp rp-create "$vm" >/dev/null 2>&1
p3=$(vmrp --json rp-list "$vm" | jq -r '.[-1].id')
[ "$p3" != "$p2" ] || bail "no third point"
pdir() { ls -d "$VMRP_REPO"/collections/*/points/"$1"; }

# --- beside the original
new="$TEST_ID-instant"
start=$(date +%s.%N)
vmrp rp-restore "$p2" --name "$new" --instant >"$WORK/restore.out" 2>"$WORK/restore.err"
check "rp-restore --instant --name"
end=$(date +%s.%N)
comment "$WORK/restore.out" "$WORK/restore.err"
secs=$(awk "BEGIN {print $end - $start}")
echo "# instant restore (beside) to a running domain took $secs s"
[ "$(virsh_ domstate "$new")" = running ] && awk "BEGIN {exit !($secs < 5)}"
check "the instant VM runs at once ($secs s)"
overlay=$(disk_of "$new" vda)
qemu-img info -U "$overlay" | grep -q "backing file: $(pdir "$p2")/vda.qcow2"
check "its disk is an overlay over the point's image"
[ "$(stat -c %U "$overlay")" = libvirt-qemu ]
check "the overlay belongs to the QEMU user"

as_qemu head -c 512 "$(pdir "$p2")/vda.qcow2" && as_qemu head -c 512 "$(pdir "$p1")/vda.qcow2" &&
  as_qemu head -c 512 "$(pdir "$p2")/vdb.qcow2"
check "libvirt-qemu can read the point's images and those they build on"
! as_qemu cat "$(pdir "$p2")/point.json" && ! as_qemu cat "$(pdir "$p2")/domain.xml" &&
  ! as_qemu head -c 1 "$(pdir "$p3")/vda.qcow2" && ! as_qemu ls "$VMRP_REPO" &&
  ! as_qemu cat "$VMRP_REPO/repository.json"
check "the rest of the repository stays unreadable to libvirt-qemu"
[ -z "$(find "$VMRP_REPO" ! -user root)" ]
check "no file of the repository was chowned"

guest "$new" wait 120 >/dev/null
check "the instant VM boots to its guest agent"
got=$(guest "$new" exec -- /bin/sh -c "head -n $records /data/records | md5sum" | cut -d' ' -f1)
[ "$got" = "$md5" ]
check "its records are bit for bit those at the point"
guest "$new" exec -- /bin/sh -c 'dd if=/dev/vdb bs=1M skip=8 count=4 2>/dev/null | md5sum' \
  >"$WORK/vdb.new.md5"
cmp -s "$WORK/vdb.md5" "$WORK/vdb.new.md5"
check "its second disk holds the pattern"

new_uuid=$(virsh_ domuuid "$new")
rec="$VMRP_REPO/instant/$new_uuid.json"
jq -e --arg a "$p1" --arg b "$p2" '.points | index($a) != null and index($b) != null' "$rec" >/dev/null
check "the repository records that the VM uses the point and its parent"

start=$(date +%s.%N)
vmrp rp-restore --finalize "$new" >"$WORK/fin.out" 2>"$WORK/fin.err"
check "rp-restore --finalize"
end=$(date +%s.%N)
comment "$WORK/fin.out"
echo "# finalize (block pull of 2 x 64 MiB) took $(awk "BEGIN {print $end - $start}") s"
! qemu-img info -U "$(disk_of "$new" vda)" | grep -q 'backing file' &&
  ! qemu-img info -U "$(disk_of "$new" vdb)" | grep -q 'backing file'
check "the VM's disks no longer have backing files"
[ ! -e "$rec" ] && ! as_qemu head -c 1 "$(pdir "$p2")/vda.qcow2" &&
  [ "$(stat -c %a "$VMRP_REPO")" = 700 ] && [ "$(stat -c %a "$(pdir "$p2")/vda.qcow2")" = 600 ]
check "the use and the permissions were taken back"
guest "$new" exec -- /usr/bin/vmrp-verify-records | comment
check "its records are still whole"
virsh_ destroy "$new" >/dev/null; virsh_ start "$new" >/dev/null && guest "$new" wait 120 >/dev/null
check "it boots again on its own disks"

# --- in place of the original
uuid=$(virsh_ domuuid "$vm")
start=$(date +%s.%N)
vmrp rp-restore "$p1" --instant --shutdown-timeout 0 >"$WORK/inplace.out" 2>&1
check "rp-restore --instant in place"
end=$(date +%s.%N)
comment "$WORK/inplace.out"
echo "# instant restore in place took $(awk "BEGIN {print $end - $start}") s"
[ "$(virsh_ domstate "$vm")" = running ] && [ "$(virsh_ domuuid "$vm")" = "$uuid" ]
check "the original runs instantly restored, same name and UUID"
guest "$vm" wait 120 >/dev/null
got=$(guest "$vm" exec -- /bin/sh -c "head -n $p1_records /data/records | md5sum" | cut -d' ' -f1)
[ "$got" = "$p1_md5" ]
check "its records are those of the first point"
virsh_ destroy "$vm" >/dev/null
vmrp rp-restore --finalize "$vm" >/dev/null 2>&1 &&
  ! qemu-img info -U "$(disk_of "$vm" vda)" | grep -q 'backing file'
check "finalize of a shut-off instant VM (qemu-img rebase)"
[ -z "$(ls "$VMRP_REPO/instant")" ] && [ "$(stat -c %a "$VMRP_REPO")" = 700 ]
check "no use is left in the repository"
virsh_ start "$vm" >/dev/null && guest "$vm" wait 120 >/dev/null
check "the finalized VM boots"

# --- while a VM runs on a point, neither it nor the points it builds on can
# be deleted (last: a delete that went through would take them away)
vmrp rp-restore "$p2" --name "$TEST_ID-inuse" --instant >/dev/null 2>&1
check "another instant VM on the increment"
before=$(state_snapshot)
expect_error "$WORK/del2" vmrp rp-delete "$p2"
check "the point in use cannot be deleted"
expect_error "$WORK/del1" vmrp rp-delete "$p1"
check "the point it builds on cannot be deleted"
[ "$before" = "$(state_snapshot)" ]
check "the refused deletes changed nothing"
