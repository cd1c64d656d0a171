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

#include "vmrp-backup.h"
#include "vmrp-agent.h"
#include "vmrp-domxml.h"
#include "vmrp-error.h"
#include "vmrp-file.h"
#include "vmrp-nbd-copy.h"
#include "vmrp-nbd-source.h"
#include "vmrp-run.h"
#include "vmrp-state.h"

#define PROGRESS_SAVE_INTERVAL_US (G_USEC_PER_SEC / 2)

typedef struct {
    vmrpDomainDisk *disk;        /* borrowed from backupState.disks */
    vmrpPointDisk *pdisk;        /* borrowed from the point */
    bool bitmap;                 /* the disk's format holds a persistent bitmap */
} backupDisk;

struct _vmrpBackup {
    virDomainPtr dom;
    vmrpRepo *repo;
    const vmrpBackupOptions *opts;
    vmrpPoint *point;
    char *domain_xml;            /* the configuration stored with the point */
    GPtrArray *disks;            /* of vmrpDomainDisk, the live domain's */
    GArray *included;            /* of backupDisk */
    vmrpAgent *agent;
    char *point_dir;
    char *job_dir;
    char *socket;
    gint64 last_save;

    /* what was done, for the rollback */
    bool frozen;
    bool job_started;
    bool checkpoint_created;
};
typedef struct _vmrpBackup backupState;

void
vmrpBackupFree(vmrpBackup *st)
{
    if (!st)
        return;
    vmrpAgentFree(st->agent);
    if (st->dom)
        virDomainFree(st->dom);
    vmrpPointFree(st->point);
    g_clear_pointer(&st->disks, g_ptr_array_unref);
    g_clear_pointer(&st->included, g_array_unref);
    g_free(st->domain_xml);
    g_free(st->point_dir);
    g_free(st->job_dir);
    g_free(st->socket);
    g_free(st);
}

static bool
backupThaw(backupState *st, GError **error)
{
    g_autoptr(GError) local = NULL;
    int attempt;

    /* a guest is never left frozen: try again before giving up */
    for (attempt = 0; attempt < 3; attempt++) {
        g_clear_error(&local);
        if (vmrpAgentFsfreezeThaw(st->agent, st->opts->agent_timeout_s, &local) >= 0) {
            st->frozen = false;
            return true;
        }
    }
    g_set_error(error, VMRP_ERROR, VMRP_ERROR_FAILED,
                "cannot thaw the guest's filesystems, thaw it by hand "
                "(virsh domfsthaw %s): %s", st->point->domain_name, local->message);
    return false;
}

