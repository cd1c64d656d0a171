#!/bin/bash
# test-access.sh: rp-access serves a disk restore point read-only over NBD
# for a time (issue 12, part 1): over a UNIX socket and over TCP with a
# pre-shared TLS key, bit for bit the point's disk (an increment: its whole
# chain); no key, no access; the point and its parent cannot be deleted
# while the grant lasts; revoke and expiry end the export; a SIGKILLed
# rp-access does not shorten or lengthen the grant; a supervisor that is gone
# (as after a reboot) takes its export with it and the next command removes
# its record.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
source "$(dirname "$0")/lib.sh"

vm=$(new_vm a)
exact_point "$vm" p1 || bail "first point"
guest "$vm" exec -- /bin/sh -c 'dd if=/dev/urandom of=/data/new bs=64k count=8 conv=fsync 2>/dev/null'
exact_point "$vm" p2 || bail "second point"
p1=$(point_of p1)
p2=$(point_of p2)
supervisors() { pgrep -f "__access-serve $VMRP_REPO" || true; }
gone() {  # gone URI: no export answers there any more
  ! nbdinfo --size "$1" >/dev/null 2>&1
}

# bad input: one error line, nothing changed
before=$(state_snapshot)
expect_error "$WORK/e1" vmrp rp-access "$p2" vda --duration 0s &&
  expect_error "$WORK/e2" vmrp rp-access "$p2" vda --duration 31d &&
  expect_error "$WORK/e3" vmrp rp-access "$p2" vda &&
  expect_error "$WORK/e4" vmrp rp-access "$p2" vdz --duration 1m &&
  expect_error "$WORK/e5" vmrp rp-access 20200101-000000-abcdef vda --duration 1m &&
  expect_error "$WORK/e6" vmrp rp-access "$p2" vda --duration 1m --socket "$WORK" &&
  expect_error "$WORK/e7" vmrp rp-access "$p2" vda --duration 1m --tcp 127.0.0.1:99999 &&
  expect_error "$WORK/e8" vmrp rp-access-revoke 0123456789abcdef &&
  expect_error "$WORK/e9" vmrp rp-access-revoke ../../etc
check "bad durations, points, disks, sockets, addresses and grants: one error line each"
[ "$before" = "$(state_snapshot)" ] && [ -z "$(supervisors)" ]
check "and nothing changed, no export started"

# a UNIX socket, on the increment
vmrp --json rp-access "$p2" vda --duration 10m >"$WORK/g1.json"
check "rp-access over a UNIX socket"
uri=$(jq -r .uri "$WORK/g1.json")
grant=$(jq -r .grant "$WORK/g1.json")
echo "# $uri"
qemu-img convert -O raw "$uri" "$WORK/g1.raw" && qemu-img compare -q "$WORK/ref/p2-vda.raw" "$WORK/g1.raw"
check "qemu-img convert of the URI gives the increment's disk bit for bit"
[ "$(vmrp --json rp-access-list | jq -r '.[].grant')" = "$grant" ] &&
  [ "$(stat -c %a "$VMRP_REPO/access/$grant.json")" = 600 ]
check "rp-access-list shows the grant; its record is root's alone"
expect_error "$WORK/d1" vmrp rp-delete "$p2" && grep -q "access grant $grant" "$WORK/d1" &&
  expect_error "$WORK/d2" vmrp rp-delete "$p1"
check "neither the point nor the point it builds on can be deleted meanwhile"
vmrp policy-set "$vm" --keep-last 1 >/dev/null &&
  vmrp --json prune "$vm" --dry-run >"$WORK/prune.json" &&
  jq -e --arg p "$p1" '.[] | select(.id == $p) | .keep' "$WORK/prune.json" >/dev/null
check "a prune keeping the last point only would keep the one the grant builds on too"
vmrp rp-access-revoke "$grant" >/dev/null && gone "$uri" && [ -z "$(supervisors)" ] &&
  [ ! -e "$VMRP_REPO/access/$grant.json" ]
check "rp-access-revoke ends the export at once"

# TCP with a pre-shared key, 6 seconds
port=$((20000 + RANDOM % 10000))
vmrp --json rp-access "$p2" vda --duration 6s --tcp "127.0.0.1:$port" \
  --tls-psk "$WORK/client.psk" >"$WORK/g2.json"
