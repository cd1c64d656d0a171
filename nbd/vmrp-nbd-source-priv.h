/*
 * vmrp-nbd-source-priv.h: what the rest of nbd/ may see of a source
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libnbd.h>

#include "vmrp-nbd-source.h"

/* The source's libnbd handle, for nbd/ only. */
struct nbd_handle *vmrpNbdSourceGetHandle(vmrpNbdSource *src);

/* Sets @error to "WHAT: nbd_get_error()" with code VMRP_NBD_ERROR_FAILED. */
void vmrpNbdErrorFromLibnbd(GError **error, const char *what);
