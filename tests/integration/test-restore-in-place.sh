#!/bin/bash
# rp-restore in place (neither --name nor --keep-original): the original is
# stopped and replaced by the point, keeping its name, UUID and MAC; a
# failure after its disks were set aside (a define that fails for real, and
# the fault point restore-after-set-aside when built with -Dfault_points)
# gives the original back exactly, and so does job-abort of a restore run
# with --async while qemu-img copies; a restore while the domain is busy is
# refused before anything changes.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
. "$(dirname "$0")/lib.sh"

virsh_() { virsh -q -c "$VMRP_URI" "$@"; }
mac_of() { virsh_ domiflist "$1" | awk '{print $5}'; }
disk_of() { virsh_ domblklist "$1" | awk -v t="$2" '$1 == t {print $2}'; }
# what must come back exactly after a failed restore of a running original
# fail_after_copy OUT CMD...: CMD fails; its progress lines aside, its last
# line on stderr is one error
fail_after_copy() {
  local out=$1
  shift
  if "$@" >"$out.stdout" 2>"$out.all"; then
    echo "# unexpectedly succeeded: $*"
    return 1
  fi
  grep -v '^[a-z]*: [0-9]*% (' "$out.all" >"$out"
  comment "$out"
  [ "$(wc -l <"$out")" = 1 ] && grep -q '^error: ' "$out"
}
original_state() {
  virsh_ dumpxml --inactive "$vm" | md5sum
  virsh_ checkpoint-list "$vm" --name
  virsh_ domuuid "$vm"
  stat -c '%i %U %a %n' "$(disk_of "$vm" vda)" "$(disk_of "$vm" vdb)"
  ls "$(dirname "$(disk_of "$vm" vda)")" | grep -c 'vmrp-old' || true
}

vm=$(new_vm src --workload --disks 2)
guest "$vm" exec -- /bin/sh -c \
  'dd if=/dev/urandom of=/dev/vdb bs=1M seek=8 count=4 conv=fsync 2>/dev/null &&
   dd if=/dev/vdb bs=1M skip=8 count=4 2>/dev/null | md5sum' >"$WORK/vdb.md5"
