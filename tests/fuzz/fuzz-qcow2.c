/*
 * fuzz-qcow2.c: a qcow2 image's header and L1/L2 tables as a file holds them
 * (vmrpQcow2ReadHeader, vmrpQcow2ReadMap, nbd/vmrp-qcow2-read.h)
 *
 * A stored image is read before anything else trusts it (rp-verify, a
 * copy's check): whatever the bytes, the reader says what the header names
 * or fails with one line, and a map it gives covers the image's size in
 * order, without overlaps, each run within it and either zero, elsewhere or
 * at a cluster-aligned offset in the file.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <sys/mman.h>
#include <unistd.h>

#include "vmrp-fuzz.h"
#include "vmrp-qcow2-read.h"

int
LLVMFuzzerInitialize(int *argc G_GNUC_UNUSED, char ***argv G_GNUC_UNUSED)
{
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vmrpQcow2Header hdr = { 0 };
    g_autoptr(GError) error = NULL;
    g_autoptr(GArray) map = NULL;
    int fd = memfd_create("fuzz-qcow2", MFD_CLOEXEC);
    uint64_t pos = 0;
    guint i;

    VMRP_FUZZ_ASSERT(fd >= 0);
    VMRP_FUZZ_ASSERT(size == 0 || write(fd, data, size) == (ssize_t)size);
    if (!vmrpQcow2ReadHeader(fd, &hdr, &error)) {
        vmrpFuzzCheckError(error);
        close(fd);
        return 0;
    }
    VMRP_FUZZ_ASSERT(hdr.version == 2 || hdr.version == 3);
    VMRP_FUZZ_ASSERT(!hdr.backing || (*hdr.backing && strlen(hdr.backing) <= 1023));
    VMRP_FUZZ_ASSERT(!hdr.mappable || !hdr.data_file);
    if (!(map = vmrpQcow2ReadMap(fd, &hdr, &error))) {
        vmrpFuzzCheckError(error);
    } else {
        for (i = 0; i < map->len; i++) {
            const vmrpQcow2MapEntry *e = &g_array_index(map, vmrpQcow2MapEntry, i);

            VMRP_FUZZ_ASSERT(e->start == pos && e->length > 0);
            VMRP_FUZZ_ASSERT(e->offset < 0 || !e->zero);
            VMRP_FUZZ_ASSERT(e->offset < 0 ||
                             (e->offset & ((1LL << hdr.cluster_bits) - 1)) == 0);
            pos += e->length;
        }
        VMRP_FUZZ_ASSERT(pos == hdr.size);
    }
    vmrpQcow2HeaderClear(&hdr);
    close(fd);
    return 0;
}
