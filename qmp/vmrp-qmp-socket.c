/* vmrp-qmp-socket.c: QMP and guest-agent transport over a plain UNIX socket
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "vmrp-qmp-socket.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmrp-qmp-private.h"

/* The byte that the guest agent puts before its reply to guest-sync-delimited. */
#define VMRP_QMP_AGENT_DELIMITER 0xFF

#define VMRP_QMP_READ_SIZE 65536

struct _vmrpQmpSocket {
    int fd;
    vmrpQmpSocketMode mode;
    json_tokener *tok;
    GByteArray *in;       /* received bytes not yet fed to the tokener */
    bool syncing;         /* agent: discarding everything before the delimiter */
    bool seenDelimiter;   /* agent: the delimiter came since syncing started */
    bool needSync;        /* agent: out of step after an error, synchronise first */
    char *broken;         /* monitor: why the stream is unusable, or NULL */
};

/* A point in time to wait until (g_get_monotonic_time), or -1 for no limit. */
static gint64
vmrpQmpSocketDeadline(int timeout_ms)
{
    if (timeout_ms < 0)
        return -1;
    return g_get_monotonic_time() + (gint64)timeout_ms * 1000;
}

/* Milliseconds left until @deadline for poll(): -1 without limit, 0 when passed. */
static int
vmrpQmpSocketRemaining(gint64 deadline)
{
    gint64 left;

    if (deadline < 0)
        return -1;
    left = deadline - g_get_monotonic_time();
    if (left <= 0)
        return 0;
    return (int)MIN((left + 999) / 1000, G_MAXINT);
}

/* The stream can no longer be trusted to be in step with the commands. */
static void
vmrpQmpSocketSetBroken(vmrpQmpSocket *sock, GError *err)
{
    if (sock->mode == VMRP_QMP_SOCKET_AGENT) {
        sock->needSync = true;
        return;
    }
    if (!sock->broken)
        sock->broken = g_strdup(err->message);
}

static void
vmrpQmpSocketSetTimeout(vmrpQmpSocket *sock, const char *name, int timeout_ms,
                        GError **error)
{
    g_autoptr(GError) err = g_error_new(VMRP_QMP_ERROR, VMRP_QMP_ERROR_TIMEOUT,
                                        "%s: timed out after %d ms", name, timeout_ms);

    vmrpQmpSocketSetBroken(sock, err);
    g_propagate_error(error, g_steal_pointer(&err));
}

static void
vmrpQmpSocketSetClosed(vmrpQmpSocket *sock, const char *name, GError **error)
{
    g_autoptr(GError) err = g_error_new(VMRP_QMP_ERROR, VMRP_QMP_ERROR_CLOSED,
                                        "%s: connection closed by peer", name);

    vmrpQmpSocketSetBroken(sock, err);
    g_propagate_error(error, g_steal_pointer(&err));
}

static void
vmrpQmpSocketSetErrno(vmrpQmpSocket *sock, const char *name, const char *what, int errsv,
                      GError **error)
{
    g_autoptr(GError) err = NULL;

    if (errsv == EPIPE || errsv == ECONNRESET) {
        vmrpQmpSocketSetClosed(sock, name, error);
        return;
    }
    err = g_error_new(VMRP_QMP_ERROR, VMRP_QMP_ERROR_FAILED, "%s: %s: %s", name, what,
                      g_strerror(errsv));
    vmrpQmpSocketSetBroken(sock, err);
    g_propagate_error(error, g_steal_pointer(&err));
}

/* Waits for @events on the socket until @deadline: 1 ready, 0 timed out, -1 errno. */
static int
vmrpQmpSocketPoll(vmrpQmpSocket *sock, short events, gint64 deadline)
{
    for (;;) {
        struct pollfd pfd = { .fd = sock->fd, .events = events };
        int rc = poll(&pfd, 1, vmrpQmpSocketRemaining(deadline));

        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return -1;
        if (rc == 0)
            return 0;
        return 1;
    }
}

