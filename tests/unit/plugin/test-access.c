/*
 * test-access.c: what rp-access accepts as a duration
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "vmrp-test.h"
#include "vmrp-access.h"

static void
testDurations(void)
{
    static const struct { const char *text; int64_t seconds; } good[] = {
        { "1s", 1 }, { "90s", 90 }, { "15m", 900 }, { "1h", 3600 }, { "2d", 172800 },
        { "30d", 30 * 86400 }, { "720h", 30 * 86400 },
    };
    static const char *const bad[] = {
        "", "0s", "1", "h", "1x", "1hh", "-1h", "+1h", " 1h", "1h ", "31d", "721h",
        "2592001s", "99999999999999999999d", "18446744073709551616s", "1.5h",
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(good); i++) {
        int64_t s = -1;
        CU_ASSERT_TRUE(vmrpAccessParseDuration(good[i].text, &s, NULL));
        CU_ASSERT_EQUAL(s, good[i].seconds);
    }
    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        int64_t s = -1;

        CU_ASSERT_FALSE(vmrpAccessParseDuration(bad[i], &s, &error));
        CU_ASSERT_PTR_NOT_NULL(error);
        CU_ASSERT_EQUAL(s, -1);
    }
    CU_ASSERT_FALSE(vmrpAccessParseDuration(NULL, NULL, NULL));
}

static const vmrpTestCase cases[] = {
    VMRP_TEST(testDurations),
    { NULL, NULL },
};

int
main(void)
{
    return vmrpTestMain("access", cases, NULL, NULL);
}
