/*
 * test-vmrp-extents.c: unit tests of the extent map (no server)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "vmrp-test.h"
#include "vmrp-extents.h"


static void
testExtentMapEmpty(void)
{
    g_autoptr(vmrpExtentMap) map = vmrpExtentMapNew(0);

    CU_ASSERT_EQUAL(vmrpExtentMapCount(map), 0);
    CU_ASSERT_EQUAL(vmrpExtentMapEnd(map), 0);
    CU_ASSERT_TRUE(vmrpExtentMapIsComplete(map));
    CU_ASSERT_EQUAL(vmrpExtentMapBytes(map, VMRP_EXTENT_DATA), 0);
    vmrpExtentMapFree(NULL);
}


static void
testExtentMapCoalesce(void)
{
    g_autoptr(vmrpExtentMap) map = vmrpExtentMapNew(100);
    const vmrpExtent *e;

    CU_ASSERT_TRUE(vmrpExtentMapAppend(map, 0, 10, VMRP_EXTENT_DATA));
    CU_ASSERT_TRUE(vmrpExtentMapAppend(map, 10, 5, VMRP_EXTENT_DATA));
    CU_ASSERT_TRUE(vmrpExtentMapAppend(map, 15, 0, VMRP_EXTENT_ZERO)); /* no-op */
    CU_ASSERT_TRUE(vmrpExtentMapAppend(map, 15, 20, VMRP_EXTENT_ZERO));
    CU_ASSERT_TRUE(vmrpExtentMapAppend(map, 35, 5, VMRP_EXTENT_ZERO));
    CU_ASSERT_TRUE(vmrpExtentMapAppend(map, 40, 10, VMRP_EXTENT_CLEAN));
    CU_ASSERT_TRUE(vmrpExtentMapAppend(map, 50, 10, VMRP_EXTENT_DATA));
    CU_ASSERT_FALSE(vmrpExtentMapIsComplete(map));
    CU_ASSERT_TRUE(vmrpExtentMapAppend(map, 60, 40, VMRP_EXTENT_DATA));
    CU_ASSERT_TRUE(vmrpExtentMapIsComplete(map));

    CU_ASSERT_EQUAL_FATAL(vmrpExtentMapCount(map), 4);
    e = vmrpExtentMapGet(map, 0);
    CU_ASSERT(e->offset == 0 && e->length == 15 && e->kind == VMRP_EXTENT_DATA);
    e = vmrpExtentMapGet(map, 1);
    CU_ASSERT(e->offset == 15 && e->length == 25 && e->kind == VMRP_EXTENT_ZERO);
    e = vmrpExtentMapGet(map, 2);
    CU_ASSERT(e->offset == 40 && e->length == 10 && e->kind == VMRP_EXTENT_CLEAN);
    e = vmrpExtentMapGet(map, 3);
    CU_ASSERT(e->offset == 50 && e->length == 50 && e->kind == VMRP_EXTENT_DATA);

    CU_ASSERT_EQUAL(vmrpExtentMapBytes(map, VMRP_EXTENT_DATA), 65);
    CU_ASSERT_EQUAL(vmrpExtentMapBytes(map, VMRP_EXTENT_ZERO), 25);
    CU_ASSERT_EQUAL(vmrpExtentMapBytes(map, VMRP_EXTENT_CLEAN), 10);
}


static void
testExtentMapRejects(void)
{
    g_autoptr(vmrpExtentMap) map = vmrpExtentMapNew(100);

    CU_ASSERT_TRUE(vmrpExtentMapAppend(map, 0, 10, VMRP_EXTENT_DATA));

    /* a gap, an overlap, and past the end are programming errors */
    g_test_expect_message("vmrp", G_LOG_LEVEL_CRITICAL, "*offset ==*");
    CU_ASSERT_FALSE(vmrpExtentMapAppend(map, 20, 10, VMRP_EXTENT_DATA));
    g_test_assert_expected_messages();
    g_test_expect_message("vmrp", G_LOG_LEVEL_CRITICAL, "*offset ==*");
    CU_ASSERT_FALSE(vmrpExtentMapAppend(map, 5, 10, VMRP_EXTENT_ZERO));
    g_test_assert_expected_messages();
    g_test_expect_message("vmrp", G_LOG_LEVEL_CRITICAL, "*length <=*");
    CU_ASSERT_FALSE(vmrpExtentMapAppend(map, 10, 91, VMRP_EXTENT_ZERO));
    g_test_assert_expected_messages();

    CU_ASSERT_EQUAL(vmrpExtentMapCount(map), 1);
    CU_ASSERT_EQUAL(vmrpExtentMapEnd(map), 10);
}


static void
testExtentKindToString(void)
{
    CU_ASSERT_STRING_EQUAL(vmrpExtentKindToString(VMRP_EXTENT_DATA), "data");
    CU_ASSERT_STRING_EQUAL(vmrpExtentKindToString(VMRP_EXTENT_ZERO), "zero");
    CU_ASSERT_STRING_EQUAL(vmrpExtentKindToString(VMRP_EXTENT_CLEAN), "clean");
}


static void
testExtentMapLarge(void)
{
    /* Sizes past 4 GiB: no truncation to 32 bits. */
    const uint64_t tib = 1ULL << 40;
    g_autoptr(vmrpExtentMap) map = vmrpExtentMapNew(2 * tib);

    CU_ASSERT_TRUE(vmrpExtentMapAppend(map, 0, tib, VMRP_EXTENT_CLEAN));
    CU_ASSERT_TRUE(vmrpExtentMapAppend(map, tib, 4096, VMRP_EXTENT_DATA));
    CU_ASSERT_TRUE(vmrpExtentMapAppend(map, tib + 4096, tib - 4096, VMRP_EXTENT_CLEAN));
    CU_ASSERT_TRUE(vmrpExtentMapIsComplete(map));
    CU_ASSERT_EQUAL(vmrpExtentMapCount(map), 3);
    CU_ASSERT_EQUAL(vmrpExtentMapBytes(map, VMRP_EXTENT_CLEAN), 2 * tib - 4096);
}


int
main(int argc, char **argv)
{
    static const vmrpTestCase cases[] = {
        VMRP_TEST(testExtentMapEmpty),
        VMRP_TEST(testExtentMapCoalesce),
        VMRP_TEST(testExtentMapRejects),
        VMRP_TEST(testExtentKindToString),
        VMRP_TEST(testExtentMapLarge),
        { NULL, NULL },
    };

    g_test_init(&argc, &argv, NULL);
    return vmrpTestMain("extents", cases, NULL, NULL);
}
