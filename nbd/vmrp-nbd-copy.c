/*
 * vmrp-nbd-copy.c: copies a source's extents into an image through qemu-nbd,
 * with pipelined reads and writes
 *
 * One thread, one poll loop over both libnbd handles: up to max_requests
 * slots, each holding one piece of an extent while it is read from the
 * source and written to the target (or, for ZERO extents, only zeroed on the
 * target). A slot's buffer is allocated when it first carries data, so the
 * peak memory is max_requests x request_size. The target is served by a
 * qemu-nbd of our own (vmrpNbdExportStartWriter), so that its error
 * messages end up in the GError rather than on stderr.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <glib/gstdio.h>

#include "vmrp-nbd-copy.h"
#include "vmrp-nbd-export.h"
#include "vmrp-nbd-source-priv.h"
#include "vmrp-qcow2.h"

#define VMRP_NBD_COPY_DEFAULT_REQUESTS 16
/* 256 KiB: on the 2-CPU CI machine a 1 GiB copy from a cold disk takes
 * 2.1-3.2 s in requests of 256 or 512 KiB, 5.3-6.3 s in requests of 2 MiB
 * (the size qemu-img convert uses), through either kind of target */
#define VMRP_NBD_COPY_DEFAULT_REQUEST_SIZE (256 * 1024)
#define VMRP_NBD_COPY_MAX_REQUESTS 1024
#define VMRP_NBD_COPY_MAX_ZERO (256ULL * 1024 * 1024)
#define VMRP_NBD_COPY_POLL_MS 1000
/* threads writing into a new qcow2: with O_DIRECT each waits for the disk */
#define VMRP_NBD_COPY_WRITERS 4

typedef enum {
    VMRP_NBD_SLOT_FREE,
    VMRP_NBD_SLOT_READING,     /* nbd_aio_pread in flight on the source */
    VMRP_NBD_SLOT_READ_DONE,   /* its callback ran */
    VMRP_NBD_SLOT_WRITING,     /* nbd_aio_pwrite or nbd_aio_zero in flight */
    VMRP_NBD_SLOT_WRITE_DONE,  /* its callback ran */
    VMRP_NBD_SLOT_WRITTEN,     /* written and counted; its data waits for the
                                * digest to reach it */
} vmrpNbdSlotState;

typedef struct {
    vmrpNbdSlotState state;
    bool zero;          /* a ZERO piece: no read, no buffer */
    bool hashed;        /* in the digest (or nothing to add) */
    uint64_t seq;       /* a DATA piece's rank in issue (= offset) order */
    gint written;       /* atomic: the writing thread is done with it */
    int error;          /* errno of the command that completed */
    uint64_t offset;
    uint64_t length;
    void *buf;          /* request_size bytes, allocated on first use */
} vmrpNbdSlot;

typedef struct {
    struct nbd_handle *src;
    struct nbd_handle *dst;    /* the target: qemu-nbd ... */
    vmrpQcow2Writer *qcow2;    /* ... or a new qcow2 image written here, by
                                * a thread of its own (its pwrite()s may wait
                                * for the disk while the reads go on) */
    GThread *writers[VMRP_NBD_COPY_WRITERS];
    GAsyncQueue *write_queue;  /* of vmrpNbdSlot; the copy itself ends it */
    GMutex write_lock;
    GError *write_error;       /* the writers' first error (set before the
                                * slot's written flag) */
    const vmrpExtentMap *map;
    const char *image_path;
    bool write_zeroes;
    size_t request_size;
    GCancellable *cancel;
    vmrpNbdProgressFunc progress;
    void *opaque;

    vmrpNbdSlot *slots;
    unsigned int nslots;

    guint next_extent;   /* the work still to issue: extent index ... */
    uint64_t next_pos;   /* ... and position inside it */

    uint64_t done;       /* bytes written or zeroed */
    uint64_t total;
    uint64_t data_bytes; /* bytes read and written */
    unsigned int busy;   /* slots still owned by libnbd when the loop ended */
    GError *error;       /* the first error; the copy stops issuing */

    vmrpDigest *digest;  /* nullable: DATA pieces are added in seq order */
    int wake_fd;         /* eventfd: a writing thread finished a piece */
    uint64_t next_seq;   /* the seq of the next DATA piece issued */
    uint64_t hash_seq;   /* the seq of the next piece to add to the digest */
} vmrpNbdCopy;


