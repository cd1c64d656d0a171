/*
 * vmrp-verify-data.h: the digest of a stored image's data extents, read
 * from the qcow2 file itself
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdint.h>
#include <gio/gio.h>

#include "vmrp-digest.h"

/* The digest (nbd/vmrp-digest.h) of @extents of the qcow2 @image as the
 * guest sees them.  Where the image's own layer holds those extents (data
 * clusters, zero clusters: nbd/vmrp-qcow2-read.h), they are read from the
 * file at the offsets its L2 tables give, at the disk's speed; anything else there
 * (data in a backing file, compressed clusters) is read through qemu-nbd
 * instead (vmrpNbdDigestImage), which is always right but slower.  The image's
 * header was checked first: no external data file. */
char *vmrpVerifyDataDigest(const char *image, GArray *extents, vmrpDigestAlgorithm algorithm,
                           GCancellable *cancel, GError **error);

/* The same digest of a copy of @source at @image, taken while the copy is
 * written: a thread reads each piece once the copy holds it
 * (vmrpDataFollowWritten, from the copying thread), at the offsets the
 * source's L2 tables give; once the copy is whole (before its fsync) it
 * checks that the copy's map is the same, then calls @check (nullable) on it,
 * which returns the problem it finds or NULL. */
typedef struct _vmrpDataFollow vmrpDataFollow;
typedef char *(*vmrpDataFollowCheckFunc)(const char *image, void *opaque);

vmrpDataFollow *vmrpDataFollowStart(const char *source, const char *image, GArray *extents,
                                    vmrpDigestAlgorithm algorithm,
                                    vmrpDataFollowCheckFunc check, void *check_opaque,
                                    GCancellable *cancel);
/* The copy holds all its data below @upto (never less than before); it is
 * whole at @source's size. */
void vmrpDataFollowWritten(vmrpDataFollow *f, uint64_t upto);
/* Once the copy is whole: its digest, or NULL with @check's problem in
 * @ret_problem.  Where the source's own layer did not hold the extents, or
 * the copy's map is not the source's, the copy is read again now
 * (vmrpVerifyDataDigest).  Errors: the copy cannot be read, cancellation. */
char *vmrpDataFollowFinish(vmrpDataFollow *f, char **ret_problem, GError **error);
void vmrpDataFollowFree(vmrpDataFollow *f);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpDataFollow, vmrpDataFollowFree)
