/* vmrp-monitor.c: the QEMU monitor (QMP) of a domain, over libvirt or a UNIX socket
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "vmrp-monitor.h"

#include "vmrp-qmp-libvirt.h"
#include "vmrp-qmp-private.h"

struct _vmrpMonitor {
    virDomainPtr dom;       /* libvirt transport, or */
    vmrpQmpSocket *sock;    /* socket transport */
};

vmrpMonitor *
vmrpMonitorNewLibvirt(virDomainPtr dom)
{
    vmrpMonitor *mon = g_new0(vmrpMonitor, 1);

    virDomainRef(dom);
    mon->dom = dom;
    return mon;
}

vmrpMonitor *
vmrpMonitorNewSocket(vmrpQmpSocket *sock)
{
    vmrpMonitor *mon = g_new0(vmrpMonitor, 1);

    mon->sock = sock;
    return mon;
}

void
vmrpMonitorFree(vmrpMonitor *mon)
{
    if (!mon)
        return;
    if (mon->dom)
        virDomainFree(mon->dom);
    vmrpQmpSocketFree(mon->sock);
    g_free(mon);
}

void
vmrpMonitorBitmapFree(vmrpMonitorBitmap *bitmap)
{
    if (!bitmap)
        return;
    g_free(bitmap->node);
    g_free(bitmap->name);
    g_free(bitmap);
}

json_object *
vmrpMonitorCommand(vmrpMonitor *mon, json_object *cmd, int timeout_ms, GError **error)
{
    g_autoptr(json_object) reply = NULL;
    json_object *ret;

    if (mon->sock)
        reply = vmrpQmpSocketExec(mon->sock, cmd, timeout_ms, error);
    else
        reply = vmrpQmpLibvirtMonitorExec(mon->dom, cmd, error);
    if (!reply)
        return NULL;
    if (!(ret = vmrpQmpReplyGetReturn(reply, vmrpQmpCommandGetName(cmd), error)))
        return NULL;
    return json_object_get(ret);
}

/* Runs @name without arguments; its return value must be of @type. */
static json_object *
vmrpMonitorSimple(vmrpMonitor *mon, const char *name, json_type type, GError **error)
{
    g_autoptr(json_object) cmd = NULL;
    g_autoptr(json_object) ret = NULL;

    if (!(cmd = vmrpQmpCommandNew(name, error, NULL)))
        return NULL;
    if (!(ret = vmrpMonitorCommand(mon, cmd, -1, error)))
        return NULL;
    if (!json_object_is_type(ret, type)) {
        g_autofree char *quote = vmrpQmpQuote(ret);
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_MALFORMED,
                    "%s: malformed reply: return is not a JSON %s: %s", name,
                    json_type_to_name(type), quote);
        return NULL;
    }
    return g_steal_pointer(&ret);
}

bool
vmrpMonitorQueryStatus(vmrpMonitor *mon, char **ret_status, bool *ret_running,
                       GError **error)
{
    const char *name = "query-status";
    g_autoptr(json_object) ret = vmrpMonitorSimple(mon, name, json_type_object, error);
    const char *status;
    bool running;

    if (!ret)
        return false;
    if (!(status = vmrpQmpObjectGetString(ret, "status", error)) ||
        !vmrpQmpObjectGetBool(ret, "running", &running, error)) {
        g_prefix_error(error, "%s: ", name);
        return false;
    }
    if (ret_status)
        *ret_status = g_strdup(status);
    *ret_running = running;
    return true;
}

static vmrpMonitorBitmap *
vmrpMonitorBitmapParse(const char *node, json_object *obj, GError **error)
{
    g_autoptr(vmrpMonitorBitmap) bitmap = g_new0(vmrpMonitorBitmap, 1);
    const char *name;

    if (!(name = vmrpQmpObjectGetString(obj, "name", error)) ||
        !vmrpQmpObjectGetUint(obj, "count", &bitmap->count, error) ||
        !vmrpQmpObjectGetUint(obj, "granularity", &bitmap->granularity, error) ||
        !vmrpQmpObjectGetBool(obj, "recording", &bitmap->recording, error) ||
        !vmrpQmpObjectGetBool(obj, "busy", &bitmap->busy, error))
        return NULL;
    bitmap->node = g_strdup(node);
    bitmap->name = g_strdup(name);
    bitmap->persistent = vmrpQmpObjectGetBoolOpt(obj, "persistent", false);
    bitmap->inconsistent = vmrpQmpObjectGetBoolOpt(obj, "inconsistent", false);
    return g_steal_pointer(&bitmap);
}

GPtrArray *
vmrpMonitorQueryDirtyBitmaps(vmrpMonitor *mon, GError **error)
{
    const char *name = "query-named-block-nodes";
    g_autoptr(json_object) cmd = NULL;
    g_autoptr(json_object) ret = NULL;
    g_autoptr(GPtrArray) list = NULL;
    size_t i, j;

    /* flat: without the backing chains nested in each node */
    if (!(cmd = vmrpQmpCommandNew(name, error, "b:flat", true, NULL)))
        return NULL;
    if (!(ret = vmrpMonitorCommand(mon, cmd, -1, error)))
        return NULL;
    if (!json_object_is_type(ret, json_type_array)) {
        g_autofree char *quote = vmrpQmpQuote(ret);
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_MALFORMED,
                    "%s: malformed reply: return is not a JSON array: %s", name, quote);
        return NULL;
    }

    list = g_ptr_array_new_with_free_func((GDestroyNotify)vmrpMonitorBitmapFree);
    for (i = 0; i < json_object_array_length(ret); i++) {
        json_object *node = json_object_array_get_idx(ret, i);
        const char *node_name = vmrpQmpObjectGetStringOpt(node, "node-name");
        json_object *bitmaps;

        if (!node_name || !json_object_object_get_ex(node, "dirty-bitmaps", &bitmaps) ||
            !json_object_is_type(bitmaps, json_type_array))
            continue;
        for (j = 0; j < json_object_array_length(bitmaps); j++) {
            vmrpMonitorBitmap *bitmap;

            if (!(bitmap = vmrpMonitorBitmapParse(node_name,
                                                  json_object_array_get_idx(bitmaps, j),
                                                  error))) {
                g_autofree char *shown = vmrpQmpPrintable(node_name);
                g_prefix_error(error, "%s: node %s: ", name, shown);
                return NULL;
            }
            g_ptr_array_add(list, bitmap);
        }
    }
    return g_steal_pointer(&list);
}
