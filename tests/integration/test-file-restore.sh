#!/bin/bash
# test-file-restore.sh: file-list and file-restore read a point's files in
# libguestfs's appliance (issue 12 part 2).
#
# One VM with three disks: vda the guest's ext4 /data (a file system on the
# whole disk), vdb a GPT disk with two ext4 partitions built on the host,
# vdc blank.  A file and a folder are written, a point taken (an increment:
# its image's backing chain gives the disk), then they are changed: the point
# lists and restores them as they were (content, mode, owner, mtime; the
# folder recursively, its link as a link); vdb's partitions are listed and a
# file of the second restores; the blank disk, an unknown path, an excluded
# disk, a damaged chain and a taken output name are clear one-line errors.
# Each file-list/file-restore starts the appliance (~20 s on TCG): several
# PATHs share one start.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
. "$(dirname "$0")/lib.sh"

virsh_() { virsh -q -c "$VMRP_URI" "$@"; }
# libguestfs strndup()s a buffer that has no NUL within the length given, as
# strndup allows; ASan's strict_string_checks takes that for an overflow.
[ -n "${ASAN_OPTIONS:-}" ] && export ASAN_OPTIONS="${ASAN_OPTIONS//strict_string_checks=1/strict_string_checks=0}"
in_guest() { guest "$vm" exec -- /bin/sh -c "$1"; }
exec 3>&1   # the TAP stream, for timed's notes while stdout goes to a file
timed() {   # timed WHAT CMD...: runs CMD, notes its time as a TAP comment
  local what=$1 t0=$SECONDS rc
  shift
  "$@"
  rc=$?
  echo "# time of $what: $((SECONDS - t0)) s" >&3
  return $rc
}

# ---- vdb: GPT, two ext4 partitions, made from folders without mounting ----
# vdb1 also holds a hostile name: a folder entry "zz/.zz" (a name a guest's file
# system can carry in its bytes, never a name of one file); no checksums there, so
# that the patched folder block stays readable.  The appliance's kernel drops such
# a name (readdir's verify_dirent_name); vmrp would refuse it too.
mkdir -p "$WORK/p1/evil" "$WORK/p2/docs"
echo "first partition" >"$WORK/p1/one.txt"
echo "hostile" >"$WORK/p1/evil/zzQQzz"
head -c 70000 /dev/urandom >"$WORK/p2/docs/two.bin"
truncate -s 24M "$WORK/p1.img" "$WORK/p2.img"
truncate -s 64M "$WORK/gpt.raw"
{ mkfs.ext4 -q -F -O ^metadata_csum -d "$WORK/p1" "$WORK/p1.img" &&
  off=$(grep -obUa zzQQzz "$WORK/p1.img" | cut -d: -f1) && [ "$(wc -w <<<"$off")" = 1 ] &&
  printf 'zz/.zz' | dd of="$WORK/p1.img" bs=1 seek="$off" conv=notrunc status=none &&
  mkfs.ext4 -q -F -d "$WORK/p2" "$WORK/p2.img" &&
  sgdisk -n 1:2048:+24M -n 2:51200:+24M "$WORK/gpt.raw" >/dev/null &&
  dd if="$WORK/p1.img" of="$WORK/gpt.raw" bs=512 seek=2048 conv=notrunc status=none &&
  dd if="$WORK/p2.img" of="$WORK/gpt.raw" bs=512 seek=51200 conv=notrunc status=none; } ||
  bail "cannot build the partitioned disk"

vm="$TEST_ID-f"
"$TESTVM" create "$vm" --disks 3 >&2 || bail "cannot create VM $vm"
vdb=$(virsh_ domblklist "$vm" | awk '$1 == "vdb" {print $2}')
qemu-img convert -O qcow2 "$WORK/gpt.raw" "$vdb" || bail "cannot write $vdb"
"$TESTVM" start "$vm" >&2 && guest "$vm" wait 120 >&2 || bail "VM $vm does not start"

vmrp rp-create "$vm" --consistency filesystem >"$WORK/p0.out" 2>&1 || bail "first point"

