/*
 * vmrp-qcow2-read.c: a qcow2 image's header and the map of its own layer
 *
 * The layout is QEMU's docs/interop/qcow2.txt: a big-endian header, then
 * header extensions (version 3: from header_length on; version 2: from byte
 * 72), the L1 table of L2 table offsets, L2 tables of cluster descriptors.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "vmrp-nbd-error.h"
#include "vmrp-qcow2-read.h"

#define QCOW2_MAGIC 0x514649fbU
#define EXT_END 0
#define EXT_BACKING_FORMAT 0xe2792acaU
#define EXT_DATA_FILE 0x44415441U
#define INCOMPAT_DATA_FILE (1ULL << 2)
#define INCOMPAT_EXTL2 (1ULL << 4)
#define INCOMPAT_KNOWN 0x1fULL              /* dirty, corrupt, data file, compression, extl2 */
#define HEADER_READ 65536                   /* header, extensions and backing name in it */
#define OFFSET_MASK 0x00fffffffffffe00ULL
#define L2_COMPRESSED (1ULL << 62)
#define L2_ZERO 1ULL
#define L1_MAX (32 * 1024 * 1024 / 8)       /* QEMU's own limit on L1 entries */
#define SIZE_MAX_MAPPED (1ULL << 60)

static uint32_t
be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t
be64(const unsigned char *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static bool
readAt(int fd, void *buf, size_t len, uint64_t at, size_t *ret_got)
{
    size_t got = 0;

    while (got < len) {
        ssize_t r = pread(fd, (char *)buf + got, len - got, at + got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return false;
        if (r == 0)
            break;
        got += r;
    }
    *ret_got = got;
    return true;
}

static bool
notQcow2(GError **error, const char *why)
{
    g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_INVALID, "not a qcow2 image: %s", why);
    return false;
}

/* A name from the header: at most @max bytes, no NUL inside. */
static char *
headerString(const unsigned char *buf, size_t have, uint64_t at, uint64_t len, size_t max)
{
    if (len == 0 || len > max || at > have || len > have - at ||
        memchr(buf + at, '\0', len))
        return NULL;
    return g_strndup((const char *)buf + at, len);
}

bool
vmrpQcow2ReadHeader(int fd, vmrpQcow2Header *ret, GError **error)
{
    g_autofree unsigned char *buf = g_malloc0(HEADER_READ);
    vmrpQcow2Header hdr = { 0 };
    uint64_t incompat = 0, backing_off;
    uint32_t backing_len, header_len = 72, crypt;
    size_t have = 0, pos;

    if (!readAt(fd, buf, HEADER_READ, 0, &have)) {
        g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_FAILED, "cannot read: %s",
                    g_strerror(errno));
        return false;
    }
    if (have < 72 || be32(buf) != QCOW2_MAGIC)
        return notQcow2(error, "no qcow2 header");
    hdr.version = be32(buf + 4);
    if (hdr.version != 2 && hdr.version != 3)
        return notQcow2(error, "an unknown version");
    backing_off = be64(buf + 8);
    backing_len = be32(buf + 16);
    hdr.cluster_bits = be32(buf + 20);
    hdr.size = be64(buf + 24);
    crypt = be32(buf + 32);
    hdr.l1_size = be32(buf + 36);
    hdr.l1_offset = be64(buf + 40);
    if (hdr.cluster_bits < 9 || hdr.cluster_bits > 21)
        return notQcow2(error, "an impossible cluster size");
    if (hdr.version == 3) {
        if (have < 104)
            return notQcow2(error, "a short header");
        incompat = be64(buf + 72);
        header_len = be32(buf + 100);
        if (header_len < 104 || header_len % 8 || header_len > have)
            return notQcow2(error, "an impossible header length");
    }
    if (backing_off) {
        if (!(hdr.backing = headerString(buf, have, backing_off, backing_len, 1023)))
            return notQcow2(error, "a backing file name it cannot hold");
    }
    /* the extensions: up to the end marker, inside what was read */
    for (pos = header_len; pos + 8 <= have;) {
        uint32_t type = be32(buf + pos), len = be32(buf + pos + 4);

        if (type == EXT_END)
            break;
        if (len > have - pos - 8) {
            vmrpQcow2HeaderClear(&hdr);
            return notQcow2(error, "a header extension past its end");
        }
        if (type == EXT_BACKING_FORMAT && !hdr.backing_format)
            hdr.backing_format = headerString(buf, have, pos + 8, len, 32);
        else if (type == EXT_DATA_FILE)
            hdr.data_file = true;
        pos += 8 + ((len + 7) & ~7U);
    }
    if (incompat & INCOMPAT_DATA_FILE)
        hdr.data_file = true;
    hdr.mappable = !hdr.data_file && crypt == 0 && !(incompat & ~INCOMPAT_KNOWN) &&
                   !(incompat & INCOMPAT_EXTL2) && hdr.l1_size <= L1_MAX &&
                   hdr.size <= SIZE_MAX_MAPPED;
    *ret = hdr;
    return true;
}

