/*
 * test-retention.c: retention (Proxmox Backup Server's prune rules) and the
 * chains it keeps restorable, against Proxmox's own examples and against a
 * reference model written separately here
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "vmrp-test.h"
#include "vmrp-retention.h"

/* ---- helpers ---------------------------------------------------------- */

static gint64
isoTime(const char *iso)
{
    g_autoptr(GDateTime) dt = g_date_time_new_from_iso8601(iso, NULL);

    g_assert(dt);
    return g_date_time_to_unix(dt);
}

static GTimeZone *
zone(const char *name)
{
    GTimeZone *tz = g_time_zone_new_identifier(name);

    /* tzdata is a build dependency of these tests: fail, do not skip */
    g_assert(tz);
    return tz;
}

static vmrpRetention
retention(int last, int hourly, int daily, int weekly, int monthly, int yearly)
{
    vmrpRetention r = { { last, hourly, daily, weekly, monthly, yearly }, false };

    return r;
}

static gint
compareStrings(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Runs @r over points named by their ISO times (ids are the times, no
 * chains, none protected) and returns the kept ones, sorted, joined by ' '. */
static char *
keptOf(const vmrpRetention *r, const char *const *times, GTimeZone *tz)
{
    g_autofree vmrpRetentionPoint *points = NULL;
    g_autofree vmrpRetentionDecision *d = NULL;
    g_autoptr(GPtrArray) kept = g_ptr_array_new();
    g_autoptr(GError) error = NULL;
    size_t n = g_strv_length((GStrv)times);
    size_t i;

    points = g_new0(vmrpRetentionPoint, n + 1);
    for (i = 0; i < n; i++) {
        points[i].id = times[i];
        points[i].time = isoTime(times[i]);
    }
    if (!vmrpRetentionApply(r, points, n, tz, &d, &error))
        return g_strdup_printf("error: %s", error->message);
    for (i = 0; i < n; i++) {
        if (d[i].keep)
            g_ptr_array_add(kept, (gpointer)times[i]);
    }
    g_ptr_array_sort(kept, compareStrings);
    g_ptr_array_add(kept, NULL);
    return g_strjoinv(" ", (GStrv)kept->pdata);
}

#define ASSERT_KEPT(r, times, tz, expected) \
    do { \
        g_autofree char *got_ = keptOf(r, times, tz); \
        if (!g_str_equal(got_, expected)) \
            fprintf(stderr, "\n%s:%d: kept '%s', expected '%s'\n", \
                    __FILE__, __LINE__, got_, expected); \
        CU_ASSERT_STRING_EQUAL(got_, expected); \
    } while (0)

/* ---- Proxmox Backup Server's worked examples (tests/prune.rs) ---------- */

static void
testProxmoxHourly(void)
{
    static const char *const times[] = {
        "2019-11-15T09:39:15Z", "2019-11-15T10:49:15Z", "2019-11-15T10:59:15Z",
        "2019-11-15T11:39:15Z", "2019-11-15T11:49:15Z", "2019-11-15T11:59:15Z", NULL
    };
    g_autoptr(GTimeZone) utc = g_time_zone_new_utc();
    vmrpRetention r = retention(0, 3, 0, 0, 0, 0);

    /* keep-hourly 3 removes 10:49, 11:39, 11:49 */
    ASSERT_KEPT(&r, times, utc,
                "2019-11-15T09:39:15Z 2019-11-15T10:59:15Z 2019-11-15T11:59:15Z");
    r = retention(0, 2, 0, 0, 0, 0);
    ASSERT_KEPT(&r, times, utc, "2019-11-15T10:59:15Z 2019-11-15T11:59:15Z");
}

static void
testProxmoxSimple2(void)
{
    static const char *const times[] = {
        "2018-11-15T11:59:15Z", "2019-11-15T11:59:15Z", "2019-11-21T11:59:15Z",
        "2019-11-22T11:59:15Z", "2019-11-29T11:59:15Z", "2019-12-01T11:59:15Z",
        "2019-12-02T11:59:15Z", "2019-12-03T11:59:15Z", "2019-12-04T11:59:15Z", NULL
    };
    g_autoptr(GTimeZone) utc = g_time_zone_new_utc();
    vmrpRetention r = retention(0, 0, 1, 0, 0, 0);

    ASSERT_KEPT(&r, times, utc, "2019-12-04T11:59:15Z");
    r = retention(1, 0, 1, 0, 0, 0);
    ASSERT_KEPT(&r, times, utc, "2019-12-03T11:59:15Z 2019-12-04T11:59:15Z");
    /* 2019-12-01 is a Sunday: the week before that of 12-04 */
    r = retention(0, 0, 1, 1, 0, 0);
    ASSERT_KEPT(&r, times, utc, "2019-12-01T11:59:15Z 2019-12-04T11:59:15Z");
    r = retention(0, 0, 1, 1, 1, 0);
    ASSERT_KEPT(&r, times, utc,
                "2019-11-22T11:59:15Z 2019-12-01T11:59:15Z 2019-12-04T11:59:15Z");
    r = retention(0, 0, 0, 0, 1, 1);
    ASSERT_KEPT(&r, times, utc, "2018-11-15T11:59:15Z 2019-12-04T11:59:15Z");
}

static void
testProxmoxSimple(void)
{
    static const char *const times[] = {
        "2019-12-02T11:59:15Z", "2019-12-03T11:59:15Z", "2019-12-04T11:59:15Z",
        "2019-12-04T12:59:15Z", NULL
    };
    static const char all[] = "2019-12-02T11:59:15Z 2019-12-03T11:59:15Z "
                              "2019-12-04T11:59:15Z 2019-12-04T12:59:15Z";
    g_autoptr(GTimeZone) utc = g_time_zone_new_utc();
    vmrpRetention r = retention(4, 0, 0, 0, 0, 0);

    ASSERT_KEPT(&r, times, utc, all);
    r = retention(3, 0, 0, 0, 0, 0);
    ASSERT_KEPT(&r, times, utc,
                "2019-12-03T11:59:15Z 2019-12-04T11:59:15Z 2019-12-04T12:59:15Z");
    r = retention(2, 0, 0, 0, 0, 0);
    ASSERT_KEPT(&r, times, utc, "2019-12-04T11:59:15Z 2019-12-04T12:59:15Z");
    r = retention(1, 0, 0, 0, 0, 0);
    ASSERT_KEPT(&r, times, utc, "2019-12-04T12:59:15Z");
    /* Proxmox's keep-last 0 alone removes everything; vmrp refuses a
     * retention that keeps nothing (testValidate) */
    r = retention(2, 0, 2, 0, 0, 0);
    ASSERT_KEPT(&r, times, utc, all);
    r = retention(0, 0, 3, 0, 0, 0);
    ASSERT_KEPT(&r, times, utc,
                "2019-12-02T11:59:15Z 2019-12-03T11:59:15Z 2019-12-04T12:59:15Z");
    r = retention(0, 0, 2, 0, 0, 0);
    ASSERT_KEPT(&r, times, utc, "2019-12-03T11:59:15Z 2019-12-04T12:59:15Z");
    /* all in one week, one month, one year: one point each */
    r = retention(0, 0, 0, 5, 0, 0);
    ASSERT_KEPT(&r, times, utc, "2019-12-04T12:59:15Z");
    r = retention(0, 0, 1, 5, 0, 0);
    ASSERT_KEPT(&r, times, utc, "2019-12-04T12:59:15Z");
    r = retention(0, 0, 0, 0, 6, 0);
    ASSERT_KEPT(&r, times, utc, "2019-12-04T12:59:15Z");
    r = retention(0, 0, 0, 0, 0, 7);
    ASSERT_KEPT(&r, times, utc, "2019-12-04T12:59:15Z");
    r = retention(0, 0, 0, 5, 6, 7);
    ASSERT_KEPT(&r, times, utc, "2019-12-04T12:59:15Z");
}

/* ---- calendar edges ---------------------------------------------------- */

static void
testIsoWeek53(void)
{
    /* 2020 has 53 ISO weeks: 2020-12-28 (Mon) to 2021-01-03 (Sun) is
     * 2020-W53; 2021-01-04 starts 2021-W01 */
    static const char *const times[] = {
        "2020-12-21T12:00:00Z", "2020-12-28T12:00:00Z", "2021-01-01T12:00:00Z",
        "2021-01-03T12:00:00Z", "2021-01-04T12:00:00Z", NULL
    };
    /* 2024-12-30 (Mon) is in 2025-W01, 2024-12-29 (Sun) in 2024-W52 */
    static const char *const times2[] = {
        "2024-12-29T12:00:00Z", "2024-12-30T12:00:00Z", "2025-01-05T12:00:00Z", NULL
    };
    g_autoptr(GTimeZone) utc = g_time_zone_new_utc();
    vmrpRetention r = retention(0, 0, 0, 2, 0, 0);

    ASSERT_KEPT(&r, times, utc, "2021-01-03T12:00:00Z 2021-01-04T12:00:00Z");
    r = retention(0, 0, 0, 3, 0, 0);
    ASSERT_KEPT(&r, times, utc,
                "2020-12-21T12:00:00Z 2021-01-03T12:00:00Z 2021-01-04T12:00:00Z");
    r = retention(0, 0, 0, 2, 0, 0);
    ASSERT_KEPT(&r, times2, utc, "2024-12-29T12:00:00Z 2025-01-05T12:00:00Z");
    /* but by calendar year, 2024-12-30 is 2024's newest */
    r = retention(0, 0, 0, 0, 0, 2);
    ASSERT_KEPT(&r, times2, utc, "2024-12-30T12:00:00Z 2025-01-05T12:00:00Z");
}

static void
testYearBoundaryTimeZone(void)
{
    static const char *const times[] = {
        "2020-12-31T22:30:00Z", "2020-12-31T23:30:00Z", "2021-01-01T12:00:00Z", NULL
    };
    g_autoptr(GTimeZone) utc = g_time_zone_new_utc();
    g_autoptr(GTimeZone) berlin = zone("Europe/Berlin");
    g_autoptr(GTimeZone) newyork = zone("America/New_York");
    vmrpRetention r = retention(0, 0, 0, 0, 0, 2);

    ASSERT_KEPT(&r, times, utc, "2020-12-31T23:30:00Z 2021-01-01T12:00:00Z");
    /* 23:30Z is 00:30 on New Year's Day in Berlin: 2021 */
    ASSERT_KEPT(&r, times, berlin, "2020-12-31T22:30:00Z 2021-01-01T12:00:00Z");
    /* in New York all three are 2020 but the last (07:00 on 2021-01-01) */
    ASSERT_KEPT(&r, times, newyork, "2020-12-31T23:30:00Z 2021-01-01T12:00:00Z");
    r = retention(0, 0, 0, 0, 2, 0);
    ASSERT_KEPT(&r, times, berlin, "2020-12-31T22:30:00Z 2021-01-01T12:00:00Z");
}

static void
testDstBerlin(void)
{
    /* 2024-10-27: 03:00 CEST becomes 02:00 CET at 01:00Z; 00:30Z and 01:30Z
     * are both 02:30 on the wall clock: one hour, one hourly point */
    static const char *const fall[] = {
        "2024-10-27T00:10:00Z", "2024-10-27T00:30:00Z", "2024-10-27T01:30:00Z",
        "2024-10-27T02:30:00Z", NULL
    };
    /* 2024-03-31: 02:00 CET becomes 03:00 CEST at 01:00Z */
    static const char *const spring[] = {
        "2024-03-31T00:30:00Z", "2024-03-31T01:00:00Z", "2024-03-31T01:30:00Z", NULL
    };
    g_autoptr(GTimeZone) utc = g_time_zone_new_utc();
    g_autoptr(GTimeZone) berlin = zone("Europe/Berlin");
    vmrpRetention r = retention(0, 10, 0, 0, 0, 0);

    ASSERT_KEPT(&r, fall, utc,
                "2024-10-27T00:30:00Z 2024-10-27T01:30:00Z 2024-10-27T02:30:00Z");
    ASSERT_KEPT(&r, fall, berlin, "2024-10-27T01:30:00Z 2024-10-27T02:30:00Z");
    /* 01:30 CET, then 03:00 and 03:30 CEST: two hours */
    ASSERT_KEPT(&r, spring, berlin, "2024-03-31T00:30:00Z 2024-03-31T01:30:00Z");
    r = retention(0, 0, 1, 0, 0, 0);
    ASSERT_KEPT(&r, fall, berlin, "2024-10-27T02:30:00Z");
}

/* ---- protection, keep-all, chains ------------------------------------ */

static void
testProtected(void)
{
    vmrpRetentionPoint p[5] = {
        { "a", 1000, false, NULL },
        { "b", 2000, true, NULL },
        { "c", 3000, false, NULL },
        { "d", 4000, false, NULL },
        { "e", 5000, true, NULL },
    };
    g_autoptr(GTimeZone) utc = g_time_zone_new_utc();
    g_autofree vmrpRetentionDecision *d = NULL;
    g_autofree vmrpRetentionDecision *d2 = NULL;
    vmrpRetention r = retention(2, 0, 0, 0, 0, 0);
    size_t i;

    /* protected points are kept and count for no rule */
    CU_ASSERT_TRUE_FATAL(vmrpRetentionApply(&r, p, 5, utc, &d, NULL));
    CU_ASSERT_TRUE(d[4].keep && g_str_equal(d[4].reason, "protected"));
    CU_ASSERT_TRUE(d[3].keep && g_str_equal(d[3].reason, "keep-last"));
    CU_ASSERT_TRUE(d[2].keep && g_str_equal(d[2].reason, "keep-last"));
    CU_ASSERT_TRUE(d[1].keep && g_str_equal(d[1].reason, "protected"));
    CU_ASSERT_TRUE(!d[0].keep && g_str_equal(d[0].reason, "remove") && !d[0].merge);

    /* all protected: all kept, whatever the rules */
    for (i = 0; i < 5; i++)
        p[i].protected = true;
    r = retention(1, 0, 0, 0, 0, 0);
    CU_ASSERT_TRUE_FATAL(vmrpRetentionApply(&r, p, 5, utc, &d2, NULL));
    for (i = 0; i < 5; i++)
        CU_ASSERT_TRUE(d2[i].keep && g_str_equal(d2[i].reason, "protected"));
}

static void
testKeepAllAndEmpty(void)
{
    vmrpRetentionPoint p[2] = { { "a", 1, false, NULL }, { "b", 2, true, "a" } };
    g_autoptr(GTimeZone) utc = g_time_zone_new_utc();
    g_autofree vmrpRetentionDecision *d = NULL;
    g_autofree vmrpRetentionDecision *e = NULL;
    vmrpRetention all = { { 0 }, true };
    vmrpRetention r = retention(1, 0, 0, 0, 0, 0);

    CU_ASSERT_TRUE_FATAL(vmrpRetentionApply(&all, p, 2, utc, &d, NULL));
    CU_ASSERT_TRUE(d[0].keep && g_str_equal(d[0].reason, "keep-all"));
    CU_ASSERT_TRUE(d[1].keep && g_str_equal(d[1].reason, "protected"));
    CU_ASSERT_TRUE_FATAL(vmrpRetentionApply(&r, NULL, 0, utc, &e, NULL));
    CU_ASSERT_PTR_NOT_NULL(e);
}

static void
testChains(void)
{
    /* full f1 <- i1 <- i2 <- i3, then a new full f2 <- j1 */
    vmrpRetentionPoint p[] = {
        { "f1", 100, false, NULL },
        { "i1", 200, false, "f1" },
        { "i2", 300, false, "i1" },
        { "i3", 400, false, "i2" },
        { "f2", 500, false, NULL },
        { "j1", 600, false, "f2" },
    };
    g_autoptr(GTimeZone) utc = g_time_zone_new_utc();
    g_autofree vmrpRetentionDecision *d = NULL;
    g_autofree vmrpRetentionDecision *d2 = NULL;
    g_autofree vmrpRetentionDecision *d3 = NULL;
    vmrpRetention r = retention(1, 0, 0, 0, 0, 0);
    guint len = 99;

    /* keep j1: f2 is removed but merged into j1; the old chain just goes */
    CU_ASSERT_TRUE_FATAL(vmrpRetentionApply(&r, p, 6, utc, &d, NULL));
    CU_ASSERT_TRUE(d[5].keep);
    CU_ASSERT_TRUE(!d[4].keep && d[4].merge && g_str_equal(d[4].needed_by, "j1"));
    CU_ASSERT_TRUE(!d[3].keep && !d[3].merge && d[3].needed_by == NULL);
    CU_ASSERT_TRUE(!d[0].keep && !d[0].merge);

    /* a protected increment keeps its whole chain restorable */
    p[2].protected = true;
    CU_ASSERT_TRUE_FATAL(vmrpRetentionApply(&r, p, 6, utc, &d2, NULL));
    CU_ASSERT_TRUE(d2[2].keep && g_str_equal(d2[2].reason, "protected"));
    CU_ASSERT_TRUE(!d2[1].keep && d2[1].merge && g_str_equal(d2[1].needed_by, "i2"));
    CU_ASSERT_TRUE(!d2[0].keep && d2[0].merge && g_str_equal(d2[0].needed_by, "i2"));
    CU_ASSERT_TRUE(!d2[3].keep && !d2[3].merge);
    p[2].protected = false;

    /* a kept full stops the walk: nothing above it */
    r = retention(0, 0, 0, 0, 0, 0);
    r.keep[VMRP_RETENTION_KEEP_LAST] = 3;
    CU_ASSERT_TRUE_FATAL(vmrpRetentionApply(&r, p, 6, utc, &d3, NULL));
    CU_ASSERT_TRUE(d3[3].keep && d3[4].keep && d3[5].keep);
    CU_ASSERT_TRUE(!d3[2].keep && d3[2].merge && g_str_equal(d3[2].needed_by, "i3"));
    CU_ASSERT_TRUE(!d3[0].keep && d3[0].merge && g_str_equal(d3[0].needed_by, "i3"));

    CU_ASSERT_TRUE(vmrpRetentionChainLength(p, 6, "i3", &len, NULL));
    CU_ASSERT_EQUAL(len, 3);
    CU_ASSERT_TRUE(vmrpRetentionChainLength(p, 6, "f2", &len, NULL));
    CU_ASSERT_EQUAL(len, 0);
    CU_ASSERT_TRUE(vmrpRetentionChainLength(p, 6, "j1", &len, NULL));
    CU_ASSERT_EQUAL(len, 1);
    len = 99;
    CU_ASSERT_FALSE(vmrpRetentionChainLength(p, 6, "nope", &len, NULL));
    CU_ASSERT_FALSE(vmrpRetentionChainLength(p, 6, NULL, &len, NULL));
    CU_ASSERT_EQUAL(len, 99);
}

/* ---- refused input ----------------------------------------------------- */

static void
assertOneLineError(const GError *error, const char *needle)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    CU_ASSERT_PTR_NULL(strchr(error->message, '\n'));
    if (needle && !strstr(error->message, needle))
        fprintf(stderr, "\nerror '%s' lacks '%s'\n", error->message, needle);
    CU_ASSERT_TRUE(needle == NULL || strstr(error->message, needle) != NULL);
}