# ---- files as they are at the point ----
in_guest 'set -e
  head -c 100000 /dev/urandom >/data/report.txt; chmod 0640 /data/report.txt
  chown 1234:5678 /data/report.txt; touch -d "2021-03-04 05:06:07" /data/report.txt
  mkdir -p /data/tree/sub /data/tree/empty
  echo alpha >/data/tree/a.txt; head -c 5000 /dev/urandom >/data/tree/sub/b.bin
  chmod 0700 /data/tree/sub/b.bin; chmod 0750 /data/tree/sub; ln -s sub/b.bin /data/tree/link
  chown 42:43 /data/tree/a.txt; touch -d "2020-01-02 03:04:05" /data/tree/sub; sync' >/dev/null ||
  bail "cannot write the files in the guest"
# what the guest shows at the point: name mode uid gid size mtime
ref_stat() {
  in_guest "cd $1 && for f in \$(ls -A); do stat -c '%n %a %u %g %s %Y' \$f; done"
}
ref_stat /data/tree >"$WORK/ref-tree.ls"
ref_stat /data/tree/sub >"$WORK/ref-sub.ls"
in_guest 'stat -c "%a %u %g %s %Y" /data/report.txt; md5sum /data/report.txt | cut -d" " -f1
  cd /data/tree && find . | sort | while read f; do
    if [ -L "$f" ]; then echo "$f link $(readlink "$f")"
    elif [ -f "$f" ]; then echo "$f $(stat -c "%a %u %g %Y" "$f") $(md5sum <"$f" | cut -c1-32)"
    else echo "$f $(stat -c "%a %u %g" "$f")"; fi
  done' >"$WORK/ref-files" || bail "cannot read the files in the guest"

vmrp rp-create "$vm" --consistency filesystem >"$WORK/p1.out" 2>&1 || bail "second point"
comment "$WORK/p1.out"
point=$(vmrp --json rp-list "$vm" | jq -r '.[-1].id')
[ "$(point_field "$point" .kind)" = incremental ]
check "the files' point is an increment (read through its backing chain)"

# ---- changed after the point ----
in_guest 'echo changed >/data/report.txt; chmod 0666 /data/report.txt; rm -rf /data/tree/sub
  echo new >/data/tree/new.txt; sync' >/dev/null

# ---- vda: list ----
timed "file-list vda, two folders" vmrp --json file-list "$point" vda /tree /tree/sub \
  >"$WORK/list.json" 2>"$WORK/list.err"
check "file-list lists two folders of vda"
comment "$WORK/list.err"
to_ls() {   # the entries of listing N as the guest's stat lines
  jq -r --argjson n "$1" '.[$n].entries[] |
    "\(.name) \(.mode | tostring) \(.uid) \(.gid) \(.size) \(.mtime)"' "$WORK/list.json" |
    awk '{ printf "%s %o %s %s %s %s\n", $1, $2, $3, $4, $5, $6 }'
}
diff <(to_ls 0) "$WORK/ref-tree.ls" && diff <(to_ls 1) "$WORK/ref-sub.ls"
check "it shows what the guest showed at the point (names, modes, owners, sizes, mtimes)"
[ "$(jq -r '.[0].entries[] | select(.name == "link") | "\(.type) \(.link)"' "$WORK/list.json")" \
  = "symlink sub/b.bin" ]
check "a link is listed as a link, with its target"

# ---- vda: restore a file and a folder in one start ----
mkdir "$WORK/out"
timed "file-restore vda, a file and a folder" vmrp file-restore "$point" vda /report.txt /tree \
  --output "$WORK/out" >"$WORK/restore.out" 2>&1
