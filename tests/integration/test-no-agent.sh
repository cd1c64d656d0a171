#!/bin/bash
# A guest without a guest agent: application consistency is refused with a
# clear error and nothing changes; with --allow-fallback the point is taken
# and recorded as crash-consistent.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
. "$(dirname "$0")/lib.sh"

vm=$(new_vm noagent --no-agent)
sleep 8    # let it boot: without an agent nothing tells when

before=$(state_snapshot)
expect_error "$WORK/err" vmrp rp-create "$vm" --agent-timeout 3
check "application consistency without an agent is refused"
grep -qi 'agent' "$WORK/err" && grep -q -- '--allow-fallback' "$WORK/err"
check "the error names the agent and the way out"
[ "$before" = "$(state_snapshot)" ]
check "nothing changed: no repository, point or checkpoint"
[ -z "$(virsh -q -c "$VMRP_URI" checkpoint-list "$vm" --name)" ]
check "no checkpoint was left"

expect_error "$WORK/err2" vmrp rp-create "$vm" --consistency filesystem --agent-timeout 3
check "filesystem consistency without an agent is refused"

vmrp rp-create "$vm" --allow-fallback --agent-timeout 3 >"$WORK/out" 2>"$WORK/err3"
check "with --allow-fallback the point is taken"
comment "$WORK/out" "$WORK/err3"
grep -q '^warning: .*crash-consistent' "$WORK/err3"
check "a warning says the point is crash-consistent"
point=$(vmrp --json rp-list "$vm" | jq -r '.[-1].id')
[ "$(point_field "$point" .consistency.requested)" = application ] &&
  [ "$(point_field "$point" .consistency.achieved)" = crash ]
check "the manifest records application requested, crash achieved"
[ "$(point_field "$point" .consistency.fallback_reason)" != null ]
check "the manifest records why"

vmrp rp-create "$vm" --consistency crash >/dev/null 2>&1
check "a crash-consistent point needs no agent"
[ "$(vmrp --json rp-list "$vm" | jq length)" = 2 ]
check "two points are listed"
