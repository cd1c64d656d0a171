/*
 * vmrp-firmware.h: the files of a VM beside its disks: the UEFI variable
 * store (<os><nvram>) and the emulated TPM's state folder (swtpm), saved
 * with a point and brought back by a restore
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "vmrp-domxml.h"
#include "vmrp-point.h"

/* libvirt's places: /var/lib/libvirt/swtpm/<uuid> (swtpm's state of the
 * domain @uuid) and /var/lib/libvirt/qemu/nvram/<name>_VARS.fd (the
 * variables libvirt makes for a new domain @name). */
char *vmrpFirmwareSwtpmDir(const char *uuid);
char *vmrpFirmwareNvramPath(const char *name);

/*
 * Copies the file @nvram and the folder @tpm_dir (either may be NULL; a
 * missing @tpm_dir holds nothing yet) into @point_dir/nvram/ and
 * @point_dir/tpm/, each file listed in @point->files with its size and
 * sha256.  Only regular files and folders are copied, never through a link.
 */
bool vmrpFirmwareSave(vmrpPoint *point, const char *point_dir, const char *nvram,
                      const char *tpm_dir, GError **error);

/* Writes the point's NVRAM to the new file @dest (never over one), owned
 * by root, 0600 (libvirt gives it to QEMU at start), checked against its
 * sha256. */
bool vmrpFirmwareRestoreNvram(const vmrpPoint *point, const char *point_dir, const char *dest,
                              GError **error);

/* Makes the folder @dest_dir (it must not exist; root's, 0711) with the
 * point's vTPM state inside, owned by the swtpm user and group of
 * /etc/libvirt/qemu.conf (default tss), each file checked against its sha256. */
bool vmrpFirmwareRestoreTpm(const vmrpPoint *point, const char *point_dir, const char *dest_dir,
                            GError **error);

/* A restore's NVRAM and vTPM state: where they go, what was done (for the
 * rollback).  Zero-initialised. */
typedef struct {
    char *nvram_dest;        /* NULL: no NVRAM to write */
    char *nvram_aside;       /* in place: the domain's own, set aside (named by the plan,
                              * for the restore's journal) */
    bool nvram_created;
    bool nvram_set_aside;
    bool tpm;                /* the point holds vTPM state and the domain has a swtpm */
    char *tpm_dest;
    char *tpm_aside;
    bool tpm_created;
    bool tpm_set_aside;
} vmrpFirmwareRestore;

/* Before the XML is written: a clone (@in_place false) gets its own NVRAM
 * path, libvirt's for @new_name, in @domxml; in place the NVRAM goes to
 * the live domain's own path (@live_xml, NULL when the domain is gone: then
 * the point's path, only inside libvirt's nvram folder). */
bool vmrpFirmwareRestorePlan(vmrpFirmwareRestore *fw, const vmrpPoint *point,
                             vmrpDomainXml *domxml, const char *live_xml, bool in_place,
                             const char *new_name, GError **error);

/* Writes the NVRAM (in place: the domain's own is set aside first).  The
 * domain is off or not yet defined. */
bool vmrpFirmwareRestoreWriteNvram(vmrpFirmwareRestore *fw, const vmrpPoint *point,
                                   const char *point_dir, GError **error);

/* Names the vTPM state folder of the domain @uuid, and the name its own is
 * set aside under (in place), in @fw->tpm_dest and @fw->tpm_aside, when the
 * point holds vTPM state: the restore journals them before the write. */
void vmrpFirmwareRestoreNameTpm(vmrpFirmwareRestore *fw, const vmrpPoint *point,
                                const char *uuid);

/* Writes the vTPM state into the folder named by vmrpFirmwareRestoreNameTpm
 * (in place: the domain's own is set aside first).  Before the domain starts. */
bool vmrpFirmwareRestoreWriteTpm(vmrpFirmwareRestore *fw, const vmrpPoint *point,
                                 const char *point_dir, GError **error);

/* Undoes what was written; never fails, warns. */
void vmrpFirmwareRestoreRollback(vmrpFirmwareRestore *fw);
/* The restore is done: what was set aside goes. */
void vmrpFirmwareRestoreDone(vmrpFirmwareRestore *fw);
void vmrpFirmwareRestoreClear(vmrpFirmwareRestore *fw);
