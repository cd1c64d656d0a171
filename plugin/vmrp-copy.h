/*
 * vmrp-copy.h: rp-copy and collection-sync: points copied to another
 * repository (vmrp-dest.h) as the same qcow2 chains
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <gio/gio.h>

#include "vmrp-repo.h"

/* Bytes of point @id copied so far, of @total (called from the copying thread). */
typedef void (*vmrpCopyProgressFunc)(const char *id, uint64_t done, uint64_t total,
                                     void *opaque);

/* The input is checked (the destination open and locked, the points found)
 * and the copy begins: the @n points @ids to copy, oldest first, and the
 * data bytes of each. */
typedef void (*vmrpCopyStartedFunc)(const char *const *ids, const uint64_t *bytes, guint n,
                                    void *opaque);

typedef struct {
    GCancellable *cancel;           /* nullable */
    vmrpCopyProgressFunc progress;  /* nullable */
    void *opaque;
    uint64_t bandwidth;             /* bytes per second; 0: no limit */
    vmrpCopyStartedFunc started;    /* nullable */
} vmrpCopyOptions;

typedef struct {
    GPtrArray *copied;    /* ids copied, oldest first */
    GPtrArray *present;   /* ids that were at the destination already */
    GPtrArray *skipped;   /* "ID: why" (sync only: damaged or failed at the source) */
    uint64_t bytes;       /* data bytes copied */
} vmrpCopyResult;

void vmrpCopyResultFree(vmrpCopyResult *res);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpCopyResult, vmrpCopyResultFree)

/* Copies point @id, and the points it builds on that are not at @dest yet,
 * oldest first, into the repository @dest (a path; made when missing).
 * Each point is written in .creating-<id> at the destination, checked
 * there against its digests, and only then renamed into place. */
vmrpCopyResult *vmrpCopyPoint(vmrpRepo *repo, const char *id, const char *dest,
                              const vmrpCopyOptions *opts, GError **error);

/* Copies every point of the collection of @domain (a name or uuid) that is
 * not at @dest yet, oldest first. */
vmrpCopyResult *vmrpCopySync(vmrpRepo *repo, const char *domain, const char *dest,
                             const vmrpCopyOptions *opts, GError **error);

/* Whether @a and @b are the same point, as taken: the same domain, time,
 * checkpoint and images with the same data digests (what a merge at a
 * destination changes does not count). */
bool vmrpCopySameOrigin(const vmrpPoint *a, const vmrpPoint *b);
