#!/bin/bash
# Issue 16, restore side: repository values never choose the host files that
# root writes.
#  item 2: in place, the files written are the live domain's own disks: a
#          point.json (or domain.xml) whose disk names another file is refused
#          and that file is left alone;
#  item 3: a disk that is a symbolic link keeps its link, and the file it
#          names keeps its mode and owner (not the link's 0777);
#  item 9: beside the original, a block-device disk is refused without
#          --disk-dir (no regular file put in /dev), and restored with it.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
. "$(dirname "$0")/lib.sh"

virsh_() { virsh -q -c "$VMRP_URI" "$@"; }
disk_of() { virsh_ domblklist "$1" | awk -v t="$2" '$1 == t {print $2}'; }

vm=$(new_vm hr --disks 2)
vmrp rp-create "$vm" --consistency crash >"$WORK/create.out" 2>&1
check "rp-create"
point=$(vmrp --json rp-list "$vm" | jq -r '.[-1].id')
[ -n "$point" ] && [ "$point" != null ] || bail "no point listed"
pdir=$(ls -d "$VMRP_REPO"/collections/*/points/"$point")
cp "$pdir/point.json" "$WORK/point.json.good"
cp "$pdir/domain.xml" "$WORK/domain.xml.good"
virsh_ destroy "$vm" >/dev/null
vdb=$(disk_of "$vm" vdb)
[ -f "$vdb" ] || bail "no vdb file"

# --- item 2: the manifest's source is not a path to write
scratch="$WORK/scratch.bin"
head -c 1M /dev/urandom >"$scratch"
md5=$(md5sum <"$scratch")
jq --arg s "$scratch" '(.disks[] | select(.target == "vdb") | .source) = $s' \
  "$WORK/point.json.good" >"$pdir/point.json"
expect_error "$WORK/e1" vmrp rp-restore "$point" --shutdown-timeout 0
check "hardening 2: an in-place restore whose manifest names another file for vdb is refused"
# the point's domain.xml says the same: the live domain's disk decides
sed -i "s|$vdb|$scratch|" "$pdir/domain.xml"
expect_error "$WORK/e2" vmrp rp-restore "$point" --shutdown-timeout 0 &&
  grep -q "not the domain's disk" "$WORK/e2"
check "hardening 2: manifest and domain.xml naming another file than the domain's disk: refused"
[ "$(md5sum <"$scratch")" = "$md5" ] && [ "$(disk_of "$vm" vdb)" = "$vdb" ]
check "hardening 2: the file named by the point is untouched, the domain still uses its disk"
cp "$WORK/point.json.good" "$pdir/point.json"
cp "$WORK/domain.xml.good" "$pdir/domain.xml"

# --- item 3: a symlinked disk keeps its link and its file's mode and owner
real="$WORK/real-vdb.qcow2"
mv "$vdb" "$real" && ln -s "$real" "$vdb" && chmod 0640 "$real" && chown nobody:root "$real"
check "vdb made a symbolic link to a 0640 file of nobody"
qemu-io -f qcow2 -c 'write -q -P 0x33 0 1M' "$real" >/dev/null && ! qemu-img compare -q "$pdir/vdb.qcow2" "$vdb"
check "the disk moved on after the point"
vmrp rp-restore "$point" --shutdown-timeout 0 >"$WORK/r3.out" 2>&1
check "hardening 3: in-place restore of a domain whose disk is a link"
comment "$WORK/r3.out"
[ -L "$vdb" ] && [ "$(readlink "$vdb")" = "$real" ]
check "hardening 3: the link is still a link to the same file"
[ "$(stat -L -c '%a %U' "$vdb")" = "640 nobody" ]
check "hardening 3: the disk keeps mode 0640 and owner nobody"
qemu-img compare -q "$pdir/vdb.qcow2" "$vdb" && qemu-img compare -q "$pdir/vdb.qcow2" "$real"
check "hardening 3: the file holds the point's disk"
[ "$(disk_of "$vm" vdb)" = "$vdb" ] && ! ls "$WORK" | grep -q vmrp-old
check "hardening 3: the domain still names the link; nothing set aside is left"

# --- item 6: an in-place restore killed while it copies is undone by the next
# command that takes the domain's lock; the domain cannot autostart meanwhile
if [ "$VMRP_FAULT_POINTS" = true ]; then
  uuid=$(virsh_ domuuid "$vm")
  vda=$(disk_of "$vm" vda)
  virsh_ autostart "$vm" >/dev/null
  md5sum "$vda" "$real" >"$WORK/k.md5"
  VMRP_FAULT=disk-copy-running:kill "$VMRP" rp-restore "$point" --shutdown-timeout 0 \
    >"$WORK/k.out" 2>&1
  [ $? = 137 ] && ls "$(dirname "$vda")" | grep -q vmrp-old
  check "hardening 6: the restore is killed mid-copy, the originals set aside"
  [ -f "$VMRP_STATE_DIR/restore-$uuid.json" ] &&
    [ "$(virsh_ dominfo "$vm" | awk '/^Autostart:/ {print $2}')" = disable ]
  check "hardening 6: a journal records it, and the domain's autostart is off meanwhile"
  vmrp --json repo-check "$vm" | jq -e '[.[].kind] == ["interrupted-restore"]' >/dev/null
  check "hardening 6: repo-check reports the interrupted restore"
  # the next command on the domain (a QuickRollback: it fails on its own, as the
  # in-place restore above removed the checkpoints) puts the originals back
  "$VMRP" rp-restore "$point" --quick-rollback >"$WORK/k2.out" 2>&1
  comment "$WORK/k2.out"
  md5sum -c --quiet "$WORK/k.md5" && ! ls "$(dirname "$vda")" "$WORK" | grep -q vmrp-old &&
    [ -L "$vdb" ]
  check "hardening 6: the next command put the original disks back bit for bit"
  [ ! -e "$VMRP_STATE_DIR/restore-$uuid.json" ] &&
    [ "$(virsh_ dominfo "$vm" | awk '/^Autostart:/ {print $2}')" = enable ] &&
    [ "$(virsh_ domstate "$vm")" = "shut off" ]
  check "hardening 6: the journal is gone, autostart is on again, the domain off as it was"
  # once more, and repo-check --repair puts them back
  VMRP_FAULT=disk-copy-running:kill "$VMRP" rp-restore "$point" --shutdown-timeout 0 \
    >"$WORK/k3.out" 2>&1
  [ $? = 137 ] && [ -f "$VMRP_STATE_DIR/restore-$uuid.json" ] &&
    vmrp --json repo-check --repair "$vm" >"$WORK/k3.json" &&
    jq -e '[.[] | select(.kind == "interrupted-restore" and .repaired)] | length == 1' \
      "$WORK/k3.json" >/dev/null &&
    md5sum -c --quiet "$WORK/k.md5" && [ ! -e "$VMRP_STATE_DIR/restore-$uuid.json" ] &&
    [ "$(virsh_ dominfo "$vm" | awk '/^Autostart:/ {print $2}')" = enable ]
  check "hardening 6: killed again, repo-check --repair puts the originals back"
  virsh_ autostart --disable "$vm" >/dev/null
fi

# --- item 9: a block-device disk beside the original needs --disk-dir
dev="/dev/$TEST_ID-vdb"
virsh_ dumpxml --inactive "$vm" >"$WORK/live.xml"
test_cleanup() {
  [ -f "$WORK/live.xml" ] && virsh_ define "$WORK/live.xml" >/dev/null 2>&1
  rm -f /dev/"$TEST_ID"-* /dev/"$TEST_ID"*.qcow2
}
python3 - "$WORK/live.xml" "$WORK/block.xml" "$vdb" "$dev" <<'EOF'
import sys
s = open(sys.argv[1]).read()
f = "<source file='%s'" % sys.argv[3]
i = s.index(f)
j = s.rindex("<disk type='file'", 0, i)
s = s[:j] + "<disk type='block'" + s[j + len("<disk type='file'"):i] + \
    "<source dev='%s'" % sys.argv[4] + s[i + len(f):]
open(sys.argv[2], 'w').write(s)
EOF
virsh_ define "$WORK/block.xml" >/dev/null && [ "$(disk_of "$vm" vdb)" = "$dev" ]
check "the domain's vdb is now the block device $dev"
jq --arg s "$dev" '(.disks[] | select(.target == "vdb") | .source) = $s' \
  "$WORK/point.json.good" >"$pdir/point.json"
python3 - "$WORK/domain.xml.good" "$pdir/domain.xml" "$vdb" "$dev" <<'EOF'
import sys
s = open(sys.argv[1]).read()
f = "<source file='%s'" % sys.argv[3]
i = s.index(f)
j = s.rindex("<disk type='file'", 0, i)
s = s[:j] + "<disk type='block'" + s[j + len("<disk type='file'"):i] + \
    "<source dev='%s'" % sys.argv[4] + s[i + len(f):]
open(sys.argv[2], 'w').write(s)
EOF
expect_error "$WORK/e9" vmrp rp-restore "$point" --name "$TEST_ID-bd" &&
  grep -q -- "--disk-dir" "$WORK/e9"
check "hardening 9: beside a block-device disk without --disk-dir: refused, --disk-dir named"
! ls /dev/"$TEST_ID"* 2>/dev/null | grep -q qcow2 && ! virsh_ dominfo "$TEST_ID-bd" >/dev/null 2>&1
check "hardening 9: no file put in /dev, no domain defined"
mkdir "$WORK/dd"
vmrp rp-restore "$point" --name "$TEST_ID-bd" --disk-dir "$WORK/dd" >"$WORK/r9.out" 2>&1 &&
  [ "$(disk_of "$TEST_ID-bd" vdb)" = "$WORK/dd/$TEST_ID-bd-vdb.qcow2" ]
check "hardening 9: with --disk-dir the block-device disk is restored into that folder"
comment "$WORK/r9.out"
qemu-img compare -q "$pdir/vdb.qcow2" "$WORK/dd/$TEST_ID-bd-vdb.qcow2"
check "hardening 9: the new disk holds the point's disk"
