/*
 * vmrp-nbd-digest.h: the digest of an image's data extents, read again
 * through a read-only qemu-nbd (rp-verify)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <gio/gio.h>

#include "vmrp-digest.h"

/* Reads the extents @extents (GArray of vmrpDigestExtent, sorted) of the
 * image @image of @format ("qcow2" or "raw") as the guest sees them, through
 * qemu-nbd -r (with its backing chain, as the header names it), and returns
 * their digest as vmrp-digest.h defines it.  @cancel is nullable. */
char *vmrpNbdDigestImage(const char *image, const char *format, GArray *extents,
                         vmrpDigestAlgorithm algorithm, GCancellable *cancel,
                         GError **error);
