#!/bin/bash
# test-volume-disk.sh: a disk that is a libvirt storage volume
# (<disk type='volume'><source pool='P' volume='V'/>) is in the point like a
# file disk, a clone gets its own file, and an in-place restore writes the
# volume and keeps the disk a volume (issue 16, item 8).  libvirt's live XML
# names only the pool and the volume: vmrp asks the pool for the path.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
source "$(dirname "$0")/lib.sh"

vm="$TEST_ID-a"
pool="$TEST_ID-pool"
test_cleanup() { virsh -q -c "$VMRP_URI" pool-destroy "$pool" >/dev/null 2>&1; }

"$TESTVM" create "$vm" >&2 || bail "cannot create $vm"
dir=$(dirname "$(virsh -q -c "$VMRP_URI" domblklist "$vm" | awk '$1 == "vda" {print $2}')")
virsh -q -c "$VMRP_URI" pool-create-as "$pool" dir --target "$dir" >/dev/null &&
  virsh -q -c "$VMRP_URI" dumpxml "$vm" |
  sed -e "s|<disk type='file' device='disk'>|<disk type='volume' device='disk'>|" \
      -e "s|<source file='$dir/vda.qcow2'/>|<source pool='$pool' volume='vda.qcow2'/>|" \
      >"$WORK/vol.xml" &&
  virsh -q -c "$VMRP_URI" define "$WORK/vol.xml" >/dev/null &&
  "$TESTVM" start "$vm" >&2 && guest "$vm" wait 120 >&2 || bail "cannot start $vm on a volume"
virsh -q -c "$VMRP_URI" dumpxml "$vm" | grep -q "<source pool='$pool' volume='vda.qcow2'"
check "the domain's vda is volume vda.qcow2 of pool $pool"
volpath=$(virsh -q -c "$VMRP_URI" vol-path --pool "$pool" vda.qcow2)

# point TAG: the volume's data as the reference, then a crash-consistent point
point() {
  virsh -q -c "$VMRP_URI" suspend "$vm" >/dev/null &&
    qemu-img convert -U -O raw "$volpath" "$WORK/$1.raw" &&
    vmrp rp-create "$vm" --consistency crash >"$WORK/$1.out" 2>&1
  local rc=$?
  virsh -q -c "$VMRP_URI" resume "$vm" >/dev/null
  comment "$WORK/$1.out"
  [ $rc = 0 ] && vmrp --json rp-list "$vm" | jq -r '.[-1].id' >"$WORK/$1.id"
}
point p1
check "rp-create of a domain whose disk is a volume"
p1=$(cat "$WORK/p1.id")
[ "$(point_field "$p1" '[.disks[] | select(.excluded | not) | "\(.target)=\(.source)"] | join(" ")')" = "vda=$volpath" ]
check "the point holds vda, read from the volume's path"

guest "$vm" exec -- /bin/sh -c 'dd if=/dev/urandom of=/data/new bs=64k count=8 conv=fsync 2>/dev/null'
point p2
[ "$(point_field "$(cat "$WORK/p2.id")" .kind)" = incremental ]
check "the next point is an increment on it"

out=$(vmrp --json rp-restore "$(cat "$WORK/p2.id")" --name "$vm-b") &&
  clone=$(jq -r '.disks[] | select(startswith("vda=")) | .[4:]' <<<"$out") &&
  [ "$clone" != "$volpath" ] && qemu-img compare -q "$WORK/p2.raw" "$clone" &&
  virsh -q -c "$VMRP_URI" dumpxml "$vm-b" | grep -q "<source file='$clone'/>"
check "restored beside: the clone has a file of its own, bit for bit the increment's data"

vmrp rp-restore "$p1" --shutdown-timeout 10 >"$WORK/inplace.out" 2>&1
check "restored in place to the first point"
comment "$WORK/inplace.out"
qemu-img compare -q "$WORK/p1.raw" "$volpath" &&
  virsh -q -c "$VMRP_URI" dumpxml --inactive "$vm" |
  grep -q "<source pool='$pool' volume='vda.qcow2'/>"
check "the volume holds the first point's data, and the disk is still that volume"
