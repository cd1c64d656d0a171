/*
 * vmrp-consistency.c: consistency modes of a restore point
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "vmrp-consistency.h"

G_DEFINE_QUARK(vmrp-policy-error-quark, vmrp_policy_error)

static const char *const consistencyNames[VMRP_CONSISTENCY_LAST] = {
    [VMRP_CONSISTENCY_CRASH] = "crash",
    [VMRP_CONSISTENCY_FILESYSTEM] = "filesystem",
    [VMRP_CONSISTENCY_APPLICATION] = "application",
};

const char *
vmrpConsistencyToString(vmrpConsistency mode)
{
    if (mode >= VMRP_CONSISTENCY_LAST)
        return "unknown";
    return consistencyNames[mode];
}

bool
vmrpConsistencyFromString(const char *str,
                          vmrpConsistency *ret_mode,
                          GError **error)
{
    g_autofree char *shown = NULL;
    size_t i;

    for (i = 0; str && i < VMRP_CONSISTENCY_LAST; i++) {
        if (g_str_equal(str, consistencyNames[i])) {
            *ret_mode = i;
            return true;
        }
    }
    /* escaped: the string may come from a damaged file, and an error is one line */
    shown = g_strescape(str ? str : "", NULL);
    g_set_error(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID,
                "unknown consistency '%s': expected application, filesystem or crash",
                shown);
    return false;
}

bool
vmrpConsistencyNeedsFreeze(vmrpConsistency mode)
{
    return mode == VMRP_CONSISTENCY_APPLICATION ||
           mode == VMRP_CONSISTENCY_FILESYSTEM;
}

bool
vmrpConsistencyResolve(vmrpConsistency requested,
                       const char *agent_error,
                       bool allow_fallback,
                       vmrpConsistency *ret_achieved,
                       GError **error)
{
    if (!vmrpConsistencyNeedsFreeze(requested) || !agent_error) {
        *ret_achieved = requested;
        return true;
    }
    if (allow_fallback) {
        *ret_achieved = VMRP_CONSISTENCY_CRASH;
        return true;
    }
    g_set_error(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_UNAVAILABLE,
                "%s consistency needs the guest agent, which is unavailable (%s); "
                "use --allow-fallback for a crash-consistent point or "
                "--consistency crash",
                vmrpConsistencyToString(requested), agent_error);
    return false;
}
