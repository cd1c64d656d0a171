/* vmrp-qmp-socket.h: QMP and guest-agent transport over a plain UNIX socket
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "vmrp-qmp.h"

typedef struct _vmrpQmpSocket vmrpQmpSocket;

typedef enum {
    /* a QEMU monitor: reads the greeting and negotiates with qmp_capabilities */
    VMRP_QMP_SOCKET_MONITOR,
    /* a guest agent: synchronises with guest-sync-delimited (0xFF delimiter) on open and
     * again before the next command after a timeout */
    VMRP_QMP_SOCKET_AGENT,
} vmrpQmpSocketMode;

/*
 * Connects to the UNIX socket @path and does the mode's handshake within @timeout_ms
 * (negative: no limit). Errors: VMRP_QMP_ERROR_UNAVAILABLE when nothing listens,
 * VMRP_QMP_ERROR_TIMEOUT, VMRP_QMP_ERROR_CLOSED, VMRP_QMP_ERROR_MALFORMED.
 */
vmrpQmpSocket *
vmrpQmpSocketOpen(const char *path, vmrpQmpSocketMode mode, int timeout_ms, GError **error);

/* As vmrpQmpSocketOpen on a connected stream socket @fd, which is consumed (closed on
 * failure too). */
vmrpQmpSocket *
vmrpQmpSocketOpenFd(int fd, vmrpQmpSocketMode mode, int timeout_ms, GError **error);

/*
 * Sends @cmd (borrowed; built by vmrpQmpCommandNew) and returns the whole reply object
 * (new reference, may be an error reply: see vmrpQmpReplyGetReturn), skipping
 * asynchronous events. Waits at most @timeout_ms (negative: no limit):
 * "CMD: timed out after N ms" (VMRP_QMP_ERROR_TIMEOUT). Other errors:
 * "CMD: connection closed by peer" (VMRP_QMP_ERROR_CLOSED), "CMD: malformed JSON from
 * peer: ..." (VMRP_QMP_ERROR_MALFORMED). After a timeout or a broken stream, a monitor
 * socket refuses further commands; an agent socket re-synchronises first.
 */
json_object *
vmrpQmpSocketExec(vmrpQmpSocket *sock, json_object *cmd, int timeout_ms, GError **error);

/* The socket's mode. */
vmrpQmpSocketMode
vmrpQmpSocketGetMode(vmrpQmpSocket *sock);

/* Closes the socket. Accepts NULL. */
void
vmrpQmpSocketFree(vmrpQmpSocket *sock);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpQmpSocket, vmrpQmpSocketFree)
