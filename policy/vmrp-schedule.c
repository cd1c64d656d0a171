/*
 * vmrp-schedule.c: when a policy's next restore point is due
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdarg.h>
#include <string.h>

#include "vmrp-schedule.h"
#include "vmrp-consistency.h"

#define SCHEDULE_FORMS "expected 'every Nm', 'every Nh', 'daily HH:MM' or 'none'"

/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z */
#define TIME_MIN G_GINT64_CONSTANT(-62135596800)
#define TIME_MAX G_GINT64_CONSTANT(253402300799)

/* How far a wall clock can be from where it was: no time zone has changed
 * its offset by more than a day at once (Samoa skipped 2011-12-30). */
#define WINDOW (3 * 86400)

static void G_GNUC_PRINTF(3, 4)
scheduleError(GError **error, const char *text, const char *fmt, ...)
{
    g_autofree char *shown = g_strescape(text, NULL);
    g_autofree char *why = NULL;
    va_list ap;

    va_start(ap, fmt);
    why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID,
                "invalid schedule '%s': %s", shown, why);
}

bool
vmrpScheduleValidate(const vmrpSchedule *schedule, GError **error)
{
    switch (schedule->kind) {
    case VMRP_SCHEDULE_NONE:
        return true;
    case VMRP_SCHEDULE_MINUTES:
        if (schedule->every >= 1 && schedule->every <= 1440 && 1440 % schedule->every == 0)
            return true;
        g_set_error(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID,
                    "invalid schedule: every %u minutes does not divide a day "
                    "(use 1 to 1440 minutes, a divisor of 1440 such as 5, 15, 30 or 90)",
                    schedule->every);
        return false;
    case VMRP_SCHEDULE_HOURS:
        if (schedule->every >= 1 && schedule->every <= 24 && 24 % schedule->every == 0)
            return true;
        g_set_error(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID,
                    "invalid schedule: every %u hours does not divide a day "
                    "(use 1, 2, 3, 4, 6, 8, 12 or 24 hours)", schedule->every);
        return false;
    case VMRP_SCHEDULE_DAILY:
        if (schedule->hour <= 23 && schedule->minute <= 59)
            return true;
        g_set_error(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID,
                    "invalid schedule: daily at %u:%u is not a time of day (00:00 to 23:59)",
                    schedule->hour, schedule->minute);
        return false;
    case VMRP_SCHEDULE_LAST:
    default:
        break;
    }
    g_set_error(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID,
                "invalid schedule: unknown kind %d", (int)schedule->kind);
    return false;
}

bool
vmrpScheduleParse(const char *text, vmrpSchedule *ret_schedule, GError **error)
{
    vmrpSchedule s = { VMRP_SCHEDULE_NONE };
    const char *p;

    if (!text || !*text) {
        g_set_error_literal(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID,
                            "empty schedule: " SCHEDULE_FORMS);
        return false;
    }

    if (g_str_equal(text, "none")) {
        /* s is none */
    } else if (g_str_has_prefix(text, "every ")) {
        guint64 n = 0;
        size_t digits = 0;

        for (p = text + strlen("every "); g_ascii_isdigit(*p); p++, digits++) {
            if (digits < 10)
                n = n * 10 + (*p - '0');
        }
        if (digits == 0) {
            scheduleError(error, text, "'every' needs a positive whole number and a unit, "
                          "as in 'every 15m' or 'every 6h'");
            return false;
        }
        if (*p == '\0') {
            scheduleError(error, text, "missing unit: use m (minutes) or h (hours)");
            return false;
        }
        if (g_str_equal(p, "m")) {
            s.kind = VMRP_SCHEDULE_MINUTES;
        } else if (g_str_equal(p, "h")) {
            s.kind = VMRP_SCHEDULE_HOURS;
        } else {
            g_autofree char *unit = g_strescape(p, NULL);

            scheduleError(error, text, "unknown unit '%s': use m (minutes) or h (hours)", unit);
            return false;
        }
        if (n == 0) {
            scheduleError(error, text, "the interval must be at least 1");
            return false;
        }
        if (text[strlen("every ")] == '0') {
            scheduleError(error, text, "a number with a leading zero");
            return false;
        }
        s.every = n > 100000 ? 100000 : n;
        if (!vmrpScheduleValidate(&s, NULL)) {
            if (s.kind == VMRP_SCHEDULE_MINUTES)
                scheduleError(error, text, "the interval must divide a day: 1 to 1440 "
                              "minutes, a divisor of 1440 such as 5, 15, 30 or 90");
            else
                scheduleError(error, text, "the interval must divide a day: 1, 2, 3, 4, 6, "
                              "8, 12 or 24 hours");
            return false;
        }
    } else if (g_str_has_prefix(text, "daily ")) {
        p = text + strlen("daily ");
        if (strlen(p) != 5 || !g_ascii_isdigit(p[0]) || !g_ascii_isdigit(p[1]) ||
            p[2] != ':' || !g_ascii_isdigit(p[3]) || !g_ascii_isdigit(p[4])) {
            scheduleError(error, text, "expected a time of day as HH:MM, e.g. 'daily 02:30'");
            return false;
        }
        s.kind = VMRP_SCHEDULE_DAILY;
        s.hour = (p[0] - '0') * 10 + (p[1] - '0');
        s.minute = (p[3] - '0') * 10 + (p[4] - '0');
        if (s.hour > 23) {
            scheduleError(error, text, "hour %02u is out of range 00 to 23", s.hour);
            return false;
        }
        if (s.minute > 59) {
            scheduleError(error, text, "minute %02u is out of range 00 to 59", s.minute);
            return false;
        }
    } else {
        scheduleError(error, text, SCHEDULE_FORMS);
        return false;
    }

    *ret_schedule = s;
    return true;
}

