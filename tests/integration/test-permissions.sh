#!/bin/bash
# Permissions and secrets: the repository is root's alone (folders 0700,
# files 0600); while a point is taken, its NBD folder in the state folder
# belongs to the QEMU user with mode 0700 and nobody else can look in; vmrp
# creates nothing in world-writable folders (/tmp, /var/tmp, /dev/shm) and
# leaves nothing in the state folder; hostile names in the repository's files
# are refused before they reach a path.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
. "$(dirname "$0")/lib.sh"

QEMU_USER=libvirt-qemu
getent passwd "$QEMU_USER" >/dev/null || QEMU_USER=qemu

# as_nobody CMD...: runs CMD as an unprivileged user that is neither root nor QEMU
as_nobody() {
  setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all "$@"
}

# ww_created TRACE: the system calls of the traced processes that created
# something in a world-writable folder (/tmp, /var/tmp, /dev/shm) outside
# this test's own folder
ww_created() {
  grep -E '(open|openat|creat|mkdir|mkdirat|mknodat|rename|renameat2?|link|symlink)\(' "$1" |
    grep -E 'O_CREAT|mkdir|mknod|creat\(|rename|link' |
    grep -E '"(/tmp|/var/tmp|/dev/shm)/' |
    grep -v -F "\"$WORK/" || true
}

# ww_unsafe TRACE: those that an attacker could have prepared: a file opened
# with O_CREAT but without O_EXCL, a rename or link into such a folder
# (mkdir and O_EXCL fail on anything that is already there)
ww_unsafe() {
  ww_created "$1" | grep -E 'rename|link|mknod|creat\(|O_CREAT' | grep -v 'O_EXCL' || true
}

# ww_left TRACE: what of those is still there
ww_left() {
  ww_created "$1" | grep -oE '"(/tmp|/var/tmp|/dev/shm)/[^"]*"' | tr -d '"' | sort -u |
    while read -r path; do [ -e "$path" ] && echo "$path"; done
}

vm=$(new_vm perm)

# --- one point, traced -----------------------------------------------------
# LeakSanitizer cannot work under ptrace: leaks are checked by the other tests
ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 \
  strace -f -qq -o "$WORK/trace" \
  -e trace=execve,open,openat,creat,mkdir,mkdirat,mknodat,rename,renameat,renameat2,link,symlink \
  "$VMRP" rp-create "$vm" --consistency crash >"$WORK/out" 2>"$WORK/err"
check "a point is taken (traced)"
comment "$WORK/out" "$WORK/err"
point=$(vmrp --json rp-list "$vm" | jq -r '.[-1].id')

[ -d "$VMRP_REPO" ] && [ -z "$(find "$VMRP_REPO" -type d ! -perm 0700)" ]
check "every folder of the repository is 0700"
find "$VMRP_REPO" -type d ! -perm 0700 -printf '# %m %p\n'
[ -z "$(find "$VMRP_REPO" -type f ! -perm 0600)" ] &&
  [ -n "$(find "$VMRP_REPO" -type f -name '*.qcow2')" ]
check "every file of the repository (manifests, images, lock) is 0600"
find "$VMRP_REPO" -type f ! -perm 0600 -printf '# %m %p\n'
[ -z "$(find "$VMRP_REPO" ! -user root -o ! -group root)" ]
check "the repository belongs to root"
! as_nobody ls "$VMRP_REPO" >/dev/null 2>&1 &&
  ! as_nobody cat "$VMRP_REPO/repository.json" >/dev/null 2>&1
check "another user can neither list the repository nor read its files"

ww_created "$WORK/trace" | head -n 20 | sed 's/^/# created: /'
[ -z "$(ww_unsafe "$WORK/trace")" ]
check "vmrp and its helpers create files in /tmp, /var/tmp, /dev/shm only with O_EXCL"
[ -z "$(ww_left "$WORK/trace")" ]
check "and leave nothing there"
ww_left "$WORK/trace" | sed 's/^/# left: /'
grep -E 'execve\(' "$WORK/trace" | grep -E '"/bin/(ba|da)?sh"' | sed 's/^/# /'
! grep -qE 'execve\("[^"]*/(ba|da)?sh"' "$WORK/trace"
check "no shell runs between vmrp and the programs it starts"

[ "$(stat -c '%U %a' "$VMRP_STATE_DIR")" = "root 711" ]
check "the state folder is root's, 0711 (QEMU passes through, nobody lists it)"
[ -z "$(ls -A "$VMRP_STATE_DIR")" ]
check "nothing is left in the state folder after the point"
ls -lA "$VMRP_STATE_DIR" | sed 's/^/# /'

# --- while a backup job runs -----------------------------------------------
if [ "${VMRP_FAULT_POINTS:-false}" != true ]; then
  echo "ok $((TAP_N + 1)) - # SKIP the checks while a job runs need -Dfault_points=true"
  TAP_N=$((TAP_N + 1))
