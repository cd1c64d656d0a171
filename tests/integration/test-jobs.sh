#!/bin/bash
# Jobs and the hard stops of rp-create: --async with job-info/job-wait,
# job-abort while data is being copied, vmrp killed inside the freeze window
# and after the backup job started, a guest whose freeze never returns, and
# two rp-create at once.  After each, nothing half made is left and the next
# increment is exact.  Needs a build with -Dfault_points=true.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
. "$(dirname "$0")/lib.sh"

vm=$(new_vm jobs --workload --disks 2)
virsh_() { virsh -q -c "$VMRP_URI" "$@"; }
reached="$WORK/fault-reached"
tags=0
# the point taken now is an exact increment
exact_increment() {
  tags=$((tags + 1))
  exact_point "$vm" "$tags" &&
    [ "$(vmrp --json rp-info "$(point_of $tags)" | jq -r .kind)" = incremental ] &&
    restores_exact "$tags"
}

# nothing half made: no point being created, no stray checkpoint, no job
nothing_left() {
  local points checkpoints
  points=$(vmrp --json rp-list "$vm" | jq -r '.[] | select(.state == "Succeeded") | .id' | sort)
  checkpoints=$(virsh_ checkpoint-list "$vm" --name | sed 's/^vmrp-//' | sort)
  [ -z "$(ls -A "$VMRP_REPO"/collections/*/points | grep -v '^[0-9]')" ] || { echo "# half point"; return 1; }
  [ "$points" = "$checkpoints" ] || { echo "# checkpoints: $checkpoints"; return 1; }
  [ -z "$(virsh_ domjobinfo "$vm" | grep -i 'backup')" ] || { echo "# a job remains"; return 1; }
}

vmrp rp-create "$vm" >/dev/null 2>&1
check "a first point"

# --async, job-info, job-wait
out=$(vmrp rp-create "$vm" --async)
check "rp-create --async returns"
job=$(sed -n 's/^Job \(job-[0-9a-f]*\) started.*/\1/p' <<<"$out")
[ -n "$job" ]
check "it prints a job id ($job)"
vmrp job-wait "$job" >"$WORK/wait.out"
check "job-wait ends with the job"
comment "$WORK/wait.out"
[ "$(vmrp --json job-info "$job" | jq -r .state)" = Finished ] &&
  [ "$(vmrp --json job-info "$job" | jq -r .percent)" = 100 ]
check "job-info says Finished, 100 %"
result=$(vmrp --json job-info "$job" | jq -r .result)
[ "$(vmrp --json rp-info "$result" | jq -r .state)" = Succeeded ]
check "the job's result is the new point"
vmrp job-list | grep -q "$job"
check "job-list lists it"

