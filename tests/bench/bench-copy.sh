#!/bin/bash
# bench-copy.sh: rp-copy and collection-sync against rsync --sparse and cp --sparse=always
# (issue 10)
#
# Usage: tests/bench/bench-copy.sh [--disk-size SIZE] [--data MIB] [--increment MIB]
#                                  [--increments N] [--rounds N] [--ssh] [BUILD_DIR]
#                                  (as root, by hand; not run by CI)
#
# One TCG VM with a qcow2 data disk vdb (--disk-size, default 2G) holding --data MiB of
# random data (default 1024), prepared on the host before the first boot. vmrp takes a
# chain of its vdb into a first repository: a full point and --increments increments
# (default 2), the guest rewriting --increment MiB (default 100) before each; then one
# more increment, the "new" one. Each round (--rounds, default 3), cold caches (the page
# cache dropped, then each tool run once with --version: its program and libraries
# warm, the data cold) before every timed step, the tools in turn taking the first place:
#   - full chain copy: `vmrp rp-copy LAST --to DIR` (each file fsync'd, the point checked
#     against its digests at DIR before its rename), `rsync -a --sparse` of the same
#     point folders and `cp -r --sparse=always` of them, both followed by `sync -f DIR`;
#   - incremental: `vmrp collection-sync DOMAIN --to DIR` (only the new point crosses)
#     against `rsync -a --sparse` of all the point folders to its copy (it sends only the
#     new files) + `sync -f`, and `cp -r --sparse=always` of the new folder + `sync -f`.
# --ssh adds the same over ssh to a loopback sshd that the script starts itself (a
# throwaway host key and user key, its own known_hosts; nothing in ~/.ssh or /etc/ssh is
# used): `vmrp rp-copy/collection-sync --to ssh://root@127.0.0.1:PORT/DIR` against `rsync
# -a --sparse -e ssh` + `ssh ... sync -f DIR`. When this vmrp has no ssh:// destination
# the ssh column is skipped, and the script says so.
#
# It prints medians over the rounds and ratios (medians of the per-round ratios) and
# whether the issue's targets are met (full copy within 1.2x of the faster of rsync and
# cp; the sync of one increment costing in proportion to its size: its time per MiB
# within 1.5x of the full copy's); figures only, its exit status is 0 whatever they say.
# Environment: BENCH_KEEP=1 keeps the work folder (the VM is always removed).
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -euo pipefail

INC_MIB=100
INCREMENTS=2
SSH=0
ARGS=()
export BENCH_DISK_SIZE=${BENCH_DISK_SIZE:-2G} BENCH_DATA_MIB=${BENCH_DATA_MIB:-1024}
while [ $# -gt 0 ]; do
    case "$1" in
        --disk-size) export BENCH_DISK_SIZE=${2:?--disk-size needs a size}; shift ;;
        --data) export BENCH_DATA_MIB=${2:?--data needs MiB}; shift ;;
        --increment) INC_MIB=${2:?--increment needs MiB}; shift ;;
        --increments) INCREMENTS=${2:?--increments needs a number}; shift ;;
        --rounds) export BENCH_ROUNDS=${2:?--rounds needs a number}; shift ;;
        --ssh) SSH=1 ;;
        -h | --help) sed -n '2,/^# SPDX/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "bench-copy: unknown option $1" >&2; exit 2 ;;
        *) ARGS+=("$1") ;;
    esac
    shift
done
if ! [[ $INC_MIB =~ ^[0-9]+$ ]] || [ "$INC_MIB" -lt 8 ]; then
    echo "bench-copy: --increment must be at least 8 (MiB)" >&2; exit 2
fi
[[ $INCREMENTS =~ ^[0-9]+$ ]] ||
    { echo "bench-copy: --increments must be a number" >&2; exit 2; }
export BENCH_REWRITE_MIB=$INC_MIB
set -- "${ARGS[@]}"

BENCH=bench-copy
# shellcheck source=tests/bench/bench-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
VM=${PREFIX}vm
SSHD_PID=

# shellcheck disable=SC2317 # run by bench_cleanup
stop_sshd() {
    [ -z "$SSHD_PID" ] || { kill "$SSHD_PID" 2>/dev/null; wait "$SSHD_PID" 2>/dev/null; }
}
BENCH_CLEANUP=stop_sshd
# after the page cache is dropped, each tool's program and libraries are read
# again before the timed step (vmrp links libvirt, libnbd, libssh, libxml2...: 0.1
# to 0.15 s to load them from a cold disk, where cp's are a few KiB): the data is
# read cold, the programs warm, as on a host that runs its copies daily
# shellcheck disable=SC2317 # run by run_timed
warm_programs() {
    "$VMRP" --version && cp --version && rsync --version
    [ -z "${SSH_CMD:-}" ] || ssh -V
} >/dev/null 2>&1
BENCH_WARM=warm_programs
# no memory figures here: nothing polls beside the copies (bench-lib.sh)
BENCH_POLL=0
if [ "$SSH" = 1 ]; then
    bench_setup "$@" -- rsync ssh ssh-keygen /usr/sbin/sshd
