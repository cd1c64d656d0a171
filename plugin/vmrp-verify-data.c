/*
 * vmrp-verify-data.c: the digest of a stored image's data extents, read
 * from the qcow2 file at the offsets its own L2 tables give
 *
 * One synchronous NBD connection reads about 150 MB/s here (qemu-nbd on
 * one connection), the file itself at the disk's speed: rp-verify of a
 * 1.5 GiB image takes seconds instead of ten.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "vmrp-verify-data.h"
#include "vmrp-digest.h"
#include "vmrp-error.h"
#include "vmrp-nbd-digest.h"
#include "vmrp-qcow2-read.h"

#define READ_CHUNK (4 * 1024 * 1024)

typedef vmrpQcow2MapEntry mapEntry;

/* The image's own layer, read here (vmrp-qcow2-read.h); NULL when it cannot
 * be read the fast way (then the extents are read through qemu-nbd). */
static GArray *
mapRead(const char *image)
{
    vmrpQcow2Header hdr = { 0 };
    GArray *map = NULL;
    int fd = open(image, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0)
        return NULL;
    if (vmrpQcow2ReadHeader(fd, &hdr, NULL)) {
        map = vmrpQcow2ReadMap(fd, &hdr, NULL);
        vmrpQcow2HeaderClear(&hdr);
    }
    close(fd);
    return map;
}

/* Whether every byte of @extents is in the image's own layer as @map shows it. */
static bool
mapCovers(GArray *map, GArray *extents)
{
    guint i, m = 0;

    for (i = 0; i < extents->len; i++) {
        const vmrpDigestExtent *e = &g_array_index(extents, vmrpDigestExtent, i);
        uint64_t pos = e->offset;

        while (pos < e->offset + e->length) {
            const mapEntry *me;

            while (m < map->len && g_array_index(map, mapEntry, m).start +
                                   g_array_index(map, mapEntry, m).length <= pos)
                m++;
            if (m == map->len)
                return false;
            me = &g_array_index(map, mapEntry, m);
            if (me->start > pos || (!me->zero && me->offset < 0))
                return false;
            pos = MIN(e->offset + e->length, me->start + me->length);
        }
    }
    return true;
}

static bool
mapEqual(GArray *a, GArray *b)
{
    guint i;

    if (a->len != b->len)
        return false;
    for (i = 0; i < a->len; i++) {
        const mapEntry *x = &g_array_index(a, mapEntry, i);
        const mapEntry *y = &g_array_index(b, mapEntry, i);

        if (x->start != y->start || x->length != y->length || x->zero != y->zero ||
            x->offset != y->offset)
            return false;
    }
    return true;
}

/* Blocks until the file holds its data below @end; false when told to stop. */
typedef bool (*mapWaitFunc)(void *opaque, uint64_t end);

/* The digest of @extents of @image read at the offsets @map gives (it covers
 * them: mapCovers); @wait, when given, is called before each read. */
static char *
mapDigest(const char *image, GArray *map, GArray *extents, vmrpDigestAlgorithm algorithm,
          mapWaitFunc wait, void *opaque, GCancellable *cancel, GError **error)
{
    g_autoptr(vmrpDigest) dg = vmrpDigestNew(algorithm);
    g_autofree char *buf = g_malloc0(READ_CHUNK);
    guint i, m = 0;
    int fd = -1;

    for (i = 0; i < extents->len; i++) {
        const vmrpDigestExtent *e = &g_array_index(extents, vmrpDigestExtent, i);
        uint64_t pos = e->offset;

        while (pos < e->offset + e->length) {
            const mapEntry *me;
            uint64_t end;
            size_t n;

            while (g_array_index(map, mapEntry, m).start +
                   g_array_index(map, mapEntry, m).length <= pos)
                m++;
            me = &g_array_index(map, mapEntry, m);
            end = MIN(e->offset + e->length, me->start + me->length);
            n = MIN((uint64_t)READ_CHUNK, end - pos);
            if (g_cancellable_set_error_if_cancelled(cancel, error))
                goto fail;
            if (me->zero) {
                memset(buf, 0, n);
            } else {
                off_t at = me->offset + (pos - me->start);
                size_t got = 0;

                if (wait && !wait(opaque, at + n)) {
                    g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "stopped");
                    goto fail;
                }
                if (fd < 0) {
                    if ((fd = open(image, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
                        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot read %s: %s",
                                    image, g_strerror(errno));
                        goto fail;
                    }
                    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
                }
                while (got < n) {
                    ssize_t r = pread(fd, buf + got, n - got, at + got);
                    if (r < 0 && errno == EINTR)
                        continue;
                    if (r <= 0) {
                        g_set_error(error, VMRP_ERROR, VMRP_ERROR_IO, "cannot read %s: %s",
                                    image, r < 0 ? g_strerror(errno) : "it ends early");
                        goto fail;
                    }
                    got += r;
                }
            }
            vmrpDigestAddPiece(dg, pos, buf, n);
            pos += n;
        }
    }
    if (fd >= 0)
        close(fd);
    return vmrpDigestFinish(dg, NULL);

 fail:
    if (fd >= 0)
        close(fd);
    return NULL;
}

