/*
 * vmrp-restore.c: restoring a restore point as a new domain
 *
 * The steps, undone by restoreRollback() when a later one fails:
 *   checks (point, XML, name, files) -> disks copied -> domain defined -> started
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <libvirt/libvirt.h>

#include "vmrp-restore.h"
#include "vmrp-domxml.h"
#include "vmrp-error.h"
#include "vmrp-file.h"
#include "vmrp-names.h"
#include "vmrp-run.h"

#define DOMAIN_XML_MAX (16 * 1024 * 1024)

typedef struct {
    char *target;
    char *image;       /* the point's image */
    char *dest;        /* the new disk file */
    char *format;
    bool created;
} restoreDisk;

static void
restoreDiskClear(restoreDisk *rd)
{
    g_free(rd->target);
    g_free(rd->image);
    g_free(rd->dest);
    g_free(rd->format);
}

void
vmrpRestoreResultFree(vmrpRestoreResult *res)
{
    if (!res)
        return;
    g_free(res->name);
    g_free(res->uuid);
    if (res->disks)
        g_ptr_array_unref(res->disks);
    if (res->excluded)
        g_ptr_array_unref(res->excluded);
    g_free(res);
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
    g_autofree char *base = g_strndup(original, 40);
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

static void
restoreRollback(GArray *disks, virDomainPtr defined)
{
    size_t i;

    if (defined) {
        if (virDomainIsActive(defined) == 1)
            virDomainDestroy(defined);
        virDomainUndefineFlags(defined, VIR_DOMAIN_UNDEFINE_NVRAM |
                                        VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA);
    }
    for (i = 0; i < disks->len; i++) {
        restoreDisk *rd = &g_array_index(disks, restoreDisk, i);
        if (rd->created)
            unlink(rd->dest);
    }
}

static bool
restoreCopyDisk(restoreDisk *rd, const vmrpRestoreOptions *opts, uint64_t size, GError **error)
{
    const char *argv[] = { "qemu-img", "convert", "-q", "-f", "qcow2", "-O", rd->format,
                           "-W", "-m", "8", rd->image, rd->dest, NULL };

    if (opts->progress)
        opts->progress(rd->target, 0, size, opts->opaque);
    rd->created = true;
    if (!vmrpRun(argv, NULL, error)) {
        g_prefix_error(error, "cannot restore disk %s: ", rd->target);
        return false;
    }
    if (!vmrpFileSync(rd->dest, error))
        return false;
    if (opts->progress)
        opts->progress(rd->target, size, size, opts->opaque);
    return true;
}

vmrpRestoreResult *
vmrpRestoreNew(virConnectPtr conn,
               vmrpRepo *repo,
               const char *id,
               const vmrpRestoreOptions *opts,
               GError **error)
{
    g_autoptr(vmrpPoint) point = NULL;
    g_autofree char *dir = NULL;
    g_autofree char *xml_path = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *new_xml = NULL;
    g_autofree char *name = NULL;
    g_autoptr(vmrpDomainXml) domxml = NULL;
    g_autoptr(GHashTable) sources = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GHashTable) formats = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GStrvBuilder) drop_builder = g_strv_builder_new();
    g_auto(GStrv) drop = NULL;
    g_autoptr(GArray) disks = g_array_new(FALSE, TRUE, sizeof(restoreDisk));
    g_autoptr(vmrpRestoreResult) res = g_new0(vmrpRestoreResult, 1);
    virDomainPtr dom = NULL;
    char uuid[VIR_UUID_STRING_BUFLEN];
    size_t i;

    g_array_set_clear_func(disks, (GDestroyNotify)restoreDiskClear);
    res->disks = g_ptr_array_new_with_free_func(g_free);
    res->excluded = g_ptr_array_new_with_free_func(g_free);

    /* every check before anything changes */
    if (!(point = vmrpRepoFindPoint(repo, id, &dir, error)))
        return NULL;
    if (point->state != VMRP_POINT_SUCCEEDED) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "restore point %s is %s, not restorable", id,
                    vmrpPointStateToString(point->state));
        return NULL;
    }
    xml_path = g_build_filename(dir, "domain.xml", NULL);
    if (!(xml = vmrpFileRead(xml_path, DOMAIN_XML_MAX, NULL, error)))
        return NULL;
    if (!(domxml = vmrpDomainXmlParse(xml, error))) {
        g_prefix_error(error, "%s: ", xml_path);
        return NULL;
    }

    if (opts->name) {
        if (!vmrpNameCheckDomain(opts->name, error))
            return NULL;
        name = g_strdup(opts->name);
    } else if (!(name = restoreGenerateName(conn, vmrpDomainXmlGetName(domxml), error))) {
        return NULL;
    }
    if (domainExists(conn, name)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_EXISTS,
                    "domain '%s' already exists: choose another --name", name);
        return NULL;
    }
    if (opts->disk_dir && !g_file_test(opts->disk_dir, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND,
                    "disk folder %s does not exist", opts->disk_dir);
        return NULL;
    }

    for (i = 0; i < point->disks->len; i++) {
        vmrpPointDisk *pdisk = g_ptr_array_index(point->disks, i);
        g_autofree char *folder = NULL;
        g_autofree char *file = NULL;
        restoreDisk rd = { 0 };

        if (pdisk->excluded) {
            g_strv_builder_add(drop_builder, pdisk->target);
            g_ptr_array_add(res->excluded, g_strdup(pdisk->target));
            continue;
        }
        rd.target = g_strdup(pdisk->target);
        rd.image = g_build_filename(dir, pdisk->image, NULL);
        rd.format = g_strdup(g_strcmp0(pdisk->format, "raw") == 0 ? "raw" : "qcow2");
        folder = opts->disk_dir ? g_strdup(opts->disk_dir)
                                : g_path_get_dirname(pdisk->source ? pdisk->source : "/");
        file = g_strdup_printf("%s-%s.%s", name, pdisk->target,
                               g_str_equal(rd.format, "raw") ? "img" : "qcow2");
        rd.dest = g_build_filename(folder, file, NULL);
        g_array_append_val(disks, rd);

        if (access(g_array_index(disks, restoreDisk, disks->len - 1).image, R_OK) < 0) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND,
                        "restore point %s is damaged: image of disk %s: %s",
                        id, pdisk->target, g_strerror(errno));
            return NULL;
        }
        if (g_file_test(rd.dest, G_FILE_TEST_EXISTS)) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_EXISTS,
                        "cannot restore disk %s: %s already exists", pdisk->target, rd.dest);
            return NULL;
        }
        if (access(folder, W_OK) < 0) {
            g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO,
                        "cannot restore disk %s into %s: %s",
                        pdisk->target, folder, g_strerror(errno));
            return NULL;
        }
    }
    for (i = 0; i < disks->len; i++) {
        restoreDisk *rd = &g_array_index(disks, restoreDisk, i);
        g_hash_table_insert(sources, rd->target, rd->dest);
        g_hash_table_insert(formats, rd->target, rd->format);
    }
    drop = g_strv_builder_end(drop_builder);
    if (!vmrpDomainXmlPrepareClone(domxml, name, sources, formats,
                                   (const char *const *)drop, error))
        return NULL;
    new_xml = vmrpDomainXmlFormat(domxml);

    /* from here on, every failure undoes what was done */
    for (i = 0; i < disks->len; i++) {
        restoreDisk *rd = &g_array_index(disks, restoreDisk, i);
        vmrpPointDisk *pdisk = vmrpPointFindDisk(point, rd->target);

        if (!restoreCopyDisk(rd, opts, pdisk->size, error))
            goto rollback;
    }
    if (!(dom = virDomainDefineXML(conn, new_xml))) {
        vmrpErrorFromLibvirt(error, "cannot define the restored domain");
        goto rollback;
    }
    if (opts->power_on && virDomainCreate(dom) < 0) {
        vmrpErrorFromLibvirt(error, "cannot start the restored domain");
        goto rollback;
    }
    if (virDomainGetUUIDString(dom, uuid) == 0)
        res->uuid = g_strdup(uuid);
    virDomainFree(dom);

    res->name = g_steal_pointer(&name);
    for (i = 0; i < disks->len; i++) {
        restoreDisk *rd = &g_array_index(disks, restoreDisk, i);
        g_ptr_array_add(res->disks, g_strdup_printf("%s=%s", rd->target, rd->dest));
    }
    return g_steal_pointer(&res);

 rollback:
    restoreRollback(disks, dom);
    if (dom)
        virDomainFree(dom);
    return NULL;
}
