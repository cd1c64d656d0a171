/*
 * test-policy-object.c: a collection's policy: validation, its text form,
 * the chain length rule
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "vmrp-test.h"
#include "vmrp-policy.h"

static const char fullText[] =
    "keep-last=7\n"
    "keep-hourly=0\n"
    "keep-daily=14\n"
    "keep-weekly=8\n"
    "keep-monthly=12\n"
    "keep-yearly=3\n"
    "keep-all=no\n"
    "schedule=daily 02:30\n"
    "consistency=filesystem\n"
    "allow-fallback=yes\n"
    "exclude-disks=vdb,vdc\n"
    "max-chain=30\n";

static void
assertOneLineError(const GError *error, const char *needle)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    CU_ASSERT_PTR_NULL(strchr(error->message, '\n'));
    if (!strstr(error->message, needle))
        fprintf(stderr, "\nerror '%s' lacks '%s'\n", error->message, needle);
    CU_ASSERT_PTR_NOT_NULL(strstr(error->message, needle));
}

static void
testDefaultsAndFormat(void)
{
    g_autoptr(vmrpPolicy) policy = vmrpPolicyNew();
    g_autoptr(vmrpPolicy) back = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *text = NULL;
    g_autofree char *again = NULL;

    CU_ASSERT_EQUAL(policy->consistency, VMRP_CONSISTENCY_APPLICATION);
    CU_ASSERT_EQUAL(policy->max_chain, VMRP_POLICY_CHAIN_UNLIMITED);
    CU_ASSERT_EQUAL(policy->schedule.kind, VMRP_SCHEDULE_NONE);
    /* the defaults keep nothing: not a policy yet */
    CU_ASSERT_FALSE(vmrpPolicyValidate(policy, &error));
    assertOneLineError(error, "keeps no point");

    /* policy-set DOMAIN --keep-last 7 --keep-daily 14 --keep-weekly 8
     *   --keep-monthly 12 --keep-yearly 3 --schedule "daily 02:30"
     *   --consistency filesystem --allow-fallback --exclude-disk vdb,vdc
     *   --max-chain 30 */
    policy->retention.keep[VMRP_RETENTION_KEEP_LAST] = 7;
    policy->retention.keep[VMRP_RETENTION_KEEP_DAILY] = 14;
    policy->retention.keep[VMRP_RETENTION_KEEP_WEEKLY] = 8;
    policy->retention.keep[VMRP_RETENTION_KEEP_MONTHLY] = 12;
    policy->retention.keep[VMRP_RETENTION_KEEP_YEARLY] = 3;
    CU_ASSERT_TRUE(vmrpScheduleParse("daily 02:30", &policy->schedule, NULL));
    CU_ASSERT_TRUE(vmrpConsistencyFromString("filesystem", &policy->consistency, NULL));
    policy->allow_fallback = true;
    CU_ASSERT_TRUE(vmrpPolicySetExcludeDisks(policy, "vdb, vdc", NULL));
    policy->max_chain = 30;
    CU_ASSERT_TRUE(vmrpPolicyValidate(policy, NULL));

    text = vmrpPolicyFormat(policy);
    CU_ASSERT_STRING_EQUAL(text, fullText);
    back = vmrpPolicyParse(text, &error);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    again = vmrpPolicyFormat(back);
    CU_ASSERT_STRING_EQUAL(again, text);
    CU_ASSERT_EQUAL(g_strv_length(back->exclude_disks), 2);
    CU_ASSERT_TRUE(back->allow_fallback);
    CU_ASSERT_EQUAL(back->schedule.hour, 2);
}

