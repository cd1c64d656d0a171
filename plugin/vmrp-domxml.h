/*
 * vmrp-domxml.h: reading and rewriting libvirt domain XML with libxml2
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <glib.h>

typedef struct {
    char *target;   /* vda */
    char *device;   /* disk, cdrom, floppy, lun */
    char *type;     /* file, block, network, volume; a volume resolved by
                     * vmrpVolumeResolveDisks: the file or block it is */
    char *source;   /* file or dev path; NULL for network or empty drives
                     * and unresolved volumes */
    char *format;   /* the driver type: qcow2, raw; NULL when unspecified */
    char *pool;     /* <disk type='volume'>: its storage pool and volume */
    char *volume;
} vmrpDomainDisk;

void vmrpDomainDiskFree(vmrpDomainDisk *disk);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpDomainDisk, vmrpDomainDiskFree)

typedef struct _vmrpDomainXml vmrpDomainXml;

/* Parses a <domain> document; refuses a DOCTYPE, network access and entities. */
vmrpDomainXml *vmrpDomainXmlParse(const char *xml, GError **error);
void vmrpDomainXmlFree(vmrpDomainXml *dom);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmrpDomainXml, vmrpDomainXmlFree)

const char *vmrpDomainXmlGetName(vmrpDomainXml *dom);
const char *vmrpDomainXmlGetUUID(vmrpDomainXml *dom);

/* Every <disk> of <devices>, in document order, as vmrpDomainDisk. */
GPtrArray *vmrpDomainXmlGetDisks(vmrpDomainXml *dom);

/* Whether a disk is one whose data a restore point holds: a disk or LUN
 * device with a local file or block device as source. */
bool vmrpDomainDiskIsBackedUp(const vmrpDomainDisk *disk);

/*
 * Turns the XML into that of a new domain beside the original: @new_name,
 * no <uuid> (libvirt makes one), no MAC address (libvirt makes new ones),
 * no generated paths (agent channel sockets), and for each disk whose
 * target is a key of @new_sources a local file at the new path with the
 * format from @new_formats and no <backingStore>.  Disks whose target is
 * in @drop are removed.
 */
bool vmrpDomainXmlPrepareClone(vmrpDomainXml *dom,
                               const char *new_name,
                               GHashTable *new_sources,
                               GHashTable *new_formats,
                               const char *const *drop,
                               GError **error);

/*
 * Points the disk @target at the local file @path of @format, dropping its
 * <backingStore> and anything else that described the old source.  With
 * @no_relabel, the source carries <seclabel model='dac' relabel='no'/>:
 * libvirt then leaves the ownership of the file and of its whole backing
 * chain alone.  Name, UUID and MACs stay.  An unknown target is an error.
 */
bool vmrpDomainXmlSetDiskSource(vmrpDomainXml *dom,
                                const char *target,
                                const char *path,
                                const char *format,
                                bool no_relabel,
                                GError **error);

/* Points the disk @target at volume @volume of storage pool @pool, of
 * @format, as vmrpDomainXmlSetDiskSource does for a file. */
bool vmrpDomainXmlSetDiskVolume(vmrpDomainXml *dom,
                                const char *target,
                                const char *pool,
                                const char *volume,
                                const char *format,
                                GError **error);

char *vmrpDomainXmlFormat(vmrpDomainXml *dom);

/* The UEFI variable store of the domain, <os><nvram>'s path (its text, or
 * the file of its <source>), or NULL. */
char *vmrpDomainXmlGetNvram(vmrpDomainXml *dom);

/* Points <os><nvram> at @path; a domain without one is left alone. */
bool vmrpDomainXmlSetNvram(vmrpDomainXml *dom, const char *path, GError **error);

/* Whether the domain has an emulated TPM (<tpm><backend type='emulator'>),
 * whose state swtpm keeps in a folder named after the domain's UUID. */
bool vmrpDomainXmlHasSwtpm(vmrpDomainXml *dom);
