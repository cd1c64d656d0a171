/* vmrp-agent.c: the QEMU guest agent (qemu-ga) over libvirt or a UNIX socket
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "vmrp-agent.h"

#include <string.h>

#include "vmrp-qmp-libvirt.h"
#include "vmrp-qmp-private.h"

/* guest-file-read chunk size */
#define VMRP_AGENT_READ_CHUNK 65536
/* guest-exec-status polling interval bounds, in ms */
#define VMRP_AGENT_EXEC_POLL_MIN 10
#define VMRP_AGENT_EXEC_POLL_MAX 250
/* guest-file-close is tried with at least this timeout, in s, even after a timeout */
#define VMRP_AGENT_CLOSE_TIMEOUT 5

struct _vmrpAgent {
    virDomainPtr dom;       /* libvirt transport, or */
    vmrpQmpSocket *sock;    /* socket transport */
};

vmrpAgent *
vmrpAgentNewLibvirt(virDomainPtr dom)
{
    vmrpAgent *agent = g_new0(vmrpAgent, 1);

    virDomainRef(dom);
    agent->dom = dom;
    return agent;
}

vmrpAgent *
vmrpAgentNewSocket(vmrpQmpSocket *sock)
{
    vmrpAgent *agent = g_new0(vmrpAgent, 1);

    agent->sock = sock;
    return agent;
}

void
vmrpAgentFree(vmrpAgent *agent)
{
    if (!agent)
        return;
    if (agent->dom)
        virDomainFree(agent->dom);
    vmrpQmpSocketFree(agent->sock);
    g_free(agent);
}

void
vmrpAgentFsinfoFree(vmrpAgentFsinfo *info)
{
    if (!info)
        return;
    g_free(info->name);
    g_free(info->mountpoint);
    g_free(info->type);
    g_strfreev(info->disks);
    g_strfreev(info->serials);
    g_free(info);
}

/* A deadline in monotonic µs for @timeout_s, or -1 without limit. */
static gint64
vmrpAgentDeadline(int timeout_s)
{
    if (timeout_s < 0)
        return -1;
    return g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;
}

/* Milliseconds left until @deadline (-1 without limit, 0 when passed). */
static int
vmrpAgentRemainingMs(gint64 deadline)
{
    gint64 left;

    if (deadline < 0)
        return -1;
    left = deadline - g_get_monotonic_time();
    if (left <= 0)
        return 0;
    return (int)MIN((left + 999) / 1000, G_MAXINT);
}

/* Sends @cmd and returns the whole reply, waiting at most @timeout_ms. */
static json_object *
vmrpAgentTransact(vmrpAgent *agent, json_object *cmd, int timeout_ms, GError **error)
{
    if (agent->sock)
        return vmrpQmpSocketExec(agent->sock, cmd, timeout_ms, error);
    /* libvirt counts whole seconds */
    return vmrpQmpLibvirtAgentExec(agent->dom, cmd,
                                   timeout_ms < 0 ? -1 : MAX((timeout_ms + 999) / 1000, 1),
                                   error);
}

/* Sends @cmd and returns its "return" value (new reference). */
static json_object *
vmrpAgentCommandMs(vmrpAgent *agent, json_object *cmd, int timeout_ms, GError **error)
{
    g_autoptr(json_object) reply = NULL;
    json_object *ret;

    if (!(reply = vmrpAgentTransact(agent, cmd, timeout_ms, error)))
        return NULL;
    if (!(ret = vmrpQmpReplyGetReturn(reply, vmrpQmpCommandGetName(cmd), error)))
        return NULL;
    return json_object_get(ret);
}

json_object *
vmrpAgentCommand(vmrpAgent *agent, json_object *cmd, int timeout_s, GError **error)
{
    g_autoptr(GError) err = NULL;
    json_object *ret;

    ret = vmrpAgentCommandMs(agent, cmd, timeout_s < 0 ? -1 : timeout_s * 1000, &err);
    if (!ret) {
        if (g_error_matches(err, VMRP_QMP_ERROR, VMRP_QMP_ERROR_TIMEOUT)) {
            /* say it in the caller's unit */
            g_free(err->message);
            err->message = g_strdup_printf("%s: timed out after %d s",
                                           vmrpQmpCommandGetName(cmd), timeout_s);
        }
        g_propagate_error(error, g_steal_pointer(&err));
    }
    return ret;
}

