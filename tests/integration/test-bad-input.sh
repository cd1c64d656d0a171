#!/bin/bash
# Bad input gets one clear error line, a non-zero exit, and changes nothing.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
. "$(dirname "$0")/lib.sh"

vm=$(new_vm bad)
vmrp rp-create "$vm" >/dev/null 2>"$WORK/err" || { comment "$WORK/err"; bail "first point failed"; }
point=$(vmrp --json rp-list "$vm" | jq -r '.[-1].id')

# refused: each one line, non-zero, nothing changed
refuse() {
  local what=$1
  shift
  local before after
  before=$(state_snapshot)
  expect_error "$WORK/err" "$@"
  local rc=$?
  after=$(state_snapshot)
  [ "$rc" = 0 ] && [ "$before" = "$after" ]
  check "$what"
}

refuse "unknown domain" vmrp rp-create "$TEST_ID-nosuchvm"
refuse "unknown point" vmrp rp-info 20000101-000000-abcdef
refuse "unknown point to restore" vmrp rp-restore 20000101-000000-abcdef --name "$TEST_ID-x"
refuse "malformed point id" vmrp rp-info '../../etc/passwd'
refuse "--name of an existing domain" vmrp rp-restore "$point" --name "$vm"
refuse "--name holding /" vmrp rp-restore "$point" --name "a/b"
refuse "--name holding .." vmrp rp-restore "$point" --name ".."
refuse "--name holding XML" vmrp rp-restore "$point" --name "<x>&'\""
refuse "unknown consistency" vmrp rp-create "$vm" --consistency perfect
refuse "excluding a disk the domain lacks" vmrp rp-create "$vm" --exclude-disk vdz
refuse "excluding every disk" vmrp rp-create "$vm" --exclude-disk vda
refuse "an unknown option" vmrp rp-create "$vm" --frobnicate
refuse "an unknown command" vmrp rp-frobnicate "$vm"
refuse "a missing argument" vmrp rp-info
refuse "--quick-rollback with --name" vmrp rp-restore "$point" --name x --quick-rollback

touch "$WORK/a-file"
refuse "a repository path that is a file" vmrp --repo "$WORK/a-file" rp-create "$vm"
refuse "reading a repository that does not exist" vmrp --repo "$WORK/none" rp-list "$vm"
mkdir "$WORK/foreign" && echo x >"$WORK/foreign/data"
refuse "a folder that is not a repository" vmrp --repo "$WORK/foreign" rp-create "$vm"

# an unwritable repository: a read-only bind mount of the real one
mkdir "$WORK/mnt-ro"
cp -a "$VMRP_REPO/." "$WORK/mnt-ro/"
mount --bind "$WORK/mnt-ro" "$WORK/mnt-ro" && mount -o remount,ro,bind "$WORK/mnt-ro"
refuse "an unwritable repository" vmrp --repo "$WORK/mnt-ro" rp-create "$vm"
umount "$WORK/mnt-ro"

# a repository on a full file system: a clear error, no point, the chain
# intact, the new checkpoint removed
mkdir "$WORK/mnt-full"
mount -t tmpfs -o size=3m tmpfs "$WORK/mnt-full"
vmrp --repo "$WORK/mnt-full" rp-create "$vm" >/dev/null 2>&1   # a first, small point
guest "$vm" exec -- /bin/sh -c 'dd if=/dev/urandom of=/data/big bs=1M count=4 conv=fsync 2>/dev/null'
full_before=$(ls "$WORK"/mnt-full/collections/*/points)
chk_before=$(virsh -q -c "$VMRP_URI" checkpoint-list "$vm" --name | sort)
expect_error "$WORK/err" vmrp --repo "$WORK/mnt-full" rp-create "$vm" &&
  grep -qi "space" "$WORK/err"
check "a full file system: one clear error"
[ "$full_before" = "$(ls "$WORK"/mnt-full/collections/*/points)" ] &&
  [ "$chk_before" = "$(virsh -q -c "$VMRP_URI" checkpoint-list "$vm" --name | sort)" ]
check "a full file system: no point, no new checkpoint"
umount "$WORK/mnt-full"

# a damaged manifest or domain XML: a clear error before anything is made
dir=$(ls -d "$VMRP_REPO"/collections/*/points/"$point")
cp "$dir/domain.xml" "$WORK/domain.xml.good"
echo '<domain><name>broken' >"$dir/domain.xml"
refuse "a point whose domain.xml is corrupt" vmrp rp-restore "$point" --name "$TEST_ID-y"
cp "$WORK/domain.xml.good" "$dir/domain.xml"
cp "$dir/point.json" "$WORK/point.json.good"
echo '{"format": 1, "id": ' >"$dir/point.json"
refuse "a point whose manifest is corrupt" vmrp rp-restore "$point" --name "$TEST_ID-w"
vmrp rp-info "$point" 2>&1 | grep -q "^State: *Damaged"
check "rp-info shows a point whose manifest is corrupt as Damaged"
cp "$WORK/point.json.good" "$dir/point.json"
mv "$dir/vda.qcow2" "$WORK/vda.qcow2"
refuse "a point whose image is missing" vmrp rp-restore "$point" --name "$TEST_ID-z"
mv "$WORK/vda.qcow2" "$dir/vda.qcow2"

vmrp rp-info "$point" >/dev/null
check "the point is still readable after all that"
