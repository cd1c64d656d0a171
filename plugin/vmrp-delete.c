/*
 * vmrp-delete.c: deleting one restore point, keeping every other restorable
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "vmrp-access.h"
#include "vmrp-check.h"
#include "vmrp-delete.h"
#include "vmrp-error.h"
#include "vmrp-fault.h"
#include "vmrp-file.h"
#include "vmrp-instant.h"
#include "vmrp-run.h"

void
vmrpDeleteResultFree(vmrpDeleteResult *res)
{
    if (!res)
        return;
    g_free(res->id);
    g_strfreev(res->merged_into);
    g_free(res->warning);
    g_free(res->note);
    g_free(res);
}

/* Rebases every image of @child that is backed by @point onto @point's own
 * backing image (or none), and updates @child's manifest. */
static bool
deleteMergeInto(vmrpRepo *repo, vmrpPoint *point, vmrpPoint *child, GError **error)
{
    g_autofree char *points = g_build_filename(vmrpRepoGetPath(repo), "collections",
                                               point->domain_uuid, "points", NULL);
    g_autofree char *child_dir = g_build_filename(points, child->id, NULL);
    bool any_backing = false;
    size_t i;

    for (i = 0; i < child->disks->len; i++) {
        vmrpPointDisk *cd = g_ptr_array_index(child->disks, i);
        g_autofree char *parent_id = vmrpPointDiskBackingPoint(cd);
        g_autofree char *image = NULL;
        vmrpPointDisk *pd;
        const char *backing;

        if (!parent_id || !g_str_equal(parent_id, point->id)) {
            any_backing |= cd->backing != NULL;
            continue;
        }
        pd = vmrpPointFindDisk(point, cd->target);
        if (point->state == VMRP_POINT_DAMAGED) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "restore point %s is damaged (%s) and point %s builds on it: "
                        "deleting it would lose data that %s needs; delete %s first",
                        point->id, point->message, child->id, child->id, child->id);
            return false;
        }
        if (!pd || !pd->image) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "point %s: disk %s is backed by point %s, which has no image of it",
                        child->id, cd->target, point->id);
            return false;
        }
        image = g_build_filename(child_dir, cd->image, NULL);
        backing = pd->backing ? pd->backing : "";
        {
            /* safe mode: the data that differs between the old and the new
             * backing chain is copied into the child before the link changes */
            const char *argv[] = { "qemu-img", "rebase", "-q", "-f", "qcow2", "-F", "qcow2",
                                   "-b", backing, image, NULL };
            const char *argv_none[] = { "qemu-img", "rebase", "-q", "-f", "qcow2",
                                        "-b", "", image, NULL };
            if (!vmrpRun(pd->backing ? argv : argv_none, NULL, error)) {
                g_prefix_error(error, "cannot merge point %s into point %s: ",
                               point->id, child->id);
                return false;
            }
        }
        g_free(cd->backing);
        cd->backing = g_strdup(pd->backing);
        any_backing |= cd->backing != NULL;
    }
    g_free(child->parent);
    child->parent = g_strdup(point->parent);
    if (!any_backing) {
        g_free(child->kind);
        child->kind = g_strdup("full");
    }
    return vmrpRepoPointUpdate(child_dir, child, error);
}

static char *
deleteCheckpoint(virConnectPtr conn, vmrpPoint *point)
{
    virDomainPtr dom;
    virDomainCheckpointPtr chk;
    char *warning = NULL;

    if (!conn || !point->checkpoint ||
        !(dom = virDomainLookupByUUIDString(conn, point->domain_uuid)))
        return NULL;
    if ((chk = virDomainCheckpointLookupByName(dom, point->checkpoint, 0))) {
        /* a checkpoint whose bitmaps an unclean stop took away goes as metadata */
        if (virDomainCheckpointDelete(chk, 0) < 0 &&
            virDomainCheckpointDelete(chk, VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY) < 0) {
            virErrorPtr err = virGetLastError();
            warning = g_strdup_printf("checkpoint %s of domain %s was not deleted: %s",
                                      point->checkpoint, point->domain_name,
                                      err && err->message ? err->message : "unknown error");
        }
        virDomainCheckpointFree(chk);
    }
    virDomainFree(dom);
    return warning;
}

/* Neither protected nor used by a VM that runs on the point or on a point
 * built on it (instant restore). */
static bool
deleteCheckDeletable(vmrpRepo *repo, const vmrpPoint *point, GError **error)
{
    g_autofree char *user = NULL;
    int use;

    if (point->protected_) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "restore point %s is protected: rp-unprotect it first", point->id);
        return false;
    }
    if ((use = vmrpInstantPointInUse(repo, point->id, &user, error)) > 0)
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_BUSY,
                    "restore point %s is in use by %s (instant restore): run "
                    "'vmrp rp-restore --finalize' first", point->id, user);
    if (use != 0)
        return false;
    if ((use = vmrpAccessPointInUse(repo, point->id, &user, error)) > 0)
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_BUSY,
                    "restore point %s is read through access grant %s: wait for it to end "
                    "or run 'vmrp rp-access-revoke %s'", point->id, user, user);
    return use == 0;
}

