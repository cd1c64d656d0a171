/*
 * vmrp-backup.c: taking a restore point of a running domain
 *
 * The steps, each undone by backupRollback() when a later one fails:
 *   point folder begun -> guest frozen -> backup job with checkpoint started
 *   -> guest thawed -> disks copied over NBD -> job ended -> point committed
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <unistd.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "vmrp-backup.h"
#include "vmrp-backupxml.h"
#include "vmrp-check.h"
#include "vmrp-checkpoint.h"
#include "vmrp-domxml.h"
#include "vmrp-error.h"
#include "vmrp-fault.h"
#include "vmrp-file.h"
#include "vmrp-firmware.h"
#include "vmrp-guest.h"
#include "vmrp-nbd-copy.h"
#include "vmrp-nbd-source.h"
#include "vmrp-qcow2.h"
#include "vmrp-qcow2-read.h"
#include "vmrp-run.h"
#include "vmrp-state.h"
#include "vmrp-remote.h"
#include "vmrp-thaw-guard.h"
#include "vmrp-volume.h"

#define PROGRESS_SAVE_INTERVAL_US (G_USEC_PER_SEC / 2)

typedef struct {
    vmrpDomainDisk *disk;        /* borrowed from backupState.disks */
    vmrpPointDisk *pdisk;        /* borrowed from the point */
    bool bitmap;                 /* the disk's format holds a persistent bitmap */
    bool incremental;            /* only what changed since the parent point */
    uint64_t capacity;           /* its size for the guest, once read (0: not yet) */
} backupDisk;

struct _vmrpBackup {
    virDomainPtr dom;
    vmrpRepo *repo;
    const vmrpBackupOptions *opts;
    vmrpPoint *point;
    char *domain_xml;            /* the configuration stored with the point */
    GPtrArray *disks;            /* of vmrpDomainDisk, the live domain's */
    GArray *included;            /* of backupDisk */
    char *point_dir;
    char *job_dir;
    char *socket;                /* the export's UNIX socket, or */
    char *tcp_host;              /* its TCP address (a domain on another host) */
    char *tcp_port;
    char *nvram;                 /* the domain's UEFI variable store, or NULL */
    char *tpm_dir;               /* its swtpm state folder (emulated TPM), or NULL */
    vmrpThawGuard *guard;        /* armed while the guest may be frozen */
    GPtrArray *points;           /* the collection's committed points, listed by
                                  * the repair before the point */
    vmrpPoint *parent;           /* the point an increment builds on */
    GCancellable *cancel;        /* stops the copies: a disk failed, or opts->cancel */
    gulong cancel_handler;       /* forwards opts->cancel */
    GMutex lock;                 /* the manifest, while disks are copied in threads */
    gint64 last_save;
    char *note;                  /* what the user should know beside the point */
    char *uri;                   /* the connection's, to reconnect for the undo */
    virConnectPtr own_conn;      /* a connection made anew after libvirtd restarted */

    /* what was done, for the rollback */
    bool frozen;                 /* the guest may be frozen */
    bool thaw_failed;            /* a thaw failed: the guard is left to thaw */
    bool job_started;
    bool checkpoint_created;
};
typedef struct _vmrpBackup backupState;

static void
backupForwardCancel(GCancellable *from G_GNUC_UNUSED, gpointer to)
{
    g_cancellable_cancel(to);
}

void
vmrpBackupFree(vmrpBackup *st)
{
    if (!st)
        return;
    g_free(st->note);
    g_free(st->uri);
    if (st->dom)
        virDomainFree(st->dom);
    if (st->own_conn)
        virConnectClose(st->own_conn);
    vmrpPointFree(st->point);
    if (st->frozen || st->thaw_failed)
        vmrpThawGuardAbandon(st->guard);
    else
        vmrpThawGuardDisarm(st->guard);
    vmrpPointFree(st->parent);
    g_clear_pointer(&st->points, g_ptr_array_unref);
    if (st->cancel_handler)
        g_cancellable_disconnect(st->opts->cancel, st->cancel_handler);
    g_clear_object(&st->cancel);
    g_mutex_clear(&st->lock);
    g_clear_pointer(&st->disks, g_ptr_array_unref);
    g_clear_pointer(&st->included, g_array_unref);
    g_free(st->domain_xml);
    g_free(st->point_dir);
    g_free(st->job_dir);
    g_free(st->socket);
    g_free(st->tcp_host);
    g_free(st->tcp_port);
    g_free(st->nvram);
    g_free(st->tpm_dir);
    g_free(st);
}

static bool
backupThaw(backupState *st, GError **error)
{
    g_autoptr(GError) local = NULL;
    int attempt;

    /* a guest is never left frozen: try again before giving up, and keep
     * the guard armed if it still is frozen */
    for (attempt = 0; attempt < 3; attempt++) {
        g_clear_error(&local);
        if (vmrpGuestThaw(st->dom, st->opts->agent_timeout_s, &local) >= 0) {
            st->frozen = false;
            g_clear_pointer(&st->guard, vmrpThawGuardDisarm);
            return true;
        }
    }
    /* the guard thaws it once vmrp lets it go */
    st->frozen = false;
    st->thaw_failed = true;
    g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED,
                "cannot thaw the guest's filesystems (vmrp's guard will go on trying; "
                "check with virsh domfsinfo %s): %s", st->point->domain_name, local->message);
    return false;
}

