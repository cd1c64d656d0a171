#!/bin/bash
# rp-copy and collection-sync to ssh://root@127.0.0.1:PORT/DIR (issue 10): the test
# starts its own sshd on a free loopback port, with a throwaway host key, a throwaway
# user key in its own authorized_keys and its own known_hosts (VMRP_SSH_KNOWN_HOSTS,
# VMRP_SSH_IDENTITY): nothing in /root/.ssh or /etc/ssh is used or changed.  A chain
# copied over SFTP is byte-identical and sparse there; a sync sends only the new
# point; rp-list and rp-verify work over ssh and find a flipped byte; a copy back to a
# local folder restores bit for bit; wrong and unknown host keys and an unreachable
# port are refused with one clear line; a copy killed before its rename shows no half
# point as whole and the next one completes.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
. "$(dirname "$0")/lib.sh"

[ -x /usr/sbin/sshd ] || { echo "1..0 # SKIP no /usr/sbin/sshd (openssh-server)"; exit 77; }

# ---- the test's own sshd ----
SSHD=$WORK/sshd
# shellcheck source=tests/tools/loopback-sshd.sh
. "$(dirname "$0")/../tools/loopback-sshd.sh"
test_cleanup() { [ -z "${SSHD_PID:-}" ] || { kill "$SSHD_PID"; wait "$SSHD_PID"; } 2>/dev/null; }
loopback_sshd "$SSHD" && ssh-keygen -q -t ed25519 -N '' -C vmrp-test-other -f "$SSHD/other_key" ||
  bail "cannot start the test's sshd"