/* Runs the command @name without arguments and returns its "return" value. */
static json_object *
vmrpAgentSimple(vmrpAgent *agent, const char *name, int timeout_s, GError **error)
{
    g_autoptr(json_object) cmd = NULL;

    if (!(cmd = vmrpQmpCommandNew(name, error, NULL)))
        return NULL;
    return vmrpAgentCommand(agent, cmd, timeout_s, error);
}

/* The integer return of @cmd, or -1. */
static int
vmrpAgentIntCommand(vmrpAgent *agent, json_object *cmd, int timeout_s, GError **error)
{
    g_autoptr(json_object) ret = NULL;
    int64_t val;

    if (!(ret = vmrpAgentCommand(agent, cmd, timeout_s, error)))
        return -1;
    if (!json_object_is_type(ret, json_type_int) ||
        (val = json_object_get_int64(ret)) < 0 || val > G_MAXINT) {
        g_autofree char *quote = vmrpQmpQuote(ret);
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_MALFORMED,
                    "%s: malformed reply: return is not a count: %s",
                    vmrpQmpCommandGetName(cmd), quote);
        return -1;
    }
    return (int)val;
}

bool
vmrpAgentPing(vmrpAgent *agent, int timeout_s, GError **error)
{
    g_autoptr(json_object) ret = vmrpAgentSimple(agent, "guest-ping", timeout_s, error);

    return ret != NULL;
}

int
vmrpAgentFsfreezeFreeze(vmrpAgent *agent, int timeout_s, GError **error)
{
    g_autoptr(json_object) cmd = NULL;

    if (!(cmd = vmrpQmpCommandNew("guest-fsfreeze-freeze", error, NULL)))
        return -1;
    return vmrpAgentIntCommand(agent, cmd, timeout_s, error);
}

int
vmrpAgentFsfreezeFreezeList(vmrpAgent *agent, const char *const *mountpoints, int timeout_s,
                            GError **error)
{
    g_autoptr(json_object) cmd = NULL;
    json_object *list = json_object_new_array();
    size_t i;

    for (i = 0; mountpoints && mountpoints[i]; i++)
        json_object_array_add(list, json_object_new_string(mountpoints[i]));
    if (!(cmd = vmrpQmpCommandNew("guest-fsfreeze-freeze-list", error,
                                  "a:mountpoints", list, NULL)))
        return -1;
    return vmrpAgentIntCommand(agent, cmd, timeout_s, error);
}

int
vmrpAgentFsfreezeThaw(vmrpAgent *agent, int timeout_s, GError **error)
{
    g_autoptr(json_object) cmd = NULL;

    if (!(cmd = vmrpQmpCommandNew("guest-fsfreeze-thaw", error, NULL)))
        return -1;
    return vmrpAgentIntCommand(agent, cmd, timeout_s, error);
}

bool
vmrpAgentFsfreezeStatus(vmrpAgent *agent, int timeout_s, bool *ret_frozen, GError **error)
{
    const char *name = "guest-fsfreeze-status";
    g_autoptr(json_object) ret = vmrpAgentSimple(agent, name, timeout_s, error);
    const char *status;

    if (!ret)
        return false;
    status = json_object_is_type(ret, json_type_string) ? json_object_get_string(ret) : "";
    if (strcmp(status, "frozen") == 0) {
        *ret_frozen = true;
    } else if (strcmp(status, "thawed") == 0) {
        *ret_frozen = false;
    } else {
        g_autofree char *quote = vmrpQmpQuote(ret);
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_MALFORMED,
                    "%s: malformed reply: unknown status %s", name, quote);
        return false;
    }
    return true;
}