static int
vmrpNbdCopyReadDone(void *opaque, int *error)
{
    vmrpNbdSlot *slot = opaque;

    slot->error = *error;
    slot->state = VMRP_NBD_SLOT_READ_DONE;
    return 1;  /* retire the command */
}


static int
vmrpNbdCopyWriteDone(void *opaque, int *error)
{
    vmrpNbdSlot *slot = opaque;

    slot->error = *error;
    slot->state = VMRP_NBD_SLOT_WRITE_DONE;
    return 1;
}


static void
vmrpNbdCopySetError(vmrpNbdCopy *copy, const char *what, int errnum)
{
    if (copy->error)
        return;
    if (errnum)
        g_set_error(&copy->error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_FAILED,
                    "%s: %s", what, g_strerror(errnum));
    else
        vmrpNbdErrorFromLibnbd(&copy->error, what);
}


/* The next piece of work, or false when all is issued. */
static bool
vmrpNbdCopyNextPiece(vmrpNbdCopy *copy, uint64_t *offset, uint64_t *length, bool *zero)
{
    while (copy->next_extent < vmrpExtentMapCount(copy->map)) {
        const vmrpExtent *e = vmrpExtentMapGet(copy->map, copy->next_extent);
        uint64_t max;

        if (e->kind == VMRP_EXTENT_CLEAN ||
            (e->kind == VMRP_EXTENT_ZERO && !copy->write_zeroes) ||
            copy->next_pos >= e->offset + e->length) {
            copy->next_extent++;
            copy->next_pos = copy->next_extent < vmrpExtentMapCount(copy->map) ?
                vmrpExtentMapGet(copy->map, copy->next_extent)->offset : 0;
            continue;
        }
        max = e->kind == VMRP_EXTENT_ZERO ? VMRP_NBD_COPY_MAX_ZERO : copy->request_size;
        *offset = copy->next_pos;
        *length = MIN(max, e->offset + e->length - copy->next_pos);
        *zero = e->kind == VMRP_EXTENT_ZERO;
        copy->next_pos += *length;
        return true;
    }
    return false;
}


static void
vmrpNbdCopyIssueWrite(vmrpNbdCopy *copy, vmrpNbdSlot *slot)
{
    nbd_completion_callback cb = { .callback = vmrpNbdCopyWriteDone, .user_data = slot };
    int64_t r;

    slot->state = VMRP_NBD_SLOT_WRITING;
    if (copy->qcow2) {
        g_atomic_int_set(&slot->written, 0);
        g_async_queue_push(copy->write_queue, slot);
        return;
    }
    if (slot->zero)
        r = nbd_aio_zero(copy->dst, slot->length, slot->offset, cb, 0);
    else
        r = nbd_aio_pwrite(copy->dst, slot->buf, slot->length, slot->offset, cb, 0);
    if (r < 0) {
        /* Not issued: the callback will not run. */
        slot->state = VMRP_NBD_SLOT_FREE;
        vmrpNbdCopySetError(copy, slot->zero ? "nbd_aio_zero" : "nbd_aio_pwrite", 0);
    }
}


static void
vmrpNbdCopyIssueRead(vmrpNbdCopy *copy, vmrpNbdSlot *slot)
{
    nbd_completion_callback cb = { .callback = vmrpNbdCopyReadDone, .user_data = slot };

    if (!slot->buf)
        slot->buf = g_aligned_alloc(1, copy->request_size, VMRP_QCOW2_ALIGN);
    slot->state = VMRP_NBD_SLOT_READING;
    if (nbd_aio_pread(copy->src, slot->buf, slot->length, slot->offset, cb, 0) < 0) {
        slot->state = VMRP_NBD_SLOT_FREE;
        vmrpNbdCopySetError(copy, "nbd_aio_pread", 0);
    }
}


