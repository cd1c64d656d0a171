/*
 * vmrp-nbd-source.c: the read side: a connection to an NBD export and its
 * extent map
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <string.h>

#include "vmrp-nbd-source-priv.h"

#define VMRP_NBD_BASE_ALLOCATION "base:allocation"
#define VMRP_NBD_DIRTY_BITMAP_PREFIX "qemu:dirty-bitmap:"
#define VMRP_NBD_STATE_DIRTY 1  /* qemu:dirty-bitmap:* flag */

/* Largest block status request; servers may answer for less. */
#define VMRP_NBD_STATUS_MAX (1ULL << 30)

struct _vmrpNbdSource {
    struct nbd_handle *nbd;
    uint64_t size;
    char *socket_path;
    char *bitmap;
    char *bitmap_context;  /* qemu:dirty-bitmap:BITMAP or NULL */
};


void
vmrpNbdErrorFromLibnbd(GError **error, const char *what)
{
    const char *msg = nbd_get_error();

    /* libnbd's own message often names the call already ("nbd_pread: read:
     * command failed: ...") */
    if (msg && *msg && g_str_has_prefix(msg, what) && msg[strlen(what)] == ':')
        g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_FAILED, "%s", msg);
    else
        g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_FAILED, "%s: %s",
                    what, msg && *msg ? msg : g_strerror(nbd_get_errno()));
}


struct nbd_handle *
vmrpNbdSourceGetHandle(vmrpNbdSource *src)
{
    return src->nbd;
}


void
vmrpNbdSourceFree(vmrpNbdSource *src)
{
    if (!src)
        return;
    if (src->nbd) {
        if (nbd_aio_is_ready(src->nbd) == 1)
            nbd_shutdown(src->nbd, 0);
        nbd_close(src->nbd);
    }
    g_free(src->socket_path);
    g_free(src->bitmap);
    g_free(src->bitmap_context);
    g_free(src);
}


static bool
vmrpNbdSourceCheckContext(vmrpNbdSource *src, const char *context, GError **error)
{
    int r = nbd_can_meta_context(src->nbd, context);

    if (r < 0) {
        vmrpNbdErrorFromLibnbd(error, "nbd_can_meta_context");
        return false;
    }
    if (r == 0) {
        g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_UNSUPPORTED,
                    "nbd server at %s does not support meta context %s",
                    src->socket_path, context);
        return false;
    }
    return true;
}


vmrpNbdSource *
vmrpNbdSourceOpen(const char *socket_path,
                  const char *export_name,
                  const char *bitmap,
                  GError **error)
{
    vmrpNbdAddress addr = { .socket_path = socket_path };

    return vmrpNbdSourceOpenAt(&addr, export_name, bitmap, error);
}


vmrpNbdSource *
vmrpNbdSourceOpenAt(const vmrpNbdAddress *addr,
                    const char *export_name,
                    const char *bitmap,
                    GError **error)
{
    g_autoptr(vmrpNbdSource) src = g_new0(vmrpNbdSource, 1);
    int64_t size;

    src->socket_path = addr->socket_path ? g_strdup(addr->socket_path)
                                         : g_strdup_printf("%s:%s", addr->host, addr->port);
    if (bitmap) {
        src->bitmap = g_strdup(bitmap);
        src->bitmap_context = g_strconcat(VMRP_NBD_DIRTY_BITMAP_PREFIX, bitmap, NULL);
    }

    if (!(src->nbd = nbd_create())) {
        vmrpNbdErrorFromLibnbd(error, "nbd_create");
        return NULL;
    }
    if (nbd_set_export_name(src->nbd, export_name ? export_name : "") < 0) {
        vmrpNbdErrorFromLibnbd(error, "nbd_set_export_name");
        return NULL;
    }
    /* Buffers are only used once a read succeeded: no need to zero them. */
    if (nbd_set_pread_initialize(src->nbd, false) < 0) {
        vmrpNbdErrorFromLibnbd(error, "nbd_set_pread_initialize");
        return NULL;
    }
    if (nbd_add_meta_context(src->nbd, VMRP_NBD_BASE_ALLOCATION) < 0 ||
        (src->bitmap_context &&
         nbd_add_meta_context(src->nbd, src->bitmap_context) < 0)) {
        vmrpNbdErrorFromLibnbd(error, "nbd_add_meta_context");
        return NULL;
    }
    if (!addr->socket_path && addr->tls_dir &&
        (nbd_set_tls(src->nbd, LIBNBD_TLS_REQUIRE) < 0 ||
         nbd_set_tls_certificates(src->nbd, addr->tls_dir) < 0 ||
         nbd_set_tls_verify_peer(src->nbd, true) < 0)) {
        vmrpNbdErrorFromLibnbd(error, "nbd_set_tls");
        return NULL;
    }
    if (addr->socket_path ? nbd_connect_unix(src->nbd, addr->socket_path) < 0
                          : nbd_connect_tcp(src->nbd, addr->host, addr->port) < 0) {
        vmrpNbdErrorFromLibnbd(error, addr->socket_path ? "nbd_connect_unix"
                                                        : "nbd_connect_tcp");
        return NULL;
    }
    if (!vmrpNbdSourceCheckContext(src, VMRP_NBD_BASE_ALLOCATION, error))
        return NULL;
    if (src->bitmap_context &&
        !vmrpNbdSourceCheckContext(src, src->bitmap_context, error))
        return NULL;
    if ((size = nbd_get_size(src->nbd)) < 0) {
        vmrpNbdErrorFromLibnbd(error, "nbd_get_size");
        return NULL;
    }
    src->size = size;
    return g_steal_pointer(&src);
}