static void
testValidate(void)
{
    static const struct {
        vmrpRetention r;
        const char *needle;
    } bad[] = {
        { { { -1, 0, 0, 0, 0, 0 }, false }, "keep-last -1" },
        { { { 0, 0, -3, 5, 0, 0 }, false }, "keep-daily -3" },
        { { { 0, 0, 0, 0, 0, VMRP_RETENTION_COUNT_MAX + 1 }, false }, "keep-yearly" },
        { { { 0, 0, 0, 0, 0, 0 }, false }, "keeps no point" },
        { { { 0, 0, 7, 0, 0, 0 }, true }, "keep-all conflicts with keep-daily" },
    };
    vmrpRetentionPoint p[1] = { { "a", 1, false, NULL } };
    g_autoptr(GTimeZone) utc = g_time_zone_new_utc();
    vmrpRetentionDecision *d = (vmrpRetentionDecision *)&d;
    vmrpRetention good = { { 0, 0, 0, 0, 0, VMRP_RETENTION_COUNT_MAX }, false };
    vmrpRetention all = { { 0 }, true };
    vmrpRetentionRule rule = VMRP_RETENTION_RULE_LAST;
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GError) error2 = NULL;

        CU_ASSERT_FALSE(vmrpRetentionValidate(&bad[i].r, &error));
        assertOneLineError(error, bad[i].needle);
        CU_ASSERT_FALSE(vmrpRetentionApply(&bad[i].r, p, 1, utc, &d, &error2));
        CU_ASSERT_PTR_NOT_NULL(error2);
        CU_ASSERT_PTR_EQUAL(d, (vmrpRetentionDecision *)&d);
    }
    CU_ASSERT_TRUE(vmrpRetentionValidate(&good, NULL));
    CU_ASSERT_TRUE(vmrpRetentionValidate(&all, NULL));

    for (i = 0; i < VMRP_RETENTION_RULE_LAST; i++) {
        CU_ASSERT_TRUE(vmrpRetentionRuleFromString(vmrpRetentionRuleToString(i), &rule, NULL));
        CU_ASSERT_EQUAL(rule, i);
    }
    rule = VMRP_RETENTION_RULE_LAST;
    CU_ASSERT_FALSE(vmrpRetentionRuleFromString("keep-dayly", &rule, NULL));
    CU_ASSERT_FALSE(vmrpRetentionRuleFromString(NULL, &rule, NULL));
    CU_ASSERT_EQUAL(rule, VMRP_RETENTION_RULE_LAST);
    CU_ASSERT_STRING_EQUAL(vmrpRetentionRuleToString(VMRP_RETENTION_RULE_LAST), "unknown");
}