else
    bench_setup "$@" -- rsync
fi

mkdir -p "$WORK/state"
chown libvirt-qemu "$WORK/state"
chmod 0700 "$WORK/state"
export VMRP_STATE_DIR=$WORK/state
SRC_REPO=$WORK/repo
vmrp_() {
    VMRP_REPO=$SRC_REPO "$VMRP" -c "$URI" "$@"
}

# --- the loopback sshd -----------------------------------------------------------------
# shellcheck source=tests/tools/loopback-sshd.sh
. "$(dirname "${BASH_SOURCE[0]}")/../tools/loopback-sshd.sh"
ssh_setup() {
    local sshd=$WORK/sshd
    loopback_sshd "$sshd" || die "cannot start a loopback sshd"
    PORT=$SSHD_PORT
    SSH_CMD="ssh -p $PORT -i $sshd/user_key -o IdentitiesOnly=yes -o BatchMode=yes"
    SSH_CMD+=" -o UserKnownHostsFile=$sshd/known_hosts -o StrictHostKeyChecking=yes"
}

# --- the chain -------------------------------------------------------------------------
prepare_image
log "creating $VM"
create_vm "$VM"
"$GUEST" -c "$URI" "$VM" wait 120 >/dev/null
log "taking a full point and $INCREMENTS increments of $INC_MIB MiB, then the new one"
vmrp_ rp-create "$VM" --consistency crash --exclude-disk vda --full >/dev/null 2>&1
for ((i = 1; i <= INCREMENTS + 1; i++)); do
    rewrite "$VM" "$INC_MIB" "$i" >/dev/null
    vmrp_ rp-create "$VM" --consistency crash --exclude-disk vda >/dev/null 2>&1
