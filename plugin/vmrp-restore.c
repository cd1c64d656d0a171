/*
 * vmrp-restore.c: entire-VM restore of a restore point
 *
 * The steps, each undone by restoreRollback() when a later one fails:
 *   checks (point, XML, images, names, files, busy) -> [in place: original
 *   stopped -> its disks set aside] -> disks copied (or overlays made) ->
 *   [in place: checkpoint metadata removed] -> domain defined -> [instant:
 *   use recorded, QEMU let read the images] -> started -> [in place: the
 *   set-aside disks removed]
 * A cancellation (job-abort, Ctrl-C) until the domain is defined undoes
 * the work as a failure does; after that the restore runs to its end.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "vmrp-restore.h"
#include "vmrp-restore-journal.h"
#include "vmrp-disk.h"
#include "vmrp-domxml.h"
#include "vmrp-error.h"
#include "vmrp-fault.h"
#include "vmrp-file.h"
#include "vmrp-firmware.h"
#include "vmrp-instant.h"
#include "vmrp-names.h"
#include "vmrp-remote.h"
#include "vmrp-run.h"
#include "vmrp-state.h"
#include "vmrp-volume.h"

#define DOMAIN_XML_MAX (16 * 1024 * 1024)
#define SHUTDOWN_POLL_US (G_USEC_PER_SEC / 4)

typedef struct {
    char *target;
    char *image;       /* the point's image */
    char *dest;        /* the restored domain's file, as its XML names it */
    char *file;        /* in place: the file written: dest, or the file its link names */
    char *format;      /* of dest */
    char *aside;       /* in place: where the original's file is set aside */
    char *volume;      /* --pool: the new volume's name; file is a local copy sent there */
    bool volume_made;
    uint64_t size;
    bool created;      /* dest was made */
    bool set_aside;    /* the original's file was renamed to aside */
    struct stat orig;  /* in place: the original file's owner and mode */
} restoreDisk;

typedef struct {
    virConnectPtr conn;
    vmrpRepo *repo;
    const vmrpRestoreOptions *opts;
    const char *id;
    vmrpPoint *point;
    char *dir;
    vmrpDomainXml *domxml;
    char *name;
    GArray *disks;              /* of restoreDisk */
    vmrpRestoreResult *res;
    int lock;

    /* in place: the original */
    virDomainPtr orig;          /* NULL when it no longer exists */
    char *orig_xml;             /* its persistent definition */
    bool orig_active;
    bool orig_paused;
    bool orig_autostart;        /* turned off until the restore is done */
    GPtrArray *checkpoints;     /* of char *: their XML, parents first */
    GPtrArray *live_disks;      /* of vmrpDomainDisk: the domain's disks as libvirt has them */
    GPtrArray *point_disks;     /* of vmrpDomainDisk: the point's (restorePointDisks) */

    vmrpInstant *instant;
    char *upload_dir;           /* --pool: the local copies before they are sent */
    vmrpFirmwareRestore fw;     /* its NVRAM and vTPM state */
    virDomainPtr dom;           /* the restored domain */
    char uuid[VIR_UUID_STRING_BUFLEN];

    /* what was done, for the rollback */
    bool stopped;
    bool checkpoints_deleted;
    bool defined;
    bool instant_committed;
    bool started;
    bool journaled;
} restoreState;

static void
restoreDiskClear(restoreDisk *rd)
{
    g_free(rd->target);
    g_free(rd->image);
    g_free(rd->dest);
    g_free(rd->file);
    g_free(rd->format);
    g_free(rd->aside);
    g_free(rd->volume);
}

void
vmrpRestoreResultFree(vmrpRestoreResult *res)
{
    if (!res)
        return;
    g_free(res->name);
    g_free(res->uuid);
    g_clear_pointer(&res->disks, g_ptr_array_unref);
    g_clear_pointer(&res->excluded, g_ptr_array_unref);
    g_clear_pointer(&res->kept, g_ptr_array_unref);
    g_free(res);
}

static void
restoreStateClear(restoreState *st)
{
    vmrpPointFree(st->point);
    g_free(st->dir);
    vmrpDomainXmlFree(st->domxml);
    g_free(st->name);
    g_clear_pointer(&st->disks, g_array_unref);
    g_clear_pointer(&st->live_disks, g_ptr_array_unref);
    g_clear_pointer(&st->point_disks, g_ptr_array_unref);
    vmrpRestoreResultFree(st->res);
    if (st->lock >= 0)
        close(st->lock);
    if (st->orig)
        virDomainFree(st->orig);
    g_free(st->orig_xml);
    g_clear_pointer(&st->checkpoints, g_ptr_array_unref);
    vmrpInstantFree(st->instant);
    if (st->upload_dir)
        vmrpFileRemoveTree(st->upload_dir, NULL);
    g_free(st->upload_dir);
    vmrpFirmwareRestoreClear(&st->fw);
    if (st->dom)
        virDomainFree(st->dom);
}

static bool
domainExists(virConnectPtr conn, const char *name)
{
    virDomainPtr dom = virDomainLookupByName(conn, name);

    if (!dom)
        return false;
    virDomainFree(dom);
    return true;
}

