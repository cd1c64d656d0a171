/*
 * vmrp-cmd-point.c: the commands on restore points and collections:
 * rp-create, rp-list, rp-info, rp-delete, rp-protect, rp-unprotect,
 * collection-list, collection-info, collection-delete
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <string.h>

#include "vmrp-cli.h"
#include "vmrp-dest-repo.h"
#include "vmrp-remote.h"
#include "vmrp-backup.h"
#include "vmrp-check.h"
#include "vmrp-delete.h"
#include "vmrp-error.h"
#include "vmrp-names.h"

static void
backupProgress(const vmrpPoint *point G_GNUC_UNUSED, const vmrpPointDisk *disk, void *opaque)
{
    vmrpCLIProgressShow(opaque, disk->target, disk->bytes_done, disk->bytes_total);
}

bool
vmrpCmdRpCreate(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    g_autofree char *consistency = NULL;
    g_autofree char *exclude = NULL;
    gboolean allow_fallback = FALSE;
    gboolean full = FALSE;
    gboolean async = FALSE;
    gboolean no_tls = FALSE;
    g_autofree char *tls_dir = NULL;
    g_autofree char *ports = NULL;
    int timeout = 10;
    GOptionEntry entries[] = {
        { "consistency", 0, 0, G_OPTION_ARG_STRING, &consistency,
          "application (default), filesystem or crash", "MODE" },
        { "allow-fallback", 0, 0, G_OPTION_ARG_NONE, &allow_fallback,
          "take a crash-consistent point when the guest agent cannot freeze the guest", NULL },
        { "async", 0, 0, G_OPTION_ARG_NONE, &async,
          "run as a job: print its id and return (see job-info)", NULL },
        { "full", 0, 0, G_OPTION_ARG_NONE, &full,
          "take a full point: start a new chain", NULL },
        { "exclude-disk", 0, 0, G_OPTION_ARG_STRING, &exclude,
          "leave these disks out of the point", "T,..." },
        { "agent-timeout", 0, 0, G_OPTION_ARG_INT, &timeout,
          "seconds to wait for each guest agent call (default 10)", "S" },
        { "tls-dir", 0, 0, G_OPTION_ARG_FILENAME, &tls_dir,
          "a domain on another host: vmrp's NBD client certificate (ca-cert.pem, "
          "client-cert.pem, client-key.pem; default $VMRP_TLS_DIR, then "
          VMRP_DEFAULT_TLS_DIR ")", "DIR" },
        { "no-tls", 0, 0, G_OPTION_ARG_NONE, &no_tls,
          "a domain on another host: read its disks over plain TCP", NULL },
        { "nbd-ports", 0, 0, G_OPTION_ARG_STRING, &ports,
          "a domain on another host: the TCP ports its export may use (default 10809-10999)",
          "LO-HI" },
        { NULL }
    };
    g_auto(GStrv) excluded = NULL;
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(vmrpPoint) point = NULL;
    g_autoptr(vmrpBackup) backup = NULL;
    vmrpBackupOptions opts = { VMRP_CONSISTENCY_APPLICATION };
    vmrpCLIProgress progress = { cli, -1 };
    g_auto(GStrv) orig_argv = g_strdupv(argv);
    virDomainPtr dom;

    if (!vmrpCLIParse("rp-create", "DOMAIN", "Take a restore point of a running domain: "
                  "the first is full, the next ones are increments.",
                  entries, &argc, &argv, 1, 1, error))
        return false;
    if (consistency && !vmrpConsistencyFromString(consistency, &opts.consistency, error))
        return false;
    if (exclude && !(excluded = vmrpNameParseTargetList(exclude, error)))
        return false;
    if (timeout <= 0 || timeout > 3600) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "--agent-timeout must be between 1 and 3600 seconds");
        return false;
    }
    if (ports && (sscanf(ports, "%d-%d", &opts.nbd_port_min, &opts.nbd_port_max) != 2 ||
                  opts.nbd_port_min < 1 || opts.nbd_port_max > 65535 ||
                  opts.nbd_port_min > opts.nbd_port_max ||
                  strspn(ports, "0123456789-") != strlen(ports))) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "invalid --nbd-ports: expected LO-HI, ports from 1 to 65535");
        return false;
    }
    if (tls_dir && no_tls) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "--tls-dir and --no-tls exclude "
                    "each other");
        return false;
    }
    if (!(dom = vmrpCLILookupDomain(cli, argv[1], error)))
        return false;
    if (async) {
        virDomainFree(dom);
        return vmrpCLIAsyncStart(cli, orig_argv, argv[1], true, error);
    }
    opts.allow_fallback = allow_fallback;
    opts.cancel = cli->cancel;
    opts.full = full;
    opts.exclude = (const char *const *)excluded;
    opts.agent_timeout_s = timeout;
    opts.tls_dir = tls_dir;
    opts.no_tls = no_tls;
    opts.progress = backupProgress;
    opts.opaque = &progress;

    backup = vmrpBackupPrepare(dom, &opts, error);
    virDomainFree(dom);
    if (backup && (repo = vmrpCLIOpenRepo(cli, true, error))) {
        vmrpCLIJobStarted(cli);
        point = vmrpBackupRun(backup, repo, error);
    }
    g_free(progress.last_target);
    if (backup)
        vmrpCLIPrintNote(vmrpBackupGetNote(backup));
    if (!point)
        return false;

    if (point->fallback_reason)
        fprintf(stderr, "warning: point %s is %s-consistent, not %s: %s\n", point->id,
                vmrpConsistencyToString(point->achieved),
                vmrpConsistencyToString(point->requested), point->fallback_reason);
    if (point->message && point->parent)
        fprintf(stderr, "note: %s\n", point->message);
    else if (point->message)
        fprintf(stderr, "note: point %s is a full point: %s\n", point->id, point->message);
    {
        g_autofree char *size = vmrpCLIHumanBytes(vmrpPointBytes(point));
        g_autofree char *freeze = point->freeze_ms >= 0 ?
            g_strdup_printf(", frozen %" G_GINT64_FORMAT " ms", point->freeze_ms) : g_strdup("");

        cli->job_result = g_strdup(point->id);
        cli->job_message = g_strdup_printf("Restore point %s of %s created: %s, %s-consistent%s, "
                                           "%s copied in %.1f s", point->id, point->domain_name,
                                           point->kind, vmrpConsistencyToString(point->achieved),
                                           freeze, size, point->duration_ms / 1000.0);
    }
    if (cli->json)
        vmrpCLIPrintJSON(vmrpCLIPointToJSON(point));
    else
        printf("%s\n", cli->job_message);
    return true;
}

static void
printPointRow(const vmrpPoint *point)
{
    g_autofree char *size = vmrpCLIHumanBytes(vmrpPointBytes(point));

    printf("%-24s %-22s %-12s %-12s %-10s %10s  %s\n", point->id, point->created, point->kind,
           vmrpConsistencyToString(point->achieved), vmrpPointStateToString(point->state), size,
           point->verify_state ? point->verify_state : "-");
}

bool
vmrpCmdRpList(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(GPtrArray) points = NULL;
    g_autoptr(GPtrArray) creating = NULL;
    g_autofree char *uuid = NULL;
    size_t i;

    if (!vmrpCLIParse("rp-list", "DOMAIN", "List the restore points of a domain, oldest first.",
                  NULL, &argc, &argv, 1, 1, error))
        return false;
    if (vmrpDestIsRemote(cli->repo_path)) {
        g_autoptr(vmrpDest) dest = NULL;

        if (!(dest = vmrpDestOpen(cli->repo_path, error)) ||
            !(uuid = vmrpDestRepoFindCollection(dest, argv[1], NULL, error)) ||
            !(points = vmrpDestRepoListPoints(dest, uuid, error)))
            return false;
    } else {
        if (!(repo = vmrpCLIOpenRepo(cli, false, error)) ||
            !(uuid = vmrpRepoFindCollection(repo, argv[1], error)) ||
            !(points = vmrpRepoListAll(repo, uuid, &creating, error)))
            return false;
        g_ptr_array_extend_and_steal(points, g_steal_pointer(&creating));
    }

    if (cli->json) {
        json_object *arr = json_object_new_array();
        for (i = 0; i < points->len; i++)
            json_object_array_add(arr, vmrpCLIPointToJSON(g_ptr_array_index(points, i)));
        vmrpCLIPrintJSON(arr);
        return true;
    }
    printf("%-24s %-22s %-12s %-12s %-10s %10s  %s\n", "ID", "CREATED", "KIND",
           "CONSISTENCY", "STATE", "SIZE", "VERIFIED");
    for (i = 0; i < points->len; i++)
        printPointRow(g_ptr_array_index(points, i));
    /* why a point cannot be restored, below the table */
    for (i = 0; i < points->len; i++) {
        vmrpPoint *p = g_ptr_array_index(points, i);

        if (p->state == VMRP_POINT_DAMAGED || p->state == VMRP_POINT_FAILED)
            printf("%s %s: %s\n", p->id, vmrpPointStateToString(p->state), p->message);
        else if (g_strcmp0(p->verify_state, "Failed") == 0)
            printf("%s failed verification at %s: %s\n", p->id, p->verified,
                   p->verify_reason ? p->verify_reason : "");
    }
    return true;
}

