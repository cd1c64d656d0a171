/*
 * vmrp-consistency.h: consistency modes of a restore point and the rules
 * that decide which one a point gets
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <glib.h>

typedef enum {
    VMRP_CONSISTENCY_CRASH = 0,
    VMRP_CONSISTENCY_FILESYSTEM,
    VMRP_CONSISTENCY_APPLICATION,

    VMRP_CONSISTENCY_LAST
} vmrpConsistency;

#define VMRP_POLICY_ERROR vmrp_policy_error_quark()
GQuark vmrp_policy_error_quark(void);

typedef enum {
    VMRP_POLICY_ERROR_INVALID,     /* malformed input */
    VMRP_POLICY_ERROR_UNAVAILABLE, /* the rule cannot be met */
} vmrpPolicyError;

const char *vmrpConsistencyToString(vmrpConsistency mode);
bool vmrpConsistencyFromString(const char *str,
                               vmrpConsistency *ret_mode,
                               GError **error);

/* Whether taking a point in @mode freezes the guest's filesystems. */
bool vmrpConsistencyNeedsFreeze(vmrpConsistency mode);

/*
 * Decides the consistency a point gets.  @agent_error is why the guest
 * agent cannot freeze the guest (NULL when it can).  Without an agent, a
 * request that needs a freeze fails unless @allow_fallback, in which case
 * the point is crash-consistent.
 */
bool vmrpConsistencyResolve(vmrpConsistency requested,
                            const char *agent_error,
                            bool allow_fallback,
                            vmrpConsistency *ret_achieved,
                            GError **error);
