/*
 * vmrp-error.h: the error domain of the hypervisor side, and libvirt's
 * errors turned into GErrors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdbool.h>
#include <glib.h>

#define VMRP_ERROR vmrp_error_quark()
GQuark vmrp_error_quark(void);

typedef enum {
    VMRP_ERROR_FAILED,       /* anything else */
    VMRP_ERROR_INVALID,      /* bad input from the user or a damaged file */
    VMRP_ERROR_NOT_FOUND,    /* unknown domain, point, disk */
    VMRP_ERROR_EXISTS,       /* the name or file is taken */
    VMRP_ERROR_BUSY,         /* another vmrp or job holds it */
    VMRP_ERROR_LIBVIRT,      /* libvirt refused */
    VMRP_ERROR_IO,           /* the file system refused */
} vmrpErrorCode;

/* Sets @error from libvirt's last error, prefixed by @what. */
void vmrpErrorFromLibvirt(GError **error, const char *what);

/* Silences libvirt's default handler that prints every error on stderr. */
void vmrpErrorSilenceLibvirt(void);