/* "<original>-restored-<n>", the first one free. */
static char *
restoreGenerateName(virConnectPtr conn, const char *original, GError **error)
{
    /* the name comes from a file in the repository: never trusted for paths */
    g_autofree char *base = vmrpNameCheckDomain(original, NULL) ? g_strndup(original, 40)
                                                                : g_strdup("vm");
    unsigned int n;

    for (n = 1; n < 1000; n++) {
        g_autofree char *name = g_strdup_printf("%s-restored-%u", base, n);
        if (!domainExists(conn, name))
            return g_steal_pointer(&name);
    }
    g_set_error(error, VMRP_ERROR, VMRP_ERROR_EXISTS,
                "cannot find a free name for the restored domain: use --name");
    return NULL;
}

/* The point, its XML and its images, checked. */
static bool
restoreLoad(restoreState *st, GError **error)
{
    g_autofree char *xml_path = NULL;
    g_autofree char *xml = NULL;

    if (!(st->point = vmrpRepoFindPoint(st->repo, st->id, &st->dir, error)))
        return false;
    if (st->point->state != VMRP_POINT_SUCCEEDED) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "restore point %s is %s, not restorable", st->id,
                    vmrpPointStateToString(st->point->state));
        return false;
    }
    xml_path = g_build_filename(st->dir, "domain.xml", NULL);
    if (!(xml = vmrpFileRead(xml_path, DOMAIN_XML_MAX, NULL, error)))
        return false;
    if (!(st->domxml = vmrpDomainXmlParse(xml, error))) {
        g_prefix_error(error, "restore point %s is damaged: %s: ", st->id, xml_path);
        return false;
    }
    if (st->opts->in_place &&
        g_strcmp0(vmrpDomainXmlGetUUID(st->domxml), st->point->domain_uuid) != 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "restore point %s is damaged: %s names another domain than its manifest",
                    st->id, xml_path);
        return false;
    }
    return true;
}

/* Whether the point's image of a disk, with its backing chain, is readable. */
static bool
restoreCheckImage(restoreState *st, const char *target, const char *image, GError **error)
{
    const char *argv[] = { "qemu-img", "info", "-U", "--backing-chain", "--output=json",
                           image, NULL };
    g_autofree char *out = NULL;
    g_autoptr(GError) local = NULL;

    if (!vmrpRun(argv, &out, &local)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "restore point %s is damaged: image of disk %s: %s",
                    st->id, target, local->message);
        return false;
    }
    return true;
}

static const vmrpDomainDisk *
findXmlDisk(GPtrArray *xdisks, const char *target)
{
    guint i;

    for (i = 0; i < xdisks->len; i++) {
        const vmrpDomainDisk *d = g_ptr_array_index(xdisks, i);
        if (g_strcmp0(d->target, target) == 0)
            return d;
    }
    return NULL;
}

/* Beside: the folder of a new disk: --disk-dir, or the original's folder as
 * libvirt reports it (the live domain's XML, else the point's), never a URL
 * or a device's folder. */
static char *
restoreBesideFolder(restoreState *st, const vmrpDomainDisk *xdisk, GError **error)
{
    const vmrpDomainDisk *live = NULL;
    const char *source;

    if (st->opts->disk_dir)
        return g_strdup(st->opts->disk_dir);
    if (st->live_disks)
        live = findXmlDisk(st->live_disks, xdisk->target);
    if (!live)
        live = xdisk;
    source = live->source;
    if (g_strcmp0(live->type, "file") != 0 || !source || !g_path_is_absolute(source) ||
        g_str_has_prefix(source, "/dev/")) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "cannot restore disk %s beside the original: it is a %s disk, not a "
                    "file; give a folder for the new disks with --disk-dir",
                    xdisk->target, live->type ? live->type : "sourceless");
        return NULL;
    }
    return g_path_get_dirname(source);
}

/* The disks of the point's domain XML as it was read (before a rewrite);
 * a storage volume that its pool still has is its file or block device
 * (see vmrpVolumeResolveDisks), one whose pool is gone stays a volume
 * without a path.  Read and resolved once: owned by @st. */
static GPtrArray *
restorePointDisks(restoreState *st)
{
    if (!st->point_disks) {
        st->point_disks = vmrpDomainXmlGetDisks(st->domxml);
        vmrpVolumeResolveDisks(st->conn, st->point_disks, NULL);
    }
    return st->point_disks;
}