# job-abort while the data is being copied
out=$(VMRP_FAULT=before-copy:hang VMRP_FAULT_REACHED="$reached" vmrp --json rp-create "$vm" --async)
job=$(jq -r .job <<<"$out")
wait_reached before-copy
check "the job reached the copy"
[ "$(vmrp --json job-info "$job" | jq -r .state)" = Running ]
check "job-info says Running"
ls -d "$VMRP_REPO"/collections/*/points/.creating-* >/dev/null 2>&1
check "a point is being created"
creating=$(vmrp --json rp-list "$vm" | jq -r '.[] | select(.state == "Creating") | .id')
[ -n "$creating" ] && vmrp rp-info "$creating" --instance-view | grep -q '^State: *Creating'
check "rp-info --instance-view shows it from another process, Creating"
vmrp job-abort "$job" >"$WORK/abort.out"
check "job-abort"
comment "$WORK/abort.out"
[ "$(vmrp --json job-info "$job" | jq -r .state)" = Failed ] &&
  vmrp --json job-info "$job" | jq -r .message | grep -q aborted
check "the aborted job says Failed: aborted"
nothing_left
check "no point, no checkpoint, no backup job left after the abort"
guest "$vm" exec -- /bin/sh -c 'dd if=/dev/urandom of=/dev/vdb bs=1M seek=3 count=2 conv=fsync 2>/dev/null'
exact_increment
check "the next increment is exact"

# vmrp killed inside the freeze window: the guard thaws the guest
rm -f "$reached"
VMRP_FAULT=after-freeze:kill VMRP_FAULT_REACHED="$reached" vmrp rp-create "$vm" >/dev/null 2>&1
[ $? = 137 ] && wait_reached after-freeze
check "vmrp killed (SIGKILL) while the guest is frozen"
for i in $(seq 100); do
  [ "$(guest "$vm" freeze-status 2>/dev/null)" = thawed ] && break
  sleep 0.1
done
[ "$(guest "$vm" freeze-status)" = thawed ]
check "the guest is thawed within seconds ($((i / 10)) s)"
n1=$(guest "$vm" exec -- /bin/sh -c 'wc -l </data/records'); sleep 2
n2=$(guest "$vm" exec -- /bin/sh -c 'wc -l </data/records')
[ "$n2" -gt "$n1" ]
check "the guest's workload goes on"

# a service stop (systemd's default KillMode): SIGTERM to vmrp and its thaw
# guard at once, vmrp too slow and SIGKILLed: the guard still thaws
rm -f "$reached"
VMRP_FAULT=after-freeze:stop VMRP_FAULT_REACHED="$reached" "$VMRP" rp-create "$vm" \
  >/dev/null 2>&1 &
pid=$!
wait_reached after-freeze
guard=$(pgrep -f "__thaw-guard .* $(virsh -q -c "$VMRP_URI" domuuid "$vm")")
[ -n "$guard" ] && [ "$(guest "$vm" freeze-status)" = frozen ]
check "vmrp stopped in the freeze window, its guard armed"
kill -TERM "$pid" "$guard"; sleep 0.5; kill -KILL "$pid"
wait "$pid"
for i in $(seq 100); do
  [ "$(guest "$vm" freeze-status 2>/dev/null)" = thawed ] && break
  sleep 0.1
done
[ "$(guest "$vm" freeze-status)" = thawed ]
check "SIGTERM to both, then SIGKILL to vmrp: the guest is thawed ($((i / 10)) s)"
vmrp repo-check --repair >/dev/null
check "repo-check --repair cleans the backup job it left"

# vmrp killed with the backup job running: the next command cleans up
rm -f "$reached"
VMRP_FAULT=after-job-start:kill VMRP_FAULT_REACHED="$reached" vmrp rp-create "$vm" >/dev/null 2>&1
wait_reached after-job-start
check "vmrp killed with its backup job running"
guest "$vm" exec -- /bin/sh -c 'dd if=/dev/urandom of=/dev/vdb bs=1M seek=6 count=1 conv=fsync 2>/dev/null'
exact_increment
check "the next rp-create cleans up and its increment is exact"
nothing_left
check "nothing half made is left"

# two rp-create at once: the second is busy, the first unharmed
rm -f "$reached"
VMRP_FAULT=before-copy:hang VMRP_FAULT_REACHED="$reached" "$VMRP" rp-create "$vm" \
  >/dev/null 2>"$WORK/first.err" &
first=$!
wait_reached before-copy
expect_error "$WORK/busy" vmrp rp-create "$vm" && grep -q busy "$WORK/busy"
check "a second rp-create at once is refused as busy"
kill -TERM $first
wait $first
[ $? = 1 ] && grep -q '^error: aborted' "$WORK/first.err"
check "the first, interrupted by SIGTERM, stops with an error"
comment "$WORK/first.err"
nothing_left
check "nothing half made is left"

# a guest whose freeze never returns: a bounded wait, then a clear error
guest "$vm" exec -- /bin/touch /run/vmrp-freeze-hang
start=$(date +%s)
expect_error "$WORK/hang" vmrp rp-create "$vm" --agent-timeout 2
check "a freeze that never returns fails"
elapsed=$(( $(date +%s) - start ))
[ "$elapsed" -lt 60 ]
check "after a bounded wait ($elapsed s)"
grep -q "freeze" "$WORK/hang"
check "the error says the freeze failed"
vmrp rp-create "$vm" --agent-timeout 2 --allow-fallback >/dev/null 2>"$WORK/fallback.err"
check "with --allow-fallback the point is taken"
comment "$WORK/fallback.err"
[ "$(vmrp --json rp-list "$vm" | jq -r '.[-1].consistency.achieved')" = crash ]
check "and it is crash-consistent"