static void
testBadPoints(void)
{
    static const struct {
        vmrpRetentionPoint p[3];
        const char *needle;
    } bad[] = {
        { { { "a", 1, false, NULL }, { "a", 2, false, NULL }, { "c", 3, false, NULL } },
          "'a': the id is given twice" },
        { { { "a", 1, false, NULL }, { "", 2, false, NULL }, { "c", 3, false, NULL } },
          "empty id" },
        { { { "a", 1, false, NULL }, { NULL, 2, false, NULL }, { "c", 3, false, NULL } },
          "empty id" },
        { { { "a", 1, false, NULL }, { "b", 2, false, "x\ny" }, { "c", 3, false, NULL } },
          "parent 'x\\ny' is not among" },
        { { { "a", 1, false, "a" }, { "b", 2, false, NULL }, { "c", 3, false, NULL } },
          "cycle" },
        { { { "a", 1, false, "c" }, { "b", 2, false, "a" }, { "c", 3, false, "b" } },
          "cycle" },
        { { { "a", 1, false, NULL }, { "b", G_MAXINT64, false, NULL }, { "c", 3, false, NULL } },
          "outside the years" },
        { { { "a", G_MININT64, false, NULL }, { "b", 2, false, NULL }, { "c", 3, false, NULL } },
          "outside the years" },
        { { { "a", 1, false, NULL }, { "b", 253402300799, false, NULL }, { "c", 3, false, NULL } },
          "outside the years" },
    };
    g_autoptr(GTimeZone) berlin = zone("Europe/Berlin");
    vmrpRetention r = retention(1, 0, 0, 0, 0, 0);
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        vmrpRetentionDecision *d = NULL;
        g_autoptr(GError) error = NULL;

        CU_ASSERT_FALSE(vmrpRetentionApply(&r, bad[i].p, 3, berlin, &d, &error));
        CU_ASSERT_PTR_NULL(d);
        assertOneLineError(error, bad[i].needle);
    }
}

