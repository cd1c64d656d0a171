/* vmrp-guest.c: a test tool that drives a domain's guest agent through libvirt
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "config.h"
#include "vmrp-agent.h"

#define VMRP_GUEST_EXIT_ERROR 2
#define VMRP_GUEST_WAIT_DEFAULT 90
#define VMRP_GUEST_PING_DEFAULT 10
#define VMRP_GUEST_EXEC_DEFAULT 60
#define VMRP_GUEST_CAT_DEFAULT 60
#define VMRP_GUEST_FREEZE_DEFAULT 60

static const char usage[] =
    "usage: vmrp-guest [-c URI] DOMAIN COMMAND [ARGS]\n"
    "commands:\n"
    "  ping [TIMEOUT]                   ping the guest agent once (default 10 s)\n"
    "  wait [TIMEOUT]                   ping until the agent answers (default 90 s)\n"
    "  exec [--timeout S] [--stdin] -- ARGV...\n"
    "                                   run a program in the guest (default 60 s); its\n"
    "                                   stdout/stderr/exit status become ours; --stdin feeds\n"
    "                                   our stdin to it\n"
    "  cat PATH                         print a guest file\n"
    "  freeze-status                    print frozen or thawed\n"
    "  freeze | thaw                    freeze / thaw the guest filesystems, print the count\n"
    "  fsinfo                           print the guest filesystems: name mountpoint type disks\n";

static void G_GNUC_PRINTF(1, 2) G_GNUC_NORETURN
vmrpGuestDie(const char *fmt, ...)
{
    va_list ap;

    fputs("vmrp-guest: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(VMRP_GUEST_EXIT_ERROR);
}

static void G_GNUC_NORETURN
vmrpGuestDieError(GError *err)
{
    vmrpGuestDie("%s", err->message);
}

static void
vmrpGuestIgnoreLibvirtError(void *opaque, virErrorPtr err)
{
}

static int
vmrpGuestParseSeconds(const char *s)
{
    char *end = NULL;
    long v;

    v = strtol(s, &end, 10);
    if (!*s || *end || v < 1 || v > G_MAXINT / 1000)
        vmrpGuestDie("invalid timeout '%s'", s);
    return (int)v;
}

static void
vmrpGuestWrite(FILE *f, GBytes *bytes)
{
    gsize len = 0;
    const void *data = bytes ? g_bytes_get_data(bytes, &len) : NULL;

    if (len > 0 && fwrite(data, 1, len, f) != len)
        vmrpGuestDie("write: output error");
    if (fflush(f) != 0)
        vmrpGuestDie("write: output error");
}

static virDomainPtr
vmrpGuestLookup(virConnectPtr conn, const char *name)
{
    virDomainPtr dom;
    char *end = NULL;
    long id;

    if ((dom = virDomainLookupByName(conn, name)))
        return dom;
    if ((dom = virDomainLookupByUUIDString(conn, name)))
        return dom;
    id = strtol(name, &end, 10);
    if (*name && !*end && id >= 0 && id <= G_MAXINT && (dom = virDomainLookupByID(conn, id)))
        return dom;
    vmrpGuestDie("failed to get domain '%s'", name);
}

static int
vmrpGuestWait(vmrpAgent *agent, int timeout_s)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;
    g_autoptr(GError) last = NULL;

    for (;;) {
        gint64 left = deadline - g_get_monotonic_time();
        int step = (int)MAX(MIN((left + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC, 5), 1);

        g_clear_error(&last);
        if (vmrpAgentPing(agent, step, &last))
            return EXIT_SUCCESS;
        if (g_get_monotonic_time() + G_USEC_PER_SEC >= deadline)
            vmrpGuestDie("guest agent did not answer within %d s: %s", timeout_s,
                         last->message);
        g_usleep(G_USEC_PER_SEC);
    }
}

static int
vmrpGuestExec(vmrpAgent *agent, int argc, char **argv)
{
    int timeout_s = VMRP_GUEST_EXEC_DEFAULT;
    bool use_stdin = false;
    g_autoptr(GBytes) out = NULL;
    g_autoptr(GBytes) err_out = NULL;
    g_autoptr(GError) err = NULL;
    g_autofree char *input = NULL;
    int exitcode = 0;
    int i;

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            timeout_s = vmrpGuestParseSeconds(argv[++i]);
        } else if (g_str_has_prefix(argv[i], "--timeout=")) {
            timeout_s = vmrpGuestParseSeconds(argv[i] + strlen("--timeout="));
        } else if (strcmp(argv[i], "--stdin") == 0) {
            use_stdin = true;
        } else if (argv[i][0] == '-') {
            vmrpGuestDie("exec: unknown option '%s'", argv[i]);
        } else {
            break;
        }
    }
    if (i >= argc)
        vmrpGuestDie("exec: no program given");

    if (use_stdin) {
        g_autoptr(GString) buf = g_string_new(NULL);
        char chunk[65536];
        size_t n;

        while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
            g_string_append_len(buf, chunk, n);
        if (ferror(stdin))
            vmrpGuestDie("exec: cannot read stdin");
        if (memchr(buf->str, '\0', buf->len))
            vmrpGuestDie("exec: stdin holds a NUL byte, which cannot be passed on");
        input = g_string_free(g_steal_pointer(&buf), FALSE);
    }

    if (!vmrpAgentExec(agent, (const char *const *)argv + i, input, timeout_s, &exitcode,
                       &out, &err_out, &err))
        vmrpGuestDieError(err);
    vmrpGuestWrite(stdout, out);
    vmrpGuestWrite(stderr, err_out);
    return exitcode;
}

static int
vmrpGuestFsinfo(vmrpAgent *agent)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) list = NULL;
    guint i;

    if (!(list = vmrpAgentGetFsinfo(agent, VMRP_GUEST_PING_DEFAULT, &err)))
        vmrpGuestDieError(err);
    for (i = 0; i < list->len; i++) {
        vmrpAgentFsinfo *info = g_ptr_array_index(list, i);
        g_autofree char *disks = g_strjoinv(",", info->disks);

        printf("%s %s %s %s\n", info->name, info->mountpoint, info->type,
               *disks ? disks : "-");
    }
    return EXIT_SUCCESS;
}

int
main(int argc, char **argv)
{
    const char *uri = NULL;
    const char *name;
    const char *cmd;
    virConnectPtr conn = NULL;
    virDomainPtr dom = NULL;
    g_autoptr(vmrpAgent) agent = NULL;
    g_autoptr(GError) err = NULL;
    int rc = EXIT_SUCCESS;
    int i = 1;

    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        fputs(usage, stdout);
        return EXIT_SUCCESS;
    }
    if (i + 1 < argc && (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--connect") == 0)) {
        uri = argv[i + 1];
        i += 2;
    }
    if (argc - i < 2) {
        fputs(usage, stderr);
        return VMRP_GUEST_EXIT_ERROR;
    }
    name = argv[i++];
    cmd = argv[i++];

    if (strcmp(cmd, "exec") != 0) {
        int max = 0;
        if (strcmp(cmd, "ping") == 0 || strcmp(cmd, "wait") == 0 || strcmp(cmd, "cat") == 0)
            max = 1;
        if (argc - i > max)
            vmrpGuestDie("%s: unexpected argument '%s'", cmd, argv[i + max]);
    }

    virSetErrorFunc(NULL, vmrpGuestIgnoreLibvirtError);
    if (!uri)
        uri = g_getenv("LIBVIRT_DEFAULT_URI") ? g_getenv("LIBVIRT_DEFAULT_URI")
                                               : VMRP_DEFAULT_URI;
    if (!(conn = virConnectOpen(uri)))
        vmrpGuestDie("cannot connect to '%s': %s", uri, virGetLastErrorMessage());
    dom = vmrpGuestLookup(conn, name);
    agent = vmrpAgentNewLibvirt(dom);

    if (strcmp(cmd, "ping") == 0) {
        int timeout_s = VMRP_GUEST_PING_DEFAULT;
        if (i < argc)
            timeout_s = vmrpGuestParseSeconds(argv[i++]);
        if (!vmrpAgentPing(agent, timeout_s, &err))
            vmrpGuestDieError(err);
    } else if (strcmp(cmd, "wait") == 0) {
        int timeout_s = VMRP_GUEST_WAIT_DEFAULT;
        if (i < argc)
            timeout_s = vmrpGuestParseSeconds(argv[i++]);
        rc = vmrpGuestWait(agent, timeout_s);
    } else if (strcmp(cmd, "exec") == 0) {
        rc = vmrpGuestExec(agent, argc - i, argv + i);
    } else if (strcmp(cmd, "cat") == 0) {
        g_autoptr(GBytes) data = NULL;
        if (i >= argc)
            vmrpGuestDie("cat: no path given");
        if (!(data = vmrpAgentFileRead(agent, argv[i++], VMRP_GUEST_CAT_DEFAULT, &err)))
            vmrpGuestDieError(err);
        vmrpGuestWrite(stdout, data);
    } else if (strcmp(cmd, "freeze-status") == 0) {
        bool frozen = false;
        if (!vmrpAgentFsfreezeStatus(agent, VMRP_GUEST_PING_DEFAULT, &frozen, &err))
            vmrpGuestDieError(err);
        printf("%s\n", frozen ? "frozen" : "thawed");
    } else if (strcmp(cmd, "freeze") == 0 || strcmp(cmd, "thaw") == 0) {
        int n = strcmp(cmd, "freeze") == 0
                ? vmrpAgentFsfreezeFreeze(agent, VMRP_GUEST_FREEZE_DEFAULT, &err)
                : vmrpAgentFsfreezeThaw(agent, VMRP_GUEST_FREEZE_DEFAULT, &err);
        if (n < 0)
            vmrpGuestDieError(err);
        printf("%d\n", n);
    } else if (strcmp(cmd, "fsinfo") == 0) {
        rc = vmrpGuestFsinfo(agent);
    } else {
        vmrpGuestDie("unknown command '%s' (see vmrp-guest --help)", cmd);
    }

    g_clear_pointer(&agent, vmrpAgentFree);
    virDomainFree(dom);
    virConnectClose(conn);
    return rc;
}
