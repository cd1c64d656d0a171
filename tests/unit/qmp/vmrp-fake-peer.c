/* vmrp-fake-peer.c: a scripted QMP / guest-agent peer on a socket, for unit tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "vmrp-fake-peer.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* The peer gives up waiting for the client after this long (a broken test). */
#define VMRP_FAKE_PEER_WAIT_MS 10000

typedef enum {
    VMRP_FAKE_PEER_SEND,
    VMRP_FAKE_PEER_SLEEP,
    VMRP_FAKE_PEER_EXPECT,
    VMRP_FAKE_PEER_SYNC,
    VMRP_FAKE_PEER_ANSWER_ALL,
    VMRP_FAKE_PEER_HANGUP,
} vmrpFakePeerStepType;

typedef struct {
    vmrpFakePeerStepType type;
    char *execute;
    GBytes *data;
    int ms;
} vmrpFakePeerStep;

struct _vmrpFakePeer {
    int fd;
    int listen_fd;
    GPtrArray *steps;
    GThread *thread;
    GByteArray *in;
    GPtrArray *commands;
    GString *failures;
    int delimiters;
};

static void
vmrpFakePeerStepFree(vmrpFakePeerStep *step)
{
    g_free(step->execute);
    if (step->data)
        g_bytes_unref(step->data);
    g_free(step);
}

static void
vmrpFakePeerJsonFree(gpointer obj)
{
    json_object_put(obj);
}

static vmrpFakePeer *
vmrpFakePeerAlloc(void)
{
    vmrpFakePeer *peer = g_new0(vmrpFakePeer, 1);

    peer->fd = -1;
    peer->listen_fd = -1;
    peer->steps = g_ptr_array_new_with_free_func((GDestroyNotify)vmrpFakePeerStepFree);
    peer->in = g_byte_array_new();
    peer->commands = g_ptr_array_new_with_free_func(vmrpFakePeerJsonFree);
    peer->failures = g_string_new(NULL);
    return peer;
}

