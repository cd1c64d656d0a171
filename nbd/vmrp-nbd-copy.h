/*
 * vmrp-nbd-copy.h: copies a source's extents into a qcow2 or raw image
 * through qemu-nbd, with pipelined reads and writes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <gio/gio.h>

#include "vmrp-digest.h"
#include "vmrp-extents.h"
#include "vmrp-nbd-source.h"

/* Called from the copying thread as bytes are written: @done grows
 * monotonically and ends at @total. */
typedef void (*vmrpNbdProgressFunc)(uint64_t done, uint64_t total, void *opaque);

typedef struct {
    bool write_zeroes;        /* write ZERO extents as zeroes (the target has a
                               * backing file); else skip them */
    unsigned int max_requests; /* requests in flight, 0 = 16 */
    size_t request_size;      /* bytes per read/write, 0 = 256 KiB; capped by
                               * the servers' maximum request size */
    vmrpNbdProgressFunc progress; /* nullable */
    void *opaque;             /* for progress */
    GCancellable *cancel;     /* nullable: cancelling stops the copy with
                               * G_IO_ERROR_CANCELLED */
    vmrpDigest *digest;       /* nullable: the DATA bytes read are added to it
                               * in offset order (vmrp-digest.h) */
} vmrpNbdCopyOptions;

/* Copies the DATA extents of @map (and its ZERO extents as zero writes when
 * opts->write_zeroes) from @src into the existing image @image_path of
 * @image_format ("qcow2" or "raw"), which qemu-nbd opens for writing. CLEAN
 * extents are left alone. The image is flushed before success is returned.
 * @opts may be NULL (defaults). On success *ret_bytes_copied (nullable) is
 * the number of DATA bytes read and written (zeroed bytes not included).
 * Any error stops the copy after the requests in flight have completed;
 * the image's content is then undefined. */
bool vmrpNbdCopyToImage(vmrpNbdSource *src,
                        const vmrpExtentMap *map,
                        const char *image_path,
                        const char *image_format,
                        const vmrpNbdCopyOptions *opts,
                        uint64_t *ret_bytes_copied,
                        GError **error);

/* Copies @map from @src into a new qcow2 image at @image_path (which must
 * not exist), written by vmrp itself (vmrp-qcow2.h) rather than through
 * qemu-nbd: backed by @backing (nullable; relative to the image's folder,
 * qcow2), over which ZERO extents read as zeroes.  Whole clusters are
 * read, so the digest's extents and *ret_bytes_copied are the clusters
 * written.  opts->write_zeroes is ignored.  On failure the caller removes
 * the file. */
bool vmrpNbdCopyToNewQcow2(vmrpNbdSource *src,
                           const vmrpExtentMap *map,
                           const char *image_path,
                           const char *backing,
                           const vmrpNbdCopyOptions *opts,
                           uint64_t *ret_bytes_copied,
                           GError **error);