/* Undoes what was done, keeping the original error; never fails. */
/* After libvirtd went away (restarted, upgraded, killed): a new connection
 * to the same URI, waited for at most RECONNECT_SECONDS, and the domain
 * looked up again on it, so that the undo can be finished. */
#define RECONNECT_SECONDS 60
static bool
backupReconnect(backupState *st)
{
    gint64 deadline = g_get_monotonic_time() + RECONNECT_SECONDS * G_USEC_PER_SEC;
    virConnectPtr conn;
    virDomainPtr dom;

    if (virConnectIsAlive(virDomainGetConnect(st->dom)) == 1 || !st->uri)
        return false;
    while (!(conn = virConnectOpen(st->uri))) {
        if (g_get_monotonic_time() > deadline)
            return false;
        g_usleep(G_USEC_PER_SEC / 2);
    }
    if (!(dom = virDomainLookupByUUIDString(conn, st->point->domain_uuid))) {
        virConnectClose(conn);
        return false;
    }
    virDomainFree(st->dom);
    st->dom = dom;
    if (st->own_conn)
        virConnectClose(st->own_conn);
    st->own_conn = conn;
    return true;
}

static void
backupRollback(backupState *st)
{
    if (st->frozen)
        backupThaw(st, NULL);
    /* the first call to a restarted libvirtd fails: then connect anew, once */
    if (st->job_started && virDomainAbortJob(st->dom) < 0 &&
        (!backupReconnect(st) || virDomainAbortJob(st->dom) < 0))
        g_warning("cannot end the backup job of %s", st->point->domain_name);
    if (st->checkpoint_created) {
        virDomainCheckpointPtr chk =
            virDomainCheckpointLookupByName(st->dom, st->point->checkpoint, 0);

        if (!chk && backupReconnect(st))
            chk = virDomainCheckpointLookupByName(st->dom, st->point->checkpoint, 0);
        if (!chk || virDomainCheckpointDelete(chk, 0) < 0)
            g_warning("cannot delete checkpoint %s", st->point->checkpoint);
        if (chk)
            virDomainCheckpointFree(chk);
    }
    if (st->point_dir)
        vmrpFileRemoveTree(st->point_dir, NULL);
    if (st->job_dir)
        vmrpFileRemoveTree(st->job_dir, NULL);
}

static char *
backupDomainXML(virDomainPtr dom, GError **error)
{
    unsigned int flags = VIR_DOMAIN_XML_SECURE;
    char *xml;

    /* the persistent configuration is what a restore defines; a transient
     * domain has only its live one */
    flags |= virDomainIsPersistent(dom) == 1 ? VIR_DOMAIN_XML_INACTIVE
                                             : VIR_DOMAIN_XML_MIGRATABLE;
    if (!(xml = virDomainGetXMLDesc(dom, flags)))
        vmrpErrorFromLibvirt(error, "cannot read the domain XML");
    return xml;
}

/* Picks the disks of the point, checking the exclusions. */
static bool
backupSelectDisks(backupState *st, GError **error)
{
    const char *const *exclude = st->opts->exclude;
    size_t i;

    for (i = 0; exclude && exclude[i]; i++) {
        bool found = false;
        size_t j;

        for (j = 0; j < st->disks->len && !found; j++) {
            vmrpDomainDisk *disk = g_ptr_array_index(st->disks, j);
            found = g_strcmp0(disk->target, exclude[i]) == 0 && vmrpDomainDiskIsBackedUp(disk);
        }
        if (!found) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND,
                        "cannot exclude disk '%s': domain %s has no such disk",
                        exclude[i], st->point->domain_name);
            return false;
        }
    }

    for (i = 0; i < st->disks->len; i++) {
        vmrpDomainDisk *disk = g_ptr_array_index(st->disks, i);
        vmrpPointDisk *pdisk;
        backupDisk bd = { 0 };

        if (!vmrpDomainDiskIsBackedUp(disk))
            continue;   /* CD-ROMs, floppies, network disks */
        pdisk = vmrpPointAddDisk(st->point, disk->target);
        pdisk->source = g_strdup(disk->source);
        pdisk->format = g_strdup(disk->format ? disk->format : "raw");
        if (exclude && g_strv_contains(exclude, disk->target)) {
            pdisk->excluded = true;
            continue;
        }
        pdisk->image = g_strdup_printf("%s.qcow2", disk->target);
        bd.disk = disk;
        bd.pdisk = pdisk;
        bd.bitmap = g_strcmp0(disk->format, "qcow2") == 0;
        g_array_append_val(st->included, bd);
    }
    if (st->included->len == 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "nothing to back up: domain %s has no disk left to include",
                    st->point->domain_name);
        return false;
    }
    return true;
}