/* Where each disk goes, checked before anything changes. */
static bool
restorePlanDisks(restoreState *st, GError **error)
{
    const vmrpRestoreOptions *opts = st->opts;
    GPtrArray *xdisks = restorePointDisks(st);
    size_t i;

    for (i = 0; i < st->point->disks->len; i++) {
        vmrpPointDisk *pdisk = g_ptr_array_index(st->point->disks, i);
        const vmrpDomainDisk *xdisk = findXmlDisk(xdisks, pdisk->target);
        g_autofree char *folder = NULL;
        restoreDisk rd = { 0 };
        restoreDisk *rdp;

        if (!xdisk) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "restore point %s is damaged: its domain XML has no disk %s",
                        st->id, pdisk->target);
            return false;
        }
        if (pdisk->excluded) {
            if (opts->in_place)
                g_ptr_array_add(st->res->kept, g_strdup_printf("%s=%s", pdisk->target,
                                                               xdisk->source ?: ""));
            else
                g_ptr_array_add(st->res->excluded, g_strdup(pdisk->target));
            continue;
        }
        /* in place, the manifest's path only where the point's XML says the same;
         * the live domain's own disk is matched later (restoreMatchLive) */
        if (opts->in_place && g_strcmp0(pdisk->source, xdisk->source) != 0) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "restore point %s is damaged: its manifest and its domain XML "
                        "name different files for disk %s", st->id, pdisk->target);
            return false;
        }
        if (!(rd.image = vmrpRepoPointImage(st->dir, st->point, pdisk->target, error)))
            return false;
        rd.target = g_strdup(pdisk->target);
        rd.size = pdisk->size;
        if (opts->instant)
            rd.format = g_strdup("qcow2");
        else
            rd.format = g_strdup(g_strcmp0(pdisk->format, "raw") == 0 ? "raw" : "qcow2");
        if (opts->in_place) {
            rd.dest = g_strdup(xdisk->source);
            rd.file = g_strdup(xdisk->source);
            rd.aside = g_strdup_printf("%s.vmrp-old-%s", rd.dest ? rd.dest : "", st->id);
        } else if (opts->pool) {
            rd.volume = g_strdup_printf("%s-%s.%s", st->name, pdisk->target,
                                        g_str_equal(rd.format, "raw") ? "img" : "qcow2");
            rd.dest = g_strdup_printf("%s/%s", opts->pool, rd.volume);
            g_array_append_val(st->disks, rd);
            rdp = &g_array_index(st->disks, restoreDisk, st->disks->len - 1);
            if (!restoreCheckImage(st, rdp->target, rdp->image, error) ||
                !vmrpVolumeCheckFree(st->conn, opts->pool, rdp->volume, error))
                return false;
            continue;
        } else {
            g_autofree char *file = g_strdup_printf("%s-%s.%s", st->name, pdisk->target,
                                                    g_str_equal(rd.format, "raw") ? "img"
                                                                                  : "qcow2");
            if (!(folder = restoreBesideFolder(st, xdisk, error))) {
                restoreDiskClear(&rd);
                return false;
            }
            rd.dest = g_build_filename(folder, file, NULL);
            rd.file = g_strdup(rd.dest);
        }
        g_array_append_val(st->disks, rd);
        rdp = &g_array_index(st->disks, restoreDisk, st->disks->len - 1);

        if (!restoreCheckImage(st, rdp->target, rdp->image, error))
            return false;
        if (opts->in_place) {
            if (g_strcmp0(xdisk->type, "file") != 0 || !rdp->dest ||
                !g_path_is_absolute(rdp->dest)) {
                g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                            "cannot restore disk %s in place: it is not a local file; "
                            "restore beside the original with --name", rdp->target);
                return false;
            }
            if (g_file_test(rdp->aside, G_FILE_TEST_EXISTS)) {
                g_set_error(error, VMRP_ERROR, VMRP_ERROR_EXISTS,
                            "cannot set disk %s aside: %s already exists (left by an "
                            "earlier restore?)", rdp->target, rdp->aside);
                return false;
            }
            if (g_file_test(rdp->dest, G_FILE_TEST_IS_DIR)) {
                g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                            "cannot restore disk %s: %s is a folder", rdp->target, rdp->dest);
                return false;
            }
            folder = g_path_get_dirname(rdp->dest);
        } else if (g_file_test(rdp->dest, G_FILE_TEST_EXISTS)) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_EXISTS,
                        "cannot restore disk %s: %s already exists", rdp->target, rdp->dest);
            return false;
        }
        if (access(folder, W_OK) < 0) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO,
                        "cannot restore disk %s into %s: %s",
                        rdp->target, folder, g_strerror(errno));
            return false;
        }
    }
    if (st->disks->len == 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "restore point %s holds no disk", st->id);
        return false;
    }
    return true;
}

/* Beside: the clone's XML. */
static char *
restoreFormatCloneXML(restoreState *st, GError **error)
{
    g_autoptr(GHashTable) sources = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GHashTable) formats = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GStrvBuilder) drop_builder = g_strv_builder_new();
    g_auto(GStrv) drop = NULL;
    size_t i;

    for (i = 0; i < st->disks->len; i++) {
        restoreDisk *rd = &g_array_index(st->disks, restoreDisk, i);
        g_hash_table_insert(sources, rd->target, rd->dest);
        g_hash_table_insert(formats, rd->target, rd->format);
    }
    for (i = 0; i < st->res->excluded->len; i++)
        g_strv_builder_add(drop_builder, g_ptr_array_index(st->res->excluded, i));
    drop = g_strv_builder_end(drop_builder);
    if (!vmrpDomainXmlPrepareClone(st->domxml, st->name, sources, formats,
                                   (const char *const *)drop, error))
        return NULL;
    for (i = 0; st->opts->pool && i < st->disks->len; i++) {
        restoreDisk *rd = &g_array_index(st->disks, restoreDisk, i);
        if (!vmrpDomainXmlSetDiskVolume(st->domxml, rd->target, st->opts->pool, rd->volume,
                                        rd->format, error))
            return NULL;
    }
    if (st->opts->instant) {
        for (i = 0; i < st->disks->len; i++) {
            restoreDisk *rd = &g_array_index(st->disks, restoreDisk, i);
            if (!vmrpDomainXmlSetDiskSource(st->domxml, rd->target, rd->dest, "qcow2",
                                            true, error))
                return NULL;
        }
    }
    return vmrpDomainXmlFormat(st->domxml);
}

/* In place: the point's XML, its restored disks without backing chains;
 * a storage volume, whose file was written, stays that volume. */
