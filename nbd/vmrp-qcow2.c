/*
 * vmrp-qcow2.c: writes a new qcow2 image straight from a disk's extent map
 *
 * The layout, in clusters (see docs/interop/qcow2.txt in QEMU):
 *
 *   0          header, header extensions, backing file name
 *   1 ..       L1 table
 *   ..         refcount table, refcount blocks (every cluster of the file
 *              has refcount 1: nothing is ever freed)
 *   ..         the L2 tables of the guest regions that have entries
 *   ..         data clusters, in guest order
 *
 * Data clusters are allocated in guest order, so a run of guest clusters
 * that are allocated is one run in the file too: a piece of the plan is
 * written with one pwrite() (fewer when it holds zero clusters).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "vmrp-nbd-error.h"
#include "vmrp-qcow2.h"

#define CLUSTER_BITS 16
#define CLUSTER_SIZE VMRP_QCOW2_CLUSTER_SIZE
#define L2_ENTRIES (CLUSTER_SIZE / 8)              /* 8192: a region of 512 MiB */
#define REGION_SIZE (L2_ENTRIES * CLUSTER_SIZE)
#define REFCOUNT_ORDER 4                           /* 16-bit refcounts */
#define REFBLOCK_ENTRIES (CLUSTER_SIZE * 8 >> REFCOUNT_ORDER)
#define HEADER_LENGTH 104

#define QCOW2_MAGIC 0x514649fbU
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acaU
#define QCOW2_OFLAG_COPIED (1ULL << 63)
#define QCOW2_OFLAG_ZERO 1ULL
#define BACKING_MAX 1023

typedef enum {
    CLUSTER_UNALLOCATED,
    CLUSTER_ZERO,
    CLUSTER_DATA,
} clusterKind;

/* A run of allocated guest clusters: [start, start + length) in the guest,
 * at data_base + index * CLUSTER_SIZE in the file. */
typedef struct {
    uint64_t start;
    uint64_t length;
    uint64_t index;
} dataRun;

struct _vmrpQcow2Writer {
    char *path;
    int fd;                /* metadata, through the page cache */
    int data_fd;           /* data: O_DIRECT when the file system has it, else fd */
    uint64_t size;
    vmrpExtentMap *plan;
    GArray *runs;          /* of dataRun, sorted */
    uint64_t *l1;          /* host order: each region's L2 table, 0 when none */
    uint64_t l1_size;
    uint64_t data_base;
};


static void
writerSetError(vmrpQcow2Writer *w, GError **error, const char *what, int errnum)
{
    g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_FAILED, "cannot %s %s: %s",
                what, w->path, g_strerror(errnum));
}


static bool
writerPwriteFd(vmrpQcow2Writer *w, int fd, const void *buf, size_t len, uint64_t pos,
               GError **error)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, pos);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            writerSetError(w, error, "write", n < 0 ? errno : EIO);
            return false;
        }
        p += n;
        len -= n;
        pos += n;
    }
    return true;
}


static bool
writerPwrite(vmrpQcow2Writer *w, const void *buf, size_t len, uint64_t pos, GError **error)
{
    return writerPwriteFd(w, w->fd, buf, len, pos, error);
}


/* The kind of the cluster at @pos, moving *@cursor along the map. */
static clusterKind
clusterClassify(const vmrpExtentMap *map, guint *cursor, uint64_t pos, bool backing)
{
    uint64_t end = MIN(pos + CLUSTER_SIZE, map->size);
    bool data = false, zero = false, clean = false;
    guint i;

    while (*cursor < vmrpExtentMapCount(map)) {
        const vmrpExtent *e = vmrpExtentMapGet(map, *cursor);
        if (e->offset + e->length > pos)
            break;
        (*cursor)++;
    }
    for (i = *cursor; i < vmrpExtentMapCount(map); i++) {
        const vmrpExtent *e = vmrpExtentMapGet(map, i);

        if (e->offset >= end)
            break;
        data |= e->kind == VMRP_EXTENT_DATA;
        zero |= e->kind == VMRP_EXTENT_ZERO;
        clean |= e->kind == VMRP_EXTENT_CLEAN;
    }
    /* zeroes beside clean data cannot be one flag: the cluster is read whole */
    if (data || (zero && clean))
        return CLUSTER_DATA;
    if (zero && backing)
        return CLUSTER_ZERO;
    return CLUSTER_UNALLOCATED;
}


/* Walks the clusters once: the plan, the runs, and which regions have an L2
 * table (l1[r] = 1 for now).  Returns the number of data clusters. */
