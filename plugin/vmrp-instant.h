/*
 * vmrp-instant.h: domains that run on repository images (instant restore)
 *
 * A domain restored with --instant runs on qcow2 overlays whose backing
 * files are a point's images in the repository.  While it does, the
 * repository records the use in
 *
 *   REPO/instant/<domain-uuid>.json
 *
 * naming the domain, its overlays, the point and every point its images
 * depend on (the parents of an increment), and the files QEMU was let
 * read.  The repository stays root-only: the QEMU user (libvirt-qemu) gets
 * ACL entries for exactly those images (r) and the folders leading to them
 * (x), removed again when the last use of them ends.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <libvirt/libvirt.h>
#include <glib.h>

#include "vmrp-disk.h"
#include "vmrp-repo.h"

typedef struct _vmrpInstant vmrpInstant;

/* A new use of point @id (whose folder is @point_dir) by a domain. */
vmrpInstant *vmrpInstantNew(vmrpRepo *repo, const char *id, const char *point_dir,
                            GError **error);
void vmrpInstantFree(vmrpInstant *inst);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpInstant, vmrpInstantFree)

/* Makes the overlay @overlay (qcow2, owned by the QEMU user, mode 0600)
 * over the point's image of @target, and remembers it.  Fails when the
 * file exists. */
bool vmrpInstantAddDisk(vmrpInstant *inst, const char *target, const char *overlay,
                        GError **error);

/* Records the use by domain @uuid/@name and gives the QEMU user read access
 * to the images in use.  Undone by vmrpInstantRelease. */
bool vmrpInstantCommit(vmrpInstant *inst, const char *uuid, const char *name,
                       GError **error);

/* Removes the overlays made (for a rollback; the record, if committed,
 * goes with vmrpInstantRelease). */
void vmrpInstantRemoveOverlays(vmrpInstant *inst);

/* Ends the use of domain @uuid: removes its record and every ACL entry no
 * other use needs.  No record is no error. */
bool vmrpInstantRelease(vmrpRepo *repo, const char *uuid, GError **error);

/*
 * For rp-delete and prune: 1 when a domain runs on point @id (its images
 * or those of a later point built on it), with *ret_user (nullable) set to
 * "domain NAME (UUID)"; 0 when not; -1 with @error when the records cannot
 * be read (treat it as in use).
 */
int vmrpInstantPointInUse(vmrpRepo *repo, const char *id, char **ret_user, GError **error);

/* The domain uuids with a record (for listings). */
GStrv vmrpInstantListDomains(vmrpRepo *repo, GError **error);

/*
 * rp-restore --finalize: copies the repository's data into the overlays
 * of domain @dom (virDomainBlockPull while it runs, qemu-img rebase when it
 * is off), so that it no longer depends on the repository, then releases
 * the use.  @dom may be NULL when the domain is gone: @uuid's record is
 * then only released.  Cancelled, it stops the copy: the domain still runs
 * on the repository, as before.
 */
bool vmrpInstantFinalize(virDomainPtr dom, vmrpRepo *repo, const char *uuid,
                         const vmrpDiskCopyOptions *copy, GError **error);

/* The collection (domain uuid) of the point a domain's record names, or
 * NULL when @uuid has no record or the record's collection is not a uuid. */
char *vmrpInstantGetCollection(vmrpRepo *repo, const char *uuid);
