/*
 * vmrp-volume.h: disks that are libvirt storage volumes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
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