check "wrote a pattern on the second disk"
sleep 2
vmrp rp-create "$vm" >"$WORK/create.out" 2>&1
check "rp-create"
point=$(vmrp --json rp-list "$vm" | jq -r '.[-1].id')
[ -n "$point" ] && [ "$point" != null ] || bail "no point listed"
guest "$vm" cat /run/fsfreeze.log >"$WORK/hook.log"
records=$(sed -n 's/^freeze .* records=\([0-9]*\) .*/\1/p' "$WORK/hook.log" | tail -1)
md5=$(sed -n 's/^freeze .* md5=\([0-9a-f]*\)$/\1/p' "$WORK/hook.log" | tail -1)
[ -n "$records" ] && [ "$records" -gt 0 ] || bail "no records at the point"
pdir=$(ls -d "$VMRP_REPO"/collections/*/points/"$point")
uuid=$(virsh_ domuuid "$vm")
mac=$(mac_of "$vm")
# the original moves on after the point: its second disk changes too
guest "$vm" exec -- /bin/sh -c 'dd if=/dev/zero of=/dev/vdb bs=1M seek=8 count=4 conv=fsync 2>/dev/null'
sleep 2

# --- bad input, refused before anything changes
before=$(state_snapshot)
expect_error "$WORK/e1" vmrp rp-restore "$point" --quick-rollback --keep-original
check "--quick-rollback with --keep-original is refused"
expect_error "$WORK/e2" vmrp rp-restore "$point" --quick-rollback --name "$TEST_ID-x"
check "--quick-rollback with --name is refused"
expect_error "$WORK/e3" vmrp rp-restore "$point" --name "$vm"
check "--name of an existing domain is refused"
# the collection's lock, as rp-create holds it while it takes a point
exec 9>>"$VMRP_REPO/collections/$uuid/.lock"
flock -n 9 || bail "cannot take the collection's lock"
expect_error "$WORK/e4" vmrp rp-restore "$point" --shutdown-timeout 0 && grep -q busy "$WORK/e4"
check "a restore while rp-create holds the domain is refused as busy"
exec 9>&-
[ "$before" = "$(state_snapshot)" ] && [ "$(virsh_ domstate "$vm")" = running ]
check "nothing changed, the original still runs"

# --- a failure after the disks were set aside: the define fails for real
# (the point's XML names a machine type QEMU does not have)
cp "$pdir/domain.xml" "$WORK/domain.xml.good"
sed -i "s/machine='[^']*'/machine='vmrp-no-such-machine'/" "$pdir/domain.xml"
original_state >"$WORK/orig.before"
records_before=$(guest "$vm" exec -- /bin/sh -c 'sync; wc -l </data/records' | tr -d ' ')
fail_after_copy "$WORK/e5" vmrp rp-restore "$point" --power-on --shutdown-timeout 0 &&
  grep -q 'cannot define the restored domain' "$WORK/e5"
check "an in-place restore whose define fails is reported"
cp "$WORK/domain.xml.good" "$pdir/domain.xml"
original_state >"$WORK/orig.after"
diff "$WORK/orig.before" "$WORK/orig.after" | comment
check "the original's disks (same files), definition and checkpoints are back"
[ "$(virsh_ domstate "$vm")" = running ] && guest "$vm" wait 120 >/dev/null
check "the original runs again and its agent answers"
now=$(guest "$vm" exec -- /bin/sh -c 'wc -l </data/records' | tr -d ' ')
[ "$now" -ge "$records_before" ]
check "the original's data is its own, not the point's ($now >= $records_before records)"

# the same with the original shut off: its disks must be bit for bit the same
virsh_ destroy "$vm" >/dev/null
md5sum "$(disk_of "$vm" vda)" "$(disk_of "$vm" vdb)" >"$WORK/off.before"
sed -i "s/machine='[^']*'/machine='vmrp-no-such-machine'/" "$pdir/domain.xml"
fail_after_copy "$WORK/e6" vmrp rp-restore "$point" --power-on
grep -q 'cannot define the restored domain' "$WORK/e6"
check "the define of the restore fails with the original shut off"
cp "$WORK/domain.xml.good" "$pdir/domain.xml"
md5sum -c --quiet "$WORK/off.before" && [ "$(virsh_ domstate "$vm")" = "shut off" ]
check "a failed restore of a shut-off original leaves its disks bit for bit and it off"

if grep -q '^#define VMRP_FAULT_POINTS' "$(dirname "$VMRP")/../config.h" 2>/dev/null; then
  virsh_ start "$vm" >/dev/null && guest "$vm" wait 120 >/dev/null
  original_state >"$WORK/orig.before"
  fail_after_copy "$WORK/e7" env VMRP_FAULT=restore-after-set-aside \
    "$VMRP" rp-restore "$point" --power-on --shutdown-timeout 0 &&
    grep -q 'restore-after-set-aside' "$WORK/e7"
  check "fault injected right after the disks were set aside"
  original_state >"$WORK/orig.after"
  diff "$WORK/orig.before" "$WORK/orig.after" | comment
  [ "$(virsh_ domstate "$vm")" = running ]
  check "after the fault the original is back exactly and running"

  # an in-place restore run as a job, aborted while qemu-img writes a disk
  out=$(VMRP_FAULT=disk-copy-running:hang VMRP_FAULT_REACHED="$WORK/fault-reached" \
    vmrp --json rp-restore "$point" --power-on --shutdown-timeout 0 --async)
  check "rp-restore --async returns"
  job=$(jq -r .job <<<"$out")
  wait_reached disk-copy-running && [ "$(vmrp --json job-info "$job" | jq -r .state)" = Running ] &&
    [ "$(virsh_ domstate "$vm")" = "shut off" ] &&
    ls "$(dirname "$(disk_of "$vm" vda)")" | grep -q vmrp-old
  check "job $job runs: the original is stopped, its disks set aside, qemu-img started"
  vmrp job-abort "$job" >"$WORK/abort.out"
  check "job-abort"
  comment "$WORK/abort.out"
  [ "$(vmrp --json job-info "$job" | jq -r .state)" = Failed ] &&
    vmrp --json job-info "$job" | jq -r .message | grep -q '^aborted'
  check "the aborted job says Failed: aborted"
  original_state >"$WORK/orig.after"
  diff "$WORK/orig.before" "$WORK/orig.after" | comment
  [ "$(virsh_ domstate "$vm")" = running ]
  check "after the abort the original is back exactly and running"
  virsh_ destroy "$vm" >/dev/null
else
  echo "# vmrp built without -Dfault_points: the fault point restore-after-set-aside is not tested"
fi

# --- the restore in place, from the running original
virsh_ start "$vm" >/dev/null && guest "$vm" wait 120 >/dev/null
start=$(date +%s.%N)
vmrp rp-restore "$point" --power-on --shutdown-timeout 5 >"$WORK/restore.out" 2>"$WORK/restore.err"
check "rp-restore in place --power-on"
end=$(date +%s.%N)
comment "$WORK/restore.out"
echo "# in-place restore of 2 x 64 MiB took $(awk "BEGIN {print $end - $start}") s (5 s shutdown bound)"
[ "$(virsh_ domstate "$vm")" = running ] && [ "$(virsh_ domuuid "$vm")" = "$uuid" ] &&
  [ "$(mac_of "$vm")" = "$mac" ]
check "the restored domain runs with the same name, UUID and MAC"
[ -z "$(virsh_ checkpoint-list "$vm" --name)" ]
check "the old checkpoints are gone (their bitmaps went with the old disks)"
! ls "$(dirname "$(disk_of "$vm" vda)")" | grep -q vmrp-old
check "the set-aside disks were removed"
guest "$vm" wait 120 >/dev/null
check "the restored domain boots to its guest agent"
got=$(guest "$vm" exec -- /bin/sh -c "head -n $records /data/records | md5sum" | cut -d' ' -f1)
[ "$got" = "$md5" ]
check "its records are bit for bit those at the point"
guest "$vm" exec -- /bin/sh -c 'dd if=/dev/vdb bs=1M skip=8 count=4 2>/dev/null | md5sum' \
  >"$WORK/vdb.restored.md5"
cmp -s "$WORK/vdb.md5" "$WORK/vdb.restored.md5"
check "its second disk holds the point's pattern again"

# powered off: the disks equal the point's images
start=$(date +%s.%N)
vmrp rp-restore "$point" --shutdown-timeout 0 >"$WORK/restore2.out" 2>&1
check "rp-restore in place without --power-on"
end=$(date +%s.%N)
echo "# in-place restore of 2 x 64 MiB, original destroyed at once, not started: $(awk "BEGIN {print $end - $start}") s"
[ "$(virsh_ domstate "$vm")" = "shut off" ]
check "the restored domain is left off"
qemu-img compare -q "$pdir/vda.qcow2" "$(disk_of "$vm" vda)" &&
  qemu-img compare -q "$pdir/vdb.qcow2" "$(disk_of "$vm" vdb)"
check "its disks equal the point's images (qemu-img compare)"

virsh_ start "$vm" >/dev/null && guest "$vm" wait 120 >/dev/null
vmrp rp-create "$vm" >"$WORK/create2.out" 2>&1
check "the collection goes on: rp-create after the restore"
comment "$WORK/create2.out"
