/*
 * vmrp-volume.c: disks that are libvirt storage volumes
 *
 * libvirt's live domain XML keeps <source pool='P' volume='V'/> for such a
 * disk; the path QEMU opens is the volume's, which only the pool knows.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <libvirt/virterror.h>

#include "vmrp-volume.h"
#include "vmrp-domxml.h"
#include "vmrp-error.h"

static bool
volumeResolve(virConnectPtr conn, vmrpDomainDisk *disk, GError **error)
{
    virStoragePoolPtr pool = NULL;
    virStorageVolPtr vol = NULL;
    virStorageVolInfo info;
    char *path = NULL;
    bool ok = false;

    if (!disk->pool || !disk->volume) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_INVALID,
                    "disk %s is a storage volume without pool or volume name",
                    disk->target ? disk->target : "?");
        return false;
    }
    if (!(pool = virStoragePoolLookupByName(conn, disk->pool)) ||
        !(vol = virStorageVolLookupByName(pool, disk->volume)) ||
        virStorageVolGetInfo(vol, &info) < 0 ||
        ((info.type == VIR_STORAGE_VOL_FILE || info.type == VIR_STORAGE_VOL_BLOCK) &&
         !(path = virStorageVolGetPath(vol)))) {
        vmrpErrorFromLibvirt(error, "cannot find the disk");
        g_prefix_error(error, "disk %s is volume %s of pool %s: ", disk->target,
                       disk->volume, disk->pool);
        goto cleanup;
    }
    if (path) {
        g_free(disk->type);
        disk->type = g_strdup(info.type == VIR_STORAGE_VOL_FILE ? "file" : "block");
        g_free(disk->source);
        disk->source = g_strdup(path);
    }
    ok = true;

 cleanup:
    free(path);
    if (vol)
        virStorageVolFree(vol);
    if (pool)
        virStoragePoolFree(pool);
    return ok;
}

bool
vmrpVolumeResolveDisks(virConnectPtr conn, GPtrArray *disks, GError **error)
{
    bool ok = true;
    size_t i;

    for (i = 0; i < disks->len; i++) {
        vmrpDomainDisk *disk = g_ptr_array_index(disks, i);

        if (g_strcmp0(disk->type, "volume") == 0)
            ok &= volumeResolve(conn, disk, ok ? error : NULL);
    }
    return ok;
}

bool
vmrpVolumeCheckFree(virConnectPtr conn, const char *pool, const char *name, GError **error)
{
    virStoragePoolPtr p = virStoragePoolLookupByName(conn, pool);
    virStorageVolPtr vol = NULL;
    bool ok = false;

    if (!p || virStoragePoolIsActive(p) != 1) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_NOT_FOUND,
                    "no active storage pool '%s' (virsh pool-list)", pool);
        goto cleanup;
    }
    if ((vol = virStorageVolLookupByName(p, name))) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_EXISTS,
                    "storage pool %s already has a volume %s", pool, name);
        goto cleanup;
    }
    ok = true;

 cleanup:
    if (vol)
        virStorageVolFree(vol);
    if (p)
        virStoragePoolFree(p);
    return ok;
}

/* virStreamSparseSendAll's callbacks over a local file descriptor */
static int
volumeRead(virStreamPtr st G_GNUC_UNUSED, char *data, size_t nbytes, void *opaque)
{
    return read(*(int *)opaque, data, nbytes);
}

static int
volumeHole(virStreamPtr st G_GNUC_UNUSED, int *in_data, long long *length, void *opaque)
{
    int fd = *(int *)opaque;
    off_t cur = lseek(fd, 0, SEEK_CUR);
    off_t data, hole;

    if (cur < 0)
        return -1;
    data = lseek(fd, cur, SEEK_DATA);
    if (data < 0 && errno == ENXIO) {
        /* a hole up to the end of the file */
        off_t end = lseek(fd, 0, SEEK_END);
        *in_data = 0;
        *length = end - cur;
        return lseek(fd, cur, SEEK_SET) < 0 ? -1 : 0;
    }
    if (data < 0)
        return -1;
    if (data > cur) {
        *in_data = 0;
        *length = data - cur;
    } else {
        if ((hole = lseek(fd, cur, SEEK_HOLE)) < 0)
            return -1;
        *in_data = 1;
        *length = hole - cur;
    }
    return lseek(fd, cur, SEEK_SET) < 0 ? -1 : 0;
}

static int
volumeSkip(virStreamPtr st G_GNUC_UNUSED, long long length, void *opaque)
{
    return lseek(*(int *)opaque, length, SEEK_CUR) < 0 ? -1 : 0;
}

char *
vmrpVolumeUpload(virConnectPtr conn, const char *pool, const char *name, const char *format,
                 uint64_t capacity, const char *file, GError **error)
{
    g_autofree char *ename = g_markup_escape_text(name, -1);
    g_autofree char *xml = g_strdup_printf("<volume><name>%s</name>"
                                           "<capacity unit='bytes'>%" G_GUINT64_FORMAT
                                           "</capacity><allocation>0</allocation>"
                                           "<target><format type='%s'/></target></volume>",
                                           ename, capacity, format);
    virStoragePoolPtr p = NULL;
    virStorageVolPtr vol = NULL;
    virStreamPtr stream = NULL;
    char *path = NULL;
    char *ret = NULL;
    int fd = -1;

    if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0) {
        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot open %s: %s", file,
                    g_strerror(errno));
        return NULL;
    }
    if (!(p = virStoragePoolLookupByName(conn, pool)) ||
        !(vol = virStorageVolCreateXML(p, xml, 0))) {
        vmrpErrorFromLibvirt(error, "cannot create the volume");
        g_prefix_error(error, "storage pool %s, volume %s: ", pool, name);
        goto cleanup;
    }
    if (!(stream = virStreamNew(conn, 0)) ||
        virStorageVolUpload(vol, stream, 0, 0, VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM) < 0 ||
        virStreamSparseSendAll(stream, volumeRead, volumeHole, volumeSkip, &fd) < 0 ||
        virStreamFinish(stream) < 0 ||
        !(path = virStorageVolGetPath(vol))) {
        vmrpErrorFromLibvirt(error, "cannot upload the disk");
        g_prefix_error(error, "storage pool %s, volume %s: ", pool, name);
        if (stream)
            virStreamAbort(stream);
        virStorageVolDelete(vol, 0);
        goto cleanup;
    }
    ret = g_strdup(path);

 cleanup:
    free(path);
    if (stream)
        virStreamFree(stream);
    if (vol)
        virStorageVolFree(vol);
    if (p)
        virStoragePoolFree(p);
    close(fd);
    return ret;
}

void
vmrpVolumeDelete(virConnectPtr conn, const char *pool, const char *name)
{
    virStoragePoolPtr p = virStoragePoolLookupByName(conn, pool);
    virStorageVolPtr vol = p ? virStorageVolLookupByName(p, name) : NULL;

    if (vol && virStorageVolDelete(vol, 0) < 0)
        g_warning("cannot delete volume %s of pool %s: %s", name, pool,
                  virGetLastErrorMessage());
    if (vol)
        virStorageVolFree(vol);
    if (p)
        virStoragePoolFree(p);
}