done
mapfile -t IDS < <(vmrp_ --json rp-list "$VM" | jq -r '.[].id')
[ "${#IDS[@]}" = $((INCREMENTS + 2)) ] || die "expected $((INCREMENTS + 2)) points"
NEW=${IDS[-1]}
LAST=${IDS[-2]}
PD=$(echo "$SRC_REPO"/collections/*/points)
CHAIN_DIRS=()
for id in "${IDS[@]:0:$((INCREMENTS + 1))}"; do
    CHAIN_DIRS+=("$PD/$id")
done
CHAIN_BYTES=$(du_bytes "${CHAIN_DIRS[@]}")
NEW_BYTES=$(du_bytes "$PD/$NEW")
"$TESTVM" cleanup "$PREFIX" >/dev/null 2>&1    # the guest's CPU is not needed any more
log "chain: $(mib "$CHAIN_BYTES" 1048576) MiB in ${#CHAIN_DIRS[@]} points," \
    "new point $(mib "$NEW_BYTES" 1048576) MiB"

SSH_OK=0
if [ "$SSH" = 1 ]; then
    ssh_setup
    # does this vmrp write to ssh:// at all? (its test copy is removed again)
    if vmrp_ rp-copy "${IDS[0]}" --to "ssh://root@127.0.0.1:$PORT$WORK/s-probe" \
        >"$WORK/probe.out" 2>&1; then
        SSH_OK=1
        rm -rf "$WORK/s-probe"
    else
        log "the ssh column is skipped: this vmrp cannot copy to ssh:// ($(tail -n 1 \
            "$WORK/probe.out"))"
    fi
fi

# --- the rounds ------------------------------------------------------------------------
# The local steps of a round, as functions of the round: the fulls, then the new point;
# each round starts with another tool (the first step follows the removal of the last
# round's copies: 3.6 GB of files on the same file system).
# shellcheck disable=SC2016 # the scripts below are sh -c's, with their own arguments
full_vmrp() {
    run_timed "vfull,$1" env VMRP_REPO="$SRC_REPO" "$VMRP" --json rp-copy "$LAST" \
        --to "$WORK/d-vmrp"
}
full_rsync() {
    run_timed "rfull,$1" sh -c 'd=$1; shift; mkdir -p "$d" &&
        rsync -a --sparse "$@" "$d"/ && sync -f "$d"' sh "$WORK/d-rsync" "${CHAIN_DIRS[@]}"
}
full_cp() {
    run_timed "cfull,$1" sh -c 'd=$1; shift; mkdir -p "$d" &&
        cp -r --sparse=always "$@" "$d"/ && sync -f "$d"' sh "$WORK/d-cp" "${CHAIN_DIRS[@]}"
}
inc_vmrp() {
    run_timed "vinc,$1" env VMRP_REPO="$SRC_REPO" "$VMRP" --json collection-sync "$VM" \
        --to "$WORK/d-vmrp"
    [ "$(jq -c .copied "$WORK/out-vinc,$1")" = "[\"$NEW\"]" ] ||
        die "collection-sync copied more than the new point: $(cat "$WORK/out-vinc,$1")"
}
inc_rsync() {
    run_timed "rinc,$1" sh -c 'd=$1; shift; rsync -a --sparse "$@" "$d"/ && sync -f "$d"' \
        sh "$WORK/d-rsync" "${CHAIN_DIRS[@]}" "$PD/$NEW"
}
inc_cp() {
    run_timed "cinc,$1" sh -c 'cp -r --sparse=always "$1" "$2"/ && sync -f "$2"' \
        sh "$PD/$NEW" "$WORK/d-cp"
}
TOOLS=(vmrp rsync cp)
for ((r = 1; r <= ROUNDS; r++)); do
    rm -rf "$WORK"/d-* "$WORK"/s-*
    for kind in full inc; do
        for ((t = 0; t < 3; t++)); do
            "${kind}_${TOOLS[(r - 1 + t) % 3]}" "$r"
        done
    done
    # the copies are the same bytes
    for d in "$(echo "$WORK"/d-vmrp/collections/*/points)" "$WORK/d-rsync" "$WORK/d-cp"; do
        (cd "$d" && find . -name '*.qcow2' -exec md5sum {} + | sort) \
            >"$WORK/sum-$(basename "${d%/collections/*}")"
    done
    if ! cmp -s "$WORK/sum-d-vmrp" "$WORK/sum-d-rsync" ||
        ! cmp -s "$WORK/sum-d-vmrp" "$WORK/sum-d-cp"; then
        die "the copies differ"
    fi
    line="round $r: full vmrp ${T[vfull,$r]}, rsync ${T[rfull,$r]}, cp ${T[cfull,$r]} ms;"
    line+=" new point vmrp ${T[vinc,$r]}, rsync ${T[rinc,$r]}, cp ${T[cinc,$r]} ms"
    if [ "$SSH_OK" = 1 ]; then
        url="ssh://root@127.0.0.1:$PORT$WORK/s-vmrp"
        run_timed "vsfull,$r" env VMRP_REPO="$SRC_REPO" "$VMRP" --json rp-copy "$LAST" \
            --to "$url"
        run_timed "rsfull,$r" sh -c 'd=$1; s=$2; shift 2; $s root@127.0.0.1 mkdir -p "$d" &&
            rsync -a --sparse -e "$s" "$@" root@127.0.0.1:"$d"/ &&
            $s root@127.0.0.1 sync -f "$d"' sh "$WORK/s-rsync" "$SSH_CMD" "${CHAIN_DIRS[@]}"
        run_timed "vsinc,$r" env VMRP_REPO="$SRC_REPO" "$VMRP" --json collection-sync "$VM" \
            --to "$url"
        run_timed "rsinc,$r" sh -c 'd=$1; s=$2; shift 2;
            rsync -a --sparse -e "$s" "$@" root@127.0.0.1:"$d"/ &&
            $s root@127.0.0.1 sync -f "$d"' sh "$WORK/s-rsync" "$SSH_CMD" \
            "${CHAIN_DIRS[@]}" "$PD/$NEW"
        line+="; over ssh: full vmrp ${T[vsfull,$r]}, rsync ${T[rsfull,$r]} ms, new point"
        line+=" vmrp ${T[vsinc,$r]}, rsync ${T[rsinc,$r]} ms"
    fi
    log "$line (load $(cut -d' ' -f1 /proc/loadavg))"
    # shellcheck disable=SC2034 # read through namerefs
    {
        T[best,$r]=$((T[rfull,$r] < T[cfull,$r] ? T[rfull,$r] : T[cfull,$r]))
        T[bestinc,$r]=$((T[rinc,$r] < T[cinc,$r] ? T[rinc,$r] : T[cinc,$r]))
    }
done

# --- the table -------------------------------------------------------------------------
secs() { mib "$(median T "$1")" 1000; }
rate() { awk -v b="$1" -v t="$(median T "$2")" 'BEGIN { printf "%.0f", b / 1048576 / (t / 1000) }'; }
echo
echo "vmrp bench-copy: a chain of $((INCREMENTS + 1)) points of a $DISK_SIZE disk with $DATA_MIB" \
    "MiB of random data"
echo "(full + $INCREMENTS increments of $INC_MIB MiB: $(mib "$CHAIN_BYTES" 1048576) MiB)," \
    "then one new increment ($(mib "$NEW_BYTES" 1048576) MiB); $(nproc) CPUs, load average" \
    "$(cut -d' ' -f1-3 /proc/loadavg); medians of $ROUNDS rounds, cold data caches before each step"
echo
printf '%-40s %8s %8s %10s\n' step "time s" "MiB/s" "/fastest"
printf '%-40s %8s %8s %10s\n' "full chain: vmrp rp-copy" "$(secs vfull)" \
    "$(rate "$CHAIN_BYTES" vfull)" "$(ratios vfull best)"
printf '%-40s %8s %8s %10s\n' "full chain: rsync -a --sparse + sync" "$(secs rfull)" \
    "$(rate "$CHAIN_BYTES" rfull)" "$(ratios rfull best)"
printf '%-40s %8s %8s %10s\n' "full chain: cp --sparse=always + sync" "$(secs cfull)" \
    "$(rate "$CHAIN_BYTES" cfull)" "$(ratios cfull best)"
printf '%-40s %8s %8s %10s\n' "new point: vmrp collection-sync" "$(secs vinc)" \
    "$(rate "$NEW_BYTES" vinc)" "$(ratios vinc bestinc)"
printf '%-40s %8s %8s %10s\n' "new point: rsync -a --sparse + sync" "$(secs rinc)" \
    "$(rate "$NEW_BYTES" rinc)" "$(ratios rinc bestinc)"
printf '%-40s %8s %8s %10s\n' "new point: cp --sparse=always + sync" "$(secs cinc)" \
    "$(rate "$NEW_BYTES" cinc)" "$(ratios cinc bestinc)"
if [ "$SSH_OK" = 1 ]; then
    printf '%-40s %8s %8s %10s\n' "ssh full chain: vmrp rp-copy" "$(secs vsfull)" \
        "$(rate "$CHAIN_BYTES" vsfull)" "$(ratios vsfull rsfull)"
    printf '%-40s %8s %8s %10s\n' "ssh full chain: rsync -e ssh + sync" "$(secs rsfull)" \
        "$(rate "$CHAIN_BYTES" rsfull)" "1.00"
    printf '%-40s %8s %8s %10s\n' "ssh new point: vmrp collection-sync" "$(secs vsinc)" \
        "$(rate "$NEW_BYTES" vsinc)" "$(ratios vsinc rsinc)"
    printf '%-40s %8s %8s %10s\n' "ssh new point: rsync -e ssh + sync" "$(secs rsinc)" \
        "$(rate "$NEW_BYTES" rsinc)" "1.00"
elif [ "$SSH" = 1 ]; then
    echo "(ssh rows skipped: this vmrp cannot copy to ssh://)"
else
    echo "(ssh rows: run with --ssh)"
fi
echo
echo "vmrp copies only allocated data, fsyncs each file and checks each point against its"
echo "digests at the destination (it reads the copy back) before renaming it into place;"
echo "rsync and cp are followed by sync -f of the destination file system."
echo "/fastest: median of the per-round ratios to the faster of rsync and cp (over ssh: to rsync)."
echo

# per MiB, the sync of the new point against the full copy (1.00: in proportion to its size)
prop=$(for ((r = 1; r <= ROUNDS; r++)); do
    awk -v a="${T[vinc,$r]}" -v b="${T[vfull,$r]}" -v x="$NEW_BYTES" -v y="$CHAIN_BYTES" \
        'BEGIN { printf "%.2f\n", (a / x) / (b / y) }'
done | sort -n | sed -n "$(((ROUNDS + 1) / 2))p")
target "full chain copy within 1.2x of the faster of rsync and cp ($(ratios vfull best)x)" \
    "$(ratios vfull best) <= 1.2"
target "sync of one increment in proportion to its size (per MiB ${prop}x the full copy's)" \
    "$prop <= 1.5"
if [ "$SSH_OK" = 1 ]; then
    target "over ssh, full chain copy within 1.2x of rsync -e ssh ($(ratios vsfull rsfull)x)" \
        "$(ratios vsfull rsfull) <= 1.2"
fi
exit 0
