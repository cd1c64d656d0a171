/*
 * vmrp-run.h: running helper programs (qemu-img) by argument vector,
 * never through a shell
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <glib.h>

/* Runs @argv (argv[0] looked up in PATH), waits for it, and fails with the
 * last line of its stderr when it exits non-zero.  Its stdout is returned
 * in @ret_stdout when not NULL. */
bool vmrpRun(const char *const *argv, char **ret_stdout, GError **error);
