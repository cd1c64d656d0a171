#!/bin/bash
# run.sh: the README's test command.  Prepares the host, builds, runs the
# unit suite (CUnit, no VM) and the integration suite (real libvirtd and
# QEMU guests), and ends with the line "N passed, N failed".
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -euo pipefail
cd "$(dirname "$0")/.."
builddir=${VMRP_BUILDDIR:-build}

tests/build.sh
rc=0
meson test -C "$builddir" --suite unit --suite integration --print-errorlogs \
  --num-processes 2 "$@" || rc=$?

# one line for CI, counted from meson's log of this run: each unit test
# program and each integration test counts once
log="$builddir/meson-logs/testlog.json"
passed=$(grep -c '"result": "OK"' "$log" || true)
failed=$(grep -Ec '"result": "(FAIL|ERROR|TIMEOUT|UNEXPECTEDPASS)"' "$log" || true)
skipped=$(grep -c '"result": "SKIP"' "$log" || true)
echo "$passed passed, $failed failed, $skipped skipped"
[ "$rc" = 0 ] && [ "$failed" = 0 ]