/* Moves completed slots on; returns the number still busy. */
static unsigned int
vmrpNbdCopyHarvest(vmrpNbdCopy *copy)
{
    unsigned int busy = 0;
    unsigned int i;

    for (i = 0; i < copy->nslots; i++) {
        vmrpNbdSlot *slot = &copy->slots[i];

        if (slot->state == VMRP_NBD_SLOT_WRITING && copy->qcow2 &&
            g_atomic_int_get(&slot->written)) {
            slot->state = VMRP_NBD_SLOT_WRITE_DONE;
            if (slot->error && !copy->error) {
                g_mutex_lock(&copy->write_lock);
                copy->error = g_steal_pointer(&copy->write_error);
                g_mutex_unlock(&copy->write_lock);
            }
        }
        if (slot->state == VMRP_NBD_SLOT_READ_DONE) {
            if (slot->error) {
                vmrpNbdCopySetError(copy, "nbd_aio_pread", slot->error);
                slot->state = VMRP_NBD_SLOT_FREE;
            } else if (copy->error) {
                slot->state = VMRP_NBD_SLOT_FREE;
            } else {
                vmrpNbdCopyIssueWrite(copy, slot);
            }
        } else if (slot->state == VMRP_NBD_SLOT_WRITE_DONE) {
            /* its buffer stays until the digest has taken it */
            slot->state = slot->hashed ? VMRP_NBD_SLOT_FREE : VMRP_NBD_SLOT_WRITTEN;
            if (slot->error) {
                vmrpNbdCopySetError(copy, slot->zero ? "nbd_aio_zero" : "nbd_aio_pwrite",
                                    slot->error);
            } else {
                copy->done += slot->length;
                if (!slot->zero)
                    copy->data_bytes += slot->length;
                if (copy->progress && !copy->error)
                    copy->progress(copy->done, copy->total, copy->opaque);
            }
        }
        if (slot->state == VMRP_NBD_SLOT_WRITTEN && copy->error)
            slot->state = VMRP_NBD_SLOT_FREE;
        if (slot->state != VMRP_NBD_SLOT_FREE)
            busy++;
    }
    return busy;
}


/* A writing thread of a copy into a new qcow2: writes the pieces it is
 * given, and says so through the eventfd.  After an error they are only
 * marked written. */
static gpointer
vmrpNbdCopyWriter(gpointer opaque)
{
    vmrpNbdCopy *copy = opaque;
    uint64_t one = 1;

    for (;;) {
        vmrpNbdSlot *slot = g_async_queue_pop(copy->write_queue);
        g_autoptr(GError) local_error = NULL;

        if ((void *)slot == (void *)copy)
            return NULL;
        slot->error = 0;
        g_mutex_lock(&copy->write_lock);
        if (copy->write_error)
            slot->error = ECANCELED;
        g_mutex_unlock(&copy->write_lock);
        if (!slot->error && !vmrpQcow2WriterWrite(copy->qcow2, slot->offset, slot->buf,
                                                  slot->length, &local_error)) {
            slot->error = EIO;
            g_mutex_lock(&copy->write_lock);
            if (!copy->write_error)
                copy->write_error = g_steal_pointer(&local_error);
            g_mutex_unlock(&copy->write_lock);
        }
        g_atomic_int_set(&slot->written, 1);
        if (write(copy->wake_fd, &one, sizeof(one)) < 0) {
            /* an eventfd counter does not overflow here; the loop polls anyway */
        }
    }
}


/* Adds the pieces whose data has been read to the digest, in the order
 * they were issued (offset order), and frees those written and hashed.
 * Reads complete in any order: a piece read early waits, buffer and all,
 * for the ones before it.  Hashing is done here, in the copy's own loop,
 * once the loop has issued what it can: XXH3 takes ~13 us of CPU for a
 * 256 KiB piece here (hashed in the read's callback, right after its
 * recv(), no less), less than handing it to a thread costs.  (A writing
 * thread may be padding the same buffer past the piece's end meanwhile:
 * the digest reads only the piece.)  Returns the number of slots freed. */
