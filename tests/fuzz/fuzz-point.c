/*
 * fuzz-point.c: the point manifest (point.json) reader, vmrpPointFromJSON
 *
 * A manifest that is accepted must be safe to use in paths (ids, targets,
 * image names, backing paths), and must survive a round trip through
 * vmrpPointToJSON unchanged.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "vmrp-fuzz.h"
#include "vmrp-point.h"
#include "vmrp-names.h"

int
LLVMFuzzerInitialize(int *argc G_GNUC_UNUSED, char ***argv G_GNUC_UNUSED)
{
    return 0;
}

static void
checkDisk(const vmrpPointDisk *disk)
{
    g_autofree char *parent = vmrpPointDiskBackingPoint(disk);

    VMRP_FUZZ_ASSERT(vmrpNameCheckTarget(disk->target, NULL));
    VMRP_FUZZ_ASSERT(disk->image || disk->excluded);
    if (disk->image) {
        /* joined to the point's folder: must stay inside it */
        VMRP_FUZZ_ASSERT(!disk->excluded);
        VMRP_FUZZ_ASSERT(*disk->image && disk->image[0] != '.');
        VMRP_FUZZ_ASSERT(!strchr(disk->image, '/'));
    }
    if (disk->backing) {
        VMRP_FUZZ_ASSERT(parent && vmrpNameCheckPoint(parent, NULL));
        VMRP_FUZZ_ASSERT(g_str_has_prefix(disk->backing, "../"));
        VMRP_FUZZ_ASSERT(!strstr(disk->backing + 3, "/../") &&
                         !g_str_has_suffix(disk->backing, "/.."));
    }
    (void)vmrpPointDiskPercent(disk);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *text = g_strndup((const char *)data, size);
    g_autoptr(GError) error = NULL;
    g_autoptr(vmrpPoint) point = vmrpPointFromJSON(text, &error);
    g_autoptr(vmrpPoint) back = NULL;
    g_autofree char *json = NULL;
    g_autofree char *json2 = NULL;
    size_t i;

    if (!point) {
        vmrpFuzzCheckError(error);
        return 0;
    }
    VMRP_FUZZ_ASSERT(error == NULL);
    VMRP_FUZZ_ASSERT(vmrpNameCheckPoint(point->id, NULL));
    VMRP_FUZZ_ASSERT(!point->parent || vmrpNameCheckPoint(point->parent, NULL));
    VMRP_FUZZ_ASSERT(g_uuid_string_is_valid(point->domain_uuid));
    VMRP_FUZZ_ASSERT(point->state < VMRP_POINT_STATE_LAST);
    VMRP_FUZZ_ASSERT(point->requested < VMRP_CONSISTENCY_LAST);
    VMRP_FUZZ_ASSERT(point->achieved < VMRP_CONSISTENCY_LAST);
    for (i = 0; i < point->disks->len; i++)
        checkDisk(g_ptr_array_index(point->disks, i));
    (void)vmrpPointBytes(point);

    /* what vmrp writes, it reads back as it was */
    json = vmrpPointToJSON(point);
    back = vmrpPointFromJSON(json, &error);
    if (!back)
        fprintf(stderr, "round trip refused: %s\n%s", error->message, json);
    VMRP_FUZZ_ASSERT(back != NULL);
    json2 = vmrpPointToJSON(back);
    VMRP_FUZZ_ASSERT(g_str_equal(json, json2));
    return 0;
}
