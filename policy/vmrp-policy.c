/*
 * vmrp-policy.c: a collection's policy and its text form
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "vmrp-policy.h"
#include "vmrp-names.h"

vmrpPolicy *
vmrpPolicyNew(void)
{
    vmrpPolicy *policy = g_new0(vmrpPolicy, 1);

    policy->schedule.kind = VMRP_SCHEDULE_NONE;
    policy->consistency = VMRP_CONSISTENCY_APPLICATION;
    policy->max_chain = VMRP_POLICY_CHAIN_UNLIMITED;
    return policy;
}

void
vmrpPolicyFree(vmrpPolicy *policy)
{
    if (!policy)
        return;
    g_strfreev(policy->exclude_disks);
    g_free(policy);
}

bool
vmrpPolicySetExcludeDisks(vmrpPolicy *policy, const char *list, GError **error)
{
    GStrv disks = NULL;

    if (list && *list && !(disks = vmrpNameParseTargetList(list, error))) {
        g_prefix_error(error, "exclude-disks: ");
        return false;
    }
    g_strfreev(policy->exclude_disks);
    policy->exclude_disks = disks;
    return true;
}

bool
vmrpPolicyValidate(const vmrpPolicy *policy, GError **error)
{
    size_t i;

    if (!vmrpRetentionValidate(&policy->retention, error) ||
        !vmrpScheduleValidate(&policy->schedule, error))
        return false;
    if (policy->retention.keep_all && policy->schedule.kind == VMRP_SCHEDULE_NONE) {
        g_set_error_literal(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID,
                            "policy does nothing: keep-all prunes no point and there is "
                            "no schedule");
        return false;
    }
    if ((unsigned int)policy->consistency >= VMRP_CONSISTENCY_LAST) {
        g_set_error(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID,
                    "unknown consistency %d: expected application, filesystem or crash",
                    (int)policy->consistency);
        return false;
    }
    if (policy->allow_fallback && !vmrpConsistencyNeedsFreeze(policy->consistency)) {
        g_set_error_literal(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID,
                            "allow-fallback conflicts with consistency crash: a crash-"
                            "consistent point has nothing to fall back from");
        return false;
    }
    for (i = 0; policy->exclude_disks && policy->exclude_disks[i]; i++) {
        size_t j;

        if (!vmrpNameCheckTarget(policy->exclude_disks[i], error)) {
            g_prefix_error(error, "exclude-disks: ");
            return false;
        }
        for (j = 0; j < i; j++) {
            if (g_str_equal(policy->exclude_disks[i], policy->exclude_disks[j])) {
                g_set_error(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID,
                            "exclude-disks: disk '%s' is given twice",
                            policy->exclude_disks[i]);
                return false;
            }
        }
    }
    if (policy->max_chain < VMRP_POLICY_CHAIN_UNLIMITED ||
        policy->max_chain > VMRP_POLICY_CHAIN_MAX) {
        g_set_error(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID,
                    "invalid max-chain %d: expected 0 to %d increments after a full, "
                    "or unlimited", policy->max_chain, VMRP_POLICY_CHAIN_MAX);
        return false;
    }
    return true;
}

char *
vmrpPolicyFormat(const vmrpPolicy *policy)
{
    GString *out = g_string_new(NULL);
    g_autofree char *schedule = vmrpScheduleFormat(&policy->schedule);
    g_autofree char *disks = NULL;
    size_t i;

    for (i = 0; i < VMRP_RETENTION_RULE_LAST; i++)
        g_string_append_printf(out, "%s=%d\n", vmrpRetentionRuleToString(i),
                               policy->retention.keep[i]);
    g_string_append_printf(out, "keep-all=%s\n", policy->retention.keep_all ? "yes" : "no");
    g_string_append_printf(out, "schedule=%s\n", schedule);
    g_string_append_printf(out, "consistency=%s\n",
                           vmrpConsistencyToString(policy->consistency));
    g_string_append_printf(out, "allow-fallback=%s\n", policy->allow_fallback ? "yes" : "no");
    disks = policy->exclude_disks ? g_strjoinv(",", policy->exclude_disks) : g_strdup("");
    g_string_append_printf(out, "exclude-disks=%s\n", disks);
    if (policy->max_chain == VMRP_POLICY_CHAIN_UNLIMITED)
        g_string_append(out, "max-chain=unlimited\n");
    else
        g_string_append_printf(out, "max-chain=%d\n", policy->max_chain);
    if (policy->verify_every_s % 86400 == 0 && policy->verify_every_s > 0)
        g_string_append_printf(out, "verify=every %" G_GINT64_FORMAT "d\n",
                               policy->verify_every_s / 86400);
    else if (policy->verify_every_s > 0)
        g_string_append_printf(out, "verify=every %" G_GINT64_FORMAT "h\n",
                               policy->verify_every_s / 3600);
    return g_string_free(out, FALSE);
}

/* A decimal count from 0 to @max: digits only, no sign, no leading zero. */
static bool
parseCount(const char *str, int max, int *ret_count)
{
    gint64 n = 0;
    const char *p;

    if (!*str || (str[0] == '0' && str[1]))
        return false;
    for (p = str; *p; p++) {
        if (!g_ascii_isdigit(*p))
            return false;
        n = n * 10 + (*p - '0');
        if (n > max)
            return false;
    }
    *ret_count = n;
    return true;
}