/* ---- the reference model ------------------------------------------------
 * Written from the documented rules, not from the implementation: local
 * calendar fields by explicit arithmetic on the zone's offset (days from the
 * civil date, ISO weeks from the week's Thursday), periods as text, and each
 * rule as set operations: among the points no earlier rule decided, neither
 * protected nor in a period an earlier rule already kept a point of, the
 * periods of the N newest are selected; the newest point of each selected
 * period is kept, the others in it removed; the rest is left to later rules.
 */

typedef struct {
    int year, month, day, hour, isoyear, isoweek;
} refCalendar;

static gint64
floorDiv(gint64 a, gint64 b)
{
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

/* days since 1970-01-01 -> civil date (proleptic Gregorian) */
static void
civilFromDays(gint64 z, int *y, int *m, int *d)
{
    gint64 era, doe, yoe, doy, mp;

    z += 719468;
    era = floorDiv(z, 146097);
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}

static gint64
daysFromCivil(int y, int m, int d)
{
    gint64 era, yoe, doy, doe;

    y -= m <= 2;
    era = floorDiv(y, 400);
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static refCalendar
refLocal(GTimeZone *tz, gint64 t)
{
    gint interval = g_time_zone_find_interval(tz, G_TIME_TYPE_UNIVERSAL, t);
    gint64 local = t + g_time_zone_get_offset(tz, interval);
    gint64 days = floorDiv(local, 86400);
    gint64 weekday = ((days + 3) % 7 + 7) % 7;     /* 1970-01-01 was a Thursday: Mon=0 */
    gint64 thursday = days - weekday + 3;
    refCalendar c;
    int ty, tm, td;

    civilFromDays(days, &c.year, &c.month, &c.day);
    c.hour = (local - days * 86400) / 3600;
    civilFromDays(thursday, &ty, &tm, &td);
    c.isoyear = ty;
    c.isoweek = (thursday - daysFromCivil(ty, 1, 1)) / 7 + 1;
    return c;
}

static char *
refPeriod(const refCalendar *c, int rule, size_t index)
{
    switch (rule) {
    case VMRP_RETENTION_KEEP_LAST:
        return g_strdup_printf("point %zu", index);
    case VMRP_RETENTION_KEEP_HOURLY:
        return g_strdup_printf("%04d-%02d-%02d %02d", c->year, c->month, c->day, c->hour);
    case VMRP_RETENTION_KEEP_DAILY:
        return g_strdup_printf("%04d-%02d-%02d", c->year, c->month, c->day);
    case VMRP_RETENTION_KEEP_WEEKLY:
        return g_strdup_printf("%04d-W%02d", c->isoyear, c->isoweek);
    case VMRP_RETENTION_KEEP_MONTHLY:
        return g_strdup_printf("%04d-%02d", c->year, c->month);
    default:
        return g_strdup_printf("%04d", c->year);
    }
}

static const vmrpRetentionPoint *refPoints;

static gint
refNewestFirst(gconstpointer a, gconstpointer b)
{
    const vmrpRetentionPoint *pa = &refPoints[*(const size_t *)a];
    const vmrpRetentionPoint *pb = &refPoints[*(const size_t *)b];

    if (pa->time != pb->time)
        return pa->time < pb->time ? 1 : -1;
    return strcmp(pb->id, pa->id);
}

/* The periods of each point under each rule (computed once per timeline
 * and zone: element i is a GStrv indexed by rule). */
static GPtrArray *
refPeriods(const vmrpRetentionPoint *p, size_t n, GTimeZone *tz)
{
    GPtrArray *periods = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
    size_t i;
    int rule;

    for (i = 0; i < n; i++) {
        refCalendar c = refLocal(tz, p[i].time);
        GStrv keys = g_new0(char *, VMRP_RETENTION_RULE_LAST + 1);

        for (rule = 0; rule < VMRP_RETENTION_RULE_LAST; rule++)
            keys[rule] = refPeriod(&c, rule, i);
        g_ptr_array_add(periods, keys);
    }
    return periods;
}

/* kept[i]: -1 removed, else the rule (or VMRP_RETENTION_RULE_LAST: protected) */
static int *
refModel(const vmrpRetention *r, const vmrpRetentionPoint *p, size_t n, GPtrArray *periods)
{
    int *kept = g_new(int, n + 1);
    g_autofree bool *decided = g_new0(bool, n + 1);
    g_autofree size_t *order = g_new(size_t, n + 1);
    size_t i;
    int rule;

    for (i = 0; i < n; i++) {
        order[i] = i;
        kept[i] = p[i].protected ? VMRP_RETENTION_RULE_LAST : -1;
        decided[i] = p[i].protected;
    }
    refPoints = p;
    qsort(order, n, sizeof(*order), refNewestFirst);

    for (rule = 0; rule < VMRP_RETENTION_RULE_LAST && !r->keep_all; rule++) {
        g_autoptr(GHashTable) covered = g_hash_table_new(g_str_hash, g_str_equal);
        g_autoptr(GHashTable) selected = g_hash_table_new(g_str_hash, g_str_equal);
        g_autoptr(GPtrArray) candidates = g_ptr_array_new();

        if (r->keep[rule] == 0)
            continue;
        for (i = 0; i < n; i++) {
            if (kept[i] >= 0 && kept[i] < VMRP_RETENTION_RULE_LAST)
                g_hash_table_add(covered, ((GStrv)periods->pdata[i])[rule]);
        }
        for (i = 0; i < n; i++) {
            size_t k = order[i];
            char *key = ((GStrv)periods->pdata[k])[rule];

            if (!decided[k] && !g_hash_table_contains(covered, key))
                g_ptr_array_add(candidates, GSIZE_TO_POINTER(k));
        }
        /* the N newest periods of the candidates */
        for (i = 0; i < candidates->len; i++) {
            size_t k = GPOINTER_TO_SIZE(candidates->pdata[i]);
            char *key = ((GStrv)periods->pdata[k])[rule];

            if (g_hash_table_size(selected) < (guint)r->keep[rule])
                g_hash_table_add(selected, key);
        }
        /* the newest candidate of each selected period stays, the others go */
        {
            g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);

            for (i = 0; i < candidates->len; i++) {
                size_t k = GPOINTER_TO_SIZE(candidates->pdata[i]);
                char *key = ((GStrv)periods->pdata[k])[rule];

                if (!g_hash_table_contains(selected, key))
                    continue;
                decided[k] = true;
                if (!g_hash_table_contains(seen, key)) {
                    g_hash_table_add(seen, key);
                    kept[k] = rule;
                }
            }
        }
    }
    if (r->keep_all) {
        for (i = 0; i < n; i++)
            kept[i] = kept[i] < 0 ? 0 : kept[i];
    }
    return kept;
}

/* Compares vmrpRetentionApply with the model, decision by decision, and
 * checks the chain rule by walking every kept point's ancestors. */
static void
checkAgainstModel(const vmrpRetention *r,
                  const vmrpRetentionPoint *p,
                  size_t n,
                  GTimeZone *tz,
                  GPtrArray *periods,
                  size_t *ret_kept)
{
    g_autofree vmrpRetentionDecision *d = NULL;
    g_autofree int *model = refModel(r, p, n, periods);
    g_autoptr(GHashTable) index = g_hash_table_new(g_str_hash, g_str_equal);
    g_autofree bool *needed = g_new0(bool, n + 1);
    g_autoptr(GError) error = NULL;
    size_t mismatches = 0;
    size_t bad_merges = 0;
    size_t kept = 0;
    size_t i;

    CU_ASSERT_TRUE_FATAL(vmrpRetentionApply(r, p, n, tz, &d, &error));
    for (i = 0; i < n; i++)
        g_hash_table_insert(index, (gpointer)p[i].id, GSIZE_TO_POINTER(i));

    for (i = 0; i < n; i++) {
        const char *expected = model[i] < 0 ? "remove" :
                               model[i] == VMRP_RETENTION_RULE_LAST ? "protected" :
                               r->keep_all ? "keep-all" : vmrpRetentionRuleToString(model[i]);

        if (d[i].keep != (model[i] >= 0) || !g_str_equal(d[i].reason, expected)) {
            if (mismatches++ < 5)
                fprintf(stderr, "\npoint %s (%" G_GINT64_FORMAT "): %s, model says %s\n",
                        p[i].id, p[i].time, d[i].reason, expected);
        }
        kept += d[i].keep;
        if (!d[i].keep)
            continue;
        /* everything a kept point depends on is needed */
        for (const char *a = p[i].parent; a; ) {
            size_t j = GPOINTER_TO_SIZE(g_hash_table_lookup(index, a));

            needed[j] = true;
            a = p[j].parent;
        }
    }
    CU_ASSERT_EQUAL(mismatches, 0);

    /* counted, not asserted one by one: thousands of points */
    for (i = 0; i < n; i++) {
        bool should_merge = needed[i] && model[i] < 0;
        bool ok = d[i].merge == should_merge && d[i].merge == (d[i].needed_by != NULL);

        if (ok && d[i].merge) {
            /* needed_by is kept and reaches i through removed points only */
            size_t k = GPOINTER_TO_SIZE(g_hash_table_lookup(index, d[i].needed_by));
            const char *a = p[k].parent;

            ok = d[k].keep;
            while (a && !g_str_equal(a, p[i].id)) {
                size_t j = GPOINTER_TO_SIZE(g_hash_table_lookup(index, a));

                ok = ok && !d[j].keep;
                a = p[j].parent;
            }
            ok = ok && a != NULL;
        }
        if (!ok && bad_merges++ < 5)
            fprintf(stderr, "\npoint %s: merge %d needed_by %s, model: merge %d\n",
                    p[i].id, d[i].merge, d[i].needed_by ? d[i].needed_by : "-", should_merge);
    }
    CU_ASSERT_EQUAL(bad_merges, 0);
    if (ret_kept)
        *ret_kept = kept;
}

/* A timeline: @n points from @start, @gap seconds apart plus up to @jitter
 * more (random); a new full every @chain points (0: only fulls), randomly
 * more often when @random_chains; every @protect_every-th point protected
 * (0: none).  ids are "p<number>", numbered in time order but given in a
 * shuffled order. */
typedef struct {
    vmrpRetentionPoint *points;
    GStrv ids;
    size_t n;
} timeline;

static void
timelineClear(timeline *t)
{
    g_free(t->points);
    g_strfreev(t->ids);
}

static timeline
timelineNew(GRand *rand, size_t n, gint64 start, gint64 gap, gint64 jitter,
            guint chain, bool random_chains, guint protect_every)
{
    timeline t = { g_new0(vmrpRetentionPoint, n + 1), g_new0(char *, n + 1), n };
    g_autofree size_t *perm = g_new(size_t, n + 1);
    gint64 now = start;
    size_t i;

    for (i = 0; i < n; i++) {
        t.ids[i] = g_strdup_printf("p%06zu", i);
        perm[i] = i;
    }
    /* shuffle where each point goes, so input order means nothing */
    for (i = n; i > 1; i--) {
        size_t j = g_rand_int_range(rand, 0, i);
        size_t tmp = perm[i - 1];

        perm[i - 1] = perm[j];
        perm[j] = tmp;
    }
    for (i = 0; i < n; i++) {
        vmrpRetentionPoint *pt = &t.points[perm[i]];
        bool full = chain == 0 || i % chain == 0 ||
                    (random_chains && g_rand_int_range(rand, 0, 20) == 0);

        pt->id = t.ids[i];
        pt->time = now;
        pt->protected = protect_every && g_rand_int_range(rand, 0, protect_every) == 0;
        pt->parent = full || i == 0 ? NULL : t.ids[i - 1];
        now += gap + (jitter ? g_rand_int_range(rand, 0, jitter + 1) : 0);
    }
    return t;
}

static const vmrpRetention modelRetentions[] = {
    { { 3, 0, 13, 8, 11, 9 }, false },    /* Proxmox VE's documented example */
    { { 0, 48, 0, 0, 0, 0 }, false },
    { { 0, 0, 7, 4, 6, 0 }, false },
    { { 1, 0, 0, 0, 0, 0 }, false },
    { { 0, 0, 0, 60, 0, 0 }, false },
    { { 0, 0, 0, 0, 100, 100 }, false },
    { { 5, 5, 5, 5, 5, 5 }, false },
    { { 0, 24, 30, 0, 12, 2 }, false },
    { { 0 }, true },
};

/* A point every hour for 3 years, chains of 24, some protected. */
static void
testModelHourlyThreeYears(void)
{
    static const char *const zones[] = { "UTC", "Europe/Berlin", "America/New_York" };
    g_autoptr(GRand) rand = g_rand_new_with_seed(1);
    timeline t = timelineNew(rand, 3 * 8760, isoTime("2022-01-01T00:17:00Z"), 3600, 0,
                             24, false, 500);
    size_t z, i;

    for (z = 0; z < G_N_ELEMENTS(zones); z++) {
        g_autoptr(GTimeZone) tz = zone(zones[z]);
        g_autoptr(GPtrArray) periods = refPeriods(t.points, t.n, tz);

        for (i = 0; i < G_N_ELEMENTS(modelRetentions); i++) {
            if (z > 0 && i % 2 == 1)
                continue;           /* the whole table once, half of it in each zone */
            checkAgainstModel(&modelRetentions[i], t.points, t.n, tz, periods, NULL);
        }
    }
    /* the documented example on that timeline, counted: 3 last, 13 daily,
     * 8 weekly, 11 monthly, 9 yearly, less what falls into one another */
    {
        g_autoptr(GTimeZone) utc = g_time_zone_new_utc();
        g_autoptr(GPtrArray) periods = refPeriods(t.points, t.n, utc);
        size_t kept = 0, protected = 0;

        for (i = 0; i < t.n; i++)
            protected += t.points[i].protected;
        checkAgainstModel(&modelRetentions[0], t.points, t.n, utc, periods, &kept);
        /* 2022-01-01 to 2024-12-31: the last 3 hours; 13 days back to
         * 12-18; 8 weeks older than 2024-W51 (12-16 to 12-22); 11 months
         * older than October 2024; of the years, only 2022 is left */
        CU_ASSERT_EQUAL(kept, protected + 3 + 13 + 8 + 11 + 1);
    }
    timelineClear(&t);
}

/* Irregular gaps (a minute to three days), equal times, random chains,
 * 1 in 50 protected, over several zones with odd offsets and DST rules. */
static void
testModelIrregular(void)
{
    static const char *const zones[] = {
        "UTC", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Apia",
        "America/St_Johns",
    };
    g_autoptr(GRand) rand = g_rand_new_with_seed(42);
    size_t z, i;

    for (z = 0; z < G_N_ELEMENTS(zones); z++) {
        g_autoptr(GTimeZone) tz = zone(zones[z]);
        /* Apia skipped 2011-12-30: start there */
        gint64 start = isoTime(z == 4 ? "2010-06-01T00:00:00Z" : "2019-06-01T05:00:00Z");
        timeline t = timelineNew(rand, 4000, start, 60, 3 * 86400, 30, true, 50);
        timeline dense = timelineNew(rand, 3000, start + 280 * 86400, 0, 1200, 10, true, 0);
        g_autoptr(GPtrArray) periods = refPeriods(t.points, t.n, tz);
        g_autoptr(GPtrArray) dense_periods = refPeriods(dense.points, dense.n, tz);

        for (i = 0; i < G_N_ELEMENTS(modelRetentions); i++) {
            checkAgainstModel(&modelRetentions[i], t.points, t.n, tz, periods, NULL);
            checkAgainstModel(&modelRetentions[i], dense.points, dense.n, tz, dense_periods,
                              NULL);
        }
        /* random counts */
        for (i = 0; i < 4; i++) {
            vmrpRetention r = { { 0 }, false };
            int rule;

            for (rule = 0; rule < VMRP_RETENTION_RULE_LAST; rule++)
                r.keep[rule] = g_rand_int_range(rand, 0, 3) ? 0 : g_rand_int_range(rand, 1, 40);
            if (!vmrpRetentionValidate(&r, NULL))
                r.keep[VMRP_RETENTION_KEEP_MONTHLY] = 1;
            checkAgainstModel(&r, t.points, t.n, tz, periods, NULL);
        }
        timelineClear(&t);
        timelineClear(&dense);
    }
}

/* The model's own calendar, checked against known dates, so that a bug in
 * both cannot hide. */
static void
testModelCalendar(void)
{
    g_autoptr(GTimeZone) utc = g_time_zone_new_utc();
    refCalendar c = refLocal(utc, isoTime("2021-01-03T23:59:59Z"));

    CU_ASSERT_EQUAL(c.year, 2021);
    CU_ASSERT_EQUAL(c.isoyear, 2020);
    CU_ASSERT_EQUAL(c.isoweek, 53);
    c = refLocal(utc, isoTime("2024-12-30T00:00:00Z"));
    CU_ASSERT_EQUAL(c.isoyear, 2025);
    CU_ASSERT_EQUAL(c.isoweek, 1);
    c = refLocal(utc, isoTime("2024-02-29T13:00:00Z"));
    CU_ASSERT_TRUE(c.month == 2 && c.day == 29 && c.hour == 13 && c.isoweek == 9);
    c = refLocal(utc, isoTime("1969-12-31T23:00:00Z"));
    CU_ASSERT_TRUE(c.year == 1969 && c.month == 12 && c.day == 31 && c.hour == 23);
}

static const vmrpTestCase cases[] = {
    VMRP_TEST(testProxmoxHourly),
    VMRP_TEST(testProxmoxSimple2),
    VMRP_TEST(testProxmoxSimple),
    VMRP_TEST(testIsoWeek53),
    VMRP_TEST(testYearBoundaryTimeZone),
    VMRP_TEST(testDstBerlin),
    VMRP_TEST(testProtected),
    VMRP_TEST(testKeepAllAndEmpty),
    VMRP_TEST(testChains),
    VMRP_TEST(testValidate),
    VMRP_TEST(testBadPoints),
    VMRP_TEST(testModelCalendar),
    VMRP_TEST(testModelHourlyThreeYears),
    VMRP_TEST(testModelIrregular),
    { NULL, NULL }
};

int
main(void)
{
    return vmrpTestMain("retention", cases, NULL, NULL);
}
