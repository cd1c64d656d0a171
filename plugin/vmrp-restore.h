/*
 * vmrp-restore.h: restoring a restore point as a new domain
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <libvirt/libvirt.h>
#include <glib.h>

#include "vmrp-repo.h"

typedef void (*vmrpRestoreProgressFunc)(const char *target, uint64_t done,
                                        uint64_t total, void *opaque);

typedef struct {
    const char *name;        /* the new domain's name; NULL: generated */
    const char *disk_dir;    /* where its disks go; NULL: beside the originals */
    bool power_on;           /* start it once restored */
    vmrpRestoreProgressFunc progress;
    void *opaque;
} vmrpRestoreOptions;

typedef struct {
    char *name;              /* the new domain */
    char *uuid;
    GPtrArray *disks;        /* of char *, "vda=/path/to/file" */
    GPtrArray *excluded;     /* of char *, targets the point does not hold */
} vmrpRestoreResult;

void vmrpRestoreResultFree(vmrpRestoreResult *res);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpRestoreResult, vmrpRestoreResultFree)

/*
 * Restores point @id beside its original: new disk files made from the
 * point's images, a new domain with a new name, UUID and MAC addresses,
 * defined and, with power_on, started.  The original is not touched.  On
 * failure nothing is left behind.
 */
vmrpRestoreResult *vmrpRestoreNew(virConnectPtr conn,
                                  vmrpRepo *repo,
                                  const char *id,
                                  const vmrpRestoreOptions *opts,
                                  GError **error);