static char *
restoreFormatInPlaceXML(restoreState *st, GError **error)
{
    GPtrArray *xdisks = restorePointDisks(st);
    size_t i;

    for (i = 0; i < st->disks->len; i++) {
        restoreDisk *rd = &g_array_index(st->disks, restoreDisk, i);
        const vmrpDomainDisk *x = findXmlDisk(xdisks, rd->target);

        if (!st->opts->instant && x && x->volume && g_strcmp0(x->source, rd->dest) == 0)
            continue;
        if (!vmrpDomainXmlSetDiskSource(st->domxml, rd->target, rd->dest, rd->format,
                                        st->opts->instant, error))
            return NULL;
    }
    return vmrpDomainXmlFormat(st->domxml);
}

/* In place: the original, found by the point's UUID, and what must be put
 * back if the restore fails. */
static bool
restoreInspectOriginal(restoreState *st, GError **error)
{
    const char *name = vmrpDomainXmlGetName(st->domxml);
    virDomainCheckpointPtr *chks = NULL;
    virDomainJobInfo job;
    int state = VIR_DOMAIN_NOSTATE;
    int n;
    int i;

    st->orig = virDomainLookupByUUIDString(st->conn, st->point->domain_uuid);
    if (!st->orig) {
        /* the domain is gone: restored in place all the same, as it was */
        if (domainExists(st->conn, name)) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_EXISTS,
                        "cannot restore in place: domain '%s' is another domain than the "
                        "point's (uuid %s); restore beside it with --name",
                        name, st->point->domain_uuid);
            return false;
        }
        return true;
    }
    if (g_strcmp0(virDomainGetName(st->orig), name) != 0 && domainExists(st->conn, name)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_EXISTS,
                    "cannot restore in place: the point's name '%s' belongs to another domain",
                    name);
        return false;
    }
    if (virDomainIsPersistent(st->orig) != 1) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "cannot restore transient domain %s in place: restore beside it with --name",
                    virDomainGetName(st->orig));
        return false;
    }
    if (virDomainGetJobInfo(st->orig, &job) == 0 && job.type != VIR_DOMAIN_JOB_NONE) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_BUSY,
                    "domain %s is busy: it has a job running (a backup?); try again when "
                    "it has ended", virDomainGetName(st->orig));
        return false;
    }
    if (virDomainGetState(st->orig, &state, NULL, 0) < 0) {
        vmrpErrorFromLibvirt(error, "cannot read the state of the original domain");
        return false;
    }
    st->orig_active = virDomainIsActive(st->orig) == 1;
    st->orig_paused = state == VIR_DOMAIN_PAUSED;
    if (!(st->orig_xml = virDomainGetXMLDesc(st->orig, VIR_DOMAIN_XML_INACTIVE |
                                                       VIR_DOMAIN_XML_SECURE))) {
        vmrpErrorFromLibvirt(error, "cannot read the definition of the original domain");
        return false;
    }
    st->checkpoints = g_ptr_array_new_with_free_func(g_free);
    if ((n = virDomainListAllCheckpoints(st->orig, &chks,
                                         VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL)) < 0) {
        vmrpErrorFromLibvirt(error, "cannot list the checkpoints of the original domain");
        return false;
    }
    for (i = 0; i < n; i++) {
        char *xml = virDomainCheckpointGetXMLDesc(chks[i], VIR_DOMAIN_CHECKPOINT_XML_SECURE);
        if (xml)
            g_ptr_array_add(st->checkpoints, xml);
        virDomainCheckpointFree(chks[i]);
        if (!xml) {
            for (i++; i < n; i++)
                virDomainCheckpointFree(chks[i]);
            free(chks);
            vmrpErrorFromLibvirt(error, "cannot read a checkpoint of the original domain");
            return false;
        }
    }
    free(chks);
    return true;
}

/* The disks of the domain with the point's UUID as libvirt defines it now;
 * none when it is gone. */
static bool
restoreLoadLiveDisks(restoreState *st, const char *xml, GError **error)
{
    g_autoptr(vmrpDomainXml) live = NULL;
    g_autofree char *own = NULL;

    g_clear_pointer(&st->live_disks, g_ptr_array_unref);
    if (!xml) {
        virDomainPtr dom = virDomainLookupByUUIDString(st->conn, st->point->domain_uuid);

        if (!dom)
            return true;
        own = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE);
        virDomainFree(dom);
        if (!own) {
            vmrpErrorFromLibvirt(error, "cannot read the definition of the original domain");
            return false;
        }
        xml = own;
    }
    if (!(live = vmrpDomainXmlParse(xml, error)))
        return false;
    st->live_disks = vmrpDomainXmlGetDisks(live);
    return vmrpVolumeResolveDisks(st->conn, st->live_disks, error);
}

/* In place: the files written are the live domain's own disks, matched by
 * target, never paths that only the repository names; a disk that is a
 * symbolic link keeps its link, and the file it names is replaced. */
