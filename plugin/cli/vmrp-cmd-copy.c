/*
 * vmrp-cmd-copy.c: rp-copy POINT --to DEST, collection-sync DOMAIN --to DEST
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <string.h>

#include "vmrp-cli.h"
#include "vmrp-copy.h"
#include "vmrp-dest-repo.h"
#include "vmrp-error.h"
#include "vmrp-names.h"
#include "vmrp-rate.h"

static void
copyProgress(const char *id, uint64_t done, uint64_t total, void *opaque)
{
    vmrpCLIProgressShow(opaque, id, done, total);
}

/* In a job's worker: every point to copy is a part of the job's progress
 * from the start (bytes done of the total of all), and the input is checked. */
static void
copyStarted(const char *const *ids, const uint64_t *bytes, guint n, void *opaque)
{
    vmrpCLIProgress *progress = opaque;
    guint i;

    if (!progress->cli->job)
        return;
    for (i = 0; i < n; i++)
        vmrpJobProgress(progress->cli->job, ids[i], 0, bytes[i]);
    vmrpCLIJobStarted(progress->cli);
}

static bool
copyReport(vmrpCLI *cli, vmrpCopyResult *res, const char *dest)
{
    g_autofree char *bytes = vmrpCLIHumanBytes(res->bytes);
    guint i;

    cli->job_result = g_strdup(dest);
    cli->job_message = g_strdup_printf("%u restore points copied to %s (%s of data), %u "
                                       "already there, %u skipped", res->copied->len, dest,
                                       bytes, res->present->len, res->skipped->len);

    if (cli->json) {
        json_object *obj = json_object_new_object();
        json_object *copied = json_object_new_array();
        json_object *present = json_object_new_array();
        json_object *skipped = json_object_new_array();

        for (i = 0; i < res->copied->len; i++)
            json_object_array_add(copied, json_object_new_string(
                g_ptr_array_index(res->copied, i)));
        for (i = 0; i < res->present->len; i++)
            json_object_array_add(present, json_object_new_string(
                g_ptr_array_index(res->present, i)));
        for (i = 0; i < res->skipped->len; i++)
            json_object_array_add(skipped, json_object_new_string(
                g_ptr_array_index(res->skipped, i)));
        json_object_object_add(obj, "destination", json_object_new_string(dest));
        json_object_object_add(obj, "copied", copied);
        json_object_object_add(obj, "present", present);
        json_object_object_add(obj, "skipped", skipped);
        json_object_object_add(obj, "bytes", json_object_new_uint64(res->bytes));
        vmrpCLIPrintJSON(obj);
        return true;
    }
    for (i = 0; i < res->copied->len; i++)
        printf("%s copied\n", (char *)g_ptr_array_index(res->copied, i));
    for (i = 0; i < res->present->len; i++)
        printf("%s already at the destination\n", (char *)g_ptr_array_index(res->present, i));
    for (i = 0; i < res->skipped->len; i++)
        printf("skipped %s\n", (char *)g_ptr_array_index(res->skipped, i));
    printf("%u restore points copied to %s (%s of data)\n", res->copied->len, dest, bytes);
    return true;
}

static bool
copyCommand(vmrpCLI *cli, int argc, char **argv, bool sync, GError **error)
{
    g_autofree char *to = NULL;
    g_autofree char *bandwidth = NULL;
    gboolean async = FALSE;
    GOptionEntry entries[] = {
        { "bandwidth", 0, 0, G_OPTION_ARG_STRING, &bandwidth,
          "copy at most RATE bytes per second (K, M, G: KiB, MiB, GiB; e.g. 50M)", "RATE" },
        { "async", 0, 0, G_OPTION_ARG_NONE, &async,
          "run as a job: print its id and return (see job-info)", NULL },
        { "to", 0, 0, G_OPTION_ARG_FILENAME, &to,
          "the destination repository: a folder (made when missing) or "
          "ssh://[user@]host[:port]/path", "DEST" },
        { NULL }
    };
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(vmrpCopyResult) res = NULL;
    vmrpCLIProgress progress = { cli, -1, NULL };
    vmrpCopyOptions opts = { cli->cancel, copyProgress, &progress, 0, copyStarted };
    g_auto(GStrv) orig_argv = g_strdupv(argv);

    if (!vmrpCLIParse(sync ? "collection-sync" : "rp-copy",
                      sync ? "DOMAIN --to DEST" : "POINT --to DEST",
                      sync ? "Copy every point of a domain's collection that the destination "
                             "repository lacks, oldest first."
                           : "Copy a restore point, and the points it builds on that the "
                             "destination lacks, to another repository.",
                      entries, &argc, &argv, 1, 1, error))
        return false;
    if (!to) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "--to DEST is required");
        return false;
    }
    if (bandwidth && !vmrpRateParse(bandwidth, &opts.bandwidth, error))
        return false;
    if (async && vmrpDestIsRemote(cli->repo_path)) {
        /* jobs are kept in the repository they run in: here none is local */
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "--async: a copy from an ssh:// repository runs in the foreground (its "
                    "job would have no local repository to be kept in)");
        return false;
    }
    if (async)
        return (sync || vmrpNameCheckPoint(argv[1], error)) &&
               vmrpCLIAsyncStart(cli, orig_argv, argv[1], false, error);
    if (!sync && !vmrpNameCheckPoint(argv[1], error))
        return false;
    if (!sync && vmrpDestIsRemote(cli->repo_path)) {
        /* back from an ssh:// repository to a local one */
        res = vmrpCopyFromDest(cli->repo_path, argv[1], to, &opts, error);
        g_free(progress.last_target);
        return res && copyReport(cli, res, to);
    }
    if (!(repo = vmrpCLIOpenRepo(cli, false, error)))
        return false;
    res = sync ? vmrpCopySync(repo, argv[1], to, &opts, error)
               : vmrpCopyPoint(repo, argv[1], to, &opts, error);
    g_free(progress.last_target);
    return res && copyReport(cli, res, to);
}

bool
vmrpCmdRpCopy(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    return copyCommand(cli, argc, argv, false, error);
}

bool
vmrpCmdCollectionSync(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    return copyCommand(cli, argc, argv, true, error);
}
