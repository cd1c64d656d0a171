#!/bin/bash
# Policies: policy-set/policy-show, run-policies over simulated time (its
# --now clock, which also stamps the points it takes) taking due points and
# pruning with keep-last, then over simulated days with keep-last, -hourly
# and -daily, every kept point exact after prunes that merged chains;
# overlapping runs; bad policies; and
# the libvirt hook taking a point when a domain with an on-start policy
# starts, through a real libvirtd.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
. "$(dirname "$0")/lib.sh"

vm=$(new_vm pol --workload --disks 2)
virsh_() { virsh -q -c "$VMRP_URI" "$@"; }
in_guest() { guest "$vm" exec -- /bin/sh -c "$1" >/dev/null; }

# bad policies: one clear error, nothing changed
for bad in "--keep-last -1" "--schedule every-7s" "--schedule 'every 7s'" \
           "--schedule 'daily 24:00'" "--consistency perfect" "--max-chain -3" \
           "--consistency crash --allow-fallback"; do
  before=$(state_snapshot)
  eval "expect_error \"\$WORK/bad\" vmrp policy-set \"\$vm\" $bad"
  check "policy-set $bad is refused" && [ "$before" = "$(state_snapshot)" ]
  check "and changes nothing"
done
expect_error "$WORK/bad" vmrp policy-set "$vm"
check "a policy that keeps nothing and schedules nothing is refused"
expect_error "$WORK/bad" vmrp policy-set "$TEST_ID-nosuchvm" --keep-last 3
check "a policy for an unknown domain is refused"
expect_error "$WORK/bad" vmrp --repo "$WORK/no-repo" policy-set "$TEST_ID-nosuchvm" \
  --keep-last 3 && [ ! -e "$WORK/no-repo" ]
check "and with no repository there, none is made"

vmrp policy-set "$vm" --keep-last 2 --schedule "every 1m" --consistency crash --max-chain 10 | comment
check "policy-set --keep-last 2 --schedule 'every 1m'"
vmrp policy-show "$vm" | grep -qx "keep-last=2" && vmrp policy-show "$vm" | grep -q "schedule=every 1m"
check "policy-show shows it"

# run-policies as the minutes pass: a point each time, paused for the reference
now=$(date +%s)
run_at() {  # run_at TAG TIME (seconds since the epoch)
  local t
  virsh_ suspend "$vm" >/dev/null
  for t in vda vdb; do
    qemu-img convert -U -O raw "$(virsh_ domblklist "$vm" | awk -v t=$t '$1 == t {print $2}')" \
      "$WORK/ref/$1-$t.raw"
  done
  vmrp run-policies --now "$2" >"$WORK/run-$1.out" 2>&1
  local rc=$?
  virsh_ resume "$vm" >/dev/null
  comment "$WORK/run-$1.out"
  vmrp --json rp-list "$vm" | jq -r '.[-1].id' >"$WORK/ref/$1.id"
  return $rc
}
mkdir -p "$WORK/ref"
run_at 1 $((now + 60)) && grep -q "point .* taken (full)" "$WORK/run-1.out"
check "run-policies takes the first, full point"
taken=$(date -d "$(vmrp --json rp-info "$(point_of 1)" | jq -r .created)" +%s)
vmrp run-policies --now "$taken" >"$WORK/run-x.out" 2>&1 && grep -q "not due" "$WORK/run-x.out"
check "a second run at the same instant takes none"
in_guest 'dd if=/dev/urandom of=/dev/vdb bs=1M seek=2 count=3 conv=fsync 2>/dev/null'
run_at 2 $((now + 180)) && grep -q "taken (incremental)" "$WORK/run-2.out"
check "two minutes later: an increment"
in_guest 'dd if=/dev/urandom of=/dev/vdb bs=1M seek=9 count=2 conv=fsync 2>/dev/null'
run_at 3 $((now + 300)) && grep -q "taken (incremental)" "$WORK/run-3.out"
check "and another"
[ "$(vmrp --json rp-list "$vm" | jq length)" = 2 ]
check "keep-last 2: the oldest point was pruned"
! vmrp rp-info "$(point_of 1)" >/dev/null 2>&1
check "it is the first point that went"
restores_exact 2 && restores_exact 3
check "both kept points restore bit for bit after the prune merged the chain"
vmrp prune "$vm" --dry-run | grep -q "keep-last"
check "prune --dry-run says which rule keeps each point"

# simulated days, in the host's time zone: points at D 01:00, 02:00, 03:00,
# D+1 01:00, 02:00 and D+2 01:00.  Proxmox's rules in order: keep-last 1
# keeps the last; keep-hourly 2 the two before it (hours not yet kept);
# keep-daily 2 the newest of D, the one day not yet kept: the first two go.
for p in $(vmrp --json rp-list "$vm" | jq -r '.[].id' | tac); do
  vmrp rp-delete "$p" >/dev/null 2>&1 || bail "cannot delete point $p"