uint64_t
vmrpNbdSourceGetSize(vmrpNbdSource *src)
{
    return src->size;
}


const char *
vmrpNbdSourceGetBitmap(vmrpNbdSource *src)
{
    return src->bitmap;
}


bool
vmrpNbdSourceCanMultiConn(vmrpNbdSource *src)
{
    return nbd_can_multi_conn(src->nbd) == 1;
}


uint64_t
vmrpNbdSourceGetMaxRequest(vmrpNbdSource *src)
{
    int64_t max = nbd_get_block_size(src->nbd, LIBNBD_SIZE_MAXIMUM);

    return max > 0 ? (uint64_t)max : 0;
}


bool
vmrpNbdSourcePread(vmrpNbdSource *src,
                   void *buf,
                   size_t count,
                   uint64_t offset,
                   GError **error)
{
    if (nbd_pread(src->nbd, buf, count, offset, 0) < 0) {
        vmrpNbdErrorFromLibnbd(error, "nbd_pread");
        return false;
    }
    return true;
}


/* One context's answer to one block status request. */
typedef struct {
    uint64_t offset;
    uint64_t length;
    uint32_t flags;
} vmrpNbdStatusExtent;

typedef struct {
    const char *name;
    GArray *extents;  /* of vmrpNbdStatusExtent, contiguous from the request */
    uint64_t end;     /* end of the extents so far */
    bool seen;
} vmrpNbdStatusContext;

typedef struct {
    uint64_t limit;   /* the export's size: extents are clipped to it */
    vmrpNbdStatusContext base;
    vmrpNbdStatusContext dirty;
    bool has_dirty;
    int error;        /* first errno a chunk came with */
} vmrpNbdStatusReply;


static void
vmrpNbdStatusContextReset(vmrpNbdStatusContext *ctx, uint64_t offset)
{
    g_array_set_size(ctx->extents, 0);
    ctx->end = offset;
    ctx->seen = false;
}


static int
vmrpNbdSourceExtentCallback(void *opaque,
                            const char *metacontext,
                            uint64_t offset,
                            uint32_t *entries,
                            size_t nr_entries,
                            int *error)
{
    vmrpNbdStatusReply *reply = opaque;
    vmrpNbdStatusContext *ctx;
    size_t i;

    if (*error) {
        if (!reply->error)
            reply->error = *error;
        return 0;
    }
    if (strcmp(metacontext, reply->base.name) == 0)
        ctx = &reply->base;
    else if (reply->has_dirty && strcmp(metacontext, reply->dirty.name) == 0)
        ctx = &reply->dirty;
    else
        return 0;

    /* A context may in theory come in several chunks: they follow on. */
    if (!ctx->seen)
        ctx->end = offset;
    ctx->seen = true;
    for (i = 0; i + 1 < nr_entries; i += 2) {
        vmrpNbdStatusExtent e = { ctx->end, entries[i], entries[i + 1] };

        if (e.length == 0 || ctx->end >= reply->limit)
            continue;
        e.length = MIN(e.length, reply->limit - ctx->end);
        g_array_append_val(ctx->extents, e);
        ctx->end += e.length;
    }
    return 0;
}