static unsigned int
vmrpNbdCopyDigest(vmrpNbdCopy *copy)
{
    unsigned int freed = 0;
    bool progress = true;
    unsigned int i;

    if (!copy->digest)
        return 0;
    while (!copy->error && progress) {
        progress = false;
        for (i = 0; i < copy->nslots; i++) {
            vmrpNbdSlot *slot = &copy->slots[i];

            if (slot->hashed || slot->seq != copy->hash_seq ||
                (slot->state != VMRP_NBD_SLOT_WRITING &&
                 slot->state != VMRP_NBD_SLOT_WRITE_DONE &&
                 slot->state != VMRP_NBD_SLOT_WRITTEN))
                continue;
            vmrpDigestAddPiece(copy->digest, slot->offset, slot->buf, slot->length);
            slot->hashed = true;
            copy->hash_seq++;
            progress = true;
        }
    }
    for (i = 0; i < copy->nslots; i++) {
        vmrpNbdSlot *slot = &copy->slots[i];

        if (slot->state == VMRP_NBD_SLOT_WRITTEN && slot->hashed) {
            slot->state = VMRP_NBD_SLOT_FREE;
            freed++;
        }
    }
    return freed;
}


/* Fills free slots with new work; returns the number of slots filled. */
static unsigned int
vmrpNbdCopyFill(vmrpNbdCopy *copy)
{
    unsigned int filled = 0;
    unsigned int i;

    for (i = 0; i < copy->nslots && !copy->error; i++) {
        vmrpNbdSlot *slot = &copy->slots[i];

        if (slot->state != VMRP_NBD_SLOT_FREE)
            continue;
        if (!vmrpNbdCopyNextPiece(copy, &slot->offset, &slot->length, &slot->zero))
            break;
        slot->error = 0;
        /* only DATA pieces have a rank: a ZERO slot is freed at once and
         * reused, and the digest must not wait for it */
        slot->hashed = slot->zero || !copy->digest;
        if (!slot->zero && copy->digest)
            slot->seq = copy->next_seq++;
        if (slot->zero)
            vmrpNbdCopyIssueWrite(copy, slot);
        else
            vmrpNbdCopyIssueRead(copy, slot);
        filled++;
    }
    return filled;
}


static short
vmrpNbdCopyPollEvents(struct nbd_handle *nbd)
{
    unsigned int dir = nbd_aio_get_direction(nbd);
    short events = 0;

    if (dir & LIBNBD_AIO_DIRECTION_READ)
        events |= POLLIN;
    if (dir & LIBNBD_AIO_DIRECTION_WRITE)
        events |= POLLOUT;
    return events;
}


/* Waits for either handle, or for cancellation, and lets libnbd move on. */
static bool
vmrpNbdCopyPoll(vmrpNbdCopy *copy, GPollFD *cancel_fd)
{
    struct pollfd fds[4];
    struct nbd_handle *handles[2] = { copy->src, copy->dst };
    const char *names[2] = { "source", "target" };
    nfds_t nfds = 0;
    int nhandles = 0;
    int i;
    int r;

    for (i = 0; i < 2; i++) {
        int fd = handles[i] ? nbd_aio_get_fd(handles[i]) : -1;

        if (fd < 0)
            continue;  /* dead: its commands were completed with errors */
        fds[nfds].fd = fd;
        fds[nfds].events = vmrpNbdCopyPollEvents(handles[i]);
        fds[nfds].revents = 0;
        nfds++;
        nhandles |= 1 << i;
    }
    if (nhandles == 0) {
        if (!copy->error)
            g_set_error(&copy->error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_FAILED,
                        "nbd_aio_get_fd: both connections are closed");
        return false;
    }
    if (cancel_fd) {
        fds[nfds].fd = cancel_fd->fd;
        fds[nfds].events = POLLIN;
        fds[nfds].revents = 0;
        nfds++;
    }
    if (copy->wake_fd >= 0) {
        fds[nfds].fd = copy->wake_fd;
        fds[nfds].events = POLLIN;
        fds[nfds].revents = 0;
        nfds++;
    }

    do {
        r = poll(fds, nfds, VMRP_NBD_COPY_POLL_MS);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        if (!copy->error)
            g_set_error(&copy->error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_FAILED,
                        "poll: %s", g_strerror(errno));
        return false;
    }
    if (copy->wake_fd >= 0 && (fds[nfds - 1].revents & POLLIN)) {
        uint64_t count;
        if (read(copy->wake_fd, &count, sizeof(count)) < 0) {
            /* EAGAIN: nothing new */
        }
    }

    nfds = 0;
    for (i = 0; i < 2; i++) {
        short rev;

        if (!(nhandles & (1 << i)))
            continue;
        rev = fds[nfds++].revents;
        if (rev & (POLLIN | POLLHUP | POLLERR)) {
            if (nbd_aio_notify_read(handles[i]) < 0) {
                g_autofree char *what = g_strdup_printf("nbd_aio_notify_read (%s)",
                                                        names[i]);
                vmrpNbdCopySetError(copy, what, 0);
                continue;
            }
        }
        if ((rev & POLLOUT) && nbd_aio_notify_write(handles[i]) < 0) {
            g_autofree char *what = g_strdup_printf("nbd_aio_notify_write (%s)",
                                                    names[i]);
            vmrpNbdCopySetError(copy, what, 0);
        }
    }
    return true;
}


