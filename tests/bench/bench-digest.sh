#!/bin/bash
# bench-digest.sh: what the digests cost a full point (issue 10 item 1)
#
# Usage: tests/bench/bench-digest.sh BASE_BUILD_DIR [BUILD_DIR]   (as root, by hand)
#
# One TCG VM with bench-chain.sh's 4 GiB vdb holding 1.5 GiB of random data; each round
# takes a full point of vdb (application consistency, --full) with the vmrp of
# BASE_BUILD_DIR (built without digests) and with this build's, in alternating order,
# cold caches before each. Prints both medians and the median of the per-round ratios.
# Then the copy of one such full point to a second repository: rp-copy (which checks the
# copy against its digests before it renames it into place) against cp --sparse=always
# of the point's folder, with and without a sync after it, cold caches before each.
# Environment: as bench-chain.sh (BENCH_ROUNDS, BENCH_DATA_MIB, BENCH_DISK_SIZE).
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -euo pipefail

BENCH=bench-digest
# shellcheck source=tests/bench/bench-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
[ $# -ge 1 ] || die "usage: $0 BASE_BUILD_DIR [BUILD_DIR]"
BASE=$(cd "$1" && pwd)/plugin/vmrp
shift
[ -x "$BASE" ] || die "$BASE missing"
VM=${PREFIX}vm
bench_setup "$@"

mkdir -p "$WORK/state" "$WORK/repo-base" "$WORK/repo-new"
chown libvirt-qemu "$WORK/state"
chmod 0700 "$WORK/state"

declare -A CPU=()
point() {
    local key=$1 bin=$2 repo=$3
    run_timed "$key" env VMRP_REPO="$repo" VMRP_STATE_DIR="$WORK/state" \
        "$bin" -c "$URI" rp-create "$VM" --consistency application --exclude-disk vda --full
    # CPU time of vmrp and the children it reaped (its qemu-nbd writer), in ms
    CPU[$key]=$(awk -F': ' '/User time|System time/ { s += $2 } END { printf "%d", s * 1000 }' \
        "$WORK/time-$key")
    # deleted as vmrp deletes (its checkpoint too), untimed
    VMRP_REPO="$repo" "$bin" -c "$URI" rp-delete "$(awk '{ print $3; exit }' "$WORK/out-$key")"
}

prepare_image
create_vm "$VM"
"$GUEST" -c "$URI" "$VM" wait 120 >/dev/null
for ((r = 1; r <= ROUNDS; r++)); do
    if [ $((r % 2)) = 1 ]; then
        point "base,$r" "$BASE" "$WORK/repo-base"
        point "new,$r" "$VMRP" "$WORK/repo-new"
    else
        point "new,$r" "$VMRP" "$WORK/repo-new"
        point "base,$r" "$BASE" "$WORK/repo-base"
    fi
    log "round $r: without digests ${T[base,$r]} ms (CPU ${CPU[base,$r]} ms)," \
        "with ${T[new,$r]} ms (CPU ${CPU[new,$r]} ms), load $(cut -d' ' -f1 /proc/loadavg)"
done
echo "full point without digests: $(median T base) ms, CPU $(median CPU base) ms" \
     "(medians of $ROUNDS)"
echo "full point with digests:    $(median T new) ms, CPU $(median CPU new) ms"
echo "ratio (median of the per-round ratios): $(ratios new base)"

run_timed keep env VMRP_REPO="$WORK/repo-new" VMRP_STATE_DIR="$WORK/state" \
    "$VMRP" -c "$URI" rp-create "$VM" --consistency application --exclude-disk vda --full
id=$(awk '{ print $3; exit }' "$WORK/out-keep")
run_timed rpcopy env VMRP_REPO="$WORK/repo-new" "$VMRP" rp-copy "$id" --to "$WORK/copy-dest"
run_timed cp cp -r --sparse=always "$(echo "$WORK"/repo-new/collections/*/points/"$id")" \
    "$WORK/cp-dest"
# the same, made durable as rp-copy makes it (fsync before the rename)
run_timed cpsync sh -c 'cp -r --sparse=always "$1" "$2" && sync -f "$2"' cp \
    "$(echo "$WORK"/repo-new/collections/*/points/"$id")" "$WORK/cp-dest2"
echo "copy of a full point ($(du -sh "$WORK/cp-dest" | cut -f1)): rp-copy ${T[rpcopy]} ms" \
     "(fsync'd, checked at the destination), cp --sparse=always ${T[cp]} ms," \
     "cp --sparse=always + sync ${T[cpsync]} ms;" \
     "ratios $(ratio "${T[rpcopy]}" "${T[cp]}"), $(ratio "${T[rpcopy]}" "${T[cpsync]}")"
