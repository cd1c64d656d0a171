/*
 * vmrp-digest.h: SHA-256 digests of files and of the data a point's image
 * holds
 *
 * An image's digest ("data_sha256" in point.json) covers the data extents
 * vmrp wrote into it, in offset order: for each extent (merged with the
 * one before when they touch) the 8-byte big-endian offset, then the bytes
 * the guest sees in it.  The extents are stored beside the digest, so that
 * rp-verify reads exactly them again, through qemu-nbd.  Extents written as
 * zeroes (an increment's discards) are not part of it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

typedef struct {
    uint64_t offset;
    uint64_t length;
} vmrpDigestExtent;

typedef struct _vmrpDigest vmrpDigest;

/* A SHA-256 of data extents (see above).  Add pieces in offset order. */
vmrpDigest *vmrpDigestNew(void);
void vmrpDigestFree(vmrpDigest *dg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpDigest, vmrpDigestFree)

/* Adds the bytes of [offset, offset + length): a piece that does not start
 * where the last one ended starts a new extent. */
void vmrpDigestAddPiece(vmrpDigest *dg, uint64_t offset, const void *buf, size_t length);

/* Plain bytes, no extents (a file's digest). */
void vmrpDigestAddBytes(vmrpDigest *dg, const void *buf, size_t length);

/* Ends the digest: its lowercase hex, and (nullable) the extents, a GArray
 * of vmrpDigestExtent.  The digest cannot be used afterwards. */
char *vmrpDigestFinish(vmrpDigest *dg, GArray **ret_extents);

/* The SHA-256 (hex) of a whole file's bytes. */
char *vmrpDigestFile(const char *path, GError **error);

/* Whether @text is 64 lowercase hex digits. */
bool vmrpDigestIsHex(const char *text);