static bool
restoreMatchLive(restoreState *st, GError **error)
{
    size_t i;

    if (st->orig && !restoreLoadLiveDisks(st, st->orig_xml, error))
        return false;
    /* the redefined domain uses every local disk of the point's XML, an
     * excluded one (kept as it is) too: each must be the live domain's */
    if (st->orig) {
        GPtrArray *xdisks = restorePointDisks(st);

        for (i = 0; i < xdisks->len; i++) {
            const vmrpDomainDisk *x = g_ptr_array_index(xdisks, i);
            const vmrpDomainDisk *live = findXmlDisk(st->live_disks, x->target);

            if (!x->source || (g_strcmp0(x->type, "file") != 0 &&
                               g_strcmp0(x->type, "block") != 0))
                continue;
            if (!live || g_strcmp0(live->source, x->source) != 0) {
                g_autofree char *shown = g_strescape(x->source, NULL);
                g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                            "cannot restore in place: the point's disk %s is \"%s\", not "
                            "the domain's disk %s now; restore beside it with --name",
                            x->target, shown, x->target);
                return false;
            }
        }
    }
    for (i = 0; i < st->disks->len; i++) {
        restoreDisk *rd = &g_array_index(st->disks, restoreDisk, i);
        const vmrpDomainDisk *live = st->live_disks ? findXmlDisk(st->live_disks, rd->target)
                                                    : NULL;
        g_autofree char *real = NULL;
        struct stat sb;

        if (st->orig && (!live || g_strcmp0(live->type, "file") != 0 ||
                         g_strcmp0(live->source, rd->dest) != 0)) {
            g_autofree char *shown = g_strescape(rd->dest, NULL);
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "cannot restore disk %s in place: the point's file \"%s\" is not "
                        "the domain's disk %s now; restore beside it with --name",
                        rd->target, shown, rd->target);
            return false;
        }
        if (lstat(rd->dest, &sb) < 0 || !S_ISLNK(sb.st_mode))
            continue;
        if (!(real = realpath(rd->dest, NULL))) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO,
                        "cannot restore disk %s in place: %s is a link to nothing: %s",
                        rd->target, rd->dest, g_strerror(errno));
            return false;
        }
        g_free(rd->file);
        rd->file = g_steal_pointer(&real);
        g_free(rd->aside);
        rd->aside = g_strdup_printf("%s.vmrp-old-%s", rd->file, st->id);
        if (lstat(rd->aside, &sb) == 0) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_EXISTS,
                        "cannot set disk %s aside: %s already exists (left by an "
                        "earlier restore?)", rd->target, rd->aside);
            return false;
        }
    }
    return true;
}

/* Shuts the original down, waiting at most the timeout, then destroys it. */
static bool
restoreStopOriginal(restoreState *st, GError **error)
{
    gint64 deadline;

    if (!st->orig || !st->orig_active)
        return true;
    st->stopped = true;
    if (st->opts->shutdown_timeout_s > 0 && virDomainShutdown(st->orig) == 0) {
        deadline = g_get_monotonic_time() +
                   (gint64)st->opts->shutdown_timeout_s * G_USEC_PER_SEC;
        while (virDomainIsActive(st->orig) == 1 && g_get_monotonic_time() < deadline &&
               !g_cancellable_is_cancelled(st->opts->copy.cancel))
            g_usleep(SHUTDOWN_POLL_US);
        if (g_cancellable_set_error_if_cancelled(st->opts->copy.cancel, error))
            return false;
    }
    if (virDomainIsActive(st->orig) == 1 && virDomainDestroy(st->orig) < 0) {
        vmrpErrorFromLibvirt(error, "cannot stop the original domain");
        return false;
    }
    return true;
}

static bool
restoreSetAside(restoreState *st, GError **error)
{
    size_t i;

    for (i = 0; i < st->disks->len; i++) {
        restoreDisk *rd = &g_array_index(st->disks, restoreDisk, i);

        if (lstat(rd->file, &rd->orig) < 0) {
            if (errno == ENOENT)
                continue;   /* nothing to set aside: the disk is gone */
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot read %s: %s",
                        rd->file, g_strerror(errno));
            return false;
        }
        if (rename(rd->file, rd->aside) < 0) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot set %s aside: %s",
                        rd->file, g_strerror(errno));
            return false;
        }
        rd->set_aside = true;
    }
    return true;
}

/* The original's owner and mode, on the opened file (never through a link). */
static bool
restoreGiveOwner(restoreDisk *rd, GError **error)
{
    int fd = open(rd->file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    struct stat sb;
    bool ok;

    ok = fd >= 0 && fstat(fd, &sb) == 0;
    if (ok && !S_ISREG(sb.st_mode)) {
        errno = EINVAL;
        ok = false;
    }
    ok = ok && fchown(fd, rd->orig.st_uid, rd->orig.st_gid) == 0 &&
         fchmod(fd, rd->orig.st_mode & 07777) == 0;
    if (!ok)
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO,
                    "cannot give %s the original's owner and mode: %s",
                    rd->file, g_strerror(errno));
    if (fd >= 0)
        close(fd);
    return ok;
}

