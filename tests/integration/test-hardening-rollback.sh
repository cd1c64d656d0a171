#!/bin/bash
# Issue 16 item 5: QuickRollback after a failure or a SIGKILL.  A failure
# before the write-back starts the domain again and keeps the checkpoints
# newer than the point; vmrp SIGKILLed while its reader qemu-nbd serves the
# point leaves no qemu-nbd behind (they die with it), and the retry is not
# stopped by the folder the killed rollback left: it finishes the rollback
# and the domain, running before, runs again.  The rollback's folder is
# root's (root's qemu-nbd sockets), not the QEMU user's (item 10).
# The disk header naming a backing file is refused (item 4).
# Needs a build with -Dfault_points.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
. "$(dirname "$0")/lib.sh"

virsh_() { virsh -q -c "$VMRP_URI" "$@"; }
disk_of() { virsh_ domblklist "$1" | awk -v t="$2" '$1 == t {print $2}'; }
readers() { pgrep -f "qemu-nbd.*$VMRP_STATE_DIR/rollback-" || true; }

if [ "$VMRP_FAULT_POINTS" != true ]; then
  echo "ok 1 # SKIP needs a build with -Dfault_points=true"
  TAP_N=1
  exit 0
fi

vm=$(new_vm rb --disks 2)
in_guest() { guest "$vm" exec -- /bin/sh -c "$1" >/dev/null; }
vmrp rp-create "$vm" --consistency crash >/dev/null 2>&1
check "rp-create (the point to roll back to)"
first=$(vmrp --json rp-list "$vm" | jq -r '.[-1].id')
in_guest 'dd if=/dev/urandom of=/dev/vdb bs=1M seek=4 count=4 conv=fsync 2>/dev/null'
vmrp rp-create "$vm" --consistency crash >/dev/null 2>&1
check "rp-create (a newer point)"
second=$(vmrp --json rp-list "$vm" | jq -r '.[-1].id')
in_guest 'dd if=/dev/urandom of=/dev/vdb bs=1M seek=12 count=4 conv=fsync 2>/dev/null'

# a failure before the write-back
expect_error "$WORK/e1" env VMRP_FAULT=rollback-before-write \
  "$VMRP" rp-restore "$first" --quick-rollback
check "hardening 5: a rollback failing before the write-back is reported"
[ "$(virsh_ domstate "$vm")" = running ]
check "hardening 5: the domain, running before, runs again"
virsh_ checkpoint-list "$vm" --name | grep -q "vmrp-$second"
check "hardening 5: the checkpoint newer than the point is kept"

# a folder left by an earlier rollback does not make the next one fail
jobdir="$VMRP_STATE_DIR/rollback-$first"
mkdir -p "$jobdir"
expect_error "$WORK/e2" env VMRP_FAULT=rollback-before-write \
  "$VMRP" rp-restore "$first" --quick-rollback && grep -q 'fault injected' "$WORK/e2"
check "hardening 5: a leftover rollback folder is no error (the run goes on to the fault)"
[ "$(virsh_ domstate "$vm")" = running ]
check "hardening 5: and the domain runs"

# SIGKILL while root's reader qemu-nbd serves the point
VMRP_FAULT=rollback-reader-started:hang VMRP_FAULT_REACHED="$WORK/fault-reached" \
  "$VMRP" rp-restore "$first" --quick-rollback >"$WORK/k.out" 2>&1 &
pid=$!
wait_reached rollback-reader-started
check "the rollback reached its reader"
[ -n "$(readers)" ]
check "a reader qemu-nbd runs"
[ "$(stat -c '%U %a' "$jobdir")" = "root 700" ]
check "hardening 10: the rollback's folder (root's sockets) is root's 0700"
kill -KILL "$pid"
wait "$pid" 2>/dev/null
for i in $(seq 50); do [ -z "$(readers)" ] && break; sleep 0.1; done
[ -z "$(readers)" ]
check "hardening 5: no reader qemu-nbd outlives the SIGKILLed vmrp"
[ "$(virsh_ domstate "$vm")" = "shut off" ] && [ -d "$jobdir" ]
check "the killed rollback left the domain off and its folder"
vmrp --json rp-restore "$first" --quick-rollback >"$WORK/retry.json" 2>"$WORK/retry.err"
check "hardening 5: the retry is not stopped by the folder the killed rollback left"
comment "$WORK/retry.err"
[ "$(virsh_ domstate "$vm")" = running ] && [ ! -d "$jobdir" ]
check "hardening 5: after the retry the domain runs again, as before the rollback"
! virsh_ checkpoint-list "$vm" --name | grep -q "vmrp-$second"
check "the checkpoint newer than the point is gone"
virsh_ destroy "$vm" >/dev/null
qemu-img compare -q "$(ls "$VMRP_REPO"/collections/*/points/"$first"/vdb.qcow2)" \
  "$(disk_of "$vm" vdb)"
check "hardening 5: disk vdb equals the point bit for bit"

# item 4: root's qemu-nbd never opens what the disk's header (the QEMU user's
# to write) names
head -c 1M /dev/urandom >"$WORK/secret.raw"
qemu-img rebase -u -f qcow2 -F raw -b "$WORK/secret.raw" "$(disk_of "$vm" vdb)"
expect_error "$WORK/e4" vmrp rp-restore "$first" --quick-rollback &&
  grep -q 'backing or data file' "$WORK/e4"
check "hardening 4: a disk whose header names a backing file is refused for QuickRollback"
qemu-img rebase -u -f qcow2 -b "" "$(disk_of "$vm" vdb)"
[ "$(virsh_ domstate "$vm")" = "shut off" ]
check "the domain, off before, is still off"