char *
vmrpVerifyDataDigest(const char *image, GArray *extents, vmrpDigestAlgorithm algorithm,
                     GCancellable *cancel, GError **error)
{
    g_autoptr(GArray) map = mapRead(image);

    if (!map || !mapCovers(map, extents))
        return vmrpNbdDigestImage(image, "qcow2", extents, algorithm, cancel, error);
    return mapDigest(image, map, extents, algorithm, NULL, NULL, cancel, error);
}

struct _vmrpDataFollow {
    char *source;
    char *image;
    GArray *extents;
    vmrpDigestAlgorithm algorithm;
    uint64_t size;          /* the source's: the copy is whole once written so far */
    GCancellable *cancel;
    GMutex lock;
    GCond cond;
    uint64_t written;       /* the copy holds its data below this offset */
    bool stop;
    vmrpDataFollowCheckFunc check;
    void *check_opaque;
    GThread *thread;
    /* the thread's findings */
    char *hex;
    bool same_map;          /* the whole copy's map is the source's */
    char *problem;          /* check's */
    GError *error;
};

static bool
followWait(void *opaque, uint64_t end)
{
    vmrpDataFollow *f = opaque;
    bool ok;

    g_mutex_lock(&f->lock);
    while (f->written < end && !f->stop)
        g_cond_wait(&f->cond, &f->lock);
    ok = f->written >= end;
    g_mutex_unlock(&f->lock);
    return ok;
}

/* Everything here runs while the copy goes on: the source's map, the digest
 * behind the copy, and once the copy is whole (before its fsync) its map and
 * the caller's check. */
static gpointer
followThread(gpointer opaque)
{
    vmrpDataFollow *f = opaque;
    g_autoptr(GArray) map = mapRead(f->source);
    g_autoptr(GArray) copied = NULL;

    if (map && mapCovers(map, f->extents) &&
        !(f->hex = mapDigest(f->image, map, f->extents, f->algorithm, followWait, f, f->cancel,
                             &f->error)))
        return NULL;
    if (!followWait(f, f->size))
        return NULL;
    f->same_map = f->hex && (copied = mapRead(f->image)) && mapEqual(copied, map);
    if (f->check)
        f->problem = f->check(f->image, f->check_opaque);
    return NULL;
}

vmrpDataFollow *
vmrpDataFollowStart(const char *source, const char *image, GArray *extents,
                    vmrpDigestAlgorithm algorithm,
                    vmrpDataFollowCheckFunc check, void *check_opaque, GCancellable *cancel)
{
    vmrpDataFollow *f = g_new0(vmrpDataFollow, 1);
    GStatBuf sb;

    f->source = g_strdup(source);
    f->image = g_strdup(image);
    f->extents = g_array_ref(extents);
    f->algorithm = algorithm;
    f->size = g_stat(source, &sb) == 0 ? (uint64_t)sb.st_size : UINT64_MAX;
    f->cancel = cancel ? g_object_ref(cancel) : NULL;
    f->check = check;
    f->check_opaque = check_opaque;
    g_mutex_init(&f->lock);
    g_cond_init(&f->cond);
    f->thread = g_thread_new("vmrp-follow", followThread, f);
    return f;
}

void
vmrpDataFollowWritten(vmrpDataFollow *f, uint64_t upto)
{
    g_mutex_lock(&f->lock);
    f->written = MAX(f->written, upto);
    g_cond_signal(&f->cond);
    g_mutex_unlock(&f->lock);
}

static void
followJoin(vmrpDataFollow *f, bool whole)
{
    if (!f->thread)
        return;
    g_mutex_lock(&f->lock);
    if (whole)
        f->written = UINT64_MAX;
    else
        f->stop = true;
    g_cond_signal(&f->cond);
    g_mutex_unlock(&f->lock);
    g_thread_join(g_steal_pointer(&f->thread));
}

char *
vmrpDataFollowFinish(vmrpDataFollow *f, char **ret_problem, GError **error)
{
    followJoin(f, true);
    if (f->error) {
        g_propagate_error(error, g_steal_pointer(&f->error));
        return NULL;
    }
    if (f->problem) {
        *ret_problem = g_steal_pointer(&f->problem);
        return NULL;
    }
    /* not read the fast way, or read where the copy does not keep it */
    if (!f->same_map)
        return vmrpVerifyDataDigest(f->image, f->extents, f->algorithm, f->cancel, error);
    return g_steal_pointer(&f->hex);
}

void
vmrpDataFollowFree(vmrpDataFollow *f)
{
    if (!f)
        return;
    followJoin(f, false);
    g_clear_error(&f->error);
    g_free(f->hex);
    g_free(f->problem);
    g_free(f->source);
    g_free(f->image);
    g_array_unref(f->extents);
    g_clear_object(&f->cancel);
    g_mutex_clear(&f->lock);
    g_cond_clear(&f->cond);
    g_free(f);
}
