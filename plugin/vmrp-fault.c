/*
 * vmrp-fault.c: named fault points for tests (built only with -Dfault_points=true)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <gio/gio.h>

#include "vmrp-fault.h"
#include "vmrp-error.h"

/* Tells a waiting test that @phase was reached: best effort, no error. */
static void
faultNotify(const char *phase)
{
    const char *path = g_getenv("VMRP_FAULT_REACHED");
    g_autofree char *line = NULL;
    int fd;

    if (!path || !*path)
        return;
    if ((fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
        return;
    line = g_strdup_printf("%s\n", phase);
    if (write(fd, line, strlen(line)) < 0) {
        /* nothing to do: the test will time out waiting */
    }
    close(fd);
}

bool
vmrpFaultCheck(const char *phase, GError **error)
{
    const char *spec = g_getenv("VMRP_FAULT");
    g_auto(GStrv) faults = NULL;
    size_t i;

    if (!spec || !*spec)
        return true;
    faults = g_strsplit(spec, ",", -1);
    for (i = 0; faults[i]; i++) {
        char *action = strchr(faults[i], ':');

        if (action)
            *action++ = '\0';
        if (!g_str_equal(g_strstrip(faults[i]), phase))
            continue;

        faultNotify(phase);
        if (!action || g_str_equal(action, "fail")) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED, "fault injected at %s", phase);
            return false;
        }
        if (g_str_equal(action, "kill")) {
            raise(SIGKILL);
        } else if (g_str_equal(action, "stop")) {
            /* the test does something in between, then SIGCONT */
            raise(SIGSTOP);
            return true;
        } else if (g_str_equal(action, "hang")) {
            /* until a signal vmrp handles (SIGTERM from job-abort, SIGINT):
             * then as if the work had been cancelled there */
            pause();
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "interrupted at %s", phase);
            return false;
        }
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED,
                    "fault injected at %s (unknown action '%s')", phase, action);
        return false;
    }
    return true;
}