static bool
restoreMakeDisks(restoreState *st, GError **error)
{
    const vmrpRestoreOptions *opts = st->opts;
    size_t i;

    if (opts->instant &&
        !(st->instant = vmrpInstantNew(st->repo, st->id, st->dir, error)))
        return false;
    for (i = 0; !opts->instant && opts->copy.planned && i < st->disks->len; i++) {
        restoreDisk *rd = &g_array_index(st->disks, restoreDisk, i);
        opts->copy.planned(rd->target, rd->size, opts->copy.opaque);
    }
    for (i = 0; i < st->disks->len; i++) {
        restoreDisk *rd = &g_array_index(st->disks, restoreDisk, i);

        if (opts->instant) {
            if (!vmrpInstantAddDisk(st->instant, rd->target, rd->dest, error))
                return false;
            rd->created = true;
            continue;
        }
        if (rd->volume) {
            g_autofree char *name = g_strdup_printf("upload-%s", st->name);

            if (!st->upload_dir &&
                !(st->upload_dir = vmrpStateMakeRootJobDir(name, NULL, NULL, error)))
                return false;
            rd->file = g_build_filename(st->upload_dir, rd->volume, NULL);
        }
        rd->created = true;
        if (!vmrpDiskConvert(rd->image, rd->file, rd->format, rd->target, rd->size,
                             &opts->copy, error)) {
            g_prefix_error(error, "cannot restore disk %s: ", rd->target);
            return false;
        }
        if (rd->volume) {
            char *path = vmrpVolumeUpload(st->conn, opts->pool, rd->volume, rd->format,
                                          rd->size, rd->file, error);
            if (!path)
                return false;
            rd->volume_made = true;
            g_free(rd->dest);
            rd->dest = path;
            unlink(rd->file);
            rd->created = false;
        }
        /* in place, the file is the original's again: its owner and mode */
        if (rd->set_aside && !restoreGiveOwner(rd, error))
            return false;
    }
    return true;
}

/* In place: the checkpoints' bitmaps went with the old disks. */
static bool
restoreDeleteCheckpoints(restoreState *st, GError **error)
{
    virDomainCheckpointPtr *chks = NULL;
    int n;
    int i;
    bool ok = true;

    if (!st->orig || st->checkpoints->len == 0)
        return true;
    st->checkpoints_deleted = true;
    if ((n = virDomainListAllCheckpoints(st->orig, &chks, 0)) < 0) {
        vmrpErrorFromLibvirt(error, "cannot list the checkpoints of the original domain");
        return false;
    }
    for (i = 0; i < n; i++) {
        if (ok && virDomainCheckpointDelete(chks[i],
                                            VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY) < 0) {
            vmrpErrorFromLibvirt(error, "cannot remove the checkpoint metadata");
            ok = false;
        }
        virDomainCheckpointFree(chks[i]);
    }
    free(chks);
    return ok;
}

/* In place: the journal that lets the next command undo or finish a restore
 * killed on its way (vmrpRestoreRecover). */
static bool
restoreJournal(restoreState *st, const char *phase, GError **error)
{
    g_autoptr(GPtrArray) files = g_ptr_array_new();
    g_autoptr(GPtrArray) asides = g_ptr_array_new();
    size_t i;

    for (i = 0; i < st->disks->len; i++) {
        restoreDisk *rd = &g_array_index(st->disks, restoreDisk, i);
        g_ptr_array_add(files, rd->file);
        g_ptr_array_add(asides, rd->aside);
    }
    /* the domain's own NVRAM file is set aside and put back as a disk is */
    if (st->fw.nvram_dest && st->fw.nvram_aside) {
        g_ptr_array_add(files, st->fw.nvram_dest);
        g_ptr_array_add(asides, st->fw.nvram_aside);
    }
    /* and so is its vTPM state folder */
    if (st->fw.tpm_dest && st->fw.tpm_aside) {
        g_ptr_array_add(files, st->fw.tpm_dest);
        g_ptr_array_add(asides, st->fw.tpm_aside);
    }
    if (!vmrpRestoreJournalWrite(st->point->domain_uuid, phase, st->orig_active,
                                 st->orig_autostart, files, asides, error))
        return false;
    st->journaled = true;
    return true;
}

static bool
restoreDefineAndStart(restoreState *st, const char *xml, GError **error)
{
    if (!(st->dom = virDomainDefineXML(st->conn, xml))) {
        vmrpErrorFromLibvirt(error, "cannot define the restored domain");
        return false;
    }
    st->defined = true;
    if (virDomainGetUUIDString(st->dom, st->uuid) < 0) {
        vmrpErrorFromLibvirt(error, "cannot read the restored domain's uuid");
        return false;
    }
    if (!vmrpFaultCheck("restore-after-define", error))
        return false;
    /* swtpm's state folder is named after the UUID: known once defined; in
     * place, the journal knows where the original's goes before it is moved */
    vmrpFirmwareRestoreNameTpm(&st->fw, st->point, st->uuid);
    if ((st->journaled && !restoreJournal(st, "set-aside", error)) ||
        !vmrpFirmwareRestoreWriteTpm(&st->fw, st->point, st->dir, error) ||
        !vmrpFaultCheck("restore-after-tpm", error))
        return false;
    if (st->instant) {
        st->instant_committed = true;
        if (!vmrpInstantCommit(st->instant, st->uuid, virDomainGetName(st->dom), error))
            return false;
    }
    if (st->opts->power_on || st->opts->instant) {
        if (virDomainCreate(st->dom) < 0) {
            vmrpErrorFromLibvirt(error, "cannot start the restored domain");
            return false;
        }
        st->started = true;
    }
    return true;
}

/* Undoes what was done, keeping the original error; never fails, but
 * warns about what it could not undo. */