check "rp-access over TCP with TLS (port $port)"
uri=$(jq -r .uri "$WORK/g2.json")
echo "# $uri"
[ "$(stat -c %a "$WORK/client.psk")" = 600 ] && grep -Eq '^vmrp:[0-9a-f]{64}$' "$WORK/client.psk"
check "the client's key is written, mode 0600"
nbdcopy "$uri" "$WORK/g2.raw" && qemu-img compare -q "$WORK/ref/p2-vda.raw" "$WORK/g2.raw"
check "nbdcopy over TLS gives the disk bit for bit"
echo "vmrp:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$WORK/wrong.psk"
gone "nbd://127.0.0.1:$port/vda" && gone "${uri%%\?*}?tls-psk-file=$WORK/wrong.psk"
check "without the key, or with another, the server refuses"
sleep 7
gone "$uri" && [ -z "$(supervisors)" ] && [ ! -e "$WORK/client.psk" ] &&
  [ -z "$(ls -A "$VMRP_REPO/access")" ]
check "after 6 s the export is gone, and so are the key and the record"

# TCP with x509: the server's certificate, and a client certificate from its CA
command -v certtool >/dev/null || bail "certtool not found: run vm-images/prepare-host.sh"
make_test_pki "$WORK/pki" || bail "certtool: cannot make the certificates"
port=$((20000 + RANDOM % 10000))
vmrp --json rp-access "$p2" vda --duration 1m --tcp "127.0.0.1:$port" \
  --tls-dir "$WORK/pki/server" >"$WORK/g5.json"
check "rp-access over TCP with x509 certificates (port $port)"
uri=$(jq -r .uri "$WORK/g5.json")
nbdcopy "$uri?tls-certificates=$WORK/pki/client" "$WORK/g5.raw" &&
  qemu-img compare -q "$WORK/ref/p2-vda.raw" "$WORK/g5.raw"
check "a client with a certificate from the CA reads the disk bit for bit"
gone "nbd://127.0.0.1:$port/vda" && gone "$uri?tls-certificates=$WORK/pki/wrong" &&
  gone "$uri?tls-certificates=$WORK/pki/empty"
check "plain TCP, another CA's certificate, or none: refused"
vmrp rp-access-revoke "$(jq -r .grant "$WORK/g5.json")" >/dev/null && gone "$uri?tls-certificates=$WORK/pki/client"
check "and revoked"
expect_error "$WORK/e10" vmrp rp-access "$p2" vda --duration 1m --tcp "127.0.0.1:$port" \
  --tls-dir "$WORK/pki/empty"
check "--tls-dir without the server's files: one error line"

# rp-access SIGKILLed as it returns: the grant lasts its time, no more
"$VMRP" --json rp-access "$p1" vda --duration 5s >"$WORK/g3.json" &
pid=$!
for _ in $(seq 100); do [ -s "$WORK/g3.json" ] && break; sleep 0.1; done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
uri=$(jq -r .uri "$WORK/g3.json")
nbdinfo --size "$uri" >/dev/null
check "rp-access killed: the export still answers"
sleep 6
gone "$uri" && [ -z "$(supervisors)" ]
check "and it ends at expiry all the same"

# the supervisor gone (as after a reboot): no export, and the next command
# removes the record
vmrp --json rp-access "$p1" vda --duration 10m >"$WORK/g4.json"
uri=$(jq -r .uri "$WORK/g4.json")
kill -9 "$(jq -r .pid "$WORK/g4.json")"
for _ in $(seq 50); do gone "$uri" && break; sleep 0.1; done
gone "$uri"
check "a supervisor SIGKILLed takes its qemu-nbd with it"
vmrp rp-list "$vm" >/dev/null && [ -z "$(ls -A "$VMRP_REPO/access")" ] &&
  [ -z "$(ls -d "$VMRP_STATE_DIR"/access-* 2>/dev/null)" ]
check "the next vmrp command removes what it left"
# a grant record that cannot be read might serve any point: nothing is deleted on a guess
bad=0123456789abcdef
echo '{"point": ' >"$VMRP_REPO/access/$bad.json"
expect_error "$WORK/d1" vmrp rp-delete "$p2" &&
  grep -q "access grant $bad is damaged.*rp-access-revoke $bad" "$WORK/d1" &&
  expect_error "$WORK/d2" vmrp prune "$vm" && grep -q "access grant $bad is damaged" "$WORK/d2" &&
  vmrp rp-info "$p2" >/dev/null
check "a damaged grant record: rp-delete and prune refuse, naming it; the point stays"
vmrp rp-access-revoke "$bad" >/dev/null && [ ! -e "$VMRP_REPO/access/$bad.json" ]
check "rp-access-revoke removes the damaged record"
vmrp rp-delete "$p2" >/dev/null
check "with no grant left, the point can be deleted"
