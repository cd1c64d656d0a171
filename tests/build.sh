#!/bin/bash
# build.sh: prepares this host (packages, libvirtd), builds the test guest
# and vmrp.  Shared by tests/run.sh and tests/demo.sh.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "error: run as root (it installs packages and drives libvirtd)" >&2; exit 1; }
vm-images/prepare-host.sh
vm-images/build-guest.sh
builddir=${VMRP_BUILDDIR:-build}
if [ ! -f "$builddir/build.ninja" ]; then
  # CI builds with -Werror: a warning is a failure there
  meson setup "$builddir" ${CI:+-Dwerror=true} >/dev/null
fi
if ! ninja -C "$builddir" >"$builddir/build.log" 2>&1; then
  grep -E -B2 -A8 'error|FAILED' "$builddir/build.log" | head -n 60 >&2
  echo "error: the build failed (see $builddir/build.log)" >&2
  exit 1
fi
echo "built: $builddir/plugin/vmrp"
