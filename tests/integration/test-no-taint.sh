#!/bin/bash
# rp-create (application consistency, a full then an increment) reaches the
# guest agent and QEMU only through libvirt's public calls: the domain's log
# shows no "custom-ga-command" or "custom-monitor" taint, the guest's freeze
# hook still ran, and the guest is thawed (issue 15 item 3).
#
# SPDX-License-Identifier: LGPL-2.1-or-later
. "$(dirname "$0")/lib.sh"

# not new_vm: its agent wait goes through the passthrough, which taints
vm="$TEST_ID-vm"
"$TESTVM" create "$vm" --start >&2 || bail "cannot create VM $vm"
log="/var/log/libvirt/qemu/$vm.log"
for _ in $(seq 120); do
  virsh -q -c "$VMRP_URI" domhostname "$vm" --source agent >/dev/null 2>&1 && break
  sleep 1
done
virsh -q -c "$VMRP_URI" domhostname "$vm" --source agent >/dev/null 2>&1
check "the agent answers a public call (domhostname --source agent)"

vmrp rp-create "$vm" >"$WORK/out1" 2>&1
check "an application-consistent full point"
comment "$WORK/out1"
vmrp rp-create "$vm" >"$WORK/out2" 2>&1 &&
  [ "$(vmrp --json rp-list "$vm" | jq -r '.[-1].kind')" = incremental ]
check "an application-consistent increment (its parent's bitmaps checked)"
comment "$WORK/out2"
[ "$(vmrp --json rp-list "$vm" | jq -r '[.[].consistency.achieved] | unique | join(",")')" \
  = application ]
check "both points are application-consistent"

[ -f "$log" ] && ! grep -E "tainted: (custom-ga-command|custom-monitor)" "$log"
check "the domain's log shows no custom-ga-command or custom-monitor taint"
grep "is tainted" "$log" | comment

# the agent timeout vmrp set for each call is back to libvirt's default
# (block, -2; read from libvirt's status file, as no public call reads it)
status="/run/libvirt/qemu/$vm.xml"
! grep -q "<agentTimeout>" "$status" || grep -q "<agentTimeout>-2</agentTimeout>" "$status"
check "the domain's guest agent timeout is libvirt's default again"
grep "<agentTimeout>" "$status" | comment

# from here on the test tool's passthrough may taint the domain
[ "$(guest "$vm" freeze-status)" = thawed ]
check "the guest is thawed"
guest "$vm" cat /run/fsfreeze.log >"$WORK/hook.log"
[ "$(grep -c '^freeze ' "$WORK/hook.log")" = 2 ] && [ "$(grep -c '^thaw ' "$WORK/hook.log")" = 2 ]
check "the guest's freeze hook ran for both freezes and thaws"
comment "$WORK/hook.log"
