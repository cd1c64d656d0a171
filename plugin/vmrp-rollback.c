/*
 * vmrp-rollback.c: QuickRollback
 *
 * The steps: checks (point, checkpoint, bitmaps, disks) -> newer checkpoints
 * removed -> domain stopped (QEMU stores the bitmaps in the images) -> for
 * each disk, the map of blocks changed since the point read from its bitmap
 * (qemu-nbd -B), then those blocks copied from the point's image over the
 * disk -> the bitmaps of the point's checkpoint cleared (the disks hold the
 * point again: nothing changed since) -> domain started again.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <unistd.h>
#include <libvirt/virterror.h>

#include "vmrp-rollback.h"
#include "vmrp-qcow2-read.h"
#include "vmrp-restore.h"
#include "vmrp-domxml.h"
#include "vmrp-error.h"
#include "vmrp-fault.h"
#include "vmrp-checkpoint.h"
#include "vmrp-nbd-copy.h"
#include "vmrp-nbd-export.h"
#include "vmrp-nbd-source.h"
#include "vmrp-state.h"
#include "vmrp-file.h"
#include "vmrp-run.h"
#include "vmrp-volume.h"

void
vmrpRollbackResultFree(vmrpRollbackResult *res)
{
    if (!res)
        return;
    g_free(res->name);
    g_strfreev(res->checkpoints_removed);
    g_strfreev(res->excluded);
    g_free(res);
}

typedef struct {
    vmrpPointDisk *pdisk;          /* borrowed from the point */
    char *path;                    /* the domain's disk now */
    char *image;                   /* the point's image */
    vmrpExtentMap *map;            /* changed since the point: DATA; the rest CLEAN */
} rollbackDisk;

static void
rollbackDiskClear(rollbackDisk *rd)
{
    g_free(rd->path);
    g_free(rd->image);
    vmrpExtentMapFree(rd->map);
}

/* Every included disk must be the same disk, with the point's bitmap. */
static bool
rollbackCheck(virDomainPtr dom, vmrpPoint *point, const char *dir, GArray *disks,
              GStrvBuilder *excluded, GError **error)
{
    g_autofree char *xml = virDomainGetXMLDesc(dom, 0);
    g_autoptr(vmrpDomainXml) domxml = NULL;
    g_autoptr(GPtrArray) live = NULL;
    virDomainCheckpointPtr chk;
    size_t i, j;

    if (!point->checkpoint ||
        !(chk = virDomainCheckpointLookupByName(dom, point->checkpoint, 0))) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "cannot roll back to point %s quickly: its checkpoint is gone from libvirt; "
                    "restore it in place without --quick-rollback", point->id);
        return false;
    }
    virDomainCheckpointFree(chk);
    if (!xml || !(domxml = vmrpDomainXmlParse(xml, error))) {
        if (!xml)
            vmrpErrorFromLibvirt(error, "cannot read the domain XML");
        return false;
    }
    live = vmrpDomainXmlGetDisks(domxml);
    if (!vmrpVolumeResolveDisks(virDomainGetConnect(dom), live, error))
        return false;

    for (i = 0; i < point->disks->len; i++) {
        vmrpPointDisk *pdisk = g_ptr_array_index(point->disks, i);
        rollbackDisk rd = { pdisk };
        vmrpDomainDisk *now = NULL;

        if (pdisk->excluded) {
            g_strv_builder_add(excluded, pdisk->target);
            continue;
        }
        for (j = 0; j < live->len && !now; j++) {
            vmrpDomainDisk *d = g_ptr_array_index(live, j);
            if (g_strcmp0(d->target, pdisk->target) == 0)
                now = d;
        }
        if (!now || g_strcmp0(now->source, pdisk->source) != 0) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "cannot roll back to point %s quickly: disk %s is not the disk it "
                        "was at the point; restore it in place without --quick-rollback",
                        point->id, pdisk->target);
            return false;
        }
        if (g_strcmp0(now->format, "qcow2") != 0) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "cannot roll back to point %s quickly: disk %s is %s, not qcow2, and "
                        "keeps no bitmaps; restore it in place without --quick-rollback",
                        point->id, pdisk->target, now->format ? now->format : "of no format");
            return false;
        }
        if (!(rd.image = vmrpRepoPointImage(dir, point, pdisk->target, error)))
            return false;
        rd.path = g_strdup(now->source);
        g_array_append_val(disks, rd);
    }
    return true;
}

