/*
 * vmrp-retention.c: which restore points a retention policy keeps
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "vmrp-retention.h"
#include "vmrp-consistency.h"

static const char *const ruleNames[VMRP_RETENTION_RULE_LAST] = {
    [VMRP_RETENTION_KEEP_LAST] = "keep-last",
    [VMRP_RETENTION_KEEP_HOURLY] = "keep-hourly",
    [VMRP_RETENTION_KEEP_DAILY] = "keep-daily",
    [VMRP_RETENTION_KEEP_WEEKLY] = "keep-weekly",
    [VMRP_RETENTION_KEEP_MONTHLY] = "keep-monthly",
    [VMRP_RETENTION_KEEP_YEARLY] = "keep-yearly",
};

const char *
vmrpRetentionRuleToString(vmrpRetentionRule rule)
{
    if ((unsigned int)rule >= VMRP_RETENTION_RULE_LAST)
        return "unknown";
    return ruleNames[rule];
}

bool
vmrpRetentionRuleFromString(const char *str,
                            vmrpRetentionRule *ret_rule,
                            GError **error)
{
    g_autofree char *shown = NULL;
    size_t i;

    for (i = 0; str && i < VMRP_RETENTION_RULE_LAST; i++) {
        if (g_str_equal(str, ruleNames[i])) {
            *ret_rule = i;
            return true;
        }
    }
    shown = g_strescape(str ? str : "", NULL);
    g_set_error(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID,
                "unknown retention rule '%s': expected keep-last, keep-hourly, keep-daily, "
                "keep-weekly, keep-monthly or keep-yearly", shown);
    return false;
}

bool
vmrpRetentionValidate(const vmrpRetention *retention, GError **error)
{
    bool any = false;
    size_t i;

    for (i = 0; i < VMRP_RETENTION_RULE_LAST; i++) {
        int count = retention->keep[i];

        if (count < 0 || count > VMRP_RETENTION_COUNT_MAX) {
            g_set_error(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID,
                        "invalid %s %d: expected a count from 0 to %d",
                        ruleNames[i], count, VMRP_RETENTION_COUNT_MAX);
            return false;
        }
        if (count > 0 && retention->keep_all) {
            g_set_error(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID,
                        "keep-all conflicts with %s %d: keep-all keeps every point",
                        ruleNames[i], count);
            return false;
        }
        any = any || count > 0;
    }
    if (!any && !retention->keep_all) {
        g_set_error_literal(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID,
                            "retention keeps no point: give at least one keep-last, "
                            "keep-hourly, keep-daily, keep-weekly, keep-monthly or "
                            "keep-yearly count above 0, or keep-all");
        return false;
    }
    return true;
}

/* The points as a graph: where each id is and which point each depends on. */
typedef struct {
    size_t n;
    GHashTable *index;    /* id -> index + 1 */
    gssize *parent;       /* index of the parent, -1 for a full */
    guint *depth;         /* increments between the point and its full */
} retentionGraph;