/* A disk's scratch image: in the job's folder, which vmrp made and removes,
 * or on another host in libvirt's own folder there (libvirt makes the file,
 * gives it to QEMU and removes it at the job's end). */
static char *
backupScratchPath(backupState *st, const char *target)
{
    return st->job_dir ? g_strdup_printf("%s/%s.scratch", st->job_dir, target)
                       : g_strdup_printf(VMRP_REMOTE_SCRATCH_DIR "/vmrp-%s-%s.scratch",
                                         st->point->id, target);
}

/* The disk's size as the guest sees it, read once: from the header of a
 * local qcow2 image (QEMU keeps it there), else from libvirt (which asks
 * QEMU, three monitor commands). */
static bool
backupDiskCapacity(backupState *st, backupDisk *bd, GError **error)
{
    virDomainBlockInfo info;

    if (bd->capacity)
        return true;
    if (!st->tcp_host && bd->disk->source && g_strcmp0(bd->disk->format, "qcow2") == 0 &&
        (g_strcmp0(bd->disk->type, "file") == 0 || g_strcmp0(bd->disk->type, "block") == 0) &&
        vmrpQcow2ReadSize(bd->disk->source, &bd->capacity, NULL) && bd->capacity)
        return true;
    if (virDomainGetBlockInfo(st->dom, bd->pdisk->target, &info, 0) < 0) {
        vmrpErrorFromLibvirt(error, "cannot read the size of a disk");
        return false;
    }
    bd->capacity = info.capacity;
    return true;
}

/* The scratch images of a local job, made here rather than by libvirt
 * (VIR_DOMAIN_BACKUP_BEGIN_REUSE_EXTERNAL): libvirt then only attaches
 * them, without a blockdev-create job in QEMU per disk.  They go with
 * the job's folder (at the end, in the rollback, and in repo-check's
 * repair of a killed vmrp). */
static bool
backupMakeScratch(backupState *st, GError **error)
{
    size_t i;

    for (i = 0; i < st->included->len; i++) {
        backupDisk *bd = &g_array_index(st->included, backupDisk, i);
        g_autofree char *path = backupScratchPath(st, bd->pdisk->target);

        if (!backupDiskCapacity(st, bd, error) ||
            !vmrpQcow2CreateEmpty(path, bd->capacity, error) ||
            !vmrpStateGiveToQemu(path, error))
            return false;
    }
    return true;
}

static char *
backupFormatJobXML(backupState *st, GError **error)
{
    guint n = st->point->disks->len;
    g_autofree vmrpBackupXmlDisk *disks = g_new0(vmrpBackupXmlDisk, n);
    g_autoptr(GPtrArray) strings = g_ptr_array_new_with_free_func(g_free);
    size_t i;

    for (i = 0; i < n; i++) {
        vmrpPointDisk *pdisk = g_ptr_array_index(st->point->disks, i);
        vmrpBackupXmlDisk *d = &disks[i];
        char *s;

        d->target = pdisk->target;
        d->excluded = pdisk->excluded;
        if (pdisk->excluded)
            continue;
        g_ptr_array_add(strings, s = backupScratchPath(st, pdisk->target));
        d->scratch = s;
        /* vmrp's own names, the ones backupCopyDisk connects to */
        g_ptr_array_add(strings, s = vmrpBackupXmlExportName(pdisk->target));
        d->export_name = s;
        if (pdisk->backing) {
            g_ptr_array_add(strings, s = vmrpBackupXmlExportBitmap(pdisk->target));
            d->export_bitmap = s;
            d->incremental = st->parent->checkpoint;
        }
    }
    if (st->tcp_host)
        return vmrpBackupXmlFormatJobTCP(st->tcp_host, st->tcp_port, !st->opts->no_tls, disks,
                                         n, error);
    return vmrpBackupXmlFormatJob(st->socket, disks, n, error);
}

static char *
backupFormatCheckpointXML(backupState *st, GError **error)
{
    g_autofree vmrpCheckpointXmlDisk *disks = g_new0(vmrpCheckpointXmlDisk, st->disks->len);
    g_autofree char *description = g_strdup_printf("vmrp restore point %s", st->point->id);
    size_t n = 0;
    size_t i;

    for (i = 0; i < st->disks->len; i++) {
        vmrpDomainDisk *disk = g_ptr_array_index(st->disks, i);
        vmrpPointDisk *pdisk = vmrpPointFindDisk(st->point, disk->target);

        if (!disk->target || !pdisk)
            continue;
        disks[n].target = disk->target;
        disks[n].bitmap = !pdisk->excluded && g_strcmp0(disk->format, "qcow2") == 0;
        n++;
    }
    return vmrpBackupXmlFormatCheckpoint(st->point->checkpoint, description, disks, n, error);
}

static bool
backupHasBitmapDisk(backupState *st)
{
    size_t i;

    for (i = 0; i < st->included->len; i++) {
        if (g_array_index(st->included, backupDisk, i).bitmap)
            return true;
    }
    return false;
}