else
  rm -f "$WORK/reached"
  VMRP_FAULT=after-job-start:hang VMRP_FAULT_REACHED="$WORK/reached" \
    "$VMRP" rp-create "$vm" --consistency crash >"$WORK/hang.out" 2>"$WORK/hang.err" &
  pid=$!
  for _ in $(seq 1 600); do
    [ -s "$WORK/reached" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  [ "$(cat "$WORK/reached" 2>/dev/null)" = after-job-start ]
  check "vmrp stops inside the backup job (VMRP_FAULT=after-job-start:hang)"
  comment "$WORK/hang.err"

  jobdirs=$(find "$VMRP_STATE_DIR" -mindepth 1 -maxdepth 1)
  [ "$(echo "$jobdirs" | grep -c .)" = 1 ] &&
    [ "$(stat -c '%U %a' "$jobdirs")" = "$QEMU_USER 700" ]
  check "the job's folder belongs to $QEMU_USER with mode 0700"
  ls -lA "$VMRP_STATE_DIR" "$jobdirs" 2>&1 | sed 's/^/# /'
  [ -S "$jobdirs/nbd.sock" ]
  check "the NBD socket is inside the job's folder"
  virsh -q -c "$VMRP_URI" backup-dumpxml "$vm" >"$WORK/backup.xml" &&
    grep -q "exportname=.vmrp-vda." "$WORK/backup.xml"
  check "the backup job's export has vmrp's own name, set in its XML"
  ! as_nobody ls "$jobdirs" >/dev/null 2>&1 && ! as_nobody ls "$VMRP_STATE_DIR" >/dev/null 2>&1
  check "another user can list neither the state folder nor the job's folder"
  [ -z "$(find "$VMRP_REPO" -type d ! -perm 0700)" ] &&
    [ -z "$(find "$VMRP_REPO" -type f ! -perm 0600)" ] &&
    [ -n "$(find "$VMRP_REPO" -type d -name '.creating-*')" ]
  check "the point being written is 0700/0600 too"

  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  vmrp rp-create "$vm" --consistency crash >"$WORK/out2" 2>"$WORK/err2"
  check "after vmrp was killed inside the job, the next point is taken"
  comment "$WORK/err2"
  [ -z "$(ls -A "$VMRP_STATE_DIR")" ] && [ -z "$(find "$VMRP_REPO" -name '.creating-*')" ]
  check "and nothing of the killed point is left (state folder, repository)"
  ls -lA "$VMRP_STATE_DIR" | sed 's/^/# /'
fi

# --- hostile names in the repository's files --------------------------------
pdir=$(find "$VMRP_REPO/collections" -mindepth 3 -maxdepth 3 -type d -name "$point")
manifest="$pdir/point.json"
cp -p "$manifest" "$WORK/point.json.orig"

# tamper JQ-FILTER WHAT: the manifest edited by jq must be refused by rp-info
# and rp-restore, with one line, and nothing may appear outside the repository
tamper() {
  local filter=$1 what=$2 marker="$WORK/escape-$TAP_N"
  jq "$filter" "$WORK/point.json.orig" >"$manifest" || bail "jq $filter"
  vmrp rp-info "$point" 2>&1 | grep -q "^State: *Damaged" &&
    expect_error "$WORK/terr2" vmrp rp-restore "$point" --name "$TEST_ID-evil"
  check "a manifest with $what is refused"
  ! virsh -q -c "$VMRP_URI" dominfo "$TEST_ID-evil" >/dev/null 2>&1
  check "and no domain was made of it"
  rm -f "$marker"
}
tamper '.disks[0].image = "../../../../../../tmp/vmrp-escape.qcow2"' "an image path outside its folder"
tamper '.disks[0].image = ".."' "the image name '..'"
tamper '.disks[0].target = "../../vda"' "a disk target holding '/'"
tamper '.id = "../../../etc"' "an id holding '/'"
tamper '.parent = "../x" | .kind = "incremental"' "a parent holding '/'"
tamper '.disks[0].backing = "../../../../etc/passwd"' "a backing path outside the repository"
cp -p "$WORK/point.json.orig" "$manifest"
[ ! -e /tmp/vmrp-escape.qcow2 ]
check "nothing was written outside the repository"

# the name of the domain in the point's domain.xml becomes the restored
# domain's name and its disks' file names: it must not lead out of the folder
cp -p "$pdir/domain.xml" "$WORK/domain.xml.orig"
sed -i "0,/<name>[^<]*<\/name>/s//<name>..\/..\/..\/..\/..\/tmp\/$TEST_ID-evil<\/name>/" \
  "$pdir/domain.xml"
grep -q "<name>../../../../../tmp/$TEST_ID-evil</name>" "$pdir/domain.xml" || bail "sed domain.xml"
ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 \
  strace -f -qq -o "$WORK/trace-evil" -e trace=open,openat,creat,mkdir,mkdirat,rename,renameat2 \
  "$VMRP" rp-restore "$point" >"$WORK/evil.out" 2>"$WORK/evil.err"
rc=$?
comment "$WORK/evil.err"
[ "$rc" != 0 ] && tail -n 1 "$WORK/evil.err" | grep -q '^error: ' &&
  ! grep -q '%' "$WORK/evil.err"
check "a restore of a point whose domain.xml names the domain '../..' is refused before any copy"
[ -z "$(ww_created "$WORK/trace-evil" | grep -v '/vmrp-\(qemu-\)\?nbd-')" ]
check "and no file was created from that name"
ww_created "$WORK/trace-evil" | head -n 5 | sed 's/^/# /'
cp -p "$WORK/domain.xml.orig" "$pdir/domain.xml"
vmrp rp-info "$point" >/dev/null
check "the untouched manifest is accepted again"