/* The bitmaps must be there and sound: libvirt's view while the domain runs,
 * through the checkpoint's XML with sizes (public; no monitor passthrough). */
static bool
rollbackCheckBitmaps(virDomainPtr dom, vmrpPoint *point, GArray *disks, GError **error)
{
    g_autoptr(GPtrArray) sound = NULL;
    g_autoptr(GError) local = NULL;
    guint ndisks = disks->len;
    guint found = 0;
    size_t i;

    if (virDomainIsActive(dom) != 1)
        return true;   /* checked when the disks are opened below */
    if (!(sound = vmrpCheckpointSoundBitmaps(dom, point->checkpoint, &local))) {
        if (!g_error_matches(local, VMRP_ERROR, VMRP_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return false;
        }
        sound = g_ptr_array_new_with_free_func(g_free);   /* no checkpoint: no bitmap */
    }
    for (i = 0; i < disks->len; i++) {
        rollbackDisk *rd = &g_array_index(disks, rollbackDisk, i);
        if (g_ptr_array_find_with_equal_func(sound, rd->pdisk->target, g_str_equal, NULL))
            found++;
    }
    if (found < ndisks) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "cannot roll back to point %s quickly: the bitmaps of its checkpoint are "
                    "gone or inconsistent; restore it in place without --quick-rollback",
                    point->id);
        return false;
    }
    return true;
}

/* Checkpoints of points newer than @point go, with their bitmaps: they
 * describe changes of disks that no longer hold them.  The domain is off. */
static GStrv
rollbackRemoveNewer(virDomainPtr dom, vmrpPoint *point, GArray *disks, GError **error)
{
    g_autoptr(GStrvBuilder) removed = g_strv_builder_new();
    virDomainCheckpointPtr *list = NULL;
    int n, i;
    size_t j;

    if ((n = virDomainListAllCheckpoints(dom, &list, 0)) < 0) {
        vmrpErrorFromLibvirt(error, "cannot list the checkpoints");
        return NULL;
    }
    for (i = 0; i < n; i++) {
        const char *name = virDomainCheckpointGetName(list[i]);

        if (g_str_has_prefix(name, "vmrp-") && strcmp(name + 5, point->id) > 0) {
            for (j = 0; j < disks->len; j++) {
                rollbackDisk *rd = &g_array_index(disks, rollbackDisk, j);
                const char *argv[] = { "qemu-img", "bitmap", "--remove", "-f", "qcow2",
                                       rd->path, name, NULL };
                vmrpRun(argv, NULL, NULL);    /* a disk may not have it */
            }
            if (virDomainCheckpointDelete(list[i],
                                          VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY) < 0)
                g_warning("cannot delete checkpoint %s", name);
            else
                g_strv_builder_add(removed, name);
        }
        virDomainCheckpointFree(list[i]);
    }
    g_free(list);
    return g_strv_builder_end(removed);
}

/* Root's qemu-nbd opens the disk, whose header the QEMU user can write:
 * a header naming a backing file or an external data file is refused
 * (read with QEMU stopped, just before the disk is opened). */
static bool
rollbackCheckHeader(rollbackDisk *rd, GError **error)
{
    vmrpQcow2Header hdr = { 0 };
    g_autoptr(GError) local = NULL;
    bool foreign;

    /* read here (nbd/vmrp-qcow2-read.h), not by a tool that would open it */
    if (!vmrpQcow2ReadHeaderAt(rd->path, &hdr, &local)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID, "cannot roll back disk %s: %s",
                    rd->pdisk->target, local->message);
        return false;
    }
    foreign = hdr.backing || hdr.data_file;
    vmrpQcow2HeaderClear(&hdr);
    if (foreign) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "cannot roll back disk %s quickly: its image names a backing or data "
                    "file; restore it in place without --quick-rollback", rd->pdisk->target);
        return false;
    }
    return true;
}