/* Undoes what was done, keeping the original error; never fails. */
static void
backupRollback(backupState *st)
{
    if (st->frozen)
        backupThaw(st, NULL);
    if (st->job_started && virDomainAbortJob(st->dom) < 0)
        g_warning("cannot end the backup job of %s", st->point->domain_name);
    if (st->checkpoint_created) {
        virDomainCheckpointPtr chk =
            virDomainCheckpointLookupByName(st->dom, st->point->checkpoint, 0);
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

static char *
backupFormatJobXML(backupState *st)
{
    g_autoptr(GString) xml = g_string_new(NULL);
    g_autofree char *sock = g_markup_escape_text(st->socket, -1);
    size_t i;

    g_string_append_printf(xml, "<domainbackup mode='pull'>\n"
                                "  <server transport='unix' socket='%s'/>\n"
                                "  <disks>\n", sock);
    for (i = 0; i < st->point->disks->len; i++) {
        vmrpPointDisk *pdisk = g_ptr_array_index(st->point->disks, i);
        g_autofree char *target = g_markup_escape_text(pdisk->target, -1);
        g_autofree char *scratch = NULL;

        if (pdisk->excluded) {
            g_string_append_printf(xml, "    <disk name='%s' backup='no'/>\n", target);
            continue;
        }
        scratch = g_strdup_printf("%s/%s.scratch", st->job_dir, pdisk->target);
        g_autofree char *escaped = g_markup_escape_text(scratch, -1);
        g_string_append_printf(xml, "    <disk name='%s' backup='yes' type='file'>\n"
                                    "      <scratch file='%s'/>\n"
                                    "    </disk>\n", target, escaped);
    }
    g_string_append(xml, "  </disks>\n</domainbackup>\n");
    return g_string_free(g_steal_pointer(&xml), FALSE);
}

static char *
backupFormatCheckpointXML(backupState *st)
{
    g_autoptr(GString) xml = g_string_new(NULL);
    size_t i;

    g_string_append_printf(xml, "<domaincheckpoint>\n"
                                "  <name>%s</name>\n"
                                "  <description>vmrp restore point %s</description>\n"
                                "  <disks>\n", st->point->checkpoint, st->point->id);
    for (i = 0; i < st->disks->len; i++) {
        vmrpDomainDisk *disk = g_ptr_array_index(st->disks, i);
        vmrpPointDisk *pdisk = vmrpPointFindDisk(st->point, disk->target);
        g_autofree char *target = NULL;
        bool bitmap;

        if (!disk->target || !pdisk)
            continue;
        target = g_markup_escape_text(disk->target, -1);
        bitmap = !pdisk->excluded && g_strcmp0(disk->format, "qcow2") == 0;
        g_string_append_printf(xml, "    <disk name='%s' checkpoint='%s'/>\n",
                               target, bitmap ? "bitmap" : "no");
    }
    g_string_append(xml, "  </disks>\n</domaincheckpoint>\n");
    return g_string_free(g_steal_pointer(&xml), FALSE);
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

/* Decides the consistency; returns false only when the request cannot be met. */
static bool
backupResolveConsistency(backupState *st, GError **error)
{
    vmrpPoint *point = st->point;
    g_autoptr(GError) ping = NULL;

    point->requested = st->opts->consistency;
    if (vmrpConsistencyNeedsFreeze(point->requested)) {
        st->agent = vmrpAgentNewLibvirt(st->dom);
        vmrpAgentPing(st->agent, st->opts->agent_timeout_s, &ping);
    }
    if (!vmrpConsistencyResolve(point->requested, ping ? ping->message : NULL,
                                st->opts->allow_fallback, &point->achieved, error))
        return false;
    if (ping)
        point->fallback_reason = g_strdup(ping->message);
    return true;
}

/* Freezes (when asked), starts the backup job with its checkpoint, thaws. */
static bool
backupStartJob(backupState *st, GError **error)
{
    vmrpPoint *point = st->point;
    g_autofree char *job_xml = backupFormatJobXML(st);
    g_autofree char *chk_xml = NULL;
    g_autoptr(GError) freeze = NULL;
    gint64 start = 0;

    if (backupHasBitmapDisk(st)) {
        point->checkpoint = g_strdup_printf("vmrp-%s", point->id);
        chk_xml = backupFormatCheckpointXML(st);
    }

    if (vmrpConsistencyNeedsFreeze(point->achieved)) {
        start = g_get_monotonic_time();
        if (vmrpAgentFsfreezeFreeze(st->agent, st->opts->agent_timeout_s, &freeze) < 0) {
            /* a freeze that failed half way may have frozen some filesystems */
            st->frozen = true;
            backupThaw(st, NULL);
            if (!st->opts->allow_fallback) {
                g_propagate_prefixed_error(error, g_steal_pointer(&freeze),
                                           "cannot freeze the guest for a %s-consistent point: ",
                                           vmrpConsistencyToString(point->requested));
                return false;
            }
            point->achieved = VMRP_CONSISTENCY_CRASH;
            point->fallback_reason = g_strdup(freeze->message);
        } else {
            st->frozen = true;
        }
    }

    if (virDomainBackupBegin(st->dom, job_xml, chk_xml, 0) < 0) {
        vmrpErrorFromLibvirt(error, "cannot start the backup job");
        return false;
    }
    st->job_started = true;
    st->checkpoint_created = chk_xml != NULL;

    if (st->frozen) {
        if (!backupThaw(st, error))
            return false;
        point->freeze_ms = (g_get_monotonic_time() - start) / 1000;
    }
    return true;
}

static void
backupReportProgress(backupState *st, const vmrpPointDisk *disk, bool force)
{
    gint64 now = g_get_monotonic_time();

    if (!force && now - st->last_save < PROGRESS_SAVE_INTERVAL_US)
        return;
    st->last_save = now;
    /* progress in the manifest is for rp-info in other processes: best effort */
    vmrpRepoPointSave(st->point_dir, st->point, NULL);
    if (st->opts->progress && disk)
        st->opts->progress(st->point, disk, st->opts->opaque);
}

typedef struct {
    backupState *st;
    vmrpPointDisk *pdisk;
} copyProgress;

static void
backupCopyProgress(uint64_t done, uint64_t total, void *opaque)
{
    copyProgress *cp = opaque;

    cp->pdisk->bytes_done = done;
    cp->pdisk->bytes_total = total;
    backupReportProgress(cp->st, cp->pdisk, false);
}

static bool
backupCopyDisk(backupState *st, backupDisk *bd, GError **error)
{
    vmrpPointDisk *pdisk = bd->pdisk;
    g_autofree char *image = g_build_filename(st->point_dir, pdisk->image, NULL);
    g_autofree char *size = NULL;
    g_autoptr(vmrpNbdSource) src = NULL;
    g_autoptr(vmrpExtentMap) map = NULL;
    copyProgress cp = { st, pdisk };
    vmrpNbdCopyOptions copts = { 0 };
    uint64_t copied = 0;

    if (!(src = vmrpNbdSourceOpen(st->socket, pdisk->target, NULL, error)) ||
        !(map = vmrpNbdSourceMapExtents(src, error)))
        return false;
    pdisk->size = vmrpNbdSourceGetSize(src);
    pdisk->bytes_total = vmrpExtentMapBytes(map, VMRP_EXTENT_DATA);
    pdisk->bytes_done = 0;
    backupReportProgress(st, pdisk, true);

    size = g_strdup_printf("%" G_GUINT64_FORMAT, pdisk->size);
    const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2",
                           "-o", "compat=1.1", image, size, NULL };
    if (!vmrpRun(argv, NULL, error))
        return false;

    copts.write_zeroes = false;    /* a new image without backing reads zeros */
    copts.progress = backupCopyProgress;
    copts.opaque = &cp;
    if (!vmrpNbdCopyToImage(src, map, image, "qcow2", &copts, &copied, error)) {
        g_prefix_error(error, "cannot copy disk %s: ", pdisk->target);
        return false;
    }
    pdisk->bytes_done = copied;
    backupReportProgress(st, pdisk, true);
    return true;
}

static bool
backupSaveXML(backupState *st, const char *name, const char *xml, GError **error)
{
    g_autofree char *path = g_build_filename(st->point_dir, name, NULL);
    return vmrpFileWriteAtomic(path, xml, strlen(xml), 0600, error);
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
    st->opts = opts;
    st->included = g_array_new(FALSE, TRUE, sizeof(backupDisk));
    if (virDomainGetUUIDString(dom, uuid) < 0) {
        vmrpErrorFromLibvirt(error, "cannot read the domain's uuid");
        return NULL;
    }
    st->point = vmrpPointNew(virDomainGetName(dom), uuid);

    if (virDomainIsActive(dom) != 1) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "domain %s is not running: a restore point is taken of a running domain",
                    st->point->domain_name);
        return NULL;
    }
    if (!(live_xml = virDomainGetXMLDesc(dom, 0))) {
        vmrpErrorFromLibvirt(error, "cannot read the domain XML");
        return NULL;
    }
    if (!(live = vmrpDomainXmlParse(live_xml, error)) ||
        !(st->domain_xml = backupDomainXML(dom, error)))
        return NULL;
    st->disks = vmrpDomainXmlGetDisks(live);
    if (!backupSelectDisks(st, error) ||
        !backupResolveConsistency(st, error))
        return NULL;
    return g_steal_pointer(&st);
}

