#!/bin/bash
# run-fuzzers.sh: runs each libFuzzer harness of tests/fuzz for a bounded time
#
# Usage: tests/fuzz/run-fuzzers.sh SECONDS [TARGET...]
#
# Builds (once) a clang build with -Dfuzzing=enabled and ASan/UBSan in
# $VMRP_FUZZ_BUILDDIR (default build-fuzz), then runs every harness (or the
# ones named) for SECONDS each, $VMRP_FUZZ_JOBS (default: the number of CPUs)
# at a time.  Each harness starts from its seed corpus and the regressions in
# the tree plus what earlier runs found (kept in BUILDDIR/fuzz-corpus/TARGET,
# never in the tree).  Prints one line per harness (PASS/FAIL with the
# executions, executions per second and coverage), the artifacts of a crash,
# and ends with "fuzzers: N passed, N failed"; the exit status is 0 only when
# none failed.  Exit 77 when clang's libFuzzer is not installed.
# Long run: tests/fuzz/run-fuzzers.sh 600
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -uo pipefail
cd "$(dirname "$0")/../.."
srcdir=$PWD/tests/fuzz

seconds=${1:?usage: run-fuzzers.sh SECONDS [TARGET...]}
shift
builddir=${VMRP_FUZZ_BUILDDIR:-build-fuzz}
jobs=${VMRP_FUZZ_JOBS:-$(nproc)}
targets=("$@")
if [ ${#targets[@]} = 0 ]; then
  targets=(point repo domxml qmp qmp-socket names policy sums qcow2)
fi

if ! command -v clang >/dev/null ||
   ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' |
     clang -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null; then
  echo "fuzzers: SKIP: clang with libFuzzer (-fsanitize=fuzzer) is not installed"
  exit 77
fi

if [ ! -f "$builddir/build.ninja" ]; then
  setuplog=$(mktemp)
  if ! CC=clang meson setup "$builddir" -Dfuzzing=enabled \
      -Db_sanitize=address,undefined -Db_lundef=false \
      -Dc_args='-fno-omit-frame-pointer -fno-sanitize-recover=all' >"$setuplog" 2>&1; then
    tail -n 20 "$setuplog"
    rm -f "$setuplog"
    echo "fuzzers: 0 passed, ${#targets[@]} failed"
    exit 1
  fi
  rm -f "$setuplog"
fi
exes=()
for t in "${targets[@]}"; do exes+=("tests/fuzz/fuzz-$t"); done
if ! ninja -C "$builddir" "${exes[@]}" >"$builddir/fuzz-build.log" 2>&1; then
  tail -n 30 "$builddir/fuzz-build.log"
  echo "fuzzers: 0 passed, ${#targets[@]} failed"
  exit 1
fi

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:print_summary=1:detect_stack_use_after_return=1
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1:print_summary=1

# run_one TARGET: runs one harness; writes its result line to BUILDDIR/fuzz-TARGET.result
run_one() {
  local t=$1
  local exe=$builddir/tests/fuzz/fuzz-$t
  local work=$builddir/fuzz-corpus/$t
  local artifacts=$builddir/fuzz-artifacts/$t/
  local log=$builddir/fuzz-$t.log
  local dict=() rc stats
  mkdir -p "$work" "$artifacts"
  [ -f "$srcdir/dict/$t.dict" ] && dict=(-dict="$srcdir/dict/$t.dict")
  "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$artifacts" "${dict[@]}" \
    "$work" "$srcdir/corpus/$t" "$srcdir/regressions/$t" >"$log" 2>&1
  rc=$?
  stats=$(awk '
    /stat::number_of_executed_units:/ { runs = $2 }
    /stat::average_exec_per_sec:/ { eps = $2 }
    /^#[0-9]+.*cov: / { for (i = 1; i <= NF; i++) { if ($i == "cov:") cov = $(i+1); if ($i == "ft:") ft = $(i+1); if ($i == "corp:") corp = $(i+1) } }
    END { printf "%s runs, %s exec/s, cov %s, ft %s, corpus %s", runs, eps, cov, ft, corp }' "$log")
  if [ "$rc" = 0 ]; then
    echo "PASS: fuzz-$t: ${seconds}s, $stats" >"$builddir/fuzz-$t.result"
  else
    {
      echo "FAIL: fuzz-$t (exit $rc): $stats; log $log"
      grep -E 'ERROR: |invariant failed|SUMMARY|Test unit written' "$log" | head -n 10 | sed 's/^/  /'
    } >"$builddir/fuzz-$t.result"
  fi
}

running=0
for t in "${targets[@]}"; do
  rm -f "$builddir/fuzz-$t.result"
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

passed=0
failed=0
for t in "${targets[@]}"; do
  if [ -f "$builddir/fuzz-$t.result" ]; then
    cat "$builddir/fuzz-$t.result"
  else
    echo "FAIL: fuzz-$t: no result"
  fi
  if grep -q '^PASS' "$builddir/fuzz-$t.result" 2>/dev/null; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
done
echo "fuzzers: $passed passed, $failed failed"
[ "$failed" = 0 ]