/* One element of guest-get-fsinfo. */
static vmrpAgentFsinfo *
vmrpAgentFsinfoParse(json_object *elem, GError **error)
{
    g_autoptr(vmrpAgentFsinfo) info = g_new0(vmrpAgentFsinfo, 1);
    g_autoptr(GPtrArray) disks = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) serials = g_ptr_array_new_with_free_func(g_free);
    const char *name, *mountpoint, *type;
    json_object *val;
    size_t i;

    if (!(name = vmrpQmpObjectGetString(elem, "name", error)) ||
        !(mountpoint = vmrpQmpObjectGetString(elem, "mountpoint", error)) ||
        !(type = vmrpQmpObjectGetString(elem, "type", error)))
        return NULL;
    info->name = g_strdup(name);
    info->mountpoint = g_strdup(mountpoint);
    info->type = g_strdup(type);

    info->used_bytes = -1;
    info->total_bytes = -1;
    if (json_object_object_get_ex(elem, "used-bytes", &val) &&
        json_object_is_type(val, json_type_int))
        info->used_bytes = json_object_get_int64(val);
    if (json_object_object_get_ex(elem, "total-bytes", &val) &&
        json_object_is_type(val, json_type_int))
        info->total_bytes = json_object_get_int64(val);

    if (json_object_object_get_ex(elem, "disk", &val) &&
        json_object_is_type(val, json_type_array)) {
        for (i = 0; i < json_object_array_length(val); i++) {
            json_object *disk = json_object_array_get_idx(val, i);
            const char *dev = vmrpQmpObjectGetStringOpt(disk, "dev");
            const char *serial = vmrpQmpObjectGetStringOpt(disk, "serial");

            if (dev || serial)
                g_ptr_array_add(disks, g_strdup(dev ? dev : serial));
            if (serial)
                g_ptr_array_add(serials, g_strdup(serial));
        }
    }
    g_ptr_array_add(disks, NULL);
    g_ptr_array_add(serials, NULL);
    info->disks = (GStrv)g_ptr_array_free(g_steal_pointer(&disks), FALSE);
    info->serials = (GStrv)g_ptr_array_free(g_steal_pointer(&serials), FALSE);
    return g_steal_pointer(&info);
}

GPtrArray *
vmrpAgentGetFsinfo(vmrpAgent *agent, int timeout_s, GError **error)
{
    const char *name = "guest-get-fsinfo";
    g_autoptr(json_object) ret = vmrpAgentSimple(agent, name, timeout_s, error);
    g_autoptr(GPtrArray) list = NULL;
    size_t i;

    if (!ret)
        return NULL;
    if (!json_object_is_type(ret, json_type_array)) {
        g_autofree char *quote = vmrpQmpQuote(ret);
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_MALFORMED,
                    "%s: malformed reply: return is not an array: %s", name, quote);
        return NULL;
    }

    list = g_ptr_array_new_with_free_func((GDestroyNotify)vmrpAgentFsinfoFree);
    for (i = 0; i < json_object_array_length(ret); i++) {
        vmrpAgentFsinfo *info;

        if (!(info = vmrpAgentFsinfoParse(json_object_array_get_idx(ret, i), error))) {
            g_prefix_error(error, "%s: ", name);
            return NULL;
        }
        g_ptr_array_add(list, info);
    }
    return g_steal_pointer(&list);
}

/* Decodes the optional base64 member @key of guest-exec-status. */
static GBytes *
vmrpAgentDecodeMember(json_object *obj, const char *key)
{
    const char *b64 = vmrpQmpObjectGetStringOpt(obj, key);
    guchar *data;
    gsize len = 0;

    if (!b64 || !*b64)
        return g_bytes_new(NULL, 0);
    data = g_base64_decode(b64, &len);
    return g_bytes_new_take(data, len);
}

/* The remaining time for one command in a sequence: at least 1 ms once started. */
static int
vmrpAgentStepTimeout(gint64 deadline)
{
    int ms = vmrpAgentRemainingMs(deadline);

    return ms == 0 ? 1 : ms;
}

/*
 * Names the object of a sequence of commands in @err: "CMD: rest" becomes
 * "CMD DETAIL: rest", other messages "WHAT DETAIL: message", and a timeout
 * "WHAT DETAIL: timed out after N s".
 */
static void
vmrpAgentQualifyError(GError *err, const char *what, const char *detail, int timeout_s)
{
    const char *colon = strstr(err->message, ": ");
    char *msg;

    if (err->domain == VMRP_QMP_ERROR && err->code == VMRP_QMP_ERROR_TIMEOUT &&
        timeout_s >= 0) {
        msg = g_strdup_printf("%s %s: timed out after %d s", what, detail, timeout_s);
    } else if (colon && !memchr(err->message, ' ', colon - err->message)) {
        msg = g_strdup_printf("%.*s %s%s", (int)(colon - err->message), err->message,
                              detail, colon);
    } else {
        msg = g_strdup_printf("%s %s: %s", what, detail, err->message);
    }
    g_free(err->message);
    err->message = msg;
}