static void
restoreRollback(restoreState *st)
{
    size_t i;

    if (st->started && virDomainIsActive(st->dom) == 1)
        virDomainDestroy(st->dom);
    if (st->instant_committed)
        vmrpInstantRelease(st->repo, st->uuid, NULL);
    if (st->defined) {
        virDomainPtr back = NULL;

        if (st->orig_xml && !(back = virDomainDefineXML(st->conn, st->orig_xml)))
            g_warning("cannot define the original domain again: %s",
                      virGetLastErrorMessage());
        else if (!st->orig_xml)
            virDomainUndefineFlags(st->dom, VIR_DOMAIN_UNDEFINE_NVRAM |
                                            VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA);
        if (back)
            virDomainFree(back);
    }
    vmrpFirmwareRestoreRollback(&st->fw);
    for (i = 0; i < st->disks->len; i++) {
        restoreDisk *rd = &g_array_index(st->disks, restoreDisk, i);

        if (rd->created && unlink(rd->file) < 0 && errno != ENOENT)
            g_warning("cannot remove %s: %s", rd->file, g_strerror(errno));
        if (rd->volume_made)
            vmrpVolumeDelete(st->conn, st->opts->pool, rd->volume);
        if (rd->set_aside && rename(rd->aside, rd->file) < 0)
            g_warning("cannot put %s back: %s", rd->file, g_strerror(errno));
    }
    if (st->checkpoints_deleted) {
        for (i = 0; i < st->checkpoints->len; i++) {
            virDomainCheckpointPtr chk =
                virDomainCheckpointCreateXML(st->orig, g_ptr_array_index(st->checkpoints, i),
                                             VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE);
            if (!chk)
                g_warning("cannot redefine a checkpoint of the original: %s",
                          virGetLastErrorMessage());
            else
                virDomainCheckpointFree(chk);
        }
    }
    if (st->stopped &&
        virDomainCreateWithFlags(st->orig, st->orig_paused ? VIR_DOMAIN_START_PAUSED : 0) < 0)
        g_warning("cannot start the original domain again: %s", virGetLastErrorMessage());
    if (st->orig_autostart && virDomainSetAutostart(st->orig, 1) < 0)
        g_warning("cannot turn the domain's autostart on again: %s", virGetLastErrorMessage());
    if (st->journaled)
        vmrpRestoreJournalRemove(st->point->domain_uuid);
}

/* In place: the original cannot autostart a partial disk. */
static bool
restoreAutostartOff(restoreState *st, GError **error)
{
    int autostart = 0;

    if (!st->orig || virDomainGetAutostart(st->orig, &autostart) < 0 || !autostart)
        return true;
    st->orig_autostart = true;
    if (!restoreJournal(st, "set-aside", error))
        return false;
    if (virDomainSetAutostart(st->orig, 0) < 0) {
        vmrpErrorFromLibvirt(error, "cannot turn the domain's autostart off for the restore");
        return false;
    }
    return true;
}

static bool
restoreRunSteps(restoreState *st, GError **error)
{
    GCancellable *cancel = st->opts->copy.cancel;
    g_autofree char *xml = NULL;
    size_t i;

    if (!vmrpFirmwareRestorePlan(&st->fw, st->point, st->domxml, st->orig_xml,
                                 st->opts->in_place, st->name, error))
        return false;
    if (!(xml = st->opts->in_place ? restoreFormatInPlaceXML(st, error)
                                   : restoreFormatCloneXML(st, error)))
        return false;
    if (st->opts->in_place) {
        if (!restoreJournal(st, "set-aside", error) ||
            !restoreAutostartOff(st, error) ||
            !restoreStopOriginal(st, error) ||
            !restoreSetAside(st, error) ||
            !vmrpFaultCheck("restore-after-set-aside", error))
            return false;
    }
    /* an abort (job-abort, Ctrl-C) counts until the domain is defined */
    if (g_cancellable_set_error_if_cancelled(cancel, error) ||
        !restoreMakeDisks(st, error) ||
        !vmrpFirmwareRestoreWriteNvram(&st->fw, st->point, st->dir, error) ||
        g_cancellable_set_error_if_cancelled(cancel, error))
        return false;
    if (st->opts->in_place && !restoreDeleteCheckpoints(st, error))
        return false;
    if (!restoreDefineAndStart(st, xml, error))
        return false;
    if (st->journaled && !restoreJournal(st, "defined", error))
        return false;
    if (st->orig_autostart && virDomainSetAutostart(st->dom, 1) < 0)
        g_warning("cannot turn the domain's autostart on again: %s",
                  virGetLastErrorMessage());

    /* done: the original's disks are no longer needed */
    for (i = 0; i < st->disks->len; i++) {
        restoreDisk *rd = &g_array_index(st->disks, restoreDisk, i);
        if (rd->set_aside && unlink(rd->aside) < 0)
            g_warning("cannot remove the set-aside disk %s: %s", rd->aside, g_strerror(errno));
        rd->set_aside = false;
    }
    vmrpFirmwareRestoreDone(&st->fw);
    if (st->journaled)
        vmrpRestoreJournalRemove(st->point->domain_uuid);
    st->journaled = false;
    return true;
}

