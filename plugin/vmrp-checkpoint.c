/*
 * vmrp-checkpoint.c: what libvirt says of a checkpoint's bitmaps
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>

#include "vmrp-checkpoint.h"
#include "vmrp-backupxml.h"
#include "vmrp-error.h"

GPtrArray *
vmrpCheckpointSoundBitmaps(virDomainPtr dom, const char *name, GError **error)
{
    virDomainCheckpointPtr chk;
    char *xml;
    GPtrArray *ret;

    if (!(chk = virDomainCheckpointLookupByName(dom, name, 0))) {
        vmrpErrorFromLibvirt(error, "cannot find the checkpoint");
        return NULL;
    }
    xml = virDomainCheckpointGetXMLDesc(chk, VIR_DOMAIN_CHECKPOINT_XML_SIZE |
                                             VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN);
    virDomainCheckpointFree(chk);
    if (!xml) {
        vmrpErrorFromLibvirt(error, "cannot read the checkpoint's bitmaps");
        return NULL;
    }
    ret = vmrpBackupXmlCheckpointSoundDisks(xml, error);
    free(xml);
    return ret;
}
