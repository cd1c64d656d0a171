/*
 * vmrp-verify.h: rp-verify: re-reads what a point stores and checks it
 * against the digests recorded when it was made
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <gio/gio.h>

#include "vmrp-repo.h"

typedef struct {
    char *id;
    char *domain_uuid;
    bool ok;
    char *verified;      /* ISO 8601, UTC */
    char *reason;        /* the first problem found ("image vda.qcow2: ..."), NULL when ok */
    GPtrArray *notes;    /* of char *: what could not be checked (an older point's
                          * missing digests), leaked clusters */
    bool recorded;       /* the result is in the point's manifest */
} vmrpVerifyResult;

void vmrpVerifyResultFree(vmrpVerifyResult *res);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpVerifyResult, vmrpVerifyResultFree)

/* Verifies the committed point @id: its manifest against its digest and
 * its files, each image with qemu-img check (its header naming only the
 * backing image the manifest names), the backing chain down to its full,
 * and each image's data against its digest.  The result (OK or Failed,
 * with the reason) is recorded in the manifest, under the collection's
 * lock.  A point that fails is a result, not an error: errors are only
 * what stops the check (no such point, a busy collection, cancellation). */
/* The checks alone, of the loaded @point in the folder @dir (also a copy's
 * .creating- folder): the first problem found, or NULL; @notes (nullable)
 * gets what could not be checked.  @checked (nullable) names the images of
 * @dir already checked with vmrpVerifyImage, with their data digests read
 * from @dir (vmrpDataFollow): name -> digest; they are not read again.
 * Errors only for cancellation. */
char *vmrpVerifyPointDir(vmrpPoint *point, const char *dir, GHashTable *checked,
                         GCancellable *cancel, GPtrArray *notes, GError **error);

/* The header of the qcow2 @image (shown as @name), read here: no
 * external data file, the backing file @backing (NULL: none) named as qcow2;
 * then qemu-img check (leaked clusters are a note in @notes, nullable).  The
 * problem found, or NULL. */
char *vmrpVerifyImage(const char *image, const char *name, const char *backing,
                      GPtrArray *notes);

vmrpVerifyResult *vmrpVerifyPoint(vmrpRepo *repo, const char *id, GCancellable *cancel,
                                  GError **error);
