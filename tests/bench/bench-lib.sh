# shellcheck shell=bash disable=SC2034 # the arrays and BENCH_OK are the callers'
# bench-lib.sh: what the benchmarks share (sourced by bench-*.sh, never run)
#
# The sourcing script sets BENCH (its name, for messages) and may set BENCH_CLEANUP
# (a function run first at exit); then it calls bench_setup "$@" and finds here:
#   SRC BUILD VMRP GUEST TESTVM URI TESTDIR ROUNDS DATA_MIB REWRITE_MIB DISK_SIZE
#   DISK_MIB PREFIX WORK, the arrays T and CPU (ms), HWM, RSS (KiB) and BYTES, indexed
#   "STEP,ROUND", and the helpers below.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

die() {
    echo "$BENCH: $*" >&2
    exit 1
}

log() {
    echo "$BENCH: $*" >&2
}

bench_cleanup() {
    local rc=$?
    set +e
    [ -z "${BENCH_CLEANUP:-}" ] || "$BENCH_CLEANUP"
    "$TESTVM" cleanup "$PREFIX" >/dev/null 2>&1
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        if [ "${BENCH_KEEP:-0}" = 1 ]; then
            log "work folder kept: $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
    exit "$rc"
}

# bench_setup [BUILD_DIR] -- PROGRAM...: checks the build, the programs and the
# environment, makes the work folder and arms the clean-up.
bench_setup() {
    local prog build=$SRC/build
    if [ $# -gt 0 ] && [ "$1" != -- ]; then
        build=$1
        shift
    fi
    [ "${1:-}" != -- ] || shift
    BUILD=$(cd "$build" && pwd)
    VMRP=$BUILD/plugin/vmrp
    GUEST=$BUILD/tests/tools/vmrp-guest
    [ "$(id -u)" -eq 0 ] || die "must run as root"
    for prog in "$VMRP" "$GUEST"; do
        [ -x "$prog" ] || die "$prog missing: build first (meson setup BUILD && ninja -C BUILD)"
    done
    for prog in qemu-img jq virsh numfmt /usr/bin/time "$@"; do
        command -v "$prog" >/dev/null || die "$prog missing: run vm-images/prepare-host.sh"
    done
    [[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive number"
    DISK_MIB=$(($(numfmt --from=iec "$DISK_SIZE") / 1048576))
    if [ "$DATA_MIB" -ge "$DISK_MIB" ] || [ "$REWRITE_MIB" -lt 8 ]; then
        die "BENCH_DATA_MIB must be below the disk size, BENCH_REWRITE_MIB at least 8"
    fi
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    # QEMU (libvirt-qemu) reaches the sockets, scratch files and disks made here:
    # every parent is searchable
    WORK=$(mktemp -d /var/tmp/vmrpbench.XXXXXX)
    chmod 0711 "$WORK"
    log "$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TESTVM=$SRC/vm-images/testvm.sh
URI=${VMRP_URI:-qemu:///system}
TESTDIR=${VMRP_TESTVM_DIR:-/var/lib/libvirt/images/vmrp-test}
ROUNDS=${BENCH_ROUNDS:-3}
DATA_MIB=${BENCH_DATA_MIB:-1536}
REWRITE_MIB=${BENCH_REWRITE_MIB:-200}
DISK_SIZE=${BENCH_DISK_SIZE:-4G}
PREFIX=vmrpbench-$$-
WORK=
# per step and round ("full,2"); read through namerefs in median and maximum
# shellcheck disable=SC2034
declare -A T=() CPU=() HWM=() RSS=() TREE=() BYTES=()

now_ms() {
    echo $(($(date +%s%N) / 1000000))
}

# Allocated bytes under a path.
du_bytes() {
    du -s --block-size=1 "$@" | awk '{ s += $1 } END { printf "%.0f\n", s }'
}

# tree_rss PID: the RSS in KiB of PID and all its descendants, summed
tree_rss() {
    ps -e -o pid=,ppid=,rss= | awk -v root="$1" '
        { parent[$1] = $2; rss[$1] = $3 }
        END {
            for (p in rss) {
                for (q = p; q != "" && q != 0 && q != 1; q = parent[q])
                    if (q == root) { sum += rss[p]; break }
            }
            print sum + 0
        }'
}

# run_timed KEY CMD...: runs CMD under GNU time with cold caches, its stdout in
# $WORK/out-KEY, its stderr in $WORK/err-KEY. T[KEY] is the wall time in ms (GNU
# time's, from its fork of CMD to its exit, in hundredths of a second: the polling
# below ends up to 50 ms and more late), CPU[KEY] the CPU time in ms (GNU time's user
# + system, of CMD and the children it reaped), RSS[KEY] GNU time's maximum RSS in KiB
# (CMD and the children it reaped), HWM[KEY] the peak RSS of CMD's process alone
# (VmHWM, polled from /proc), TREE[KEY] the peak of the RSS of CMD and every child it
# runs at the same time, summed (polled every 50 ms). With BENCH_POLL=0 nothing is
# polled (HWM and TREE are 0): ps and awk every 50 ms take CPU from what is timed.
run_timed() {
    local key=$1 pid child hwm=0 tree=0 v rc=0
    shift
    sync
    echo 3 >/proc/sys/vm/drop_caches
    # the programs read again, not the data (bench-copy.sh)
    [ -z "${BENCH_WARM:-}" ] || "$BENCH_WARM"
    /usr/bin/time -f 'elapsed %e\nmaxrss %M\ncpu %U %S' -o "$WORK/time-$key" "$@" \
        >"$WORK/out-$key" 2>"$WORK/err-$key" &
    pid=$!
    while [ "${BENCH_POLL:-1}" != 0 ] && kill -0 "$pid" 2>/dev/null; do
        child=$(pgrep -P "$pid" | head -n 1 || true)
        if [ -n "$child" ]; then
            v=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$child/status" \
                2>/dev/null || true)
            if [ -n "$v" ] && [ "$v" -gt "$hwm" ]; then
                hwm=$v
            fi
            v=$(tree_rss "$child")
            [ "$v" -le "$tree" ] || tree=$v
        fi
        sleep 0.05
    done
    wait "$pid" || rc=$?
    if [ "$rc" -ne 0 ]; then
        tail -n 20 "$WORK/out-$key" "$WORK/err-$key" >&2
        die "$key failed (exit $rc)"
    fi
    T[$key]=$(awk '$1 == "elapsed" { printf "%.0f\n", $2 * 1000 }' "$WORK/time-$key")
    RSS[$key]=$(awk '$1 == "maxrss" { print $2 }' "$WORK/time-$key")
    CPU[$key]=$(awk '$1 == "cpu" { printf "%.0f\n", ($2 + $3) * 1000 }' "$WORK/time-$key")
    HWM[$key]=$hwm
    TREE[$key]=$tree
}

# --- the VMs -------------------------------------------------------------------------
# DATA_MIB of random data in 6 regions spread over the disk; the rest never written.
prepare_image() {
    local raw=$WORK/data.raw nreg=6 i
    log "preparing a $DISK_SIZE image holding $DATA_MIB MiB of random data"
    truncate -s "$DISK_SIZE" "$raw"
    for ((i = 0; i < nreg; i++)); do
        dd if=/dev/urandom of="$raw" bs=1M seek=$((i * DISK_MIB / nreg)) \
            count=$((DATA_MIB / nreg)) conv=notrunc status=none
    done
    qemu-img convert -q -f raw -O qcow2 -o compat=1.1 "$raw" "$WORK/data.qcow2"
    rm -f "$raw"
}

# create_vm NAME [testvm.sh options]: a VM whose vdb is a copy of the prepared image,
# started.
create_vm() {
    local name=$1
    shift
    "$TESTVM" create "$name" --disks 2 --disk-size "$DISK_SIZE" "$@" >/dev/null
    cp --sparse=always "$WORK/data.qcow2" "$TESTDIR/$name/vdb.qcow2"
    chmod 0644 "$TESTDIR/$name/vdb.qcow2"
    "$TESTVM" start "$name"
}

# rewrite NAME MIB ROUND: once its agent answers, the guest overwrites MIB (rounded down
# to a multiple of 8) of vdb with random data, in 8 pieces spread over the 6 regions that
# hold data, at offsets that depend on the round only: the pieces of a smaller rewrite
# lie inside those of a larger one, and every full point copies the same DATA_MIB.
rewrite() {
    local name=$1 mib=$2 round=$3 script="" i seek
    "$GUEST" -c "$URI" "$name" wait 300 >/dev/null
    for ((i = 0; i < 8; i++)); do
        seek=$(((i % 6) * DISK_MIB / 6 + (i / 6) * DATA_MIB / 12 + round * 3))
        script+="dd if=/dev/urandom of=/dev/vdb bs=1M count=$((mib / 8)) seek=$seek"
        script+=" conv=notrunc,fsync 2>/dev/null || exit 1; "
    done
    "$GUEST" -c "$URI" "$name" exec --timeout 900 -- /bin/sh -c "${script}sync"
}

# --- the figures ---------------------------------------------------------------------
# median ARRAY STEP: the median over the rounds (the lower one of an even count).
median() {
    local -n arr=$1
    local r
    for ((r = 1; r <= ROUNDS; r++)); do
        echo "${arr[$2,$r]}"
    done | sort -n | sed -n "$(((ROUNDS + 1) / 2))p"
}

# maximum ARRAY STEP: the maximum over the rounds, and over the MEM_ROUNDS more whose
# times are not counted.
maximum() {
    local -n arr=$1
    local r
    for ((r = 1; r <= ROUNDS + ${MEM_ROUNDS:-0}; r++)); do
        echo "${arr[$2,$r]}"
    done | sort -n | tail -n 1
}

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
}

mib() {
    awk -v k="$1" -v d="$2" 'BEGIN { printf "%.1f", k / d }'
}

# ratios A B: the median over the rounds of T[A,r] / T[B,r] (steps compared within a
# round ran minutes apart at most, under the same host load)
ratios() {
    local r
    for ((r = 1; r <= ROUNDS; r++)); do
        ratio "${T[$1,$r]}" "${T[$2,$r]}"
        echo
    done | sort -n | sed -n "$(((ROUNDS + 1) / 2))p"
}

# target WHAT CONDITION (awk): prints whether it is met; BENCH_OK=0 when not
BENCH_OK=1
target() {
    local what=$1 cond=$2
    if awk "BEGIN { exit !($cond) }"; then
        echo "target met:    $what"
    else
        echo "target missed: $what"
        BENCH_OK=0
    fi
}
