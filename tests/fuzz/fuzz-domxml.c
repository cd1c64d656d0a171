/*
 * fuzz-domxml.c: the domain XML reader and the clone rewriter
 * (vmrpDomainXmlParse, GetDisks, PrepareClone, Format)
 *
 * The rewritten XML must parse again, carry the new name and no uuid, and
 * every disk given a new source must point at that source and nothing else:
 * a clone that wrote to the original's disk would destroy it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "vmrp-fuzz.h"
#include "vmrp-domxml.h"

#define CLONE_NAME "vmrp-fuzz-clone"

int
LLVMFuzzerInitialize(int *argc G_GNUC_UNUSED, char ***argv G_GNUC_UNUSED)
{
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *text = g_strndup((const char *)data, size);
    g_autoptr(GError) error = NULL;
    g_autoptr(vmrpDomainXml) dom = vmrpDomainXmlParse(text, &error);
    g_autoptr(vmrpDomainXml) again = NULL;
    g_autoptr(GPtrArray) disks = NULL;
    g_autoptr(GPtrArray) cloned = NULL;
    g_autoptr(GHashTable) sources = NULL;
    g_autoptr(GHashTable) formats = NULL;
    g_autoptr(GStrvBuilder) dropb = g_strv_builder_new();
    g_auto(GStrv) drop = NULL;
    g_autofree char *xml = NULL;
    size_t i;

    if (!dom) {
        vmrpFuzzCheckError(error);
        return 0;
    }
    VMRP_FUZZ_ASSERT(vmrpDomainXmlGetName(dom) && *vmrpDomainXmlGetName(dom));
    (void)vmrpDomainXmlGetUUID(dom);

    /* every other disk gets a new file, every third is dropped */
    sources = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    formats = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    disks = vmrpDomainXmlGetDisks(dom);
    for (i = 0; i < disks->len; i++) {
        const vmrpDomainDisk *disk = g_ptr_array_index(disks, i);

        VMRP_FUZZ_ASSERT(disk->device != NULL);
        (void)vmrpDomainDiskIsBackedUp(disk);
        if (!disk->target)
            continue;
        if (i % 3 == 2) {
            g_strv_builder_add(dropb, disk->target);
        } else if (i % 2 == 0 && !g_hash_table_contains(sources, disk->target)) {
            g_hash_table_insert(sources, g_strdup(disk->target),
                                g_strdup_printf("/var/lib/vmrp-fuzz/disk-%zu.qcow2", i));
            if (i % 4 == 0)
                g_hash_table_insert(formats, g_strdup(disk->target), g_strdup("qcow2"));
        }
    }
    drop = g_strv_builder_end(dropb);
    /* a target both replaced and dropped is dropped */
    for (i = 0; drop[i]; i++)
        g_hash_table_remove(sources, drop[i]);

    if (!vmrpDomainXmlPrepareClone(dom, CLONE_NAME, sources, formats,
                                   (const char *const *)drop, &error)) {
        vmrpFuzzCheckError(error);
        return 0;
    }
    VMRP_FUZZ_ASSERT(g_str_equal(vmrpDomainXmlGetName(dom), CLONE_NAME));
    VMRP_FUZZ_ASSERT(vmrpDomainXmlGetUUID(dom) == NULL);
    xml = vmrpDomainXmlFormat(dom);
    VMRP_FUZZ_ASSERT(xml != NULL);

    again = vmrpDomainXmlParse(xml, &error);
    if (!again)
        fprintf(stderr, "rewritten XML does not parse: %s\n%s\n", error->message, xml);
    VMRP_FUZZ_ASSERT(again != NULL);
    VMRP_FUZZ_ASSERT(g_str_equal(vmrpDomainXmlGetName(again), CLONE_NAME));
    VMRP_FUZZ_ASSERT(vmrpDomainXmlGetUUID(again) == NULL);

    cloned = vmrpDomainXmlGetDisks(again);
    for (i = 0; i < cloned->len; i++) {
        const vmrpDomainDisk *disk = g_ptr_array_index(cloned, i);
        const char *path;

        if (!disk->target)
            continue;
        VMRP_FUZZ_ASSERT(!g_strv_contains((const char *const *)drop, disk->target));
        if (!(path = g_hash_table_lookup(sources, disk->target)))
            continue;
        if (g_strcmp0(disk->source, path) != 0 || g_strcmp0(disk->type, "file") != 0)
            fprintf(stderr, "disk %s of the clone: %s %s, not file %s\n%s\n", disk->target,
                    disk->type, disk->source, path, xml);
        VMRP_FUZZ_ASSERT(g_strcmp0(disk->source, path) == 0);
        VMRP_FUZZ_ASSERT(g_strcmp0(disk->type, "file") == 0);
        if (g_hash_table_contains(formats, disk->target))
            VMRP_FUZZ_ASSERT(g_strcmp0(disk->format, "qcow2") == 0);
    }
    return 0;
}
