/*
 * test-schedule.c: schedule grammar and due times, across time zone
 * changes, against a minute-by-minute simulation of the wall clock
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "vmrp-test.h"
#include "vmrp-schedule.h"

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

    g_assert(tz);
    return tz;
}

static vmrpSchedule
parsed(const char *text)
{
    vmrpSchedule s = { VMRP_SCHEDULE_LAST };
    g_autoptr(GError) error = NULL;

    if (!vmrpScheduleParse(text, &s, &error))
        fprintf(stderr, "\n%s\n", error->message);
    g_assert(s.kind != VMRP_SCHEDULE_LAST);
    return s;
}

static void
testParseGood(void)
{
    static const char *const good[] = {
        "none", "every 1m", "every 5m", "every 15m", "every 90m", "every 1440m",
        "every 1h", "every 6h", "every 24h", "daily 00:00", "daily 02:30", "daily 23:59", NULL
    };
    vmrpSchedule s;
    size_t i;

    for (i = 0; good[i]; i++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *text = NULL;

        CU_ASSERT_TRUE(vmrpScheduleParse(good[i], &s, &error));
        CU_ASSERT_PTR_NULL(error);
        CU_ASSERT_TRUE(vmrpScheduleValidate(&s, NULL));
        text = vmrpScheduleFormat(&s);
        CU_ASSERT_STRING_EQUAL(text, good[i]);
    }
    s = parsed("every 15m");
    CU_ASSERT_TRUE(s.kind == VMRP_SCHEDULE_MINUTES && s.every == 15);
    s = parsed("every 6h");
    CU_ASSERT_TRUE(s.kind == VMRP_SCHEDULE_HOURS && s.every == 6);
    s = parsed("daily 02:30");
    CU_ASSERT_TRUE(s.kind == VMRP_SCHEDULE_DAILY && s.hour == 2 && s.minute == 30);
    s = parsed("none");
    CU_ASSERT_EQUAL(s.kind, VMRP_SCHEDULE_NONE);
}

static void
testParseBad(void)
{
    static const struct {
        const char *text;
        const char *needle;
    } bad[] = {
        { "", "empty schedule" },
        { "every", "expected 'every Nm'" },
        { "every ", "positive whole number" },
        { "every 15", "missing unit" },
        { "every 15s", "unknown unit 's'" },
        { "every 15 m", "unknown unit ' m'" },
        { "every 15M", "unknown unit 'M'" },
        { "every 15min", "unknown unit 'min'" },
        { "every 1.5h", "unknown unit '.5h'" },
        { "every 0m", "at least 1" },
        { "every 0h", "at least 1" },
        { "every -5m", "positive whole number" },
        { "every +5m", "positive whole number" },
        { "every 015m", "leading zero" },
        { "every 7m", "divide a day" },
        { "every 7h", "divide a day" },
        { "every 25h", "divide a day" },
        { "every 48h", "divide a day" },
        { "every 2880m", "divide a day" },
        { "every 99999999999999999999999m", "divide a day" },
        { "every 4294967296m", "divide a day" },
        { "every 15m\n", "unknown unit 'm\\n'" },
        { "daily", "expected 'every Nm'" },
        { "daily ", "HH:MM" },
        { "daily 24:00", "hour 24 is out of range" },
        { "daily 99:00", "hour 99 is out of range" },
        { "daily 02:60", "minute 60 is out of range" },
        { "daily 2:30", "HH:MM" },
        { "daily 02:30:00", "HH:MM" },
        { "daily 02.30", "HH:MM" },
        { "daily 0a:30", "HH:MM" },
        { "daily -1:30", "HH:MM" },
        { "daily  02:30", "HH:MM" },
        { "daily 02:30 ", "HH:MM" },
        { " daily 02:30", "expected 'every Nm'" },
        { "Daily 02:30", "expected 'every Nm'" },
        { "hourly", "expected 'every Nm'" },
        { "none ", "expected 'every Nm'" },
        { "nonsense\xff\n", "nonsense\\377\\n" },
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        vmrpSchedule s = { VMRP_SCHEDULE_LAST, 77, 77, 77 };
        g_autoptr(GError) error = NULL;

        CU_ASSERT_FALSE(vmrpScheduleParse(bad[i].text, &s, &error));
        CU_ASSERT_EQUAL(s.kind, VMRP_SCHEDULE_LAST);    /* untouched */
        CU_ASSERT_EQUAL(s.every, 77);
        CU_ASSERT_PTR_NOT_NULL_FATAL(error);
        CU_ASSERT_PTR_NULL(strchr(error->message, '\n'));
        if (!strstr(error->message, bad[i].needle))
            fprintf(stderr, "\n'%s': error '%s' lacks '%s'\n", bad[i].text, error->message,
                    bad[i].needle);
        CU_ASSERT_PTR_NOT_NULL(strstr(error->message, bad[i].needle));
    }
    CU_ASSERT_FALSE(vmrpScheduleParse(NULL, &(vmrpSchedule){ 0 }, NULL));
}

