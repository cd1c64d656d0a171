/*
 * vmrp-cmd-restore.c: the restore commands: rp-restore
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <string.h>

#include "vmrp-cli.h"
#include "vmrp-error.h"
#include "vmrp-names.h"
#include "vmrp-restore.h"

static void
restoreProgress(const char *target, uint64_t done, uint64_t total, void *opaque)
{
    vmrpCLIProgressShow(opaque, target, done, total);
}

bool
vmrpCmdRpRestore(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    g_autofree char *name = NULL;
    g_autofree char *disk_dir = NULL;
    gboolean power_on = FALSE;
    gboolean keep_original = FALSE;
    gboolean quick_rollback = FALSE;
    GOptionEntry entries[] = {
        { "name", 0, 0, G_OPTION_ARG_STRING, &name,
          "restore as a new domain NEW beside the original", "NEW" },
        { "keep-original", 0, 0, G_OPTION_ARG_NONE, &keep_original,
          "restore beside the original, under a generated name", NULL },
        { "power-on", 0, 0, G_OPTION_ARG_NONE, &power_on,
          "start the restored domain", NULL },
        { "disk-dir", 0, 0, G_OPTION_ARG_FILENAME, &disk_dir,
          "folder of the restored disks (default: beside the originals)", "DIR" },
        { "quick-rollback", 0, 0, G_OPTION_ARG_NONE, &quick_rollback,
          "write back only what changed since the point (in place)", NULL },
        { NULL }
    };
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(vmrpRestoreResult) res = NULL;
    vmrpRestoreOptions opts = { 0 };
    vmrpCLIProgress progress = { cli, -1 };
    size_t i;

    if (!vmrpCLIParse("rp-restore", "POINT", "Restore a restore point as a domain.",
                  entries, &argc, &argv, 1, 1, error))
        return false;
    if (quick_rollback && (name || keep_original)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "--quick-rollback restores in place: it cannot be combined with "
                    "--name or --keep-original");
        return false;
    }
    if (!name && !keep_original) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "restoring in place is not supported yet: use --name NEW or --keep-original");
        return false;
    }
    if (!vmrpNameCheckPoint(argv[1], error) ||
        (name && !vmrpNameCheckDomain(name, error)))
        return false;
    if (!(repo = vmrpCLIOpenRepo(cli, false, error)) || !vmrpCLIConnect(cli, error))
        return false;

    opts.name = name;
    opts.disk_dir = disk_dir;
    opts.power_on = power_on;
    opts.progress = restoreProgress;
    opts.opaque = &progress;
    res = vmrpRestoreNew(cli->conn, repo, argv[1], &opts, error);
    g_free(progress.last_target);
    if (!res)
        return false;

    if (cli->json) {
        json_object *obj = json_object_new_object();
        json_object *disks = json_object_new_array();
        json_object *excl = json_object_new_array();

        json_object_object_add(obj, "name", json_object_new_string(res->name));
        json_object_object_add(obj, "uuid", res->uuid ? json_object_new_string(res->uuid) : NULL);
        json_object_object_add(obj, "powered_on", json_object_new_boolean(power_on));
        for (i = 0; i < res->disks->len; i++)
            json_object_array_add(disks, json_object_new_string(g_ptr_array_index(res->disks, i)));
        for (i = 0; i < res->excluded->len; i++)
            json_object_array_add(excl, json_object_new_string(g_ptr_array_index(res->excluded, i)));
        json_object_object_add(obj, "disks", disks);
        json_object_object_add(obj, "excluded_disks", excl);
        vmrpCLIPrintJSON(obj);
        return true;
    }
    printf("Restore point %s restored as domain %s%s\n", argv[1], res->name,
           power_on ? " (running)" : "");
    for (i = 0; i < res->disks->len; i++)
        printf("  disk %s\n", (char *)g_ptr_array_index(res->disks, i));
    for (i = 0; i < res->excluded->len; i++)
        printf("  disk %s: excluded from the point, not restored\n",
               (char *)g_ptr_array_index(res->excluded, i));
    return true;
}