char *
vmrpScheduleFormat(const vmrpSchedule *schedule)
{
    switch (schedule->kind) {
    case VMRP_SCHEDULE_MINUTES:
        return g_strdup_printf("every %um", schedule->every);
    case VMRP_SCHEDULE_HOURS:
        return g_strdup_printf("every %uh", schedule->every);
    case VMRP_SCHEDULE_DAILY:
        return g_strdup_printf("daily %02u:%02u", schedule->hour, schedule->minute);
    case VMRP_SCHEDULE_NONE:
    case VMRP_SCHEDULE_LAST:
    default:
        break;
    }
    return g_strdup("none");
}

static gint
intervalAt(GTimeZone *tz, gint64 t)
{
    return g_time_zone_find_interval(tz, G_TIME_TYPE_UNIVERSAL, t);
}

static gint64
offsetAt(GTimeZone *tz, gint64 t)
{
    return g_time_zone_get_offset(tz, intervalAt(tz, t));
}

/* The first instant in (@t, @limit] whose offset interval is not that of @t,
 * or G_MAXINT64 when there is none. */
static gint64
nextChange(GTimeZone *tz, gint64 t, gint64 limit)
{
    gint iv = intervalAt(tz, t);
    gint64 lo = t;
    gint64 hi = limit;

    if (limit <= t || intervalAt(tz, limit) == iv)
        return G_MAXINT64;
    /* intervals only grow with time: interval(lo) == iv != interval(hi) */
    while (hi - lo > 1) {
        gint64 mid = lo + (hi - lo) / 2;

        if (intervalAt(tz, mid) == iv)
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

/* The latest wall-clock time (as local seconds since the epoch) that the
 * clock of @tz has shown at or before @t. */
static gint64
maxLocal(GTimeZone *tz, gint64 t)
{
    gint64 best = G_MININT64;
    gint64 s = t - WINDOW;

    for (;;) {
        gint64 e = nextChange(tz, s, t);
        gint64 last = e == G_MAXINT64 ? t : e - 1;

        best = MAX(best, last + offsetAt(tz, s));
        if (e == G_MAXINT64)
            return best;
        s = e;
    }
}

/* The first instant at or after @from at which the clock of @tz shows
 * @local or a later time; the clock shows an earlier time at @from. */
static gint64
firstReach(GTimeZone *tz, gint64 local, gint64 from)
{
    gint64 s = from;

    for (;;) {
        gint64 o = offsetAt(tz, s);
        gint64 e;

        if (s + o >= local)
            return s;               /* the clock jumped to or past it at s */
        e = nextChange(tz, s, s + WINDOW);
        if (e == G_MAXINT64) {
            if (local - o <= s + WINDOW)
                return local - o;
            s += WINDOW;
        } else {
            if (local - o < e)
                return local - o;
            s = e;
        }
    }
}

gint64
vmrpScheduleNext(const vmrpSchedule *schedule, GTimeZone *tz, gint64 after)
{
    gint64 step;
    gint64 phase = 0;
    gint64 reached;
    gint64 slot;
    gint64 mod;

    if (schedule->kind == VMRP_SCHEDULE_NONE || !vmrpScheduleValidate(schedule, NULL))
        return G_MAXINT64;
    switch (schedule->kind) {
    case VMRP_SCHEDULE_MINUTES:
        step = (gint64)schedule->every * 60;
        break;
    case VMRP_SCHEDULE_HOURS:
        step = (gint64)schedule->every * 3600;
        break;
    case VMRP_SCHEDULE_DAILY:
    default:
        step = 86400;
        phase = schedule->hour * 3600 + schedule->minute * 60;
        break;
    }
    if (after > TIME_MAX - 2 * WINDOW)
        return G_MAXINT64;
    if (after < TIME_MIN)
        after = TIME_MIN;

    /* every slot up to the latest time the clock has shown is done; the next
     * is the first after it, due when the clock first reaches it.  Local
     * seconds since the epoch are a whole number of days at each midnight,
     * and step divides a day, so slots are phase modulo step. */
    reached = maxLocal(tz, after);
    mod = ((reached - phase) % step + step) % step;
    slot = reached - mod + step;
    return firstReach(tz, slot, after);
}

bool
vmrpScheduleIsDue(const vmrpSchedule *schedule,
                  GTimeZone *tz,
                  gint64 last_run,
                  gint64 now)
{
    if (schedule->kind == VMRP_SCHEDULE_NONE || !vmrpScheduleValidate(schedule, NULL))
        return false;
    if (last_run == VMRP_SCHEDULE_NEVER)
        return true;
    return vmrpScheduleNext(schedule, tz, last_run) <= now;
}

gint64
vmrpScheduleNextDue(const vmrpSchedule *schedule,
                    GTimeZone *tz,
                    gint64 last_run,
                    gint64 now)
{
    if (schedule->kind == VMRP_SCHEDULE_NONE || !vmrpScheduleValidate(schedule, NULL))
        return G_MAXINT64;
    if (last_run == VMRP_SCHEDULE_NEVER)
        return now;
    return vmrpScheduleNext(schedule, tz, last_run);
}
