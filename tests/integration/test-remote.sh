#!/bin/bash
# test-remote.sh: points of a domain on "another host" (issue 11, item 1):
# this host reached as qemu+tcp://127.0.0.1:16599/system.  The export is then
# served on TCP with TLS (libvirt's backup_tls_x509_cert_dir, set by the
# test in qemu.conf) and vmrp reads it with its client certificate; a plain
# TCP client is refused; a missing or wrong client certificate is a clear
# error that leaves no job, no checkpoint and no point.  Certificates are
# the test's own throwaway CA's (certtool).
#
# This test restarts libvirtd (listening on 127.0.0.1:16599 without auth, for
# the test's time only) and restores its configuration when it ends: it runs
# alone (integration tests are serial).
#
# SPDX-License-Identifier: LGPL-2.1-or-later
source "$(dirname "$0")/lib.sh"

[ "$VMRP_FAULT_POINTS" = true ] || { echo "1..0 # SKIP needs a fault-point build"; exit 77; }
command -v certtool >/dev/null || bail "certtool not found: run vm-images/prepare-host.sh"

REMOTE=qemu+tcp://127.0.0.1:16599/system
LOCAL=$VMRP_URI
port=$((11000 + RANDOM % 1000))

libvirtd_running() {
  local pid
  pid=$(cat /run/libvirtd.pid 2>/dev/null) && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = libvirtd ]
}
restart_libvirtd() {  # restart_libvirtd [libvirtd options]
  if libvirtd_running; then
    kill "$(cat /run/libvirtd.pid)"
    for _ in $(seq 100); do libvirtd_running || break; sleep 0.1; done
  fi
  rm -f /run/libvirtd.pid
  LIBVIRT_LOG_OUTPUTS="3:file:/var/log/libvirt/libvirtd.log" libvirtd -d "$@"
  for _ in $(seq 240); do
    virsh -q -c "$LOCAL" version >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  return 1
}
test_cleanup() {
  export VMRP_URI=$LOCAL
  virsh -q -c "$LOCAL" pool-destroy "$TEST_ID-pool" >/dev/null 2>&1
  if [ -f "$WORK/libvirtd.conf" ]; then
    cp "$WORK/libvirtd.conf" /etc/libvirt/libvirtd.conf
    cp "$WORK/qemu.conf" /etc/libvirt/qemu.conf
    restart_libvirtd || echo "# could not start libvirtd again"
  fi
}

# --- a throwaway CA, QEMU's server certificate, two client certificates ---
pki=$WORK/pki
make_test_pki "$pki" || bail "certtool: cannot make the certificates"
chown -R libvirt-qemu "$pki/server" && chmod 700 "$pki/server"

# --- libvirtd listening on loopback TCP; QEMU's backup TLS ---
cp /etc/libvirt/libvirtd.conf "$WORK/libvirtd.conf" && cp /etc/libvirt/qemu.conf "$WORK/qemu.conf"
cat >>/etc/libvirt/libvirtd.conf <<EOC
listen_tls = 0
listen_tcp = 1
listen_addr = "127.0.0.1"
tcp_port = "16599"
auth_tcp = "none"
EOC
cat >>/etc/libvirt/qemu.conf <<EOC
backup_tls_x509_cert_dir = "$pki/server"
backup_tls_x509_verify = 1
EOC
restart_libvirtd --listen && virsh -q -c "$REMOTE" version >/dev/null
check "libvirtd answers on $REMOTE"

vm=$(new_vm a)
export VMRP_URI=$REMOTE
exact_point "$vm" p1 --tls-dir "$pki/client" --nbd-ports "$port-$port"
check "a full point of the domain through $REMOTE"
guest "$vm" exec -- /bin/sh -c 'dd if=/dev/urandom of=/data/new bs=64k count=8 conv=fsync 2>/dev/null'
exact_point "$vm" p2 --tls-dir "$pki/client" --nbd-ports "$port-$port" &&
  [ "$(point_field "$(point_of p2)" .kind)" = incremental ]
check "and an increment"
export VMRP_URI=$LOCAL
restores_exact p1 && restores_exact p2
check "both restore bit for bit"
export VMRP_URI=$REMOTE

# while a job hangs: the export is TCP with TLS
job=$(VMRP_FAULT=after-job-start:hang VMRP_FAULT_REACHED="$WORK/fault-reached" \
      vmrp --json rp-create "$vm" --consistency crash --async --tls-dir "$pki/client" \
        --nbd-ports "$port-$port" | jq -r .job)
wait_reached after-job-start || bail "the job did not start"
virsh -q -c "$REMOTE" backup-dumpxml "$vm" >"$WORK/job.xml"
grep "<server" "$WORK/job.xml" | grep "transport='tcp'" | grep "tls='yes'" |
  grep -q "port='$port'"
check "the backup job serves on TCP port $port with TLS"
! nbdinfo --size "nbd://127.0.0.1:$port/vmrp-vda" >/dev/null 2>&1 &&
  nbdinfo --size "nbds://127.0.0.1:$port/vmrp-vda?tls-certificates=$pki/client" >/dev/null
