/*
 * vmrp-nbd-digest.c: the digest of an image's data extents, read again
 * through a read-only qemu-nbd
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib/gstdio.h>

#include "vmrp-nbd-digest.h"
#include "vmrp-nbd-export.h"
#include "vmrp-nbd-source.h"

#define DIGEST_READ_SIZE (4 * 1024 * 1024)

char *
vmrpNbdDigestImage(const char *image, const char *format, GArray *extents,
                   vmrpDigestAlgorithm algorithm, GCancellable *cancel, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autofree char *dir = NULL;
    g_autofree char *sock = NULL;
    g_autofree char *buf = NULL;
    g_autoptr(vmrpNbdSource) src = NULL;
    g_autoptr(vmrpDigest) dg = vmrpDigestNew(algorithm);
    vmrpNbdExport *exp = NULL;
    size_t chunk = DIGEST_READ_SIZE;
    char *ret = NULL;
    guint i;

    if (!(dir = g_dir_make_tmp("vmrp-verify-XXXXXX", &local))) {
        g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_SPAWN, "cannot read %s: %s",
                    image, local->message);
        return NULL;
    }
    sock = g_build_filename(dir, "verify.sock", NULL);
    if (!(exp = vmrpNbdExportStart(image, format, sock, "verify", NULL, true, error)) ||
        !(src = vmrpNbdSourceOpen(sock, "verify", NULL, error)))
        goto cleanup;
    if (vmrpNbdSourceGetMaxRequest(src) > 0)
        chunk = MIN(chunk, vmrpNbdSourceGetMaxRequest(src));
    buf = g_malloc(chunk);
    for (i = 0; i < extents->len; i++) {
        const vmrpDigestExtent *e = &g_array_index(extents, vmrpDigestExtent, i);
        uint64_t pos;

        if (e->offset + e->length > vmrpNbdSourceGetSize(src)) {
            g_set_error(error, VMRP_NBD_ERROR, VMRP_NBD_ERROR_INVALID,
                        "%s is smaller than its recorded data extents", image);
            goto cleanup;
        }
        for (pos = e->offset; pos < e->offset + e->length; pos += chunk) {
            size_t n = MIN(chunk, e->offset + e->length - pos);

            if (g_cancellable_set_error_if_cancelled(cancel, error) ||
                !vmrpNbdSourcePread(src, buf, n, pos, error))
                goto cleanup;
            vmrpDigestAddPiece(dg, pos, buf, n);
        }
    }
    ret = vmrpDigestFinish(dg, NULL);

 cleanup:
    g_clear_pointer(&src, vmrpNbdSourceFree);
    if (exp)
        vmrpNbdExportStop(exp);
    g_unlink(sock);
    g_rmdir(dir);
    return ret;
}
