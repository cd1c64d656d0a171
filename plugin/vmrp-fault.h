/*
 * vmrp-fault.h: named fault points for tests (built only with -Dfault_points=true)
 *
 * A test sets VMRP_FAULT to make vmrp stop or fail at a named phase:
 *   VMRP_FAULT=PHASE        vmrpFaultCheck(PHASE) fails: "fault injected at PHASE"
 *   VMRP_FAULT=PHASE:kill   vmrp raises SIGKILL on itself there (crash recovery)
 *   VMRP_FAULT=PHASE:hang   vmrp waits there for a signal (job-abort's SIGTERM, SIGINT),
 *                           then fails as cancelled; or until it is killed
 *   VMRP_FAULT=PHASE:stop   vmrp stops itself (SIGSTOP) and goes on when the test sends
 *                           SIGCONT (a race made wide)
 * Several faults may be given, separated by commas.  When VMRP_FAULT_REACHED names a
 * file, the phase of a fault that fires is written to it first, so that a test can wait
 * for it.  Without the build option, vmrpFaultCheck is an inline `true` and vmrp reads
 * neither variable: the release build has none of it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "config.h"

#ifdef VMRP_FAULT_POINTS
/* Whether vmrp may go on past @phase: false (with @error set) when a test asked for a
 * failure there; does not return for :kill and :hang. */
bool vmrpFaultCheck(const char *phase, GError **error);
#else
static inline bool
vmrpFaultCheck(const char *phase G_GNUC_UNUSED, GError **error G_GNUC_UNUSED)
{
    return true;
}
#endif
