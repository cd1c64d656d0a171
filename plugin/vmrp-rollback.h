/*
 * vmrp-rollback.h: QuickRollback: an in-place restore that writes back only
 * the blocks that changed since the point
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <libvirt/libvirt.h>
#include <gio/gio.h>

#include "vmrp-disk.h"
#include "vmrp-repo.h"

typedef struct {
    bool power_on;                 /* start the domain afterwards (also if it ran before) */
    vmrpDiskCopyOptions copy;      /* progress; started once every check passed; cancel:
                                    * heeded until the domain is stopped (see below) */
} vmrpRollbackOptions;

typedef struct {
    char *name;
    uint64_t bytes_written;        /* what was written back, all disks */
    uint64_t bytes_disks;          /* the disks' size, all disks */
    int64_t write_back_ms;         /* finding and writing back the changed blocks */
    GStrv checkpoints_removed;     /* the checkpoints newer than the point */
    GStrv excluded;                /* disks the point does not hold: left as they are */
} vmrpRollbackResult;

void vmrpRollbackResultFree(vmrpRollbackResult *res);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpRollbackResult, vmrpRollbackResultFree)

/*
 * Rolls the domain of point @id back to the point: the blocks its
 * checkpoint's dirty bitmaps mark as changed since are read from the point's
 * images and written over the domain's disks, with the domain stopped.  The
 * checkpoints newer than the point are removed first.  Refused before
 * anything changes when the point's checkpoint or its bitmaps are gone, or
 * the disks differ from the point's (a full in-place restore is the way then).
 *
 * A cancellation before the domain is stopped changes nothing; after it, the
 * rollback runs to its end: the blocks it writes back cannot be given back,
 * and a disk half rolled back would be neither the point nor the original.
 */
vmrpRollbackResult *vmrpRollbackRun(virConnectPtr conn, vmrpRepo *repo, const char *id,
                                    const vmrpRollbackOptions *opts, GError **error);