/* Takes a full point instead of an increment, saying why when it is not
 * what was asked for (NULL: a full is what was asked for). */
static void
backupGoFull(backupState *st, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void
backupGoFull(backupState *st, const char *fmt, ...)
{
    va_list ap;
    size_t i;

    if (fmt) {
        va_start(ap, fmt);
        g_free(st->point->message);
        st->point->message = g_strdup_vprintf(fmt, ap);
        va_end(ap);
    }
    for (i = 0; i < st->included->len; i++) {
        backupDisk *bd = &g_array_index(st->included, backupDisk, i);
        bd->incremental = false;
        g_clear_pointer(&bd->pdisk->backing, g_free);
    }
    g_clear_pointer(&st->point->parent, g_free);
    g_free(st->point->kind);
    st->point->kind = g_strdup("full");
}

/* The parent's checkpoint must be in libvirt; a checkpoint libvirt forgot
 * is defined again from the copy stored with the point.  Its bitmaps are
 * not checked here (libvirt's check costs four monitor commands): the
 * backup job's start checks them and refuses an increment from a missing
 * or inconsistent one, and the point is then a full (backupStartJob). */
static bool
backupCheckParentCheckpoint(backupState *st, const char *parent_dir)
{
    const char *name = st->parent->checkpoint;
    virDomainCheckpointPtr chk = virDomainCheckpointLookupByName(st->dom, name, 0);

    if (!chk) {
        g_autofree char *path = g_build_filename(parent_dir, "checkpoint.xml", NULL);
        g_autofree char *xml = NULL;

        if (!g_file_get_contents(path, &xml, NULL, NULL)) {
            backupGoFull(st, "checkpoint %s is gone from libvirt and no copy is stored", name);
            return false;
        }
        if (!(chk = virDomainCheckpointCreateXML(st->dom, xml,
                                                 VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE |
                                                 VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE))) {
            virErrorPtr err = virGetLastError();
            backupGoFull(st, "checkpoint %s is gone from libvirt and cannot be redefined: %s",
                         name, err && err->message ? err->message : "unknown error");
            return false;
        }
        g_free(st->point->message);
        st->point->message = g_strdup_printf("checkpoint %s was gone from libvirt and was "
                                             "redefined from the repository", name);
    }
    virDomainCheckpointFree(chk);
    return true;
}

/* An increment builds on the newest point when the chain can go on: the
 * same disks, sources and sizes, and a sound checkpoint.  Otherwise the
 * point is a full, and the manifest says why. */
static bool
backupChooseParent(backupState *st, GError **error)
{
    GPtrArray *points = st->points;
    g_autofree char *parent_dir = NULL;
    g_autofree char *damaged = NULL;
    vmrpPoint *parent;
    unsigned int bitmap_disks = 0;
    size_t i;

    if (st->opts->full) {
        backupGoFull(st, NULL);
        return true;
    }
    /* the newest point that can be read: libvirt's increment from its
     * checkpoint holds the changes of the damaged points' checkpoints too */
    for (i = points->len; i > 0; i--) {
        vmrpPoint *p = g_ptr_array_index(points, i - 1);
        if (p->state != VMRP_POINT_DAMAGED)
            break;
        if (!damaged)
            damaged = g_strdup_printf("point %s is damaged (%s)", p->id, p->message);
    }
    if (i == 0) {
        if (damaged)
            backupGoFull(st, "%s and no older point can be built on", damaged);
        else
            backupGoFull(st, NULL);
        return true;
    }
    parent = g_ptr_array_steal_index(points, i - 1);
    st->parent = parent;
    if (!parent->checkpoint) {
        backupGoFull(st, "the previous point %s has no checkpoint", parent->id);
        return true;
    }
    for (i = 0; i < parent->disks->len; i++) {
        vmrpPointDisk *pd = g_ptr_array_index(parent->disks, i);
        if (!pd->excluded && !vmrpPointFindDisk(st->point, pd->target)) {
            backupGoFull(st, "disk %s was removed since point %s", pd->target, parent->id);
            return true;
        }
    }
    for (i = 0; i < st->included->len; i++) {
        backupDisk *bd = &g_array_index(st->included, backupDisk, i);
        vmrpPointDisk *pd = vmrpPointFindDisk(parent, bd->pdisk->target);

        if (!bd->bitmap)
            continue;   /* no persistent bitmap: copied whole at every point */
        if (!pd || pd->excluded) {
            backupGoFull(st, "disk %s is new since point %s", bd->pdisk->target, parent->id);
            return true;
        }
        if (g_strcmp0(pd->source, bd->pdisk->source) != 0) {
            backupGoFull(st, "disk %s was replaced since point %s", pd->target, parent->id);
            return true;
        }
        if (!backupDiskCapacity(st, bd, error))
            return false;
        if (bd->capacity != pd->size) {
            backupGoFull(st, "disk %s was resized since point %s", pd->target, parent->id);
            return true;
        }
        bd->incremental = true;
        bd->pdisk->backing = g_strdup_printf("../%s/%s", parent->id, pd->image);
        bitmap_disks++;
    }
    if (bitmap_disks == 0) {
        backupGoFull(st, "no disk of the domain holds a bitmap");
        return true;
    }
    parent_dir = g_build_filename(vmrpRepoGetPath(st->repo), "collections",
                                  st->point->domain_uuid, "points", parent->id, NULL);
    if (!backupCheckParentCheckpoint(st, parent_dir))
        return true;
    st->point->parent = g_strdup(parent->id);
    g_free(st->point->kind);
    st->point->kind = g_strdup("incremental");
    if (damaged) {
        g_free(st->point->message);
        st->point->message = g_strdup_printf("%s: this increment builds on point %s",
                                             damaged, parent->id);
    }
    return true;
}

/* Decides the consistency; returns false only when the request cannot be met. */
static bool
backupResolveConsistency(backupState *st, GError **error)
{
    vmrpPoint *point = st->point;
    g_autoptr(GError) ping = NULL;

    point->requested = st->opts->consistency;
    if (vmrpConsistencyNeedsFreeze(point->requested)) {
        vmrpGuestPing(st->dom, st->opts->agent_timeout_s, &ping);
    }
    if (!vmrpConsistencyResolve(point->requested, ping ? ping->message : NULL,
                                st->opts->allow_fallback, &point->achieved, error))
        return false;
    if (ping)
        point->fallback_reason = g_strdup(ping->message);
    return true;
}

/* Starts the backup job.  A libvirtd that has just restarted holds the
 * domain's job while it reconnects to QEMU ("cannot acquire state change
 * lock (held by monitor=init-...)", after libvirt's own 30 s wait): tried
 * once more, then said in words, with the command that clears it. */
static bool
backupBegin(backupState *st, const char *job_xml, const char *chk_xml, bool *ret_inconsistent,
            GError **error)
{
    /* a local job's scratch images are vmrp's (backupMakeScratch) */
    unsigned int flags = st->job_dir ? VIR_DOMAIN_BACKUP_BEGIN_REUSE_EXTERNAL : 0;
    int attempt;

    for (attempt = 0; attempt < 2; attempt++) {
        virErrorPtr err;

        if (virDomainBackupBegin(st->dom, job_xml, chk_xml, flags) == 0)
            return true;
        err = virGetLastError();
        /* a missing or inconsistent bitmap of the parent: libvirt says so by code */
        if (err && err->code == VIR_ERR_CHECKPOINT_INCONSISTENT && ret_inconsistent)
            *ret_inconsistent = true;
        if (!err || err->code != VIR_ERR_OPERATION_TIMEOUT || !err->message ||
            !strstr(err->message, "state change lock")) {
            vmrpErrorFromLibvirt(error, "cannot start the backup job");
            return false;
        }
    }
    g_set_error(error, VMRP_ERROR, VMRP_ERROR_BUSY,
                "cannot start the backup job: libvirt has held the job of domain %s for a "
                "minute (%s); a restarted libvirtd reconnecting to QEMU holds it for a while, "
                "so try again; if it stays, 'virsh domjobabort %s' clears it",
                st->point->domain_name, virGetLastErrorMessage(), st->point->domain_name);
    return false;
}

/* Freezes (when asked), starts the backup job with its checkpoint, thaws. */
static bool
backupStartJob(backupState *st, GError **error)
{
    vmrpPoint *point = st->point;
    g_autofree char *job_xml = NULL;
    g_autofree char *chk_xml = NULL;
    g_autoptr(GError) freeze = NULL;
    g_autoptr(GError) refused = NULL;
    bool inconsistent = false;
    gint64 start = 0;

    if (!(job_xml = backupFormatJobXML(st, error)))
        return false;
    if (backupHasBitmapDisk(st)) {
        point->checkpoint = g_strdup_printf("vmrp-%s", point->id);
        if (!(chk_xml = backupFormatCheckpointXML(st, error)))
            return false;
    }

    if (vmrpConsistencyNeedsFreeze(point->achieved)) {
        /* a freeze outlasting every bound we set on it is a hang: the guard thaws */
        if (!(st->guard = vmrpThawGuardStart(st->dom, 3 * st->opts->agent_timeout_s + 60,
                                             error)))
            return false;
        start = g_get_monotonic_time();
        if (vmrpGuestFreeze(st->dom, st->opts->agent_timeout_s, &freeze) < 0) {
            /* a freeze that failed half way may have frozen some filesystems */
            st->frozen = true;
            if (!backupThaw(st, NULL) && !st->opts->allow_fallback) {
                g_propagate_prefixed_error(error, g_steal_pointer(&freeze),
                                           "cannot freeze the guest (%s consistency), "
                                           "and it does not answer a thaw: ",
                                           vmrpConsistencyToString(point->requested));
                return false;
            }
            if (!st->opts->allow_fallback) {
                g_propagate_prefixed_error(error, g_steal_pointer(&freeze),
                                           "cannot freeze the guest (%s consistency): ",
                                           vmrpConsistencyToString(point->requested));
                return false;
            }
            point->achieved = VMRP_CONSISTENCY_CRASH;
            point->fallback_reason = g_strdup(freeze->message);
        } else {
            st->frozen = true;
            if (!vmrpFaultCheck("after-freeze", error))
                return false;
        }
    }

    if (!backupBegin(st, job_xml, chk_xml, &inconsistent, &refused)) {
        if (!inconsistent || !st->point->parent) {
            g_propagate_error(error, g_steal_pointer(&refused));
            return false;
        }
        /* an increment libvirt refuses for its parent's bitmaps: a full instead */
        backupGoFull(st, "a bitmap of checkpoint %s is missing or inconsistent (an unclean "
                     "stop of the VM, or a disk replaced): %s", st->parent->checkpoint,
                     refused->message);
        g_free(job_xml);
        if (!(job_xml = backupFormatJobXML(st, error)) ||
            !backupBegin(st, job_xml, chk_xml, NULL, error))
            return false;
    }
    st->job_started = true;
    st->checkpoint_created = chk_xml != NULL;
    if (!vmrpFaultCheck("after-job-start", error))
        return false;
    /* the NVRAM and vTPM state at the point's instant, as near as libvirt
     * lets: while the guest is still frozen, right after the job started */
    if (!vmrpFirmwareSave(point, st->point_dir, st->nvram, st->tpm_dir, error))
        return false;

    if (st->frozen) {
        if (!backupThaw(st, error))
            return false;
        point->freeze_ms = (g_get_monotonic_time() - start) / 1000;
    }
    return true;
}

static void
backupReportProgressLocked(backupState *st, const vmrpPointDisk *disk, bool force)
{
    gint64 now = g_get_monotonic_time();

    if (!force && now - st->last_save < PROGRESS_SAVE_INTERVAL_US)
        return;
    st->last_save = now;
    /* progress in the manifest is for rp-info in other processes: best
     * effort, and not synced (the commit syncs the point's files) */
    vmrpRepoPointSaveDraft(st->point_dir, st->point, NULL);
    if (st->opts->progress && disk)
        st->opts->progress(st->point, disk, st->opts->opaque);
}

static void
backupReportProgress(backupState *st, const vmrpPointDisk *disk, bool force)
{
    g_mutex_lock(&st->lock);
    backupReportProgressLocked(st, disk, force);
    g_mutex_unlock(&st->lock);
}

typedef struct {
    backupState *st;
    vmrpPointDisk *pdisk;
} copyProgress;

static void
backupCopyProgress(uint64_t done, uint64_t total, void *opaque)
{
    copyProgress *cp = opaque;

    g_mutex_lock(&cp->st->lock);
    cp->pdisk->bytes_done = done;
    cp->pdisk->bytes_total = total;
    backupReportProgressLocked(cp->st, cp->pdisk, false);
    g_mutex_unlock(&cp->st->lock);
}

static bool
backupCopyDisk(backupState *st, backupDisk *bd, GError **error)
{
    vmrpPointDisk *pdisk = bd->pdisk;
    g_autofree char *image = g_build_filename(st->point_dir, pdisk->image, NULL);
    g_autoptr(vmrpNbdSource) src = NULL;
    g_autoptr(vmrpExtentMap) map = NULL;
    copyProgress cp = { st, pdisk };
    vmrpNbdCopyOptions copts = { 0 };
    uint64_t copied = 0;
    g_autoptr(vmrpDigest) digest = vmrpDigestNew(VMRP_DIGEST_DEFAULT);

    /* the names set in the job's XML (backupFormatJobXML), not libvirt's defaults */
    g_autofree char *export = vmrpBackupXmlExportName(pdisk->target);
    g_autofree char *bitmap = bd->incremental ? vmrpBackupXmlExportBitmap(pdisk->target)
                                              : NULL;

    vmrpNbdAddress addr = { .socket_path = st->socket, .host = st->tcp_host,
                            .port = st->tcp_port,
                            .tls_dir = st->opts->no_tls ? NULL :
                                       vmrpRemoteTLSDir(st->opts->tls_dir) };

    if (!(src = vmrpNbdSourceOpenAt(&addr, export, bitmap, error))) {
        if (addr.host && addr.tls_dir)
            g_prefix_error(error, "cannot read disk %s from %s:%s over TLS with the client "
                           "certificate in %s (is it signed by the CA of the host's "
                           "backup_tls_x509_cert_dir?): ", pdisk->target, addr.host,
                           addr.port, addr.tls_dir);
        return false;
    }
    if (!(map = vmrpNbdSourceMapExtents(src, error)))
        return false;
    g_mutex_lock(&st->lock);
    pdisk->size = vmrpNbdSourceGetSize(src);
    pdisk->bytes_total = vmrpExtentMapBytes(map, VMRP_EXTENT_DATA);
    /* an increment writes zeroes over what was zeroed or discarded since */
    if (bd->incremental)
        pdisk->bytes_total += vmrpExtentMapBytes(map, VMRP_EXTENT_ZERO);
    pdisk->bytes_done = 0;
    backupReportProgressLocked(st, pdisk, true);
    g_mutex_unlock(&st->lock);

    /* one memory budget for the point, whatever its number of disks:
     * 16 requests of 256 KiB in flight in all */
    copts.max_requests = MAX(4, 16 / st->included->len);
    copts.cancel = st->cancel;
    copts.progress = backupCopyProgress;
    copts.opaque = &cp;
    copts.digest = digest;
    /* written here, not through qemu-nbd; the backing path is relative: the
     * repository can be moved */
    if (!vmrpNbdCopyToNewQcow2(src, map, image, bd->incremental ? pdisk->backing : NULL,
                               &copts, &copied, error)) {
        g_prefix_error(error, "cannot copy disk %s: ", pdisk->target);
        return false;
    }
    g_mutex_lock(&st->lock);
    pdisk->data_digest = vmrpDigestFinish(digest, &pdisk->data_extents);
    pdisk->data_algorithm = VMRP_DIGEST_DEFAULT;
    pdisk->bytes_done = pdisk->bytes_total;
    backupReportProgressLocked(st, pdisk, true);
    g_mutex_unlock(&st->lock);
    return true;
}

typedef struct {
    backupState *st;
    backupDisk *bd;
    GError *error;
} copyThread;

static gpointer
backupCopyThread(gpointer opaque)
{
    copyThread *ct = opaque;

    if (!backupCopyDisk(ct->st, ct->bd, &ct->error))
        g_cancellable_cancel(ct->st->cancel);   /* one disk failed: the point failed */
    return NULL;
}

/* All disks of the point come from one backup job; they are read at once. */
static bool
backupCopyDisks(backupState *st, GError **error)
{
    g_autofree copyThread *threads = g_new0(copyThread, st->included->len);
    g_autofree GThread **handles = g_new0(GThread *, st->included->len);
    GError *first = NULL;
    size_t i;

    for (i = 0; i < st->included->len; i++) {
        threads[i].st = st;
        threads[i].bd = &g_array_index(st->included, backupDisk, i);
        handles[i] = g_thread_new("vmrp-copy", backupCopyThread, &threads[i]);
    }
    for (i = 0; i < st->included->len; i++) {
        g_thread_join(handles[i]);
        /* the original error, not the cancellations it caused in other threads */
        if (threads[i].error && (!first || g_error_matches(first, G_IO_ERROR,
                                                           G_IO_ERROR_CANCELLED))) {
            g_clear_error(&first);
            first = g_steal_pointer(&threads[i].error);
        }
        g_clear_error(&threads[i].error);
    }
    if (first) {
        g_propagate_error(error, first);
        return false;
    }
    return true;
}

static bool
backupSaveXML(backupState *st, const char *name, const char *xml, GError **error)
{
    g_autofree char *path = g_build_filename(st->point_dir, name, NULL);

    /* synced with the point's other files when it is committed */
    return vmrpFileWriteReplace(path, xml, strlen(xml), 0600, error);
}

static bool
backupSaveCheckpointXML(backupState *st, GError **error)
{
    virDomainCheckpointPtr chk;
    g_autofree char *xml = NULL;

    if (!st->point->checkpoint)
        return true;
    if (!(chk = virDomainCheckpointLookupByName(st->dom, st->point->checkpoint, 0))) {
        vmrpErrorFromLibvirt(error, "cannot find the new checkpoint");
        return false;
    }
    xml = virDomainCheckpointGetXMLDesc(chk, VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN);
    virDomainCheckpointFree(chk);
    if (!xml) {
        vmrpErrorFromLibvirt(error, "cannot read the new checkpoint");
        return false;
    }
    return backupSaveXML(st, "checkpoint.xml", xml, error);
}

vmrpBackup *
vmrpBackupPrepare(virDomainPtr dom, const vmrpBackupOptions *opts, GError **error)
{
    g_autoptr(vmrpBackup) st = g_new0(vmrpBackup, 1);
    g_autofree char *live_xml = NULL;
    g_autoptr(vmrpDomainXml) live = NULL;
    char uuid[VIR_UUID_STRING_BUFLEN];

    virDomainRef(dom);
    st->dom = dom;
    st->uri = virConnectGetURI(virDomainGetConnect(dom));
    st->opts = opts;
    st->included = g_array_new(FALSE, TRUE, sizeof(backupDisk));
    /* its own: a disk that fails cancels the other copies, not the caller */
    st->cancel = g_cancellable_new();
    if (opts->cancel)
        st->cancel_handler = g_cancellable_connect(opts->cancel, G_CALLBACK(backupForwardCancel),
                                                   st->cancel, NULL);
    g_mutex_init(&st->lock);
    if (virDomainGetUUIDString(dom, uuid) < 0) {
        vmrpErrorFromLibvirt(error, "cannot read the domain's uuid");
        return NULL;
    }
    st->point = opts->created_at > 0 ?
                vmrpPointNewAt(virDomainGetName(dom), uuid, opts->created_at) :
                vmrpPointNew(virDomainGetName(dom), uuid);

    if (virDomainIsActive(dom) != 1) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "domain %s is not running: a restore point is taken of a running domain",
                    st->point->domain_name);
        return NULL;
    }
    /* on another host, QEMU serves the export on TCP, with TLS unless told */
    if ((st->tcp_host = vmrpRemoteHost(virDomainGetConnect(dom)))) {
        int lo = opts->nbd_port_min > 0 ? opts->nbd_port_min : 10809;
        int hi = opts->nbd_port_max > 0 ? opts->nbd_port_max : 10999;

        if (!opts->no_tls && !vmrpRemoteCheckTLSDir(vmrpRemoteTLSDir(opts->tls_dir), error))
            return NULL;
        st->tcp_port = g_strdup_printf("%d", g_random_int_range(lo, hi + 1));
    }
    if (!(live_xml = virDomainGetXMLDesc(dom, 0))) {
        vmrpErrorFromLibvirt(error, "cannot read the domain XML");
        return NULL;
    }
    if (!(live = vmrpDomainXmlParse(live_xml, error)) ||
        !(st->domain_xml = backupDomainXML(dom, error)))
        return NULL;
    st->disks = vmrpDomainXmlGetDisks(live);
    /* the firmware state of a domain on another host is in that host's files */
    if (!st->tcp_host) {
        st->nvram = vmrpDomainXmlGetNvram(live);
        if (vmrpDomainXmlHasSwtpm(live))
            st->tpm_dir = vmrpFirmwareSwtpmDir(uuid);
    }
    if (!vmrpVolumeResolveDisks(virDomainGetConnect(dom), st->disks, error) ||
        !backupSelectDisks(st, error) ||
        !backupResolveConsistency(st, error))
        return NULL;
    return g_steal_pointer(&st);
}

