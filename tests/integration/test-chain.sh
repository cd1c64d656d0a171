#!/bin/bash
# Incremental chains stay exact under every failure: a chain of points under
# a running workload, with regions rewritten, zeroed and discarded between
# points; an unclean stop of QEMU; checkpoint metadata lost by libvirt; a
# point deleted in the middle.  Every point is restored and compared bit for
# bit with the disks as they were at the point (the VM is paused for an
# instant around each point, which flushes QEMU's caches, and its disk files
# are copied as the reference).
#
# SPDX-License-Identifier: LGPL-2.1-or-later
. "$(dirname "$0")/lib.sh"

vm=$(new_vm chain --workload --disks 2)
virsh_() { virsh -q -c "$VMRP_URI" "$@"; }
take_point() { exact_point "$vm" "$1"; }
in_guest() { guest "$vm" exec -- /bin/sh -c "$1" >/dev/null; }
restore_exact() { restores_exact "$1"; }
kind() { vmrp --json rp-info "$(point_of "$1")" | jq -r .kind; }

take_point 1
check "point 1 (full)"
[ "$(kind 1)" = full ]
check "the first point is a full"

in_guest 'dd if=/dev/urandom of=/dev/vdb bs=1M seek=8 count=6 conv=fsync 2>/dev/null'
take_point 2
check "point 2 after 6 MiB written on vdb"
in_guest 'dd if=/dev/urandom of=/dev/vdb bs=64k seek=100 count=7 conv=fsync 2>/dev/null;
          dd if=/dev/urandom of=/data/blob bs=1M count=3 conv=fsync 2>/dev/null'
take_point 3
check "point 3 after small writes and a new file"
in_guest 'dd if=/dev/zero of=/dev/vdb bs=1M seek=9 count=2 conv=fsync 2>/dev/null;
          blkdiscard -o 12582912 -l 1048576 /dev/vdb; rm -f /data/blob; sync; fstrim /data || true'
take_point 4
check "point 4 after zeroing, a discard and a deleted file"
in_guest 'dd if=/dev/urandom of=/dev/vdb bs=4k seek=2050 count=3 conv=fsync 2>/dev/null'
take_point 5
check "point 5"
for n in 2 3 4 5; do
  [ "$(kind $n)" = incremental ] || { echo "# point $n is $(kind $n)"; false; }
  check "point $n is an increment"
done
[ "$(vmrp --json rp-info "$(point_of 3)" | jq '.disks[0].bytes_done')" -lt 16777216 ]
check "an increment copies only what changed"
for n in 1 2 3 4 5; do
  restore_exact $n
  check "point $n restores bit for bit"
done

# an unclean stop: QEMU killed, its bitmaps left inconsistent
kill -9 "$(cat "/run/libvirt/qemu/$vm.pid")"
for i in $(seq 50); do [ "$(virsh_ domstate "$vm")" = "shut off" ] && break; sleep 0.2; done
virsh_ start "$vm" >/dev/null && guest "$vm" wait 120 >/dev/null
check "the VM starts again after QEMU was killed"
in_guest 'dd if=/dev/urandom of=/dev/vdb bs=1M seek=20 count=1 conv=fsync 2>/dev/null'
take_point 6
check "point 6 after the unclean stop"
[ "$(kind 6)" = full ] && grep -Eq "inconsistent|lost its bitmaps" "$WORK/ref/6.out"
check "point 6 is a full, and says the bitmaps were lost"
[ "$(vmrp --json rp-info "$(point_of 6)" | jq -r .message)" != null ]
check "the manifest records why"
restore_exact 6
check "point 6 restores bit for bit"

# libvirt forgets the checkpoint: it is redefined from the repository
virsh_ checkpoint-delete "$vm" "vmrp-$(point_of 6)" --metadata >/dev/null
check "checkpoint metadata of point 6 removed from libvirt"
in_guest 'dd if=/dev/urandom of=/dev/vdb bs=1M seek=30 count=2 conv=fsync 2>/dev/null'
take_point 7
check "point 7 after the checkpoint metadata was lost"
[ "$(kind 7)" = incremental ] && grep -q "redefined" "$WORK/ref/7.out"
check "point 7 is an increment on the redefined checkpoint"
restore_exact 7
check "point 7 restores bit for bit"

# a point in the middle deleted: every other point stays exact
vmrp rp-delete "$(point_of 3)" >"$WORK/delete.out" 2>&1
check "rp-delete of point 3 (in the middle of the chain)"
comment "$WORK/delete.out"
! vmrp rp-info "$(point_of 3)" >/dev/null 2>&1 &&
  [ -z "$(virsh_ checkpoint-list "$vm" --name | grep "$(point_of 3)")" ]
check "point 3 and its checkpoint are gone"
[ "$(vmrp --json rp-info "$(point_of 4)" | jq -r .parent)" = "$(point_of 2)" ]
check "point 4 now builds on point 2"
for n in 1 2 4 5 6 7; do
  restore_exact $n
  check "point $n still restores bit for bit"
done
vmrp rp-delete "$(point_of 1)" >/dev/null 2>&1 && restore_exact 2 && restore_exact 5
check "deleting the chain's full point keeps its increments exact"

# the chain goes on after all that
in_guest 'dd if=/dev/urandom of=/dev/vdb bs=1M seek=40 count=1 conv=fsync 2>/dev/null'
take_point 8 && [ "$(kind 8)" = incremental ] && restore_exact 8
check "point 8 is an exact increment"