static bool
vmrpNbdCopyRun(vmrpNbdCopy *copy)
{
    GPollFD cancel_fd = { .fd = -1 };
    bool have_cancel_fd = copy->cancel &&
                          g_cancellable_make_pollfd(copy->cancel, &cancel_fd);

    for (;;) {
        /* After an error or cancellation nothing new is issued, and the
         * loop goes on until the requests in flight have completed. */
        if (!copy->error)
            g_cancellable_set_error_if_cancelled(copy->cancel, &copy->error);
        /* The reads and writes go out before the digest takes its time:
         * the source and the disk work on them meanwhile. */
        copy->busy = vmrpNbdCopyHarvest(copy);
        copy->busy += vmrpNbdCopyFill(copy);
        copy->busy -= vmrpNbdCopyDigest(copy);
        copy->busy += vmrpNbdCopyFill(copy);
        if (copy->busy == 0)
            break;
        if (!vmrpNbdCopyPoll(copy, have_cancel_fd ? &cancel_fd : NULL))
            break;
    }
    if (have_cancel_fd)
        g_cancellable_release_fd(copy->cancel);
    return copy->error == NULL;
}


/* The writing end: qemu-nbd on the image, on a socket in a private
 * directory, and our connection to it. */
typedef struct {
    char *dir;
    vmrpNbdExport *exp;
    struct nbd_handle *nbd;
} vmrpNbdCopyTarget;


/* Disconnects from qemu-nbd (cleanly when @clean), stops it and waits for
 * it to exit. */
static void
vmrpNbdCopyTargetClose(vmrpNbdCopyTarget *tgt, bool clean)
{
    if (tgt->nbd) {
        if (clean && nbd_aio_is_ready(tgt->nbd) == 1)
            nbd_shutdown(tgt->nbd, 0);
        nbd_close(tgt->nbd);
        tgt->nbd = NULL;
    }
    g_clear_pointer(&tgt->exp, vmrpNbdExportStop);
    if (tgt->dir) {
        g_rmdir(tgt->dir);
        g_clear_pointer(&tgt->dir, g_free);
    }
}


static bool
vmrpNbdCopyTargetOpen(vmrpNbdCopyTarget *tgt,
                      const char *image_path,
                      const char *image_format,
                      GError **error)
{
    g_autoptr(GError) local_error = NULL;
    g_autofree char *sock = NULL;

    if (g_strcmp0(image_format, "qcow2") != 0 && g_strcmp0(image_format, "raw") != 0) {
        g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_INVALID,
                    "cannot write %s: unsupported image format '%s'",
                    image_path, image_format ? image_format : "(null)");
        return false;
    }
    if (!g_file_test(image_path, G_FILE_TEST_IS_REGULAR)) {
        g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_INVALID,
                    "cannot write %s: no such image", image_path);
        return false;
    }
    if (!(tgt->dir = g_dir_make_tmp("vmrp-nbd-XXXXXX", &local_error))) {
        g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_SPAWN,
                    "cannot write %s: %s", image_path, local_error->message);
        return false;
    }
    sock = g_build_filename(tgt->dir, "writer.sock", NULL);
    if (!(tgt->exp = vmrpNbdExportStartWriter(image_path, image_format, sock, error)))
        return false;
    if (!(tgt->nbd = nbd_create())) {
        vmrpNbdErrorFromLibnbd(error, "nbd_create");
        return false;
    }
    if (nbd_connect_unix(tgt->nbd, sock) < 0) {
        vmrpNbdErrorFromLibnbd(error, "nbd_connect_unix");
        return false;
    }
    if (nbd_is_read_only(tgt->nbd) != 0) {
        g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_FAILED,
                    "cannot write %s: qemu-nbd exports it read-only", image_path);
        return false;
    }
    return true;
}


