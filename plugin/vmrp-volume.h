/*
 * vmrp-volume.h: disks that are libvirt storage volumes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <libvirt/libvirt.h>

/*
 * Resolves each <disk type='volume'> of @disks (vmrpDomainDisk, as
 * vmrpDomainXmlGetDisks gives them) through its storage pool: a file or
 * block volume becomes a disk of that type with the volume's path as
 * source (pool and volume stay), so that it is backed up and restored like
 * any local disk.  A network volume (rbd, iscsi-direct...) stays a volume
 * without source, like a network disk.  A volume libvirt cannot look up
 * (pool gone or inactive) stays unresolved: false, the first one named in
 * @error; every other disk is resolved all the same.
 */
bool vmrpVolumeResolveDisks(virConnectPtr conn, GPtrArray *disks, GError **error);

/* Fails (EXISTS) when pool @pool has a volume @name, or (NOT_FOUND) when
 * there is no such active pool. */
bool vmrpVolumeCheckFree(virConnectPtr conn, const char *pool, const char *name,
                         GError **error);

/*
 * Creates volume @name (@format: qcow2 or raw, @capacity bytes) in @pool
 * and fills it with the local file @file, its holes sent as holes
 * (virStorageVolUpload with a sparse stream): on this host or the one @conn
 * is to.  Returns the volume's path there.  On failure the volume is
 * deleted again.
 */
char *vmrpVolumeUpload(virConnectPtr conn, const char *pool, const char *name,
                       const char *format, uint64_t capacity, const char *file,
                       GError **error);

/* Deletes volume @name of @pool; best effort (a rollback). */
void vmrpVolumeDelete(virConnectPtr conn, const char *pool, const char *name);
