#!/bin/bash
# rp-verify (issue 10 items 1-2): points carry XXH3-128 digests of their data, files and
# manifest from the moment they are made (checked here against xxhsum -H2); rp-verify
# re-reads them and records the result. One byte flipped in an image's data cluster, in domain.xml or in point.json
# makes that point Failed with the file and the cause; rp-list and rp-info show it; a
# restore of it (or of a point built on it) is refused without --force. A point made
# with SHA-256 digests (vmrp before 2026-12-04) is checked against them; one without
# digests (an older vmrp still) as far as it can be.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
. "$(dirname "$0")/lib.sh"

vm=$(new_vm verify --disks 2)
in_guest() { guest "$vm" exec -- /bin/sh -c "$1" >/dev/null; }
dir_of() { echo "$VMRP_REPO"/collections/*/points/"$1"; }

# flip_byte FILE OFFSET: inverts one byte in place
flip_byte() {
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf "\\$(printf '%03o' $((b ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# data_stream POINT_DIR TARGET: the bytes the data digest of the point's disk TARGET
# covers, as nbd/vmrp-digest.h defines them: for each extent of the manifest its offset
# (8 bytes, big-endian), then the disk's bytes there (read here by qemu-img, not vmrp)
data_stream() {
  local m=$1/point.json raw=$WORK/stream.raw off len i
  qemu-img convert -O raw "$1/$(jq -r --arg t "$2" '.disks[] | select(.target == $t) | .image' \
    "$m")" "$raw" || return 1
  jq -r --arg t "$2" '.disks[] | select(.target == $t) | .data_extents[] | "\(.[0]) \(.[1])"' \
    "$m" | while read -r off len; do
      for i in 56 48 40 32 24 16 8 0; do
        printf "\\$(printf '%03o' $(((off >> i) & 255)))"
      done
      dd if="$raw" iflag=skip_bytes,count_bytes skip="$off" count="$len" bs=1M status=none
    done
  rm -f "$raw"
}

in_guest 'dd if=/dev/urandom of=/dev/vdb bs=1M seek=2 count=4 conv=fsync 2>/dev/null'
exact_point "$vm" 1
check "point 1 (full)"
in_guest 'dd if=/dev/urandom of=/dev/vdb bs=1M seek=20 count=3 conv=fsync 2>/dev/null'
exact_point "$vm" 2
check "point 2 (increment)"
in_guest 'dd if=/dev/urandom of=/dev/vdb bs=64k seek=3 count=2 conv=fsync 2>/dev/null'
exact_point "$vm" 3
check "point 3 (increment)"
p1=$(point_of 1) p2=$(point_of 2) p3=$(point_of 3)
m2=$(dir_of "$p2")/point.json

jq -e '(.digests.algorithm == "xxh128") and (.digests.manifest | test("^[0-9a-f]{32}$")) and
       (.digests.files["domain.xml"] | test("^[0-9a-f]{32}$")) and
       (.digests.files["checkpoint.xml"] | length == 32) and
       ([.disks[] | select(.excluded | not) | .data_xxh128 | test("^[0-9a-f]{32}$")]
        | all and length == 2)' "$m2" >/dev/null &&
  [ "$(jq '[.disks[] | select(.target == "vdb") | .data_extents[] | .[1]] | add' "$m2")" \
    -ge 3145728 ]
check "a point's manifest holds the digests of its data, its files and itself"
[ "$(jq -r '.digests.files["domain.xml"]' "$m2")" = \
  "$(xxhsum -H2 <"$(dir_of "$p2")/domain.xml" | cut -d' ' -f1)" ] &&
  [ "$(jq -r '.disks[] | select(.target == "vdb") | .data_xxh128' "$m2")" = \
    "$(data_stream "$(dir_of "$p2")" vdb | xxhsum -H2 | cut -d' ' -f1)" ]
check "they are XXH3-128: xxhsum -H2 gives the same over domain.xml and over vdb's extents"

vmrp rp-verify "$vm" >"$WORK/v1" 2>&1 && [ "$(grep -c ' OK$' "$WORK/v1")" = 3 ]
check "rp-verify DOMAIN: the three points are OK"
comment "$WORK/v1"
[ "$(point_field "$p2" .verify_state)" = OK ] &&
  [[ "$(point_field "$p2" .verified)" =~ ^20[0-9-]+T[0-9:]+Z$ ]]
check "the result and its time are recorded in the manifest"
vmrp --json rp-verify "$p1" | jq -e '.[0].id == "'"$p1"'" and .[0].verify_state == "OK"' \
  >/dev/null
check "rp-verify --json POINT"

# a point of vmrp before 2026-12-04: SHA-256 digests (made here with sha256sum; it had
# a manifest digest too, which jq cannot make: it goes)
d3=$(dir_of "$p3") m3=$(dir_of "$p3")/point.json
cp "$m3" "$WORK/m3.orig"
legacy='.digests = {algorithm: "sha256", files: $files} |
        .disks |= map(if .data_xxh128 then del(.data_xxh128) | .data_sha256 = $data[.target]
                      else . end)'
files=$(for f in $(jq -r '.digests.files | keys[]' "$m3"); do
          jq -n --arg f "$f" --arg s "$(sha256sum <"$d3/$f" | cut -d' ' -f1)" '{($f): $s}'
        done | jq -s add)
data=$(for t in vda vdb; do
         jq -n --arg t $t --arg s "$(data_stream "$d3" $t | sha256sum | cut -d' ' -f1)" \
           '{($t): $s}'
       done | jq -s add)
jq --argjson files "$files" --argjson data "$data" "$legacy" "$WORK/m3.orig" >"$m3" &&
  grep -q '"data_sha256"' "$m3" && vmrp rp-verify "$p3" >"$WORK/v8" 2>&1 &&
  grep -q "^$p3 OK" "$WORK/v8"
check "a point with SHA-256 digests (an older vmrp) verifies against them"
comment "$WORK/v8"
flip_byte "$d3/checkpoint.xml" 5
expect_error "$WORK/v9" vmrp rp-verify "$p3" &&
  grep -q "^$p3 Failed: checkpoint.xml does not match its digest" "$WORK/v9.stdout"
check "and a file changed since is found by them"
flip_byte "$d3/checkpoint.xml" 5

# a point made without digests (an older vmrp still): checked as far as it can be
jq 'del(.digests, .verified, .verify_state) | del(.disks[].data_xxh128, .disks[].data_extents)' \
  "$WORK/m3.orig" >"$m3"
vmrp rp-verify "$p3" >"$WORK/v3" 2>&1 && grep -q "^$p3 OK" "$WORK/v3" &&
  grep -q "note: image vdb.qcow2 has no data digest" "$WORK/v3"
check "a point without digests verifies what it can, and says what it could not"
comment "$WORK/v3"
cp "$WORK/m3.orig" "$m3"

# bit rot in a data cluster of point 2's vdb image
img=$(dir_of "$p2")/vdb.qcow2
off=$(qemu-img map -f qcow2 --output=json "$img" |
      jq '[.[] | select(.data and .depth == 0 and .offset != null and .length > 8192)][0].offset')
[ -n "$off" ] && [ "$off" != null ] && flip_byte "$img" $((off + 4097))
check "one byte flipped in a data cluster of point 2's vdb.qcow2 (host offset $off)"
qemu-img check -q -f qcow2 "$img"
check "qemu-img check does not see it (data, not metadata)"
expect_error "$WORK/v2" vmrp rp-verify "$p2" &&
  grep -q "^$p2 Failed: image vdb.qcow2: its data does not match the digest" "$WORK/v2.stdout"
check "rp-verify names the point, the image and the cause"
comment "$WORK/v2.stdout"
[ "$(point_field "$p2" .verify_state)" = Failed ] &&
  point_field "$p2" .verify_reason | grep -q "vdb.qcow2"
check "the failure is recorded in the manifest"
vmrp rp-list "$vm" >"$WORK/list" &&
  grep -E "^$p2 .* Failed$" "$WORK/list" >/dev/null &&
  grep -q "^$p2 failed verification at .*vdb.qcow2" "$WORK/list" &&
  grep -E "^$p1 .* OK$" "$WORK/list" >/dev/null
check "rp-list shows the failed verification"
comment "$WORK/list"
vmrp rp-info "$p2" | grep -q "^Verified: *Failed at .*vdb.qcow2"
check "rp-info shows it"
expect_error "$WORK/r2" vmrp rp-restore "$p2" --name "$TEST_ID-r2" --disk-dir "$WORK" &&
  grep -q "failed verification.*--force" "$WORK/r2"
check "restoring it is refused without --force"
expect_error "$WORK/r3" vmrp disk-create "$p3" vdb --output "$WORK/d3.qcow2" &&
  grep -q "builds on point $p2, which failed verification" "$WORK/r3" &&
  [ ! -e "$WORK/d3.qcow2" ]
check "so is a disk of a point that builds on it"
vmrp disk-create "$p2" vda --output "$WORK/d2.qcow2" --force >/dev/null 2>&1 &&
  [ -s "$WORK/d2.qcow2" ]
check "--force uses it all the same"
vmrp rp-verify "$vm" >"$WORK/v4" 2>&1
[ $? != 0 ] && grep -Eq "^$p3 Failed: disk vd[ab]: backing point $p2 failed verification" \
  "$WORK/v4" && grep -q "^$p1 OK" "$WORK/v4"
check "rp-verify DOMAIN: the point built on it fails too, the one below is OK"
comment "$WORK/v4"

# a manifest and a file changed
sed -i "s/\"name\": \"$vm\"/\"name\": \"${vm}X\"/" "$(dir_of "$p1")/point.json"
expect_error "$WORK/v5" vmrp rp-verify "$p1" &&
  grep -q "^$p1 Failed: point.json: its content does not match its digest" "$WORK/v5.stdout"
check "a changed manifest is found"
sed -i "s/\"name\": \"${vm}X\"/\"name\": \"$vm\"/" "$(dir_of "$p1")/point.json"
vmrp rp-verify "$p1" >/dev/null 2>&1
check "and once put back the point is OK again"
flip_byte "$(dir_of "$p1")/domain.xml" 10
expect_error "$WORK/v6" vmrp rp-verify "$p1" &&
  grep -q "^$p1 Failed: domain.xml does not match its digest" "$WORK/v6.stdout"
check "a changed domain.xml is found"
flip_byte "$(dir_of "$p1")/domain.xml" 10
vmrp rp-verify "$p1" >/dev/null 2>&1 && restores_exact 1
check "point 1, verified again, restores bit for bit"
expect_error "$WORK/v7" vmrp rp-verify --all "$p1"
check "rp-verify --all takes no point"

# a verify schedule in the policy, run by run-policies
vmrp policy-set "$vm" --keep-last 10 --verify "every 1h" >/dev/null &&
  vmrp policy-show "$vm" | grep -qx "verify=every 1h"
check "policy-set --verify every 1h"
sleep 1
vmrp run-policies --now $(($(date +%s) + 3600)) >"$WORK/rp1" 2>&1
grep -q ": point $p1 verified: OK" "$WORK/rp1" &&
  grep -q ": point $p2 failed verification: image vdb.qcow2" "$WORK/rp1" &&
  [ "$(grep -c 'verified: OK\|failed verification' "$WORK/rp1")" = 3 ]
check "run-policies verifies every point whose last verification is older than the policy says"
comment "$WORK/rp1"
vmrp run-policies >"$WORK/rp2" 2>&1 && ! grep -q "verified\\|verification" "$WORK/rp2"
check "and none that was verified within the hour"
comment "$WORK/rp2"

# a collection another vmrp works on: its points are said to be unverified, not failed
flock "$(echo "$VMRP_REPO"/collections/*/.lock)" sleep 4 &
sleep 1
vmrp rp-verify --all >"$WORK/v8" 2>"$WORK/v8.err"
rc=$?
wait
[ $rc != 0 ] && [ "$(grep -c "not verified: domain .* is busy" "$WORK/v8")" = 3 ] &&
  grep -q "0 of 3 restore points failed verification, 3 could not be verified" "$WORK/v8.err"
check "rp-verify --all goes on past a busy collection and says which points it did not verify"
comment "$WORK/v8" "$WORK/v8.err"