static void
retentionGraphFree(retentionGraph *graph)
{
    if (!graph)
        return;
    g_clear_pointer(&graph->index, g_hash_table_unref);
    g_free(graph->parent);
    g_free(graph->depth);
    g_free(graph);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(retentionGraph, retentionGraphFree)

static void
setPointError(GError **error, const char *id, const char *why)
{
    g_autofree char *shown = g_strescape(id ? id : "", NULL);

    g_set_error(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID,
                "point '%s': %s", shown, why);
}

/* Checks the ids and parents of @points and computes each chain's depth. */
static retentionGraph *
retentionGraphNew(const vmrpRetentionPoint *points, size_t npoints, GError **error)
{
    g_autoptr(retentionGraph) graph = g_new0(retentionGraph, 1);
    g_autofree guint8 *state = g_new0(guint8, npoints + 1);  /* 0 new, 1 walking, 2 done */
    g_autofree size_t *stack = g_new(size_t, npoints + 1);
    size_t i;

    graph->n = npoints;
    graph->index = g_hash_table_new(g_str_hash, g_str_equal);
    graph->parent = g_new(gssize, npoints + 1);
    graph->depth = g_new0(guint, npoints + 1);

    for (i = 0; i < npoints; i++) {
        const char *id = points[i].id;

        if (!id || !*id) {
            g_set_error_literal(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID,
                                "a point has an empty id");
            return NULL;
        }
        if (g_hash_table_contains(graph->index, id)) {
            setPointError(error, id, "the id is given twice");
            return NULL;
        }
        g_hash_table_insert(graph->index, (gpointer)id, GSIZE_TO_POINTER(i + 1));
    }
    for (i = 0; i < npoints; i++) {
        const char *parent = points[i].parent;
        gsize at;

        graph->parent[i] = -1;
        if (!parent)
            continue;
        if (!(at = GPOINTER_TO_SIZE(g_hash_table_lookup(graph->index, parent)))) {
            g_autofree char *shown = g_strescape(parent, NULL);
            g_autofree char *why = g_strdup_printf("its parent '%s' is not among the points",
                                                   shown);
            setPointError(error, points[i].id, why);
            return NULL;
        }
        graph->parent[i] = at - 1;
    }

    /* depths, walking each chain once; a chain that meets itself is a cycle */
    for (i = 0; i < npoints; i++) {
        size_t top = 0;
        gssize j = i;
        guint depth;

        while (j >= 0 && state[j] == 0) {
            state[j] = 1;
            stack[top++] = j;
            j = graph->parent[j];
        }
        if (j >= 0 && state[j] == 1) {
            setPointError(error, points[j].id, "its chain of parents is a cycle");
            return NULL;
        }
        depth = j >= 0 ? graph->depth[j] + 1 : 0;
        while (top > 0) {
            size_t k = stack[--top];

            graph->depth[k] = depth++;
            state[k] = 2;
        }
    }
    return g_steal_pointer(&graph);
}

typedef struct {
    const vmrpRetentionPoint *points;
} sortContext;

/* Newest first; for equal times the greater id first. */
static gint
comparePoints(gconstpointer a, gconstpointer b, gpointer opaque)
{
    const sortContext *ctx = opaque;
    const vmrpRetentionPoint *pa = &ctx->points[*(const size_t *)a];
    const vmrpRetentionPoint *pb = &ctx->points[*(const size_t *)b];

    if (pa->time != pb->time)
        return pa->time > pb->time ? -1 : 1;
    return -strcmp(pa->id, pb->id);
}

/* The periods of a point under each rule, in @tz. */
static bool
pointPeriods(const vmrpRetentionPoint *point,
             size_t index,
             GTimeZone *tz,
             gint64 *ret_keys,
             GError **error)
{
    g_autoptr(GDateTime) utc = g_date_time_new_from_unix_utc(point->time);
    g_autoptr(GDateTime) local = NULL;
    gint64 year, month, day, hour;

    if (!utc || !(local = g_date_time_to_timezone(utc, tz)) ||
        g_date_time_get_year(local) > 9999 || g_date_time_get_year(local) < 1) {
        setPointError(error, point->id, "its time is outside the years 1 to 9999");
        return false;
    }
    year = g_date_time_get_year(local);
    month = g_date_time_get_month(local);
    day = g_date_time_get_day_of_month(local);
    hour = g_date_time_get_hour(local);
    ret_keys[VMRP_RETENTION_KEEP_LAST] = index;
    ret_keys[VMRP_RETENTION_KEEP_HOURLY] = ((year * 100 + month) * 100 + day) * 100 + hour;
    ret_keys[VMRP_RETENTION_KEEP_DAILY] = (year * 100 + month) * 100 + day;
    ret_keys[VMRP_RETENTION_KEEP_WEEKLY] = g_date_time_get_week_numbering_year(local) * 100 +
                                           g_date_time_get_week_of_year(local);
    ret_keys[VMRP_RETENTION_KEEP_MONTHLY] = year * 100 + month;
    ret_keys[VMRP_RETENTION_KEEP_YEARLY] = year;
    return true;
}

typedef enum {
    MARK_NONE = 0,
    MARK_KEEP,
    MARK_REMOVE,
} retentionMark;

/* One rule, as Proxmox's mark_selections: @order holds the point indexes
 * newest first; @keys the periods (VMRP_RETENTION_RULE_LAST per point). */
static void
markSelections(const vmrpRetentionPoint *points,
               const size_t *order,
               size_t npoints,
               const gint64 *keys,
               vmrpRetentionRule rule,
               guint count,
               retentionMark *marks,
               vmrpRetentionRule *kept_by)
{
    g_autoptr(GHashTable) already = g_hash_table_new(g_int64_hash, g_int64_equal);
    g_autoptr(GHashTable) included = g_hash_table_new(g_int64_hash, g_int64_equal);
    size_t i;

    for (i = 0; i < npoints; i++) {
        if (marks[i] == MARK_KEEP)
            g_hash_table_add(already, (gpointer)&keys[i * VMRP_RETENTION_RULE_LAST + rule]);
    }
    for (i = 0; i < npoints; i++) {
        size_t p = order[i];
        const gint64 *key = &keys[p * VMRP_RETENTION_RULE_LAST + rule];

        if (marks[p] != MARK_NONE || points[p].protected)
            continue;
        if (g_hash_table_contains(already, key))
            continue;
        if (g_hash_table_contains(included, key)) {
            marks[p] = MARK_REMOVE;
            continue;
        }
        if (g_hash_table_size(included) >= count)
            break;
        g_hash_table_add(included, (gpointer)key);
        marks[p] = MARK_KEEP;
        kept_by[p] = rule;
    }
}

bool
vmrpRetentionApply(const vmrpRetention *retention,
                   const vmrpRetentionPoint *points,
                   size_t npoints,
                   GTimeZone *tz,
                   vmrpRetentionDecision **ret_decisions,
                   GError **error)
{
    g_autoptr(retentionGraph) graph = NULL;
    g_autofree vmrpRetentionDecision *out = NULL;
    g_autofree size_t *order = NULL;
    g_autofree gint64 *keys = NULL;
    g_autofree retentionMark *marks = NULL;
    g_autofree vmrpRetentionRule *kept_by = NULL;
    sortContext ctx = { points };
    size_t i;
    int r;

    if (!vmrpRetentionValidate(retention, error))
        return false;
    if (!(graph = retentionGraphNew(points, npoints, error)))
        return false;

    keys = g_new(gint64, (npoints + 1) * VMRP_RETENTION_RULE_LAST);
    for (i = 0; i < npoints; i++) {
        if (!pointPeriods(&points[i], i, tz, &keys[i * VMRP_RETENTION_RULE_LAST], error))
            return false;
    }
    order = g_new(size_t, npoints + 1);
    for (i = 0; i < npoints; i++)
        order[i] = i;
    g_qsort_with_data(order, npoints, sizeof(*order), comparePoints, &ctx);

    marks = g_new0(retentionMark, npoints + 1);
    kept_by = g_new0(vmrpRetentionRule, npoints + 1);
    if (!retention->keep_all) {
        for (r = 0; r < VMRP_RETENTION_RULE_LAST; r++) {
            if (retention->keep[r] > 0)
                markSelections(points, order, npoints, keys, r, retention->keep[r],
                               marks, kept_by);
        }
    }

    out = g_new0(vmrpRetentionDecision, npoints + 1);
    for (i = 0; i < npoints; i++) {
        vmrpRetentionDecision *d = &out[i];

        d->keep = true;
        if (points[i].protected)
            d->reason = "protected";
        else if (retention->keep_all)
            d->reason = "keep-all";
        else if (marks[i] == MARK_KEEP)
            d->reason = ruleNames[kept_by[i]];
        else {
            d->keep = false;
            d->reason = "remove";
        }
    }

    /* what the kept points depend on is merged, not lost; each point is
     * marked once, so this is linear */
    for (i = 0; i < npoints; i++) {
        size_t k = order[i];
        gssize a;

        if (!out[k].keep)
            continue;
        for (a = graph->parent[k]; a >= 0 && !out[a].keep && !out[a].merge;
             a = graph->parent[a]) {
            out[a].merge = true;
            out[a].needed_by = points[k].id;
        }
    }

    *ret_decisions = g_steal_pointer(&out);
    return true;
}

bool
vmrpRetentionChainLength(const vmrpRetentionPoint *points,
                         size_t npoints,
                         const char *id,
                         guint *ret_length,
                         GError **error)
{
    g_autoptr(retentionGraph) graph = NULL;
    gsize at;

    if (!(graph = retentionGraphNew(points, npoints, error)))
        return false;
    if (!id || !(at = GPOINTER_TO_SIZE(g_hash_table_lookup(graph->index, id)))) {
        setPointError(error, id, "no such point");
        return false;
    }
    *ret_length = graph->depth[at - 1];
    return true;
}
