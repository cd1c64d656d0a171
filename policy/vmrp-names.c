/*
 * vmrp-names.c: safe names
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "vmrp-names.h"
#include "vmrp-consistency.h"

#define VMRP_NAME_MAX 64

static bool
nameCharsValid(const char *name, const char *extra)
{
    const char *p;

    for (p = name; *p; p++) {
        if (!g_ascii_isalnum(*p) && !strchr(extra, *p))
            return false;
    }
    return true;
}

bool
vmrpNameCheckDomain(const char *name, GError **error)
{
    if (!name || !*name || strlen(name) > VMRP_NAME_MAX ||
        name[0] == '.' || name[0] == '-' ||
        !nameCharsValid(name, "._+-")) {
        g_autofree char *shown = g_strescape(name ? name : "", NULL);
        g_set_error(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID,
                    "invalid domain name '%s': use 1 to %d letters, digits, '.', '_', '+' "
                    "or '-', not starting with '.' or '-'", shown, VMRP_NAME_MAX);
        return false;
    }
    return true;
}

bool
vmrpNameCheckPoint(const char *id, GError **error)
{
    static const char shape[] = "dddddddd-dddddd-xxxxxx";
    size_t i;
    bool ok = id && strlen(id) == sizeof(shape) - 1;

    for (i = 0; ok && shape[i]; i++) {
        if (shape[i] == 'd')
            ok = g_ascii_isdigit(id[i]);
        else if (shape[i] == 'x')
            ok = g_ascii_isxdigit(id[i]) && !g_ascii_isupper(id[i]);
        else
            ok = id[i] == shape[i];
    }
    if (!ok) {
        g_autofree char *shown = g_strescape(id ? id : "", NULL);
        g_set_error(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID,
                    "invalid restore point id '%s': expected YYYYMMDD-HHMMSS-xxxxxx", shown);
    }
    return ok;
}

bool
vmrpNameIsPlainFile(const char *name)
{
    const char *p;

    if (!*name || name[0] == '.')
        return false;
    for (p = name; *p; p++) {
        if (*p == '/' || g_ascii_iscntrl(*p))
            return false;
    }
    return true;
}

bool
vmrpNameCheckTarget(const char *target, GError **error)
{
    if (!target || !*target || strlen(target) > 32 || !nameCharsValid(target, "_")) {
        g_autofree char *shown = g_strescape(target ? target : "", NULL);
        g_set_error(error, VMRP_POLICY_ERROR, VMRP_POLICY_ERROR_INVALID,
                    "invalid disk target '%s'", shown);
        return false;
    }
    return true;
}

GStrv
vmrpNameParseTargetList(const char *list, GError **error)
{
    g_auto(GStrv) parts = g_strsplit(list ? list : "", ",", -1);
    g_autoptr(GStrvBuilder) out = g_strv_builder_new();
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    size_t i;

    for (i = 0; parts[i]; i++) {
        g_strstrip(parts[i]);
        if (!vmrpNameCheckTarget(parts[i], error))
            return NULL;
        if (g_hash_table_contains(seen, parts[i]))
            continue;
        g_hash_table_add(seen, parts[i]);
        g_strv_builder_add(out, parts[i]);
    }
    return g_strv_builder_end(out);
}
