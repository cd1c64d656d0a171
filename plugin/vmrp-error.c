/*
 * vmrp-error.c: errors of the hypervisor side
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <string.h>

#include "vmrp-error.h"

G_DEFINE_QUARK(vmrp-error-quark, vmrp_error)

void
vmrpErrorFromLibvirt(GError **error, const char *what)
{
    virErrorPtr err = virGetLastError();
    vmrpErrorCode code = VMRP_ERROR_LIBVIRT;

    if (err && (err->code == VIR_ERR_NO_DOMAIN ||
                err->code == VIR_ERR_NO_DOMAIN_CHECKPOINT))
        code = VMRP_ERROR_NOT_FOUND;
    else if (err && err->code == VIR_ERR_OPERATION_INVALID &&
             err->message && strstr(err->message, "job"))
        code = VMRP_ERROR_BUSY;
    g_set_error(error, VMRP_ERROR, code, "%s: %s", what,
                err && err->message ? err->message : "unknown libvirt error");
}

static void
silentHandler(void *opaque G_GNUC_UNUSED, virErrorPtr err G_GNUC_UNUSED)
{
}

void
vmrpErrorSilenceLibvirt(void)
{
    virSetErrorFunc(NULL, silentHandler);
}