vmrpDeleteResult *
vmrpDeletePoint(virConnectPtr conn, vmrpRepo *repo, const char *id, GError **error)
{
    g_autoptr(vmrpDeleteResult) res = g_new0(vmrpDeleteResult, 1);
    g_autoptr(vmrpPoint) point = NULL;
    g_autoptr(GPtrArray) points = NULL;
    g_autoptr(GStrvBuilder) merged = g_strv_builder_new();
    g_autofree char *uuid = NULL;
    g_autofree char *dir = NULL;
    g_autofree char *gone = NULL;
    int lock = -1;
    size_t i;

    /* a damaged point can be deleted too (its folder and checkpoint) */
    if (!(point = vmrpRepoFindPointEntry(repo, id, NULL, error)))
        return NULL;
    uuid = g_strdup(point->domain_uuid);
    g_clear_pointer(&point, vmrpPointFree);
    if (!vmrpFaultCheck("delete-before-lock", error) ||
        (lock = vmrpRepoLockCollection(repo, uuid, error)) < 0)
        return NULL;
    /* read again under the lock: an rp-protect or a merge may have come
     * in between; and first clean what a crash left (a backup job with its
     * scratch files, a half point), which would outlive the point */
    if (!(res->note = vmrpCheckRepairCollection(conn, repo, uuid, NULL, error)) ||
        !(point = vmrpRepoFindPointEntry(repo, id, &dir, error)))
        goto fail;
    if (!g_str_equal(point->domain_uuid, uuid)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_BUSY,
                    "restore point %s moved while it was being deleted", id);
        goto fail;
    }
    if (!deleteCheckDeletable(repo, point, error) ||
        !(points = vmrpRepoListPoints(repo, point->domain_uuid, error)))
        goto fail;

    for (i = 0; i < points->len; i++) {
        vmrpPoint *child = g_ptr_array_index(points, i);

        if (g_strcmp0(child->parent, point->id) != 0)
            continue;
        if (!deleteMergeInto(repo, point, child, error))
            goto fail;
        g_strv_builder_add(merged, child->id);
    }
    /* a copy's checkpoints are the source repository's (rp-copy) */
    res->warning = deleteCheckpoint(vmrpRepoCollectionIsCopy(repo, point->domain_uuid) ? NULL
                                                                                       : conn,
                                    point);

    /* out of sight at once, then removed */
    gone = g_strdup_printf("%s.deleting", dir);
    if (rename(dir, gone) < 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot delete %s: %s",
                    dir, g_strerror(errno));
        goto fail;
    }
    if (!vmrpFileRemoveTree(gone, error))
        goto fail;
    close(lock);
    res->id = g_strdup(point->id);
    res->merged_into = g_strv_builder_end(merged);
    return g_steal_pointer(&res);

 fail:
    close(lock);
    return NULL;
}

GStrv
vmrpDeleteCollection(virConnectPtr conn, vmrpRepo *repo, const char *uuid,
                     GStrv *ret_warnings, char **ret_note, GError **error)
{
    g_autoptr(GPtrArray) points = NULL;
    g_autoptr(GPtrArray) creating = NULL;
    g_autoptr(GStrvBuilder) deleted = g_strv_builder_new();
    g_autoptr(GStrvBuilder) warnings = g_strv_builder_new();
    g_autofree char *note = NULL;
    GStrv ret = NULL;
    int lock;
    guint i;

    if ((lock = vmrpRepoLockCollection(repo, uuid, error)) < 0)
        return NULL;
    /* a backup job a crash left would keep writing scratch files for a
     * collection that is gone */
    if (!(note = vmrpCheckRepairCollection(conn, repo, uuid, NULL, error)) ||
        !(points = vmrpRepoListAll(repo, uuid, &creating, error)))
        goto cleanup;
    /* every check before anything changes */
    for (i = 0; i < points->len; i++) {
        if (!deleteCheckDeletable(repo, g_ptr_array_index(points, i), error))
            goto cleanup;
    }

    /* newest first: libvirt merges each checkpoint's bitmap into its parent's,
     * and a half-made point a crash left (.creating-*) goes the same way */
    for (i = 0; i < points->len; i++)
        g_strv_builder_add(deleted, ((vmrpPoint *)g_ptr_array_index(points, i))->id);
    g_ptr_array_extend_and_steal(points, g_steal_pointer(&creating));
    for (i = points->len; i > 0; i--) {
        g_autofree char *warning = deleteCheckpoint(vmrpRepoCollectionIsCopy(repo, uuid) ?
                                                    NULL : conn,
                                                    g_ptr_array_index(points, i - 1));

        if (warning)
            g_strv_builder_add(warnings, warning);
    }
    if (!vmrpRepoRemoveCollection(repo, uuid, error))
        goto cleanup;
    ret = g_strv_builder_end(deleted);
    if (ret_warnings)
        *ret_warnings = g_strv_builder_end(warnings);
    if (ret_note)
        *ret_note = g_steal_pointer(&note);

 cleanup:
    close(lock);
    return ret;
}
