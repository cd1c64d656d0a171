/*
 * vmrp-run.c: running helper programs
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "vmrp-run.h"
#include "vmrp-error.h"

static const char *
lastLine(char *text)
{
    char *end;
    char *nl;

    if (!text)
        return "";
    g_strchomp(text);
    end = text + strlen(text);
    nl = g_strrstr_len(text, end - text, "\n");
    return nl ? nl + 1 : text;
}

bool
vmrpRun(const char *const *argv, char **ret_stdout, GError **error)
{
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_autoptr(GError) local = NULL;
    int status = 0;

    if (!g_spawn_sync(NULL, (char **)argv, NULL,
                      G_SPAWN_SEARCH_PATH | G_SPAWN_CLOEXEC_PIPES,
                      NULL, NULL, &out, &err, &status, &local)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED,
                    "cannot run %s: %s", argv[0], local->message);
        return false;
    }
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED,
                    "%s failed: %s", argv[0], lastLine(err));
        return false;
    }
    if (ret_stdout)
        *ret_stdout = g_steal_pointer(&out);
    return true;
}