static void
testValidateFilled(void)
{
    static const vmrpSchedule bad[] = {
        { VMRP_SCHEDULE_MINUTES, 0, 0, 0 },
        { VMRP_SCHEDULE_MINUTES, 7, 0, 0 },
        { VMRP_SCHEDULE_MINUTES, 2880, 0, 0 },
        { VMRP_SCHEDULE_HOURS, 5, 0, 0 },
        { VMRP_SCHEDULE_HOURS, 48, 0, 0 },
        { VMRP_SCHEDULE_DAILY, 0, 24, 0 },
        { VMRP_SCHEDULE_DAILY, 0, 0, 60 },
        { VMRP_SCHEDULE_LAST, 0, 0, 0 },
        { (vmrpScheduleKind)-1, 0, 0, 0 },
    };
    g_autoptr(GTimeZone) utc = g_time_zone_new_utc();
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;

        CU_ASSERT_FALSE(vmrpScheduleValidate(&bad[i], &error));
        CU_ASSERT_PTR_NOT_NULL(error);
        /* and nothing is ever due for them */
        CU_ASSERT_EQUAL(vmrpScheduleNext(&bad[i], utc, 0), G_MAXINT64);
        CU_ASSERT_FALSE(vmrpScheduleIsDue(&bad[i], utc, VMRP_SCHEDULE_NEVER, 0));
    }
}

#define ASSERT_NEXT(sched, tz, after, expected) \
    do { \
        vmrpSchedule s_ = parsed(sched); \
        gint64 got_ = vmrpScheduleNext(&s_, tz, isoTime(after)); \
        gint64 want_ = isoTime(expected); \
        if (got_ != want_) { \
            g_autoptr(GDateTime) g_ = g_date_time_new_from_unix_utc(got_); \
            g_autofree char *gs_ = g_ ? g_date_time_format_iso8601(g_) : g_strdup("-"); \
            fprintf(stderr, "\n%s:%d: %s after %s: %s, expected %s\n", __FILE__, __LINE__, \
                    sched, after, gs_, expected); \
        } \
        CU_ASSERT_EQUAL(got_, want_); \
    } while (0)