check "a plain TCP client is refused; one with the client certificate reads"
! nbdinfo --size "nbds://127.0.0.1:$port/vmrp-vda?tls-certificates=$pki/wrong" >/dev/null 2>&1
check "a client certificate from another CA is refused"
vmrp job-abort "$job" >/dev/null && ! virsh -q -c "$REMOTE" domjobinfo "$vm" | grep -q Backup
check "job-abort ends the remote job"

before=$(state_snapshot)
expect_error "$WORK/e1" vmrp rp-create "$vm" --consistency crash --tls-dir "$pki/empty"
check "no client certificate: one clear error"
grep -q "client-cert.pem\|ca-cert.pem" "$WORK/e1"
check "naming the missing file"
expect_error "$WORK/e2" vmrp rp-create "$vm" --consistency crash --tls-dir "$pki/wrong" \
  --nbd-ports "$port-$port"
check "a client certificate the server does not trust: one clear error"
[ "$before" = "$(state_snapshot)" ] && ! virsh -q -c "$REMOTE" domjobinfo "$vm" | grep -q Backup
check "and no job, no checkpoint, no point is left"
# run-policies visits the host each collection records
uuid=$(virsh -q -c "$REMOTE" domuuid "$vm")
vmrp policy-set "$vm" --schedule "every 1m" --keep-last 5 >/dev/null &&
  [ "$(jq -r .uri "$VMRP_REPO/collections/$uuid/collection.json")" = "$REMOTE" ]
check "policy-set through $REMOTE records the host in the collection"
other=$(cat /proc/sys/kernel/random/uuid)
cp -a "$VMRP_REPO/collections/$uuid" "$VMRP_REPO/collections/$other"
jq --arg u "$other" '.uuid = $u | .name = "gone-host" | .uri = "qemu+tcp://127.0.0.1:1/system"' \
  "$VMRP_REPO/collections/$uuid/collection.json" >"$VMRP_REPO/collections/$other/collection.json"
n=$(vmrp --json rp-list "$vm" | jq length)
VMRP_URI=$LOCAL VMRP_TLS_DIR="$pki/client" vmrp run-policies --parallel 2 \
  --now $(($(date +%s) + 3600)) >"$WORK/run.out" 2>&1
comment "$WORK/run.out"
grep -q "^$vm: point .* taken" "$WORK/run.out" && [ "$(vmrp --json rp-list "$vm" | jq length)" = $((n + 1)) ]
check "run-policies (local URI) takes the due point through the recorded remote host"
grep -q "^gone-host: host qemu+tcp://127.0.0.1:1/system unreachable, no point taken, retried" \
  "$WORK/run.out"
check "a host that does not answer is said, and the run goes on"
rm -rf "$VMRP_REPO/collections/$other"

# restores through a storage pool of the remote host: new volumes, uploaded
pool="$TEST_ID-pool"
mkdir -p "$WORK/pool"
virsh -q -c "$REMOTE" pool-create-as "$pool" dir --target "$WORK/pool" >/dev/null
check "a storage pool on the remote host"
out=$(vmrp --json rp-restore "$(point_of p2)" --name "$TEST_ID-r" --pool "$pool" --power-on)
check "rp-restore --pool through $REMOTE"
vol=$(virsh -q -c "$REMOTE" vol-path --pool "$pool" "$TEST_ID-r-vda.qcow2") &&
  [ "$(jq -r '.disks[0]' <<<"$out")" = "vda=$vol" ] &&
  virsh -q -c "$REMOTE" dumpxml "$TEST_ID-r" |
    grep -q "<source pool='$pool' volume='$TEST_ID-r-vda.qcow2'" &&
  qemu-img compare -q -U "$WORK/ref/p2-vda.raw" "$vol" &&
  [ "$(virsh -q -c "$REMOTE" domstate "$TEST_ID-r")" = running ]
check "the new domain runs on a volume of the pool holding the point's disk bit for bit"
before=$(state_snapshot; virsh -q -c "$REMOTE" vol-list "$pool")
expect_error "$WORK/e4" vmrp rp-restore "$(point_of p2)" --name "$TEST_ID-r2" --pool nosuchpool &&
  virsh -q -c "$REMOTE" vol-create-as "$pool" "$TEST_ID-r2-vda.qcow2" 1M >/dev/null &&
  before=$(state_snapshot; virsh -q -c "$REMOTE" vol-list "$pool") &&
  expect_error "$WORK/e5" vmrp rp-restore "$(point_of p2)" --name "$TEST_ID-r2" --pool "$pool" &&
  [ "$before" = "$(state_snapshot; virsh -q -c "$REMOTE" vol-list "$pool")" ]
check "an unknown pool, a volume name taken: one error each, nothing made"
virsh -q -c "$REMOTE" destroy "$TEST_ID-r" >/dev/null 2>&1
virsh -q -c "$REMOTE" pool-destroy "$pool" >/dev/null
expect_error "$WORK/e3" vmrp rp-restore "$(point_of p2)" --name "$TEST_ID-x" &&
  grep -q "this host's files only" "$WORK/e3"
check "rp-restore through a remote connection is refused, in words"
export VMRP_URI=$LOCAL