static bool
backupRun(backupState *st, GError **error)
{
    gint64 start = g_get_monotonic_time();
    
    if (!backupChooseParent(st, error))
        return false;
    if (!(st->point_dir = vmrpRepoPointBegin(st->repo, st->point, error)) ||
        !backupSaveXML(st, "domain.xml", st->domain_xml, error))
        return false;
    if (!st->tcp_host) {
        if (!(st->job_dir = vmrpStateMakeJobDir(st->point->id, error)))
            return false;
        st->socket = g_build_filename(st->job_dir, "nbd.sock", NULL);
        if (!backupMakeScratch(st, error))
            return false;
    }

    if (g_cancellable_set_error_if_cancelled(st->cancel, error) ||
        !backupStartJob(st, error))
        return false;
    backupReportProgress(st, NULL, true);

    if (!vmrpFaultCheck("before-copy", error) ||
        !backupCopyDisks(st, error) ||
        g_cancellable_set_error_if_cancelled(st->cancel, error))
        return false;

    if (virDomainAbortJob(st->dom) < 0) {
        vmrpErrorFromLibvirt(error, "cannot end the backup job");
        return false;
    }
    st->job_started = false;

    st->point->duration_ms = (g_get_monotonic_time() - start) / 1000;
    if (!vmrpFaultCheck("before-commit", error) ||
        !backupSaveCheckpointXML(st, error) ||
        !vmrpRepoPointCommit(st->repo, st->point, &st->point_dir, error))
        return false;
    if (st->job_dir)
        vmrpFileRemoveTree(st->job_dir, NULL);
    return true;
}