static void
testNextUtc(void)
{
    g_autoptr(GTimeZone) utc = g_time_zone_new_utc();
    g_autoptr(GTimeZone) kolkata = zone("Asia/Kolkata");
    vmrpSchedule none = { VMRP_SCHEDULE_NONE };

    ASSERT_NEXT("every 15m", utc, "2024-05-01T10:07:30Z", "2024-05-01T10:15:00Z");
    /* strictly after */
    ASSERT_NEXT("every 15m", utc, "2024-05-01T10:15:00Z", "2024-05-01T10:30:00Z");
    ASSERT_NEXT("every 15m", utc, "2024-05-01T23:59:59Z", "2024-05-02T00:00:00Z");
    ASSERT_NEXT("every 90m", utc, "2024-05-01T22:30:00Z", "2024-05-02T00:00:00Z");
    ASSERT_NEXT("every 6h", utc, "2024-05-01T05:59:59Z", "2024-05-01T06:00:00Z");
    ASSERT_NEXT("every 6h", utc, "2024-12-31T18:00:00Z", "2025-01-01T00:00:00Z");
    ASSERT_NEXT("every 1440m", utc, "2024-02-28T12:00:00Z", "2024-02-29T00:00:00Z");
    ASSERT_NEXT("daily 02:30", utc, "2024-05-01T02:29:59Z", "2024-05-01T02:30:00Z");
    ASSERT_NEXT("daily 02:30", utc, "2024-05-01T02:30:00Z", "2024-05-02T02:30:00Z");
    ASSERT_NEXT("daily 00:00", utc, "2024-12-31T00:00:00Z", "2025-01-01T00:00:00Z");
    /* +05:30: slots are wall-clock times there */
    ASSERT_NEXT("every 6h", kolkata, "2024-05-01T00:00:00Z", "2024-05-01T00:30:00Z");
    ASSERT_NEXT("daily 02:30", kolkata, "2024-05-01T00:00:00Z", "2024-05-01T21:00:00Z");
    CU_ASSERT_EQUAL(vmrpScheduleNext(&none, utc, 0), G_MAXINT64);
}

static void
testNextDst(void)
{
    g_autoptr(GTimeZone) berlin = zone("Europe/Berlin");
    g_autoptr(GTimeZone) newyork = zone("America/New_York");

    /* spring forward, 2024-03-31 01:00Z: 02:00 CET -> 03:00 CEST; 02:30 does
     * not exist and is due at 03:00, the first instant after it */
    ASSERT_NEXT("daily 02:30", berlin, "2024-03-30T12:00:00Z", "2024-03-31T01:00:00Z");
    ASSERT_NEXT("daily 02:30", berlin, "2024-03-31T01:00:00Z", "2024-04-01T00:30:00Z");
    ASSERT_NEXT("daily 02:00", berlin, "2024-03-30T12:00:00Z", "2024-03-31T01:00:00Z");
    ASSERT_NEXT("daily 03:00", berlin, "2024-03-30T12:00:00Z", "2024-03-31T01:00:00Z");
    ASSERT_NEXT("daily 03:00", berlin, "2024-03-31T01:00:00Z", "2024-04-01T01:00:00Z");
    ASSERT_NEXT("daily 01:59", berlin, "2024-03-30T12:00:00Z", "2024-03-31T00:59:00Z");
    /* the four skipped quarters and 03:00 are one run */
    ASSERT_NEXT("every 15m", berlin, "2024-03-31T00:45:00Z", "2024-03-31T01:00:00Z");
    ASSERT_NEXT("every 15m", berlin, "2024-03-31T01:00:00Z", "2024-03-31T01:15:00Z");
    ASSERT_NEXT("every 1h", berlin, "2024-03-31T00:00:00Z", "2024-03-31T01:00:00Z");
    ASSERT_NEXT("every 6h", berlin, "2024-03-30T23:00:00Z", "2024-03-31T04:00:00Z");

    /* fall back, 2024-10-27 01:00Z: 03:00 CEST -> 02:00 CET; 02:30 comes
     * twice and runs once, the first time */
    ASSERT_NEXT("daily 02:30", berlin, "2024-10-26T12:00:00Z", "2024-10-27T00:30:00Z");
    ASSERT_NEXT("daily 02:30", berlin, "2024-10-27T00:30:00Z", "2024-10-28T01:30:00Z");
    ASSERT_NEXT("daily 02:30", berlin, "2024-10-27T01:10:00Z", "2024-10-28T01:30:00Z");
    /* 03:00 CEST is never shown (the clock goes to 02:00 CET): 03:00 CET */
    ASSERT_NEXT("daily 03:00", berlin, "2024-10-26T12:00:00Z", "2024-10-27T02:00:00Z");
    ASSERT_NEXT("every 15m", berlin, "2024-10-27T00:45:00Z", "2024-10-27T02:00:00Z");
    ASSERT_NEXT("every 15m", berlin, "2024-10-27T01:20:00Z", "2024-10-27T02:00:00Z");
    ASSERT_NEXT("every 1h", berlin, "2024-10-27T00:00:00Z", "2024-10-27T02:00:00Z");
    ASSERT_NEXT("every 6h", berlin, "2024-10-26T22:00:00Z", "2024-10-27T05:00:00Z");

    /* New York: 2024-03-10 07:00Z 02:00 EST -> 03:00 EDT; 2024-11-03 06:00Z
     * 02:00 EDT -> 01:00 EST */
    ASSERT_NEXT("daily 02:30", newyork, "2024-03-09T12:00:00Z", "2024-03-10T07:00:00Z");
    ASSERT_NEXT("daily 01:30", newyork, "2024-11-02T12:00:00Z", "2024-11-03T05:30:00Z");
    ASSERT_NEXT("daily 01:30", newyork, "2024-11-03T05:30:00Z", "2024-11-04T06:30:00Z");
}

