/*
 * vmrp.c: the vmrp command line, in virsh's style
 *
 *   vmrp [-c URI] [--repo DIR] [--json] COMMAND [OPTIONS]
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>
#include <libvirt/libvirt.h>

#include "config.h"
#include "vmrp-access.h"
#include "vmrp-cli.h"
#include "vmrp-error.h"
#include "vmrp-hook.h"
#include "vmrp-thaw-guard.h"

typedef struct {
    const char *name;
    vmrpCommandFunc func;
    const char *args;
    const char *summary;
} vmrpCommand;

static const vmrpCommand commands[] = {
    { "rp-create", vmrpCmdRpCreate, "DOMAIN", "take a restore point" },
    { "rp-list", vmrpCmdRpList, "DOMAIN", "list the restore points of a domain" },
    { "rp-info", vmrpCmdRpInfo, "POINT", "show a restore point" },
    { "rp-delete", vmrpCmdRpDelete, "POINT", "delete a restore point" },
    { "rp-protect", vmrpCmdRpProtect, "POINT", "keep a point from being pruned" },
    { "rp-unprotect", vmrpCmdRpUnprotect, "POINT", "let prunes remove a point again" },
    { "rp-restore", vmrpCmdRpRestore, "POINT", "restore a point as a domain" },
    { "disk-create", vmrpCmdDiskCreate, "POINT TARGET", "make a disk from a disk restore point" },
    { "rp-access", vmrpCmdRpAccess, "POINT TARGET",
      "serve a disk restore point read-only over NBD for a time" },
    { "rp-access-list", vmrpCmdRpAccessList, "", "list the access grants that last" },
    { "rp-access-revoke", vmrpCmdRpAccessRevoke, "GRANT", "end an access grant now" },
    { "file-list", vmrpCmdFileList, "POINT TARGET PATH...",
      "list folders of a disk restore point" },
    { "file-restore", vmrpCmdFileRestore, "POINT TARGET PATH...",
      "restore files and folders of a disk restore point" },
    { "job-list", vmrpCmdJobList, "", "list the jobs" },
    { "job-info", vmrpCmdJobInfo, "JOB", "show a job" },
    { "job-wait", vmrpCmdJobWait, "JOB", "wait for a job to end" },
    { "job-abort", vmrpCmdJobAbort, "JOB", "abort a running job" },
    { "policy-set", vmrpCmdPolicySet, "DOMAIN", "set retention and schedule" },
    { "policy-show", vmrpCmdPolicyShow, "DOMAIN", "show a domain's policy" },
    { "prune", vmrpCmdPrune, "DOMAIN", "remove points the retention does not keep" },
    { "run-policies", vmrpCmdRunPolicies, "", "take due points and prune (cron, timers)" },
    { "collection-list", vmrpCmdCollectionList, "", "list the collections" },
    { "collection-info", vmrpCmdCollectionInfo, "DOMAIN", "show a domain's collection" },
    { "collection-delete", vmrpCmdCollectionDelete, "DOMAIN",
      "delete a domain's collection and every point in it" },
    { "rp-copy", vmrpCmdRpCopy, "POINT --to DEST",
      "copy a point (and what it builds on) to another repository" },
    { "collection-sync", vmrpCmdCollectionSync, "DOMAIN --to DEST",
      "copy the points another repository lacks, oldest first" },
    { "rp-verify", vmrpCmdRpVerify, "POINT | DOMAIN | --all",
      "check stored points against their digests; records the result" },
    { "repo-check", vmrpCmdRepoCheck, "[DOMAIN]",
      "what the repository and libvirt disagree on; --repair fixes it" },
};

/* SIGINT, SIGTERM and SIGHUP cancel the command, which then undoes what
 * it did: the handler only writes to a pipe that a thread reads. */
static int signalPipe[2] = { -1, -1 };

static void
signalHandler(int sig)
{
    unsigned char c = sig;
    int saved = errno;

    if (write(signalPipe[1], &c, 1) < 0) {
        /* nothing more to do in a signal handler */
    }
    errno = saved;
}

static gpointer
signalThread(gpointer opaque)
{
    GCancellable *cancel = opaque;
    unsigned char c;

    while (read(signalPipe[0], &c, 1) < 0 && errno == EINTR)
        ;
    g_cancellable_cancel(cancel);
    return NULL;
}