static void
testParseDefaults(void)
{
    g_autoptr(vmrpPolicy) p = vmrpPolicyParse("keep-daily=7", NULL);
    g_autoptr(vmrpPolicy) q = vmrpPolicyParse("\nschedule=every 6h\nkeep-all=yes\n\n", NULL);
    g_autoptr(vmrpPolicy) r = vmrpPolicyParse("keep-last=1\nexclude-disks=\n"
                                              "max-chain=unlimited\nmax-chain2=1", NULL);
    g_autoptr(vmrpPolicy) s = vmrpPolicyParse("keep-last=1\nexclude-disks=\n"
                                              "max-chain=0\n", NULL);

    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(p->retention.keep[VMRP_RETENTION_KEEP_DAILY], 7);
    CU_ASSERT_EQUAL(p->retention.keep[VMRP_RETENTION_KEEP_LAST], 0);
    CU_ASSERT_EQUAL(p->consistency, VMRP_CONSISTENCY_APPLICATION);
    CU_ASSERT_FALSE(p->allow_fallback);
    CU_ASSERT_PTR_NULL(p->exclude_disks);
    CU_ASSERT_EQUAL(p->max_chain, VMRP_POLICY_CHAIN_UNLIMITED);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    CU_ASSERT_TRUE(q->retention.keep_all);
    CU_ASSERT_EQUAL(q->schedule.kind, VMRP_SCHEDULE_HOURS);
    CU_ASSERT_PTR_NULL(r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(s->max_chain, 0);
    CU_ASSERT_PTR_NULL(s->exclude_disks);
}

static void
testParseBad(void)
{
    static const struct {
        const char *text;
        const char *needle;
    } bad[] = {
        { "", "keeps no point" },
        { "keep-last=0", "keeps no point" },
        { "keep-dayly=7", "policy line 1: unknown key 'keep-dayly'" },
        { "keep-last=1\nkeep-last=2", "policy line 2: keep-last is given twice" },
        { "keep-last=1\nfoo", "policy line 2: expected key=value, not 'foo'" },
        { "=1", "policy line 1: expected key=value" },
        { "keep-last = 1", "unknown key 'keep-last '" },
        { "keep-last=-1", "invalid keep-last '-1': expected a count" },
        { "keep-last=+1", "invalid keep-last '+1'" },
        { "keep-last=01", "invalid keep-last '01'" },
        { "keep-last=1e3", "invalid keep-last '1e3'" },
        { "keep-last=", "invalid keep-last ''" },
        { "keep-last=1000001", "invalid keep-last '1000001'" },
        { "keep-last=99999999999999999999999", "invalid keep-last" },
        { "keep-last=1\r\n", "invalid keep-last '1\\r'" },
        { "keep-last=1\nkeep-all=true", "invalid keep-all 'true': expected yes or no" },
        { "keep-last=1\nkeep-all=yes", "keep-all conflicts with keep-last 1" },
        { "keep-all=yes", "policy does nothing" },
        { "keep-last=1\nschedule=every 15s", "policy line 2: invalid schedule 'every 15s': "
          "unknown unit 's'" },
        { "keep-last=1\nschedule=daily 24:00", "hour 24 is out of range" },
        { "keep-last=1\nconsistency=Crash", "policy line 2: unknown consistency 'Crash'" },
        { "keep-last=1\nconsistency=crash\nallow-fallback=yes",
          "allow-fallback conflicts with consistency crash" },
        { "keep-last=1\nallow-fallback=1", "invalid allow-fallback '1'" },
        { "keep-last=1\nexclude-disks=../vda", "exclude-disks: invalid disk target '../vda'" },
        { "keep-last=1\nexclude-disks=vdb,,vdc", "exclude-disks: invalid disk target ''" },
        { "keep-last=1\nmax-chain=-1", "invalid max-chain '-1'" },
        { "keep-last=1\nmax-chain=none", "invalid max-chain 'none'" },
        { "keep-last=1\nmax-chain=1000001", "invalid max-chain '1000001'" },
        { "keep-last=1\n\xff=1", "unknown key '\\377'" },
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(vmrpPolicy) p = vmrpPolicyParse(bad[i].text, &error);

        CU_ASSERT_PTR_NULL(p);
        assertOneLineError(error, bad[i].needle);
    }
    CU_ASSERT_PTR_NULL(vmrpPolicyParse(NULL, NULL));
}

static void
testValidateFilled(void)
{
    g_autoptr(vmrpPolicy) p = vmrpPolicyNew();
    g_autoptr(GError) e1 = NULL;
    g_autoptr(GError) e2 = NULL;
    g_autoptr(GError) e3 = NULL;
    g_autoptr(GError) e4 = NULL;
    g_autoptr(GError) e5 = NULL;
    g_autoptr(GError) e6 = NULL;
    GStrv before;

    p->retention.keep[VMRP_RETENTION_KEEP_HOURLY] = -2;
    CU_ASSERT_FALSE(vmrpPolicyValidate(p, &e1));
    assertOneLineError(e1, "invalid keep-hourly -2");
    p->retention.keep[VMRP_RETENTION_KEEP_HOURLY] = 24;
    p->max_chain = -2;
    CU_ASSERT_FALSE(vmrpPolicyValidate(p, &e2));
    assertOneLineError(e2, "invalid max-chain -2");
    p->max_chain = 5;
    p->consistency = VMRP_CONSISTENCY_LAST;
    CU_ASSERT_FALSE(vmrpPolicyValidate(p, &e3));
    assertOneLineError(e3, "unknown consistency");
    p->consistency = VMRP_CONSISTENCY_CRASH;
    p->exclude_disks = g_strsplit("vdb,vdb", ",", -1);
    CU_ASSERT_FALSE(vmrpPolicyValidate(p, &e4));
    assertOneLineError(e4, "disk 'vdb' is given twice");
    /* a failed set leaves the list as it was */
    before = p->exclude_disks;
    CU_ASSERT_FALSE(vmrpPolicySetExcludeDisks(p, "vda,a/b", &e5));
    assertOneLineError(e5, "exclude-disks");
    CU_ASSERT_PTR_EQUAL(p->exclude_disks, before);
    CU_ASSERT_TRUE(vmrpPolicySetExcludeDisks(p, "", NULL));
    CU_ASSERT_PTR_NULL(p->exclude_disks);
    p->schedule.kind = VMRP_SCHEDULE_MINUTES;
    p->schedule.every = 7;
    CU_ASSERT_FALSE(vmrpPolicyValidate(p, &e6));
    assertOneLineError(e6, "every 7 minutes does not divide a day");
    p->schedule.every = 5;
    CU_ASSERT_TRUE(vmrpPolicyValidate(p, NULL));
}

static void
testNeedsFull(void)
{
    g_autoptr(vmrpPolicy) p = vmrpPolicyNew();

    /* unlimited: never */
    CU_ASSERT_FALSE(vmrpPolicyNeedsFull(p, 0));
    CU_ASSERT_FALSE(vmrpPolicyNeedsFull(p, G_MAXUINT));
    /* at most 3 increments after a full: the 4th point after it is a full */
    p->max_chain = 3;
    CU_ASSERT_FALSE(vmrpPolicyNeedsFull(p, 0));
    CU_ASSERT_FALSE(vmrpPolicyNeedsFull(p, 2));
    CU_ASSERT_TRUE(vmrpPolicyNeedsFull(p, 3));
    CU_ASSERT_TRUE(vmrpPolicyNeedsFull(p, 40));
    /* 0: only fulls */
    p->max_chain = 0;
    CU_ASSERT_TRUE(vmrpPolicyNeedsFull(p, 0));
}

/* Random valid policies go through text and back unchanged. */
static void
testRoundTrip(void)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(7);
    static const char *const scheds[] = {
        "none", "every 1m", "every 30m", "every 12h", "daily 00:00", "daily 23:59"
    };
    static const char *const disks[] = { "", "vdb", "sda,vdb,hdc" };
    guint done = 0;
    int i;

    for (i = 0; i < 500; i++) {
        g_autoptr(vmrpPolicy) p = vmrpPolicyNew();
        g_autoptr(vmrpPolicy) q = NULL;
        g_autofree char *text = NULL;
        g_autofree char *again = NULL;
        int r;

        for (r = 0; r < VMRP_RETENTION_RULE_LAST; r++)
            p->retention.keep[r] = g_rand_boolean(rand) ? 0 : g_rand_int_range(rand, 0, 1000);
        p->retention.keep_all = g_rand_int_range(rand, 0, 10) == 0;
        vmrpScheduleParse(scheds[g_rand_int_range(rand, 0, G_N_ELEMENTS(scheds))],
                          &p->schedule, NULL);
        p->consistency = g_rand_int_range(rand, 0, VMRP_CONSISTENCY_LAST);
        p->allow_fallback = g_rand_boolean(rand);
        vmrpPolicySetExcludeDisks(p, disks[g_rand_int_range(rand, 0, G_N_ELEMENTS(disks))],
                                  NULL);
        p->max_chain = g_rand_int_range(rand, -1, 100);
        text = vmrpPolicyFormat(p);
        q = vmrpPolicyParse(text, NULL);
        /* parsing accepts exactly what validation accepts */
        CU_ASSERT_EQUAL(q != NULL, vmrpPolicyValidate(p, NULL));
        if (!q)
            continue;
        again = vmrpPolicyFormat(q);
        CU_ASSERT_STRING_EQUAL(again, text);
        done++;
    }
    CU_ASSERT_TRUE(done > 50);
}