/* Checks what both kinds of copy need, and fills in @copy from @opts
 * (NULL: the defaults). */
static bool
vmrpNbdCopyInit(vmrpNbdCopy *copy,
                vmrpNbdSource *src,
                const vmrpExtentMap *map,
                const char *image_path,
                const vmrpNbdCopyOptions *opts,
                GError **error)
{
    static const vmrpNbdCopyOptions defaults = { 0 };

    if (!opts)
        opts = &defaults;
    if (map->size != vmrpNbdSourceGetSize(src) || !vmrpExtentMapIsComplete(map)) {
        g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_INVALID,
                    "cannot copy to %s: the extent map does not cover the source",
                    image_path);
        return false;
    }
    if (g_cancellable_set_error_if_cancelled(opts->cancel, error))
        return false;

    copy->src = vmrpNbdSourceGetHandle(src);
    copy->map = map;
    copy->image_path = image_path;
    copy->write_zeroes = opts->write_zeroes;
    copy->cancel = opts->cancel;
    copy->progress = opts->progress;
    copy->opaque = opts->opaque;
    copy->digest = opts->digest;
    copy->wake_fd = -1;
    copy->nslots = opts->max_requests ? opts->max_requests : VMRP_NBD_COPY_DEFAULT_REQUESTS;
    copy->nslots = MIN(copy->nslots, VMRP_NBD_COPY_MAX_REQUESTS);
    copy->request_size = opts->request_size ? opts->request_size
                                            : VMRP_NBD_COPY_DEFAULT_REQUEST_SIZE;
    if (vmrpNbdSourceGetMaxRequest(src) > 0)
        copy->request_size = MIN(copy->request_size, vmrpNbdSourceGetMaxRequest(src));
    return true;
}


