# lib.sh: common part of vmrp's integration tests (sourced, bash)
#
# Every test works on domains named $VMRP_IT_PREFIX<test>-<random>, a
# repository and files of its own, and removes all of them when it exits,
# whether it passed or not.  It never touches another domain.
# Output is TAP: 'ok N - what' / 'not ok N - what', then a plan.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -uo pipefail

SRCDIR=${VMRP_SRCDIR:?VMRP_SRCDIR is set by meson}
VMRP=${VMRP:?VMRP is set by meson}
VMRP_GUEST=${VMRP_GUEST:?VMRP_GUEST is set by meson}
TESTVM="$SRCDIR/vm-images/testvm.sh"
export VMRP_URI=${VMRP_URI:-qemu:///system}
VMRP_IT_PREFIX=${VMRP_IT_PREFIX:-vmrpit-}

if [ "$(id -u)" != 0 ]; then
  echo "1..0 # SKIP integration tests need root (run tests/run.sh)"
  exit 77
fi
if ! virsh -q -c "$VMRP_URI" version >/dev/null 2>&1; then
  echo "Bail out! libvirtd is not running: run vm-images/prepare-host.sh"
  exit 1
fi

TEST_NAME=$(basename "$0" .sh)
TEST_NAME=${TEST_NAME#test-}
TEST_ID="$VMRP_IT_PREFIX$TEST_NAME-$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')"
WORK=$(mktemp -d "/var/tmp/$TEST_ID.XXXXXX")
chmod 711 "$WORK"    # QEMU reaches the state folder below it
export VMRP_REPO="$WORK/repo"
export VMRP_STATE_DIR="$WORK/state"
TAP_N=0
TAP_FAILED=0

# A test with more to undo defines test_cleanup; it runs first.
cleanup() {
  local rc=$?
  declare -F test_cleanup >/dev/null && test_cleanup
  "$TESTVM" cleanup "$TEST_ID" >/dev/null 2>&1 || echo "# cleanup of $TEST_ID domains failed"
  umount "$WORK"/mnt-* 2>/dev/null
  rm -rf "$WORK"
  echo "1..$TAP_N"
  [ "$TAP_FAILED" = 0 ] && [ "$rc" = 0 ] && exit 0
  exit 1
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ok COND-DESCRIPTION: records the result of the last command.
check() {
  local rc=$? what=$1
  TAP_N=$((TAP_N + 1))
  if [ "$rc" = 0 ]; then
    echo "ok $TAP_N - $what"
  else
    echo "not ok $TAP_N - $what"
    TAP_FAILED=$((TAP_FAILED + 1))
  fi
}

# Stops the test at once: something it builds on failed.
bail() {
  echo "Bail out! $*"
  TAP_FAILED=$((TAP_FAILED + 1))
  exit 1
}

# Prints a command's stderr and stdout as TAP comments.
comment() {
  sed 's/^/# /' "$@"
}

vmrp() {
  "$VMRP" "$@"
}

guest() {
  "$VMRP_GUEST" -c "$VMRP_URI" "$@"
}

# new_vm SUFFIX [testvm create options]: defines and starts a test VM,
# waits for its agent when it has one, and prints its name.
new_vm() {
  local name="$TEST_ID-$1"
  shift
  "$TESTVM" create "$name" --start "$@" >&2 || bail "cannot create VM $name"
  case " $* " in
    *" --no-agent "*|*" --no-channel "*) ;;
    *) guest "$name" wait 120 >&2 || bail "the agent of $name did not answer" ;;
  esac
  echo "$name"
}

# expect_error OUTFILE CMD...: CMD must fail with exactly one error line on
# stderr, its last (progress lines may come before it).
expect_error() {
  local out=$1
  shift
  if "$@" >"$out.stdout" 2>"$out"; then
    echo "# unexpectedly succeeded: $*"
    return 1
  fi
  comment "$out"
  [ "$(grep -c '^error: ' "$out")" = 1 ] ||
    { echo "# expected one error line, got $(grep -c '^error: ' "$out")"; return 1; }
  [ "$(grep -vc -E '^error: |^[a-z0-9]+: [0-9]+% \(' "$out")" = 0 ] ||
    { echo "# more than the error on stderr"; return 1; }
  tail -n 1 "$out" | grep -q '^error: ' 
}

# wait_reached PHASE: waits (30 s at most) until a fault point fired PHASE;
# run vmrp with VMRP_FAULT_REACHED="$WORK/fault-reached" (see vmrp-fault.h).
wait_reached() {
  local i
  for i in $(seq 300); do
    grep -qx "$1" "$WORK/fault-reached" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# A fingerprint of what the test could change: the repository's files, the
# defined domains and every checkpoint of the test's domains.
state_snapshot() {
  local d
  {
    [ -d "$VMRP_REPO" ] && (cd "$VMRP_REPO" && find . -printf '%p %s %m\n' | sort)
    virsh -q -c "$VMRP_URI" list --all --name | grep "^$TEST_ID" | sort
    for d in $(virsh -q -c "$VMRP_URI" list --all --name | grep "^$TEST_ID"); do
      echo "$d:"; virsh -q -c "$VMRP_URI" checkpoint-list "$d" --name 2>/dev/null
    done
  } 2>/dev/null
}

point_field() {  # point_field POINT FIELD (a jq path)
  vmrp --json rp-info "$1" | jq -r "$2"
}

# ---- exact points: the disks as they were at a point, as the reference ----

# disk_targets VM: the targets of the VM's disks
disk_targets() {
  virsh -q -c "$VMRP_URI" domblklist "$1" | awk '$2 != "-" {print $1}'
}

# exact_point VM TAG [rp-create options]: pauses VM for an instant (QEMU
# flushes its caches), copies its disks as $WORK/ref/TAG-<target>.raw, takes
# a crash-consistent point, resumes; the point's id goes to $WORK/ref/TAG.id
# and rp-create's output to $WORK/ref/TAG.out.
exact_point() {
  local vm=$1 tag=$2 t path rc
  shift 2
  mkdir -p "$WORK/ref"
  virsh -q -c "$VMRP_URI" suspend "$vm" >/dev/null || return 1
  for t in $(disk_targets "$vm"); do
    path=$(virsh -q -c "$VMRP_URI" domblklist "$vm" | awk -v t="$t" '$1 == t {print $2}')
    qemu-img convert -U -O raw "$path" "$WORK/ref/$tag-$t.raw" || return 1
  done
  vmrp rp-create "$vm" --consistency crash "$@" >"$WORK/ref/$tag.out" 2>&1
  rc=$?
  virsh -q -c "$VMRP_URI" resume "$vm" >/dev/null
  comment "$WORK/ref/$tag.out"
  [ $rc = 0 ] || return 1
  vmrp --json rp-list "$vm" | jq -r '.[-1].id' >"$WORK/ref/$tag.id"
}

# point_of TAG: the id of the point exact_point took as TAG
point_of() {
  cat "$WORK/ref/$1.id"
}

# restores_exact TAG: the point restored beside its VM equals the reference
restores_exact() {
  local tag=$1 point out t
  point=$(point_of "$tag")
  mkdir -p "$WORK/restore"
  out=$(vmrp --json rp-restore "$point" --name "$TEST_ID-r$RANDOM" --disk-dir "$WORK/restore") ||
    return 1
  for t in $(jq -r '.disks[]' <<<"$out" | cut -d= -f1); do
    qemu-img compare -q "$WORK/ref/$tag-$t.raw" \
      "$(jq -r ".disks[] | select(startswith(\"$t=\"))" <<<"$out" | cut -d= -f2-)" ||
      { echo "# point $tag ($point) disk $t differs"; return 1; }
  done
  virsh -q -c "$VMRP_URI" undefine "$(jq -r .name <<<"$out")" >/dev/null
  rm -f "$WORK"/restore/*
}

# make_test_pki DIR: a throwaway CA (DIR/ca) with a server certificate for
# 127.0.0.1 (DIR/server: ca-cert.pem, server-cert.pem, server-key.pem) and a
# client certificate (DIR/client: ca-cert.pem, client-cert.pem,
# client-key.pem); DIR/wrong holds a client certificate from another CA
# (DIR/other), DIR/empty nothing.  Needs certtool (gnutls-bin).
make_test_pki() {
  local pki=$1 ca
  mkdir -p "$pki/ca" "$pki/other" "$pki/server" "$pki/client" "$pki/wrong" "$pki/empty"
  for ca in ca other; do
    printf '%s\n' "cn = vmrp test $ca" ca cert_signing_key "expiration_days = 2" \
      >"$pki/$ca/ca.info"
    certtool --generate-privkey --outfile "$pki/$ca/ca-key.pem" 2>/dev/null &&
      certtool --generate-self-signed --load-privkey "$pki/$ca/ca-key.pem" \
        --template "$pki/$ca/ca.info" --outfile "$pki/$ca/ca-cert.pem" 2>/dev/null ||
      return 1
  done
  _pki_cert "$pki/server" server "$pki/ca" "cn = 127.0.0.1" "ip_address = 127.0.0.1" \
    "dns_name = localhost" tls_www_server &&
    _pki_cert "$pki/client" client "$pki/ca" "cn = vmrp" tls_www_client &&
    _pki_cert "$pki/wrong" client "$pki/other" "cn = vmrp" tls_www_client || return 1
  cp "$pki/ca/ca-cert.pem" "$pki/server/" && cp "$pki/ca/ca-cert.pem" "$pki/client/" &&
    cp "$pki/ca/ca-cert.pem" "$pki/wrong/"
}
_pki_cert() {  # _pki_cert DIR NAME CA-DIR TEMPLATE-LINES...
  local dir=$1 name=$2 ca=$3
  shift 3
  printf '%s\n' "$@" encryption_key signing_key "expiration_days = 2" >"$dir/$name.info"
  certtool --generate-privkey --outfile "$dir/$name-key.pem" 2>/dev/null &&
    certtool --generate-certificate --load-privkey "$dir/$name-key.pem" \
      --load-ca-certificate "$ca/ca-cert.pem" --load-ca-privkey "$ca/ca-key.pem" \
      --template "$dir/$name.info" --outfile "$dir/$name-cert.pem" 2>/dev/null
}