done
vmrp policy-set "$vm" --keep-last 1 --keep-hourly 2 --keep-daily 2 --schedule "every 1h" \
  --consistency crash | comment
check "policy-set --keep-last 1 --keep-hourly 2 --keep-daily 2"
day=$(date -d "$(date -d '+10 days' +%F) 00:00" +%s)
i=0
for at in "0 1" "0 2" "0 3" "1 1" "1 2" "2 1"; do
  read -r d h <<<"$at"
  i=$((i + 1))
  in_guest "dd if=/dev/urandom of=/dev/vdb bs=1M seek=$((12 + i)) count=1 conv=fsync 2>/dev/null"
  run_at "d$i" $((day + d * 86400 + h * 3600)) && grep -q "taken" "$WORK/run-d$i.out"
  check "day $d, $h:00: a point"
done
[ "$(point_field "$(point_of d6)" .created)" = "$(date -u -d "@$((day + 2 * 86400 + 3600))" +%FT%TZ)" ]
check "a point taken at a simulated time carries it"
kept=$(vmrp --json rp-list "$vm" | jq -r '.[].id' | sort | tr '\n' ' ')
[ "$kept" = "$(cat "$WORK"/ref/d{3,4,5,6}.id | sort | tr '\n' ' ')" ]
check "the last four points are kept, the first two pruned"
vmrp prune "$vm" --dry-run >"$WORK/dry.out"
comment "$WORK/dry.out"
grep -q "^$(point_of d3) .*keep-daily" "$WORK/dry.out" &&
  grep -q "^$(point_of d5) .*keep-hourly" "$WORK/dry.out"
check "prune --dry-run names keep-daily and keep-hourly"
restores_exact d3 && restores_exact d6
check "the oldest kept point (its chain merged) and the newest restore bit for bit"

# overlapping runs do no harm
flock "$VMRP_REPO/.run-policies.lock" sleep 5 &
sleep 0.5
vmrp run-policies --now $((now + 600)) | grep -q "another run-policies is running"
check "an overlapping run-policies does nothing"
wait

# the libvirt hook: on-start points, through libvirtd's hook folder
[ -x /etc/libvirt/hooks/qemu.d/vmrp-tests ] || bail "no hook dispatcher: run vm-images/prepare-host.sh"
cat >/run/vmrp-test-hook <<EOS
#!/bin/sh
VMRP_STATE_DIR=$VMRP_STATE_DIR exec $VMRP --repo $VMRP_REPO __hook "\$@"
EOS
chmod 0755 /run/vmrp-test-hook
test_cleanup() { rm -f /run/vmrp-test-hook; }
vmrp policy-set "$vm" --keep-last 5 --consistency crash --on-start | comment
check "policy-set --on-start"
# the points before the start: the worker's point is one not among them (its prune, keep-last
# 5, may take an old one, so the count need not grow)
before=$(vmrp --json rp-list "$vm" | jq -c '[.[].id]')
new_point() {
  vmrp --json rp-list "$vm" | jq -e --argjson b "$before" '[.[].id] - $b | length > 0' >/dev/null
}
virsh_ destroy "$vm" >/dev/null
start=$(date +%s.%N)
virsh_ start "$vm" >/dev/null
end=$(date +%s.%N)
check "the domain starts with the hook installed ($(awk "BEGIN {print $end - $start}") s)"
for i in $(seq 120); do
  new_point && break
  sleep 1
done
new_point || { vmrp rp-list "$vm" | comment; tail -n 5 "$VMRP_STATE_DIR/hook.log" | comment; false; }
check "the hook's worker took a point after the start ($i s)"
grep -q '"operation":"started".*handed to a worker' "$VMRP_STATE_DIR/hook.log"
check "hook.log records the handoff"
echo "garbage" | $VMRP --repo "$VMRP_REPO" __hook "$vm" started begin - ; [ $? = 0 ] &&
  grep -q "unexpected domain XML" "$VMRP_STATE_DIR/hook.log"
check "the hook with unexpected input logs it and exits 0"
$VMRP --repo "$VMRP_REPO" __hook onlyone </dev/null; [ $? = 0 ]
check "the hook with unexpected arguments exits 0"
# libvirt runs the hook at every event of every domain: the log is capped
yes '{"old": "record"}' | head -c 1048576 >"$VMRP_STATE_DIR/hook.log"
$VMRP --repo "$VMRP_REPO" __hook onlyone </dev/null
[ "$(stat -c %s "$VMRP_STATE_DIR/hook.log.1")" = 1048576 ] &&
  [ "$(wc -l <"$VMRP_STATE_DIR/hook.log")" = 1 ] &&
  grep -q "expected DOMAIN OPERATION" "$VMRP_STATE_DIR/hook.log"
check "a full hook.log (1 MiB) becomes hook.log.1 and a new one starts"
rm -f /run/vmrp-test-hook
