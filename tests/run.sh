#!/bin/bash
# run.sh: the README's test command, and CI's (through .ci/run).  Prepares the
# host, builds, runs every gate and ends with the line "N passed, N failed,
# N skipped" counted over everything it ran; fails when anything failed.
#
#   1. build/       plain build (-Werror in CI; tests/build.sh): the unit suite
#                   under valgrind (meson test --setup valgrind);
#   2. build-asan/  ASan+UBSan build with the test-only fault points: the unit
#                   suite, then the integration suite (real libvirtd and QEMU
#                   guests) driving the sanitized vmrp;
#   3. build-fuzz/  clang build: each libFuzzer harness for VMRP_FUZZ_SECONDS
#                   (default 10) seconds (tests/fuzz/run-fuzzers.sh).
# Each test program, integration test and fuzz harness counts once.
#
# Usage: tests/run.sh              everything
#        tests/run.sh TEST...      only the named meson tests, in build-asan
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -euo pipefail
cd "$(dirname "$0")/.."
builddir=${VMRP_BUILDDIR:-build}
asandir=${VMRP_ASAN_BUILDDIR:-build-asan}
fuzz_seconds=${VMRP_FUZZ_SECONDS:-10}

# a build that fails is one failure: CI still gets its closing line
build_failed() {
  echo "0 passed, 1 failed, 0 skipped"
  exit 1
}

tests/build.sh || build_failed
if [ ! -f "$asandir/build.ninja" ]; then
  # no -Werror here: the plain build holds the code to it, and gcc's
  # sanitizer instrumentation brings its own false warnings
  meson setup "$asandir" -Db_sanitize=address,undefined -Db_lundef=false \
    -Dfault_points=true \
    -Dc_args='-fno-omit-frame-pointer -fno-sanitize-recover=all' >/dev/null || build_failed
fi
if ! ninja -C "$asandir" >"$asandir/build.log" 2>&1; then
  grep -E -B2 -A8 'error|FAILED' "$asandir/build.log" | head -n 60 >&2
  build_failed
fi
echo "built: $asandir/plugin/vmrp (ASan, UBSan, fault points)"

passed=0
failed=0
skipped=0
rc=0

# count LOG: adds the results of one meson test run (testlog*.json) to the totals
count() {
  local log=$1
  passed=$((passed + $(grep -c '"result": "OK"' "$log" || true)))
  failed=$((failed + $(grep -Ec '"result": "(FAIL|ERROR|TIMEOUT|UNEXPECTEDPASS)"' "$log" || true)))
  skipped=$((skipped + $(grep -c '"result": "SKIP"' "$log" || true)))
}

if [ $# -gt 0 ]; then
  meson test -C "$asandir" --print-errorlogs --num-processes 2 "$@" || rc=$?
  count "$asandir/meson-logs/testlog.json"
else
  echo "== unit suite under valgrind ($builddir)"
  meson test -C "$builddir" --setup valgrind --suite unit --print-errorlogs \
    --num-processes 2 || rc=$?
  count "$builddir/meson-logs/testlog-valgrind.json"

  echo "== unit and integration suites under ASan/UBSan ($asandir)"
  meson test -C "$asandir" --suite unit --suite integration --print-errorlogs \
    --num-processes 2 || rc=$?
  count "$asandir/meson-logs/testlog.json"

  echo "== fuzzers, ${fuzz_seconds}s each"
  fuzzlog=$(mktemp)
  frc=0
  tests/fuzz/run-fuzzers.sh "$fuzz_seconds" | tee "$fuzzlog" || frc=$?
  if [ "$frc" = 77 ]; then
    skipped=$((skipped + 1))
  else
    passed=$((passed + $(grep -c '^PASS: fuzz-' "$fuzzlog" || true)))
    f=$(grep -c '^FAIL: fuzz-' "$fuzzlog" || true)
    # a build failure fails every harness without a line of its own
    [ "$frc" != 0 ] && [ "$f" = 0 ] && f=1
    failed=$((failed + f))
    [ "$frc" = 0 ] || rc=1
  fi
  rm -f "$fuzzlog"
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$rc" = 0 ] && [ "$failed" = 0 ]