static bool
vmrpQmpSocketWrite(vmrpQmpSocket *sock, const char *data, size_t len, const char *name,
                   gint64 deadline, int timeout_ms, GError **error)
{
    while (len > 0) {
        ssize_t n = send(sock->fd, data, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = vmrpQmpSocketPoll(sock, POLLOUT, deadline);
            if (rc < 0) {
                vmrpQmpSocketSetErrno(sock, name, "poll", errno, error);
                return false;
            }
            if (rc == 0) {
                vmrpQmpSocketSetTimeout(sock, name, timeout_ms, error);
                return false;
            }
            continue;
        }
        if (n < 0) {
            vmrpQmpSocketSetErrno(sock, name, "send", errno, error);
            return false;
        }
        data += n;
        len -= n;
    }
    return true;
}

/* In agent mode, drops what precedes the last delimiter byte, and while synchronising
 * everything until a delimiter came. */
static void
vmrpQmpSocketSkipToDelimiter(vmrpQmpSocket *sock)
{
    guint8 *ff;

    if (sock->mode != VMRP_QMP_SOCKET_AGENT || sock->in->len == 0)
        return;
    ff = memrchr(sock->in->data, VMRP_QMP_AGENT_DELIMITER, sock->in->len);
    if (ff) {
        g_byte_array_remove_range(sock->in, 0, ff - sock->in->data + 1);
        json_tokener_reset(sock->tok);
        sock->seenDelimiter = true;
    }
    if (sock->syncing && !sock->seenDelimiter)
        g_byte_array_set_size(sock->in, 0);
}

/*
 * Parses the next message from the buffered bytes: a JSON object (new reference), or NULL
 * with *ret_more when more bytes are needed, or NULL with an error.
 */
static json_object *
vmrpQmpSocketParse(vmrpQmpSocket *sock, const char *name, bool *ret_more, GError **error)
{
    while (sock->in->len > 0) {
        json_object *obj;
        enum json_tokener_error jerr;
        size_t end;

        vmrpQmpSocketSkipToDelimiter(sock);
        if (sock->in->len == 0)
            break;

        obj = json_tokener_parse_ex(sock->tok, (const char *)sock->in->data,
                                    (int)MIN(sock->in->len, (guint)G_MAXINT));
        jerr = json_tokener_get_error(sock->tok);
        if (jerr == json_tokener_continue) {
            g_byte_array_remove_range(sock->in, 0,
                                      MIN(sock->in->len, (guint)G_MAXINT));
            continue;
        }
        if (jerr != json_tokener_success) {
            g_autoptr(GError) err = NULL;

            json_tokener_reset(sock->tok);
            if (sock->syncing) {
                /* stale garbage: wait for the next delimiter */
                g_byte_array_set_size(sock->in, 0);
                sock->seenDelimiter = false;
                continue;
            }
            err = g_error_new(VMRP_QMP_ERROR, VMRP_QMP_ERROR_MALFORMED,
                              "%s: malformed JSON from peer: %s", name,
                              json_tokener_error_desc(jerr));
            g_byte_array_set_size(sock->in, 0);
            vmrpQmpSocketSetBroken(sock, err);
            g_propagate_error(error, g_steal_pointer(&err));
            return NULL;
        }

        end = json_tokener_get_parse_end(sock->tok);
        g_byte_array_remove_range(sock->in, 0, MIN(end, sock->in->len));
        json_tokener_reset(sock->tok);

        if (!obj || !json_object_is_type(obj, json_type_object)) {
            g_autoptr(GError) err = NULL;
            g_autofree char *quote = vmrpQmpQuote(obj);

            json_object_put(obj);
            if (sock->syncing)
                continue;
            err = g_error_new(VMRP_QMP_ERROR, VMRP_QMP_ERROR_MALFORMED,
                              "%s: malformed message from peer: not a JSON object: %s",
                              name, quote);
            vmrpQmpSocketSetBroken(sock, err);
            g_propagate_error(error, g_steal_pointer(&err));
            return NULL;
        }
        return obj;
    }
    *ret_more = true;
    return NULL;
}