static uint64_t
writerPlan(vmrpQcow2Writer *w, const vmrpExtentMap *map, bool backing)
{
    uint64_t nclusters = (map->size + CLUSTER_SIZE - 1) / CLUSTER_SIZE;
    uint64_t ndata = 0;
    guint cursor = 0;
    uint64_t c;

    for (c = 0; c < nclusters; c++) {
        uint64_t pos = c * CLUSTER_SIZE;
        uint64_t len = MIN(CLUSTER_SIZE, map->size - pos);
        clusterKind kind = clusterClassify(map, &cursor, pos, backing);

        if (kind != CLUSTER_UNALLOCATED)
            w->l1[c / L2_ENTRIES] = 1;
        if (kind == CLUSTER_DATA) {
            dataRun *last = w->runs->len ?
                            &g_array_index(w->runs, dataRun, w->runs->len - 1) : NULL;

            if (last && last->start + last->length == pos) {
                last->length += len;
            } else {
                dataRun run = { pos, len, ndata };
                g_array_append_val(w->runs, run);
            }
            ndata++;
        }
        vmrpExtentMapAppend(w->plan, pos, len,
                            kind == CLUSTER_DATA ? VMRP_EXTENT_DATA : VMRP_EXTENT_CLEAN);
    }
    return ndata;
}


static bool
writerWriteHeader(vmrpQcow2Writer *w, const char *backing, uint64_t l1_offset,
                  uint64_t reftable_offset, uint64_t reftable_clusters, GError **error)
{
    g_autofree guint8 *h = g_malloc0(CLUSTER_SIZE);
    size_t pos = HEADER_LENGTH;

#define PUT32(off, v) do { guint32 _v = GUINT32_TO_BE(v); memcpy(h + (off), &_v, 4); } while (0)
#define PUT64(off, v) do { guint64 _v = GUINT64_TO_BE(v); memcpy(h + (off), &_v, 8); } while (0)
    PUT32(0, QCOW2_MAGIC);
    PUT32(4, 3);
    PUT32(20, CLUSTER_BITS);
    PUT64(24, w->size);
    PUT32(36, w->l1_size);
    PUT64(40, l1_offset);
    PUT64(48, reftable_offset);
    PUT32(56, reftable_clusters);
    PUT32(96, REFCOUNT_ORDER);
    PUT32(100, HEADER_LENGTH);
    if (backing) {
        size_t len = strlen(backing);

        PUT32(pos, QCOW2_EXT_BACKING_FORMAT);
        PUT32(pos + 4, 5);
        memcpy(h + pos + 8, "qcow2", 5);
        pos += 8 + 8;
        pos += 8;     /* the end of the extensions: type 0, length 0 */
        memcpy(h + pos, backing, len);
        PUT64(8, pos);
        PUT32(16, len);
    }
#undef PUT32
#undef PUT64
    return writerPwrite(w, h, CLUSTER_SIZE, 0, error);
}


static bool
writerWriteRefcounts(vmrpQcow2Writer *w, uint64_t reftable_offset, uint64_t reftable_clusters,
                     uint64_t nrefblocks, uint64_t total, GError **error)
{
    g_autofree guint64 *table = g_malloc0(reftable_clusters * CLUSTER_SIZE);
    g_autofree guint16 *block = g_new(guint16, REFBLOCK_ENTRIES);
    uint64_t refblocks_offset = reftable_offset + reftable_clusters * CLUSTER_SIZE;
    uint64_t b, i;

    for (b = 0; b < nrefblocks; b++) {
        uint64_t first = b * REFBLOCK_ENTRIES;

        table[b] = GUINT64_TO_BE(refblocks_offset + b * CLUSTER_SIZE);
        for (i = 0; i < REFBLOCK_ENTRIES; i++)
            block[i] = GUINT16_TO_BE(first + i < total ? 1 : 0);
        if (!writerPwrite(w, block, CLUSTER_SIZE, refblocks_offset + b * CLUSTER_SIZE, error))
            return false;
    }
    return writerPwrite(w, table, reftable_clusters * CLUSTER_SIZE, reftable_offset, error);
}


/* The L2 tables, walking the clusters again as writerPlan did. */
static bool
writerWriteL2(vmrpQcow2Writer *w, const vmrpExtentMap *map, bool backing, GError **error)
{
    g_autofree guint64 *l2 = g_new(guint64, L2_ENTRIES);
    uint64_t nclusters = (map->size + CLUSTER_SIZE - 1) / CLUSTER_SIZE;
    uint64_t next_data = w->data_base;
    guint cursor = 0;
    uint64_t r, c;

    for (r = 0; r < w->l1_size; r++) {
        if (!w->l1[r])
            continue;
        memset(l2, 0, CLUSTER_SIZE);
        for (c = r * L2_ENTRIES; c < MIN((r + 1) * L2_ENTRIES, nclusters); c++) {
            switch (clusterClassify(map, &cursor, c * CLUSTER_SIZE, backing)) {
            case CLUSTER_DATA:
                l2[c % L2_ENTRIES] = GUINT64_TO_BE(next_data | QCOW2_OFLAG_COPIED);
                next_data += CLUSTER_SIZE;
                break;
            case CLUSTER_ZERO:
                l2[c % L2_ENTRIES] = GUINT64_TO_BE(QCOW2_OFLAG_ZERO);
                break;
            case CLUSTER_UNALLOCATED:
                break;
            }
        }
        if (!writerPwrite(w, l2, CLUSTER_SIZE, w->l1[r], error))
            return false;
    }
    return true;
}


