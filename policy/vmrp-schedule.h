/*
 * vmrp-schedule.h: when a policy's next restore point is due
 *
 * Pure logic: no clock.  Times are seconds since the epoch (UTC); the wall
 * clock a schedule names is that of the GTimeZone the caller passes,
 * normally the host's (g_time_zone_new_local()).
 *
 * Grammar (strict: exactly these forms, single spaces, nothing around them):
 *
 *   schedule = "none" | "every" SP count unit | "daily" SP hh ":" mm
 *   count    = a decimal number without sign or leading zero
 *   unit     = "m" (minutes: count divides 1440, e.g. 1, 5, 10, 15, 30, 90)
 *            | "h" (hours: 1, 2, 3, 4, 6, 8, 12 or 24)
 *   hh       = two digits, 00 to 23;  mm = two digits, 00 to 59
 *
 * e.g. "every 15m", "every 6h", "daily 02:30".  The interval divides a day,
 * so that the slots are the same wall-clock times every day.
 *
 * Slots and time zone changes: a schedule names wall-clock times ("every 6h"
 * is 00:00, 06:00, 12:00 and 18:00; "every 15m" is every quarter hour from
 * midnight; "daily 02:30" is 02:30).  Each slot of each day is due once, at
 * the first instant the host's wall clock reaches or passes it:
 *  - a time that a spring-forward change skips is due at the instant of the
 *    change (daily 02:30 in Europe/Berlin on the last Sunday of March runs at
 *    03:00 CEST, the first valid instant after 02:30), once however many slots
 *    the change skipped;
 *  - a time that a fall-back change repeats is due only the first time (daily
 *    02:30 on the last Sunday of October runs at 02:30 CEST, not again at
 *    02:30 CET; "every 15m" runs at 02:45 CEST and next at 03:00 CET).
 */
#pragma once

#include <stdbool.h>
#include <glib.h>

typedef enum {
    VMRP_SCHEDULE_NONE = 0,     /* no point is ever due */
    VMRP_SCHEDULE_MINUTES,      /* every `every` minutes */
    VMRP_SCHEDULE_HOURS,        /* every `every` hours */
    VMRP_SCHEDULE_DAILY,        /* daily at hour:minute */

    VMRP_SCHEDULE_LAST
} vmrpScheduleKind;

typedef struct {
    vmrpScheduleKind kind;
    guint every;                /* MINUTES, HOURS */
    guint hour;                 /* DAILY: 0-23 */
    guint minute;               /* DAILY: 0-59 */
} vmrpSchedule;

/* A last run that never happened: the first point is due at once. */
#define VMRP_SCHEDULE_NEVER G_MININT64

/* Parses @text (grammar above); *@ret_schedule is untouched on failure. */
bool vmrpScheduleParse(const char *text, vmrpSchedule *ret_schedule, GError **error);

/* The canonical text of a valid @schedule ("every 15m", "daily 02:30",
 * "none"), which vmrpScheduleParse reads back. */
char *vmrpScheduleFormat(const vmrpSchedule *schedule);

/* Refuses a filled struct that the grammar could not produce. */
bool vmrpScheduleValidate(const vmrpSchedule *schedule, GError **error);

/*
 * The first instant strictly after @after at which a slot of @schedule is
 * due in @tz.  G_MAXINT64 for VMRP_SCHEDULE_NONE, an invalid schedule, or
 * beyond the year 9999.  @after may be VMRP_SCHEDULE_NEVER (the first slot
 * of the year 1).
 */
gint64 vmrpScheduleNext(const vmrpSchedule *schedule, GTimeZone *tz, gint64 after);

/*
 * Whether a point is due at @now when the last one was taken at @last_run
 * (VMRP_SCHEDULE_NEVER: never, so it is due): a slot came after @last_run and
 * not after @now.  However many slots were missed, that is one point.  A
 * clock set back before @last_run makes nothing due.
 */
bool vmrpScheduleIsDue(const vmrpSchedule *schedule,
                       GTimeZone *tz,
                       gint64 last_run,
                       gint64 now);

/*
 * When the next point is due after a last run at @last_run: @now when it
 * never ran; else the first slot after @last_run, which is at or before @now
 * exactly when vmrpScheduleIsDue (then it says since when the point is
 * overdue).  G_MAXINT64 when nothing is ever due.
 */
gint64 vmrpScheduleNextDue(const vmrpSchedule *schedule,
                           GTimeZone *tz,
                           gint64 last_run,
                           gint64 now);
