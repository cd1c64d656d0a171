/*
 * vmrp-policy.h: a collection's policy (retention, schedule, consistency,
 * excluded disks, chain length) and its text form
 *
 * The lead fills a vmrpPolicy from `policy-set` options and calls
 * vmrpPolicyValidate; the repository stores vmrpPolicyFormat's text (a
 * string in collection.json) and reads it back with vmrpPolicyParse, which
 * accepts only what vmrpPolicyValidate accepts.
 *
 * Text form: one "key=value" per line, no spaces around '=', each key at
 * most once, empty lines ignored, nothing else (no comments).  Keys, with
 * the value a missing key takes:
 *
 *   keep-last=N  keep-hourly=N  keep-daily=N       counts, 0 to 1000000   (0)
 *   keep-weekly=N  keep-monthly=N  keep-yearly=N
 *   keep-all=yes|no                                                        (no)
 *   schedule=none | every Nm | every Nh | daily HH:MM  (vmrp-schedule.h)  (none)
 *   consistency=application|filesystem|crash                      (application)
 *   allow-fallback=yes|no                                                  (no)
 *   exclude-disks=vdb,vdc    disk targets, comma-separated; empty: none   (empty)
 *   max-chain=unlimited|N    increments after a full, N 0 to 1000000 (unlimited)
 *   verify=none | every Nd | every Nh   re-verify a point whose last rp-verify is
 *                            older, N 1 to 10000 (PBS's "re-verify after")  (none)
 *
 * vmrpPolicyFormat writes every key, in this order, ending each line with a
 * newline; a number is decimal without sign or leading zero.  verify is
 * written only when set, so that a policy without it reads the same in a
 * vmrp that does not know it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "vmrp-consistency.h"
#include "vmrp-retention.h"
#include "vmrp-schedule.h"

/* max_chain: no limit on the length of a chain */
#define VMRP_POLICY_CHAIN_UNLIMITED (-1)
/* the largest max_chain */
#define VMRP_POLICY_CHAIN_MAX 1000000

typedef struct _vmrpPolicy vmrpPolicy;
struct _vmrpPolicy {
    vmrpRetention retention;
    vmrpSchedule schedule;           /* VMRP_SCHEDULE_NONE: points are taken by hand */
    vmrpConsistency consistency;     /* asked for each scheduled point */
    bool allow_fallback;             /* crash-consistent when the agent is missing */
    GStrv exclude_disks;             /* owned; NULL or NULL-terminated disk targets */
    /* the most increments after a full before the next point is a new full;
     * 0: every point is a full; VMRP_POLICY_CHAIN_UNLIMITED: no limit */
    int max_chain;
    /* seconds after which run-policies verifies a point again (rp-verify);
     * 0: never */
    gint64 verify_every_s;
};

/* A policy with the defaults above: it keeps no point, so it is not valid
 * until a retention (or keep-all) is set. */
vmrpPolicy *vmrpPolicyNew(void);
void vmrpPolicyFree(vmrpPolicy *policy);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpPolicy, vmrpPolicyFree)

/* Sets exclude_disks from a comma-separated list ("vdb,vdc"; "" for none),
 * as --exclude-disk gives it; @policy is untouched on failure. */
bool vmrpPolicySetExcludeDisks(vmrpPolicy *policy, const char *list, GError **error);

/*
 * Refuses a policy that is malformed, contradictory or useless, with one
 * line naming the option at fault: an invalid retention
 * (vmrpRetentionValidate) or schedule (vmrpScheduleValidate), an unknown
 * consistency, allow-fallback with crash consistency (there is nothing to
 * fall back from), an invalid or repeated excluded disk, a max-chain below
 * VMRP_POLICY_CHAIN_UNLIMITED or above VMRP_POLICY_CHAIN_MAX.
 */
bool vmrpPolicyValidate(const vmrpPolicy *policy, GError **error);

/* The text form of @policy (see above). */
char *vmrpPolicyFormat(const vmrpPolicy *policy);

/* Reads the text form; the result is valid (vmrpPolicyValidate).  Errors
 * name the line: "policy line 3: unknown key 'keep-dayly'". */
vmrpPolicy *vmrpPolicyParse(const char *text, GError **error);

/*
 * Whether the next point must be a full because the chain it would extend is
 * long enough: @chain_length is the number of increments since the last full
 * in the chain of the newest point (vmrpRetentionChainLength; 0 when the
 * newest point is a full).  The next increment would be number
 * @chain_length + 1, which max-chain allows only up to max_chain.
 */
bool vmrpPolicyNeedsFull(const vmrpPolicy *policy, guint chain_length);

/* Parses "none", "every Nd" or "every Nh" (N 1 to 10000) into seconds. */
bool vmrpPolicyParseVerify(const char *text, gint64 *ret_seconds, GError **error);

/* Whether a point last verified at @last_verified (seconds since the epoch;
 * VMRP_SCHEDULE_NEVER: never) is due for verification at @now. */
bool vmrpPolicyVerifyDue(const vmrpPolicy *policy, gint64 last_verified, gint64 now);
