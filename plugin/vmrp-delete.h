/*
 * vmrp-delete.h: deleting one restore point, keeping every other restorable
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <libvirt/libvirt.h>
#include <glib.h>

#include "vmrp-repo.h"

typedef struct {
    char *id;
    GStrv merged_into;   /* the points the deleted one's data went into */
    char *warning;       /* e.g. the checkpoint could not be removed from libvirt */
    char *note;          /* what a crash had left and was cleaned first ("" if nothing) */
} vmrpDeleteResult;

void vmrpDeleteResultFree(vmrpDeleteResult *res);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpDeleteResult, vmrpDeleteResultFree)

/*
 * Deletes point @id.  Its data is first merged into the points built on it
 * (each child image is rebased onto the deleted one's parent, qemu-img's
 * safe rebase, so a crash midway leaves the child whole), then its libvirt
 * checkpoint is deleted (libvirt merges its bitmap into the parent's) when
 * the domain still exists (@conn may be NULL), then its folder.  What a
 * crash left in the collection is cleaned first, as rp-create does.
 */
vmrpDeleteResult *vmrpDeletePoint(virConnectPtr conn, vmrpRepo *repo, const char *id,
                                  GError **error);

/*
 * collection-delete: every point of collection @uuid, newest first (so no
 * data is merged), with its libvirt checkpoint when the domain still exists
 * (@conn may be NULL), then the collection itself (its policy too).
 * Refused before anything changes when a point is protected or used by an
 * instant restore, or another vmrp works on the domain.  Returns the ids of
 * the points deleted; @ret_warnings (nullable) gets what could not be
 * undone in libvirt, @ret_note (nullable) what a crash had left and was
 * cleaned first (a backup job of vmrp's).
 */
GStrv vmrpDeleteCollection(virConnectPtr conn, vmrpRepo *repo, const char *uuid,
                           GStrv *ret_warnings, char **ret_note, GError **error);
