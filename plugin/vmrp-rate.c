/*
 * vmrp-rate.c: a bandwidth limit for copies
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "vmrp-rate.h"
#include "vmrp-error.h"

/* the longest sleep between two looks at the cancellable */
#define RATE_SLEEP_SLICE_US (G_USEC_PER_SEC / 20)
/* the highest rate accepted: 1 TiB/s */
#define RATE_MAX (G_GUINT64_CONSTANT(1) << 40)

struct _vmrpRateLimit {
    uint64_t rate;
    double due_us;      /* when the bytes taken so far are due (monotonic clock) */
};

bool
vmrpRateParse(const char *text, uint64_t *ret_rate, GError **error)
{
    g_autofree char *shown = g_strescape(text ? text : "", NULL);
    const char *p = text;
    uint64_t value = 0;
    uint64_t mult = 1;

    while (p && g_ascii_isdigit(*p)) {
        /* saturated above the highest rate: too large, not malformed */
        value = MIN(value * 10 + (uint64_t)(*p - '0'), RATE_MAX + 1);
        p++;
    }
    if (p && p != text && p[0] && !p[1]) {
        switch (g_ascii_toupper(*p)) {
        case 'K': mult = G_GUINT64_CONSTANT(1) << 10; p++; break;
        case 'M': mult = G_GUINT64_CONSTANT(1) << 20; p++; break;
        case 'G': mult = G_GUINT64_CONSTANT(1) << 30; p++; break;
        default: break;
        }
    }
    if (!p || p == text || *p) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "invalid --bandwidth '%s': expected bytes per second, a whole number "
                    "with K, M or G for KiB, MiB or GiB (e.g. 50M)", shown);
        return false;
    }
    if (value > RATE_MAX / mult || value * mult < VMRP_RATE_MIN) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "invalid --bandwidth '%s': the rate must be from 1K to 1024G bytes per "
                    "second", shown);
        return false;
    }
    *ret_rate = value * mult;
    return true;
}

vmrpRateLimit *
vmrpRateLimitNew(uint64_t rate)
{
    vmrpRateLimit *limit = g_new0(vmrpRateLimit, 1);

    limit->rate = MAX(rate, 1);
    limit->due_us = (double)g_get_monotonic_time();
    return limit;
}

void
vmrpRateLimitFree(vmrpRateLimit *limit)
{
    g_free(limit);
}

void
vmrpRateLimitTake(vmrpRateLimit *limit, uint64_t bytes, GCancellable *cancel)
{
    double now = (double)g_get_monotonic_time();

    /* no credit for time spent idle: the bytes are due from now at the earliest */
    if (limit->due_us < now)
        limit->due_us = now;
    limit->due_us += (double)bytes * G_USEC_PER_SEC / (double)limit->rate;
    while (now < limit->due_us && !g_cancellable_is_cancelled(cancel)) {
        g_usleep((gulong)MIN(limit->due_us - now, (double)RATE_SLEEP_SLICE_US) + 1);
        now = (double)g_get_monotonic_time();
    }
}
