/*
 * vmrp-checkpoint.h: what libvirt says of a checkpoint's bitmaps
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <libvirt/libvirt.h>

/*
 * The targets of the disks of checkpoint @name whose bitmap QEMU holds,
 * present and consistent, through the public checkpoint XML with sizes
 * (VIR_DOMAIN_CHECKPOINT_XML_SIZE), not a monitor query.  The domain must
 * run.  A checkpoint libvirt does not know fails with VMRP_ERROR_NOT_FOUND.
 */
GPtrArray *vmrpCheckpointSoundBitmaps(virDomainPtr dom, const char *name, GError **error);
