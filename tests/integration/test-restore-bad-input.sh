#!/bin/bash
# Restore and disk-create refuse bad input with one clear line before
# anything changes: a corrupt domain.xml or manifest, a missing image, an
# unknown or excluded disk, an existing output; disk-create's image is
# exact, from a full point and from an increment.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
. "$(dirname "$0")/lib.sh"

vm=$(new_vm src --disks 2)
vmrp rp-create "$vm" --exclude-disk vdb >/dev/null 2>&1
check "a point without the second disk"
full=$(vmrp --json rp-list "$vm" | jq -r '.[-1].id')
guest "$vm" exec -- /bin/sh -c 'echo changed >/data/changed && sync'
vmrp rp-create "$vm" --exclude-disk vdb >/dev/null 2>&1
check "a second point"
incr=$(vmrp --json rp-list "$vm" | jq -r '.[-1].id')
pdir() { ls -d "$VMRP_REPO"/collections/*/points/"$1"; }

# --- disk-create
vmrp disk-create "$full" vda --output "$WORK/full-vda.qcow2" >"$WORK/dc.out" 2>"$WORK/dc.err"
check "disk-create of a full point's disk"
qemu-img compare -q "$(pdir "$full")/vda.qcow2" "$WORK/full-vda.qcow2" &&
  ! qemu-img info "$WORK/full-vda.qcow2" | grep -q 'backing file'
check "its image is standalone and exact (qemu-img compare)"
vmrp disk-create "$incr" vda --output "$WORK/incr-vda.raw" --format raw >/dev/null 2>&1
check "disk-create of an increment's disk as raw"
qemu-img compare -q "$(pdir "$incr")/vda.qcow2" "$WORK/incr-vda.raw" &&
  [ "$(qemu-img info --output=json "$WORK/incr-vda.raw" | jq -r .format)" = raw ]
check "its raw image is exact: the whole chain was read"
grep -q '100%' "$WORK/dc.err"
check "disk-create reports progress"
job=$(vmrp --json disk-create "$incr" vda --output "$WORK/async-vda.qcow2" --async | jq -r .job)
vmrp job-wait "$job" >/dev/null &&
  [ "$(vmrp --json job-info "$job" | jq -r .result)" = "$WORK/async-vda.qcow2" ] &&
  qemu-img compare -q "$(pdir "$incr")/vda.qcow2" "$WORK/async-vda.qcow2"
check "disk-create --async: job-wait, then its image is exact"

before=$(state_snapshot)
expect_error "$WORK/e1" vmrp disk-create "$full" vda --output "$WORK/full-vda.qcow2"
check "disk-create refuses an existing output"
expect_error "$WORK/e2" vmrp disk-create "$full" vdz --output "$WORK/x.qcow2"
check "disk-create refuses an unknown target"
expect_error "$WORK/e3" vmrp disk-create "$full" vdb --output "$WORK/x.qcow2" &&
  grep -q excluded "$WORK/e3"
check "disk-create refuses an excluded disk"
expect_error "$WORK/e4" vmrp disk-create "$full" vda --output "$WORK/x.vmdk" --format vmdk
check "disk-create refuses an unknown format"
expect_error "$WORK/e5" vmrp disk-create "$full" vdz --output "$WORK/x.qcow2" --async &&
  grep -q "no disk 'vdz'" "$WORK/e5"
check "disk-create --async refuses an unknown target itself, not as a failed job"
expect_error "$WORK/e6" vmrp --repo "$WORK/no-repo" rp-restore "$full" --name "$TEST_ID-x" \
  --async && [ ! -e "$WORK/no-repo" ]
check "rp-restore --async with no repository there: refused, none made"
[ ! -e "$WORK/x.qcow2" ] && [ ! -e "$WORK/x.vmdk" ] && [ "$before" = "$(state_snapshot)" ]
check "nothing was written"

# --- excluded disks: beside, the new VM has no such disk
vmrp --json rp-restore "$full" --name "$TEST_ID-beside" >"$WORK/beside.json" 2>/dev/null
check "restore beside of a point with an excluded disk"
[ "$(jq -r '.excluded_disks[0]' "$WORK/beside.json")" = vdb ] &&
  ! virsh -q -c "$VMRP_URI" domblklist "$TEST_ID-beside" | grep -q '^ *vdb '
check "the new VM has no vdb and the output says so"
job=$(vmrp --json rp-restore "$incr" --name "$TEST_ID-async" --async | jq -r .job)
vmrp job-wait "$job" >/dev/null &&
  [ "$(vmrp --json job-info "$job" | jq -r .result)" = "$TEST_ID-async" ] &&
  qemu-img compare -q "$(pdir "$incr")/vda.qcow2" \
    "$(virsh -q -c "$VMRP_URI" domblklist "$TEST_ID-async" | awk '$1 == "vda" {print $2}')"
check "rp-restore --async beside: job-wait, its result is the new domain, its disk exact"

# --- corrupt points: refused before anything changes, original untouched
uuid=$(virsh -q -c "$VMRP_URI" domuuid "$vm")
d=$(pdir "$incr")
bad() {  # bad WHAT FILE: a restore of $incr in place and beside both fail
  local what=$1
  before=$(state_snapshot)
  expect_error "$WORK/bad-$what-1" vmrp rp-restore "$incr" --power-on --shutdown-timeout 0
  check "in place: refused with a $what"
  expect_error "$WORK/bad-$what-2" vmrp rp-restore "$incr" --keep-original
  check "beside: refused with a $what"
  [ "$before" = "$(state_snapshot)" ] && [ "$(virsh -q -c "$VMRP_URI" domstate "$vm")" = running ] &&
    [ "$(virsh -q -c "$VMRP_URI" domuuid "$vm")" = "$uuid" ]
  check "nothing changed, the original still runs ($what)"
}
cp "$d/domain.xml" "$WORK/domain.xml"
echo '<domain><name>broken' >"$d/domain.xml"
bad "corrupt domain.xml"
cp "$WORK/domain.xml" "$d/domain.xml"
cp "$d/point.json" "$WORK/point.json"
echo '{"format": 1, "id": ' >"$d/point.json"
bad "corrupt manifest"
cp "$WORK/point.json" "$d/point.json"
mv "$d/vda.qcow2" "$WORK/vda.qcow2"
bad "missing image"
mv "$WORK/vda.qcow2" "$d/vda.qcow2"
[ "$(point_field "$incr" .kind)" = incremental ]
check "the second point is an increment"
mv "$(pdir "$full")/vda.qcow2" "$WORK/vda.qcow2"
bad "missing parent image"
mv "$WORK/vda.qcow2" "$(pdir "$full")/vda.qcow2"
# --- in place, the files written and used are the live domain's own, never a
# path that only the repository names (hardening: point.json's source)
scratch="$WORK/scratch.img"
head -c 1M /dev/urandom >"$scratch"
sum=$(sha256sum <"$scratch")
vda=$(virsh -q -c "$VMRP_URI" domblklist "$vm" | awk '$1 == "vda" {print $2}')
vdb=$(virsh -q -c "$VMRP_URI" domblklist "$vm" | awk '$1 == "vdb" {print $2}')
bad_in_place() {  # bad_in_place WHAT: an in-place restore of $incr is refused
  local what=$1
  before=$(state_snapshot)
  expect_error "$WORK/inplace-$what" vmrp rp-restore "$incr" --shutdown-timeout 0
  check "in place: refused with $what"
  [ "$before" = "$(state_snapshot)" ] && [ "$(sha256sum <"$scratch")" = "$sum" ] &&
    [ "$(virsh -q -c "$VMRP_URI" domstate "$vm")" = running ]
  check "the other file untouched, the original still runs ($what)"
}
jq --arg s "$scratch" '(.disks[] | select(.target == "vda") | .source) = $s' \
  "$WORK/point.json" >"$d/point.json"
bad_in_place "point.json naming another file"
sed "s|$vda|$scratch|" "$WORK/domain.xml" >"$d/domain.xml"
bad_in_place "point.json and domain.xml naming another file"
cp "$WORK/point.json" "$d/point.json"
bad_in_place "domain.xml naming another file"
sed "s|$vdb|$scratch|" "$WORK/domain.xml" >"$d/domain.xml"
bad_in_place "domain.xml naming another file for an excluded disk"
cp "$WORK/domain.xml" "$d/domain.xml"

expect_error "$WORK/e9" vmrp rp-restore "$incr" --quick-rollback --instant
check "--quick-rollback with --instant is refused clearly"
expect_error "$WORK/e10" vmrp rp-restore --finalize "$vm"
check "--finalize of a domain that is not instantly restored is refused"
