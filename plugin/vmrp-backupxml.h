/*
 * vmrp-backupxml.h: the backup job and checkpoint XML vmrp gives libvirt,
 * built and read with libxml2
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <glib.h>

/* One <disk> of a pull-mode backup job. */
typedef struct {
    const char *target;          /* vda */
    bool excluded;               /* backup='no' */
    const char *scratch;         /* the scratch file of an included disk */
    const char *export_name;     /* the NBD export's name (exportname) */
    const char *export_bitmap;   /* the export's dirty bitmap (exportbitmap), NULL: none */
    const char *incremental;     /* the checkpoint an increment starts at, NULL: full */
} vmrpBackupXmlDisk;

/* The export and bitmap names vmrp gives disk @target: its own, never
 * libvirt's defaults. */
char *vmrpBackupXmlExportName(const char *target);
char *vmrpBackupXmlExportBitmap(const char *target);

/* <domainbackup mode='pull'> served on the UNIX socket @socket. */
char *vmrpBackupXmlFormatJob(const char *socket, const vmrpBackupXmlDisk *disks, size_t ndisks,
                             GError **error);

/* The same served on TCP at @host:@port (a domain on another host), with
 * TLS when @tls. */
char *vmrpBackupXmlFormatJobTCP(const char *host, const char *port, bool tls,
                                const vmrpBackupXmlDisk *disks, size_t ndisks,
                                GError **error);

/* One <disk> of a checkpoint. */
typedef struct {
    const char *target;
    bool bitmap;                 /* checkpoint='bitmap', else 'no' */
} vmrpCheckpointXmlDisk;

/* <domaincheckpoint> named @name. */
char *vmrpBackupXmlFormatCheckpoint(const char *name, const char *description,
                                    const vmrpCheckpointXmlDisk *disks, size_t ndisks,
                                    GError **error);

/* Whether the backup job described by @job_xml (virDomainBackupGetXMLDesc)
 * is one of vmrp's: a pull-mode job whose NBD socket is in @state_dir, or
 * served on TCP with a scratch file vmrp named in VMRP_REMOTE_SCRATCH_DIR. */
bool vmrpBackupXmlIsOurs(const char *job_xml, const char *state_dir);

/* The targets of the disks whose bitmap is sound in a checkpoint's XML read
 * with VIR_DOMAIN_CHECKPOINT_XML_SIZE: libvirt gives a size only to a disk
 * whose bitmap chain is present and consistent in QEMU. */
GPtrArray *vmrpBackupXmlCheckpointSoundDisks(const char *chk_xml, GError **error);
