/*
 * vmrp-retention.h: which restore points a retention policy keeps (Proxmox
 * Backup Server's prune rules), and the chains that keep them restorable
 *
 * Pure logic: no files, no clock.  Times are seconds since the epoch (UTC);
 * period boundaries (hours, days, ISO weeks, months, years) are those of the
 * GTimeZone the caller passes, normally the host's (g_time_zone_new_local()).
 *
 * The rules, as Proxmox Backup Server documents and implements them
 * (pbs-datastore prune.rs, compute_prune_info):
 *  - points are taken newest first (ties: the greater id first);
 *  - keep-last, keep-hourly, keep-daily, keep-weekly (ISO 8601 weeks, Monday
 *    to Sunday, the week-numbering year), keep-monthly, keep-yearly are applied
 *    in that order; a rule with a count of 0 is not applied;
 *  - a rule with count N walks the points not yet decided by an earlier rule,
 *    skipping protected points and points whose period already holds a point
 *    kept by an earlier rule; the first point of each new period is kept (it is
 *    the newest there), later points of a period it kept are removed, and the
 *    walk stops at the (N+1)th new period, leaving the older points to the
 *    next rule;
 *  - protected points are always kept, and count for no rule;
 *  - every point no rule kept is removed.
 * keep-last's periods are the points themselves.
 *
 * Chains: an increment depends on its parent.  A removed point that a kept
 * point depends on (directly or through other removed points) is marked
 * `merge`: deleting it (rp-delete) merges its data into its child first, so
 * that every kept point stays restorable.  Removal is therefore always safe
 * for the chain; `merge` tells the caller, and the operator, which removals
 * move data instead of freeing it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <glib.h>

typedef enum {
    VMRP_RETENTION_KEEP_LAST = 0,
    VMRP_RETENTION_KEEP_HOURLY,
    VMRP_RETENTION_KEEP_DAILY,
    VMRP_RETENTION_KEEP_WEEKLY,
    VMRP_RETENTION_KEEP_MONTHLY,
    VMRP_RETENTION_KEEP_YEARLY,

    VMRP_RETENTION_RULE_LAST
} vmrpRetentionRule;

/* The largest count of a rule. */
#define VMRP_RETENTION_COUNT_MAX 1000000

typedef struct {
    /* how many periods each rule keeps, indexed by vmrpRetentionRule; 0: the
     * rule is not used.  int, so that a negative count from the command line
     * reaches vmrpRetentionValidate and is refused there. */
    int keep[VMRP_RETENTION_RULE_LAST];
    /* keep every point (prune nothing); excludes every count */
    bool keep_all;
} vmrpRetention;

/* One restore point as retention sees it.  The strings are borrowed. */
typedef struct {
    const char *id;          /* unique, non-empty */
    gint64 time;             /* creation time, seconds since the epoch (UTC) */
    bool protected;          /* never pruned */
    const char *parent;      /* the point it is an increment of; NULL for a full */
} vmrpRetentionPoint;

/* What retention decided for one point.  The strings are static or borrowed
 * from the input points: valid as long as those are. */
typedef struct {
    bool keep;
    /* kept: "keep-last", "keep-hourly", "keep-daily", "keep-weekly",
     * "keep-monthly", "keep-yearly", "protected" or "keep-all";
     * removed: "remove" */
    const char *reason;
    /* removed, and at least one kept point depends on it: deleting it merges
     * its data into its child (rp-delete does) */
    bool merge;
    /* with merge: the id of a kept point that depends on it (the first one
     * found, newest first); NULL otherwise */
    const char *needed_by;
} vmrpRetentionDecision;

/* "keep-last", ..., "keep-yearly"; "unknown" for anything else. */
const char *vmrpRetentionRuleToString(vmrpRetentionRule rule);
bool vmrpRetentionRuleFromString(const char *str,
                                 vmrpRetentionRule *ret_rule,
                                 GError **error);

/*
 * Refuses a retention that is contradictory or useless, with one line:
 * a negative count, a count above VMRP_RETENTION_COUNT_MAX, keep-all
 * together with a count, or nothing kept at all (every count 0 and no
 * keep-all: that would remove every unprotected point; say keep-last 1 or
 * more to keep some).
 */
bool vmrpRetentionValidate(const vmrpRetention *retention, GError **error);

/*
 * Decides, for each of the @npoints @points, whether @retention keeps it
 * (period boundaries in @tz).  *@ret_decisions receives an array of
 * @npoints decisions in the order of @points (g_free it; an array of one
 * unused element when @npoints is 0).
 *
 * Fails, with *@ret_decisions untouched, when @retention is not valid
 * (vmrpRetentionValidate) or the points are inconsistent: an empty or
 * duplicate id, a time outside the years 1 to 9999, a parent that is not
 * among @points, or parents that form a cycle.  A repository that gives such
 * points is damaged, and nothing should be pruned from it.
 */
bool vmrpRetentionApply(const vmrpRetention *retention,
                        const vmrpRetentionPoint *points,
                        size_t npoints,
                        GTimeZone *tz,
                        vmrpRetentionDecision **ret_decisions,
                        GError **error);

/*
 * The number of increments between the point @id and the full it depends on
 * (0 when @id is a full).  Give the newest point to learn how long the chain
 * that the next increment would extend is (vmrpPolicyNeedsFull).  Fails when
 * @id is not among @points or the points are inconsistent as for
 * vmrpRetentionApply.
 */
bool vmrpRetentionChainLength(const vmrpRetentionPoint *points,
                              size_t npoints,
                              const char *id,
                              guint *ret_length,
                              GError **error);
