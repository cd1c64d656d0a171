/*
 * vmrp-cmd-restore.c: the restore commands: rp-restore, disk-create
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <string.h>

#include "vmrp-cli.h"
#include "vmrp-disk.h"
#include "vmrp-error.h"
#include "vmrp-names.h"
#include "vmrp-remote.h"
#include "vmrp-restore.h"
#include "vmrp-rollback.h"

/* One bar per disk: the progress helper starts a new one for each target. */
static void
restoreProgress(const char *target, uint64_t done, uint64_t total, void *opaque)
{
    vmrpCLIProgressShow(opaque, target, done, total);
}

/* A job's percent covers every disk from the start; a terminal shows each
 * disk's bar as it comes. */
static void
restorePlanned(const char *target, uint64_t total, void *opaque)
{
    vmrpCLIProgress *progress = opaque;

    if (progress->cli->job)
        vmrpJobProgress(progress->cli->job, target, 0, total);
}

static void
restoreStarted(void *opaque)
{
    vmrpCLIProgress *progress = opaque;

    vmrpCLIJobStarted(progress->cli);
}

/* Progress bars, the job's start (in a job's worker) and cancellation by
 * job-abort or Ctrl-C. */
static vmrpDiskCopyOptions
restoreCopyOptions(vmrpCLIProgress *progress)
{
    vmrpDiskCopyOptions copy = {
        .progress = restoreProgress,
        .planned = restorePlanned,
        .started = restoreStarted,
        .opaque = progress,
        .cancel = progress->cli->cancel,
    };
    return copy;
}

static void
printStrings(json_object *obj, const char *key, GPtrArray *arr)
{
    json_object *a = json_object_new_array();
    guint i;

    for (i = 0; i < arr->len; i++)
        json_object_array_add(a, json_object_new_string(g_ptr_array_index(arr, i)));
    json_object_object_add(obj, key, a);
}

static bool
restoreFinalize(vmrpCLI *cli, const char *domain, GError **error)
{
    g_autoptr(vmrpRepo) repo = NULL;
    g_autofree char *uuid = NULL;
    vmrpCLIProgress progress = { cli, -1, NULL };
    vmrpDiskCopyOptions copy = restoreCopyOptions(&progress);

    if (!(repo = vmrpCLIOpenRepo(cli, false, error)) || !vmrpCLIConnect(cli, error) ||
        !vmrpRemoteRefuse(cli->conn, "rp-restore", error))
        return false;
    uuid = vmrpRestoreFinalize(cli->conn, repo, domain, &copy, error);
    g_free(progress.last_target);
    if (!uuid)
        return false;
    cli->job_result = g_strdup(domain);
    cli->job_message = g_strdup_printf("Domain %s no longer depends on the repository: its "
                                       "disks hold all their data", domain);
    if (cli->json) {
        json_object *obj = json_object_new_object();
        json_object_object_add(obj, "domain", json_object_new_string(domain));
        json_object_object_add(obj, "uuid", json_object_new_string(uuid));
        json_object_object_add(obj, "finalized", json_object_new_boolean(TRUE));
        vmrpCLIPrintJSON(obj);
        return true;
    }
    printf("%s\n", cli->job_message);
    return true;
}

static bool
restoreQuickRollback(vmrpCLI *cli, const char *id, bool power_on, GError **error)
{
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(vmrpRollbackResult) res = NULL;
    vmrpCLIProgress progress = { cli, -1, NULL };
    vmrpRollbackOptions opts = { 0 };
    g_autofree char *written = NULL;
    g_autofree char *size = NULL;
    size_t i;

    if (!vmrpNameCheckPoint(id, error) ||
        !(repo = vmrpCLIOpenRepo(cli, false, error)) || !vmrpCLIConnect(cli, error) ||
        !vmrpRemoteRefuse(cli->conn, "rp-restore --quick-rollback", error))
        return false;
    opts.power_on = power_on;
    opts.copy = restoreCopyOptions(&progress);
    res = vmrpRollbackRun(cli->conn, repo, id, &opts, error);
    g_free(progress.last_target);
    if (!res)
        return false;

    written = vmrpCLIHumanBytes(res->bytes_written);
    size = vmrpCLIHumanBytes(res->bytes_disks);
    cli->job_result = g_strdup(res->name);
    cli->job_message = g_strdup_printf("Domain %s rolled back to restore point %s: %s written "
                                       "back of %s in %.1f s", res->name, id, written, size,
                                       res->write_back_ms / 1000.0);

    if (cli->json) {
        json_object *obj = json_object_new_object();

        json_object_object_add(obj, "name", json_object_new_string(res->name));
        json_object_object_add(obj, "mode", json_object_new_string("quick-rollback"));
        json_object_object_add(obj, "bytes_written", json_object_new_uint64(res->bytes_written));
        json_object_object_add(obj, "bytes_disks", json_object_new_uint64(res->bytes_disks));
        json_object_object_add(obj, "write_back_ms", json_object_new_int64(res->write_back_ms));
        json_object_object_add(obj, "checkpoints_removed",
                               vmrpCLIStrvToJSON((const char *const *)res->checkpoints_removed));
        json_object_object_add(obj, "kept_disks",
                               vmrpCLIStrvToJSON((const char *const *)res->excluded));
        vmrpCLIPrintJSON(obj);
        return true;
    }
    printf("%s\n", cli->job_message);
    for (i = 0; res->excluded[i]; i++)
        printf("  disk %s: excluded from the point, kept as it is\n", res->excluded[i]);
    if (res->checkpoints_removed[0])
        printf("  checkpoints newer than the point removed: %u\n",
               g_strv_length(res->checkpoints_removed));
    return true;
}