static bool
parseYesNo(const char *str, bool *ret_value)
{
    if (g_str_equal(str, "yes"))
        *ret_value = true;
    else if (g_str_equal(str, "no"))
        *ret_value = false;
    else
        return false;
    return true;
}

enum {
    KEY_KEEP_ALL = VMRP_RETENTION_RULE_LAST,
    KEY_SCHEDULE,
    KEY_CONSISTENCY,
    KEY_ALLOW_FALLBACK,
    KEY_EXCLUDE_DISKS,
    KEY_MAX_CHAIN,
    KEY_VERIFY,
    KEY_LAST
};

static const char *const otherKeys[KEY_LAST - VMRP_RETENTION_RULE_LAST] = {
    "keep-all", "schedule", "consistency", "allow-fallback", "exclude-disks", "max-chain",
    "verify",
};

static int
keyFromString(const char *key)
{
    size_t i;

    for (i = 0; i < VMRP_RETENTION_RULE_LAST; i++) {
        if (g_str_equal(key, vmrpRetentionRuleToString(i)))
            return i;
    }
    for (i = 0; i < G_N_ELEMENTS(otherKeys); i++) {
        if (g_str_equal(key, otherKeys[i]))
            return VMRP_RETENTION_RULE_LAST + i;
    }
    return -1;
}

/* One key's value into @policy; the error says what is wrong with it. */
static bool
parseValue(vmrpPolicy *policy, int key, const char *value, GError **error)
{
    const char *expected = NULL;

    switch (key) {
    case KEY_KEEP_ALL:
        if (!parseYesNo(value, &policy->retention.keep_all))
            expected = "yes or no";
        break;
    case KEY_SCHEDULE:
        return vmrpScheduleParse(value, &policy->schedule, error);
    case KEY_CONSISTENCY:
        return vmrpConsistencyFromString(value, &policy->consistency, error);
    case KEY_ALLOW_FALLBACK:
        if (!parseYesNo(value, &policy->allow_fallback))
            expected = "yes or no";
        break;
    case KEY_EXCLUDE_DISKS:
        return vmrpPolicySetExcludeDisks(policy, value, error);
    case KEY_VERIFY:
        return vmrpPolicyParseVerify(value, &policy->verify_every_s, error);
    case KEY_MAX_CHAIN:
        if (g_str_equal(value, "unlimited"))
            policy->max_chain = VMRP_POLICY_CHAIN_UNLIMITED;
        else if (!parseCount(value, VMRP_POLICY_CHAIN_MAX, &policy->max_chain))
            expected = "unlimited or a count from 0 to 1000000";
        break;
    default:
        if (!parseCount(value, VMRP_RETENTION_COUNT_MAX, &policy->retention.keep[key]))
            expected = "a count from 0 to 1000000";
        break;
    }
    if (expected) {
        g_autofree char *shown = g_strescape(value, NULL);
        const char *name = key < VMRP_RETENTION_RULE_LAST ?
                           vmrpRetentionRuleToString(key) :
                           otherKeys[key - VMRP_RETENTION_RULE_LAST];

        g_set_error(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID,
                    "invalid %s '%s': expected %s", name, shown, expected);
        return false;
    }
    return true;
}

