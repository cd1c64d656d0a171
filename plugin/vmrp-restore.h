/*
 * vmrp-restore.h: entire-VM restore of a restore point, beside the original
 * or in its place, from copies of the point's images or instantly on
 * overlays backed by them
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

#define VMRP_RESTORE_SHUTDOWN_TIMEOUT_S 30

typedef struct {
    bool in_place;           /* replace the original (Veeam's KeepOriginalVM=false) */
    const char *name;        /* beside: the new domain's name; NULL: generated */
    const char *disk_dir;    /* beside: where its disks go; NULL: beside the originals */
    const char *pool;        /* beside: new volumes in this storage pool instead, filled
                              * through libvirt (the host @conn is to, remote or not) */
    bool power_on;           /* start it once restored */
    bool instant;            /* run at once on overlays backed by the point's images
                              * (implies power_on) */
    int shutdown_timeout_s;  /* in place: how long a running original may take to shut
                              * down before it is destroyed; 0: destroyed at once */
    vmrpDiskCopyOptions copy;  /* progress; started once every check passed; cancel:
                              * everything done is undone, as on a failure */
} vmrpRestoreOptions;

typedef struct {
    char *name;              /* the restored domain */
    char *uuid;
    bool in_place;
    bool running;
    bool instant;
    GPtrArray *disks;        /* of char *, "vda=/path/to/file" */
    GPtrArray *excluded;     /* of char *, targets the point does not hold: beside,
                              * the new domain has no such disk */
    GPtrArray *kept;         /* of char *, "vdb=/path": in place, excluded disks of the
                              * original left as they are */
} vmrpRestoreResult;

void vmrpRestoreResultFree(vmrpRestoreResult *res);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpRestoreResult, vmrpRestoreResultFree)

/*
 * Restores point @id.
 *
 * Beside the original (!in_place): new disk files made from the point's
 * images (or, with instant, overlays over them), a new domain with a new
 * name, UUID and MAC addresses and no checkpoints, defined and, with
 * power_on, started.  The original is not touched.
 *
 * In place: the original (found by the point's UUID) is shut down, its
 * disks set aside as <file>.vmrp-old-<id>, the point's data written at the
 * original paths in the original formats, its checkpoint metadata removed
 * (the bitmaps went with the old disks), the domain redefined from the
 * point's XML (same name, UUID and MACs) and, with power_on, started; only
 * then are the set-aside disks removed.
 *
 * Every check comes before anything changes; a restore while another vmrp
 * works on the domain, or while it has a job running, is a BUSY error.  On
 * failure everything done is undone: in place, the original gets back its
 * disks, definition, checkpoints and run state.
 */
vmrpRestoreResult *vmrpRestoreRun(virConnectPtr conn,
                                  vmrpRepo *repo,
                                  const char *id,
                                  const vmrpRestoreOptions *opts,
                                  GError **error);

/*
 * Ends an in-place restore of domain @uuid that was killed on its way (its
 * journal in the state folder): before the restored domain was defined, the
 * original's files are put back (partial copies removed) and the domain is
 * started again when it ran; after, the set-aside files go.  Autostart comes
 * back either way.  Nothing to do is success.  Every command that takes the
 * domain's lock calls it (repo-check --repair may too).
 */
bool vmrpRestoreRecover(virConnectPtr conn, const char *uuid, GError **error);

/*
 * rp-restore --finalize: domain @name_or_uuid, restored with --instant,
 * gets the repository's data copied into its overlays and stops depending
 * on the repository (see vmrpInstantFinalize).  Returns the domain's uuid.
 */
char *vmrpRestoreFinalize(virConnectPtr conn,
                          vmrpRepo *repo,
                          const char *name_or_uuid,
                          const vmrpDiskCopyOptions *copy,
                          GError **error);
