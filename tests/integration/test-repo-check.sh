#!/bin/bash
# test-repo-check.sh: repo-check lists what the repository and libvirt
# disagree on, changes nothing without --repair, repairs each kind with it,
# and a second run finds nothing (issue 13).
#
# Kinds made here: a vmrp-<id> checkpoint made by hand with no point, an
# --async rp-create whose worker is SIGKILLed mid-copy (a dead job, a half
# point, a backup job of vmrp's still running in libvirt), an instant-restore
# record of a domain that does not exist, a damaged point.  A checkpoint not
# named vmrp-* is never touched.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
source "$(dirname "$0")/lib.sh"

[ "$VMRP_FAULT_POINTS" = true ] || { echo "1..0 # SKIP needs a fault-point build"; exit 77; }

vm=$(new_vm a)
exact_point "$vm" p1 || bail "first point"
kinds() { jq -r '[.[].kind] | sort | join(" ")' "$1"; }

vmrp --json repo-check >"$WORK/c0" && [ "$(jq length "$WORK/c0")" = 0 ]
check "a sound repository: nothing found"

job=$(VMRP_FAULT=before-copy:hang VMRP_FAULT_REACHED="$WORK/fault-reached" \
      vmrp --json rp-create "$vm" --consistency crash --async | jq -r .job)
wait_reached before-copy || bail "the worker did not reach the copy"
pid=$(vmrp --json job-info "$job" | jq -r .pid)
kill -9 "$pid"
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
orphan=vmrp-20260101-000000-abcdef
other="$TEST_ID-theirs"
virsh -q -c "$VMRP_URI" checkpoint-create-as "$vm" "$orphan" >/dev/null &&
  virsh -q -c "$VMRP_URI" checkpoint-create-as "$vm" "$other" >/dev/null
check "then two checkpoints made by hand, one named like vmrp's"

mkdir -p "$VMRP_REPO/instant"
gone=$(cat /proc/sys/kernel/random/uuid)
echo '{"format": 1, "domain_name": "gone", "points": []}' >"$VMRP_REPO/instant/$gone.json"
chmod 600 "$VMRP_REPO/instant/$gone.json"

before=$(state_snapshot)
vmrp --json repo-check >"$WORK/c1"
check "repo-check runs"
jq -r '.[] | "# \(.kind) \(.item): \(.detail)"' "$WORK/c1"
[ "$(kinds "$WORK/c1")" = "backup-job dead-job half-point instant-record orphan-checkpoint" ]
check "it finds the backup job, dead job, half point, instant record and orphan checkpoint"
jq -e --arg o "$orphan" '.[] | select(.kind == "orphan-checkpoint") | .item == $o' "$WORK/c1" \
  >/dev/null && ! grep -q "$other" "$WORK/c1"
check "the orphan is the vmrp-named checkpoint; the other is not mentioned"
[ "$before" = "$(state_snapshot)" ] && [ -f "$VMRP_REPO/instant/$gone.json" ]
check "without --repair nothing changed"

vmrp --json repo-check --repair >"$WORK/c2"
[ "$(jq '[.[] | select(.repaired | not)] | length' "$WORK/c2")" = 0 ] &&
  [ "$(jq length "$WORK/c2")" = 5 ]
check "--repair repairs each"
jq -r '.[] | select(.repaired | not) | "# not repaired: \(.kind) \(.repair_error)"' "$WORK/c2"
vmrp --json repo-check >"$WORK/c3" && [ "$(jq length "$WORK/c3")" = 0 ]
check "a second run finds nothing"
ckpts=$(virsh -q -c "$VMRP_URI" checkpoint-list "$vm" --name)
! grep -qx "$orphan" <<<"$ckpts" && grep -qx "$other" <<<"$ckpts" &&
  [ "$(vmrp --json job-info "$job" | jq -r .state)" = Failed ] &&
  [ ! -e "$VMRP_REPO/instant/$gone.json" ] &&
  ! virsh -q -c "$VMRP_URI" domjobinfo "$vm" | grep -q Backup
check "the orphan checkpoint, backup job, half point and record are gone; theirs stays"
virsh -q -c "$VMRP_URI" checkpoint-delete "$vm" "$other" >/dev/null

exact_point "$vm" p2 && restores_exact p2
check "the next point is taken and restores bit for bit"

p2=$(point_of p2)
cp "$VMRP_REPO"/collections/*/points/"$p2"/point.json "$WORK/p2.json"
echo '{' >"$(ls -d "$VMRP_REPO"/collections/*/points/"$p2")/point.json"
vmrp repo-check --repair >"$WORK/c4"
comment "$WORK/c4"
grep -q "^damaged-point .* $p2: point.json: truncated JSON" "$WORK/c4" &&
  [ -d "$(ls -d "$VMRP_REPO"/collections/*/points/"$p2")" ]
check "a damaged point is reported and left for a person"