/* verify=every Nd|Nh: parsed, written only when set, and due after the interval */
static void
testVerify(void)
{
    static const char *const bad[] = {
        "every 0d", "every 7w", "every 7", "every d", "every 07d", "every 10001d",
        "every -1h", "sometimes", "",
    };
    g_autoptr(vmrpPolicy) policy = NULL;
    g_autoptr(vmrpPolicy) plain = NULL;
    g_autoptr(vmrpPolicy) back = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *text = NULL;
    g_autofree char *plain_text = NULL;
    gint64 secs = -1;
    size_t i;

    policy = vmrpPolicyParse("keep-last=3\nverify=every 7d\n", &error);
    CU_ASSERT_PTR_NOT_NULL_FATAL(policy);
    CU_ASSERT_EQUAL(policy->verify_every_s, 7 * 86400);
    text = vmrpPolicyFormat(policy);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nverify=every 7d\n"));
    back = vmrpPolicyParse(text, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    CU_ASSERT_EQUAL(back->verify_every_s, 7 * 86400);
    CU_ASSERT_TRUE(vmrpPolicyParseVerify("every 12h", &secs, NULL));
    CU_ASSERT_EQUAL(secs, 12 * 3600);
    CU_ASSERT_TRUE(vmrpPolicyParseVerify("none", &secs, NULL));
    CU_ASSERT_EQUAL(secs, 0);
    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err = NULL;
        if (vmrpPolicyParseVerify(bad[i], &secs, &err))
            fprintf(stderr, "accepted verify '%s'\n", bad[i]);
        CU_ASSERT_PTR_NOT_NULL(err);
    }

    /* unset: not written, never due */
    plain = vmrpPolicyParse("keep-last=3\n", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(plain);
    plain_text = vmrpPolicyFormat(plain);
    CU_ASSERT_PTR_NULL(strstr(plain_text, "verify"));
    CU_ASSERT_FALSE(vmrpPolicyVerifyDue(plain, VMRP_SCHEDULE_NEVER, 1000000));

    CU_ASSERT_TRUE(vmrpPolicyVerifyDue(policy, VMRP_SCHEDULE_NEVER, 1000000));
    CU_ASSERT_FALSE(vmrpPolicyVerifyDue(policy, 1000000, 1000000 + 7 * 86400 - 1));
    CU_ASSERT_TRUE(vmrpPolicyVerifyDue(policy, 1000000, 1000000 + 7 * 86400));
}

static const vmrpTestCase cases[] = {
    VMRP_TEST(testVerify),
    VMRP_TEST(testDefaultsAndFormat),
    VMRP_TEST(testParseDefaults),
    VMRP_TEST(testParseBad),
    VMRP_TEST(testValidateFilled),
    VMRP_TEST(testNeedsFull),
    VMRP_TEST(testRoundTrip),
    { NULL, NULL }
};

int
main(void)
{
    return vmrpTestMain("policy-object", cases, NULL, NULL);
}
