#!/bin/bash
# Collections: collection-info shows a domain's points, their size, the
# current chain and the policy; collection-delete removes every point, their
# checkpoints and the policy, and is refused before anything changes while a
# point is protected or another vmrp works on the domain; unknown domains
# are refused.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
. "$(dirname "$0")/lib.sh"

vm=$(new_vm coll --disks 2)
virsh_() { virsh -q -c "$VMRP_URI" "$@"; }
uuid=$(virsh_ domuuid "$vm")

for i in 1 2 3; do
  guest "$vm" exec -- /bin/sh -c \
    "dd if=/dev/urandom of=/dev/vdb bs=1M seek=$i count=1 conv=fsync 2>/dev/null" >/dev/null
  vmrp rp-create "$vm" --consistency crash >/dev/null 2>&1 || bail "rp-create $i failed"
done
vmrp policy-set "$vm" --keep-last 5 | comment
info=$(vmrp --json collection-info "$vm")
[ "$(jq '.points | length' <<<"$info")" = 3 ] && [ "$(jq .chain_length <<<"$info")" = 3 ] &&
  [ "$(jq -r .uuid <<<"$info")" = "$uuid" ] && [ "$(jq -r .policy <<<"$info")" != null ] &&
  [ "$(jq .bytes <<<"$info")" -gt 0 ]
check "collection-info: three points, one chain of three, a policy"
vmrp collection-info "$vm" | comment
vmrp collection-list | grep -q "$vm"
check "collection-list lists it"

first=$(jq -r '.points[0]' <<<"$info")
vmrp rp-protect "$first" >/dev/null
before=$(state_snapshot)
expect_error "$WORK/e1" vmrp collection-delete "$vm" && grep -q "$first is protected" "$WORK/e1"
check "collection-delete with a protected point is refused"
exec 9>>"$VMRP_REPO/collections/$uuid/.lock"
flock -n 9 || bail "cannot take the collection's lock"
expect_error "$WORK/e2" vmrp collection-delete "$vm" && grep -q busy "$WORK/e2"
check "collection-delete while another vmrp works on the domain is refused as busy"
exec 9>&-
expect_error "$WORK/e3" vmrp collection-delete "$TEST_ID-nosuchvm"
check "collection-delete of an unknown domain is refused"
expect_error "$WORK/e4" vmrp collection-info "$TEST_ID-nosuchvm"
check "collection-info of an unknown domain is refused"
[ "$before" = "$(state_snapshot)" ] && [ "$(virsh_ checkpoint-list "$vm" --name | wc -l)" = 3 ]
check "nothing changed: three points, three checkpoints"

vmrp rp-unprotect "$first" >/dev/null
vmrp collection-delete "$vm" >"$WORK/delete.out" 2>&1
check "collection-delete"
comment "$WORK/delete.out"
! vmrp collection-list | grep -q "$vm" && [ ! -e "$VMRP_REPO/collections/$uuid" ] &&
  [ -z "$(ls -A "$VMRP_REPO/collections")" ] &&
  [ -z "$(virsh_ checkpoint-list "$vm" --name)" ]
check "no collection, no folder, no checkpoint is left"
[ "$(virsh_ domstate "$vm")" = running ]
check "the domain itself runs on, untouched"
vmrp --json rp-create "$vm" --consistency crash 2>/dev/null | jq -r .kind | grep -qx full
check "its next point is a full one, in a new collection"
