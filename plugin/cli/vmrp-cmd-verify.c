/*
 * vmrp-cmd-verify.c: rp-verify POINT | DOMAIN | --all
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <string.h>

#include "vmrp-cli.h"
#include "vmrp-dest-repo.h"
#include "vmrp-error.h"
#include "vmrp-names.h"
#include "vmrp-verify.h"

/* The ids to verify, oldest first within each collection. */
static GPtrArray *
verifyTargets(vmrpRepo *repo, const char *what, bool all, GError **error)
{
    g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) collections = NULL;
    g_autofree char *uuid = NULL;
    guint i, j;

    if (!all && vmrpNameCheckPoint(what, NULL)) {
        g_ptr_array_add(ids, g_strdup(what));
        return g_steal_pointer(&ids);
    }
    if (!all) {
        if (!(uuid = vmrpRepoFindCollection(repo, what, error)))
            return NULL;
        collections = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
        g_ptr_array_add(collections, g_strsplit(uuid, "\n", 1));
    } else if (!(collections = vmrpRepoListCollections(repo, error))) {
        return NULL;
    }
    for (i = 0; i < collections->len; i++) {
        char **pair = g_ptr_array_index(collections, i);
        g_autoptr(GPtrArray) points = vmrpRepoListPoints(repo, pair[0], all ? NULL : error);

        if (!points && !all)
            return NULL;
        for (j = 0; points && j < points->len; j++)
            g_ptr_array_add(ids, g_strdup(((vmrpPoint *)g_ptr_array_index(points, j))->id));
    }
    return g_steal_pointer(&ids);
}

/* The same at an ssh:// repository. */
static GPtrArray *
verifyTargetsAt(vmrpDest *dest, const char *what, bool all, GError **error)
{
    g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) collections = NULL;
    guint i, j;

    if (!all && vmrpNameCheckPoint(what, NULL)) {
        g_ptr_array_add(ids, g_strdup(what));
        return g_steal_pointer(&ids);
    }
    if (!(collections = vmrpDestRepoListCollections(dest, error)))
        return NULL;
    if (!all) {
        g_autofree char *uuid = vmrpDestRepoFindCollection(dest, what, NULL, error);
        if (!uuid)
            return NULL;
        g_ptr_array_set_size(collections, 0);
        g_ptr_array_add(collections, g_strsplit(uuid, "\n", 1));
    }
    for (i = 0; i < collections->len; i++) {
        char **pair = g_ptr_array_index(collections, i);
        g_autoptr(GPtrArray) points = vmrpDestRepoListPoints(dest, pair[0], error);

        if (!points)
            return NULL;
        for (j = 0; j < points->len; j++)
            g_ptr_array_add(ids, g_strdup(((vmrpPoint *)g_ptr_array_index(points, j))->id));
    }
    return g_steal_pointer(&ids);
}

bool
vmrpCmdRpVerify(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    gboolean all = FALSE;
    GOptionEntry entries[] = {
        { "all", 0, 0, G_OPTION_ARG_NONE, &all, "every point of every collection", NULL },
        { NULL }
    };
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(vmrpDest) dest = NULL;
    g_autoptr(GPtrArray) ids = NULL;
    json_object *arr = NULL;
    guint failed = 0, unverified = 0, i, j;

    if (!vmrpCLIParse("rp-verify", "POINT | DOMAIN | --all",
                      "Re-read stored restore points: qemu-img check of each image, its "
                      "backing chain, the manifest and files against their digests and each "
                      "image's data against the digest recorded when it was made. The "
                      "result is recorded in each point (rp-info, rp-list); a point that "
                      "fails is restored only with --force.",
                      entries, &argc, &argv, 0, 1, error))
        return false;
    if ((all && argc != 1) || (!all && argc != 2)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "rp-verify: expected POINT, DOMAIN or --all (see 'vmrp rp-verify --help')");
        return false;
    }
    if (vmrpDestIsRemote(cli->repo_path)) {
        /* over ssh: each file against its SHA-256 (vmrp-dest-repo.h) */
        if (!(dest = vmrpDestOpen(cli->repo_path, error)) ||
            !(ids = verifyTargetsAt(dest, all ? NULL : argv[1], all, error)))
            return false;
    } else if (!(repo = vmrpCLIOpenRepo(cli, false, error)) ||
               !(ids = verifyTargets(repo, all ? NULL : argv[1], all, error))) {
        return false;
    }
    if (cli->json)
        arr = json_object_new_array();
    for (i = 0; i < ids->len; i++) {
        g_autoptr(vmrpVerifyResult) res = NULL;
        g_autoptr(GError) local = NULL;
        const char *id = g_ptr_array_index(ids, i);

        res = dest ? vmrpDestRepoVerify(dest, id, cli->cancel, &local)
                   : vmrpVerifyPoint(repo, id, cli->cancel, &local);
        if (!res) {
            /* one busy collection does not stop the others; cancelling does */
            if (ids->len == 1 || g_error_matches(local, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
                json_object_put(arr);
                g_propagate_error(error, g_steal_pointer(&local));
                return false;
            }
            unverified++;
            if (arr) {
                json_object *obj = json_object_new_object();
                json_object_object_add(obj, "id", json_object_new_string(id));
                json_object_object_add(obj, "error", json_object_new_string(local->message));
                json_object_array_add(arr, obj);
            } else {
                printf("%s not verified: %s\n", id, local->message);
            }
            continue;
        }
        if (!res->ok)
            failed++;
        if (arr) {
            json_object *obj = json_object_new_object();
            json_object *notes = json_object_new_array();

            for (j = 0; j < res->notes->len; j++)
                json_object_array_add(notes, json_object_new_string(
                    g_ptr_array_index(res->notes, j)));
            json_object_object_add(obj, "id", json_object_new_string(res->id));
            json_object_object_add(obj, "domain_uuid", json_object_new_string(res->domain_uuid));
            json_object_object_add(obj, "verified", json_object_new_string(res->verified));
            json_object_object_add(obj, "verify_state",
                                   json_object_new_string(res->ok ? "OK" : "Failed"));
            json_object_object_add(obj, "verify_reason",
                                   res->reason ? json_object_new_string(res->reason) : NULL);
            json_object_object_add(obj, "recorded", json_object_new_boolean(res->recorded));
            json_object_object_add(obj, "notes", notes);
            json_object_array_add(arr, obj);
            continue;
        }
        if (res->ok)
            printf("%s OK\n", res->id);
        else
            printf("%s Failed: %s\n", res->id, res->reason);
        for (j = 0; j < res->notes->len; j++)
            printf("  note: %s\n", (char *)g_ptr_array_index(res->notes, j));
    }
    if (arr)
        vmrpCLIPrintJSON(arr);
    if (failed || unverified) {
        if (unverified)
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED,
                        "%u of %u restore points failed verification, %u could not be "
                        "verified", failed, ids->len, unverified);
        else
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED,
                        "%u of %u restore points failed verification", failed, ids->len);
        return false;
    }
    return true;
}