/* A committed point, or one being created (for --instance-view). */
static vmrpPoint *
findAnyPoint(vmrpRepo *repo, const char *id, GError **error)
{
    g_autoptr(GPtrArray) collections = NULL;
    g_autoptr(GError) local = NULL;
    vmrpPoint *point;
    size_t i, j;

    if ((point = vmrpRepoFindPointEntry(repo, id, NULL, &local)))
        return point;
    if (!(g_error_matches(local, VMRP_ERROR, VMRP_ERROR_NOT_FOUND) ||
          g_error_matches(local, VMRP_ERROR, VMRP_ERROR_BUSY) ||
          g_str_has_suffix(local->message, "the creating process ended")) ||
        !(collections = vmrpRepoListCollections(repo, NULL))) {
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    for (i = 0; i < collections->len; i++) {
        char **pair = g_ptr_array_index(collections, i);
        g_autoptr(GPtrArray) creating = vmrpRepoListCreating(repo, pair[0], NULL);

        for (j = 0; creating && j < creating->len; j++) {
            vmrpPoint *p = g_ptr_array_index(creating, j);
            if (g_str_equal(p->id, id))
                return g_ptr_array_steal_index(creating, j);
        }
    }
    g_propagate_error(error, g_steal_pointer(&local));
    return NULL;
}

bool
vmrpCmdRpInfo(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    gboolean instance_view = FALSE;
    GOptionEntry entries[] = {
        { "instance-view", 0, 0, G_OPTION_ARG_NONE, &instance_view,
          "show each disk's progress (also while the point is being created)", NULL },
        { NULL }
    };
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(vmrpPoint) point = NULL;
    size_t i;

    if (!vmrpCLIParse("rp-info", "POINT", "Show one restore point.",
                  entries, &argc, &argv, 1, 1, error))
        return false;
    if (!(repo = vmrpCLIOpenRepo(cli, false, error)) ||
        !(point = findAnyPoint(repo, argv[1], error)))
        return false;

    if (cli->json) {
        vmrpCLIPrintJSON(vmrpCLIPointToJSON(point));
        return true;
    }
    printf("%-18s %s\n", "Id:", point->id);
    printf("%-18s %s (%s)\n", "Domain:", point->domain_name, point->domain_uuid);
    printf("%-18s %s\n", "Created:", point->created);
    printf("%-18s %s\n", "State:", vmrpPointStateToString(point->state));
    printf("%-18s %s\n", "Kind:", point->kind);
    if (point->parent)
        printf("%-18s %s\n", "Parent:", point->parent);
    if (point->checkpoint)
        printf("%-18s %s\n", "Checkpoint:", point->checkpoint);
    printf("%-18s %s (requested %s)\n", "Consistency:",
           vmrpConsistencyToString(point->achieved), vmrpConsistencyToString(point->requested));
    if (point->fallback_reason)
        printf("%-18s %s\n", "Fallback reason:", point->fallback_reason);
    if (point->freeze_ms >= 0)
        printf("%-18s %" G_GINT64_FORMAT " ms\n", "Freeze window:", point->freeze_ms);
    if (point->message)
        printf("%-18s %s\n", "Message:", point->message);
    if (point->protected_)
        printf("%-18s %s\n", "Protected:", "yes");
    if (point->verify_state)
        printf("%-18s %s at %s%s%s\n", "Verified:", point->verify_state, point->verified,
               point->verify_reason ? ": " : "",
               point->verify_reason ? point->verify_reason : "");
    else if (point->state == VMRP_POINT_SUCCEEDED)
        printf("%-18s %s\n", "Verified:", point->manifest_digest ? "never" :
               "never (made without digests)");
    printf("\n%-8s %-10s %10s %10s", "TARGET", "IMAGE", "SIZE", "COPIED");
    if (instance_view)
        printf(" %8s", "PROGRESS");
    printf("  SOURCE\n");
    for (i = 0; i < point->disks->len; i++) {
        vmrpPointDisk *disk = g_ptr_array_index(point->disks, i);
        g_autofree char *size = vmrpCLIHumanBytes(disk->size);
        g_autofree char *done = vmrpCLIHumanBytes(disk->bytes_done);

        printf("%-8s %-10s %10s %10s", disk->target,
               disk->excluded ? "excluded" : disk->image, size, done);
        if (instance_view)
            printf(" %7u%%", vmrpPointDiskPercent(disk));
        printf("  %s\n", disk->source ? disk->source : "-");
    }
    return true;
}

bool
vmrpCmdCollectionList(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(GPtrArray) list = NULL;
    size_t i;

    if (!vmrpCLIParse("collection-list", "", "List the collections (one per domain).",
                  NULL, &argc, &argv, 0, 0, error))
        return false;
    if (!(repo = vmrpCLIOpenRepo(cli, false, error)) ||
        !(list = vmrpRepoListCollections(repo, error)))
        return false;
    if (cli->json) {
        json_object *arr = json_object_new_array();
        for (i = 0; i < list->len; i++) {
            char **pair = g_ptr_array_index(list, i);
            json_object *obj = json_object_new_object();
            g_autoptr(GPtrArray) points = vmrpRepoListPoints(repo, pair[0], NULL);

            json_object_object_add(obj, "uuid", json_object_new_string(pair[0]));
            json_object_object_add(obj, "name", json_object_new_string(pair[1]));
            json_object_object_add(obj, "points", json_object_new_int(points ? points->len : 0));
            json_object_object_add(obj, "damaged", pair[2] ? json_object_new_string(pair[2])
                                                           : NULL);
            json_object_array_add(arr, obj);
        }
        vmrpCLIPrintJSON(arr);
        return true;
    }
    printf("%-36s  %-24s %6s\n", "UUID", "NAME", "POINTS");
    for (i = 0; i < list->len; i++) {
        char **pair = g_ptr_array_index(list, i);
        g_autoptr(GPtrArray) points = vmrpRepoListPoints(repo, pair[0], NULL);
        printf("%-36s  %-24s %6u\n", pair[0], pair[2] ? "(damaged)" : pair[1],
               points ? points->len : 0);
    }
    for (i = 0; i < list->len; i++) {
        char **pair = g_ptr_array_index(list, i);
        if (pair[2])
            printf("%s Damaged: %s\n", pair[0], pair[2]);
    }
    return true;
}

bool
vmrpCmdCollectionInfo(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(GPtrArray) points = NULL;
    g_autoptr(GPtrArray) list = NULL;
    g_autofree char *uuid = NULL;
    g_autofree char *policy = NULL;
    g_autofree char *size = NULL;
    const char *name = NULL;
    const char *full = NULL;
    uint64_t bytes = 0;
    guint protected_ = 0;
    guint damaged = 0;
    guint chain = 0;
    bool on_start = false;
    size_t i;

    if (!vmrpCLIParse("collection-info", "DOMAIN", "Show a domain's collection: its points, "
                      "their size, the current chain and the policy.",
                      NULL, &argc, &argv, 1, 1, error))
        return false;
    if (!(repo = vmrpCLIOpenRepo(cli, false, error)) ||
        !(uuid = vmrpRepoFindCollection(repo, argv[1], error)) ||
        !(points = vmrpRepoListPoints(repo, uuid, error)) ||
        !(list = vmrpRepoListCollections(repo, error)) ||
        !vmrpRepoGetPolicy(repo, uuid, &policy, &on_start, error))
        return false;
    for (i = 0; i < list->len; i++) {
        char **pair = g_ptr_array_index(list, i);
        if (g_str_equal(pair[0], uuid))
            name = pair[1];
    }
    for (i = 0; i < points->len; i++) {
        vmrpPoint *p = g_ptr_array_index(points, i);

        bytes += vmrpPointBytes(p);
        protected_ += p->protected_;
        if (p->state == VMRP_POINT_DAMAGED) {
            damaged++;
            continue;
        }
        /* the current chain: the newest full point and the increments on it */
        chain = p->parent ? chain + 1 : 1;
        if (!p->parent)
            full = p->id;
    }

    if (cli->json) {
        json_object *obj = json_object_new_object();
        json_object *ids = json_object_new_array();

        json_object_object_add(obj, "name", json_object_new_string(name ? name : ""));
        json_object_object_add(obj, "uuid", json_object_new_string(uuid));
        for (i = 0; i < points->len; i++)
            json_object_array_add(ids, json_object_new_string(
                ((vmrpPoint *)g_ptr_array_index(points, i))->id));
        json_object_object_add(obj, "points", ids);
        json_object_object_add(obj, "bytes", json_object_new_uint64(bytes));
        json_object_object_add(obj, "protected", json_object_new_int(protected_));
        json_object_object_add(obj, "damaged", json_object_new_int(damaged));
        json_object_object_add(obj, "chain_length", json_object_new_int(chain));
        json_object_object_add(obj, "chain_full", full ? json_object_new_string(full) : NULL);
        json_object_object_add(obj, "policy", policy ? json_object_new_string(policy) : NULL);
        json_object_object_add(obj, "on_start", json_object_new_boolean(on_start));
        vmrpCLIPrintJSON(obj);
        return true;
    }
    size = vmrpCLIHumanBytes(bytes);
    printf("%-11s %s\n", "Name:", name ? name : "");
    printf("%-11s %s\n", "UUID:", uuid);
    printf("%-11s %u (%u protected, %u damaged), %s\n", "Points:", points->len, protected_,
           damaged, size);
    if (points->len) {
        printf("%-11s %s\n", "Oldest:", ((vmrpPoint *)g_ptr_array_index(points, 0))->id);
        printf("%-11s %s\n", "Newest:",
               ((vmrpPoint *)g_ptr_array_index(points, points->len - 1))->id);
        printf("%-11s %u point(s) from the full point %s\n", "Chain:", chain,
               full ? full : "-");
    }
    printf("%-11s %s%s\n", "Policy:", policy ? "yes (policy-show)" : "none",
           on_start ? ", a point at each start" : "");
    return true;
}

bool
vmrpCmdCollectionDelete(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(GError) conn_error = NULL;
    g_auto(GStrv) deleted = NULL;
    g_auto(GStrv) warnings = NULL;
    g_autofree char *note = NULL;
    g_autofree char *uuid = NULL;
    size_t i;

    if (!vmrpCLIParse("collection-delete", "DOMAIN", "Delete a domain's collection: every "
                      "restore point, their checkpoints, and the policy.",
                      NULL, &argc, &argv, 1, 1, error))
        return false;
    if (!(repo = vmrpCLIOpenRepo(cli, false, error)) ||
        !(uuid = vmrpRepoFindCollection(repo, argv[1], error)))
        return false;
    /* the domain may be gone: then there is no checkpoint to delete */
    vmrpCLIConnect(cli, &conn_error);
    if (!(deleted = vmrpDeleteCollection(cli->conn, repo, uuid, &warnings, &note, error)))
        return false;
    vmrpCLIPrintNote(note);
    for (i = 0; warnings[i]; i++)
        fprintf(stderr, "warning: %s\n", warnings[i]);
    if (cli->json) {
        json_object *obj = json_object_new_object();

        json_object_object_add(obj, "uuid", json_object_new_string(uuid));
        json_object_object_add(obj, "deleted", vmrpCLIStrvToJSON((const char *const *)deleted));
        vmrpCLIPrintJSON(obj);
        return true;
    }
    printf("Collection of %s (%s) deleted: %u restore point(s)\n", argv[1], uuid,
           g_strv_length(deleted));
    return true;
}

bool
vmrpCmdRpDelete(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(vmrpDeleteResult) res = NULL;
    g_autoptr(GError) conn_error = NULL;
    size_t i;

    if (!vmrpCLIParse("rp-delete", "POINT", "Delete a restore point; the points built on it "
                      "keep its data and stay restorable.",
                      NULL, &argc, &argv, 1, 1, error))
        return false;
    if (!vmrpNameCheckPoint(argv[1], error) ||
        !(repo = vmrpCLIOpenRepo(cli, false, error)))
        return false;
    /* the domain may be gone: then there is no checkpoint to delete */
    vmrpCLIConnect(cli, &conn_error);
    if (!(res = vmrpDeletePoint(cli->conn, repo, argv[1], error)))
        return false;
    vmrpCLIPrintNote(res->note);
    if (res->warning)
        fprintf(stderr, "warning: %s\n", res->warning);
    if (cli->json) {
        json_object *obj = json_object_new_object();

        json_object_object_add(obj, "id", json_object_new_string(res->id));
        json_object_object_add(obj, "merged_into",
                               vmrpCLIStrvToJSON((const char *const *)res->merged_into));
        vmrpCLIPrintJSON(obj);
        return true;
    }
    printf("Restore point %s deleted", res->id);
    for (i = 0; res->merged_into[i]; i++)
        printf("%s %s", i ? "," : "; its data merged into", res->merged_into[i]);
    printf("\n");
    return true;
}

static bool
setProtected(vmrpCLI *cli, int argc, char **argv, bool protected_, GError **error)
{
    const char *name = protected_ ? "rp-protect" : "rp-unprotect";
    g_autoptr(vmrpRepo) repo = NULL;

    if (!vmrpCLIParse(name, "POINT", protected_ ? "Protect a point: no prune removes it."
                                                : "Let prunes remove a point again.",
                      NULL, &argc, &argv, 1, 1, error) ||
        !(repo = vmrpCLIOpenRepo(cli, false, error)) ||
        !vmrpRepoPointSetProtected(repo, argv[1], protected_, error))
        return false;
    if (cli->json) {
        json_object *obj = json_object_new_object();
        json_object_object_add(obj, "id", json_object_new_string(argv[1]));
        json_object_object_add(obj, "protected", json_object_new_boolean(protected_));
        vmrpCLIPrintJSON(obj);
    } else {
        printf("Restore point %s is %s\n", argv[1], protected_ ? "protected" : "not protected");
    }
    return true;
}

bool
vmrpCmdRpProtect(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    return setProtected(cli, argc, argv, true, error);
}

bool
vmrpCmdRpUnprotect(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    return setProtected(cli, argc, argv, false, error);
}

bool
vmrpCmdRepoCheck(vmrpCLI *cli, int argc, char **argv, GError **error)
{
    gboolean repair = FALSE;
    GOptionEntry entries[] = {
        { "repair", 0, 0, G_OPTION_ARG_NONE, &repair,
          "fix what can be fixed: remove half points and orphan checkpoints, mark dead "
          "jobs failed, take back a gone domain's instant-restore permissions", NULL },
        { NULL }
    };
    g_autoptr(vmrpRepo) repo = NULL;
    g_autoptr(GPtrArray) found = NULL;
    g_autoptr(GError) conn_error = NULL;
    g_autofree char *uuid = NULL;
    size_t i;

    if (!vmrpCLIParse("repo-check", "[DOMAIN]", "List what the repository and libvirt "
                      "disagree on: half points whose creator is gone, vmrp checkpoints "
                      "whose point never committed, jobs whose worker died, instant-restore "
                      "records of gone domains, damaged points.  Read-only without --repair.",
                      entries, &argc, &argv, 0, 1, error))
        return false;
    if (!(repo = vmrpCLIOpenRepo(cli, false, error)) ||
        (argc > 1 && !(uuid = vmrpRepoFindCollection(repo, argv[1], error))))
        return false;
    /* without libvirt, the repository's side alone */
    if (!vmrpCLIConnect(cli, &conn_error))
        fprintf(stderr, "warning: libvirt not reached, checking the repository alone: %s\n",
                conn_error->message);
    if (!(found = vmrpCheckRun(cli->conn, repo, uuid, repair ? VMRP_CHECK_REPAIR : 0, error)))
        return false;
    if (cli->json) {
        json_object *arr = json_object_new_array();

        for (i = 0; i < found->len; i++) {
            vmrpCheckFinding *f = g_ptr_array_index(found, i);
            json_object *o = json_object_new_object();

            json_object_object_add(o, "kind", json_object_new_string(f->kind));
            json_object_object_add(o, "subject", json_object_new_string(f->subject));
            json_object_object_add(o, "item", json_object_new_string(f->item));
            json_object_object_add(o, "detail", json_object_new_string(f->detail));
            json_object_object_add(o, "repairable", json_object_new_boolean(f->repairable));
            json_object_object_add(o, "repaired", json_object_new_boolean(f->repaired));
            json_object_object_add(o, "repair_error", f->repair_error ?
                                   json_object_new_string(f->repair_error) : NULL);
            json_object_array_add(arr, o);
        }
        vmrpCLIPrintJSON(arr);
        return true;
    }
    for (i = 0; i < found->len; i++) {
        vmrpCheckFinding *f = g_ptr_array_index(found, i);
        const char *done = !repair || !f->repairable ? "" :
                           f->repaired ? " [repaired]" : " [not repaired: ";

        printf("%-18s %s %s: %s%s%s%s\n", f->kind, f->subject, f->item, f->detail, done,
               f->repair_error ? f->repair_error : "", f->repair_error ? "]" : "");
    }
    if (found->len == 0)
        printf("The repository and libvirt agree.\n");
    return true;
}
