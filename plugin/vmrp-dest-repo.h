/*
 * vmrp-dest-repo.h: a repository read through a destination's file
 * operations (vmrp-dest.h): what rp-list, rp-verify and rp-copy do with an
 * ssh:// repository, where vmrpRepo (a local folder) cannot go
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <gio/gio.h>

#include "vmrp-copy.h"
#include "vmrp-dest.h"
#include "vmrp-point.h"
#include "vmrp-verify.h"

/* SHA256SUMS (sha256sum's "HEX  NAME" lines) as name -> hex; NULL when a
 * line is not one, or a name is absolute, holds '..' or comes twice. */
GHashTable *vmrpDestSumsParse(const char *text);

/* The repository's id; an error when @dest holds no repository. */
char *vmrpDestRepoGetId(vmrpDest *dest, GError **error);

/* Collections as GStrv {uuid, name}. */
GPtrArray *vmrpDestRepoListCollections(vmrpDest *dest, GError **error);

/* The uuid of the collection of a domain name or uuid; @ret_name (nullable)
 * gets its name. */
char *vmrpDestRepoFindCollection(vmrpDest *dest, const char *name_or_uuid, char **ret_name,
                                 GError **error);

/* Committed points of a collection, oldest first; one whose manifest cannot
 * be read is listed as Damaged. */
GPtrArray *vmrpDestRepoListPoints(vmrpDest *dest, const char *uuid, GError **error);

/* A committed point by id, in any collection. */
vmrpPoint *vmrpDestRepoFindPoint(vmrpDest *dest, const char *id, GError **error);

/* rp-verify at a repository without a local path: the manifest against its
 * digest, every file the manifest names against the point's SHA256SUMS (the
 * SHA-256 taken when it was copied there, checked then by reading it back),
 * each file read whole again against it, and the backing chain's manifests.
 * No qemu-img check.  Recorded in the point's manifest there. */
vmrpVerifyResult *vmrpDestRepoVerify(vmrpDest *dest, const char *id, GCancellable *cancel,
                                     GError **error);

/* rp-copy POINT from the repository @src_spec (ssh://) to the local
 * repository @to: the point and the points it builds on that @to lacks,
 * each checked there as a local copy is (qemu-img, the data digests) and
 * against SHA256SUMS before it is renamed into place (vmrp-copy-pull.c). */
vmrpCopyResult *vmrpCopyFromDest(const char *src_spec, const char *id, const char *to,
                                 const vmrpCopyOptions *opts, GError **error);