static bool
backupRun(backupState *st, GError **error)
{
    gint64 start = g_get_monotonic_time();
    size_t i;

    if (!(st->point_dir = vmrpRepoPointBegin(st->repo, st->point, error)) ||
        !backupSaveXML(st, "domain.xml", st->domain_xml, error))
        return false;
    if (!(st->job_dir = vmrpStateMakeJobDir(st->point->id, error)))
        return false;
    st->socket = g_build_filename(st->job_dir, "nbd.sock", NULL);

    if (!backupStartJob(st, error))
        return false;
    backupReportProgress(st, NULL, true);

    for (i = 0; i < st->included->len; i++) {
        if (!backupCopyDisk(st, &g_array_index(st->included, backupDisk, i), error))
            return false;
    }

    if (virDomainAbortJob(st->dom) < 0) {
        vmrpErrorFromLibvirt(error, "cannot end the backup job");
        return false;
    }
    st->job_started = false;

    st->point->duration_ms = (g_get_monotonic_time() - start) / 1000;
    if (!backupSaveCheckpointXML(st, error) ||
        !vmrpRepoPointCommit(st->repo, st->point, &st->point_dir, error))
        return false;
    vmrpFileRemoveTree(st->job_dir, NULL);
    return true;
}

/* Points whose folder a crash left half written: their folders go, and so
 * do their checkpoints (libvirt merges the bitmap into the parent's). */
static bool
backupCleanStale(virDomainPtr dom, vmrpRepo *repo, const char *uuid, GError **error)
{
    g_auto(GStrv) stale = NULL;
    size_t i;

    if (!(stale = vmrpRepoCleanStale(repo, uuid, error)))
        return false;
    for (i = 0; stale[i]; i++) {
        g_autofree char *name = g_strdup_printf("vmrp-%s", stale[i]);
        virDomainCheckpointPtr chk = virDomainCheckpointLookupByName(dom, name, 0);

        if (chk) {
            virDomainCheckpointDelete(chk, 0);
            virDomainCheckpointFree(chk);
        }
    }
    return true;
}

vmrpPoint *
vmrpBackupRun(vmrpBackup *st, vmrpRepo *repo, GError **error)
{
    vmrpPoint *point = st->point;
    int lock;
    bool ok;

    if (!vmrpRepoEnsureCollection(repo, point->domain_name, point->domain_uuid, error))
        return NULL;
    if ((lock = vmrpRepoLockCollection(repo, point->domain_uuid, error)) < 0)
        return NULL;
    if (!backupCleanStale(st->dom, repo, point->domain_uuid, error)) {
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