vmrpQcow2Writer *
vmrpQcow2WriterCreate(const char *path,
                      const vmrpExtentMap *map,
                      const char *backing,
                      GError **error)
{
    g_autoptr(vmrpQcow2Writer) w = g_new0(vmrpQcow2Writer, 1);
    g_autofree guint64 *l1_be = NULL;
    uint64_t ndata, nl2 = 0, l1_clusters, fixed, total, nrefblocks = 0, reftable_clusters = 0;
    uint64_t reftable_offset, next, r;

    w->path = g_strdup(path);
    w->fd = -1;
    w->data_fd = -1;
    w->size = map->size;
    if (!vmrpExtentMapIsComplete(map)) {
        g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_INVALID,
                    "cannot create %s: the extent map does not cover the disk", path);
        return NULL;
    }
    if (backing && (strlen(backing) == 0 || strlen(backing) > BACKING_MAX)) {
        g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_INVALID,
                    "cannot create %s: a backing file name of %zu bytes", path,
                    strlen(backing));
        return NULL;
    }
    w->l1_size = (map->size + REGION_SIZE - 1) / REGION_SIZE;
    w->l1 = g_new0(uint64_t, MAX(w->l1_size, 1));
    w->plan = vmrpExtentMapNew(map->size);
    w->runs = g_array_new(FALSE, FALSE, sizeof(dataRun));
    ndata = writerPlan(w, map, backing != NULL);
    for (r = 0; r < w->l1_size; r++)
        nl2 += w->l1[r];

    /* the refcount structures cover the whole file, themselves included */
    l1_clusters = MAX(1, (w->l1_size * 8 + CLUSTER_SIZE - 1) / CLUSTER_SIZE);
    fixed = 1 + l1_clusters + nl2 + ndata;
    for (;;) {
        uint64_t rb, rt;

        total = fixed + reftable_clusters + nrefblocks;
        rb = (total + REFBLOCK_ENTRIES - 1) / REFBLOCK_ENTRIES;
        rt = (rb * 8 + CLUSTER_SIZE - 1) / CLUSTER_SIZE;
        if (rb == nrefblocks && rt == reftable_clusters)
            break;
        nrefblocks = rb;
        reftable_clusters = rt;
    }
    reftable_offset = (1 + l1_clusters) * CLUSTER_SIZE;
    next = reftable_offset + (reftable_clusters + nrefblocks) * CLUSTER_SIZE;
    for (r = 0; r < w->l1_size; r++) {
        if (w->l1[r]) {
            w->l1[r] = next;
            next += CLUSTER_SIZE;
        }
    }
    w->data_base = next;

    if ((w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
        writerSetError(w, error, "create", errno);
        return NULL;
    }
    w->data_fd = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC | O_NOFOLLOW);
    if (w->data_fd < 0 && errno != EINVAL) {
        writerSetError(w, error, "open", errno);
        return NULL;
    }
    if (w->data_fd < 0)
        w->data_fd = w->fd;     /* no O_DIRECT here (tmpfs): through the cache */
    if (ftruncate(w->fd, total * CLUSTER_SIZE) < 0) {
        writerSetError(w, error, "size", errno);
        return NULL;
    }
    l1_be = g_new0(guint64, l1_clusters * L2_ENTRIES);
    for (r = 0; r < w->l1_size; r++)
        l1_be[r] = w->l1[r] ? GUINT64_TO_BE(w->l1[r] | QCOW2_OFLAG_COPIED) : 0;
    if (!writerWriteHeader(w, backing, CLUSTER_SIZE, reftable_offset, reftable_clusters,
                           error) ||
        !writerPwrite(w, l1_be, l1_clusters * CLUSTER_SIZE, CLUSTER_SIZE, error) ||
        !writerWriteRefcounts(w, reftable_offset, reftable_clusters, nrefblocks, total,
                              error) ||
        !writerWriteL2(w, map, backing != NULL, error))
        return NULL;
    return g_steal_pointer(&w);
}