/* Runs the copy of copy->map (its target open), the digest beside it. */
static bool
vmrpNbdCopyExecute(vmrpNbdCopy *copy)
{
    unsigned int i;
    bool ok;

    copy->total = vmrpExtentMapBytes(copy->map, VMRP_EXTENT_DATA);
    if (copy->write_zeroes)
        copy->total += vmrpExtentMapBytes(copy->map, VMRP_EXTENT_ZERO);
    if (vmrpExtentMapCount(copy->map) > 0)
        copy->next_pos = vmrpExtentMapGet(copy->map, 0)->offset;

    copy->slots = g_new0(vmrpNbdSlot, copy->nslots);
    if (copy->qcow2) {
        if ((copy->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
            g_set_error(&copy->error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_FAILED,
                        "eventfd: %s", g_strerror(errno));
            g_free(copy->slots);
            return false;
        }
        g_mutex_init(&copy->write_lock);
        copy->write_queue = g_async_queue_new();
        for (i = 0; i < VMRP_NBD_COPY_WRITERS; i++)
            copy->writers[i] = g_thread_new("vmrp-write", vmrpNbdCopyWriter, copy);
    }
    ok = vmrpNbdCopyRun(copy);
    /* the pieces queued are written before their buffers go */
    if (copy->qcow2) {
        for (i = 0; i < VMRP_NBD_COPY_WRITERS; i++)
            g_async_queue_push(copy->write_queue, copy);
        for (i = 0; i < VMRP_NBD_COPY_WRITERS; i++)
            g_thread_join(copy->writers[i]);
        g_async_queue_unref(copy->write_queue);
        g_clear_error(&copy->write_error);
        g_mutex_clear(&copy->write_lock);
    }
    if (copy->wake_fd >= 0)
        close(copy->wake_fd);

    /* Only if the poll loop itself failed can reads still be in flight on
     * the source, whose callbacks point at the slots: leave them be. */
    if (copy->busy == 0 || nbd_aio_in_flight(copy->src) <= 0) {
        for (i = 0; i < copy->nslots; i++)
            g_aligned_free(copy->slots[i].buf);
        g_free(copy->slots);
    }
    return ok;
}


/* What both kinds of copy return: @ok, else copy->error in @error. */
static bool
vmrpNbdCopyDone(vmrpNbdCopy *copy, bool ok, uint64_t *ret_bytes_copied, GError **error)
{
    if (!ok) {
        g_propagate_error(error, copy->error);
        return false;
    }
    if (ret_bytes_copied)
        *ret_bytes_copied = copy->data_bytes;
    return true;
}


bool
vmrpNbdCopyToImage(vmrpNbdSource *src,
                   const vmrpExtentMap *map,
                   const char *image_path,
                   const char *image_format,
                   const vmrpNbdCopyOptions *opts,
                   uint64_t *ret_bytes_copied,
                   GError **error)
{
    vmrpNbdCopy copy = { 0 };
    vmrpNbdCopyTarget tgt = { 0 };
    int64_t max;
    bool ok;

    if (!vmrpNbdCopyInit(&copy, src, map, image_path, opts, error))
        return false;
    if (!vmrpNbdCopyTargetOpen(&tgt, image_path, image_format, error)) {
        vmrpNbdCopyTargetClose(&tgt, false);
        return false;
    }
    copy.dst = tgt.nbd;

    if (nbd_get_size(copy.dst) < (int64_t)map->size) {
        g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_INVALID,
                    "cannot copy to %s: the image (%" G_GINT64_FORMAT
                    " bytes) is smaller than the source (%" G_GUINT64_FORMAT " bytes)",
                    image_path, nbd_get_size(copy.dst), map->size);
        vmrpNbdCopyTargetClose(&tgt, false);
        return false;
    }
    if (copy.write_zeroes && vmrpExtentMapBytes(map, VMRP_EXTENT_ZERO) > 0 &&
        nbd_can_zero(copy.dst) != 1) {
        g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_UNSUPPORTED,
                    "cannot copy to %s: qemu-nbd does not support write zeroes",
                    image_path);
        vmrpNbdCopyTargetClose(&tgt, false);
        return false;
    }
    if ((max = nbd_get_block_size(copy.dst, LIBNBD_SIZE_MAXIMUM)) > 0)
        copy.request_size = MIN(copy.request_size, (uint64_t)max);

    ok = vmrpNbdCopyExecute(&copy);
    if (ok && nbd_flush(copy.dst, 0) < 0) {
        vmrpNbdCopySetError(&copy, "nbd_flush", 0);
        ok = false;
    }
    vmrpNbdCopyTargetClose(&tgt, ok);
    return vmrpNbdCopyDone(&copy, ok, ret_bytes_copied, error);
}


bool
vmrpNbdCopyToNewQcow2(vmrpNbdSource *src,
                      const vmrpExtentMap *map,
                      const char *image_path,
                      const char *backing,
                      const vmrpNbdCopyOptions *opts,
                      uint64_t *ret_bytes_copied,
                      GError **error)
{
    vmrpNbdCopy copy = { 0 };
    g_autoptr(vmrpQcow2Writer) w = NULL;

    if (!vmrpNbdCopyInit(&copy, src, map, image_path, opts, error))
        return false;
    if (!(w = vmrpQcow2WriterCreate(image_path, map, backing, error)))
        return false;
    /* the plan's zeroes are in the image already: only its data is copied,
     * in pieces of whole clusters */
    copy.map = vmrpQcow2WriterPlan(w);
    copy.qcow2 = w;
    copy.write_zeroes = false;
    copy.request_size = MAX(VMRP_QCOW2_CLUSTER_SIZE,
                            copy.request_size / VMRP_QCOW2_CLUSTER_SIZE *
                            VMRP_QCOW2_CLUSTER_SIZE);

    return vmrpNbdCopyDone(&copy, vmrpNbdCopyExecute(&copy) &&
                                  vmrpQcow2WriterFinish(w, &copy.error),
                           ret_bytes_copied, error);
}
