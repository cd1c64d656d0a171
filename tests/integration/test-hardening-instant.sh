#!/bin/bash
# Issue 16, instant restore side:
#  item 11: the instant record's collection never becomes a lock path
#           unchecked; granted ACL paths are stored relative to the repository,
#           so a moved repository still has them revoked by --finalize;
#  item 4:  --finalize of a stopped instant domain copies the chain vmrp names
#           (the moved repository's images), not what the overlay's header says.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
. "$(dirname "$0")/lib.sh"

virsh_() { virsh -q -c "$VMRP_URI" "$@"; }
disk_of() { virsh_ domblklist "$1" | awk -v t="$2" '$1 == t {print $2}'; }

vm=$(new_vm hi)
vmrp rp-create "$vm" --consistency crash >/dev/null 2>&1
check "rp-create"
point=$(vmrp --json rp-list "$vm" | jq -r '.[-1].id')
virsh_ destroy "$vm" >/dev/null
new="$TEST_ID-inst"
mkdir "$WORK/disks" && chmod 755 "$WORK/disks"
vmrp rp-restore "$point" --instant --name "$new" --disk-dir "$WORK/disks" >"$WORK/i.out" 2>&1
check "rp-restore --instant"
comment "$WORK/i.out"
virsh_ destroy "$new" >/dev/null
uuid=$(virsh_ domuuid "$new")
rec="$VMRP_REPO/instant/$uuid.json"
cp "$rec" "$WORK/rec.good"
[ -f "$rec" ] && [ "$(jq '[.granted_dirs[], .granted_files[], .disks[].image] |
                          map(select(startswith("/"))) | length' "$rec")" = 0 ]
check "hardening 11: the record stores the granted paths and images relative to the repository"

# the repository moves; --finalize still revokes what was granted
# entries of the QEMU user in the POSIX ACLs below the repository (no getfacl here)
acl_entries() {
  python3 - "$VMRP_REPO" <<'PY'
import os, pwd, struct, sys
uid = pwd.getpwnam("libvirt-qemu").pw_uid
n = 0
for root, dirs, files in os.walk(sys.argv[1]):
    for p in [root] + [os.path.join(root, f) for f in files]:
        try:
            a = os.getxattr(p, "system.posix_acl_access", follow_symlinks=False)
        except OSError:
            continue
        for i in range(4, len(a), 8):
            tag, perm, ident = struct.unpack("<HHI", a[i:i + 8])
            n += tag == 2 and ident == uid
print(n)
PY
}
[ "$(acl_entries)" -gt 0 ]
check "the QEMU user was granted access in the repository"
mv "$VMRP_REPO" "$WORK/moved"
export VMRP_REPO="$WORK/moved"
vmrp rp-restore --finalize "$new" >"$WORK/fin.out" 2>&1
check "hardening 4/11: --finalize of the stopped domain from the moved repository"
comment "$WORK/fin.out"
[ "$(acl_entries)" = 0 ]
check "hardening 11: every ACL entry granted in the moved repository is revoked"
[ -z "$(qemu-img info -U --output=json "$(disk_of "$new" vda)" | jq -r '."backing-filename" // empty')" ]
check "hardening 4: the overlay stands alone"
qemu-img compare -q "$(ls "$VMRP_REPO"/collections/*/points/"$point"/vda.qcow2)" \
  "$(disk_of "$new" vda)"
check "hardening 4: it holds the point's disk bit for bit"

# a record whose collection is not a uuid (of a domain that is gone)
fake=$(cat /proc/sys/kernel/random/uuid)
jq --arg u "$fake" '.collection = "../instant" | .domain_uuid = $u' "$WORK/rec.good" \
  >"$VMRP_REPO/instant/$fake.json"
expect_error "$WORK/e1" vmrp rp-restore --finalize "$fake"
check "hardening 11: --finalize with a record whose collection is no uuid is refused"
[ ! -e "$VMRP_REPO/instant/.lock" ]
check "hardening 11: no lock file made outside the collections"
rm -f "$VMRP_REPO/instant/$fake.json"