/* A month of run-policies every minute in Berlin across a change: how many
 * points each schedule takes per local day. */
static void
testRunEveryMinute(void)
{
    static const struct {
        const char *sched;
        const char *day;
        guint points;
    } runs[] = {
        { "daily 02:30", "2024-03-31", 1 },
        { "daily 02:30", "2024-10-27", 1 },
        { "daily 02:30", "2024-03-30", 1 },
        { "every 15m", "2024-03-30", 96 },
        { "every 15m", "2024-03-31", 92 },      /* 02:00-02:45 never shown, 03:00 once */
        { "every 15m", "2024-10-27", 96 },      /* the repeated hour once */
        { "every 1h", "2024-03-31", 23 },
        { "every 1h", "2024-10-27", 24 },
    };
    g_autoptr(GTimeZone) berlin = zone("Europe/Berlin");
    size_t r;

    for (r = 0; r < G_N_ELEMENTS(runs); r++) {
        vmrpSchedule s = parsed(runs[r].sched);
        g_autofree char *start_iso = g_strdup_printf("%sT00:00:00+01:00", runs[r].day);
        gint64 start = isoTime(start_iso) - 86400;
        gint64 last = vmrpScheduleNext(&s, berlin, start) - 1;  /* just before a slot */
        guint points = 0;
        gint64 now;

        last = MIN(last, start);
        for (now = start; now < start + 3 * 86400; now += 60) {
            if (vmrpScheduleIsDue(&s, berlin, last, now)) {
                g_autoptr(GDateTime) utc = g_date_time_new_from_unix_utc(now);
                g_autoptr(GDateTime) local = g_date_time_to_timezone(utc, berlin);
                g_autofree char *day = g_date_time_format(local, "%Y-%m-%d");

                last = now;
                points += g_str_equal(day, runs[r].day);
            }
        }
        if (points != runs[r].points)
            fprintf(stderr, "\n%s on %s: %u points, expected %u\n", runs[r].sched,
                    runs[r].day, points, runs[r].points);
        CU_ASSERT_EQUAL(points, runs[r].points);
    }
}