/* The next message from the peer (new reference). */
static json_object *
vmrpQmpSocketRead(vmrpQmpSocket *sock, const char *name, gint64 deadline, int timeout_ms,
                  GError **error)
{
    guint8 buf[VMRP_QMP_READ_SIZE];

    for (;;) {
        bool more = false;
        json_object *obj = vmrpQmpSocketParse(sock, name, &more, error);
        ssize_t n;
        int rc;

        if (obj)
            return obj;
        if (!more)
            return NULL;

        rc = vmrpQmpSocketPoll(sock, POLLIN, deadline);
        if (rc < 0) {
            vmrpQmpSocketSetErrno(sock, name, "poll", errno, error);
            return NULL;
        }
        if (rc == 0) {
            vmrpQmpSocketSetTimeout(sock, name, timeout_ms, error);
            return NULL;
        }

        n = recv(sock->fd, buf, sizeof(buf), 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n < 0) {
            vmrpQmpSocketSetErrno(sock, name, "recv", errno, error);
            return NULL;
        }
        if (n == 0) {
            vmrpQmpSocketSetClosed(sock, name, error);
            return NULL;
        }
        g_byte_array_append(sock->in, buf, n);
    }
}

static bool
vmrpQmpSocketSend(vmrpQmpSocket *sock, json_object *cmd, const char *name, bool delimiter,
                  gint64 deadline, int timeout_ms, GError **error)
{
    g_autofree char *line = g_strdup_printf("%s%s\n", delimiter ? "\xff" : "",
                                            vmrpQmpToString(cmd));

    return vmrpQmpSocketWrite(sock, line, strlen(line), name, deadline, timeout_ms, error);
}

/* Agent: sends 0xFF and guest-sync-delimited, and discards everything until its reply. */
static bool
vmrpQmpSocketSync(vmrpQmpSocket *sock, gint64 deadline, int timeout_ms, GError **error)
{
    const char *name = "guest-sync-delimited";
    gint64 id = g_random_int_range(1, G_MAXINT32);
    g_autoptr(json_object) cmd = NULL;

    if (!(cmd = vmrpQmpCommandNew(name, error, "I:id", (long long)id, NULL)))
        return false;

    g_byte_array_set_size(sock->in, 0);
    json_tokener_reset(sock->tok);
    sock->syncing = true;
    sock->seenDelimiter = false;

    if (!vmrpQmpSocketSend(sock, cmd, name, true, deadline, timeout_ms, error))
        goto error;

    for (;;) {
        g_autoptr(json_object) msg = NULL;
        json_object *ret;

        if (!(msg = vmrpQmpSocketRead(sock, name, deadline, timeout_ms, error)))
            goto error;
        if (json_object_object_get_ex(msg, "return", &ret) &&
            json_object_is_type(ret, json_type_int) && json_object_get_int64(ret) == id)
            break;
        /* a stale reply (of a command that timed out, or an older sync): skip it */
    }
    sock->syncing = false;
    sock->needSync = false;
    return true;

 error:
    sock->syncing = false;
    sock->needSync = true;
    return false;
}

/* Monitor: the greeting, then qmp_capabilities. */
static bool
vmrpQmpSocketNegotiate(vmrpQmpSocket *sock, gint64 deadline, int timeout_ms,
                       GError **error)
{
    g_autoptr(json_object) greeting = NULL;
    g_autoptr(json_object) cmd = NULL;
    g_autoptr(json_object) reply = NULL;
    const char *name = "qmp_capabilities";

    if (!(greeting = vmrpQmpSocketRead(sock, "QMP greeting", deadline, timeout_ms, error)))
        return false;
    if (!json_object_object_get_ex(greeting, "QMP", NULL)) {
        g_autofree char *quote = vmrpQmpQuote(greeting);
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_MALFORMED,
                    "QMP greeting: malformed greeting: %s", quote);
        return false;
    }

    if (!(cmd = vmrpQmpCommandNew(name, error, NULL)))
        return false;
    if (!(reply = vmrpQmpSocketExec(sock, cmd, timeout_ms, error)))
        return false;
    return vmrpQmpReplyGetReturn(reply, name, error) != NULL;
}