/* Which blocks changed since the point: the disk's bitmap of its checkpoint. */
static bool
rollbackMap(rollbackDisk *rd, const char *checkpoint, const char *job_dir, GError **error)
{
    g_autofree char *sock = g_build_filename(job_dir, "bitmap.sock", NULL);
    g_autoptr(vmrpNbdExport) exp = NULL;
    g_autoptr(vmrpNbdSource) src = NULL;
    g_autoptr(vmrpExtentMap) dirty = NULL;
    size_t i;

    if (!(exp = vmrpNbdExportStart(rd->path, "qcow2", sock, "disk", checkpoint, true, error)) ||
        !(src = vmrpNbdSourceOpen(sock, "disk", checkpoint, error)) ||
        !(dirty = vmrpNbdSourceMapExtents(src, error))) {
        g_prefix_error(error, "cannot read the changes of disk %s since the point: ",
                       rd->pdisk->target);
        return false;
    }
    rd->map = vmrpExtentMapNew(dirty->size);
    for (i = 0; i < dirty->extents->len; i++) {
        vmrpExtent *e = &g_array_index(dirty->extents, vmrpExtent, i);
        vmrpExtentMapAppend(rd->map, e->offset, e->length,
                            e->kind == VMRP_EXTENT_CLEAN ? VMRP_EXTENT_CLEAN : VMRP_EXTENT_DATA);
    }
    return true;
}

typedef struct {
    const vmrpRollbackOptions *opts;
    const char *target;
} rollbackProgress;

static void
rollbackCopyProgress(uint64_t done, uint64_t total, void *opaque)
{
    rollbackProgress *rp = opaque;

    if (rp->opts->copy.progress)
        rp->opts->copy.progress(rp->target, done, total, rp->opts->copy.opaque);
}

static bool
rollbackCopy(rollbackDisk *rd, const char *job_dir, const vmrpRollbackOptions *opts,
             uint64_t *ret_bytes, GError **error)
{
    g_autofree char *sock = g_build_filename(job_dir, "point.sock", NULL);
    g_autoptr(vmrpNbdExport) exp = NULL;
    g_autoptr(vmrpNbdSource) src = NULL;
    rollbackProgress rp = { opts, rd->pdisk->target };
    vmrpNbdCopyOptions copts = { 0 };

    if (!(exp = vmrpNbdExportStart(rd->image, "qcow2", sock, "point", NULL, true, error)) ||
        !(src = vmrpNbdSourceOpen(sock, "point", NULL, error)) ||
        !vmrpFaultCheck("rollback-reader-started", error))
        return false;
    if (vmrpNbdSourceGetSize(src) != rd->map->size) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "disk %s was resized since the point", rd->pdisk->target);
        return false;
    }
    /* no cancel: see vmrpRollbackRun() */
    copts.progress = rollbackCopyProgress;
    copts.opaque = &rp;
    if (!vmrpNbdCopyToImage(src, rd->map, rd->path, "qcow2", &copts, NULL, error)) {
        g_prefix_error(error, "cannot roll back disk %s: ", rd->pdisk->target);
        return false;
    }
    *ret_bytes += vmrpExtentMapBytes(rd->map, VMRP_EXTENT_DATA);
    return true;
}

/* In a rollback's state folder: the domain ran before the rollback. */
#define ROLLBACK_WAS_RUNNING "was-running"

