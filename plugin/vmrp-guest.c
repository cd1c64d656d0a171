/*
 * vmrp-guest.c: the guest agent through libvirt's public calls
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>
#include <libvirt/virterror.h>

#include "vmrp-guest.h"
#include "vmrp-error.h"

/* Sets the bound of the calls that follow; false (and @error) when libvirt
 * refuses it (a domain that stopped). */
static bool
guestBound(virDomainPtr dom, int timeout_s, GError **error)
{
    if (virDomainAgentSetResponseTimeout(dom, timeout_s, 0) < 0) {
        vmrpErrorFromLibvirt(error, "cannot set the guest agent's timeout");
        return false;
    }
    return true;
}

/* Back to libvirt's default; best effort: the domain may have stopped. */
static void
guestUnbound(virDomainPtr dom)
{
    virDomainAgentSetResponseTimeout(dom, VIR_DOMAIN_AGENT_RESPONSE_TIMEOUT_BLOCK, 0);
}

bool
vmrpGuestPing(virDomainPtr dom, int timeout_s, GError **error)
{
    char *name;
    bool ok;

    if (!guestBound(dom, timeout_s, error))
        return false;
    name = virDomainGetHostname(dom, VIR_DOMAIN_GET_HOSTNAME_AGENT);
    if (!name)
        vmrpErrorFromLibvirt(error, "the guest agent does not answer");
    guestUnbound(dom);
    ok = name != NULL;
    free(name);
    return ok;
}

int
vmrpGuestFreeze(virDomainPtr dom, int timeout_s, GError **error)
{
    int n;

    if (!guestBound(dom, timeout_s, error))
        return -1;
    n = virDomainFSFreeze(dom, NULL, 0, 0);
    if (n < 0)
        vmrpErrorFromLibvirt(error, "guest-fsfreeze-freeze failed");
    guestUnbound(dom);
    return n;
}

int
vmrpGuestThaw(virDomainPtr dom, int timeout_s, GError **error)
{
    int n;

    if (!guestBound(dom, timeout_s, error))
        return -1;
    n = virDomainFSThaw(dom, NULL, 0, 0);
    if (n < 0)
        vmrpErrorFromLibvirt(error, "guest-fsfreeze-thaw failed");
    guestUnbound(dom);
    return n;
}