static void
signalSetup(GCancellable *cancel)
{
    struct sigaction sa = { .sa_handler = signalHandler };

    if (pipe2(signalPipe, O_CLOEXEC) < 0)
        return;
    g_thread_unref(g_thread_new("vmrp-signals", signalThread, cancel));
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void
usage(FILE *out)
{
    size_t i;

    fprintf(out,
            "Usage: vmrp [-c URI] [--repo DIR] [--json] COMMAND [OPTIONS]\n\n"
            "Restore points of libvirt/QEMU virtual machines.\n\n"
            "  -c, --connect URI   libvirt URI (default %s)\n"
            "  --repo DIR          repository (default $VMRP_REPO or %s)\n"
            "  --json              machine-readable output\n"
            "  --version           print the version\n\n"
            "Commands:\n", VMRP_DEFAULT_URI, VMRP_DEFAULT_REPO);
    for (i = 0; i < G_N_ELEMENTS(commands); i++)
        fprintf(out, "  %-16s %-8s %s\n", commands[i].name, commands[i].args,
                commands[i].summary);
    fprintf(out, "\n'vmrp COMMAND --help' shows a command's options.\n");
}

int
main(int argc, char **argv)
{
    vmrpCLI cli = { 0 };
    g_autoptr(GError) error = NULL;
    g_autoptr(GCancellable) cancel = g_cancellable_new();
    g_autoptr(vmrpRepo) job_repo = NULL;
    g_autoptr(vmrpJob) job = NULL;
    const char *job_id = NULL;
    g_autofree char **global_argv = NULL;
    const vmrpCommand *cmd = NULL;
    int i;
    size_t j;
    bool ok;

    /* the guard vmrp starts before it freezes a guest (vmrp-thaw-guard.h) */
    if (argc > 1 && g_str_equal(argv[1], "__thaw-guard"))
        return vmrpThawGuardMain(argc - 1, argv + 1);
    /* the supervisor of an access grant (vmrp-access.h): REPO GRANT */
    if (argc == 4 && g_str_equal(argv[1], "__access-serve"))
        return vmrpAccessServeMain(argv[2], argc - 3, argv + 3);

    setlocale(LC_ALL, "");
    umask(077);
    cli.uri = g_getenv("VMRP_URI") ? g_getenv("VMRP_URI") : VMRP_DEFAULT_URI;
    cli.repo_path = g_getenv("VMRP_REPO") && *g_getenv("VMRP_REPO") ?
                    g_getenv("VMRP_REPO") : VMRP_DEFAULT_REPO;
    cli.tty = isatty(STDERR_FILENO);
    cli.cancel = cancel;
    signalSetup(cancel);

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *arg = argv[i];

        if (g_str_equal(arg, "-h") || g_str_equal(arg, "--help")) {
            usage(stdout);
            return 0;
        } else if (g_str_equal(arg, "--version")) {
            printf("vmrp %s\n", VMRP_VERSION);
            return 0;
        } else if (g_str_equal(arg, "--json")) {
            cli.json = true;
        } else if ((g_str_equal(arg, "-c") || g_str_equal(arg, "--connect") ||
                    g_str_equal(arg, "--repo")) && i + 1 < argc) {
            if (g_str_equal(arg, "--repo"))
                cli.repo_path = argv[++i];
            else
                cli.uri = argv[++i];
        } else if (g_str_has_prefix(arg, "--repo=")) {
            cli.repo_path = arg + strlen("--repo=");
        } else if (g_str_has_prefix(arg, "--connect=")) {
            cli.uri = arg + strlen("--connect=");
        } else {
            fprintf(stderr, "error: unknown or incomplete option '%s' (see 'vmrp --help')\n",
                    arg);
            return 1;
        }
    }
    /* the global options, for the workers of jobs */
    global_argv = g_new0(char *, i);
    cli.global_argv = global_argv;
    for (j = 1; j < (size_t)i; j++)
        cli.global_argv[j - 1] = argv[j];

    vmrpErrorSilenceLibvirt();
    /* a job's worker: "__job JOB COMMAND ..." */
    if (i + 1 < argc && g_str_equal(argv[i], "__job")) {
        job_id = argv[i + 1];
        i += 2;
        if (!(job_repo = vmrpRepoOpen(cli.repo_path, false, &error)) ||
            !(job = vmrpJobOpen(job_repo, job_id, true, &error))) {
            fprintf(stderr, "error: %s\n", error->message);
            return 1;
        }
        cli.job = job;
    }
    if (i >= argc) {
        usage(stderr);
        return 1;
    }
    /* libvirt's qemu hook (vmrp-hook.h) and the worker it hands off to */
    if (g_str_equal(argv[i], "__hook"))
        return vmrpHookMain(cli.repo_path, argc - i - 1, argv + i + 1);
    if (g_str_equal(argv[i], "__on-start")) {
        ok = vmrpCmdOnStart(&cli, argc - i, argv + i, &error);
        if (!ok)
            fprintf(stderr, "error: %s\n", error->message);
        return ok ? 0 : 1;
    }
    for (j = 0; j < G_N_ELEMENTS(commands); j++) {
        if (g_str_equal(argv[i], commands[j].name))
            cmd = &commands[j];
    }
    if (!cmd) {
        fprintf(stderr, "error: unknown command '%s' (see 'vmrp --help')\n", argv[i]);
        return 1;
    }

    ok = cmd->func(&cli, argc - i, argv + i, &error);
    if (!ok && g_cancellable_is_cancelled(cancel))
        g_prefix_error(&error, "aborted: ");
    if (cli.job)
        vmrpCLIJobEnd(&cli, ok, error);
    if (cli.conn)
        virConnectClose(cli.conn);
    g_free(cli.job_result);
    g_free(cli.job_message);
    if (!ok) {
        fprintf(stderr, "error: %s\n", error ? error->message : "unknown error");
        return 1;
    }
    return 0;
}