PORT=$SSHD_PORT
free_port() {  # a loopback port nothing listens on
  local p
  while p=$((20000 + RANDOM % 40000)); (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do :; done
  echo "$p"
}
ms() { echo $(($(date +%s%N) / 1000000)); }
known() { echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$1")"; }
known "$SSHD/other_key.pub" >"$SSHD/known_hosts.wrong"
: >"$SSHD/known_hosts.empty"
REMOTE=$WORK/remote
URL="ssh://root@127.0.0.1:$PORT$REMOTE"

vm=$(new_vm copyssh --disks 2)
in_guest() { guest "$vm" exec -- /bin/sh -c "$1" >/dev/null; }
pdir() { echo "$1"/collections/*/points/"$2"; }
flip_byte() {
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf "\\$(printf '%03o' $((b ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

in_guest 'dd if=/dev/urandom of=/dev/vdb bs=1M seek=1 count=6 conv=fsync 2>/dev/null'
exact_point "$vm" 1
check "point 1 (full)"
in_guest 'dd if=/dev/urandom of=/dev/vdb bs=1M seek=30 count=2 conv=fsync 2>/dev/null'
exact_point "$vm" 2
check "point 2 (increment)"
in_guest 'dd if=/dev/urandom of=/dev/vdb bs=64k seek=500 count=3 conv=fsync 2>/dev/null'
exact_point "$vm" 3
check "point 3 (increment)"
p1=$(point_of 1) p2=$(point_of 2) p3=$(point_of 3)

start=$(ms)
vmrp rp-copy "$p3" --to "$URL" >"$WORK/c1" 2>"$WORK/c1.err" &&
  [ "$(head -n 3 "$WORK/c1")" = "$p1 copied
$p2 copied
$p3 copied" ]
check "rp-copy over ssh copies the chain, oldest first ($(($(ms) - start)) ms)"
comment "$WORK/c1" "$WORK/c1.err"
same=0
for p in "$p1" "$p2" "$p3"; do
  for t in vda vdb; do
    cmp -s "$(pdir "$VMRP_REPO" "$p")/$t.qcow2" "$(pdir "$REMOTE" "$p")/$t.qcow2" &&
      [ "$(du -k "$(pdir "$REMOTE" "$p")/$t.qcow2" | cut -f1)" -le \
        $(($(du -k "$(pdir "$VMRP_REPO" "$p")/$t.qcow2" | cut -f1) + 64)) ] &&
      same=$((same + 1))
  done
done
[ "$same" = 6 ]
check "the remote images are byte-identical to the source's and as sparse"
[ "$(qemu-img info -f qcow2 --output=json "$(pdir "$REMOTE" "$p3")/vdb.qcow2" |
     jq -r '."backing-filename"')" = "../$p2/vdb.qcow2" ]
check "an increment there is an overlay with the same relative backing name"
(cd "$(pdir "$REMOTE" "$p2")" && sha256sum --quiet -c SHA256SUMS) &&
  grep -q "  vdb.qcow2$" "$(pdir "$REMOTE" "$p2")/SHA256SUMS"
check "each point there has a SHA256SUMS that sha256sum -c accepts"
[ -z "$(ls -A "$(dirname "$(pdir "$REMOTE" "$p1")")" | grep '^\.creating-')" ] &&
  [ ! -e "$(dirname "$(dirname "$(pdir "$REMOTE" "$p1")")")/.sftp-lock" ]
check "no .creating- folder and no lock are left there"

in_guest 'dd if=/dev/urandom of=/dev/vdb bs=1M seek=40 count=2 conv=fsync 2>/dev/null'
exact_point "$vm" 4
check "point 4 (increment)"
p4=$(point_of 4)
vmrp --json collection-sync "$vm" --to "$URL" >"$WORK/s1" 2>/dev/null &&
  jq -e '.copied == ["'"$p4"'"] and (.present | length) == 3' "$WORK/s1" >/dev/null &&
  [ "$(jq .bytes "$WORK/s1")" -le "$(du -s --block-size=1 "$(pdir "$VMRP_REPO" "$p4")" |
                                     cut -f1)" ] &&
  [ "$(jq .bytes "$WORK/s1")" -lt "$(du -s --block-size=1 "$(pdir "$VMRP_REPO" "$p1")" |
                                     cut -f1)" ]
check "collection-sync sends only the new point ($(jq .bytes "$WORK/s1") bytes; point 4 holds $(du -s --block-size=1 "$(pdir "$VMRP_REPO" "$p4")" | cut -f1))"

VMRP_REPO=$URL vmrp --json rp-list "$vm" >"$WORK/l1" 2>"$WORK/l1.err" &&
  jq -e '[.[].id] == ["'"$p1"'", "'"$p2"'", "'"$p3"'", "'"$p4"'"] and
         all(.[]; .state == "Succeeded" and .verify_state == "OK")' "$WORK/l1" >/dev/null
check "rp-list --repo ssh://... lists the four points, checked at the copy"
comment "$WORK/l1.err"
VMRP_REPO=$URL vmrp rp-verify "$vm" >"$WORK/v1" 2>&1 && [ "$(grep -c ' OK$' "$WORK/v1")" = 4 ]
check "rp-verify --repo ssh://... finds every point OK"
comment "$WORK/v1"

# bit rot at the destination
img=$(pdir "$REMOTE" "$p2")/vdb.qcow2
off=$(($(stat -c %s "$img") - 70000))
flip_byte "$img" "$off"
VMRP_REPO=$URL vmrp rp-verify "$p2" >"$WORK/v2" 2>"$WORK/v2.err"
[ $? != 0 ] && grep -q "^$p2 Failed: image vdb.qcow2 does not match the SHA-256" "$WORK/v2"
check "a flipped byte in a remote image: rp-verify over ssh names the point, image and cause"
comment "$WORK/v2"
VMRP_REPO=$URL vmrp --json rp-list "$vm" | jq -e '.[1].verify_state == "Failed"' >/dev/null
check "and rp-list over ssh shows the point as Failed"
flip_byte "$img" "$off"
VMRP_REPO=$URL vmrp rp-verify "$p2" >/dev/null 2>&1
check "repaired, it verifies OK again"

# domain.xml changed there and its line in SHA256SUMS with it: the manifest's own
# digest of the file (XXH3-128) still finds it
d2=$(pdir "$REMOTE" "$p2")
cp "$d2/domain.xml" "$WORK/domain.xml.orig" && cp "$d2/SHA256SUMS" "$WORK/sums.orig"
sed -i 's|</domain>|<!-- x --></domain>|' "$d2/domain.xml"
sed -i "s|^[0-9a-f]*  domain.xml\$|$(sha256sum <"$d2/domain.xml" | cut -d' ' -f1)  domain.xml|" \
  "$d2/SHA256SUMS"
(cd "$d2" && sha256sum --quiet -c SHA256SUMS) &&
  { VMRP_REPO=$URL vmrp rp-verify "$p2" >"$WORK/v3" 2>&1; [ $? != 0 ]; } &&
  grep -q "^$p2 Failed: domain.xml does not match its digest in the manifest" "$WORK/v3"
check "a file changed there together with SHA256SUMS is found by the manifest's digest"
comment "$WORK/v3"
cp "$WORK/domain.xml.orig" "$d2/domain.xml" && cp "$WORK/sums.orig" "$d2/SHA256SUMS" &&
  VMRP_REPO=$URL vmrp rp-verify "$p2" >/dev/null 2>&1
check "put back, it verifies OK again"

# other commands refuse an ssh repository
VMRP_REPO=$URL expect_error "$WORK/r1" vmrp rp-delete "$p1" &&
  grep -q "serves only rp-list, rp-verify and rp-copy" "$WORK/r1"
check "rp-delete on an ssh:// repository is refused with a clear error"

# back to a local folder, and restored from there
BACK=$WORK/back
VMRP_REPO=$URL vmrp rp-copy "$p3" --to "$BACK" >"$WORK/b1" 2>"$WORK/b1.err" &&
  [ "$(head -n 3 "$WORK/b1")" = "$p1 copied
$p2 copied
$p3 copied" ] && cmp -s "$(pdir "$VMRP_REPO" "$p3")/vdb.qcow2" "$(pdir "$BACK" "$p3")/vdb.qcow2"
check "rp-copy --repo ssh://... --to a local folder copies the chain back"
comment "$WORK/b1" "$WORK/b1.err"
VMRP_REPO=$BACK restores_exact 3
check "and point 3 restores bit for bit from there"
start=$(ms)
VMRP_REPO=$URL vmrp --json rp-copy "$p1" --to "$WORK/back-bw" --bandwidth 2M \
    >"$WORK/bw.json" 2>"$WORK/bw.err"
rc=$? took=$(($(ms) - start)) bytes=$(jq .bytes "$WORK/bw.json" 2>/dev/null || echo 0)
least=$((bytes * 1000 / (2 * 1048576)))
[ $rc = 0 ] && [ "$bytes" -ge 1048576 ] && [ "$took" -ge $((least - 100)) ] &&
  cmp -s "$(pdir "$VMRP_REPO" "$p1")/vdb.qcow2" "$(pdir "$WORK/back-bw" "$p1")/vdb.qcow2"
check "the copy back takes --bandwidth 2M: $bytes bytes in $took ms, at least $least ms"
comment "$WORK/bw.err"
VMRP_REPO=$URL expect_error "$WORK/r2" vmrp rp-copy "$p1" --to "$WORK/back-async" --async &&
  grep -q "^error: --async: a copy from an ssh:// repository runs in the foreground" \
    "$WORK/r2" && [ ! -e "$WORK/back-async" ]
check "the copy back with --async is one clear error, nothing made"

# host keys and reachability: refused before anything is written
VMRP_SSH_KNOWN_HOSTS=$SSHD/known_hosts.wrong expect_error "$WORK/k1" \
  vmrp rp-copy "$p1" --to "${URL}-wrong" &&
  grep -q "host key of 127.0.0.1 port $PORT (ssh-ed25519 SHA256:.*) does not match" "$WORK/k1" &&
  [ ! -e "$REMOTE-wrong" ]
check "a changed host key is refused, naming host and fingerprint; nothing written"
VMRP_SSH_KNOWN_HOSTS=$SSHD/known_hosts.empty expect_error "$WORK/k2" \
  vmrp rp-copy "$p1" --to "${URL}-unknown" &&
  grep -q "host key of 127.0.0.1 port $PORT (ssh-ed25519 SHA256:.*) is not in" "$WORK/k2" &&
  [ ! -e "$REMOTE-unknown" ]
check "an unknown host is refused; nothing written"
closed=$(free_port)
start=$(date +%s)
expect_error "$WORK/k3" vmrp rp-copy "$p1" --to "ssh://root@127.0.0.1:$closed/x" &&
  grep -q "cannot connect to 127.0.0.1 port $closed" "$WORK/k3" &&
  [ $(($(date +%s) - start)) -le 12 ]
check "an unreachable port fails at once with one clear line"
# a host that takes the connection but never answers: sshd stopped (SIGSTOP)
kill -STOP "$SSHD_PID"
start=$(date +%s)
VMRP_SSH_TIMEOUT=3 expect_error "$WORK/k4" vmrp rp-copy "$p1" --to "$URL-stopped" &&
  grep -q "cannot connect to 127.0.0.1 port $PORT (timeout 3 s)" "$WORK/k4" &&
  [ $(($(date +%s) - start)) -le 6 ]
check "a host that does not answer fails within the timeout ($(($(date +%s) - start)) s)"
kill -CONT "$SSHD_PID"

# killed before the check and the rename
in_guest 'dd if=/dev/urandom of=/dev/vdb bs=1M seek=50 count=2 conv=fsync 2>/dev/null'
exact_point "$vm" 5
check "point 5 (increment)"
p5=$(point_of 5)
points=$(dirname "$(pdir "$REMOTE" "$p1")")
if [ "$VMRP_FAULT_POINTS" = true ]; then
  VMRP_FAULT=copy-before-check:kill vmrp collection-sync "$vm" --to "$URL" >/dev/null 2>&1
  [ $? = 137 ] && [ -d "$points/.creating-$p5" ] && [ ! -e "$points/$p5" ] &&
    [ -e "$(dirname "$points")/.sftp-lock" ]
  check "a copy killed before its rename leaves a .creating- folder (and its lock)"
  ! VMRP_REPO=$URL vmrp --json rp-list "$vm" | jq -e '.[] | select(.id == "'"$p5"'")' \
    >/dev/null
  check "rp-list over ssh shows no half point"
else
  echo "ok $((TAP_N + 1)) # SKIP no fault points in this build"; TAP_N=$((TAP_N + 1))
fi
vmrp --json collection-sync "$vm" --to "$URL" 2>"$WORK/s2.err" |
  jq -e '.copied == ["'"$p5"'"]' >/dev/null &&
  [ -z "$(ls -A "$points" | grep '^\.creating-')" ] &&
  VMRP_REPO=$URL vmrp rp-verify "$p5" >/dev/null 2>&1
check "the next sync takes over the dead vmrp's lock, cleans up and completes"
comment "$WORK/s2.err"

# a lock held by a live vmrp (of another host) is a clear busy error
printf 'vmrp lock\nhost elsewhere\npid 1\ntime 2026-01-01T00:00:00Z\n' \
  >"$(dirname "$points")/.sftp-lock"
expect_error "$WORK/k5" vmrp collection-sync "$vm" --to "$URL" &&
  grep -q "busy: locked by vmrp pid 1 on host elsewhere" "$WORK/k5"
check "a lock held elsewhere: busy, naming the holder and the file to remove"
VMRP_REPO=$REMOTE expect_error "$WORK/k6" vmrp rp-verify "$p1" &&
  grep -q "busy: a vmrp copies to it over ssh" "$WORK/k6"
check "a vmrp on the far host using the folder as its repository honours that lock"
rm -f "$(dirname "$points")/.sftp-lock"

# a full file system at the far end: one clear line, no point, nothing left behind
FULL=$WORK/mnt-full
mkdir -p "$FULL" && mount -t tmpfs -o size=4m tmpfs "$FULL" || bail "cannot mount a tmpfs"
! vmrp rp-copy "$p1" --to "ssh://root@127.0.0.1:$PORT$FULL/repo" >/dev/null 2>"$WORK/f1" &&
  [ "$(grep -c '^error: ' "$WORK/f1")" = 1 ] && tail -n 1 "$WORK/f1" | grep -q '^error: ' &&
  grep -q "cannot write .*vd[ab].qcow2: the server refused it (a full file system" "$WORK/f1" &&
  [ -z "$(ls -A "$(dirname "$(pdir "$FULL/repo" "$p1")")")" ] &&
  [ ! -e "$(dirname "$(dirname "$(pdir "$FULL/repo" "$p1")")")/.sftp-lock" ]
check "a full file system there: a clear error, no point or .creating- folder, no lock left"
comment "$WORK/f1"
umount "$FULL"
