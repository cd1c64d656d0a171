/*
 * vmrp-backup.h: taking a restore point of a running domain
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <libvirt/libvirt.h>
#include <gio/gio.h>

#include "vmrp-consistency.h"
#include "vmrp-point.h"
#include "vmrp-repo.h"

/* Called as the copy of @disk progresses; @point is the manifest as it stands. */
typedef void (*vmrpBackupProgressFunc)(const vmrpPoint *point, const vmrpPointDisk *disk,
                                       void *opaque);

typedef struct {
    vmrpConsistency consistency;
    bool allow_fallback;
    bool full;                     /* start a new chain */
    const char *const *exclude;    /* disk targets left out; nullable */
    int agent_timeout_s;           /* bound on each guest agent call */
    GCancellable *cancel;          /* aborts the point (job-abort, a signal); nullable */
    gint64 created_at;             /* the point's creation time (unix seconds) when not
                                    * now: run-policies --now, a test's clock; 0: now */
    vmrpBackupProgressFunc progress;
    void *opaque;
    /* a domain on another host (vmrpRemoteHost): the export is served on TCP
     * at a port from [nbd_port_min, nbd_port_max] (0: 10809-10999), with TLS
     * (libvirt's backup_tls_x509_cert_dir on that host; vmrp's client
     * certificate from tls_dir, NULL: vmrpRemoteTLSDir's default) unless no_tls */
    const char *tls_dir;
    bool no_tls;
    int nbd_port_min;
    int nbd_port_max;
} vmrpBackupOptions;

typedef struct _vmrpBackup vmrpBackup;

/*
 * Checks everything that can be checked before anything changes: the
 * domain runs, the excluded disks exist and some disk is left, and the
 * consistency asked for can be had (the guest agent answers, or fallback
 * is allowed).  @opts must outlive the returned object.
 */
vmrpBackup *vmrpBackupPrepare(virDomainPtr dom, const vmrpBackupOptions *opts, GError **error);
void vmrpBackupFree(vmrpBackup *backup);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpBackup, vmrpBackupFree)

/*
 * Takes the point into @repo through a libvirt pull-mode backup with a
 * checkpoint named after the point: the guest is frozen (per the consistency)
 * only while the backup job starts, then every included disk's allocated
 * data is read over NBD into one qcow2 image per disk, and the point is
 * committed.  On failure nothing is left: no point, no checkpoint, no job,
 * no frozen guest.  Returns the committed point.
 */
vmrpPoint *vmrpBackupRun(vmrpBackup *backup, vmrpRepo *repo, GError **error);

/* What the user should know of the run beside the point (a repair made on
 * the way), or NULL. */
const char *vmrpBackupGetNote(vmrpBackup *backup);