/* What a crash or a libvirtd restart left (repo-check's findings for this
 * collection, with its lock held): a backup job of vmrp's, half points,
 * vmrp-<id> checkpoints without a point.  Each cleaned one is a line of the
 * note; one that cannot be cleaned is said too, and the point goes on. */
static bool
backupCleanStale(backupState *st, vmrpRepo *repo, const char *uuid, GError **error)
{
    g_autofree char *done = vmrpCheckRepairCollection(virDomainGetConnect(st->dom), repo,
                                                      uuid, &st->points, error);
    char *note;

    if (!done)
        return false;
    if (!*done)
        return true;
    note = st->note ? g_strdup_printf("%s\n%s", st->note, done) : g_steal_pointer(&done);
    g_free(st->note);
    st->note = note;
    return true;
}

const char *
vmrpBackupGetNote(vmrpBackup *st)
{
    return st->note;
}

vmrpPoint *
vmrpBackupRun(vmrpBackup *st, vmrpRepo *repo, GError **error)
{
    vmrpPoint *point = st->point;
    virConnectPtr conn = virDomainGetConnect(st->dom);
    g_autofree char *hostname = virConnectGetHostname(conn);
    int lock;
    bool ok;

    if (!vmrpRepoEnsureCollection(repo, point->domain_name, point->domain_uuid, st->uri,
                                  hostname, &st->note, error))
        return NULL;
    if ((lock = vmrpRepoLockCollection(repo, point->domain_uuid, error)) < 0)
        return NULL;
    if (!backupCleanStale(st, repo, point->domain_uuid, error)) {
        close(lock);
        return NULL;
    }

    st->repo = repo;
    ok = backupRun(st, error);
    if (!ok)
        backupRollback(st);
    close(lock);
    return ok ? g_steal_pointer(&st->point) : NULL;
}
