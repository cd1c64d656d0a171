/*
 * vmrp-extents.h: a map of a disk's extents (what must be copied, what
 * reads as zeroes, what is clean since a checkpoint)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

typedef enum {
    VMRP_EXTENT_DATA,   /* must be read and written */
    VMRP_EXTENT_ZERO,   /* reads as zeroes */
    VMRP_EXTENT_CLEAN,  /* not dirty since the bitmap's checkpoint: nothing to do */
} vmrpExtentKind;

typedef struct {
    uint64_t offset;
    uint64_t length;
    vmrpExtentKind kind;
} vmrpExtent;

typedef struct _vmrpExtentMap vmrpExtentMap;
struct _vmrpExtentMap {
    uint64_t size;
    GArray *extents;  /* of vmrpExtent, sorted, contiguous, covering [0,size) */
};

/* "data", "zero", "clean". */
const char *vmrpExtentKindToString(vmrpExtentKind kind);

/* An empty map of a disk of @size bytes; fill it with vmrpExtentMapAppend. */
vmrpExtentMap *vmrpExtentMapNew(uint64_t size);
void vmrpExtentMapFree(vmrpExtentMap *map);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpExtentMap, vmrpExtentMapFree);

/* Appends [offset, offset+length) of @kind. @offset must be the end of the
 * map so far (vmrpExtentMapEnd) and the extent must not pass map->size:
 * otherwise nothing is appended and false is returned (a programming error,
 * also logged as a critical). A zero @length is a no-op. Coalesces with the
 * previous extent when it is of the same kind. */
bool vmrpExtentMapAppend(vmrpExtentMap *map,
                         uint64_t offset,
                         uint64_t length,
                         vmrpExtentKind kind);

/* The end of the extents appended so far. */
uint64_t vmrpExtentMapEnd(const vmrpExtentMap *map);

/* True when the extents cover [0, size). */
bool vmrpExtentMapIsComplete(const vmrpExtentMap *map);

/* Number of extents, and the i-th one. */
guint vmrpExtentMapCount(const vmrpExtentMap *map);
const vmrpExtent *vmrpExtentMapGet(const vmrpExtentMap *map, guint i);

/* Total bytes of extents of @kind. */
uint64_t vmrpExtentMapBytes(const vmrpExtentMap *map, vmrpExtentKind kind);
