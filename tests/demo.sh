#!/bin/bash
# demo.sh: the README's first command.  Prepares this host, builds vmrp and
# the tiny test guest, then takes application-consistent restore points of a
# running test VM under load and restores one as a new VM, and shows that the
# new VM boots with exactly the data the guest had at the point.
#
#   sudo tests/demo.sh [--keep]     --keep leaves the VMs and the repository
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -euo pipefail
cd "$(dirname "$0")/.."
keep=false
[ "${1:-}" = --keep ] && keep=true

start=$(date +%s)
tests/build.sh
builddir=${VMRP_BUILDDIR:-build}
vmrp() { "$builddir/plugin/vmrp" "$@"; }
guest() { "$builddir/tests/tools/vmrp-guest" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

demo=/var/tmp/vmrp-demo
export VMRP_REPO=$demo/repo VMRP_STATE_DIR=$demo/state
vm=vmrp-demo
new=vmrp-demo-restored

vm-images/testvm.sh cleanup "$vm" >/dev/null    # a previous demo's VMs
rm -rf "$demo" && mkdir -m 711 "$demo"
finish() {
  if ! $keep; then
    vm-images/testvm.sh cleanup "$vm" >/dev/null 2>&1 || true
    rm -rf "$demo"
  fi
}
trap finish EXIT

step "A test VM: $vm (TCG, 2 disks, a workload appending checksummed records to /data/records)"
vm-images/testvm.sh create "$vm" --workload --disks 2 --start
guest "$vm" wait 120
sleep 3

step "vmrp rp-create $vm  (application-consistent: the guest's freeze hook pauses the workload)"
vmrp rp-create "$vm"
sleep 2
vmrp rp-create "$vm" --consistency filesystem
point=$(vmrp --json rp-list "$vm" | jq -r '.[0].id')

step "vmrp rp-list $vm"
vmrp rp-list "$vm"

step "vmrp rp-info $point"
vmrp rp-info "$point"

step "What the guest's freeze hook recorded (/run/fsfreeze.log in the guest)"
guest "$vm" cat /run/fsfreeze.log
line=$(guest "$vm" cat /run/fsfreeze.log | grep '^freeze ' | head -1)
records=${line#*records=}; records=${records%% *}
md5=${line##*md5=}

step "vmrp rp-restore $point --name $new --power-on"
vmrp rp-restore "$point" --name "$new" --power-on
guest "$new" wait 120

step "The restored VM's data"
# the restored guest's workload goes on appending: its first records are the point's
got_md5=$(guest "$new" exec -- /bin/sh -c "head -n $records /data/records | md5sum" | cut -d' ' -f1)
got_records=$(guest "$new" exec -- /bin/sh -c 'wc -l </data/records' | tr -d ' ')
now=$(guest "$vm" exec -- /bin/sh -c 'wc -l </data/records' | tr -d ' ')
guest "$new" exec -- /usr/bin/vmrp-verify-records
printf 'at the point:     %s records, md5 %s\n' "$records" "$md5"
printf 'restored VM:      the first %s records, md5 %s (%s records now: its workload goes on)\n' "$records" "$got_md5" "$got_records"
printf 'original VM now:  %s records (still running, untouched)\n' "$now"
virsh -q -c qemu:///system list --all | grep -E " ($vm|$new) "
if [ "$got_md5" != "$md5" ] || [ "$got_records" -lt "$records" ]; then
  echo "DEMO FAILED: the restored data differs from the point" >&2
  exit 1
fi

step "Done in $(( $(date +%s) - start )) s: the restored VM holds exactly the point's data"
if $keep; then
  echo "kept: domains $vm and $new, repository $VMRP_REPO"
else
  echo "removing the demo VMs and repository (run with --keep to keep them)"
fi
