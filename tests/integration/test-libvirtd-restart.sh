#!/bin/bash
# test-libvirtd-restart.sh: vmrp survives libvirtd restarting under it
# (issue 13).  A point is being copied (held at the before-copy fault point)
# when libvirtd is killed and started again, as a package upgrade or an OOM
# kill would: vmrp connects anew and ends its backup job, checkpoint and half
# point; when vmrp is SIGKILLed too, the next rp-create does it and says so.
# A vmrp-<id> checkpoint made by hand is removed; another is not touched.
# This test restarts libvirtd: it runs alone (integration tests are serial).
#
# SPDX-License-Identifier: LGPL-2.1-or-later
source "$(dirname "$0")/lib.sh"

[ "$VMRP_FAULT_POINTS" = true ] || { echo "1..0 # SKIP needs a fault-point build"; exit 77; }

libvirtd_running() {
  local pid
  pid=$(cat /run/libvirtd.pid 2>/dev/null) && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = libvirtd ]
}
start_libvirtd() {  # as vm-images/prepare-host.sh starts it
  libvirtd_running && return 0
  rm -f /run/libvirtd.pid
  LIBVIRT_LOG_OUTPUTS="3:file:/var/log/libvirt/libvirtd.log" libvirtd -d
  for _ in $(seq 240); do
    virsh -q -c "$VMRP_URI" version >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  return 1
}
stop_libvirtd() {
  kill "$(cat /run/libvirtd.pid)"
  for _ in $(seq 100); do libvirtd_running || return 0; sleep 0.1; done
  return 1
}
# libvirtd runs again when the test ends, whatever happened
test_cleanup() {
  start_libvirtd || echo "# could not start libvirtd again"
}

vm=$(new_vm a)
uuid=$(virsh -q -c "$VMRP_URI" domuuid "$vm")
points="$VMRP_REPO/collections/$uuid/points"
no_job() { virsh -q -c "$VMRP_URI" domjobinfo "$vm" | grep -q "Job type: *None"; }
has_ckpt() { virsh -q -c "$VMRP_URI" checkpoint-list "$vm" --name | grep -qx "$1"; }
exact_point "$vm" p1 || bail "first point"

# hold_copy: rp-create of $vm held before its copy, in the background; its pid
# in $held and its half point's id in $half
hold_copy() {
  rm -f "$WORK/fault-reached"
  VMRP_FAULT=before-copy:hang VMRP_FAULT_REACHED="$WORK/fault-reached" \
    "$VMRP" rp-create "$vm" --consistency crash >"$WORK/held.out" 2>&1 &
  held=$!
  wait_reached before-copy || bail "rp-create did not reach the copy"
  half=$(ls -a "$points" | sed -n 's/^\.creating-//p')
  [ -n "$half" ] && has_ckpt "vmrp-$half" && ! no_job
}

# ---- libvirtd restarts while vmrp copies; vmrp then stops (SIGTERM) ----
hold_copy
check "a point is being copied: its backup job and checkpoint exist"
stop_libvirtd && start_libvirtd
check "libvirtd killed and started again"
kill -TERM "$held"
wait "$held"
rc=$?
comment "$WORK/held.out"
[ "$rc" != 0 ] && [ "$(grep -c '^error: ' "$WORK/held.out")" = 1 ]
check "vmrp exits with one error line"
no_job && ! has_ckpt "vmrp-$half" && [ ! -e "$points/.creating-$half" ]
check "it connected anew and ended its backup job, checkpoint and half point"
exact_point "$vm" p2 && restores_exact p2
check "the next point is taken and restores bit for bit"

# ---- the same, with vmrp SIGKILLed before it could connect anew ----
hold_copy
check "another point is being copied"
stop_libvirtd
kill -9 "$held"
wait "$held" 2>/dev/null
start_libvirtd
check "vmrp killed while libvirtd was down; libvirtd started again"
exact_point "$vm" p3
check "the next rp-create succeeds"
grep -q "^note: cleaned up backup-job" "$WORK/ref/p3.out" &&
  grep -q "^note: cleaned up half-point $half" "$WORK/ref/p3.out"
check "it ended the leftover backup job and half point, and said so"
no_job && ! has_ckpt "vmrp-$half"
check "no backup job and no orphan checkpoint remain"
restores_exact p3
check "its point restores bit for bit"

# ---- checkpoints made by hand ----
virsh -q -c "$VMRP_URI" checkpoint-create-as "$vm" vmrp-20260101-000000-abcdef >/dev/null &&
  virsh -q -c "$VMRP_URI" checkpoint-create-as "$vm" "$TEST_ID-theirs" >/dev/null
check "a vmrp-<id> checkpoint with no point and another made by hand"
exact_point "$vm" p4 &&
  grep -q "^note: cleaned up orphan-checkpoint vmrp-20260101-000000-abcdef" "$WORK/ref/p4.out" &&
  ! has_ckpt vmrp-20260101-000000-abcdef && has_ckpt "$TEST_ID-theirs"
check "the next rp-create removes the orphan with a message; the other stays"
virsh -q -c "$VMRP_URI" checkpoint-delete "$vm" "$TEST_ID-theirs" >/dev/null
restores_exact p4
check "and its point restores bit for bit"