vmrpPolicy *
vmrpPolicyParse(const char *text, GError **error)
{
    g_autoptr(vmrpPolicy) policy = vmrpPolicyNew();
    g_auto(GStrv) lines = NULL;
    bool seen[KEY_LAST] = { false };
    size_t i;

    if (!text) {
        g_set_error_literal(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID,
                            "no policy text");
        return NULL;
    }
    lines = g_strsplit(text, "\n", -1);
    for (i = 0; lines[i]; i++) {
        const char *line = lines[i];
        const char *eq = strchr(line, '=');
        g_autofree char *name = NULL;
        int key;

        if (!*line)
            continue;
        if (!eq || eq == line) {
            g_autofree char *shown = g_strescape(line, NULL);

            g_set_error(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID,
                        "policy line %zu: expected key=value, not '%s'", i + 1, shown);
            return NULL;
        }
        name = g_strndup(line, eq - line);
        if ((key = keyFromString(name)) < 0) {
            g_autofree char *shown = g_strescape(name, NULL);

            g_set_error(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID,
                        "policy line %zu: unknown key '%s'", i + 1, shown);
            return NULL;
        }
        if (seen[key]) {
            g_set_error(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID,
                        "policy line %zu: %s is given twice", i + 1, name);
            return NULL;
        }
        seen[key] = true;
        if (!parseValue(policy, key, eq + 1, error)) {
            g_prefix_error(error, "policy line %zu: ", i + 1);
            return NULL;
        }
    }
    if (!vmrpPolicyValidate(policy, error)) {
        g_prefix_error(error, "invalid policy: ");
        return NULL;
    }
    return g_steal_pointer(&policy);
}

bool
vmrpPolicyNeedsFull(const vmrpPolicy *policy, guint chain_length)
{
    if (policy->max_chain < 0)
        return false;
    return chain_length >= (guint)policy->max_chain;
}

bool
vmrpPolicyParseVerify(const char *text, gint64 *ret_seconds, GError **error)
{
    int n = 0;
    size_t len;

    if (g_str_equal(text, "none")) {
        *ret_seconds = 0;
        return true;
    }
    len = strlen(text);
    if (g_str_has_prefix(text, "every ") && len > 7 &&
        (text[len - 1] == 'd' || text[len - 1] == 'h')) {
        g_autofree char *num = g_strndup(text + 6, len - 7);

        if (parseCount(num, 10000, &n) && n > 0) {
            *ret_seconds = (gint64)n * (text[len - 1] == 'd' ? 86400 : 3600);
            return true;
        }
    }
    {
        g_autofree char *shown = g_strescape(text, NULL);
        g_set_error(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID,
                    "invalid verify '%s': expected 'every Nd', 'every Nh' (N 1 to 10000) "
                    "or 'none'", shown);
    }
    return false;
}

bool
vmrpPolicyVerifyDue(const vmrpPolicy *policy, gint64 last_verified, gint64 now)
{
    if (policy->verify_every_s <= 0)
        return false;
    return last_verified == VMRP_SCHEDULE_NEVER || now - last_verified >= policy->verify_every_s;
}