static vmrpExtentKind
vmrpNbdSourceKind(const vmrpNbdStatusExtent *base, const vmrpNbdStatusExtent *dirty)
{
    if (dirty && !(dirty->flags & VMRP_NBD_STATE_DIRTY))
        return VMRP_EXTENT_CLEAN;
    if (base->flags & LIBNBD_STATE_ZERO)
        return VMRP_EXTENT_ZERO;
    return VMRP_EXTENT_DATA;
}


/* Appends [offset, end) to @map from the intersection of the contexts'
 * extents; both cover at least that range. */
static void
vmrpNbdSourceMerge(vmrpExtentMap *map,
                   vmrpNbdStatusReply *reply,
                   uint64_t offset,
                   uint64_t end)
{
    GArray *base = reply->base.extents;
    GArray *dirty = reply->has_dirty ? reply->dirty.extents : NULL;
    guint i = 0;
    guint j = 0;
    uint64_t pos = offset;

    while (pos < end) {
        const vmrpNbdStatusExtent *b = &g_array_index(base, vmrpNbdStatusExtent, i);
        const vmrpNbdStatusExtent *d = NULL;
        uint64_t seg_end = MIN(end, b->offset + b->length);

        if (dirty) {
            d = &g_array_index(dirty, vmrpNbdStatusExtent, j);
            seg_end = MIN(seg_end, d->offset + d->length);
        }
        vmrpExtentMapAppend(map, pos, seg_end - pos, vmrpNbdSourceKind(b, d));
        pos = seg_end;
        if (pos == b->offset + b->length)
            i++;
        if (d && pos == d->offset + d->length)
            j++;
    }
}


vmrpExtentMap *
vmrpNbdSourceMapExtents(vmrpNbdSource *src, GError **error)
{
    g_autoptr(vmrpExtentMap) map = vmrpExtentMapNew(src->size);
    g_autoptr(GArray) base = g_array_new(FALSE, FALSE, sizeof(vmrpNbdStatusExtent));
    g_autoptr(GArray) dirty = g_array_new(FALSE, FALSE, sizeof(vmrpNbdStatusExtent));
    vmrpNbdStatusReply reply = {
        .limit = src->size,
        .base = { .name = VMRP_NBD_BASE_ALLOCATION, .extents = base },
        .dirty = { .name = src->bitmap_context, .extents = dirty },
        .has_dirty = src->bitmap_context != NULL,
    };
    uint64_t offset = 0;

    while (offset < src->size) {
        uint64_t count = MIN(VMRP_NBD_STATUS_MAX, src->size - offset);
        nbd_extent_callback cb = { .callback = vmrpNbdSourceExtentCallback,
                                   .user_data = &reply };
        uint64_t end;

        vmrpNbdStatusContextReset(&reply.base, offset);
        vmrpNbdStatusContextReset(&reply.dirty, offset);
        reply.error = 0;

        if (nbd_block_status(src->nbd, count, offset, cb, 0) < 0) {
            vmrpNbdErrorFromLibnbd(error, "nbd_block_status");
            return NULL;
        }
        if (reply.error) {
            g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_FAILED,
                        "nbd_block_status: %s", g_strerror(reply.error));
            return NULL;
        }
        if (!reply.base.seen || reply.base.end <= offset) {
            g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_PROTOCOL,
                        "nbd_block_status: server sent no %s extents at offset %"
                        G_GUINT64_FORMAT, VMRP_NBD_BASE_ALLOCATION, offset);
            return NULL;
        }
        end = reply.base.end;
        if (reply.has_dirty) {
            if (!reply.dirty.seen || reply.dirty.end <= offset) {
                g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_PROTOCOL,
                            "nbd_block_status: server sent no %s extents at offset %"
                            G_GUINT64_FORMAT, reply.dirty.name, offset);
                return NULL;
            }
            end = MIN(end, reply.dirty.end);
        }
        vmrpNbdSourceMerge(map, &reply, offset, end);
        offset = end;
    }
    return g_steal_pointer(&map);
}