static bool
vmrpAgentExecImpl(vmrpAgent *agent, const char *const *argv, GBytes *input,
                  gint64 deadline, int *ret_exitcode, GBytes **ret_stdout,
                  GBytes **ret_stderr, GError **error)
{
    g_autoptr(json_object) cmd = NULL;
    g_autoptr(json_object) ret = NULL;
    g_autofree char *b64 = NULL;
    json_object *args;
    long long pid;
    int interval = VMRP_AGENT_EXEC_POLL_MIN;
    size_t i;

    args = json_object_new_array();
    for (i = 1; argv[i]; i++)
        json_object_array_add(args, json_object_new_string(argv[i]));
    if (input) {
        gsize len = 0;
        const guchar *data = g_bytes_get_data(input, &len);
        b64 = g_base64_encode(data, len);
    }
    if (!(cmd = vmrpQmpCommandNew("guest-exec", error,
                                  "s:path", argv[0],
                                  "a:arg", args,
                                  "S:input-data", b64,
                                  "b:capture-output", true,
                                  NULL)))
        return false;

    if (!(ret = vmrpAgentCommandMs(agent, cmd, vmrpAgentStepTimeout(deadline), error)))
        return false;
    if (!vmrpQmpObjectGetInt(ret, "pid", &pid, error)) {
        g_prefix_error(error, "guest-exec: ");
        return false;
    }

    for (;;) {
        g_autoptr(json_object) status_cmd = NULL;
        g_autoptr(json_object) status = NULL;
        bool exited;
        long long code;

        if (!(status_cmd = vmrpQmpCommandNew("guest-exec-status", error, "I:pid", pid, NULL)))
            return false;
        if (!(status = vmrpAgentCommandMs(agent, status_cmd, vmrpAgentStepTimeout(deadline),
                                          error)))
            return false;
        if (!vmrpQmpObjectGetBool(status, "exited", &exited, error)) {
            g_prefix_error(error, "guest-exec-status: ");
            return false;
        }

        if (exited) {
            if (vmrpQmpObjectGetInt(status, "signal", &code, NULL)) {
                g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_FAILED,
                            "guest-exec: killed by signal %lld", code);
                return false;
            }
            if (vmrpQmpObjectGetBoolOpt(status, "out-truncated", false) ||
                vmrpQmpObjectGetBoolOpt(status, "err-truncated", false)) {
                g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_FAILED,
                            "guest-exec: output truncated by the guest agent");
                return false;
            }
            if (!vmrpQmpObjectGetInt(status, "exitcode", &code, error)) {
                g_prefix_error(error, "guest-exec-status: ");
                return false;
            }
            *ret_exitcode = (int)code;
            if (ret_stdout)
                *ret_stdout = vmrpAgentDecodeMember(status, "out-data");
            if (ret_stderr)
                *ret_stderr = vmrpAgentDecodeMember(status, "err-data");
            return true;
        }

        if (deadline >= 0 && g_get_monotonic_time() >= deadline) {
            g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_TIMEOUT,
                        "guest-exec: timed out");
            return false;
        }
        if (deadline >= 0)
            interval = MIN(interval, MAX(vmrpAgentRemainingMs(deadline), 1));
        g_usleep((gulong)interval * 1000);
        interval = MIN(interval * 2, VMRP_AGENT_EXEC_POLL_MAX);
    }
}

bool
vmrpAgentExec(vmrpAgent *agent, const char *const *argv, const char *input, int timeout_s,
              int *ret_exitcode, GBytes **ret_stdout, GBytes **ret_stderr, GError **error)
{
    g_autoptr(GBytes) bytes = input ? g_bytes_new_static(input, strlen(input)) : NULL;

    return vmrpAgentExecBytes(agent, argv, bytes, timeout_s, ret_exitcode, ret_stdout,
                              ret_stderr, error);
}

bool
vmrpAgentExecBytes(vmrpAgent *agent, const char *const *argv, GBytes *input, int timeout_s,
                   int *ret_exitcode, GBytes **ret_stdout, GBytes **ret_stderr,
                   GError **error)
{
    g_autoptr(GError) err = NULL;

    if (!argv || !argv[0] || !*argv[0]) {
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_INVALID,
                    "guest-exec: no program to run");
        return false;
    }
    if (!vmrpAgentExecImpl(agent, argv, input, vmrpAgentDeadline(timeout_s), ret_exitcode,
                           ret_stdout, ret_stderr, &err)) {
        vmrpAgentQualifyError(err, "guest-exec", argv[0], timeout_s);
        g_propagate_error(error, g_steal_pointer(&err));
        return false;
    }
    return true;
}