vmrpFakePeer *
vmrpFakePeerNew(int *ret_fd)
{
    vmrpFakePeer *peer = vmrpFakePeerAlloc();
    int fds[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
        g_error("socketpair: %s", g_strerror(errno));
    peer->fd = fds[0];
    *ret_fd = fds[1];
    return peer;
}

vmrpFakePeer *
vmrpFakePeerNewListen(const char *path)
{
    vmrpFakePeer *peer = vmrpFakePeerAlloc();
    struct sockaddr_un addr = { .sun_family = AF_UNIX };

    g_assert(strlen(path) < sizeof(addr.sun_path));
    strcpy(addr.sun_path, path);
    if ((peer->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        bind(peer->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(peer->listen_fd, 1) < 0)
        g_error("listen on %s: %s", path, g_strerror(errno));
    return peer;
}

static void
vmrpFakePeerAdd(vmrpFakePeer *peer, vmrpFakePeerStepType type, const char *execute,
                const char *data, gssize len, int ms)
{
    vmrpFakePeerStep *step = g_new0(vmrpFakePeerStep, 1);

    step->type = type;
    step->execute = g_strdup(execute);
    if (data)
        step->data = g_bytes_new(data, len < 0 ? strlen(data) : (size_t)len);
    step->ms = ms;
    g_ptr_array_add(peer->steps, step);
}

void
vmrpFakePeerSend(vmrpFakePeer *peer, const char *data, gssize len)
{
    vmrpFakePeerAdd(peer, VMRP_FAKE_PEER_SEND, NULL, data, len, 0);
}

void
vmrpFakePeerSleep(vmrpFakePeer *peer, int ms)
{
    vmrpFakePeerAdd(peer, VMRP_FAKE_PEER_SLEEP, NULL, NULL, 0, ms);
}

void
vmrpFakePeerExpect(vmrpFakePeer *peer, const char *execute, const char *reply)
{
    vmrpFakePeerAdd(peer, VMRP_FAKE_PEER_EXPECT, execute, reply, -1, 0);
}

void
vmrpFakePeerExpectSync(vmrpFakePeer *peer, const char *junk)
{
    vmrpFakePeerAdd(peer, VMRP_FAKE_PEER_SYNC, "guest-sync-delimited", junk, -1, 0);
}

void
vmrpFakePeerExpectSyncSplit(vmrpFakePeer *peer, const char *junk)
{
    vmrpFakePeerAdd(peer, VMRP_FAKE_PEER_SYNC, "guest-sync-delimited", junk, -1, 1);
}

void
vmrpFakePeerAnswerAll(vmrpFakePeer *peer, const char *execute, const char *reply)
{
    vmrpFakePeerAdd(peer, VMRP_FAKE_PEER_ANSWER_ALL, execute, reply, -1, 0);
}

void
vmrpFakePeerHangup(vmrpFakePeer *peer)
{
    vmrpFakePeerAdd(peer, VMRP_FAKE_PEER_HANGUP, NULL, NULL, 0, 0);
}

static void G_GNUC_PRINTF(2, 3)
vmrpFakePeerFail(vmrpFakePeer *peer, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_string_append_vprintf(peer->failures, fmt, ap);
    va_end(ap);
    g_string_append_c(peer->failures, '\n');
}

static void
vmrpFakePeerWrite(vmrpFakePeer *peer, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = send(peer->fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return;  /* the client went away: its test will tell */
        p += n;
        len -= n;
    }
}

/* The next command, or NULL at the client's hang-up (or a broken test). */
static json_object *
vmrpFakePeerRead(vmrpFakePeer *peer)
{
    for (;;) {
        guint8 *nl = peer->in->len ? memchr(peer->in->data, '\n', peer->in->len) : NULL;
        struct pollfd pfd = { .fd = peer->fd, .events = POLLIN };
        guint8 buf[4096];
        ssize_t n;
        int rc;

        if (nl) {
            size_t linelen = nl - peer->in->data;
            g_autofree char *line = g_strndup((char *)peer->in->data, linelen);
            char *p = line;
            json_object *obj;

            g_byte_array_remove_range(peer->in, 0, linelen + 1);
            while (*p == '\xff') {
                peer->delimiters++;
                p++;
            }
            if (!*p)
                continue;
            if (!(obj = json_tokener_parse(p))) {
                vmrpFakePeerFail(peer, "client sent unparsable line: %s", p);
                continue;
            }
            return obj;
        }

        rc = poll(&pfd, 1, VMRP_FAKE_PEER_WAIT_MS);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0) {
            vmrpFakePeerFail(peer, "peer: client sent nothing for %d ms",
                             VMRP_FAKE_PEER_WAIT_MS);
            return NULL;
        }
        n = recv(peer->fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (peer->in->len > 0)
                vmrpFakePeerFail(peer, "client hung up after a partial line");
            return NULL;
        }
        g_byte_array_append(peer->in, buf, n);
    }
}

static const char *
vmrpFakePeerName(json_object *cmd)
{
    json_object *val;

    if (cmd && json_object_object_get_ex(cmd, "execute", &val) &&
        json_object_is_type(val, json_type_string))
        return json_object_get_string(val);
    return NULL;
}

/* Reads a command that must be @execute and records it; NULL at hang-up. */
static json_object *
vmrpFakePeerReadExpected(vmrpFakePeer *peer, const char *execute, bool eof_ok)
{
    json_object *cmd = vmrpFakePeerRead(peer);
    const char *name;

    if (!cmd) {
        if (!eof_ok)
            vmrpFakePeerFail(peer, "expected %s, the client hung up", execute);
        return NULL;
    }
    g_ptr_array_add(peer->commands, cmd);
    name = vmrpFakePeerName(cmd);
    if (g_strcmp0(name, execute) != 0)
        vmrpFakePeerFail(peer, "expected %s, got %s", execute, json_object_to_json_string(cmd));
    return cmd;
}

static void
vmrpFakePeerReply(vmrpFakePeer *peer, GBytes *reply)
{
    gsize len;
    const void *data;

    if (!reply)
        return;
    data = g_bytes_get_data(reply, &len);
    vmrpFakePeerWrite(peer, data, len);
    vmrpFakePeerWrite(peer, "\n", 1);
}

static bool
vmrpFakePeerPlay(vmrpFakePeer *peer, vmrpFakePeerStep *step)
{
    json_object *cmd;

    switch (step->type) {
    case VMRP_FAKE_PEER_SEND: {
        gsize len;
        const void *data = g_bytes_get_data(step->data, &len);
        vmrpFakePeerWrite(peer, data, len);
        return true;
    }
    case VMRP_FAKE_PEER_SLEEP:
        g_usleep((gulong)step->ms * 1000);
        return true;
    case VMRP_FAKE_PEER_EXPECT:
        if (!vmrpFakePeerReadExpected(peer, step->execute, false))
            return false;
        vmrpFakePeerReply(peer, step->data);
        return true;
    case VMRP_FAKE_PEER_SYNC: {
        json_object *args, *id;
        g_autofree char *reply = NULL;

        if (!(cmd = vmrpFakePeerReadExpected(peer, step->execute, false)))
            return false;
        if (!json_object_object_get_ex(cmd, "arguments", &args) ||
            !json_object_object_get_ex(args, "id", &id) ||
            !json_object_is_type(id, json_type_int)) {
            vmrpFakePeerFail(peer, "guest-sync-delimited without an integer id");
            return true;
        }
        if (step->data) {
            gsize len;
            const void *data = g_bytes_get_data(step->data, &len);
            vmrpFakePeerWrite(peer, data, len);
        }
        reply = g_strdup_printf("\xff{\"return\": %lld}\n",
                                (long long)json_object_get_int64(id));
        if (step->ms) {
            /* junk, delimiter, half the reply, the rest: each in a write of its own */
            size_t half = strlen(reply) / 2;

            g_usleep(20000);
            vmrpFakePeerWrite(peer, reply, 1);
            g_usleep(20000);
            vmrpFakePeerWrite(peer, reply + 1, half - 1);
            g_usleep(20000);
            vmrpFakePeerWrite(peer, reply + half, strlen(reply) - half);
            return true;
        }
        vmrpFakePeerWrite(peer, reply, strlen(reply));
        return true;
    }
    case VMRP_FAKE_PEER_ANSWER_ALL:
        while (vmrpFakePeerReadExpected(peer, step->execute, true))
            vmrpFakePeerReply(peer, step->data);
        return false;
    case VMRP_FAKE_PEER_HANGUP:
        close(peer->fd);
        peer->fd = -1;
        return false;
    }
    return false;
}

static gpointer
vmrpFakePeerThread(gpointer opaque)
{
    vmrpFakePeer *peer = opaque;
    json_object *cmd;
    guint i;

    if (peer->listen_fd >= 0) {
        struct pollfd pfd = { .fd = peer->listen_fd, .events = POLLIN };

        if (poll(&pfd, 1, VMRP_FAKE_PEER_WAIT_MS) <= 0 ||
            (peer->fd = accept4(peer->listen_fd, NULL, NULL, SOCK_CLOEXEC)) < 0) {
            vmrpFakePeerFail(peer, "peer: no client connected");
            return NULL;
        }
    }

    for (i = 0; i < peer->steps->len; i++) {
        if (!vmrpFakePeerPlay(peer, g_ptr_array_index(peer->steps, i)))
            break;
    }
    /* the script is over: whatever else the client sends is unexpected */
    while (peer->fd >= 0 && (cmd = vmrpFakePeerRead(peer))) {
        vmrpFakePeerFail(peer, "unexpected command %s", json_object_to_json_string(cmd));
        g_ptr_array_add(peer->commands, cmd);
    }
    return NULL;
}

void
vmrpFakePeerStart(vmrpFakePeer *peer)
{
    peer->thread = g_thread_new("fake-peer", vmrpFakePeerThread, peer);
}

GPtrArray *
vmrpFakePeerFinish(vmrpFakePeer *peer, char **ret_failures, int *ret_delimiters)
{
    GPtrArray *commands;

    if (peer->thread)
        g_thread_join(peer->thread);
    if (peer->fd >= 0)
        close(peer->fd);
    if (peer->listen_fd >= 0)
        close(peer->listen_fd);

    commands = peer->commands;
    if (ret_delimiters)
        *ret_delimiters = peer->delimiters;
    if (peer->failures->len > 0) {
        *ret_failures = g_string_free(peer->failures, FALSE);
    } else {
        *ret_failures = NULL;
        g_string_free(peer->failures, TRUE);
    }
    g_ptr_array_unref(peer->steps);
    g_byte_array_unref(peer->in);
    g_free(peer);
    return commands;
}

const char *
vmrpFakePeerCommandName(GPtrArray *cmds, guint i)
{
    if (!cmds || i >= cmds->len)
        return NULL;
    return vmrpFakePeerName(g_ptr_array_index(cmds, i));
}

json_object *
vmrpFakePeerCommandArgs(GPtrArray *cmds, guint i)
{
    json_object *args;

    if (!cmds || i >= cmds->len ||
        !json_object_object_get_ex(g_ptr_array_index(cmds, i), "arguments", &args))
        return NULL;
    return args;
}
