/*
 * fuzz-qmp-socket.c: the byte stream of a QEMU monitor or guest agent socket
 * (vmrpQmpSocket's reader: greeting, guest-sync-delimited, 0xFF delimiters,
 * events, split messages) and the agent's and monitor's reply parsers on top
 *
 * Input: one byte that chooses the mode (even: agent, odd: monitor), then
 * what the peer sends, written at once into the other end of a socketpair
 * and followed by end of file.  The agent's sync ids come from g_random with
 * a fixed seed, so the first is always FUZZ_SYNC_ID (see the dictionary).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmrp-fuzz.h"
#include "vmrp-agent.h"
#include "vmrp-monitor.h"

#define FUZZ_SEED 1

int
LLVMFuzzerInitialize(int *argc G_GNUC_UNUSED, char ***argv G_GNUC_UNUSED)
{
    return 0;
}

static void
runAgent(vmrpQmpSocket *sock)
{
    g_autoptr(vmrpAgent) agent = vmrpAgentNewSocket(sock);
    static const char *const mounts[] = { "/", "/var", NULL };
    static const char *const argv[] = { "/bin/cat", "/etc/hostname", NULL };
    g_autoptr(GPtrArray) fsinfo = NULL;
    g_autoptr(GBytes) file = NULL;
    g_autoptr(GBytes) out = NULL;
    g_autoptr(GBytes) err = NULL;
    g_autoptr(GError) error = NULL;
    bool frozen = false;
    int code = 0;

    /* every call fails once the stream ends; none may crash or hang */
    if (!vmrpAgentPing(agent, 1, &error))
        vmrpFuzzCheckError(error);
    g_clear_error(&error);
    if (!vmrpAgentFsfreezeStatus(agent, 1, &frozen, &error))
        vmrpFuzzCheckError(error);
    g_clear_error(&error);
    if (vmrpAgentFsfreezeFreeze(agent, 1, &error) < 0)
        vmrpFuzzCheckError(error);
    g_clear_error(&error);
    if (vmrpAgentFsfreezeFreezeList(agent, mounts, 1, &error) < 0)
        vmrpFuzzCheckError(error);
    g_clear_error(&error);
    if (!(fsinfo = vmrpAgentGetFsinfo(agent, 1, &error))) {
        vmrpFuzzCheckError(error);
    } else {
        guint i;

        for (i = 0; i < fsinfo->len; i++) {
            const vmrpAgentFsinfo *info = g_ptr_array_index(fsinfo, i);
            VMRP_FUZZ_ASSERT(info->name && info->mountpoint && info->type);
            VMRP_FUZZ_ASSERT(info->disks && info->serials);
        }
    }
    g_clear_error(&error);
    if (!(file = vmrpAgentFileRead(agent, "/etc/hostname", 1, &error)))
        vmrpFuzzCheckError(error);
    g_clear_error(&error);
    /* timeout 0: one guest-exec-status, no sleeping between polls */
    if (!vmrpAgentExec(agent, argv, "input", 0, &code, &out, &err, &error))
        vmrpFuzzCheckError(error);
    g_clear_error(&error);
    if (vmrpAgentFsfreezeThaw(agent, 1, &error) < 0)
        vmrpFuzzCheckError(error);
}

static void
runMonitor(vmrpQmpSocket *sock)
{
    g_autoptr(vmrpMonitor) mon = vmrpMonitorNewSocket(sock);
    g_autoptr(GPtrArray) bitmaps = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *status = NULL;
    bool running = false;

    if (!vmrpMonitorQueryStatus(mon, &status, &running, &error))
        vmrpFuzzCheckError(error);
    g_clear_error(&error);
    if (!(bitmaps = vmrpMonitorQueryDirtyBitmaps(mon, &error))) {
        vmrpFuzzCheckError(error);
    } else {
        guint i;

        for (i = 0; i < bitmaps->len; i++) {
            const vmrpMonitorBitmap *bitmap = g_ptr_array_index(bitmaps, i);
            VMRP_FUZZ_ASSERT(bitmap->node && bitmap->name);
        }
    }
    g_clear_error(&error);
    if (!vmrpMonitorQueryStatus(mon, NULL, &running, &error))
        vmrpFuzzCheckError(error);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vmrpQmpSocketMode mode;
    g_autoptr(GError) error = NULL;
    vmrpQmpSocket *sock;
    int fds[2];
    size_t done = 0;

    if (size < 1)
        return 0;
    mode = data[0] % 2 ? VMRP_QMP_SOCKET_MONITOR : VMRP_QMP_SOCKET_AGENT;
    data++;
    size--;

    VMRP_FUZZ_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    VMRP_FUZZ_ASSERT(fcntl(fds[1], F_SETFL, O_NONBLOCK) == 0);
    /* the whole stream, or what fits in the socket's buffer */
    while (done < size) {
        ssize_t n = write(fds[1], data + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += n;
    }
    /* the peer is gone once its bytes are read: nothing ever waits */
    shutdown(fds[1], SHUT_WR);

    g_random_set_seed(FUZZ_SEED);
    if (!(sock = vmrpQmpSocketOpenFd(fds[0], mode, 1000, &error))) {
        vmrpFuzzCheckError(error);
    } else {
        VMRP_FUZZ_ASSERT(vmrpQmpSocketGetMode(sock) == mode);
        if (mode == VMRP_QMP_SOCKET_AGENT)
            runAgent(sock);
        else
            runMonitor(sock);
    }
    close(fds[1]);
    return 0;
}
