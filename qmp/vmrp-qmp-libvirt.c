/* vmrp-qmp-libvirt.c: QMP and guest-agent transport through libvirt's passthrough APIs
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "vmrp-qmp-libvirt.h"

#include <string.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/virterror.h>

#include "vmrp-qmp-private.h"

/* What libvirt puts before the agent's own error description. */
#define VMRP_QMP_LIBVIRT_AGENT_PREFIX "unable to execute QEMU agent command '"

/* Converts libvirt's last error into a GError "NAME: MESSAGE". */
static void
vmrpQmpLibvirtSetError(const char *name, bool agent, int timeout_s, GError **error)
{
    virErrorPtr verr = virGetLastError();
    const char *msg = virGetLastErrorMessage();
    int code = VMRP_QMP_ERROR_FAILED;
    g_autofree char *shown = NULL;
    const char *p;

    if (verr) {
        switch (verr->code) {
        case VIR_ERR_OPERATION_INVALID:     /* domain is not running */
        case VIR_ERR_NO_DOMAIN:
        case VIR_ERR_AGENT_UNSYNCED:
        case VIR_ERR_ARGUMENT_UNSUPPORTED:  /* QEMU guest agent is not configured */
            code = VMRP_QMP_ERROR_UNAVAILABLE;
            break;
        case VIR_ERR_AGENT_UNRESPONSIVE:
            /* "not connected" is unavailable, "not available for now" is libvirt's
             * timeout */
            if (verr->message && strstr(verr->message, "not available for now")) {
                g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_TIMEOUT,
                            "%s: timed out after %d s (guest agent not responding)",
                            name, timeout_s);
                virResetLastError();
                return;
            }
            code = VMRP_QMP_ERROR_UNAVAILABLE;
            break;
        case VIR_ERR_OPERATION_TIMEOUT:
            code = VMRP_QMP_ERROR_TIMEOUT;
            break;
        case VIR_ERR_INTERNAL_ERROR:
            if (agent && (p = strstr(msg, VMRP_QMP_LIBVIRT_AGENT_PREFIX)) &&
                (p = strstr(p + strlen(VMRP_QMP_LIBVIRT_AGENT_PREFIX), "': "))) {
                /* the agent answered with an error: keep only its description; libvirt
                 * drops the class, so recognise qemu-ga's CommandNotFound texts */
                p += 3;
                if ((strstr(p, "Command ") || strstr(p, "The command ")) &&
                    (strstr(p, " has not been found") || strstr(p, " has been disabled")))
                    code = VMRP_QMP_ERROR_NOT_FOUND;
                else
                    code = VMRP_QMP_ERROR_COMMAND;
                /* the guest's words: one printable line */
                shown = vmrpQmpPrintable(p);
                g_set_error(error, VMRP_QMP_ERROR, code, "%s: %s", name, shown);
                virResetLastError();
                return;
            }
            break;
        default:
            break;
        }
    }
    shown = vmrpQmpPrintable(msg);
    g_set_error(error, VMRP_QMP_ERROR, code, "%s: %s", name, shown);
    virResetLastError();
}

/* Parses libvirt's reply string. */
static json_object *
vmrpQmpLibvirtParseReply(const char *name, const char *result, GError **error)
{
    json_object *reply;

    if (!result) {
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_MALFORMED,
                    "%s: malformed reply: libvirt returned no reply", name);
        return NULL;
    }
    if (!(reply = vmrpQmpParse(result, error))) {
        g_prefix_error(error, "%s: ", name);
        return NULL;
    }
    if (!json_object_is_type(reply, json_type_object)) {
        json_object_put(reply);
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_MALFORMED,
                    "%s: malformed reply: not a JSON object", name);
        return NULL;
    }
    return reply;
}

static const char *
vmrpQmpLibvirtCommandName(json_object *cmd, GError **error)
{
    const char *name = vmrpQmpCommandGetName(cmd);

    if (!name) {
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_INVALID,
                    "QMP command without execute: %s", cmd ? vmrpQmpToString(cmd) : "null");
    }
    return name;
}

json_object *
vmrpQmpLibvirtMonitorExec(virDomainPtr dom, json_object *cmd, GError **error)
{
    const char *name = vmrpQmpLibvirtCommandName(cmd, error);
    g_autofree char *result = NULL;

    if (!name)
        return NULL;
    if (virDomainQemuMonitorCommand(dom, vmrpQmpToString(cmd), &result, 0) < 0) {
        vmrpQmpLibvirtSetError(name, false, 0, error);
        return NULL;
    }
    return vmrpQmpLibvirtParseReply(name, result, error);
}

json_object *
vmrpQmpLibvirtAgentExec(virDomainPtr dom, json_object *cmd, int timeout_s, GError **error)
{
    const char *name = vmrpQmpLibvirtCommandName(cmd, error);
    g_autofree char *result = NULL;
    int timeout;

    if (!name)
        return NULL;
    if (timeout_s < 0)
        timeout = VIR_DOMAIN_QEMU_AGENT_COMMAND_BLOCK;
    else
        timeout = MAX(timeout_s, 1);

    if (!(result = virDomainQemuAgentCommand(dom, vmrpQmpToString(cmd), timeout, 0))) {
        vmrpQmpLibvirtSetError(name, true, timeout, error);
        return NULL;
    }
    return vmrpQmpLibvirtParseReply(name, result, error);
}
