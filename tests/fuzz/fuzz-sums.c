/*
 * fuzz-sums.c: an ssh destination's SHA256SUMS as a server hands it over
 * (vmrpDestSumsParse, plugin/vmrp-dest-repo.h)
 *
 * What it accepts: names that stay inside the point's folder (relative, no
 * '..', not empty), each with 64 lowercase hex digits; written out again in
 * sha256sum's format it reads back the same.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "vmrp-fuzz.h"
#include "vmrp-dest-repo.h"
#include "vmrp-digest.h"

int
LLVMFuzzerInitialize(int *argc G_GNUC_UNUSED, char ***argv G_GNUC_UNUSED)
{
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *text = g_strndup((const char *)data, size);
    g_autoptr(GHashTable) sums = vmrpDestSumsParse(text);
    g_autoptr(GHashTable) again = NULL;
    g_autoptr(GString) out = g_string_new(NULL);
    GHashTableIter iter;
    gpointer key, val;

    if (!sums)
        return 0;
    g_hash_table_iter_init(&iter, sums);
    while (g_hash_table_iter_next(&iter, &key, &val)) {
        const char *name = key;

        VMRP_FUZZ_ASSERT(*name && name[0] != '/' && !strstr(name, ".."));
        VMRP_FUZZ_ASSERT(!strchr(name, '\n'));
        VMRP_FUZZ_ASSERT(vmrpDigestIsHex(val, VMRP_DIGEST_SHA256));
        g_string_append_printf(out, "%s  %s\n", (char *)val, name);
    }
    VMRP_FUZZ_ASSERT((again = vmrpDestSumsParse(out->str)));
    VMRP_FUZZ_ASSERT(g_hash_table_size(again) == g_hash_table_size(sums));
    g_hash_table_iter_init(&iter, sums);
    while (g_hash_table_iter_next(&iter, &key, &val))
        VMRP_FUZZ_ASSERT(g_strcmp0(g_hash_table_lookup(again, key), val) == 0);
    return 0;
}