static void
testIsDue(void)
{
    g_autoptr(GTimeZone) utc = g_time_zone_new_utc();
    vmrpSchedule daily = parsed("daily 02:30");
    vmrpSchedule none = parsed("none");
    gint64 slot = isoTime("2024-05-01T02:30:00Z");

    /* never ran: due at once */
    CU_ASSERT_TRUE(vmrpScheduleIsDue(&daily, utc, VMRP_SCHEDULE_NEVER, slot - 7200));
    CU_ASSERT_EQUAL(vmrpScheduleNextDue(&daily, utc, VMRP_SCHEDULE_NEVER, 1234), 1234);
    /* ran yesterday at the slot: due from today's slot on */
    CU_ASSERT_FALSE(vmrpScheduleIsDue(&daily, utc, slot - 86400, slot - 1));
    CU_ASSERT_TRUE(vmrpScheduleIsDue(&daily, utc, slot - 86400, slot));
    CU_ASSERT_EQUAL(vmrpScheduleNextDue(&daily, utc, slot - 86400, slot - 1), slot);
    /* ran a bit late (cron at :31): not again until tomorrow */
    CU_ASSERT_FALSE(vmrpScheduleIsDue(&daily, utc, slot + 60, slot + 86399));
    CU_ASSERT_TRUE(vmrpScheduleIsDue(&daily, utc, slot + 60, slot + 86400));
    /* a manual point after the slot counts as the run */
    CU_ASSERT_FALSE(vmrpScheduleIsDue(&daily, utc, slot + 3600, slot + 7200));
    /* three days missed: due, since the first missed slot */
    CU_ASSERT_TRUE(vmrpScheduleIsDue(&daily, utc, slot - 4 * 86400, slot + 60));
    CU_ASSERT_EQUAL(vmrpScheduleNextDue(&daily, utc, slot - 4 * 86400, slot + 60),
                    slot - 3 * 86400);
    /* a clock set back before the last run: nothing */
    CU_ASSERT_FALSE(vmrpScheduleIsDue(&daily, utc, slot, slot - 3 * 86400));
    /* none: never */
    CU_ASSERT_FALSE(vmrpScheduleIsDue(&none, utc, VMRP_SCHEDULE_NEVER, slot));
    CU_ASSERT_EQUAL(vmrpScheduleNextDue(&none, utc, slot, slot), G_MAXINT64);
    /* the ends of time */
    CU_ASSERT_EQUAL(vmrpScheduleNext(&daily, utc, G_MAXINT64), G_MAXINT64);
    CU_ASSERT_EQUAL(vmrpScheduleNext(&daily, utc, isoTime("9999-12-31T00:00:00Z")),
                    G_MAXINT64);
    CU_ASSERT_EQUAL(vmrpScheduleNext(&daily, utc, VMRP_SCHEDULE_NEVER),
                    isoTime("0001-01-01T02:30:00Z"));
}

/* ---- the reference: a simulated wall clock -----------------------------
 * Minute by minute, read the zone's clock (through GDateTime), remember the
 * latest time it has shown, and note a run at each minute in which that
 * latest time reaches or passes a slot it had not reached before.  Compared
 * with vmrpScheduleNext chained from the start, around every offset change
 * of a few zones and years (and Samoa's skipped day). */

static gint64
wallClock(GTimeZone *tz, gint64 t)
{
    g_autoptr(GDateTime) utc = g_date_time_new_from_unix_utc(t);
    g_autoptr(GDateTime) local = g_date_time_to_timezone(utc, tz);

    return t + g_date_time_get_utc_offset(local) / G_USEC_PER_SEC;
}

static void
simulateWindow(GTimeZone *tz, const vmrpSchedule *scheds, size_t nsched,
               gint64 from, gint64 to, guint *ret_mismatches)
{
    g_autofree gint64 *next = g_new(gint64, nsched);
    g_autofree gint64 *step = g_new(gint64, nsched);
    g_autofree gint64 *phase = g_new(gint64, nsched);
    gint64 shown = wallClock(tz, from);
    gint64 t;
    size_t k;

    for (k = 0; k < nsched; k++) {
        step[k] = scheds[k].kind == VMRP_SCHEDULE_MINUTES ? scheds[k].every * 60 :
                  scheds[k].kind == VMRP_SCHEDULE_HOURS ? scheds[k].every * 3600 : 86400;
        phase[k] = scheds[k].kind == VMRP_SCHEDULE_DAILY ?
                   scheds[k].hour * 3600 + scheds[k].minute * 60 : 0;
        next[k] = vmrpScheduleNext(&scheds[k], tz, from);
    }
    for (t = from + 60; t <= to; t += 60) {
        gint64 local = wallClock(tz, t);
        gint64 before = shown;

        shown = MAX(shown, local);
        for (k = 0; k < nsched; k++) {
            /* a slot in (before, shown]? */
            gint64 first = before + step[k] - (((before - phase[k]) % step[k]) + step[k]) %
                           step[k];
            bool due = first <= shown;
            bool said = next[k] == t;

            if (due != said) {
                if ((*ret_mismatches)++ < 5) {
                    g_autofree char *s = vmrpScheduleFormat(&scheds[k]);

                    fprintf(stderr, "\n%s in %s at %" G_GINT64_FORMAT ": simulated %d, "
                            "next %" G_GINT64_FORMAT "\n", s, g_time_zone_get_identifier(tz),
                            t, due, next[k]);
                }
            }
            if (due || said)
                next[k] = vmrpScheduleNext(&scheds[k], tz, t);
        }
    }
}