vmrpRollbackResult *
vmrpRollbackRun(virConnectPtr conn, vmrpRepo *repo, const char *id,
                const vmrpRollbackOptions *opts, GError **error)
{
    g_autoptr(vmrpRollbackResult) res = g_new0(vmrpRollbackResult, 1);
    g_autoptr(vmrpPoint) point = NULL;
    g_autoptr(GArray) disks = g_array_new(FALSE, TRUE, sizeof(rollbackDisk));
    g_autoptr(GStrvBuilder) excluded = g_strv_builder_new();
    g_autofree char *dir = NULL;
    g_autofree char *job_dir = NULL;
    g_autofree char *job_name = NULL;
    virDomainPtr dom = NULL;
    bool was_running;
    bool left_running = false;
    bool stopped = false;
    bool writing = false;
    gint64 write_back_start;
    int lock = -1;
    bool ok = false;
    size_t i;

    g_array_set_clear_func(disks, (GDestroyNotify)rollbackDiskClear);
    if (!(point = vmrpRepoFindPoint(repo, id, &dir, error)))
        return NULL;
    if (!(dom = virDomainLookupByUUIDString(conn, point->domain_uuid))) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND,
                    "cannot roll back: domain %s (%s) of point %s is gone",
                    point->domain_name, point->domain_uuid, id);
        return NULL;
    }
    if ((lock = vmrpRepoLockCollection(repo, point->domain_uuid, error)) < 0 ||
        !vmrpRestoreRecover(conn, point->domain_uuid, error))
        goto cleanup;
    was_running = virDomainIsActive(dom) == 1;
    if (!rollbackCheck(dom, point, dir, disks, excluded, error) ||
        !rollbackCheckBitmaps(dom, point, disks, error))
        goto cleanup;

    /* from here on the domain changes, and the rollback runs to its end */
    if (opts->copy.started)
        opts->copy.started(opts->copy.opaque);
    if (g_cancellable_set_error_if_cancelled(opts->copy.cancel, error))
        goto cleanup;
    /* root's qemu-nbd sockets in root's folder; a folder left by a rollback
     * that was killed while it wrote says whether the domain ran before it */
    job_name = g_strdup_printf("rollback-%s", point->id);
    if (!(job_dir = vmrpStateMakeRootJobDir(job_name, ROLLBACK_WAS_RUNNING, &left_running,
                                            error)))
        goto cleanup;
    was_running = was_running || left_running;
    if (was_running) {
        g_autofree char *mark = g_build_filename(job_dir, ROLLBACK_WAS_RUNNING, NULL);
        if (!vmrpFileWriteAtomic(mark, "", 0, 0600, error))
            goto cleanup;
    }
    if (virDomainIsActive(dom) == 1) {
        stopped = true;
        if (virDomainDestroy(dom) < 0) {
            vmrpErrorFromLibvirt(error, "cannot stop the domain");
            goto cleanup;
        }
    }
    write_back_start = g_get_monotonic_time();
    for (i = 0; i < disks->len; i++) {
        rollbackDisk *rd = &g_array_index(disks, rollbackDisk, i);
        if (!rollbackCheckHeader(rd, error) ||
            !rollbackMap(rd, point->checkpoint, job_dir, error))
            goto cleanup;
        res->bytes_disks += rd->map->size;
    }
    if (!vmrpFaultCheck("rollback-before-write", error))
        goto cleanup;
    /* the point of no return: from here a failure leaves the disks half
     * written, which only another rollback of the point mends */
    writing = true;
    if (!(res->checkpoints_removed = rollbackRemoveNewer(dom, point, disks, error)))
        goto cleanup;
    for (i = 0; i < disks->len; i++) {
        if (!rollbackCopy(&g_array_index(disks, rollbackDisk, i), job_dir, opts,
                          &res->bytes_written, error))
            goto cleanup;
    }
    /* the disks are the point's again: the next rollback writes back only
     * what changes from now on */
    for (i = 0; i < disks->len; i++) {
        rollbackDisk *rd = &g_array_index(disks, rollbackDisk, i);
        const char *argv[] = { "qemu-img", "bitmap", "--clear", "-f", "qcow2", rd->path,
                               point->checkpoint, NULL };
        g_autoptr(GError) local = NULL;

        if (!vmrpRun(argv, NULL, &local))
            g_warning("disk %s: cannot clear the bitmap of point %s (the next rollback "
                      "writes back more than it needs to): %s", rd->pdisk->target, point->id,
                      local->message);
    }
    res->write_back_ms = (g_get_monotonic_time() - write_back_start) / 1000;
    if ((was_running || opts->power_on) && virDomainCreate(dom) < 0) {
        vmrpErrorFromLibvirt(error, "cannot start the domain again");
        goto cleanup;
    }
    res->name = g_strdup(point->domain_name);
    res->excluded = g_strv_builder_end(excluded);
    ok = true;

 cleanup:
    if (!ok && writing && error && *error)
        g_prefix_error(error, "the disks are partly rolled back; run the rollback again: ");
    if (!ok && !writing && stopped && was_running && virDomainCreate(dom) < 0)
        g_warning("cannot start the domain again: %s", virGetLastErrorMessage());
    /* a half-written rollback keeps its folder: its retry starts the domain */
    if (job_dir && (ok || !writing))
        vmrpFileRemoveTree(job_dir, NULL);
    if (lock >= 0)
        close(lock);
    virDomainFree(dom);
    return ok ? g_steal_pointer(&res) : NULL;
}