vmrpRestoreResult *
vmrpRestoreRun(virConnectPtr conn,
               vmrpRepo *repo,
               const char *id,
               const vmrpRestoreOptions *opts,
               GError **error)
{
    restoreState st = { 0 };
    vmrpRestoreResult *ret = NULL;
    size_t i;

    st.conn = conn;
    st.repo = repo;
    st.opts = opts;
    st.id = id;
    st.lock = -1;
    st.disks = g_array_new(FALSE, TRUE, sizeof(restoreDisk));
    g_array_set_clear_func(st.disks, (GDestroyNotify)restoreDiskClear);
    st.res = g_new0(vmrpRestoreResult, 1);
    st.res->disks = g_ptr_array_new_with_free_func(g_free);
    st.res->excluded = g_ptr_array_new_with_free_func(g_free);
    st.res->kept = g_ptr_array_new_with_free_func(g_free);

    /* every check before anything changes */
    if (opts->in_place && opts->name) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "a restore in place keeps the domain's name: --name restores beside it");
        goto cleanup;
    }
    if (!restoreLoad(&st, error))
        goto cleanup;
    if (opts->pool && st.point->files && st.point->files->len) {
        g_autofree char *host = vmrpRemoteHost(conn);

        if (host) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "restore point %s holds UEFI variables or vTPM state, which a "
                        "restore to another host (%s) does not carry yet: restore it on "
                        "that host", id, host);
            goto cleanup;
        }
    }
    if (opts->in_place) {
        /* the domain keeps its name: a domain.xml that says otherwise is damaged */
        if (g_strcmp0(vmrpDomainXmlGetName(st.domxml), st.point->domain_name) != 0) {
            g_autofree char *shown = g_strescape(vmrpDomainXmlGetName(st.domxml), NULL);
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                        "restore point %s is damaged: its domain.xml names domain '%s', "
                        "not %s", id, shown, st.point->domain_name);
            goto cleanup;
        }
        st.name = g_strdup(vmrpDomainXmlGetName(st.domxml));
    } else if (opts->name) {
        if (!vmrpNameCheckDomain(opts->name, error))
            goto cleanup;
        st.name = g_strdup(opts->name);
    } else if (!(st.name = restoreGenerateName(conn, vmrpDomainXmlGetName(st.domxml), error))) {
        goto cleanup;
    }
    if (!opts->in_place && domainExists(conn, st.name)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_EXISTS,
                    "domain '%s' already exists: choose another --name", st.name);
        goto cleanup;
    }
    if (opts->pool && (opts->in_place || opts->instant || opts->disk_dir)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "--pool makes new volumes for a domain beside the original: not with an "
                    "in-place, --instant or --disk-dir restore");
        goto cleanup;
    }
    if (!opts->in_place && opts->disk_dir && !g_file_test(opts->disk_dir, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND,
                    "disk folder %s does not exist", opts->disk_dir);
        goto cleanup;
    }
    if (!opts->in_place && !restoreLoadLiveDisks(&st, NULL, error))
        goto cleanup;
    if (!restorePlanDisks(&st, error))
        goto cleanup;
    /* rp-create, rp-delete or another restore of the domain must wait */
    if ((st.lock = vmrpRepoLockCollection(repo, st.point->domain_uuid, error)) < 0 ||
        !vmrpRestoreRecover(conn, st.point->domain_uuid, error))
        goto cleanup;
    if (opts->in_place && (!restoreInspectOriginal(&st, error) || !restoreMatchLive(&st, error)))
        goto cleanup;

    /* from here on, every failure undoes what was done */
    if (opts->copy.started)
        opts->copy.started(opts->copy.opaque);
    if (!restoreRunSteps(&st, error)) {
        restoreRollback(&st);
        goto cleanup;
    }

    st.res->name = g_strdup(virDomainGetName(st.dom));
    st.res->uuid = g_strdup(st.uuid);
    st.res->in_place = opts->in_place;
    st.res->instant = opts->instant;
    st.res->running = st.started;
    for (i = 0; i < st.disks->len; i++) {
        restoreDisk *rd = &g_array_index(st.disks, restoreDisk, i);
        g_ptr_array_add(st.res->disks, g_strdup_printf("%s=%s", rd->target, rd->dest));
    }
    ret = g_steal_pointer(&st.res);

 cleanup:
    restoreStateClear(&st);
    return ret;
}

char *
vmrpRestoreFinalize(virConnectPtr conn,
                    vmrpRepo *repo,
                    const char *name_or_uuid,
                    const vmrpDiskCopyOptions *copy,
                    GError **error)
{
    virDomainPtr dom = NULL;
    g_autofree char *collection = NULL;
    char uuid[VIR_UUID_STRING_BUFLEN];
    int lock = -1;
    bool ok;

    if (g_uuid_string_is_valid(name_or_uuid))
        dom = virDomainLookupByUUIDString(conn, name_or_uuid);
    if (!dom)
        dom = virDomainLookupByName(conn, name_or_uuid);
    if (dom) {
        if (virDomainGetUUIDString(dom, uuid) < 0) {
            vmrpErrorFromLibvirt(error, "cannot read the domain's uuid");
            virDomainFree(dom);
            return NULL;
        }
    } else if (g_uuid_string_is_valid(name_or_uuid)) {
        /* the domain is gone: its record only is released */
        g_strlcpy(uuid, name_or_uuid, sizeof(uuid));
    } else {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND,
                    "no domain '%s' (give the uuid of a domain that is gone)", name_or_uuid);
        return NULL;
    }
    if (!(collection = vmrpInstantGetCollection(repo, uuid))) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND,
                    "domain %s does not run on a restore point (no instant restore in %s)",
                    name_or_uuid, vmrpRepoGetPath(repo));
        if (dom)
            virDomainFree(dom);
        return NULL;
    }
    if ((lock = vmrpRepoLockCollection(repo, collection, error)) < 0) {
        if (dom)
            virDomainFree(dom);
        return NULL;
    }
    if (copy && copy->started)
        copy->started(copy->opaque);
    ok = vmrpInstantFinalize(dom, repo, uuid, copy, error);
    close(lock);
    if (dom)
        virDomainFree(dom);
    return ok ? g_strdup(uuid) : NULL;
}
