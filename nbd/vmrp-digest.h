/*
 * vmrp-digest.h: digests of files and of the data a point's image holds
 *
 * Points record XXH3-128 digests ("xxh128", the same as xxhsum -H2); points
 * of vmrp before 2026-12-04 recorded SHA-256, which is still read.  Neither
 * is a signature: they find what changed by accident (a flipped bit, a
 * torn write), as a file system's checksums do, not what was changed on
 * purpose together with the manifest.
 *
 * An image's digest ("data_xxh128" or "data_sha256" in point.json) covers
 * the data extents vmrp wrote into it, in offset order: for each extent
 * (merged with the one before when they touch) the 8-byte big-endian
 * offset, then the bytes the guest sees in it.  The extents are stored
 * beside the digest, so that rp-verify reads exactly them again.  Extents
 * written as zeroes (an increment's discards) are not part of it.
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

typedef enum {
    VMRP_DIGEST_SHA256,
    VMRP_DIGEST_XXH128,
} vmrpDigestAlgorithm;

/* What new points record. */
#define VMRP_DIGEST_DEFAULT VMRP_DIGEST_XXH128

/* "sha256", "xxh128": the names in point.json */
const char *vmrpDigestAlgorithmName(vmrpDigestAlgorithm algorithm);
bool vmrpDigestAlgorithmParse(const char *name, vmrpDigestAlgorithm *ret);

typedef struct _vmrpDigest vmrpDigest;

/* A digest of data extents (see above).  Add pieces in offset order. */
vmrpDigest *vmrpDigestNew(vmrpDigestAlgorithm algorithm);
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

/* The digest (hex) of a whole file's bytes. */
char *vmrpDigestFile(const char *path, vmrpDigestAlgorithm algorithm, GError **error);

/* Whether @text is a digest of @algorithm in lowercase hex (64 digits for
 * SHA-256, 32 for XXH3-128). */
bool vmrpDigestIsHex(const char *text, vmrpDigestAlgorithm algorithm);
