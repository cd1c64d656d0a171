/*
 * vmrp-thaw-guard.c: a guest is never left frozen, even when vmrp dies
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <stdlib.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmrp-thaw-guard.h"
#include "vmrp-guest.h"
#include "vmrp-error.h"

#define GUARD_ARMED "armed\n"
#define GUARD_DISARM 'D'

struct _vmrpThawGuard {
    GPid pid;
    int fd;          /* the write end of the guard's stdin */
};

static void
guardChildSetup(gpointer data G_GNUC_UNUSED)
{
    /* out of vmrp's session: a Ctrl-C or a kill of vmrp's group spares it */
    setsid();
}

vmrpThawGuard *
vmrpThawGuardStart(virDomainPtr dom, int max_seconds, GError **error)
{
    g_autofree char *uri = virConnectGetURI(virDomainGetConnect(dom));
    g_autofree char *seconds = g_strdup_printf("%d", max_seconds);
    char uuid[VIR_UUID_STRING_BUFLEN];
    g_autoptr(GError) local = NULL;
    vmrpThawGuard *guard;
    char buf[sizeof(GUARD_ARMED)] = "";
    int out = -1;
    ssize_t n;

    if (!uri || virDomainGetUUIDString(dom, uuid) < 0) {
        vmrpErrorFromLibvirt(error, "cannot start the thaw guard");
        return NULL;
    }
    const char *argv[] = { "/proc/self/exe", "__thaw-guard", uri, uuid, seconds, NULL };

    guard = g_new0(vmrpThawGuard, 1);
    guard->fd = -1;
    if (!g_spawn_async_with_pipes(NULL, (char **)argv, NULL,
                                  G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDERR_TO_DEV_NULL,
                                  guardChildSetup, NULL, &guard->pid,
                                  &guard->fd, &out, NULL, &local)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED,
                    "cannot start the thaw guard: %s", local->message);
        g_free(guard);
        return NULL;
    }
    /* armed means connected to libvirt and waiting: only then freeze */
    do {
        n = read(out, buf, sizeof(buf) - 1);
    } while (n < 0 && errno == EINTR);
    close(out);
    if (n != (ssize_t)strlen(GUARD_ARMED) || strcmp(buf, GUARD_ARMED) != 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED,
                    "the thaw guard did not start: the guest is not frozen without one");
        vmrpThawGuardDisarm(guard);
        return NULL;
    }
    return guard;
}

void
vmrpThawGuardDisarm(vmrpThawGuard *guard)
{
    char c = GUARD_DISARM;
    int status;

    if (!guard)
        return;
    if (guard->fd >= 0) {
        if (write(guard->fd, &c, 1) != 1)
            kill(guard->pid, SIGKILL);
        close(guard->fd);
    }
    while (waitpid(guard->pid, &status, 0) < 0 && errno == EINTR)
        ;
    g_spawn_close_pid(guard->pid);
    g_free(guard);
}

void
vmrpThawGuardAbandon(vmrpThawGuard *guard)
{
    if (!guard)
        return;
    close(guard->fd);
    g_spawn_close_pid(guard->pid);
    g_free(guard);
}

int
vmrpThawGuardMain(int argc, char **argv)
{
    struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
    virConnectPtr conn;
    virDomainPtr dom;
    int seconds;
    int attempt;
    char c = 0;
    int rc;

    if (argc != 4 || (seconds = atoi(argv[3])) <= 0)
        return 2;
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    vmrpErrorSilenceLibvirt();
    /* connect first: when it is needed, vmrp may be gone */
    if (!(conn = virConnectOpen(argv[1])) ||
        !(dom = virDomainLookupByUUIDString(conn, argv[2])))
        return 1;
    /* armed, it outlives a stop of what started it: systemd's stop of
     * run-policies sends SIGTERM to every process of the unit at once, and
     * vmrp may be SIGKILLed before it thaws.  The guard ends by itself: at
     * vmrp's disarm, its death (EOF), or the freeze bound. */
    signal(SIGTERM, SIG_IGN);
    if (write(STDOUT_FILENO, GUARD_ARMED, strlen(GUARD_ARMED)) < 0)
        return 1;
    close(STDOUT_FILENO);

    do {
        rc = poll(&pfd, 1, seconds * 1000);
    } while (rc < 0 && errno == EINTR);
    if (rc > 0 && read(STDIN_FILENO, &c, 1) == 1 && c == GUARD_DISARM)
        return 0;

    /* vmrp died inside the freeze window, or the window outlasted its bound:
     * the guard is its own process with its own connection, so the public
     * thaw works without vmrp (bounded per call, see vmrp-guest.h) */
    for (attempt = 0; attempt < 10; attempt++) {
        if (vmrpGuestThaw(dom, 10, NULL) >= 0)
            break;
        g_usleep(G_USEC_PER_SEC);
    }
    virDomainFree(dom);
    virConnectClose(conn);
    return 0;
}