bool
vmrpCmdRpRestore(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    g_autofree char *name = NULL;
    g_autofree char *disk_dir = NULL;
    gboolean power_on = FALSE;
    gboolean keep_original = FALSE;
    gboolean quick_rollback = FALSE;
    gboolean instant = FALSE;
    gboolean finalize = FALSE;
    gboolean async = FALSE;
    g_autofree char *pool = NULL;
    gboolean force = FALSE;
    int shutdown_timeout = VMRP_RESTORE_SHUTDOWN_TIMEOUT_S;
    GOptionEntry entries[] = {
        { "name", 0, 0, G_OPTION_ARG_STRING, &name,
          "restore as a new domain NEW beside the original", "NEW" },
        { "keep-original", 0, 0, G_OPTION_ARG_NONE, &keep_original,
          "restore beside the original, under a generated name", NULL },
        { "power-on", 0, 0, G_OPTION_ARG_NONE, &power_on,
          "start the restored domain", NULL },
        { "disk-dir", 0, 0, G_OPTION_ARG_FILENAME, &disk_dir,
          "beside: folder of the restored disks (default: beside the originals)", "DIR" },
        { "pool", 0, 0, G_OPTION_ARG_STRING, &pool,
          "beside: new volumes in this libvirt storage pool (also on another host)", "POOL" },
        { "instant", 0, 0, G_OPTION_ARG_NONE, &instant,
          "run the restored domain at once on overlays over the point's images", NULL },
        { "finalize", 0, 0, G_OPTION_ARG_NONE, &finalize,
          "rp-restore --finalize DOMAIN: copy an instantly restored domain's data "
          "out of the repository", NULL },
        { "shutdown-timeout", 0, 0, G_OPTION_ARG_INT, &shutdown_timeout,
          "in place: seconds the original may take to shut down before it is "
          "destroyed (default 30, 0: at once)", "S" },
        { "quick-rollback", 0, 0, G_OPTION_ARG_NONE, &quick_rollback,
          "write back only what changed since the point (in place)", NULL },
        { "async", 0, 0, G_OPTION_ARG_NONE, &async,
          "run as a job: print its id and return (see job-info; job-abort undoes it)", NULL },
        { "force", 0, 0, G_OPTION_ARG_NONE, &force,
          "use the point even though it failed verification (rp-verify)", NULL },
        { NULL }
    };
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(vmrpRestoreResult) res = NULL;
    vmrpRestoreOptions opts = { 0 };
    vmrpCLIProgress progress = { cli, -1, NULL };
    g_auto(GStrv) orig_argv = g_strdupv(argv);
    size_t i;

    if (!vmrpCLIParse("rp-restore", "POINT | --finalize DOMAIN",
                      "Restore a restore point as a domain: beside the original with --name "
                      "or --keep-original, otherwise in its place.",
                      entries, &argc, &argv, 1, 1, error))
        return false;
    cli->force = force;
    if (finalize) {
        if (name || keep_original || power_on || disk_dir || instant || quick_rollback ||
            pool) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "--finalize DOMAIN takes no other option than --async");
            return false;
        }
        if (async)
            return vmrpCLIAsyncStart(cli, orig_argv, argv[1], false, error);
        return restoreFinalize(cli, argv[1], error);
    }
    if (quick_rollback && (name || keep_original)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "--quick-rollback restores in place: it cannot be combined with "
                    "--name or --keep-original");
        return false;
    }
    if (quick_rollback) {
        if (instant || disk_dir || pool) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "--quick-rollback writes back into the domain's own disks: it takes "
                        "no --instant, --disk-dir or --pool");
            return false;
        }
        if (async)
            return vmrpCLIAsyncStart(cli, orig_argv, argv[1], false, error);
        return restoreQuickRollback(cli, argv[1], power_on, error);
    }
    if (shutdown_timeout < 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "--shutdown-timeout must be 0 or more seconds");
        return false;
    }
    if (disk_dir && !name && !keep_original) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "--disk-dir is for a restore beside the original (--name or "
                    "--keep-original): in place, the disks go back to their paths");
        return false;
    }
    if (!vmrpNameCheckPoint(argv[1], error) ||
        (name && !vmrpNameCheckDomain(name, error)))
        return false;
    if (async)
        return vmrpCLIAsyncStart(cli, orig_argv, argv[1], false, error);
    if (pool && !name && !keep_original) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "--pool is for a restore beside the original (--name or --keep-original)");
        return false;
    }
    /* through a connection to another host, only new volumes can be written */
    if (!(repo = vmrpCLIOpenRepo(cli, false, error)) || !vmrpCLIConnect(cli, error) ||
        (!pool && !vmrpRemoteRefuse(cli->conn, "rp-restore without --pool", error)))
        return false;

    opts.in_place = !name && !keep_original;
    opts.pool = pool;
    opts.name = name;
    opts.disk_dir = disk_dir;
    opts.power_on = power_on;
    opts.instant = instant;
    opts.shutdown_timeout_s = shutdown_timeout;
    opts.copy = restoreCopyOptions(&progress);
    res = vmrpRestoreRun(cli->conn, repo, argv[1], &opts, error);
    g_free(progress.last_target);
    if (!res)
        return false;

    cli->job_result = g_strdup(res->name);
    cli->job_message = g_strdup_printf("Restore point %s restored %s domain %s%s%s", argv[1],
                                       res->in_place ? "in place of" : "as", res->name,
                                       res->instant ? ", instantly" : "",
                                       res->running ? " (running)" : "");

    if (cli->json) {
        json_object *obj = json_object_new_object();

        json_object_object_add(obj, "name", json_object_new_string(res->name));
        json_object_object_add(obj, "uuid", res->uuid ? json_object_new_string(res->uuid) : NULL);
        json_object_object_add(obj, "mode", json_object_new_string(res->in_place ? "in-place"
                                                                                 : "beside"));
        json_object_object_add(obj, "instant", json_object_new_boolean(res->instant));
        json_object_object_add(obj, "powered_on", json_object_new_boolean(res->running));
        printStrings(obj, "disks", res->disks);
        printStrings(obj, "excluded_disks", res->excluded);
        printStrings(obj, "kept_disks", res->kept);
        vmrpCLIPrintJSON(obj);
        return true;
    }
    printf("%s\n", cli->job_message);
    for (i = 0; i < res->disks->len; i++)
        printf("  disk %s%s\n", (char *)g_ptr_array_index(res->disks, i),
               res->instant ? " (overlay over the point's image)" : "");
    for (i = 0; i < res->excluded->len; i++)
        printf("  disk %s: excluded from the point, not restored: the domain has no such disk\n",
               (char *)g_ptr_array_index(res->excluded, i));
    for (i = 0; i < res->kept->len; i++)
        printf("  disk %s: excluded from the point, the original's disk kept as it is\n",
               (char *)g_ptr_array_index(res->kept, i));
    if (res->instant)
        printf("It runs on the repository's images: 'vmrp rp-restore --finalize %s' copies "
               "them out\n", res->name);
    return true;
}

