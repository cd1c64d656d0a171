#!/bin/bash
# check-sources.sh: what must never appear in vmrp's C sources (a unit test)
#
#  - a shell between vmrp and the programs it runs: system(), popen(), exec*()
#    of a shell, "sh -c", or a command line split from a string
#    (g_spawn_command_line_*, g_shell_parse_argv): argument vectors only
#    (g_spawn_sync with argv), so that no name can inject a command;
#  - racy temporary names: mktemp(), tmpnam(), tempnam(): mkstemp,
#    g_mkstemp(_full), mkdtemp or g_dir_make_tmp only;
#  - a literal path in /tmp or /var/tmp: temporary files go where
#    g_dir_make_tmp / the state folder put them.
# Comments are not exempt: say "shell", not the call.
#
# Usage: check-sources.sh [SRCDIR]    prints each offending line; exit 1 if any
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -uo pipefail
cd "${1:-$(dirname "$0")/..}"

patterns=(
  '\<(system|popen|mktemp|tmpnam|tempnam)[[:space:]]*\('
  '\<exec(l|lp|le|v|vp|vpe|ve)[[:space:]]*\('
  '"(/usr)?/bin/(ba|da)?sh"'
  '"sh"'
  '\<sh -c\>'
  '\<g_spawn_command_line_(sync|async)\>'
  '\<g_shell_parse_argv\>'
  '"/(var/)?tmp/'
)
dirs=(plugin policy qmp nbd)
found=0
for pat in "${patterns[@]}"; do
  if grep -rnE --include='*.c' --include='*.h' "$pat" "${dirs[@]}"; then
    echo "check-sources: forbidden: $pat" >&2
    found=1
  fi
done
if [ "$found" = 0 ]; then
  echo "check-sources: $(find "${dirs[@]}" -name '*.[ch]' | wc -l) files clean"
fi
exit "$found"
