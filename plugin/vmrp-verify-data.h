/*
 * vmrp-verify-data.h: the digest of a stored image's data extents, read
 * from the qcow2 file itself
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

/* The digest (nbd/vmrp-digest.h) of @extents of the qcow2 @image as the
 * guest sees them.  Where `qemu-img map` shows those extents held by the
 * image's own layer (data clusters, zero clusters), they are read from the
 * file at the offsets it gives, at the disk's speed; anything else there
 * (data in a backing file, compressed clusters) is read through qemu-nbd
 * instead (vmrpNbdDigestImage), which is always right but slower.  The image's
 * header was checked first: no external data file. */
char *vmrpVerifyDataDigest(const char *image, GArray *extents, GCancellable *cancel,
                           GError **error);
