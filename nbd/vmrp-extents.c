/*
 * vmrp-extents.c: a map of a disk's extents
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "vmrp-extents.h"

const char *
vmrpExtentKindToString(vmrpExtentKind kind)
{
    switch (kind) {
    case VMRP_EXTENT_DATA:
        return "data";
    case VMRP_EXTENT_ZERO:
        return "zero";
    case VMRP_EXTENT_CLEAN:
        return "clean";
    }
    return "unknown";
}


vmrpExtentMap *
vmrpExtentMapNew(uint64_t size)
{
    vmrpExtentMap *map = g_new0(vmrpExtentMap, 1);

    map->size = size;
    map->extents = g_array_new(FALSE, FALSE, sizeof(vmrpExtent));
    return map;
}


void
vmrpExtentMapFree(vmrpExtentMap *map)
{
    if (!map)
        return;
    g_array_unref(map->extents);
    g_free(map);
}


uint64_t
vmrpExtentMapEnd(const vmrpExtentMap *map)
{
    const vmrpExtent *last;

    if (map->extents->len == 0)
        return 0;
    last = &g_array_index(map->extents, vmrpExtent, map->extents->len - 1);
    return last->offset + last->length;
}


bool
vmrpExtentMapAppend(vmrpExtentMap *map,
                    uint64_t offset,
                    uint64_t length,
                    vmrpExtentKind kind)
{
    vmrpExtent e = { offset, length, kind };
    vmrpExtent *last;

    g_return_val_if_fail(map != NULL, false);
    g_return_val_if_fail(offset == vmrpExtentMapEnd(map), false);
    g_return_val_if_fail(length <= map->size - offset, false);

    if (length == 0)
        return true;
    if (map->extents->len > 0) {
        last = &g_array_index(map->extents, vmrpExtent, map->extents->len - 1);
        if (last->kind == kind) {
            last->length += length;
            return true;
        }
    }
    g_array_append_val(map->extents, e);
    return true;
}


bool
vmrpExtentMapIsComplete(const vmrpExtentMap *map)
{
    return vmrpExtentMapEnd(map) == map->size;
}


guint
vmrpExtentMapCount(const vmrpExtentMap *map)
{
    return map->extents->len;
}


const vmrpExtent *
vmrpExtentMapGet(const vmrpExtentMap *map, guint i)
{
    g_return_val_if_fail(i < map->extents->len, NULL);
    return &g_array_index(map->extents, vmrpExtent, i);
}


uint64_t
vmrpExtentMapBytes(const vmrpExtentMap *map, vmrpExtentKind kind)
{
    uint64_t total = 0;
    guint i;

    for (i = 0; i < map->extents->len; i++) {
        const vmrpExtent *e = &g_array_index(map->extents, vmrpExtent, i);

        if (e->kind == kind)
            total += e->length;
    }
    return total;
}