bool
vmrpCmdDiskCreate(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    g_autofree char *output = NULL;
    g_autofree char *format = NULL;
    gboolean async = FALSE;
    gboolean force = FALSE;
    GOptionEntry entries[] = {
        { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output,
          "the new image (must not exist)", "FILE" },
        { "format", 0, 0, G_OPTION_ARG_STRING, &format,
          "qcow2 (default) or raw", "FORMAT" },
        { "async", 0, 0, G_OPTION_ARG_NONE, &async,
          "run as a job: print its id and return (see job-info)", NULL },
        { "force", 0, 0, G_OPTION_ARG_NONE, &force,
          "use the point even though it failed verification (rp-verify)", NULL },
        { NULL }
    };
    g_autoptr(vmrpRepo) repo = NULL;
    vmrpCLIProgress progress = { cli, -1, NULL };
    vmrpDiskCopyOptions copy = restoreCopyOptions(&progress);
    g_auto(GStrv) orig_argv = g_strdupv(argv);
    bool ok;

    if (!vmrpCLIParse("disk-create", "POINT TARGET --output FILE",
                      "Make a standalone disk image from a disk restore point.",
                      entries, &argc, &argv, 2, 2, error))
        return false;
    cli->force = force;
    if (!output) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "--output FILE is required");
        return false;
    }
    if (!vmrpNameCheckPoint(argv[1], error) || !vmrpNameCheckTarget(argv[2], error))
        return false;
    if (async)
        return vmrpCLIAsyncStart(cli, orig_argv, argv[1], false, error);
    if (!(repo = vmrpCLIOpenRepo(cli, false, error)))
        return false;
    ok = vmrpDiskCreate(repo, argv[1], argv[2], output, format ? format : "qcow2", &copy,
                        error);
    g_free(progress.last_target);
    if (!ok)
        return false;
    cli->job_result = g_strdup(output);
    cli->job_message = g_strdup_printf("Disk %s of restore point %s written to %s (%s)",
                                       argv[2], argv[1], output, format ? format : "qcow2");
    if (cli->json) {
        json_object *obj = json_object_new_object();
        json_object_object_add(obj, "point", json_object_new_string(argv[1]));
        json_object_object_add(obj, "target", json_object_new_string(argv[2]));
        json_object_object_add(obj, "output", json_object_new_string(output));
        json_object_object_add(obj, "format", json_object_new_string(format ? format : "qcow2"));
        vmrpCLIPrintJSON(obj);
        return true;
    }
    printf("%s\n", cli->job_message);
    return true;
}