void
vmrpQcow2HeaderClear(vmrpQcow2Header *hdr)
{
    g_clear_pointer(&hdr->backing, g_free);
    g_clear_pointer(&hdr->backing_format, g_free);
}

bool
vmrpQcow2ReadHeaderAt(const char *path, vmrpQcow2Header *ret, GError **error)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    bool ok;

    if (fd < 0) {
        g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_FAILED, "cannot open %s: %s", path,
                    g_strerror(errno));
        return false;
    }
    ok = vmrpQcow2ReadHeader(fd, ret, error);
    close(fd);
    if (!ok)
        g_prefix_error(error, "%s: ", path);
    return ok;
}

bool
vmrpQcow2ReadSize(const char *path, uint64_t *ret_size, GError **error)
{
    vmrpQcow2Header hdr = { 0 };

    if (!vmrpQcow2ReadHeaderAt(path, &hdr, error))
        return false;
    *ret_size = hdr.size;
    vmrpQcow2HeaderClear(&hdr);
    return true;
}

/* Appends the cluster run [start, start + len) to @map, joined to the last
 * entry when it continues it. */
static void
mapAdd(GArray *map, uint64_t start, uint64_t len, bool zero, int64_t offset)
{
    vmrpQcow2MapEntry *last = map->len ?
        &g_array_index(map, vmrpQcow2MapEntry, map->len - 1) : NULL;

    if (last && last->start + last->length == start && last->zero == zero &&
        ((last->offset < 0 && offset < 0) ||
         (last->offset >= 0 && offset >= 0 &&
          (uint64_t)last->offset + last->length == (uint64_t)offset))) {
        last->length += len;
    } else {
        vmrpQcow2MapEntry e = { start, len, zero, offset };
        g_array_append_val(map, e);
    }
}

GArray *
vmrpQcow2ReadMap(int fd, const vmrpQcow2Header *hdr, GError **error)
{
    uint64_t cluster = 1ULL << hdr->cluster_bits;
    uint64_t l2_entries = cluster / 8;
    uint64_t region = l2_entries * cluster;
    uint64_t regions = (hdr->size + region - 1) / region;
    bool unallocated_zero = hdr->backing == NULL;
    g_autoptr(GArray) map = g_array_new(FALSE, FALSE, sizeof(vmrpQcow2MapEntry));
    g_autofree unsigned char *l1 = NULL;
    g_autofree unsigned char *l2 = g_malloc(cluster);
    size_t got;
    uint64_t r, i;

    if (!hdr->mappable || regions > hdr->l1_size) {
        g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_UNSUPPORTED,
                    "a qcow2 image this reader does not map");
        return NULL;
    }
    l1 = g_malloc0(regions * 8 + 1);
    if (!readAt(fd, l1, regions * 8, hdr->l1_offset, &got) || got != regions * 8) {
        g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_FAILED,
                    "cannot read the L1 table");
        return NULL;
    }
    for (r = 0; r < regions; r++) {
        uint64_t base = r * region;
        uint64_t end = MIN(hdr->size, base + region);
        uint64_t l2_off = be64(l1 + r * 8) & OFFSET_MASK;

        if (!l2_off) {
            mapAdd(map, base, end - base, unallocated_zero, -1);
            continue;
        }
        if (l2_off & (cluster - 1))
            goto misaligned;
        if (!readAt(fd, l2, cluster, l2_off, &got) || got != cluster) {
            g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_FAILED,
                        "cannot read an L2 table at %" G_GUINT64_FORMAT, l2_off);
            return NULL;
        }
        for (i = 0; i < l2_entries && base + i * cluster < end; i++) {
            uint64_t start = base + i * cluster;
            uint64_t len = MIN(cluster, end - start);
            uint64_t entry = be64(l2 + i * 8);
            uint64_t off = entry & OFFSET_MASK;

            if (entry & L2_COMPRESSED)
                mapAdd(map, start, len, false, -1);
            else if (entry & L2_ZERO)
                mapAdd(map, start, len, true, -1);
            else if (off & (cluster - 1))
                goto misaligned;
            else if (off)
                mapAdd(map, start, len, false, (int64_t)off);
            else
                mapAdd(map, start, len, unallocated_zero, -1);
        }
    }
    return g_steal_pointer(&map);

 misaligned:
    /* QEMU calls such an image corrupt; qemu-img check says more */
    g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_INVALID,
                "a table entry points inside a cluster");
    return NULL;
}
