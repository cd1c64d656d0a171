/*
 * vmrp-thaw-guard.h: a guest is never left frozen, even when vmrp dies
 *
 * Before freezing a guest, vmrp starts a guard: a process of its own (vmrp
 * itself, run as "vmrp __thaw-guard URI UUID SECONDS", in a session of its
 * own) that holds the read end of a pipe.  vmrp disarms it once the guest is
 * thawed.  If vmrp dies first (SIGKILL included), the pipe closes and the
 * guard thaws the guest through the agent; it also thaws when the freeze
 * outlasts SECONDS.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <libvirt/libvirt.h>
#include <glib.h>

typedef struct _vmrpThawGuard vmrpThawGuard;

/* Starts the guard and waits until it is armed. */
vmrpThawGuard *vmrpThawGuardStart(virDomainPtr dom, int max_seconds, GError **error);

/* Tells the guard the guest is thawed, and reaps it.  Accepts NULL. */
void vmrpThawGuardDisarm(vmrpThawGuard *guard);

/* Lets the guard go without disarming it: it thaws the guest at once.
 * Accepts NULL. */
void vmrpThawGuardAbandon(vmrpThawGuard *guard);

/* The guard process's main: argv is {"__thaw-guard", URI, UUID, SECONDS}. */
int vmrpThawGuardMain(int argc, char **argv);