static void
testSimulatedClock(void)
{
    static const struct {
        const char *zone;
        const char *from;
        const char *to;
    } zones[] = {
        { "Europe/Berlin", "2023-01-01T00:00:00Z", "2025-12-31T00:00:00Z" },
        { "America/New_York", "2024-01-01T00:00:00Z", "2024-12-31T00:00:00Z" },
        { "Australia/Lord_Howe", "2024-01-01T00:00:00Z", "2024-12-31T00:00:00Z" },
        { "America/St_Johns", "2024-01-01T00:00:00Z", "2024-12-31T00:00:00Z" },
        { "Pacific/Apia", "2011-01-01T00:00:00Z", "2012-06-30T00:00:00Z" },
        { "Asia/Kolkata", "2024-01-01T00:00:00Z", "2024-01-20T00:00:00Z" },
    };
    static const char *const texts[] = {
        "every 1m", "every 15m", "every 90m", "every 1h", "every 3h", "every 24h",
        "daily 00:00", "daily 00:30", "daily 01:30", "daily 02:00", "daily 02:30",
        "daily 03:00", "daily 23:30",
    };
    vmrpSchedule scheds[G_N_ELEMENTS(texts)];
    guint mismatches = 0;
    guint windows = 0;
    size_t z, k;

    for (k = 0; k < G_N_ELEMENTS(texts); k++)
        scheds[k] = parsed(texts[k]);
    for (z = 0; z < G_N_ELEMENTS(zones); z++) {
        g_autoptr(GTimeZone) tz = zone(zones[z].zone);
        gint64 from = isoTime(zones[z].from);
        gint64 to = isoTime(zones[z].to);
        gint64 t;
        gint prev = g_time_zone_find_interval(tz, G_TIME_TYPE_UNIVERSAL, from);

        /* a window of two days around each change found by a 15-minute scan */
        for (t = from; t < to; t += 900) {
            gint iv = g_time_zone_find_interval(tz, G_TIME_TYPE_UNIVERSAL, t);

            if (iv == prev)
                continue;
            prev = iv;
            simulateWindow(tz, scheds, G_N_ELEMENTS(scheds), t - t % 60 - 86400, t + 86400,
                           &mismatches);
            windows++;
        }
        /* and one ordinary stretch */
        simulateWindow(tz, scheds, G_N_ELEMENTS(scheds), from, from + 2 * 86400,
                       &mismatches);
        windows++;
    }
    CU_ASSERT_EQUAL(mismatches, 0);
    /* Berlin 6, New York 2, Lord Howe 2, St Johns 2, Apia 3 (DST, the
     * skipped day, DST), plus one ordinary stretch each */
    CU_ASSERT_TRUE(windows >= 15 + G_N_ELEMENTS(zones));
}

static const vmrpTestCase cases[] = {
    VMRP_TEST(testParseGood),
    VMRP_TEST(testParseBad),
    VMRP_TEST(testValidateFilled),
    VMRP_TEST(testNextUtc),
    VMRP_TEST(testNextDst),
    VMRP_TEST(testRunEveryMinute),
    VMRP_TEST(testIsDue),
    VMRP_TEST(testSimulatedClock),
    { NULL, NULL }
};

int
main(void)
{
    return vmrpTestMain("schedule", cases, NULL, NULL);
}