const vmrpExtentMap *
vmrpQcow2WriterPlan(vmrpQcow2Writer *w)
{
    return w->plan;
}


static const dataRun *
writerFindRun(vmrpQcow2Writer *w, uint64_t offset)
{
    guint lo = 0, hi = w->runs->len;

    while (lo < hi) {
        guint mid = lo + (hi - lo) / 2;
        const dataRun *run = &g_array_index(w->runs, dataRun, mid);

        if (offset < run->start)
            hi = mid;
        else if (offset >= run->start + run->length)
            lo = mid + 1;
        else
            return run;
    }
    return NULL;
}


static bool
isZero(const guint8 *p, size_t len)
{
    return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}


/* Writes @len bytes at @p to the data's @host offset: whole blocks, as
 * O_DIRECT wants, the disk's last (short) one padded with zeroes. */
static bool
writerWriteData(vmrpQcow2Writer *w, guint8 *p, size_t len, uint64_t host, GError **error)
{
    size_t padded = (len + VMRP_QCOW2_ALIGN - 1) / VMRP_QCOW2_ALIGN * VMRP_QCOW2_ALIGN;

    memset(p + len, 0, padded - len);
    return writerPwriteFd(w, w->data_fd, p, padded, host, error);
}


bool
vmrpQcow2WriterWrite(vmrpQcow2Writer *w,
                     uint64_t offset,
                     void *buf,
                     size_t length,
                     GError **error)
{
    const dataRun *run = writerFindRun(w, offset);
    guint8 *p = buf;
    uint64_t host, pos, pending = 0;

    if (!run || offset % CLUSTER_SIZE || offset + length > run->start + run->length) {
        g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_INVALID,
                    "cannot write %s: [%" G_GUINT64_FORMAT ", +%zu) is not in the plan",
                    w->path, offset, length);
        return false;
    }
    host = w->data_base + (run->index + (offset - run->start) / CLUSTER_SIZE) * CLUSTER_SIZE;
    /* non-zero clusters go out in runs; a zero one is a flag in its L2 entry */
    for (pos = 0; pos < length; pos += CLUSTER_SIZE) {
        size_t len = MIN(CLUSTER_SIZE, length - pos);

        if (!isZero(p + pos, len)) {
            pending += len;
            continue;
        }
        if (pending && !writerWriteData(w, p + pos - pending, pending, host + pos - pending,
                                        error))
            return false;
        pending = 0;
        {
            uint64_t c = (offset + pos) / CLUSTER_SIZE;
            guint64 entry = GUINT64_TO_BE((host + pos) | QCOW2_OFLAG_COPIED |
                                          QCOW2_OFLAG_ZERO);

            if (!writerPwrite(w, &entry, sizeof(entry),
                              w->l1[c / L2_ENTRIES] + (c % L2_ENTRIES) * 8, error))
                return false;
        }
    }
    return !pending || writerWriteData(w, p + length - pending, pending,
                                       host + length - pending, error);
}


bool
vmrpQcow2WriterFinish(vmrpQcow2Writer *w, GError **error)
{
    int fd = w->fd;

    if (w->data_fd != w->fd)
        close(w->data_fd);
    w->fd = -1;
    w->data_fd = -1;
    if (fdatasync(fd) < 0) {
        writerSetError(w, error, "flush", errno);
        close(fd);
        return false;
    }
    if (close(fd) < 0) {
        writerSetError(w, error, "close", errno);
        return false;
    }
    return true;
}


bool
vmrpQcow2CreateEmpty(const char *path, uint64_t size, GError **error)
{
    g_autoptr(vmrpExtentMap) map = vmrpExtentMapNew(size);
    g_autoptr(vmrpQcow2Writer) w = NULL;
    int fd;

    /* nothing allocated: the header, the L1 table and the refcounts only */
    vmrpExtentMapAppend(map, 0, size, VMRP_EXTENT_CLEAN);
    if (!(w = vmrpQcow2WriterCreate(path, map, NULL, error)))
        return false;
    fd = w->fd;
    if (w->data_fd != w->fd)
        close(w->data_fd);
    w->fd = -1;
    w->data_fd = -1;
    if (close(fd) < 0) {
        writerSetError(w, error, "close", errno);
        return false;
    }
    return true;
}


void
vmrpQcow2WriterFree(vmrpQcow2Writer *w)
{
    if (!w)
        return;
    if (w->data_fd >= 0 && w->data_fd != w->fd)
        close(w->data_fd);
    if (w->fd >= 0)
        close(w->fd);
    g_free(w->path);
    g_clear_pointer(&w->plan, vmrpExtentMapFree);
    if (w->runs)
        g_array_unref(w->runs);
    g_free(w->l1);
    g_free(w);
}
