/*
 * test-rate.c: --bandwidth RATE: its parser and the limit
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "vmrp-test.h"
#include "vmrp-rate.h"
#include "vmrp-error.h"

static void
testParse(void)
{
    static const struct {
        const char *text;
        uint64_t rate;
    } good[] = {
        { "1024", 1024 },
        { "1K", 1024 },
        { "50M", 50 * 1048576ULL },
        { "50m", 50 * 1048576ULL },
        { "1G", 1073741824ULL },
        { "1024G", 1024 * 1073741824ULL },
        { "007k", 7 * 1024 },
    };
    static const char *const bad[] = {
        "", "M", "-1M", "1.5M", "50MB", "50 M", " 50M", "50X", "1T", "0", "1023", "0K",
        "1025G", "99999999999999999999999", "1M/s", "0x10",
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(good); i++) {
        g_autoptr(GError) error = NULL;
        uint64_t rate = 0;

        CU_ASSERT_TRUE(vmrpRateParse(good[i].text, &rate, &error));
        CU_ASSERT_EQUAL(rate, good[i].rate);
        CU_ASSERT_PTR_NULL(error);
    }
    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        uint64_t rate = 42;

        CU_ASSERT_FALSE(vmrpRateParse(bad[i], &rate, &error));
        CU_ASSERT_EQUAL(rate, 42);     /* untouched on failure */
        CU_ASSERT_PTR_NOT_NULL_FATAL(error);
        CU_ASSERT_TRUE(g_error_matches(error, VMRP_ERROR, VMRP_ERROR_INVALID));
        CU_ASSERT_PTR_NULL(strchr(error->message, '\n'));
        CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "--bandwidth"));
    }
}

/* N bytes never take less than N / RATE seconds, whatever the pieces */
static void
testLimit(void)
{
    g_autoptr(vmrpRateLimit) limit = vmrpRateLimitNew(4 * 1048576);
    gint64 start = g_get_monotonic_time();
    gint64 took;
    int i;

    /* 2 MiB at 4 MiB/s: 0.5 s */
    for (i = 0; i < 8; i++)
        vmrpRateLimitTake(limit, 256 * 1024, NULL);
    took = g_get_monotonic_time() - start;
    CU_ASSERT_TRUE(took >= G_USEC_PER_SEC / 2);
    CU_ASSERT_TRUE(took < 5 * G_USEC_PER_SEC);
}

/* an idle moment gives no credit for a burst afterwards */
static void
testNoCredit(void)
{
    g_autoptr(vmrpRateLimit) limit = vmrpRateLimitNew(4 * 1048576);
    gint64 start;

    g_usleep(G_USEC_PER_SEC / 2);
    start = g_get_monotonic_time();
    vmrpRateLimitTake(limit, 1048576, NULL);
    CU_ASSERT_TRUE(g_get_monotonic_time() - start >= G_USEC_PER_SEC / 4);
}

/* a cancelled copy does not sleep out its bytes */
static void
testCancel(void)
{
    g_autoptr(vmrpRateLimit) limit = vmrpRateLimitNew(VMRP_RATE_MIN);
    g_autoptr(GCancellable) cancel = g_cancellable_new();
    gint64 start = g_get_monotonic_time();

    g_cancellable_cancel(cancel);
    vmrpRateLimitTake(limit, 1073741824, cancel);
    CU_ASSERT_TRUE(g_get_monotonic_time() - start < G_USEC_PER_SEC);
}

static const vmrpTestCase cases[] = {
    VMRP_TEST(testParse),
    VMRP_TEST(testLimit),
    VMRP_TEST(testNoCredit),
    VMRP_TEST(testCancel),
    { NULL, NULL },
};

int
main(void)
{
    return vmrpTestMain("rate", cases, NULL, NULL);
}