vmrpQmpSocket *
vmrpQmpSocketOpenFd(int fd, vmrpQmpSocketMode mode, int timeout_ms, GError **error)
{
    g_autoptr(vmrpQmpSocket) sock = g_new0(vmrpQmpSocket, 1);
    gint64 deadline = vmrpQmpSocketDeadline(timeout_ms);
    int flags;

    sock->fd = fd;
    sock->mode = mode;
    sock->tok = vmrpQmpTokenerNew();
    sock->in = g_byte_array_new();

    if (fd < 0) {
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_INVALID,
                    "QMP socket: invalid file descriptor %d", fd);
        return NULL;
    }
    if ((flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        int errsv = errno;
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_FAILED,
                    "QMP socket: cannot make the socket non-blocking: %s",
                    g_strerror(errsv));
        return NULL;
    }

    switch (mode) {
    case VMRP_QMP_SOCKET_MONITOR:
        if (!vmrpQmpSocketNegotiate(sock, deadline, timeout_ms, error))
            return NULL;
        break;
    case VMRP_QMP_SOCKET_AGENT:
        if (!vmrpQmpSocketSync(sock, deadline, timeout_ms, error))
            return NULL;
        break;
    default:
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_INVALID,
                    "QMP socket: unknown mode %d", (int)mode);
        return NULL;
    }
    return g_steal_pointer(&sock);
}

vmrpQmpSocket *
vmrpQmpSocketOpen(const char *path, vmrpQmpSocketMode mode, int timeout_ms, GError **error)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_INVALID,
                    "%s: socket path too long", path);
        return NULL;
    }
    strcpy(addr.sun_path, path);

    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
        int errsv = errno;
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_FAILED,
                    "%s: cannot create socket: %s", path, g_strerror(errsv));
        return NULL;
    }
    while (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int errsv = errno;
        int code = VMRP_QMP_ERROR_FAILED;

        if (errsv == EINTR)
            continue;
        if (errsv == ENOENT || errsv == ECONNREFUSED)
            code = VMRP_QMP_ERROR_UNAVAILABLE;
        close(fd);
        g_set_error(error, VMRP_QMP_ERROR, code, "%s: cannot connect: %s", path,
                    g_strerror(errsv));
        return NULL;
    }
    return vmrpQmpSocketOpenFd(fd, mode, timeout_ms, error);
}

json_object *
vmrpQmpSocketExec(vmrpQmpSocket *sock, json_object *cmd, int timeout_ms, GError **error)
{
    gint64 deadline = vmrpQmpSocketDeadline(timeout_ms);
    const char *name = vmrpQmpCommandGetName(cmd);

    if (!name) {
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_INVALID,
                    "QMP command without execute: %s", cmd ? vmrpQmpToString(cmd) : "null");
        return NULL;
    }
    if (sock->broken) {
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_CLOSED,
                    "%s: connection unusable after an earlier error (%s)", name,
                    sock->broken);
        return NULL;
    }
    if (sock->needSync && !vmrpQmpSocketSync(sock, deadline, timeout_ms, error)) {
        g_prefix_error(error, "%s: ", name);
        return NULL;
    }

    if (!vmrpQmpSocketSend(sock, cmd, name, false, deadline, timeout_ms, error))
        return NULL;

    for (;;) {
        g_autoptr(json_object) msg = NULL;

        if (!(msg = vmrpQmpSocketRead(sock, name, deadline, timeout_ms, error)))
            return NULL;
        if (json_object_object_get_ex(msg, "event", NULL))
            continue;
        return g_steal_pointer(&msg);
    }
}

vmrpQmpSocketMode
vmrpQmpSocketGetMode(vmrpQmpSocket *sock)
{
    return sock->mode;
}

void
vmrpQmpSocketFree(vmrpQmpSocket *sock)
{
    if (!sock)
        return;
    if (sock->fd >= 0)
        close(sock->fd);
    if (sock->tok)
        json_tokener_free(sock->tok);
    if (sock->in)
        g_byte_array_unref(sock->in);
    g_free(sock->broken);
    g_free(sock);
}
