/*
 * fuzz-policy.c: a collection's policy in its text form (vmrpPolicyParse) and
 * schedules (vmrpScheduleParse), as collection.json and policy-set hand them
 *
 * The whole input is read as a policy and each of its lines as a schedule.
 * What is accepted must be valid, survive a round trip through its Format
 * unchanged, and a schedule's next slot must lie strictly after the time
 * asked about and agree with IsDue/NextDue.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "vmrp-fuzz.h"
#include "vmrp-policy.h"
#include "vmrp-schedule.h"

static GTimeZone *utc;
static GTimeZone *berlin;

int
LLVMFuzzerInitialize(int *argc G_GNUC_UNUSED, char ***argv G_GNUC_UNUSED)
{
    utc = g_time_zone_new_utc();
    /* with daylight saving time (falls back to UTC where tzdata is missing) */
    berlin = g_time_zone_new_identifier("Europe/Berlin");
    if (!berlin)
        berlin = g_time_zone_ref(utc);
    return 0;
}

static void
checkTimes(const vmrpSchedule *schedule, GTimeZone *tz, gint64 t)
{
    gint64 next = vmrpScheduleNext(schedule, tz, t);
    gint64 due;

    VMRP_FUZZ_ASSERT(next == G_MAXINT64 || next > t);
    if (schedule->kind == VMRP_SCHEDULE_NONE)
        VMRP_FUZZ_ASSERT(next == G_MAXINT64);
    if (next == G_MAXINT64 || next > G_MAXINT64 / 2)
        return;
    /* the slot itself: due once it comes, not before */
    VMRP_FUZZ_ASSERT(vmrpScheduleIsDue(schedule, tz, t, next));
    VMRP_FUZZ_ASSERT(!vmrpScheduleIsDue(schedule, tz, t, next - 1));
    due = vmrpScheduleNextDue(schedule, tz, t, next);
    VMRP_FUZZ_ASSERT(due == next);
}

static void
tryLine(const char *line)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *text = NULL;
    vmrpSchedule schedule = { VMRP_SCHEDULE_LAST, 7, 7, 7 };
    vmrpSchedule back = { VMRP_SCHEDULE_LAST, 0, 0, 0 };
    /* around 2024-03-31 (spring forward in Berlin) and 2024-10-27 (fall back) */
    static const gint64 times[] = { 0, 1711846800, 1711850400, 1729990800, 1729994400,
                                    253402300000 };
    size_t i;

    if (!vmrpScheduleParse(line, &schedule, &error)) {
        vmrpFuzzCheckError(error);
        VMRP_FUZZ_ASSERT(schedule.kind == VMRP_SCHEDULE_LAST && schedule.every == 7);
        return;
    }
    VMRP_FUZZ_ASSERT(vmrpScheduleValidate(&schedule, NULL));
    text = vmrpScheduleFormat(&schedule);
    VMRP_FUZZ_ASSERT(vmrpScheduleParse(text, &back, NULL));
    VMRP_FUZZ_ASSERT(memcmp(&schedule, &back, sizeof(back)) == 0);
    for (i = 0; i < G_N_ELEMENTS(times); i++) {
        checkTimes(&schedule, utc, times[i]);
        checkTimes(&schedule, berlin, times[i]);
    }
    (void)vmrpScheduleNext(&schedule, utc, VMRP_SCHEDULE_NEVER);
    /* a schedule that never ran is due at once, unless it is none */
    if (schedule.kind != VMRP_SCHEDULE_NONE)
        VMRP_FUZZ_ASSERT(vmrpScheduleIsDue(&schedule, utc, VMRP_SCHEDULE_NEVER, 0));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *input = g_strndup((const char *)data, size);
    g_auto(GStrv) lines = g_strsplit(input, "\n", 32);
    g_autoptr(GError) error = NULL;
    g_autoptr(vmrpPolicy) policy = vmrpPolicyParse(input, &error);
    size_t i;

    if (!policy) {
        vmrpFuzzCheckError(error);
    } else {
        g_autofree char *text = vmrpPolicyFormat(policy);
        g_autoptr(vmrpPolicy) back = NULL;
        g_autofree char *text2 = NULL;

        if (!vmrpPolicyValidate(policy, &error))
            fprintf(stderr, "parsed policy is invalid: %s\n", error->message);
        VMRP_FUZZ_ASSERT(error == NULL);
        back = vmrpPolicyParse(text, &error);
        if (!back)
            fprintf(stderr, "formatted policy refused: %s\n%s", error->message, text);
        VMRP_FUZZ_ASSERT(back != NULL);
        text2 = vmrpPolicyFormat(back);
        VMRP_FUZZ_ASSERT(g_str_equal(text, text2));
        (void)vmrpPolicyNeedsFull(policy, 0);
        (void)vmrpPolicyNeedsFull(policy, G_MAXUINT);
    }
    for (i = 0; lines[i]; i++)
        tryLine(lines[i]);
    return 0;
}
