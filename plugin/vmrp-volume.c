/*
 * vmrp-volume.c: disks that are libvirt storage volumes
 *
 * libvirt's live domain XML keeps <source pool='P' volume='V'/> for such a
 * disk; the path QEMU opens is the volume's, which only the pool knows.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
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