check "file-restore restores a file and a folder"
comment "$WORK/restore.out"
{
  stat -c "%a %u %g %s %Y" "$WORK/out/report.txt"; md5sum <"$WORK/out/report.txt" | cut -c1-32
  (cd "$WORK/out/tree" && find . | LC_ALL=C sort | while read -r f; do
    if [ -L "$f" ]; then echo "$f link $(readlink "$f")"
    elif [ -f "$f" ]; then echo "$f $(stat -c "%a %u %g %Y" "$f") $(md5sum <"$f" | cut -c1-32)"
    else echo "$f $(stat -c "%a %u %g" "$f")"; fi
  done)
} >"$WORK/got-files"
diff "$WORK/got-files" "$WORK/ref-files" | comment
diff -q "$WORK/got-files" "$WORK/ref-files" >/dev/null
check "the point's versions: md5, mode, owner, mtime; the folder recursively, the link a link"
[ "$(stat -c %Y "$WORK/out/tree/sub")" = "$(date -u -d '2020-01-02 03:04:05' +%s)" ]
check "a folder keeps its mtime"
[ -z "$(find "$WORK/out" -name '.vmrp-*')" ]
check "no temporary folder is left"

expect_error "$WORK/exists" vmrp file-restore "$point" vda /tree --output "$WORK/out" &&
  grep -q "tree already exists" "$WORK/exists"
check "a restored name that exists is refused (before the appliance starts)"
expect_error "$WORK/nodir" vmrp file-restore "$point" vda /tree --output "$WORK/none" &&
  grep -q "no such folder" "$WORK/nodir"
check "a missing --output folder is refused"

# ---- vdb: partitions ----
timed "file-list vdb: /, vdb2:/docs, vdb1:/evil" \
  vmrp file-list "$point" vdb / vdb2:/docs vdb1:/evil >"$WORK/vdb.out" 2>&1
check "file-list lists the partitioned disk"
comment "$WORK/vdb.out"
grep -qx "vdb1 ext4" "$WORK/vdb.out" && grep -qx "vdb2 ext4" "$WORK/vdb.out" &&
  grep -q " 70000 .* two.bin$" "$WORK/vdb.out"
check "it shows vdb1 and vdb2 as ext4, and a partition's folder"
! grep -q 'zz' "$WORK/vdb.out"
check "the hostile name is not listed (the appliance's kernel drops a name with '/')"

mkdir "$WORK/out2"
# the unknown path last: what comes before it is restored, then the error
timed "file-restore vdb: two files, the hostile folder, an unknown path" \
  expect_error "$WORK/vdb-restore" vmrp file-restore "$point" vdb vdb2:/docs/two.bin \
  vdb1:/one.txt vdb1:/evil vdb1:/nope --output "$WORK/out2" &&
  grep -q "no such file or folder in restore point $point: vdb1:/nope" "$WORK/vdb-restore"
check "an unknown path is a clear error"
comment "$WORK/vdb-restore.stdout"
cmp "$WORK/out2/two.bin" "$WORK/p2/docs/two.bin" && cmp "$WORK/out2/one.txt" "$WORK/p1/one.txt"
check "files of the second and first partitions restore"
[ "$(ls -A "$WORK/out2" | tr '\n' ' ')" = "evil one.txt two.bin " ] &&
  [ -z "$(ls -A "$WORK/out2/evil")" ] && [ -z "$(find "$WORK/out2" -name 'zz*')" ] &&
  [ ! -e "$WORK/zz" ]
check "the hostile folder restores empty; nothing else is written, in the output or beside it"

timed "file-list blank vdc" expect_error "$WORK/blank" vmrp file-list "$point" vdc / &&
  grep -q "disk vdc of restore point $point holds no file system" "$WORK/blank"
check "a disk without a file system is a clear error"

vmrp rp-create "$vm" --consistency filesystem --exclude-disk vdc >"$WORK/p2.out" 2>&1 ||
  bail "third point"
excl=$(vmrp --json rp-list "$vm" | jq -r '.[-1].id')
expect_error "$WORK/excl" vmrp file-list "$excl" vdc / && grep -q "excluded" "$WORK/excl"
check "an excluded disk is a clear error"

first=$(vmrp --json rp-list "$vm" | jq -r '.[0].id')
uuid=$(virsh_ domuuid "$vm")
rm -f "$VMRP_REPO/collections/$uuid/points/$first/vda.qcow2"
expect_error "$WORK/damaged" vmrp file-list "$point" vda / &&
  grep -q "restore point $point is damaged" "$WORK/damaged"
check "a point whose backing chain is broken is a clear error (damaged)"
