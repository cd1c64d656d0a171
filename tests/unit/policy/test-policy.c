/*
 * test-policy.c: consistency rules and safe names
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "vmrp-test.h"
#include "vmrp-consistency.h"
#include "vmrp-names.h"

static void
testConsistencyStrings(void)
{
    vmrpConsistency mode;
    g_autoptr(GError) error = NULL;
    int i;

    for (i = 0; i < VMRP_CONSISTENCY_LAST; i++) {
        CU_ASSERT_TRUE(vmrpConsistencyFromString(vmrpConsistencyToString(i), &mode, NULL));
        CU_ASSERT_EQUAL((int)mode, i);
    }
    mode = VMRP_CONSISTENCY_FILESYSTEM;
    CU_ASSERT_FALSE(vmrpConsistencyFromString("Application", &mode, &error));
    CU_ASSERT_PTR_NOT_NULL(error);
    CU_ASSERT_EQUAL(mode, VMRP_CONSISTENCY_FILESYSTEM);
    CU_ASSERT_FALSE(vmrpConsistencyFromString(NULL, &mode, NULL));
    CU_ASSERT_FALSE(vmrpConsistencyFromString("", &mode, NULL));
}

static void
testConsistencyResolve(void)
{
    vmrpConsistency got = VMRP_CONSISTENCY_LAST;
    g_autoptr(GError) error = NULL;

    /* an agent that answers: what was asked */
    CU_ASSERT_TRUE(vmrpConsistencyResolve(VMRP_CONSISTENCY_APPLICATION, NULL, false, &got, NULL));
    CU_ASSERT_EQUAL(got, VMRP_CONSISTENCY_APPLICATION);
    /* crash needs no agent */
    CU_ASSERT_TRUE(vmrpConsistencyResolve(VMRP_CONSISTENCY_CRASH, "no agent", false, &got, NULL));
    CU_ASSERT_EQUAL(got, VMRP_CONSISTENCY_CRASH);
    /* no agent, no fallback: refused, output untouched */
    got = VMRP_CONSISTENCY_LAST;
    CU_ASSERT_FALSE(vmrpConsistencyResolve(VMRP_CONSISTENCY_FILESYSTEM, "no agent", false,
                                           &got, &error));
    CU_ASSERT_EQUAL(got, VMRP_CONSISTENCY_LAST);
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "--allow-fallback"));
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, "no agent"));
    /* no agent, fallback allowed: crash */
    CU_ASSERT_TRUE(vmrpConsistencyResolve(VMRP_CONSISTENCY_APPLICATION, "no agent", true,
                                          &got, NULL));
    CU_ASSERT_EQUAL(got, VMRP_CONSISTENCY_CRASH);
    CU_ASSERT_TRUE(vmrpConsistencyNeedsFreeze(VMRP_CONSISTENCY_APPLICATION));
    CU_ASSERT_TRUE(vmrpConsistencyNeedsFreeze(VMRP_CONSISTENCY_FILESYSTEM));
    CU_ASSERT_FALSE(vmrpConsistencyNeedsFreeze(VMRP_CONSISTENCY_CRASH));
}

static void
testDomainNames(void)
{
    static const char *const good[] = { "vm1", "web.example-2", "a_b+c", "X", NULL };
    static const char *const bad[] = {
        "", ".hidden", "-opt", "a/b", "..", "../etc", "a b", "<vm>", "a'b", "a\"b",
        "a&b", "vm\n", "\xc3\xa9t\xc3\xa9",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL
    };
    size_t i;

    for (i = 0; good[i]; i++)
        CU_ASSERT_TRUE(vmrpNameCheckDomain(good[i], NULL));
    for (i = 0; bad[i]; i++) {
        g_autoptr(GError) error = NULL;
        CU_ASSERT_FALSE(vmrpNameCheckDomain(bad[i], &error));
        CU_ASSERT_PTR_NOT_NULL(error);
        /* one line, whatever the name holds */
        CU_ASSERT_PTR_NULL(error ? strchr(error->message, '\n') : NULL);
    }
    CU_ASSERT_FALSE(vmrpNameCheckDomain(NULL, NULL));
}

static void
testPointIds(void)
{
    CU_ASSERT_TRUE(vmrpNameCheckPoint("20261122-053416-0a1b2c", NULL));
    CU_ASSERT_FALSE(vmrpNameCheckPoint("20261122-053416-0A1B2C", NULL));
    CU_ASSERT_FALSE(vmrpNameCheckPoint("20261122-053416-0a1b2", NULL));
    CU_ASSERT_FALSE(vmrpNameCheckPoint("20261122-053416-0a1b2cd", NULL));
    CU_ASSERT_FALSE(vmrpNameCheckPoint("../../../etc/passwd", NULL));
    CU_ASSERT_FALSE(vmrpNameCheckPoint("2026112x-053416-0a1b2c", NULL));
    CU_ASSERT_FALSE(vmrpNameCheckPoint("", NULL));
    CU_ASSERT_FALSE(vmrpNameCheckPoint(NULL, NULL));
}

static void
testTargetList(void)
{
    g_auto(GStrv) list = vmrpNameParseTargetList("vdb, vdc,vdb", NULL);
    g_autoptr(GError) error = NULL;
    g_auto(GStrv) bad = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(list);
    CU_ASSERT_EQUAL(g_strv_length(list), 2);
    CU_ASSERT_STRING_EQUAL(list[0], "vdb");
    CU_ASSERT_STRING_EQUAL(list[1], "vdc");
    bad = vmrpNameParseTargetList("vdb,,vdc", &error);
    CU_ASSERT_PTR_NULL(bad);
    CU_ASSERT_PTR_NOT_NULL(error);
    g_clear_error(&error);
    CU_ASSERT_PTR_NULL(vmrpNameParseTargetList("../vda", &error));
    CU_ASSERT_PTR_NOT_NULL(error);
}

static const vmrpTestCase cases[] = {
    VMRP_TEST(testConsistencyStrings),
    VMRP_TEST(testConsistencyResolve),
    VMRP_TEST(testDomainNames),
    VMRP_TEST(testPointIds),
    VMRP_TEST(testTargetList),
    { NULL, NULL }
};

int
main(void)
{
    return vmrpTestMain("policy", cases, NULL, NULL);
}