/* guest-file-close, with a timeout of at least VMRP_AGENT_CLOSE_TIMEOUT s. */
static bool
vmrpAgentFileClose(vmrpAgent *agent, long long handle, gint64 deadline, GError **error)
{
    g_autoptr(json_object) cmd = NULL;
    g_autoptr(json_object) ret = NULL;
    int timeout_ms = vmrpAgentRemainingMs(deadline);

    if (timeout_ms >= 0)
        timeout_ms = MAX(timeout_ms, VMRP_AGENT_CLOSE_TIMEOUT * 1000);
    if (!(cmd = vmrpQmpCommandNew("guest-file-close", error, "I:handle", handle, NULL)))
        return false;
    ret = vmrpAgentCommandMs(agent, cmd, timeout_ms, error);
    return ret != NULL;
}

/* Reads the open guest file @handle to its end into @buf. */
static bool
vmrpAgentFileReadAll(vmrpAgent *agent, long long handle, GByteArray *buf, gint64 deadline,
                     GError **error)
{
    for (;;) {
        g_autoptr(json_object) cmd = NULL;
        g_autoptr(json_object) ret = NULL;
        g_autofree guchar *data = NULL;
        const char *b64;
        long long count;
        bool eof;
        gsize len = 0;

        if (!(cmd = vmrpQmpCommandNew("guest-file-read", error,
                                      "I:handle", handle,
                                      "i:count", VMRP_AGENT_READ_CHUNK,
                                      NULL)))
            return false;
        if (!(ret = vmrpAgentCommandMs(agent, cmd, vmrpAgentStepTimeout(deadline), error)))
            return false;
        if (!vmrpQmpObjectGetInt(ret, "count", &count, error) ||
            !(b64 = vmrpQmpObjectGetString(ret, "buf-b64", error)) ||
            !vmrpQmpObjectGetBool(ret, "eof", &eof, error)) {
            g_prefix_error(error, "guest-file-read: ");
            return false;
        }
        data = g_base64_decode(b64, &len);
        if (count < 0 || (gsize)count != len) {
            g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_MALFORMED,
                        "guest-file-read: malformed reply: count %lld but %zu bytes of data",
                        count, (size_t)len);
            return false;
        }
        g_byte_array_append(buf, data, len);
        /* eof, or a read of 0 bytes (the agent sets eof only at a short read) */
        if (eof || len == 0)
            return true;
    }
}

GBytes *
vmrpAgentFileRead(vmrpAgent *agent, const char *path, int timeout_s, GError **error)
{
    gint64 deadline = vmrpAgentDeadline(timeout_s);
    g_autoptr(json_object) cmd = NULL;
    g_autoptr(json_object) ret = NULL;
    g_autoptr(GByteArray) buf = g_byte_array_new();
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) close_err = NULL;
    long long handle;
    bool ok;

    if (!(cmd = vmrpQmpCommandNew("guest-file-open", error,
                                  "s:path", path,
                                  "s:mode", "r",
                                  NULL)))
        return NULL;
    if (!(ret = vmrpAgentCommandMs(agent, cmd, vmrpAgentStepTimeout(deadline), &err))) {
        vmrpAgentQualifyError(err, "guest-file-open", path, timeout_s);
        g_propagate_error(error, g_steal_pointer(&err));
        return NULL;
    }
    if (!json_object_is_type(ret, json_type_int)) {
        g_autofree char *quote = vmrpQmpQuote(ret);
        g_set_error(error, VMRP_QMP_ERROR, VMRP_QMP_ERROR_MALFORMED,
                    "guest-file-open %s: malformed reply: return is not a handle: %s",
                    path, quote);
        return NULL;
    }
    handle = json_object_get_int64(ret);

    ok = vmrpAgentFileReadAll(agent, handle, buf, deadline, &err);
    if (!vmrpAgentFileClose(agent, handle, deadline, &close_err) && ok) {
        vmrpAgentQualifyError(close_err, "guest-file-close", path, -1);
        g_propagate_error(error, g_steal_pointer(&close_err));
        return NULL;
    }
    if (!ok) {
        vmrpAgentQualifyError(err, "guest-file-read", path, timeout_s);
        g_propagate_error(error, g_steal_pointer(&err));
        return NULL;
    }
    return g_byte_array_free_to_bytes(g_steal_pointer(&buf));
}
