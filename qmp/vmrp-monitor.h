/* vmrp-monitor.h: the QEMU monitor (QMP) of a domain, over libvirt or a UNIX socket
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libvirt/libvirt.h>

#include "vmrp-qmp.h"
#include "vmrp-qmp-socket.h"

typedef struct _vmrpMonitor vmrpMonitor;

/* One dirty bitmap of a block node (query-named-block-nodes). */
typedef struct {
    char *node;          /* the node name, e.g. "libvirt-1-format" */
    char *name;          /* the bitmap name, e.g. a libvirt checkpoint name */
    unsigned long long count;        /* dirty bytes */
    unsigned long long granularity;  /* bytes */
    bool recording;
    bool busy;
    bool persistent;
    bool inconsistent;   /* left by an unclean QEMU exit: unusable for increments */
} vmrpMonitorBitmap;

void
vmrpMonitorBitmapFree(vmrpMonitorBitmap *bitmap);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpMonitorBitmap, vmrpMonitorBitmapFree)

/* The monitor of @dom through virDomainQemuMonitorCommand (takes a domain reference;
 * libvirt marks the domain tainted "custom-monitor" on first use). */
vmrpMonitor *
vmrpMonitorNewLibvirt(virDomainPtr dom);

/* The monitor behind @sock, in VMRP_QMP_SOCKET_MONITOR mode (consumed). */
vmrpMonitor *
vmrpMonitorNewSocket(vmrpQmpSocket *sock);

/* Accepts NULL. */
void
vmrpMonitorFree(vmrpMonitor *mon);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpMonitor, vmrpMonitorFree)

/* Sends any command (borrowed, see vmrpQmpCommandNew) and returns its "return" value
 * (new reference). @timeout_ms (negative: no limit) applies to the socket transport only;
 * libvirt has its own. */
json_object *
vmrpMonitorCommand(vmrpMonitor *mon, json_object *cmd, int timeout_ms, GError **error);

/* query-status: *ret_status (nullable, e.g. "running", "paused") and *ret_running. */
bool
vmrpMonitorQueryStatus(vmrpMonitor *mon, char **ret_status, bool *ret_running,
                       GError **error);

/* The dirty bitmaps of every named block node: a GPtrArray of vmrpMonitorBitmap. */
GPtrArray *
vmrpMonitorQueryDirtyBitmaps(vmrpMonitor *mon, GError **error);
