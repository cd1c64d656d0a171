/*
 * vmrp-cmd-policy.c: automation: the libvirt hook's on-start worker
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <string.h>

#include "vmrp-cli.h"
#include "vmrp-agent.h"
#include "vmrp-error.h"

#define ON_START_WAIT_S 300

/* "__on-start UUID": started by the hook once the domain started: waits
 * for it to run and its agent to answer, then takes a point. */
bool
vmrpCmdOnStart(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    g_autoptr(vmrpAgent) agent = NULL;
    gint64 deadline = g_get_monotonic_time() + ON_START_WAIT_S * G_USEC_PER_SEC;
    virDomainPtr dom;
    char *create[] = { "rp-create", argv[1], "--allow-fallback", NULL };

    if (argc != 2 || !g_uuid_string_is_valid(argv[1])) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "__on-start: expected a domain uuid");
        return false;
    }
    if (!(dom = vmrpCLILookupDomain(cli, argv[1], error)))
        return false;
    agent = vmrpAgentNewLibvirt(dom);
    virDomainFree(dom);
    while (!vmrpAgentPing(agent, 5, NULL)) {
        if (g_get_monotonic_time() > deadline ||
            g_cancellable_set_error_if_cancelled(cli->cancel, error))
            break;   /* no agent: the point falls back to crash consistency */
        g_usleep(G_USEC_PER_SEC);
    }
    return vmrpCmdRpCreate(cli, G_N_ELEMENTS(create) - 1, create, error);
}
